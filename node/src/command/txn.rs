//! Transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH, as Valkey 8's `multi.c`.
//!
//! - Queueing happens in the dispatcher (`exec/dispatch.rs`): once a client is in MULTI, every
//!   command that passes the checks of `processCommand` (known, right arity, authenticated,
//!   served by this node in cluster mode) is queued and answered `+QUEUED`, except the ones
//!   in [`runs_in_multi`]. A command rejected by those checks flags the transaction
//!   ([`reject`]), and EXEC then answers `-EXECABORT`.
//! - EXEC runs the queued commands through the same dispatcher, so they are counted, redirected
//!   and followed up (migration forwarding, blocked-client wake-ups) like any other command.
//! - WATCH: the keyspace marks every changed key that someone watches (`keyspace/watch.rs`);
//!   [`process_touched`] runs after each command and flags the watchers (Valkey's
//!   `touchWatchedKey`). A key that was already expired when watched does not count as changed
//!   when it is deleted; one that expires after WATCH does (Valkey 8's `isWatchedKeyExpired`).

use bytes::Bytes;
use slab::Slab;

use super::Handler;
use crate::exec::client::{ClientState, MultiState, WatchedKey};
use crate::exec::{Client, Ctx, Server};
use crate::protocol::Reply;

pub fn handler(name: &str) -> Option<Handler> {
    Some(match name {
        "multi" => multi,
        "exec" => exec,
        "discard" => discard,
        "watch" => watch,
        "unwatch" => unwatch,
        _ => return None,
    })
}

/// Commands that run at once inside MULTI instead of being queued (Valkey's list in
/// `processCommand`).
pub fn runs_in_multi(full_name: &str) -> bool {
    matches!(full_name, "exec" | "discard" | "multi" | "watch" | "quit" | "reset")
}

/// Queues a request of a client in MULTI. A transaction already doomed keeps nothing.
pub fn queue(st: &mut ClientState, args: &[Bytes]) {
    if st.dirty_cas {
        return;
    }
    if let Some(m) = st.multi.as_mut() {
        if !m.dirty {
            m.mem += args.iter().map(Bytes::len).sum::<usize>();
            m.commands.push(args.to_vec());
        }
    }
}

/// Replies a rejection from the dispatcher's checks (`err` without the leading `-`) as
/// Valkey's `rejectCommand`: inside MULTI it dooms the transaction, and a rejected EXEC
/// discards any transaction and answers `-EXECABORT ... because of: <err>`.
pub fn reject(
    srv: &mut Server,
    clients: &mut Slab<Client>,
    idx: usize,
    cmd: Option<&str>,
    reply: &mut Reply,
    err: &str,
) {
    let st = &mut clients[idx].st;
    // As in Valkey, a rejected EXEC answers EXECABORT even outside MULTI.
    if cmd == Some("exec") {
        discard_transaction(srv, st, idx);
        let why = err.strip_prefix("ERR ").unwrap_or(err);
        return reply.error(&format!("EXECABORT Transaction discarded because of: {why}"));
    }
    if let Some(m) = st.multi.as_mut() {
        m.dirty = true;
    }
    reply.error(err);
}

/// A cluster redirection of a command: EXEC discards the transaction, anything else dooms it
/// (Valkey's `processCommand` before `clusterRedirectClient`).
pub fn redirected(srv: &mut Server, clients: &mut Slab<Client>, idx: usize, cmd: &str) {
    let st = &mut clients[idx].st;
    if cmd == "exec" {
        discard_transaction(srv, st, idx);
    } else if let Some(m) = st.multi.as_mut() {
        m.dirty = true;
    }
}

fn multi(ctx: &mut Ctx, _args: &[Bytes]) {
    let st = ctx.client();
    if st.multi.is_some() {
        return ctx.out.err("MULTI calls can not be nested");
    }
    st.multi = Some(MultiState::default());
    ctx.out.ok();
}

fn discard(ctx: &mut Ctx, _args: &[Bytes]) {
    let me = ctx.me;
    let st = &mut ctx.clients[me].st;
    if st.multi.is_none() {
        return ctx.out.err("DISCARD without MULTI");
    }
    discard_transaction(ctx.srv, st, me);
    ctx.out.ok();
}

/// Valkey's `discardTransaction`: forget the queue, the flags and the watched keys.
pub fn discard_transaction(srv: &mut Server, st: &mut ClientState, idx: usize) {
    st.multi = None;
    st.dirty_cas = false;
    unwatch_all(srv, st, idx);
}

