//! TLS configuration: the `tls-*` directives turned into rustls server and client configs.
//!
//! Both configs are immutable `Arc`s. A new one is built whenever a `tls-*` directive changes
//! (`CONFIG SET tls-cert-file ...` re-reads the files, as Valkey does), and the old one stays
//! alive inside every connection that already uses it: new handshakes get the new certificate,
//! established sessions are not disturbed. Building is all-or-nothing, so a bad file refuses
//! the CONFIG SET and leaves the running config in place.
//!
//! rustls is not OpenSSL: only TLS 1.2 and 1.3, only AEAD suites with ECDHE, no encrypted key
//! files. Valkey's cipher and protocol directives are mapped onto what rustls has, and anything
//! it does not have is refused with an error naming the offending word.

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig, SupportedCipherSuite, SupportedProtocolVersion};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::Config;

/// Why the TLS settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("Failed to load certificate: {path}: {reason}")]
    Cert { path: String, reason: String },
    #[error("Failed to load private key: {path}: {reason}")]
    Key { path: String, reason: String },
    #[error("Failed to load CA certificates: {0}")]
    Ca(String),
    #[error("{0} must be specified when TLS is enabled")]
    Missing(&'static str),
    #[error("Either tls-ca-cert-file or tls-ca-cert-dir must be specified when tls-auth-clients is enabled")]
    NoCa,
    #[error("Unsupported TLS protocol '{0}' (rustls supports TLSv1.2 and TLSv1.3)")]
    Protocol(String),
    #[error("Unsupported cipher '{0}' in {1} (supported: {2})")]
    Cipher(String, &'static str, String),
    #[error("No cipher suite left for the enabled protocols")]
    NoSuites,
    #[error("TLS configuration rejected: {0}")]
    Rustls(String),
}

impl From<rustls::Error> for TlsError {
    fn from(e: rustls::Error) -> Self {
        TlsError::Rustls(e.to_string())
    }
}

/// rustls's suites under the names Valkey users write: OpenSSL names for TLS 1.2
/// (`tls-ciphers`) and IANA names for TLS 1.3 (`tls-ciphersuites`), which OpenSSL uses too.
const NAMES: &[(&str, &str)] = &[
    ("TLS_AES_256_GCM_SHA384", "TLS13_AES_256_GCM_SHA384"),
    ("TLS_AES_128_GCM_SHA256", "TLS13_AES_128_GCM_SHA256"),
    ("TLS_CHACHA20_POLY1305_SHA256", "TLS13_CHACHA20_POLY1305_SHA256"),
    ("ECDHE-ECDSA-AES256-GCM-SHA384", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"),
    ("ECDHE-ECDSA-AES128-GCM-SHA256", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"),
    ("ECDHE-ECDSA-CHACHA20-POLY1305", "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"),
    ("ECDHE-RSA-AES256-GCM-SHA384", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"),
    ("ECDHE-RSA-AES128-GCM-SHA256", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"),
    ("ECDHE-RSA-CHACHA20-POLY1305", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"),
];

fn suite_name(s: &SupportedCipherSuite) -> String {
    format!("{:?}", s.suite())
}

/// Picks the suites of one protocol family from a `:`-separated list (empty: all of them).
fn pick_suites(
    list: &str,
    directive: &'static str,
    tls13: bool,
    all: &[SupportedCipherSuite],
    out: &mut Vec<SupportedCipherSuite>,
) -> Result<(), TlsError> {
    let family: Vec<SupportedCipherSuite> =
        all.iter().copied().filter(|s| matches!(s, SupportedCipherSuite::Tls13(_)) == tls13).collect();
    let words: Vec<&str> = list.split([':', ' ', ',']).filter(|w| !w.is_empty()).collect();
    if words.is_empty() || words.iter().any(|w| w.eq_ignore_ascii_case("DEFAULT")) {
        out.extend(family);
        return Ok(());
    }
    for w in words {
        let rustls_name = NAMES.iter().find(|(n, r)| n.eq_ignore_ascii_case(w) || r.eq_ignore_ascii_case(w));
        let found = rustls_name.and_then(|(_, r)| family.iter().find(|s| suite_name(s) == *r));
        match found {
            Some(s) if !out.iter().any(|o| o.suite() == s.suite()) => out.push(*s),
            Some(_) => {}
            None => {
                let names: Vec<&str> =
                    NAMES.iter().filter(|(n, _)| tls13 == n.starts_with("TLS_")).map(|(n, _)| *n).collect();
                return Err(TlsError::Cipher(w.to_string(), directive, names.join(":")));
            }
        }
    }
    Ok(())
}

/// The ring provider restricted to `tls-ciphers` / `tls-ciphersuites`, and the versions of
/// `tls-protocols`.
fn provider(cfg: &Config) -> Result<(Arc<CryptoProvider>, Vec<&'static SupportedProtocolVersion>), TlsError> {
    let mut versions: Vec<&'static SupportedProtocolVersion> = Vec::new();
    let protocols = cfg.get("tls-protocols").unwrap_or("");
    for w in protocols.split_whitespace() {
        let v = match w.to_ascii_lowercase().as_str() {
            "tlsv1.2" => &rustls::version::TLS12,
            "tlsv1.3" => &rustls::version::TLS13,
            _ => return Err(TlsError::Protocol(w.to_string())),
        };
        if !versions.contains(&v) {
            versions.push(v);
        }
    }
    if versions.is_empty() {
        versions = vec![&rustls::version::TLS13, &rustls::version::TLS12];
    }
    let base = rustls::crypto::ring::default_provider();
    let mut suites = Vec::new();
    pick_suites(
        cfg.get("tls-ciphersuites").unwrap_or(""),
        "tls-ciphersuites",
        true,
        &base.cipher_suites,
        &mut suites,
    )?;
    pick_suites(
        cfg.get("tls-ciphers").unwrap_or(""),
        "tls-ciphers",
        false,
        &base.cipher_suites,
        &mut suites,
    )?;
    let usable = suites.iter().any(|s| versions.iter().any(|v| s.version() == *v));
    if !usable {
        return Err(TlsError::NoSuites);
    }
    Ok((Arc::new(CryptoProvider { cipher_suites: suites, ..base }), versions))
}

fn load_certs(path: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let err = |reason: String| TlsError::Cert { path: path.to_string(), reason };
    let iter = CertificateDer::pem_file_iter(path).map_err(|e| err(e.to_string()))?;
    let certs: Vec<_> = iter.collect::<Result<_, _>>().map_err(|e| err(e.to_string()))?;
    if certs.is_empty() {
        return Err(err("no certificate in file".into()));
    }
    Ok(certs)
}

fn load_key(path: &str) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path)
        .map_err(|e| TlsError::Key { path: path.to_string(), reason: e.to_string() })
}

/// `tls-ca-cert-file` and every certificate file in `tls-ca-cert-dir`; `None` when neither
/// is set.
fn load_roots(cfg: &Config) -> Result<Option<RootCertStore>, TlsError> {
    let file = cfg.get("tls-ca-cert-file").unwrap_or("");
    let dir = cfg.get("tls-ca-cert-dir").unwrap_or("");
    if file.is_empty() && dir.is_empty() {
        return Ok(None);
    }
    let mut roots = RootCertStore::empty();
    if !file.is_empty() {
        for c in load_certs(file).map_err(|e| TlsError::Ca(e.to_string()))? {
            roots.add(c).map_err(|e| TlsError::Ca(format!("{file}: {e}")))?;
        }
    }
    if !dir.is_empty() {
        let entries = std::fs::read_dir(Path::new(dir)).map_err(|e| TlsError::Ca(format!("{dir}: {e}")))?;
        for entry in entries.flatten() {
            // OpenSSL's hashed directories also hold other files: take what parses.
            let Ok(iter) = CertificateDer::pem_file_iter(entry.path()) else { continue };
            for c in iter.flatten() {
                let _ = roots.add(c);
            }
        }
    }
    if roots.is_empty() {
        return Err(TlsError::Ca("no CA certificate found".into()));
    }
    Ok(Some(roots))
}

/// True when any TLS feature is on, so the certificates must load.
pub fn enabled(cfg: &Config) -> bool {
    cfg.get_i64("tls-port") != 0 || cfg.get_bool("tls-cluster") || cfg.get_bool("tls-replication")
}

/// Both configs, from the current directives; `None` when TLS is not enabled.
pub struct Built {
    pub server: Arc<ServerConfig>,
    /// For outgoing links; needs a CA to verify peers (`None` without one).
    pub client: Option<Arc<ClientConfig>>,
}

/// Builds the server and client configs (all files are read now).
pub fn build(cfg: &Config) -> Result<Option<Built>, TlsError> {
    if !enabled(cfg) {
        return Ok(None);
    }
    let cert = cfg.get("tls-cert-file").unwrap_or("");
    let key = cfg.get("tls-key-file").unwrap_or("");
    if cert.is_empty() {
        return Err(TlsError::Missing("tls-cert-file"));
    }
    if key.is_empty() {
        return Err(TlsError::Missing("tls-key-file"));
    }
    let (provider, versions) = provider(cfg)?;
    let roots = load_roots(cfg)?;
    let certs = load_certs(cert)?;
    let pkey = load_key(key)?;

    let builder = ServerConfig::builder_with_provider(provider.clone()).with_protocol_versions(&versions)?;
    let auth = cfg.get("tls-auth-clients").unwrap_or("yes");
    let builder = match (auth, &roots) {
        ("no", _) => builder.with_no_client_auth(),
        (_, None) => return Err(TlsError::NoCa),
        (mode, Some(roots)) => {
            let v = WebPkiClientVerifier::builder_with_provider(Arc::new(roots.clone()), provider.clone());
            let v = if mode == "optional" { v.allow_unauthenticated() } else { v };
            builder.with_client_cert_verifier(v.build().map_err(|e| TlsError::Rustls(e.to_string()))?)
        }
    };
    let mut server = builder.with_single_cert(certs.clone(), pkey.clone_key())?;
    server.session_storage = if cfg.get_bool("tls-session-caching") {
        let size = cfg.get_i64("tls-session-cache-size").max(1) as usize;
        rustls::server::ServerSessionMemoryCache::new(size)
    } else {
        Arc::new(rustls::server::NoServerSessionStorage {})
    };

    // Outgoing links (replication, cluster bus, slot migration) trust the same CA and show
    // `tls-client-cert-file` (or the server certificate) to peers that ask for one.
    let builder = ClientConfig::builder_with_provider(provider).with_protocol_versions(&versions)?;
    let client = match roots {
        None if cfg.get_bool("tls-cluster") || cfg.get_bool("tls-replication") => {
            return Err(TlsError::Missing("tls-ca-cert-file (for outgoing TLS links)"))
        }
        None => None,
        Some(roots) => {
            let builder = builder.with_root_certificates(roots);
            let ccert = cfg.get("tls-client-cert-file").unwrap_or("");
            let ckey = cfg.get("tls-client-key-file").unwrap_or("");
            let client = if ccert.is_empty() {
                builder.with_client_auth_cert(certs, pkey)?
            } else {
                builder.with_client_auth_cert(load_certs(ccert)?, load_key(ckey)?)?
            };
            Some(Arc::new(client))
        }
    };
    Ok(Some(Built { server: Arc::new(server), client }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(extra: &[&str]) -> Config {
        let mut args: Vec<String> = [
            "--tls-port",
            "6380",
            "--tls-cert-file",
            "/nonexistent.crt",
            "--tls-key-file",
            "/nonexistent.key",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        Config::from_args(&args).expect("config")
    }

    fn err(extra: &[&str]) -> String {
        match build(&cfg(extra)) {
            Ok(_) => panic!("{extra:?} was accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn tls_off_builds_nothing() {
        assert!(build(&Config::from_args(&[]).expect("config")).expect("build").is_none());
    }

    #[test]
    fn unsupported_protocols_and_ciphers_are_refused_by_name() {
        assert!(err(&["--tls-protocols", "TLSv1.1 TLSv1.2"]).contains("'TLSv1.1'"));
        let e = err(&["--tls-ciphers", "ECDHE-RSA-AES128-GCM-SHA256:RC4-SHA"]);
        assert!(
            e.contains("'RC4-SHA'") && e.contains("tls-ciphers") && e.contains("ECDHE-RSA-AES256-GCM-SHA384"),
            "{e}"
        );
        let e = err(&["--tls-ciphersuites", "TLS_AES_128_CCM_SHA256"]);
        assert!(e.contains("TLS_AES_128_CCM_SHA256") && e.contains("TLS_CHACHA20_POLY1305_SHA256"), "{e}");
        // Valid names get as far as loading the files.
        let e = err(&["--tls-protocols", "TLSv1.3", "--tls-ciphersuites", "TLS_AES_128_GCM_SHA256"]);
        assert!(e.contains("/nonexistent"), "valid names get as far as loading files: {e}");
    }

    #[test]
    fn known_names_map_onto_rustls_suites() {
        let mut out = Vec::new();
        let all = rustls::crypto::ring::default_provider().cipher_suites;
        pick_suites(
            "ECDHE-RSA-AES128-GCM-SHA256:TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
            "tls-ciphers",
            false,
            &all,
            &mut out,
        )
        .expect("known names");
        let names: Vec<String> = out.iter().map(suite_name).collect();
        assert_eq!(
            names,
            ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"]
        );
        out.clear();
        pick_suites("", "tls-ciphersuites", true, &all, &mut out).expect("default");
        assert_eq!(out.len(), 3);
    }

    #[test]
    fn missing_files_and_ca_are_reported() {
        assert_eq!(
            build(&Config::from_args(&["--tls-port".into(), "1".into()]).expect("config"))
                .err()
                .map(|e| e.to_string()),
            Some("tls-cert-file must be specified when TLS is enabled".into())
        );
        assert!(err(&[]).contains("/nonexistent"));
    }
}
