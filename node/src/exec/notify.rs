//! Keyspace notifications (`notify-keyspace-events`): commands report what they did to which
//! key with `Ctx::notify`; this module publishes that as Valkey's `notifyKeyspaceEvent` does,
//! `<event>` on `__keyspace@<db>__:<key>` (flag `K`) and `<key>` on `__keyevent@<db>__:<event>`
//! (flag `E`), when the event's class letter is enabled.
//!
//! Expired keys are found inside the keyspace (lazy expiry on lookup, the active cycle), which
//! does no pub/sub: while `expired` events are on, each database records the names it expired
//! and the executor publishes them with [`flush_expired`] — before any other event of the
//! command that ran into them, and after each command and each active-expiry cycle.

use std::time::Instant;

use slab::Slab;

use super::client::Client;
use super::pubsub::Fanout;
use super::server::Server;
use super::Ctx;
use crate::config::pubsub::{class_flag, flag};
use crate::protocol::Reply;

/// Event classes, as the letters of `notify-keyspace-events`.
pub mod class {
    pub const GENERIC: char = 'g';
    pub const STRING: char = '$';
    pub const LIST: char = 'l';
    pub const SET: char = 's';
    pub const HASH: char = 'h';
    pub const ZSET: char = 'z';
    pub const EXPIRED: char = 'x';
    pub const EVICTED: char = 'e';
    pub const STREAM: char = 't';
    pub const KEY_MISS: char = 'm';
    pub const NEW: char = 'n';
}

/// Publishes a keyspace event (called only when notifications are enabled).
pub fn emit(ctx: &mut Ctx, class: char, event: &str, key: &[u8]) {
    let me = ctx.me;
    let db = ctx.clients[me].st.db;
    flush_expired(ctx.srv, ctx.clients, Some((me, &mut *ctx.out)));
    let Some(bit) = class_flag(class) else { return };
    publish_event(ctx.srv, ctx.clients, Some((me, &mut *ctx.out)), db, bit, event, key);
}

/// As [`emit`], for an event in database `db` rather than the client's (COPY ... DB, MOVE).
pub fn emit_in(ctx: &mut Ctx, db: usize, class: char, event: &str, key: &[u8]) {
    if ctx.srv.notify_flags == 0 {
        return;
    }
    let me = ctx.me;
    flush_expired(ctx.srv, ctx.clients, Some((me, &mut *ctx.out)));
    let Some(bit) = class_flag(class) else { return };
    publish_event(ctx.srv, ctx.clients, Some((me, &mut *ctx.out)), db, bit, event, key);
}

/// Publishes the `expired` events of keys the databases expired since the last call. `me` is
/// the running client, if any (its own messages go into its reply buffer).
pub fn flush_expired(srv: &mut Server, clients: &mut Slab<Client>, mut me: Option<(usize, &mut Reply)>) {
    for db in 0..srv.dbs.len() {
        let keys = match srv.dbs[db].expired_log.as_mut() {
            Some(log) if !log.is_empty() => std::mem::take(log),
            _ => continue,
        };
        for key in keys {
            let me = me.as_mut().map(|(i, r)| (*i, &mut **r));
            publish_event(srv, clients, me, db, flag::EXPIRED, "expired", &key);
        }
    }
    for db in 0..srv.dbs.len() {
        if srv.dbs[db].hexpired_log.is_empty() {
            continue;
        }
        let keys = std::mem::take(&mut srv.dbs[db].hexpired_log);
        let bit = class_flag(class::HASH).unwrap_or(0);
        let del = class_flag(class::GENERIC).unwrap_or(0);
        for (key, emptied) in keys {
            let m = me.as_mut().map(|(i, r)| (*i, &mut **r));
            publish_event(srv, clients, m, db, bit, "hexpired", &key);
            if emptied {
                let me = me.as_mut().map(|(i, r)| (*i, &mut **r));
                publish_event(srv, clients, me, db, del, "del", &key);
            }
        }
    }
}

/// Valkey's `notifyKeyspaceEvent` for one event of class `bit` in database `db`.
pub fn publish_event(
    srv: &mut Server,
    clients: &mut Slab<Client>,
    me: Option<(usize, &mut Reply)>,
    db: usize,
    bit: u32,
    event: &str,
    key: &[u8],
) {
    let flags = srv.notify_flags;
    if flags & bit == 0 || flags & (flag::KEYSPACE | flag::KEYEVENT) == 0 {
        return;
    }
    let mut fan =
        Fanout { ps: &mut srv.pubsub, clients, me, now: Instant::now(), kill_pending: &mut srv.kill_pending };
    let mut itoa = itoa::Buffer::new();
    let db = itoa.format(db).as_bytes();
    if flags & flag::KEYSPACE != 0 {
        let mut chan = Vec::with_capacity(16 + key.len());
        chan.extend_from_slice(b"__keyspace@");
        chan.extend_from_slice(db);
        chan.extend_from_slice(b"__:");
        chan.extend_from_slice(key);
        fan.publish(&chan, event.as_bytes(), false);
    }
    if flags & flag::KEYEVENT != 0 {
        let mut chan = Vec::with_capacity(16 + event.len());
        chan.extend_from_slice(b"__keyevent@");
        chan.extend_from_slice(db);
        chan.extend_from_slice(b"__:");
        chan.extend_from_slice(event.as_bytes());
        fan.publish(&chan, key, false);
    }
}
