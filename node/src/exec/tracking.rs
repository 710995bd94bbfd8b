//! Client-side caching (CLIENT TRACKING), as Valkey's `tracking.c`.
//!
//! - **Default mode.** The keys a tracking client reads with a read-only command are remembered
//!   in one table, key → ids of the clients that may cache it (databases are not told apart,
//!   as in Valkey). When a key changes, each of those clients gets one invalidation and the key
//!   is forgotten until it is read again. The table is bounded by `tracking-table-max-keys`:
//!   over it, random keys are dropped and their clients told, as if the keys had changed.
//! - **BCAST.** Clients subscribe to key prefixes (`""` without PREFIX); a changed key that
//!   matches a prefix is collected, and once per executor loop iteration (Valkey's
//!   `beforeSleep`) every prefix sends its collected keys, in key order, as one array.
//! - **Where changes are seen.** Every mutation of a database goes through `WatchSet::mark`
//!   (`keyspace/watch.rs`), which WATCH already relies on. While tracking is active (below),
//!   each database logs the keys it changes; the log is drained after every command (so the
//!   running client's own invalidations follow its reply, as Valkey's
//!   `tracking_pending_keys`) and at the end of each loop iteration (active expiry, eviction,
//!   replication, slot migration). While tracking is inactive the log is off: the cost on the
//!   write path is one branch in `mark` and two per command in the dispatcher.
//! - **Delivery.** A RESP3 client gets `>2 invalidate [keys]` pushes; a client redirecting to
//!   another gets them there — as a push if the target speaks RESP3, as a `message` on
//!   `__redis__:invalidate` if it is a RESP2 subscriber, not at all otherwise. A redirect target
//!   that went away turns the client's `broken_redirect` flag on and, in RESP3, pushes
//!   `tracking-redir-broken`. Output for other clients is queued with `Client::send` and the
//!   client is put on `pubsub.dirty`, so the normal write path (I/O threads) sends it.
//!
//! Invariant: `Tracking::clients` counts the clients whose `ClientState::tracking` is `Some`;
//! `Tracking::active` (and every database's modified-key log) is on exactly while that count
//! is non-zero or the key table still holds entries. The table keeps the entries of clients
//! that turned tracking off or left until their key changes or a flush (as Valkey), so after
//! the last tracking client the hooks stay on until those stale entries are gone. Table entries
//! hold (id, slab index) pairs and are checked against the slab by id before use, so entries
//! of clients that left (removed lazily, as Valkey does) are never delivered to.

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::time::Instant;

use bytes::{BufMut, Bytes, BytesMut};
use indexmap::IndexMap;
use slab::Slab;

use super::client::{Client, ClientState};
use super::pubsub::PubSub;
use super::server::Server;
use crate::command::meta::CommandMeta;
use crate::protocol::Reply;

/// The pub/sub channel RESP2 redirect targets receive invalidations on.
pub const CHANNEL: &[u8] = b"__redis__:invalidate";

/// A client's tracking settings (`Some` in `ClientState::tracking` while tracking is on).
#[derive(Debug, Clone, Default)]
pub struct ClientTracking {
    /// REDIRECT target id (0: none) and its slab index when it was given.
    pub redirect: u64,
    pub redirect_idx: usize,
    pub bcast: bool,
    pub optin: bool,
    pub optout: bool,
    pub noloop: bool,
    /// CLIENT CACHING YES (OPTIN) / NO (OPTOUT) given for the next command.
    pub caching: bool,
    /// The redirect target disappeared (CLIENT LIST flag `R`).
    pub broken_redirect: bool,
    /// BCAST prefixes, in key order.
    pub prefixes: BTreeSet<Box<[u8]>>,
}

/// Options of one CLIENT TRACKING ON.
#[derive(Debug, Default)]
pub struct Options {
    pub redirect: Option<(u64, usize)>,
    pub bcast: bool,
    pub optin: bool,
    pub optout: bool,
    pub noloop: bool,
    pub prefixes: Vec<Bytes>,
}

/// A tracker in the key table: client id and slab index.
type Tracker = (u64, usize);

/// One BCAST prefix: the keys changed under it since the last broadcast (with the id of the
/// client that changed each last, 0 outside a command, for NOLOOP) and its subscribers.
#[derive(Debug, Default)]
struct Bcast {
    keys: BTreeMap<Box<[u8]>, u64>,
    clients: Vec<Tracker>,
}

