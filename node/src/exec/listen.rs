//! The node's listening sockets, from `bind` and `port` (Valkey's syntax: a leading `-` makes
//! an address optional, `*` means every IPv4 address). Kept apart from the executor's loop
//! because it runs once, at start-up, and owns the socket options that decide whether a
//! restarted node gets its port back.

use std::io;
use std::net::SocketAddr;

use mio::net::TcpListener;

use super::executor::StartError;
use super::server::Server;

/// Opens one non-blocking listening socket with `SO_REUSEADDR`, so that a restarted node takes
/// its port back while the old connections linger in FIN_WAIT/TIME_WAIT (accepted sockets
/// inherit the flag). On an ephemeral bind (`port 0`) the flag is set only after `bind`: set
/// before, it lets the kernel hand one port to two processes that bind at the same moment,
/// before either has called `listen`.
fn listen_tcp(addr: SocketAddr, backlog: i32) -> io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    let ephemeral = addr.port() == 0;
    if !ephemeral {
        socket.set_reuse_address(true)?;
    }
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    if ephemeral {
        socket.set_reuse_address(true)?;
    }
    socket.listen(backlog)?;
    Ok(TcpListener::from_std(socket.into()))
}

/// Binds the plain listeners (`port`) and then the TLS ones (`tls-port`); returns them and
/// how many of the first are plain. With a `tls-port`, `port 0` serves TLS only, as in Valkey;
/// without one, `port 0` picks a free port (Shoal's tests rely on it).
pub(super) fn bind_all(srv: &mut Server) -> Result<(Vec<TcpListener>, usize), StartError> {
    let tls_port = srv.config.get_i64("tls-port") as u16;
    let port = srv.config.get_i64("port") as u16;
    let mut listeners = Vec::new();
    if port != 0 || tls_port == 0 {
        let (mut l, p) = bind_port(srv, port)?;
        srv.port = p;
        listeners.append(&mut l);
    }
    let plain = listeners.len();
    if tls_port != 0 {
        let (mut l, p) = bind_port(srv, tls_port)?;
        srv.tls_port = p;
        listeners.append(&mut l);
    }
    Ok((listeners, plain))
}

/// Binds every address of `bind` on one port; port 0 picks one free port for all of them.
fn bind_port(srv: &Server, mut port: u16) -> Result<(Vec<TcpListener>, u16), StartError> {
    let bind = srv.config.get("bind").unwrap_or("127.0.0.1").to_string();
    let backlog = srv.config.get_i64("tcp-backlog").clamp(1, i32::MAX as i64) as i32;
    let mut listeners = Vec::new();
    for word in bind.split_whitespace() {
        let (optional, host) = match word.strip_prefix('-') {
            Some(h) => (true, h),
            None => (false, word),
        };
        let host = if host == "*" { "0.0.0.0" } else { host };
        let ip: std::net::IpAddr = match host.parse() {
            Ok(ip) => ip,
            Err(_) if optional => continue,
            Err(_) => {
                return Err(StartError::Bind {
                    addr: host.to_string(),
                    source: io::Error::new(io::ErrorKind::InvalidInput, "not an IP address"),
                })
            }
        };
        let addr = SocketAddr::new(ip, port);
        match listen_tcp(addr, backlog) {
            Ok(l) => {
                if port == 0 {
                    port = l.local_addr()?.port();
                }
                listeners.push(l);
            }
            Err(_) if optional => continue,
            Err(source) => return Err(StartError::Bind { addr: addr.to_string(), source }),
        }
    }
    if listeners.is_empty() {
        return Err(StartError::NoListener(bind));
    }
    Ok((listeners, port))
}
