//! Events from the poller: readiness of client sockets, new connections and signals. Methods
//! of [`Loop`] over the server state and clients they are given, so the executor's loop and
//! the loop a busy script runs (see `busy`) share them.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;

use mio::{Events, Interest, Token};
use slab::Slab;

use super::{Loop, LISTENER_BASE, PROTECTED_MODE_MSG, SIGNALS, WAKER};
use crate::exec::client::{Client, ClientState};
use crate::exec::server::{Server, Shutdown};
use crate::net::{ConnIo, ReadGate};
use crate::protocol::Limits;

impl Loop {
    pub(super) fn handle_events(&mut self, events: &Events, srv: &mut Server, clients: &mut Slab<Client>) {
        for ev in events.iter() {
            match ev.token() {
                WAKER => {}
                SIGNALS => self.on_signal(srv),
                Token(t) if t >= LISTENER_BASE => self.accept(t - LISTENER_BASE, srv, clients),
                Token(t) => {
                    if let Some(c) = clients.get_mut(t) {
                        if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                            c.readable = true;
                        }
                        if ev.is_read_closed() || ev.is_error() {
                            c.peer_hup = true;
                        }
                        if ev.is_writable() || ev.is_write_closed() {
                            c.writable = true;
                        }
                        if !c.queued {
                            c.queued = true;
                            self.ready.push(t);
                        }
                    }
                }
            }
        }
    }

    fn on_signal(&mut self, srv: &mut Server) {
        let mut buf = [0u8; 16];
        use std::io::Read;
        while let Ok(n) = self.signals.read(&mut buf) {
            if n == 0 {
                break;
            }
        }
        log::warn!("Received SIGTERM/SIGINT scheduling shutdown...");
        srv.shutdown = Some(Shutdown::Signal("SIGTERM"));
    }

    fn accept(&mut self, li: usize, srv: &mut Server, clients: &mut Slab<Client>) {
        loop {
            let Some(listener) = self.listeners.get(li) else {
                return;
            };
            let (stream, peer) = match listener.accept() {
                Ok(x) => x,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::warn!("Accepting client connection: {e}");
                    return;
                }
            };
            let tls = if li >= self.plain_listeners {
                match srv.tls.clone().map(rustls::ServerConnection::new) {
                    Some(Ok(conn)) => Some(rustls::Connection::Server(conn)),
                    _ => {
                        log::warn!("Accepting TLS connection from {peer}: TLS is not configured");
                        continue;
                    }
                }
            } else {
                None
            };
            self.add_client(stream, peer, tls, srv, clients);
        }
    }

    fn add_client(
        &mut self,
        mut stream: mio::net::TcpStream,
        peer: SocketAddr,
        tls: Option<rustls::Connection>,
        srv: &mut Server,
        clients: &mut Slab<Client>,
    ) {
        let _ = stream.set_nodelay(true);
        let auth_required = srv.acl.auth_required();
        let maxclients = srv.config.get_i64("maxclients") as usize;
        if clients.len() >= maxclients {
            use std::io::Write;
            let _ = stream.write(b"-ERR max number of clients reached\r\n");
            srv.stats.rejected_connections += 1;
            return;
        }
        if srv.config.get_bool("protected-mode")
            && srv.acl.user(crate::acl::DEFAULT_USER).nopass
            && !peer.ip().is_loopback()
        {
            use std::io::Write;
            let _ = stream.write(PROTECTED_MODE_MSG.as_bytes());
            srv.stats.rejected_connections += 1;
            return;
        }
        let gate = read_gate(srv, auth_required);
        let entry = clients.vacant_entry();
        let token = entry.key();
        if let Err(e) =
            self.registry.register(&mut stream, Token(token), Interest::READABLE | Interest::WRITABLE)
        {
            log::warn!("Registering client connection: {e}");
            return;
        }
        let fd = stream.as_raw_fd();
        let mut io = Box::new(ConnIo::new(stream, peer, gate));
        let id = srv.next_client_id;
        if let Some(conn) = tls {
            // Only the session object is made here; the handshake itself runs in the
            // connection's read and write jobs, on an I/O thread when one is active.
            io.start_tls(conn);
            let timeout = srv.config.get_i64("tls-handshake-timeout").max(1) as u64;
            let deadline = std::time::Instant::now() + std::time::Duration::from_millis(timeout);
            self.handshaking.push_back((token, id, deadline));
        }
        srv.next_client_id += 1;
        let st = ClientState::new(id, peer.to_string(), io.local.to_string(), fd, !auth_required);
        entry.insert(Client::new(st, io));
        srv.stats.total_connections += 1;
        log::debug!("Accepted {peer}");
    }
}

/// The limits the parser applies to a client's requests.
pub(super) fn read_gate(srv: &Server, auth_required: bool) -> ReadGate {
    ReadGate {
        limits: Limits { max_bulk_len: srv.config.get_i64("proto-max-bulk-len").max(0) as usize },
        auth_required,
        qbuf_limit: srv.config.get_i64("client-query-buffer-limit").max(0) as usize,
        cluster: srv.config.get_bool("cluster-enabled"),
    }
}