/// Node-wide tracking state, owned by the executor.
#[derive(Debug, Default)]
pub struct Tracking {
    /// Clients with tracking on (INFO `tracking_clients`).
    pub clients: usize,
    /// Some client tracks or the table holds entries: the hooks run. False keeps them idle.
    pub active: bool,
    /// Key → trackers, sorted by id. An `IndexMap` so the size bound can pick random keys.
    table: IndexMap<Box<[u8]>, Vec<Tracker>, foldhash::fast::RandomState>,
    /// Trackers over all keys, stale ones included (INFO `tracking_total_items`).
    items: u64,
    prefixes: BTreeMap<Box<[u8]>, Bcast>,
    /// Dispatcher nesting (EXEC, scripts) and the client of the outermost command.
    depth: u32,
    current: Option<Tracker>,
    /// Invalidations for `current`, sent after its reply (`None`: a flush).
    pending: Vec<Option<Box<[u8]>>>,
    /// Rounds in a row the size bound could not be met (Valkey's `timeout_counter`).
    over_limit_rounds: u32,
}

impl Tracking {
    /// INFO `tracking_total_keys`.
    pub fn total_keys(&self) -> usize {
        self.table.len()
    }

    /// INFO `tracking_total_items`.
    pub fn total_items(&self) -> u64 {
        self.items
    }

    /// INFO `tracking_total_prefixes`.
    pub fn total_prefixes(&self) -> usize {
        self.prefixes.len()
    }
}

/// Turns every database's modified-key log on or off.
fn set_logs(srv: &mut Server, on: bool) {
    for db in &mut srv.dbs {
        if on && db.watch.modified.is_none() {
            db.watch.modified = Some(Default::default());
        } else if !on {
            db.watch.modified = None;
        }
    }
}

/// Valkey's `checkPrefixCollisionsOrReply`: the error for the first prefix that overlaps one
/// the client has or another one given.
pub fn prefix_collision(st: &ClientState, prefixes: &[Bytes]) -> Option<String> {
    let overlap = |a: &[u8], b: &[u8]| {
        let n = a.len().min(b.len());
        a[..n] == b[..n]
    };
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    for (i, p) in prefixes.iter().enumerate() {
        if let Some(t) = st.tracking.as_ref() {
            if let Some(old) = t.prefixes.iter().find(|old| overlap(old, p)) {
                return Some(format!(
                    "Prefix '{}' overlaps with an existing prefix '{}'. Prefixes for a single client must not overlap.",
                    text(p),
                    text(old)
                ));
            }
        }
        if let Some(q) = prefixes[i + 1..].iter().find(|q| overlap(p, q)) {
            return Some(format!(
                "Prefix '{}' overlaps with another provided prefix '{}'. Prefixes for a single client must not overlap.",
                text(p),
                text(q)
            ));
        }
    }
    None
}

/// Valkey's `enableTracking` for client `idx` (options already validated).
pub fn enable(srv: &mut Server, clients: &mut Slab<Client>, idx: usize, opts: Options) {
    let st = &mut clients[idx].st;
    if st.tracking.is_none() {
        srv.tracking.clients += 1;
        refresh(srv);
    }
    let t = st.tracking.get_or_insert_with(Default::default);
    let (redirect, redirect_idx) = opts.redirect.unwrap_or((0, 0));
    t.redirect = redirect;
    t.redirect_idx = redirect_idx;
    t.broken_redirect = false;
    t.bcast = opts.bcast;
    t.optin = opts.optin;
    t.optout = opts.optout;
    t.noloop = opts.noloop;
    if opts.bcast {
        let me = (st.id, idx);
        let empty = [Bytes::new()];
        let list = if opts.prefixes.is_empty() { &empty[..] } else { &opts.prefixes[..] };
        for p in list {
            if t.prefixes.insert(p[..].into()) {
                let bs = srv.tracking.prefixes.entry(p[..].into()).or_default();
                bs.clients.push(me);
            }
        }
    }
}

