//! The one outgoing connector for node-to-node links: the replica's link to its primary
//! (`tls-replication`), the cluster bus and the slot-migration worker (`tls-cluster`). Each
//! runs on its own thread with a blocking `std` socket; over TLS the socket is wrapped in a
//! rustls client session that verifies the peer against `tls-ca-cert-file` and presents
//! `tls-client-cert-file` (or the node's own certificate) to peers that ask for one.
//!
//! The settings are process-wide (set by the executor at start and on every CONFIG SET of a
//! `tls-*` directive) so that each dial point changes only at its connect call: the threads
//! that dial are started from several places and outlive any one configuration.

use std::io::{self, IoSlice, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::{ClientConfig, ClientConnection, StreamOwned};
use rustls_pki_types::ServerName;

/// Which setting decides whether a link is encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// `tls-replication`.
    Replication,
    /// `tls-cluster`.
    Cluster,
}

#[derive(Default)]
struct Outgoing {
    client: Option<Arc<ClientConfig>>,
    cluster: bool,
    replication: bool,
}

static OUTGOING: RwLock<Option<Outgoing>> = RwLock::new(None);

/// Installs the outgoing TLS settings (`client` is `None` without a CA to verify peers).
pub fn configure(client: Option<Arc<ClientConfig>>, cluster: bool, replication: bool) {
    let mut g = OUTGOING.write().unwrap_or_else(|e| e.into_inner());
    *g = Some(Outgoing { client, cluster, replication });
}

/// True when links of this kind are encrypted.
pub fn tls_for(kind: Link) -> bool {
    let g = OUTGOING.read().unwrap_or_else(|e| e.into_inner());
    g.as_ref().is_some_and(|o| match kind {
        Link::Cluster => o.cluster,
        Link::Replication => o.replication,
    })
}

fn client_for(kind: Link) -> Option<Arc<ClientConfig>> {
    let g = OUTGOING.read().unwrap_or_else(|e| e.into_inner());
    let o = g.as_ref()?;
    let on = match kind {
        Link::Cluster => o.cluster,
        Link::Replication => o.replication,
    };
    if on {
        o.client.clone()
    } else {
        None
    }
}

/// A connected link: a plain socket or a TLS session over one.
pub enum Dialed {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Dialed {
    /// The socket underneath (timeouts, non-blocking, addresses).
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Dialed::Plain(s) => s,
            Dialed::Tls(t) => &t.sock,
        }
    }

    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.tcp().set_read_timeout(t)
    }

    pub fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.tcp().set_write_timeout(t)
    }

    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.tcp().set_nodelay(on)
    }

    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        self.tcp().set_nonblocking(on)
    }

    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.tcp().peer_addr()
    }

    /// The socket and, over TLS, the session (which may hold plaintext already decrypted:
    /// whoever takes it over must drain it before waiting for the socket).
    pub fn into_parts(self) -> (TcpStream, Option<ClientConnection>) {
        match self {
            Dialed::Plain(s) => (s, None),
            Dialed::Tls(t) => {
                let StreamOwned { conn, sock } = *t;
                (sock, Some(conn))
            }
        }
    }
}

impl Read for Dialed {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Dialed::Plain(s) => s.read(buf),
            Dialed::Tls(t) => t.read(buf),
        }
    }
}

impl Write for Dialed {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Dialed::Plain(s) => s.write(buf),
            Dialed::Tls(t) => t.write(buf),
        }
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Dialed::Plain(s) => s.write_vectored(bufs),
            Dialed::Tls(t) => t.write_vectored(bufs),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Dialed::Plain(s) => s.flush(),
            Dialed::Tls(t) => t.flush(),
        }
    }
}

/// Connects to `addr` (and, for TLS, verifies the peer as `host`); the handshake completes
/// here, bounded by `timeout`, so a failure names the peer rather than a later read.
pub fn connect(addr: &SocketAddr, host: &str, timeout: Duration, kind: Link) -> io::Result<Dialed> {
    let sock = TcpStream::connect_timeout(addr, timeout)?;
    let Some(cfg) = client_for(kind) else {
        if tls_for(kind) {
            return Err(io::Error::other("TLS link requested but no tls-ca-cert-file to verify peers"));
        }
        return Ok(Dialed::Plain(sock));
    };
    let name = ServerName::try_from(host.trim_start_matches('[').trim_end_matches(']').to_string())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("TLS server name {host:?}: {e}")))?;
    let mut conn = ClientConnection::new(cfg, name).map_err(io::Error::other)?;
    sock.set_read_timeout(Some(timeout))?;
    sock.set_write_timeout(Some(timeout))?;
    let mut s = sock;
    while conn.is_handshaking() {
        conn.complete_io(&mut s)
            .map_err(|e| io::Error::new(e.kind(), format!("TLS handshake with {addr}: {e}")))?;
    }
    Ok(Dialed::Tls(Box::new(StreamOwned::new(conn, s))))
}

/// [`connect`] for a `host:port` string (`[v6]:port` too), trying each address it resolves to.
pub fn connect_addr(addr: &str, timeout: Duration, kind: Link) -> io::Result<Dialed> {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    let mut last = io::Error::new(io::ErrorKind::NotFound, format!("no address for {addr}"));
    for a in addr.to_socket_addrs()? {
        match connect(&a, host, timeout, kind) {
            Ok(d) => return Ok(d),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// The port a peer is reached at for cluster links and in cluster replies: its TLS port
/// when `tls-cluster` is on and the topology names one.
pub fn cluster_port(port: u16, tls_port: Option<u16>) -> u16 {
    match tls_port {
        Some(t) if t != 0 && tls_for(Link::Cluster) => t,
        _ => port,
    }
}
