//! The context a command handler runs in: the server, every client (for CLIENT LIST/KILL),
//! which one is running the command, and where its reply goes.

use bytes::Bytes;
use slab::Slab;

use super::client::{Client, ClientState};
use super::server::Server;
use crate::command::meta::CommandMeta;
use crate::keyspace::{Db, EntryMut};
use crate::protocol::Reply;

/// `-WRONGTYPE` as Valkey words it.
pub const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

/// Everything a handler may touch.
pub struct Ctx<'a> {
    pub srv: &'a mut Server,
    pub clients: &'a mut Slab<Client>,
    /// The running client's slab index.
    pub me: usize,
    pub out: &'a mut Reply,
    /// The command being run (for subcommands, the subcommand's entry).
    pub cmd: &'static CommandMeta,
    /// Full name as CLIENT LIST and errors show it (`config|get`).
    pub cmd_name: &'a str,
    /// Wall clock for expiry decisions, fixed for the whole command as Valkey does.
    pub now_ms: i64,
}

impl Ctx<'_> {
    /// Reports a keyspace event (`hset`, `lpush`, `del`, ...) of class `class` (see
    /// `notify::class`) on `key`. Costs one comparison while notifications are off.
    pub fn notify(&mut self, class: char, event: &str, key: &[u8]) {
        if self.srv.notify_flags != 0 {
            super::notify::emit(self, class, event, key);
        }
    }

    /// The running client's state.
    pub fn client(&mut self) -> &mut ClientState {
        &mut self.clients[self.me].st
    }

    /// The running client's selected database.
    pub fn db(&mut self) -> &mut Db {
        let i = self.clients[self.me].st.db;
        &mut self.srv.dbs[i]
    }

    /// Looks a key up for reading: lazy expiry, access time, hit/miss statistics.
    pub fn lookup_read(&mut self, key: &[u8]) -> Option<EntryMut<'_>> {
        let touch = !self.clients[self.me].st.no_touch;
        let i = self.clients[self.me].st.db;
        let clock = self.srv.lru_clock();
        let now = self.now_ms;
        let Server { dbs, stats, .. } = &mut *self.srv;
        match dbs[i].get(key, now, clock, touch) {
            Some(e) => {
                stats.keyspace_hits += 1;
                Some(e)
            }
            None => {
                stats.keyspace_misses += 1;
                None
            }
        }
    }

    /// Looks a key up for writing: lazy expiry and access time, no hit/miss statistics.
    pub fn lookup_write(&mut self, key: &[u8]) -> Option<EntryMut<'_>> {
        let touch = !self.clients[self.me].st.no_touch;
        let i = self.clients[self.me].st.db;
        let clock = self.srv.lru_clock();
        let now = self.now_ms;
        self.srv.dbs[i].get(key, now, clock, touch)
    }

    /// True if the key exists (no statistics, no access-time update).
    pub fn exists(&mut self, key: &[u8]) -> bool {
        let i = self.clients[self.me].st.db;
        let now = self.now_ms;
        self.srv.dbs[i].contains(key, now)
    }

    /// The LRU clock now.
    pub fn clock(&self) -> u32 {
        self.srv.lru_clock()
    }

    /// Replies `-ERR wrong number of arguments for '<cmd>' command`.
    pub fn wrong_arity(&mut self) {
        let msg = format!("wrong number of arguments for '{}' command", self.cmd_name);
        self.out.err(&msg);
    }

    /// Replies `-ERR syntax error`.
    pub fn syntax_error(&mut self) {
        self.out.err("syntax error");
    }

    /// Replies `-WRONGTYPE ...`.
    pub fn wrong_type(&mut self) {
        self.out.error(WRONGTYPE);
    }

    /// Replies `-ERR value is not an integer or out of range`.
    pub fn not_integer(&mut self) {
        self.out.err("value is not an integer or out of range");
    }

    /// Drops a value off the executor thread.
    pub fn free_later<T: Send + 'static>(&mut self, value: T) {
        self.srv.free_later(value);
    }

    /// Parses an integer argument, replying the standard error on failure.
    pub fn arg_i64(&mut self, arg: &Bytes) -> Option<i64> {
        let v = crate::util::parse_i64(arg);
        if v.is_none() {
            self.not_integer();
        }
        v
    }
}