/// Valkey's `disableTracking`: CLIENT TRACKING OFF, RESET, disconnection. Keys the client
/// read stay in the table until they change (lazy, as Valkey).
pub fn disable(srv: &mut Server, st: &mut ClientState, idx: usize) {
    let Some(t) = st.tracking.take() else { return };
    for p in &t.prefixes {
        if let Some(bs) = srv.tracking.prefixes.get_mut(p) {
            bs.clients.retain(|&(id, i)| !(id == st.id && i == idx));
            if bs.clients.is_empty() {
                srv.tracking.prefixes.remove(p);
            }
        }
    }
    srv.tracking.clients -= 1;
    refresh(srv);
}

/// Keeps `active` and the databases' logs in step: on while a client tracks or the table
/// still holds entries (stale ones go when their key changes or on a flush, as in Valkey).
fn refresh(srv: &mut Server) {
    let want = srv.tracking.clients > 0 || !srv.tracking.table.is_empty();
    if want != srv.tracking.active {
        srv.tracking.active = want;
        set_logs(srv, want);
        if !want {
            srv.tracking.pending.clear();
            srv.tracking.depth = 0;
            srv.tracking.current = None;
        }
    }
}

/// The dispatcher is about to run a command of client `idx` (only called while some client
/// tracks): the outermost command's client is the one whose writes are "its own" (NOLOOP) and
/// whose self-invalidations wait for its reply.
pub fn enter(srv: &mut Server, clients: &Slab<Client>, idx: usize) {
    let t = &mut srv.tracking;
    if t.depth == 0 {
        t.current = clients.get(idx).map(|c| (c.st.id, idx));
    }
    t.depth += 1;
}

/// The command entered with [`enter`] ran: sends the invalidations of the keys it changed,
/// then remembers the keys it read (Valkey's `trackingRememberKeys`, after the command).
///
/// `me` is the client that ran it and its reply buffer: a message for it (as a redirect target)
/// goes there, in order with its earlier replies, as Valkey appends it to the client's buffer.
pub fn after_command(
    srv: &mut Server,
    clients: &mut Slab<Client>,
    me: (usize, &mut Reply),
    meta: &CommandMeta,
    args: &[Bytes],
) {
    drain_modified(srv, clients, Some(me));
    if srv.tracking.clients > 0 && meta.has_flag("readonly") {
        remember_keys(srv, clients, meta, args);
    }
    srv.tracking.depth = srv.tracking.depth.saturating_sub(1);
    if srv.tracking.depth == 0 {
        refresh(srv);
    }
}

/// After a command or its refusal (dispatcher's `finish`): at the outermost level, sends the
/// running client's own invalidations after its reply and ends a CLIENT CACHING for the next
/// command (Valkey's `resetClient`: kept inside MULTI and across CLIENT subcommands).
pub fn finish(srv: &mut Server, clients: &mut Slab<Client>, reply: &mut Reply, idx: usize, name: &[u8]) {
    if srv.tracking.depth > 0 {
        return;
    }
    let current = srv.tracking.current.take();
    if !srv.tracking.pending.is_empty() {
        let pending = std::mem::take(&mut srv.tracking.pending);
        if let Some((id, cur)) = current {
            for key in pending {
                let Some(c) = clients.get(cur).filter(|c| c.st.id == id) else { break };
                let payload = match &key {
                    Some(k) => Payload::Key(k),
                    None => Payload::Proto(null_of(c.st.resp3)),
                };
                send(clients, &mut sink(srv), cur, payload, Some((idx, &mut *reply)));
            }
        }
    }
    if let Some(c) = clients.get_mut(idx) {
        let in_multi = c.st.multi.is_some();
        if let Some(t) = c.st.tracking.as_mut() {
            if t.caching && !in_multi && !name.eq_ignore_ascii_case(b"client") {
                t.caching = false;
            }
        }
    }
}

fn null_of(resp3: bool) -> &'static [u8] {
    if resp3 {
        b"_\r\n"
    } else {
        b"$-1\r\n"
    }
}