fn exec(ctx: &mut Ctx, _args: &[Bytes]) {
    let me = ctx.me;
    if ctx.clients[me].st.multi.is_none() {
        return ctx.out.err("EXEC without MULTI");
    }
    if ctx.srv.cluster.is_some() && !cluster_check(ctx) {
        return;
    }
    process_touched(ctx.srv, ctx.clients);
    let now = ctx.now_ms;
    let Ctx { srv, clients, .. } = ctx;
    let st = &mut clients[me].st;
    // A watched key that expired since WATCH counts as changed, even if nobody deleted it yet.
    if st.watched.iter().any(|w| !w.expired && srv.dbs[w.db].is_expired_key(&w.key, now)) {
        st.dirty_cas = true;
    }
    let doomed = st.multi.as_ref().is_some_and(|m| m.dirty);
    if doomed || st.dirty_cas {
        discard_transaction(srv, st, me);
        if doomed {
            ctx.out.error("EXECABORT Transaction discarded because of previous errors.");
        } else {
            ctx.out.null_array();
        }
        return;
    }
    unwatch_all(srv, st, me);
    let queued = st.multi.take().map(|m| m.commands).unwrap_or_default();
    st.deny_blocking = true;
    ctx.out.array(queued.len());
    for args in &queued {
        crate::exec::dispatch::dispatch(ctx.srv, ctx.clients, ctx.out, me, args);
    }
    let st = &mut ctx.clients[me].st;
    st.deny_blocking = false;
    st.last_cmd.clear();
    st.last_cmd.push_str("exec");
    ctx.free_later(queued);
}

/// Cluster mode: Valkey's `getNodeByQuery` looks at the keys of every queued command when the
/// command is EXEC. Keys in two slots answer CROSSSLOT, a slot served elsewhere MOVED/ASK; both
/// discard the transaction. A write to a slot in its final hand-off defers the whole EXEC.
/// Returns true when EXEC may run here.
fn cluster_check(ctx: &mut Ctx) -> bool {
    use crate::cluster::redirect::{check, Redirect};
    use crate::command::keys_of::command_keys;
    let me = ctx.me;
    let registry = ctx.srv.registry;
    let queued: Vec<Vec<Bytes>> =
        ctx.clients[me].st.multi.as_ref().map(|m| m.commands.clone()).unwrap_or_default();
    let mut slot = None;
    let mut verdict = None;
    for args in &queued {
        let Some(entry) = lookup(registry, args) else { continue };
        for k in command_keys(entry.meta, args) {
            let s = crate::keyspace::slot::key_slot(&args[k.pos]);
            if *slot.get_or_insert(s) != s {
                verdict = Some(Redirect::CrossSlot);
                break;
            }
        }
        if verdict.is_some() {
            break;
        }
        let st = ctx.clients[me].st.clone();
        if let Some(r) = check(ctx.srv, &st, entry.meta, args) {
            verdict = Some(r);
            break;
        }
    }
    match verdict {
        None => true,
        Some(r) => {
            match r.message() {
                Some(msg) => {
                    discard_transaction(ctx.srv, &mut ctx.clients[me].st, me);
                    ctx.out.error(&msg);
                }
                None => ctx.clients[me].st.deferred = true,
            }
            false
        }
    }
}

/// The registry entry (subcommand entry for containers) a queued request runs.
fn lookup<'a>(registry: &'a super::Registry, args: &[Bytes]) -> Option<&'a super::Entry> {
    let e = registry.lookup(args.first()?)?;
    match (e.subs.is_empty(), args.get(1)) {
        (false, Some(sub)) => e.sub(sub),
        _ => Some(e),
    }
}

fn watch(ctx: &mut Ctx, args: &[Bytes]) {
    let me = ctx.me;
    let now = ctx.now_ms;
    let Ctx { srv, clients, .. } = ctx;
    let st = &mut clients[me].st;
    if st.multi.is_some() {
        return ctx.out.err("WATCH inside MULTI is not allowed");
    }
    // No point in watching once a watched key changed: EXEC fails anyway.
    if !st.dirty_cas {
        for key in &args[1..] {
            let db = st.db;
            if st.watched.iter().any(|w| w.db == db && *w.key == **key) {
                continue;
            }
            let expired = srv.dbs[db].is_expired_key(key, now);
            srv.dbs[db].watch.add(key, (me, st.id));
            st.watched.push(WatchedKey { db, key: key[..].into(), expired });
            srv.watching += 1;
        }
    }
    ctx.out.ok();
}

