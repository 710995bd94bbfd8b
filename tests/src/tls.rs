//! TLS helpers for the end-to-end tests: certificates made fresh by the `openssl` command line
//! for each test (a CA, server and client certificates for 127.0.0.1/localhost, an untrusted
//! CA, an expired certificate), nodes started with a `tls-port`, and a rustls client that
//! plugs into [`RawClient`].

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use crate::client::{RawClient, Stream, READ_TIMEOUT};
use crate::cluster::TempDir;
use crate::process::{free_port, run_with_timeout, ShoalNode};

/// Runs `openssl` with arguments, in `dir`; panics with its output on failure.
fn openssl(dir: &Path, args: &[&str]) {
    let out =
        run_with_timeout(Command::new("openssl").args(args).current_dir(dir), b"", Duration::from_secs(30));
    assert!(out.status.success(), "openssl {args:?}: {}\n{}", out.stdout, out.stderr);
}

/// A directory of PEM files: `ca`, `server`, `client`, `other-ca`, `untrusted` (signed by
/// `other-ca`), `expired` (signed by `ca`, already expired). Each name has `.crt` and `.key`.
pub struct Certs {
    pub dir: TempDir,
}

impl Certs {
    pub fn new() -> Certs {
        let dir = TempDir::new("tls");
        let c = Certs { dir };
        c.ca("ca", "Shoal Test CA");
        c.ca("other-ca", "Someone Else's CA");
        c.leaf("server", "ca", "shoal-server", 2);
        c.leaf("client", "ca", "shoal-client", 2);
        c.leaf("untrusted", "other-ca", "stranger", 2);
        c.leaf("expired", "ca", "expired-client", -1);
        c
    }

    fn ca(&self, name: &str, cn: &str) {
        let (crt, key) = (format!("{name}.crt"), format!("{name}.key"));
        let subj = format!("/CN={cn}");
        openssl(
            &self.dir.0,
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                &key,
                "-out",
                &crt,
                "-days",
                "2",
                "-subj",
                &subj,
            ],
        );
    }

    /// A certificate for 127.0.0.1 and localhost signed by `ca`, valid for `days` (negative:
    /// expired that many days ago).
    pub fn leaf(&self, name: &str, ca: &str, cn: &str, days: i32) {
        let d = &self.dir.0;
        let (crt, key, csr, ext) =
            (format!("{name}.crt"), format!("{name}.key"), format!("{name}.csr"), format!("{name}.ext"));
        let subj = format!("/CN={cn}");
        openssl(
            d,
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                &key,
                "-out",
                &csr,
                "-subj",
                &subj,
            ],
        );
        std::fs::write(
            d.join(&ext),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n",
        )
        .expect("writing ext file");
        let (ca_crt, ca_key, days) = (format!("{ca}.crt"), format!("{ca}.key"), days.to_string());
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                &ca_crt,
                "-CAkey",
                &ca_key,
                "-CAcreateserial",
                "-out",
                &crt,
                "-days",
                &days,
                "-extfile",
                &ext,
            ],
        );
    }

    pub fn path(&self, file: &str) -> String {
        self.dir.0.join(file).to_string_lossy().into_owned()
    }

    pub fn crt(&self, name: &str) -> String {
        self.path(&format!("{name}.crt"))
    }

    pub fn key(&self, name: &str) -> String {
        self.path(&format!("{name}.key"))
    }

    /// The node-side directives: server certificate, CA, and `tls-auth-clients auth`.
    pub fn server_args(&self, auth: &str) -> Vec<String> {
        [
            ("--tls-cert-file", self.crt("server")),
            ("--tls-key-file", self.key("server")),
            ("--tls-ca-cert-file", self.crt("ca")),
            ("--tls-auth-clients", auth.to_string()),
        ]
        .into_iter()
        .flat_map(|(k, v)| [k.to_string(), v])
        .collect()
    }

    /// A rustls client config trusting `ca`, presenting `client` (a name here, or none).
    pub fn client_config(&self, client: Option<&str>) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(self.crt("ca")).expect("ca file") {
            roots.add(c.expect("ca cert")).expect("adding ca");
        }
        let b = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots);
        let cfg = match client {
            None => b.with_no_client_auth(),
            Some(name) => {
                let certs: Vec<_> = CertificateDer::pem_file_iter(self.crt(name))
                    .expect("client cert file")
                    .collect::<Result<_, _>>()
                    .expect("client certs");
                let key = PrivateKeyDer::from_pem_file(self.key(name)).expect("client key");
                b.with_client_auth_cert(certs, key).expect("client auth")
            }
        };
        Arc::new(cfg)
    }
}

impl Default for Certs {
    fn default() -> Self {
        Certs::new()
    }
}

/// Connects over TLS to 127.0.0.1:`port` and completes the handshake (bounded by the read
/// timeout). Errors carry rustls's reason.
pub fn tls_connect(port: u16, cfg: Arc<ClientConfig>) -> std::io::Result<RawClient> {
    let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
    let mut sock = TcpStream::connect_timeout(&addr, READ_TIMEOUT)?;
    sock.set_nodelay(true)?;
    sock.set_read_timeout(Some(READ_TIMEOUT))?;
    sock.set_write_timeout(Some(READ_TIMEOUT))?;
    let name = ServerName::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST).into());
    let mut conn = ClientConnection::new(cfg, name).map_err(std::io::Error::other)?;
    while conn.is_handshaking() {
        conn.complete_io(&mut sock)?;
    }
    Ok(RawClient::over(Stream::Tls(Box::new(StreamOwned::new(conn, sock)))))
}

/// The DER of the certificate the server presented on `c` (a TLS client).
pub fn peer_cert(c: &RawClient) -> Vec<u8> {
    match &c.stream {
        Stream::Tls(s) => {
            s.conn.peer_certificates().and_then(|p| p.first()).map(|d| d.to_vec()).unwrap_or_default()
        }
        _ => Vec::new(),
    }
}

/// The DER of the first certificate in a PEM file.
pub fn cert_der(path: &str) -> Vec<u8> {
    CertificateDer::pem_file_iter(path)
        .ok()
        .and_then(|mut i| i.next())
        .and_then(Result::ok)
        .map(|c| c.to_vec())
        .unwrap_or_default()
}

/// A node serving TLS: the node (its `port` is the plain one) and its TLS port.
pub struct TlsNode {
    pub node: ShoalNode,
    pub tls_port: u16,
}

impl TlsNode {
    /// Starts a node with a plain and a TLS port (both probed free, retried if taken) and
    /// extra arguments.
    pub fn start(extra: &[String]) -> TlsNode {
        let mut last = String::new();
        for _ in 0..5 {
            let (port, tls_port) = (free_port(), free_port());
            if port == tls_port {
                continue;
            }
            let (p, t) = (port.to_string(), tls_port.to_string());
            let mut args: Vec<&str> = vec!["--port", &p, "--tls-port", &t];
            args.extend(extra.iter().map(String::as_str));
            match ShoalNode::try_start(&args) {
                Ok(node) => return TlsNode { node, tls_port },
                Err(e) => last = e,
            }
        }
        panic!("could not start a TLS node: {last}");
    }

    pub fn tls(&self, cfg: &Arc<ClientConfig>) -> RawClient {
        tls_connect(self.tls_port, cfg.clone())
            .unwrap_or_else(|e| panic!("TLS connect to :{}: {e}", self.tls_port))
    }
}

/// Absolute path of a file in the certificate directory, as a `PathBuf`.
pub fn in_dir(c: &Certs, file: &str) -> PathBuf {
    c.dir.0.join(file)
}