/// Drains every database's modified-key log into invalidations.
fn drain_modified(srv: &mut Server, clients: &mut Slab<Client>, mut me: Option<(usize, &mut Reply)>) {
    if srv.loading {
        return discard_changes(srv);
    }
    for i in 0..srv.dbs.len() {
        let mut keys = match srv.dbs[i].watch.modified.as_mut() {
            Some(log) if !log.is_empty() => std::mem::take(log),
            _ => continue,
        };
        for k in 0..keys.len() {
            let Some(key) = keys.get(k) else { break };
            let me = me.as_mut().map(|(i, r)| (*i, &mut **r));
            invalidate_key(srv, clients, key, true, me);
        }
        // Hand the buffers back so a busy log does not reallocate every command.
        if let Some(log) = srv.dbs[i].watch.modified.as_mut() {
            if log.is_empty() {
                keys.clear();
                *log = keys;
            }
        }
    }
}

/// Forgets the logged changes: a full sync loaded them. The flush before it already told
/// every tracking client, and loaded keys are no changes to broadcast (Valkey's load signals
/// nothing).
pub fn discard_changes(srv: &mut Server) {
    for db in &mut srv.dbs {
        if let Some(log) = db.watch.modified.as_mut() {
            log.clear();
        }
    }
}

/// Valkey's `trackingRememberKeys` for the outermost client.
fn remember_keys(srv: &mut Server, clients: &Slab<Client>, meta: &CommandMeta, args: &[Bytes]) {
    let Some((id, idx)) = srv.tracking.current else { return };
    let Some(t) = clients.get(idx).filter(|c| c.st.id == id).and_then(|c| c.st.tracking.as_ref()) else {
        return;
    };
    if t.bcast || (t.optin && !t.caching) || (t.optout && t.caching) {
        return;
    }
    // Read-only scripts track the keys of the commands they run, not their declared keys;
    // shard channels are keys only for routing.
    if matches!(meta.name, "eval_ro" | "evalsha_ro" | "fcall_ro") || meta.has_flag("pubsub") {
        return;
    }
    let tr = &mut srv.tracking;
    for k in crate::command::keys_of::command_keys(meta, args) {
        let Some(key) = args.get(k.pos) else { continue };
        let ids = match tr.table.get_mut(&key[..]) {
            Some(ids) => ids,
            None => tr.table.entry(key[..].into()).or_default(),
        };
        if let Err(at) = ids.binary_search_by_key(&id, |&(i, _)| i) {
            ids.insert(at, (id, idx));
            tr.items += 1;
        }
    }
}

/// Valkey's `trackingInvalidateKey`: `bcast` also collects the key for BCAST prefixes (false
/// when the table bound drops a key that did not change).
fn invalidate_key(
    srv: &mut Server,
    clients: &mut Slab<Client>,
    key: &[u8],
    bcast: bool,
    mut me: Option<(usize, &mut Reply)>,
) {
    let tr = &mut srv.tracking;
    let current = if tr.depth > 0 { tr.current } else { None };
    if bcast && !tr.prefixes.is_empty() {
        let by = current.map_or(0, |(id, _)| id);
        for (p, bs) in tr.prefixes.iter_mut() {
            if key.starts_with(p) {
                bs.keys.insert(key.into(), by);
            }
        }
    }
    let Some(ids) = tr.table.swap_remove(key) else { return };
    tr.items = tr.items.saturating_sub(ids.len() as u64);
    for (id, idx) in ids {
        let Some(c) = clients.get(idx).filter(|c| c.st.id == id) else { continue };
        let Some(t) = c.st.tracking.as_ref().filter(|t| !t.bcast) else { continue };
        let own = current.is_some_and(|(cid, _)| cid == id);
        if own && t.noloop {
            continue;
        }
        if own {
            srv.tracking.pending.push(Some(key.into()));
        } else {
            let me = me.as_mut().map(|(i, r)| (*i, &mut **r));
            send(clients, &mut sink(srv), idx, Payload::Key(key), me);
        }
    }
}

/// FLUSHDB / FLUSHALL / a full resync (Valkey's `trackingInvalidateKeysOnFlush`): every
/// tracking client is told that all keys are invalid (a null), and the table is emptied.
pub fn flushed(srv: &mut Server, clients: &mut Slab<Client>) {
    if srv.tracking.clients > 0 {
        let current = if srv.tracking.depth > 0 { srv.tracking.current } else { None };
        let idxs: Vec<usize> =
            clients.iter().filter(|(_, c)| c.st.tracking.is_some()).map(|(i, _)| i).collect();
        for idx in idxs {
            if current.is_some_and(|(id, i)| i == idx && clients[idx].st.id == id) {
                srv.tracking.pending.push(None);
            } else {
                let null = null_of(clients[idx].st.resp3);
                send(clients, &mut sink(srv), idx, Payload::Proto(null), None);
            }
        }
    }
    let old = std::mem::take(&mut srv.tracking.table);
    srv.tracking.items = 0;
    if !old.is_empty() {
        srv.free_later(old);
    }
    if srv.tracking.depth == 0 {
        refresh(srv);
    }
}

