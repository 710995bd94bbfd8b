//! In-process harness for command unit tests: a server and clients without sockets, driven
//! through the same dispatcher as the event loop.

use bytes::Bytes;
use slab::Slab;

use super::client::{Client, ClientState};
use super::server::Server;
use crate::config::Config;
use crate::protocol::Reply;

/// A node without a network.
pub struct Harness {
    pub srv: Server,
    pub clients: Slab<Client>,
    reply: Reply,
}

impl Default for Harness {
    fn default() -> Self {
        Harness::new(Config::default())
    }
}

impl Harness {
    pub fn new(config: Config) -> Harness {
        let mut srv = Server::new(config, crate::command::registry(), Default::default());
        let authed = !srv.acl.auth_required();
        let mut clients = Slab::new();
        let st = ClientState::new(1, "127.0.0.1:1".into(), "127.0.0.1:6379".into(), -1, authed);
        srv.next_client_id = 2;
        clients.insert(Client::detached(st));
        Harness { srv, clients, reply: Reply::new(false) }
    }

    /// Adds another client; returns its index.
    pub fn add_client(&mut self) -> usize {
        let id = self.srv.next_client_id;
        self.srv.next_client_id += 1;
        let st = ClientState::new(id, format!("127.0.0.1:{id}"), "127.0.0.1:6379".into(), -1, true);
        self.clients.insert(Client::detached(st))
    }

    /// Runs a command as client `idx` and returns the raw RESP reply.
    pub fn run_as(&mut self, idx: usize, args: &[&[u8]]) -> Vec<u8> {
        let args: Vec<Bytes> = args.iter().map(|a| Bytes::copy_from_slice(a)).collect();
        self.reply.resp3 = self.clients[idx].st.resp3;
        self.srv.tick();
        super::dispatch::dispatch(&mut self.srv, &mut self.clients, &mut self.reply, idx, &args);
        // As the executor: serve clients blocked on keys this command made ready.
        super::blocking::serve(&mut self.srv, &mut self.clients);
        self.srv.blocking.woken.clear();
        self.reply.buf.split().to_vec()
    }

    /// Takes the replies queued for client `idx` by other clients' commands (served blocked
    /// commands), as one string.
    pub fn take_pending(&mut self, idx: usize) -> String {
        let out: Vec<u8> = self.clients[idx].pending_out.drain(..).flat_map(|b| b.to_vec()).collect();
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Runs a command given as one string split on spaces, as the first client.
    pub fn run(&mut self, line: &str) -> String {
        let words: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
        String::from_utf8_lossy(&self.run_as(0, &words)).into_owned()
    }
}
