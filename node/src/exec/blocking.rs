//! Clients blocked on keys (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP; later BZPOPMIN,
//! BZPOPMAX, BZMPOP; XREAD and XREADGROUP), as Valkey's `blocked.c`, without ever making the
//! executor wait. A stream key that disappears answers its XREADGROUP waiters with
//! `-UNBLOCKED` (flushes signal every blocked key for that).
//!
//! A blocking command that finds nothing to serve calls [`block`]: the client is parked with
//! its command (handler and arguments), its keys and its deadline, and gets no reply. A parked
//! client's further pipelined requests stay unexecuted (the executor checks
//! `ClientState::blocked`) while its socket is still read, so a disconnect is noticed.
//!
//! Anything that may make a key servable calls [`signal_key_ready`] (pushes do; the dispatcher
//! also signals every key of every write command while anyone is blocked, which covers RENAME,
//! COPY, RESTORE, SMOVE-like moves and commands of other families). After each top-level
//! command (so after EXEC for a transaction) the executor calls [`serve`], Valkey's
//! `handleClientsBlockedOnKeys`: for every ready key, the clients blocked on it are retried in
//! FIFO order by running their command again with `retrying` set; a command that still cannot
//! be served calls [`block`] again, which then only reports "still blocked" and keeps its
//! place. Serving one key may make another ready (BLMOVE pushes to its destination): the loop
//! runs until no key is ready.
//!
//! Invariants: a client is in `waiters` iff `ClientState::blocked` is set; every key of a
//! waiter has the waiter's slab index in its FIFO; a slab index is only trusted together with
//! the client id recorded when it blocked (slab slots are reused).
//!
//! Adding a blocking command of another type takes: a [`Kind`] variant (the value type that can
//! serve it), a handler that tries to serve and otherwise calls [`block`], and its retry
//! behaviour falls out of running the same handler again.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use slab::Slab;

use super::client::Client;
use super::ctx::Ctx;
use super::server::Server;
use crate::cluster::redirect::Redirect;
use crate::command::meta::CommandMeta;
use crate::command::Handler;
use crate::keyspace::node::ValueRef;
use crate::protocol::Reply;

/// Which value type wakes a blocked client (Valkey's `bstate.btype`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    List,
    ZSet,
    Stream,
}

impl Kind {
    fn serves(self, v: &ValueRef<'_>) -> bool {
        matches!(
            (self, v),
            (Kind::List, ValueRef::List(_))
                | (Kind::ZSet, ValueRef::ZSet(_))
                | (Kind::Stream, ValueRef::Stream(_))
        )
    }
}

/// A parked client and the command it will retry.
struct Waiter {
    id: u64,
    db: usize,
    keys: Vec<Bytes>,
    args: Vec<Bytes>,
    deadline: Option<Instant>,
    kind: Kind,
    handler: Handler,
    meta: &'static CommandMeta,
    cmd_name: String,
}

/// Blocked clients of one node (lives in `Server::blocking`).
#[derive(Default)]
pub struct Blocking {
    /// Per database: key -> slab indexes of the clients blocked on it, oldest first.
    by_key: Vec<HashMap<Bytes, VecDeque<usize>>>,
    /// Slab index -> what it is blocked on.
    waiters: HashMap<usize, Waiter>,
    /// Keys signalled since the last `serve`, in signal order, without repeats.
    ready: Vec<(usize, Bytes)>,
    ready_set: HashSet<(usize, Bytes)>,
    /// (deadline, client id, slab index) of clients with a timeout.
    timeouts: BTreeSet<(Instant, u64, usize)>,
    /// Set while EXEC runs its queue (by the transaction family): blocking commands then act
    /// as if their timeout had already passed, as Valkey's `CLIENT_DENY_BLOCKING`.
    pub deny_blocking: bool,
    /// A blocked command is being retried by `serve`.
    retrying: bool,
    /// The retried command found nothing again.
    still_blocked: bool,
    /// Clients unblocked since the executor last looked: their replies are queued and their
    /// pipelined requests may run.
    pub woken: Vec<usize>,
}

/// What [`block`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blocked {
    /// The client is parked (or stays parked while retried): reply nothing.
    Yes,
    /// Blocking is not allowed here (inside MULTI/EXEC): reply as on timeout.
    Denied,
}

impl Blocking {
    /// Clients blocked right now (INFO `blocked_clients`).
    pub fn blocked_clients(&self) -> usize {
        self.waiters.len()
    }