/// The value part of an invalidation.
enum Payload<'a> {
    /// One key: sent as a one-element array.
    Key(&'a [u8]),
    /// Already encoded (a null, or a BCAST array of keys).
    Proto(&'a [u8]),
}

/// Valkey's `sendTrackingMessage` for tracking client `idx`. `me` is the client whose reply is
/// being built, if any: its messages go there, after the reply.
fn send(
    clients: &mut Slab<Client>,
    out: &mut Sink,
    idx: usize,
    payload: Payload,
    me: Option<(usize, &mut Reply)>,
) {
    let Some(c) = clients.get_mut(idx) else { return };
    let Some(t) = c.st.tracking.as_mut() else { return };
    let mut target = idx;
    let redirected = t.redirect != 0;
    if redirected {
        let (rid, ridx) = (t.redirect, t.redirect_idx);
        let alive = clients.get(ridx).is_some_and(|r| r.st.id == rid && !r.st.close_asap);
        if !alive {
            let c = &mut clients[idx];
            if let Some(t) = c.st.tracking.as_mut() {
                t.broken_redirect = true;
            }
            if c.st.resp3 {
                let mut buf = BytesMut::with_capacity(48);
                buf.extend_from_slice(b">2\r\n$21\r\ntracking-redir-broken\r\n:");
                buf.extend_from_slice(itoa::Buffer::new().format(rid).as_bytes());
                buf.extend_from_slice(b"\r\n");
                deliver(clients, out, idx, buf.freeze(), me);
            }
            return;
        }
        target = ridx;
    }
    let to = &clients[target].st;
    let mut buf = BytesMut::with_capacity(48 + payload_len(&payload));
    if to.resp3 {
        buf.extend_from_slice(b">2\r\n$10\r\ninvalidate\r\n");
    } else if redirected && to.subs.is_some() {
        buf.extend_from_slice(b"*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n");
    } else {
        // RESP2 without a redirect to a subscriber: nowhere to send it.
        return;
    }
    match payload {
        Payload::Key(k) => {
            buf.extend_from_slice(b"*1\r\n$");
            buf.extend_from_slice(itoa::Buffer::new().format(k.len()).as_bytes());
            buf.extend_from_slice(b"\r\n");
            buf.extend_from_slice(k);
            buf.extend_from_slice(b"\r\n");
        }
        Payload::Proto(p) => buf.extend_from_slice(p),
    }
    deliver(clients, out, target, buf.freeze(), me);
}

fn payload_len(p: &Payload) -> usize {
    match p {
        Payload::Key(k) => k.len() + 16,
        Payload::Proto(p) => p.len(),
    }
}

/// Where messages for other clients go: their queues, the pub/sub write list and output limits.
struct Sink<'a> {
    ps: &'a mut PubSub,
    kill_pending: &'a mut bool,
    now: Instant,
}

fn sink(srv: &mut Server) -> Sink<'_> {
    Sink { ps: &mut srv.pubsub, kill_pending: &mut srv.kill_pending, now: srv.now }
}

/// Appends a message to a client's output: the reply being built when it is that client's,
/// otherwise its queue, marking it for the write path. A subscriber (a RESP2 redirect target)
/// is held to the pubsub class's output limits, as pub/sub messages are.
fn deliver(
    clients: &mut Slab<Client>,
    out: &mut Sink,
    idx: usize,
    msg: Bytes,
    me: Option<(usize, &mut Reply)>,
) {
    if let Some((m, reply)) = me {
        if m == idx {
            reply.buf.extend_from_slice(&msg);
            return;
        }
    }
    let Some(c) = clients.get_mut(idx) else { return };
    if c.st.close_asap {
        return;
    }
    c.send(msg);
    if c.st.subs.is_some() && super::pubsub::over_limit(out.ps, clients, idx, out.now, out.kill_pending) {
        return;
    }
    if out.ps.dirty.last() != Some(&idx) {
        out.ps.dirty.push(idx);
    }
}

