//! The replica's link to its primary, executor half: once the link thread has done the
//! handshake and the payload, the primary's socket is registered as a client flagged `master`
//! so the I/O threads read and parse the replication stream like any other connection (see
//! `replication::replica`). A child module of the executor, reaching its private state.

use std::os::fd::AsRawFd;

use mio::{Interest, Token};

use super::Executor;
use crate::exec::client::{Client, ClientState};
use crate::net::ConnIo;

impl Executor {
    /// Registers the primary's socket as a client flagged `master` (see `replication::replica`),
    /// with the stream bytes the link had already read.
    pub(super) fn attach_master(&mut self, attach: crate::replication::replica::Attach) {
        let crate::replication::replica::Attach { socket, leftover } = attach;
        let Ok(peer) = socket.peer_addr() else {
            log::warn!("The primary's connection closed before it could be served");
            crate::replication::replica::on_close(&mut self.srv, usize::MAX, 0);
            return;
        };
        let (socket, tls) = socket.into_parts();
        let mut stream = mio::net::TcpStream::from_std(socket);
        let mut gate = super::events::read_gate(&self.srv, false);
        // The primary's stream is trusted and unbounded (Valkey exempts it from the limits).
        gate.qbuf_limit = usize::MAX;
        let entry = self.clients.vacant_entry();
        let token = entry.key();
        if let Err(e) =
            self.lp.registry.register(&mut stream, Token(token), Interest::READABLE | Interest::WRITABLE)
        {
            log::warn!("Registering the primary's connection: {e}");
            return;
        }
        let fd = stream.as_raw_fd();
        let mut io = Box::new(ConnIo::new(stream, peer, gate));
        io.preload(&leftover);
        if let Some(conn) = tls {
            // The session may already hold stream bytes it decrypted past the payload: the
            // client starts `readable` (see `Client::new`), so its first read job drains them.
            io.start_tls(rustls::Connection::Client(conn));
        }
        let id = self.srv.next_client_id;
        self.srv.next_client_id += 1;
        let mut st = ClientState::new(id, peer.to_string(), io.local.to_string(), fd, true);
        st.master = true;
        entry.insert(Client::new(st, io));
        crate::replication::replica::attached(&mut self.srv, &mut self.clients, token);
        if let Some(c) = self.clients.get_mut(token) {
            if !c.queued {
                c.queued = true;
                self.lp.ready.push(token);
            }
        }
    }
}