    /// Distinct keys with at least one blocked client (INFO `total_blocking_keys`).
    pub fn blocking_keys(&self) -> usize {
        self.by_key.iter().map(HashMap::len).sum()
    }

    /// True if any client is blocked.
    pub fn any(&self) -> bool {
        !self.waiters.is_empty()
    }

    /// True if keys were signalled and `serve` has work.
    pub fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    /// The earliest deadline of a blocked client.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.timeouts.first().map(|t| t.0)
    }

    /// True if the slab index holds a blocked client.
    pub fn is_blocked(&self, idx: usize) -> bool {
        self.waiters.contains_key(&idx)
    }

    /// Forgets a client (disconnect, kill, unblock, served). Returns true if it was blocked.
    pub fn remove_client(&mut self, idx: usize) -> bool {
        let Some(w) = self.waiters.remove(&idx) else { return false };
        if let Some(d) = w.deadline {
            self.timeouts.remove(&(d, w.id, idx));
        }
        if let Some(map) = self.by_key.get_mut(w.db) {
            for k in &w.keys {
                if let Some(q) = map.get_mut(k) {
                    q.retain(|&i| i != idx);
                    if q.is_empty() {
                        map.remove(k);
                    }
                }
            }
        }
        true
    }
}

/// Parses a blocking timeout in seconds (Valkey's `getTimeoutFromObjectOrReply` with
/// `UNIT_SECONDS`), replying the error on failure. `Some(None)` is "block forever".
pub fn parse_timeout(ctx: &mut Ctx, arg: &[u8]) -> Option<Option<Instant>> {
    let secs = match parse_float(arg) {
        Some(v) => v,
        None => {
            ctx.out.err("timeout is not a float or out of range");
            return None;
        }
    };
    let ms = secs * 1000.0;
    if ms > i64::MAX as f64 {
        ctx.out.err("timeout is out of range");
        return None;
    }
    let ms = ms.ceil();
    if ms < 0.0 {
        ctx.out.err("timeout is negative");
        return None;
    }
    if ms == 0.0 {
        return Some(None);
    }
    if ms as i64 > i64::MAX - ctx.now_ms {
        ctx.out.err("timeout is out of range");
        return None;
    }
    // A deadline past what `Instant` can hold is forever in practice.
    Some(ctx.srv.now.checked_add(Duration::from_millis(ms as u64)))
}