/// Once per executor loop iteration while some client tracks (Valkey's `beforeSleep`):
/// invalidations for keys changed outside commands (expiry, eviction, replication), the table
/// size bound, then the BCAST broadcasts.
pub fn before_sleep(srv: &mut Server, clients: &mut Slab<Client>) {
    if !srv.tracking.active {
        return;
    }
    // A database created since tracking started (a full resync) gets its log here.
    if srv.dbs.iter().any(|d| d.watch.modified.is_none()) {
        set_logs(srv, true);
    }
    srv.tracking.depth = 0;
    srv.tracking.current = None;
    drain_modified(srv, clients, None);
    let max = srv.config.get_i64("tracking-table-max-keys").max(0) as usize;
    limit_table(srv, clients, max);
    broadcast(srv, clients);
    refresh(srv);
}

/// Valkey's `trackingLimitUsedSlots`: over `max` keys (0: no bound), drops random keys with an
/// effort that grows while the bound keeps being missed, telling their clients.
fn limit_table(srv: &mut Server, clients: &mut Slab<Client>, max: usize) {
    if max == 0 || srv.tracking.table.len() <= max {
        srv.tracking.over_limit_rounds = 0;
        return;
    }
    let mut effort = 100 * (srv.tracking.over_limit_rounds as usize + 1);
    while effort > 0 && !srv.tracking.table.is_empty() {
        effort -= 1;
        let i = fastrand::usize(..srv.tracking.table.len());
        let Some(key) = srv.tracking.table.get_index(i).map(|(k, _)| k.clone()) else { break };
        invalidate_key(srv, clients, &key, false, None);
        if srv.tracking.table.len() <= max {
            srv.tracking.over_limit_rounds = 0;
            return;
        }
    }
    srv.tracking.over_limit_rounds += 1;
}

/// Valkey's `trackingBroadcastInvalidationMessages`: each prefix's changed keys, as one array
/// (built once; NOLOOP clients get one without the keys they changed last).
fn broadcast(srv: &mut Server, clients: &mut Slab<Client>) {
    if srv.tracking.prefixes.values().all(|bs| bs.keys.is_empty()) {
        return;
    }
    let prefixes: Vec<Box<[u8]>> =
        srv.tracking.prefixes.iter().filter(|(_, bs)| !bs.keys.is_empty()).map(|(p, _)| p.clone()).collect();
    for p in prefixes {
        let Some(bs) = srv.tracking.prefixes.get_mut(&p) else { continue };
        let keys = std::mem::take(&mut bs.keys);
        let subs = bs.clients.clone();
        let all = keys_array(&keys, None);
        for (id, idx) in subs {
            let Some(c) = clients.get(idx).filter(|c| c.st.id == id) else { continue };
            let noloop = c.st.tracking.as_ref().is_some_and(|t| t.noloop);
            if noloop {
                if let Some(own) = keys_array(&keys, Some(id)) {
                    send(clients, &mut sink(srv), idx, Payload::Proto(&own), None);
                }
            } else if let Some(all) = all.as_ref() {
                send(clients, &mut sink(srv), idx, Payload::Proto(all), None);
            }
        }
    }
}

/// Valkey's `trackingBuildBroadcastReply`: the array of keys, without those last changed by
/// `except`; `None` when that leaves nothing.
fn keys_array(keys: &BTreeMap<Box<[u8]>, u64>, except: Option<u64>) -> Option<Bytes> {
    let kept = || keys.iter().filter(|(_, &by)| except.is_none_or(|e| by != e));
    let n = kept().count();
    if n == 0 {
        return None;
    }
    let mut buf = BytesMut::with_capacity(16 + n * 16);
    let mut itoa = itoa::Buffer::new();
    buf.put_u8(b'*');
    buf.extend_from_slice(itoa.format(n).as_bytes());
    buf.extend_from_slice(b"\r\n");
    for (k, _) in kept() {
        buf.put_u8(b'$');
        buf.extend_from_slice(itoa.format(k.len()).as_bytes());
        buf.extend_from_slice(b"\r\n");
        buf.extend_from_slice(k);
        buf.extend_from_slice(b"\r\n");
    }
    Some(buf.freeze())
}

#[cfg(test)]
mod tests;