fn unwatch(ctx: &mut Ctx, _args: &[Bytes]) {
    let me = ctx.me;
    let st = &mut ctx.clients[me].st;
    unwatch_all(ctx.srv, st, me);
    st.dirty_cas = false;
    ctx.out.ok();
}

/// Forgets every key a client watches.
pub fn unwatch_all(srv: &mut Server, st: &mut ClientState, idx: usize) {
    for w in st.watched.drain(..) {
        if let Some(db) = srv.dbs.get_mut(w.db) {
            db.watch.remove(&w.key, (idx, st.id));
        }
        srv.watching = srv.watching.saturating_sub(1);
    }
}

/// A client is going away: drop its WATCH entries.
pub fn on_close(srv: &mut Server, st: &mut ClientState, idx: usize) {
    if !st.watched.is_empty() {
        unwatch_all(srv, st, idx);
    }
}

/// Flags the watchers of every key changed since the last call (Valkey's `touchWatchedKey`).
/// Cheap when nobody watches anything.
pub fn process_touched(srv: &mut Server, clients: &mut Slab<Client>) {
    if srv.watching == 0 {
        return;
    }
    for i in 0..srv.dbs.len() {
        if !srv.dbs[i].watch.has_touched() {
            continue;
        }
        for key in srv.dbs[i].watch.take_touched() {
            let watchers = srv.dbs[i].watch.watchers(&key).to_vec();
            for (idx, id) in watchers {
                let Some(c) = clients.get_mut(idx).filter(|c| c.st.id == id) else { continue };
                let Some(w) = c.st.watched.iter_mut().find(|w| w.db == i && w.key == key) else {
                    continue;
                };
                // Deleting a key that had already expired when watched is no logical change.
                if w.expired && !srv.dbs[i].exists_raw(&key) {
                    w.expired = false;
                    continue;
                }
                c.st.dirty_cas = true;
                unwatch_all(srv, &mut c.st, idx);
            }
        }
    }
}

/// SWAPDB `a` `b`: flags the watchers whose key changes by the swap (Valkey's
/// `touchAllWatchedKeysInDb` both ways), swaps the data, and keeps each database's WATCH
/// entries with its index, where the clients watch them.
pub fn swapdb(srv: &mut Server, clients: &mut Slab<Client>, a: usize, b: usize, now_ms: i64) {
    if srv.watching > 0 && a != b {
        touch_swapped(srv, clients, a, b, now_ms);
        touch_swapped(srv, clients, b, a, now_ms);
    }
    srv.dbs.swap(a, b);
    let wa = std::mem::take(&mut srv.dbs[a].watch);
    let wb = std::mem::replace(&mut srv.dbs[b].watch, wa);
    srv.dbs[a].watch = wb;
}

fn touch_swapped(srv: &mut Server, clients: &mut Slab<Client>, emptied: usize, with: usize, now_ms: i64) {
    let keys: Vec<Box<[u8]>> = srv.dbs[emptied].watch.keys().map(Box::from).collect();
    for key in keys {
        let in_emptied = srv.dbs[emptied].exists_raw(&key);
        let in_with = srv.dbs[with].exists_raw(&key);
        if !in_emptied && !in_with {
            continue;
        }
        let with_expired = srv.dbs[with].is_expired_key(&key, now_ms);
        for (idx, id) in srv.dbs[emptied].watch.watchers(&key).to_vec() {
            let Some(c) = clients.get_mut(idx).filter(|c| c.st.id == id) else { continue };
            let Some(w) = c.st.watched.iter_mut().find(|w| w.db == emptied && w.key == key) else {
                continue;
            };
            if w.expired {
                if !in_with {
                    // An expired key is now gone: no logical change.
                    w.expired = false;
                    continue;
                } else if with_expired {
                    // Still an expired key.
                    continue;
                }
            } else if !in_emptied && with_expired {
                // A missing key replaced by an expired one.
                w.expired = true;
                continue;
            }
            c.st.dirty_cas = true;
            unwatch_all(srv, &mut c.st, idx);
        }
    }
}

#[cfg(test)]
mod tests;