/// `string2ld`: the whole argument is a number as `strtold` reads it (decimal or hexadecimal,
/// `inf`), without leading space or NaN, shorter than 5 KiB.
fn parse_float(arg: &[u8]) -> Option<f64> {
    if arg.is_empty() || arg.len() >= 5 * 1024 || arg[0].is_ascii_whitespace() {
        return None;
    }
    let s = std::str::from_utf8(arg).ok()?;
    let (neg, body) = match s.as_bytes()[0] {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = body.to_ascii_lowercase();
    let v = if let Some(hex) = lower.strip_prefix("0x") {
        parse_hex_float(hex)?
    } else if lower.starts_with("nan") || lower.starts_with(['+', '-']) {
        return None;
    } else {
        lower.parse::<f64>().ok()?
    };
    Some(if neg { -v } else { v })
}

/// The part of a C hexadecimal float after `0x`: digits, an optional fraction, an optional
/// binary exponent (`p-3`).
fn parse_hex_float(s: &str) -> Option<f64> {
    let (mant, exp) = match s.split_once('p') {
        Some((m, e)) => (m, e.parse::<i32>().ok()?),
        None => (s, 0),
    };
    let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut v = 0f64;
    for c in int.chars() {
        v = v * 16.0 + c.to_digit(16)? as f64;
    }
    let mut scale = 1.0 / 16.0;
    for c in frac.chars() {
        v += c.to_digit(16)? as f64 * scale;
        scale /= 16.0;
    }
    Some(v * 2f64.powi(exp))
}

/// Parks the running client on `keys` until one of them can serve it, its deadline passes,
/// or it is unblocked. See [`Blocked`] for what the caller replies.
pub fn block(
    ctx: &mut Ctx,
    args: &[Bytes],
    keys: &[Bytes],
    deadline: Option<Instant>,
    kind: Kind,
) -> Blocked {
    let handler = ctx_handler(ctx);
    // Inside EXEC (the client's flag) or a harness that asks for it: answer at once.
    let denied = ctx.clients[ctx.me].st.deny_blocking;
    let b = &mut ctx.srv.blocking;
    if b.retrying {
        b.still_blocked = true;
        return Blocked::Yes;
    }
    if b.deny_blocking || denied {
        return Blocked::Denied;
    }
    let idx = ctx.me;
    let st = &mut ctx.clients[idx].st;
    let (id, db) = (st.id, st.db);
    st.blocked = true;
    if b.by_key.len() <= db {
        b.by_key.resize_with(db + 1, HashMap::new);
    }
    // Own copies: the arguments may be slices of a large read buffer that must not stay
    // pinned while the client waits.
    let mut uniq: Vec<Bytes> = Vec::with_capacity(keys.len());
    for k in keys {
        if !uniq.contains(k) {
            let k = Bytes::copy_from_slice(k);
            b.by_key[db].entry(k.clone()).or_default().push_back(idx);
            uniq.push(k);
        }
    }
    if let Some(d) = deadline {
        b.timeouts.insert((d, id, idx));
    }
    b.waiters.insert(
        idx,
        Waiter {
            id,
            db,
            keys: uniq,
            args: args.iter().map(|a| Bytes::copy_from_slice(a)).collect(),
            deadline,
            kind,
            handler,
            meta: ctx.cmd,
            cmd_name: ctx.cmd_name.to_string(),
        },
    );
    Blocked::Yes
}

/// The running command's handler (looked up again: `Ctx` carries only its metadata).
fn ctx_handler(ctx: &Ctx) -> Handler {
    let name = ctx.cmd_name;
    ctx.srv.registry.lookup(name.as_bytes()).and_then(|e| e.handler).unwrap_or(no_handler)
}

fn no_handler(ctx: &mut Ctx, _args: &[Bytes]) {
    ctx.out.err("blocked command has no handler");
}

/// Notes that `key` of database `db` may now serve blocked clients (Valkey's
/// `signalKeyAsReady`). Cheap when nobody is blocked.
pub fn signal_key_ready(srv: &mut Server, db: usize, key: &[u8]) {
    let b = &mut srv.blocking;
    if b.waiters.is_empty() {
        return;
    }
    let Some(map) = b.by_key.get(db) else { return };
    let Some((k, _)) = map.get_key_value(key) else { return };
    let entry = (db, k.clone());
    if b.ready_set.insert(entry.clone()) {
        b.ready.push(entry);
    }
}

/// Serves clients blocked on ready keys (Valkey's `handleClientsBlockedOnKeys`). Clients that
/// got a reply are added to `woken`: the executor must service them (write their replies, run
/// their pipelined requests).
pub fn serve(srv: &mut Server, clients: &mut Slab<Client>) {
    let mut scratch = Reply::new(false);
    while !srv.blocking.ready.is_empty() {
        let ready = std::mem::take(&mut srv.blocking.ready);
        srv.blocking.ready_set.clear();
        for (db, key) in ready {
            serve_key(srv, clients, db, &key, &mut scratch);
        }
    }
}

fn serve_key(srv: &mut Server, clients: &mut Slab<Client>, db: usize, key: &Bytes, scratch: &mut Reply) {
    let Some(queue) = srv.blocking.by_key.get(db).and_then(|m| m.get(key)) else { return };
    // Retry in FIFO order; the queue changes as clients are served, so walk a snapshot.
    let order: Vec<usize> = queue.iter().copied().collect();
    for idx in order {
        let Some(w) = srv.blocking.waiters.get(&idx) else { continue };
        let (kind, meta, handler) = (w.kind, w.meta, w.handler);
        let now_ms = srv.now_ms;
        let clock = srv.lru_clock();
        let servable = match srv.dbs.get_mut(db).and_then(|d| d.get(key, now_ms, clock, false)) {
            Some(e) => kind.serves(&e.value()),
            None => false,
        };
        if !servable {
            if kind == Kind::Stream {
                // The stream is gone (deleted, flushed, overwritten): XREADGROUP waiters are
                // told, as Valkey's `unblockDeletedStreamReadgroupClients`; XREAD ones wait.
                unblock_readgroup_on_missing_stream(srv, clients, db, key, scratch);
            }
            // Nothing left for the clients behind this one either.
            return;
        }
        let Some(c) = clients.get(idx) else {
            srv.blocking.remove_client(idx);
            continue;
        };
        let (args, cmd_name) = (w.args.clone(), w.cmd_name.clone());
        scratch.resp3 = c.st.resp3;
        match crate::cluster::redirect::check(srv, &clients[idx].st, meta, &args) {
            // Its slot is being handed over: try again after the hand-off.
            Some(Redirect::Defer) => continue,
            // The key's slot moved away while the client waited.
            Some(r) if gone(&r) => scratch.error(&r.message().unwrap_or_default()),
            // ASK/TRYAGAIN concern missing keys; this one is here: serve it.
            _ => {
                srv.blocking.retrying = true;
                srv.blocking.still_blocked = false;
                if srv.repl.snapshotting() {
                    crate::replication::primary::before_write(srv, db, meta, &args);
                }
                let changes = if srv.repl.active() { crate::replication::primary::changes(srv) } else { 0 };
                let mut ctx = Ctx {
                    srv: &mut *srv,
                    clients: &mut *clients,
                    me: idx,
                    out: &mut *scratch,
                    cmd: meta,
                    cmd_name: &cmd_name,
                    now_ms,
                };
                handler(&mut ctx, &args);
                srv.blocking.retrying = false;
                if srv.blocking.still_blocked {
                    scratch.truncate(0);
                    continue;
                }
                if srv.repl.active() {
                    let changed = crate::replication::primary::changes(srv) != changes;
                    crate::replication::primary::propagate(srv, db, meta, &args, &scratch.buf, changed);
                }
                if srv.cluster.is_some() {
                    // What it popped or moved in an exporting slot reaches the migration target.
                    crate::cluster::migrate::after_command(srv, db, meta, &args);
                    crate::cluster::slot_stats::after_command(srv, meta, &args, None, scratch.len());
                }
                srv.stats.total_commands += 1;
                if let Some(e) = srv.registry.lookup(cmd_name.as_bytes()) {
                    srv.cmd_stat(e.id).calls += 1;
                }
            }
        }
        finish(srv, clients, idx, scratch);
    }
}

fn unblock_readgroup_on_missing_stream(
    srv: &mut Server,
    clients: &mut Slab<Client>,
    db: usize,
    key: &Bytes,
    scratch: &mut Reply,
) {
    let Some(queue) = srv.blocking.by_key.get(db).and_then(|m| m.get(key)) else { return };
    let readers: Vec<usize> = queue
        .iter()
        .copied()
        .filter(|i| srv.blocking.waiters.get(i).is_some_and(|w| w.meta.name == "xreadgroup"))
        .collect();
    for idx in readers {
        scratch.truncate(0);
        scratch.resp3 = clients.get(idx).is_some_and(|c| c.st.resp3);
        scratch.error("UNBLOCKED the stream key no longer exists");
        finish(srv, clients, idx, scratch);
    }
}

/// Unblocks client `idx` and hands it the reply in `scratch`.
fn finish(srv: &mut Server, clients: &mut Slab<Client>, idx: usize, scratch: &mut Reply) {
    srv.blocking.remove_client(idx);
    let chunk = scratch.buf.split().freeze();
    if let Some(c) = clients.get_mut(idx) {
        c.st.blocked = false;
        srv.stats.net_output_bytes += chunk.len() as u64;
        if !chunk.is_empty() {
            c.send(chunk);
        }
        srv.blocking.woken.push(idx);
    }
}

/// True for redirections that mean "this node will never serve the key" (Valkey's
/// `clusterRedirectBlockedClientIfNeeded`: the slot is unassigned, the cluster is down, or
/// another node owns it).
fn gone(r: &Redirect) -> bool {
    matches!(r, Redirect::Moved { .. } | Redirect::Unbound | Redirect::Down | Redirect::DownReadOnly)
}

/// Cluster mode: unblocks, with the redirection error, clients blocked on keys whose slot
/// this node no longer serves (run from the executor's cron, as Valkey does from its
/// `clientsCron`), so a client blocked on a migrated slot does not wait for a push that can
/// never happen here.
pub fn redirect_moved(srv: &mut Server, clients: &mut Slab<Client>) {
    if srv.cluster.is_none() || srv.blocking.waiters.is_empty() {
        return;
    }
    let mut moved = Vec::new();
    let Server { cluster: Some(cl), config, dbs, blocking, .. } = &mut *srv else { return };
    for (&idx, w) in &blocking.waiters {
        let Some(c) = clients.get(idx) else { continue };
        if let Some(r) =
            crate::cluster::redirect::decide(cl, config, &mut dbs[c.st.db], &c.st, w.meta, &w.args)
        {
            if gone(&r) {
                moved.push((idx, r.message().unwrap_or_default()));
            }
        }
    }
    for (idx, msg) in moved {
        let mut scratch = Reply::new(clients.get(idx).is_some_and(|c| c.st.resp3));
        scratch.error(&msg);
        finish(srv, clients, idx, &mut scratch);
    }
}

/// Replies to clients whose deadline passed (a null array, as Valkey's
/// `replyToBlockedClientTimedOut` for lists and sorted sets) and unblocks them.
pub fn expire(srv: &mut Server, clients: &mut Slab<Client>, now: Instant) {
    let mut scratch = Reply::new(false);
    while let Some(&(deadline, _, idx)) = srv.blocking.timeouts.first() {
        if deadline > now {
            break;
        }
        scratch.resp3 = clients.get(idx).is_some_and(|c| c.st.resp3);
        scratch.null_array();
        finish(srv, clients, idx, &mut scratch);
    }
}

/// CLIENT UNBLOCK: unblocks the client with `id` as if it timed out, or with an
/// `-UNBLOCKED` error. Returns the slab index if it was blocked.
pub fn unblock(srv: &mut Server, clients: &mut Slab<Client>, id: u64, error: bool) -> Option<usize> {
    let idx = srv.blocking.waiters.iter().find(|(_, w)| w.id == id).map(|(&i, _)| i)?;
    let mut scratch = Reply::new(clients.get(idx).is_some_and(|c| c.st.resp3));
    if error {
        scratch.error("UNBLOCKED client unblocked via CLIENT UNBLOCK");
    } else {
        scratch.null_array();
    }
    finish(srv, clients, idx, &mut scratch);
    Some(idx)
}

/// Signals every key argument of a write command (called by the dispatcher while clients are
/// blocked). Commands that write into another database signal there too, as Valkey's `dbAdd`
/// does: MOVE and COPY ... DB into their target database, SWAPDB every blocked key of both
/// databases (Valkey's `scanDatabaseForReadyKeys`).
pub fn signal_command_keys(srv: &mut Server, db: usize, meta: &CommandMeta, args: &[Bytes]) {
    let target_db = |arg: Option<&Bytes>| {
        arg.and_then(|a| crate::util::parse_i64(a)).and_then(|n| usize::try_from(n).ok())
    };
    match meta.name {
        // Streams blocked on keys that a flush removed must hear of it (XREADGROUP).
        "flushdb" | "flushall" => {
            let dbs: Vec<usize> =
                if meta.name == "flushall" { (0..srv.blocking.by_key.len()).collect() } else { vec![db] };
            for d in dbs {
                let keys: Vec<Bytes> =
                    srv.blocking.by_key.get(d).map(|m| m.keys().cloned().collect()).unwrap_or_default();
                for k in keys {
                    signal_key_ready(srv, d, &k);
                }
            }
            return;
        }
        "swapdb" => {
            for d in [target_db(args.get(1)), target_db(args.get(2))].into_iter().flatten() {
                let keys: Vec<Bytes> =
                    srv.blocking.by_key.get(d).map(|m| m.keys().cloned().collect()).unwrap_or_default();
                for k in keys {
                    signal_key_ready(srv, d, &k);
                }
            }
            return;
        }
        "move" => {
            if let (Some(k), Some(d)) = (args.get(1), target_db(args.get(2))) {
                signal_key_ready(srv, d, k);
            }
        }
        "copy" => {
            let at = args.iter().position(|a| a.eq_ignore_ascii_case(b"db"));
            if let (Some(k), Some(d)) = (args.get(2), target_db(at.and_then(|i| args.get(i + 1)))) {
                signal_key_ready(srv, d, k);
            }
        }
        _ => {}
    }
    if let Ok(keys) = crate::command::keys_of::key_positions(meta, args) {
        for pos in keys {
            if let Some(k) = args.get(pos) {
                signal_key_ready(srv, db, k);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_float;

    #[test]
    fn timeouts_parse_as_strtold() {
        assert_eq!(parse_float(b"0.5"), Some(0.5));
        assert_eq!(parse_float(b"+1e2"), Some(100.0));
        assert_eq!(parse_float(b"0x10"), Some(16.0));
        assert_eq!(parse_float(b"-0x1.8p1"), Some(-3.0));
        assert_eq!(parse_float(b"inf"), Some(f64::INFINITY));
        assert_eq!(parse_float(b"-Infinity"), Some(f64::NEG_INFINITY));
        for bad in [&b""[..], b" 1", b"1 ", b"nan", b"-nan", b"x", b"0x", b"1e", b"--1", b"0xg"] {
            assert_eq!(parse_float(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
