//! Command dispatch: look the name up, check it in Valkey's `processCommand` order (unknown
//! command, unknown subcommand, arity, authentication, ACL), run the handler, and apply CLIENT
//! REPLY modes. Shared by the event loop and the in-process test harness.

use bytes::Bytes;
use slab::Slab;

use super::client::{Client, ReplyMode};
use super::ctx::Ctx;
use super::server::Server;
use crate::command::txn;
use crate::command::Entry as CommandEntry;
use crate::keyspace::KeyHint;
use crate::protocol::Reply;

/// Runs one request of client `idx`, appending its reply to `reply`.
pub fn dispatch(srv: &mut Server, clients: &mut Slab<Client>, reply: &mut Reply, idx: usize, args: &[Bytes]) {
    dispatch_parsed(srv, clients, reply, idx, args, None, None);
}

/// As `dispatch`, with what the parsing thread resolved: the command (from the registry of
/// this build, so only used when the server runs that registry) and its first key's hash.
pub fn dispatch_parsed(
    srv: &mut Server,
    clients: &mut Slab<Client>,
    reply: &mut Reply,
    idx: usize,
    args: &[Bytes],
    cmd: Option<&'static CommandEntry>,
    key: Option<(u8, KeyHint)>,
) {
    let Some(name) = args.first() else { return };
    let before = reply.len();
    let registry = srv.registry;
    let c = &mut clients[idx];
    c.st.last_interaction = srv.now;
    c.st.tot_cmds += 1;
    srv.stats.net_input_bytes += args.iter().map(|a| a.len() as u64 + 16).sum::<u64>();
    if c.st.reply_mode == ReplyMode::SkipNext {
        c.st.reply_mode = ReplyMode::Skip;
    }
    let resolved = match cmd {
        Some(c) if std::ptr::eq(registry, crate::command::registry()) => Some(c),
        _ => registry.lookup(name),
    };
    if let Some(entry) = resolved {
        let entry = match (entry.subs.is_empty(), args.get(1)) {
            (false, Some(sub)) => match entry.sub(sub) {
                Some(s) => Some(s),
                None => {
                    let msg = format!(
                        "ERR unknown subcommand '{}'. Try {} HELP.",
                        truncate_lossy(sub, 128),
                        entry.meta.name.to_ascii_uppercase()
                    );
                    txn::reject(srv, clients, idx, Some(&entry.full_name), reply, &msg);
                    None
                }
            },
            _ => Some(entry),
        };
        if let Some(entry) = entry {
            let arity = entry.meta.arity;
            let n = args.len() as i32;
            // Rejections go through `txn::reject`: inside MULTI they doom the transaction.
            if (arity > 0 && n != arity) || n < -arity || entry.handler.is_none() {
                let msg = format!("ERR wrong number of arguments for '{}' command", entry.full_name);
                txn::reject(srv, clients, idx, Some(&entry.full_name), reply, &msg);
                srv.cmd_stat(entry.id).rejected += 1;
            } else if !clients[idx].st.authenticated
                && srv.acl.auth_required()
                && !entry.meta.has_flag("no_auth")
            {
                let msg = "NOAUTH Authentication required.";
                txn::reject(srv, clients, idx, Some(&entry.full_name), reply, msg);
                srv.cmd_stat(entry.id).rejected += 1;
            } else if clients[idx].st.multi.is_some()
                && entry.meta.has_flag("no_multi")
                && !txn::runs_in_multi(&entry.full_name)
            {
                // SHUTDOWN, SAVE, ... (MULTI and WATCH answer their own errors).
                let msg = "ERR Command not allowed inside a transaction";
                txn::reject(srv, clients, idx, Some(&entry.full_name), reply, msg);
                srv.cmd_stat(entry.id).rejected += 1;
            } else if let Some(msg) = (!srv.acl.unrestricted(clients[idx].st.user)
                && !clients[idx].st.master
                && clients[idx].st.id != crate::scripting::eval::SCRIPT_CLIENT_ID)
                .then(|| crate::acl::gate::refuse(srv, clients, idx, entry, args))
                .flatten()
            {
                // ACL: one branch for unrestricted users; scripts are checked in the bridge
                // (context `lua`), the primary's stream is trusted.
                txn::reject(srv, clients, idx, Some(&entry.full_name), reply, &msg);
                srv.cmd_stat(entry.id).rejected += 1;
            } else if let Some(redirect) = (!clients[idx].st.master)
                .then(|| crate::cluster::redirect::check(srv, &clients[idx].st, entry.meta, args))
                .flatten()
            {
                match redirect.message() {
                    Some(msg) => {
                        txn::redirected(srv, clients, idx, &entry.full_name);
                        reply.error(&msg);
                        srv.cmd_stat(entry.id).rejected += 1;
                    }
                    // Deferred: no reply now, the executor runs the request again later.
                    None => clients[idx].st.deferred = true,
                }
            } else if srv.evict.maxmemory != 0
                && srv.master.is_none()
                && oom_refuses(srv, clients, idx, entry, reply)
            {
                txn::reject(srv, clients, idx, Some(&entry.full_name), reply, super::evict::OOM);
                srv.cmd_stat(entry.id).rejected += 1;
            } else if let Some(msg) = (srv.master.is_some() || srv.loading || srv.repl.min_replicas > 0)
                .then(|| crate::replication::gate::refuses(srv, &clients[idx].st, entry))
                .flatten()
            {
                txn::reject(srv, clients, idx, Some(&entry.full_name), reply, &msg);
                srv.cmd_stat(entry.id).rejected += 1;
            } else if let Some(busy) = srv.script_busy.as_ref().filter(|_| {
                !entry.meta.has_flag("allow_busy")
                    && clients[idx].st.id != crate::scripting::eval::SCRIPT_CLIENT_ID
            }) {
                // A script past busy-reply-threshold: only the allow-busy commands run.
                let msg = busy.refusal();
                txn::reject(srv, clients, idx, Some(&entry.full_name), reply, msg);
                srv.cmd_stat(entry.id).rejected += 1;
            } else if srv.pause.is_some() && super::pause::holds(srv, &clients[idx].st, entry) {
                // CLIENT PAUSE: no reply now, the executor runs the request when it ends.
                clients[idx].st.deferred = true;
            } else if clients[idx].st.subs.is_some()
                && !clients[idx].st.resp3
                && !super::pubsub::allowed_in_subscriber_mode(entry.meta.name)
            {
                // RESP2 subscriber mode (Valkey's `processCommand`): replies would be mixed
                // up with pushed messages, so only the pub/sub commands run.
                reply.err(&format!(
                    "Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
                    entry.full_name
                ));
            } else if clients[idx].st.multi.is_some() && !txn::runs_in_multi(&entry.full_name) {
                // Inside MULTI: queued, run by EXEC.
                if entry.meta.has_flag("denyoom") {
                    if let Some(m) = clients[idx].st.multi.as_mut() {
                        m.denyoom = true;
                    }
                }
                txn::queue(&mut clients[idx].st, args);
                reply.simple("QUEUED");
            } else if let Some(handler) = entry.handler {
                let c = &mut clients[idx];
                c.st.last_cmd.clear();
                c.st.last_cmd.push_str(&entry.full_name);
                srv.stats.total_commands += 1;
                let now_ms = srv.now_ms;
                // Per-command time costs two clock reads (the TSC where it is reliable, see
                // `util::tsc`); `latency-tracking no` skips them.
                let started = srv.time_commands.then(crate::util::tsc::now);
                // Client-side caching: one branch while nobody tracks (see `tracking`).
                let tracked = srv.tracking.active;
                if tracked {
                    super::tracking::enter(srv, clients, idx);
                }
                let mut ctx = Ctx {
                    srv,
                    clients,
                    me: idx,
                    out: reply,
                    cmd: entry.meta,
                    cmd_name: &entry.full_name,
                    now_ms,
                };
                let write = entry.meta.has_flag("write");
                let db = ctx.clients[idx].st.db;
                if write && ctx.srv.repl.snapshotting() {
                    crate::replication::primary::before_write(ctx.srv, db, entry.meta, args);
                }
                let changes = if write && ctx.srv.repl.active() {
                    crate::replication::primary::changes(ctx.srv)
                } else {
                    0
                };
                if !ctx.srv.monitors.is_empty() {
                    super::monitor::feed(ctx.srv, ctx.clients, idx, entry.meta, args, true);
                }
                let is_exec = entry.full_name == "exec" && ctx.srv.master.is_none();
                if is_exec {
                    crate::replication::primary::exec_begin(ctx.srv);
                }
                match key {
                    Some((i, hint)) => {
                        crate::keyspace::db::set_hint(&args[i as usize], Some(hint));
                        handler(&mut ctx, args);
                        crate::keyspace::db::set_hint(&[], None);
                    }
                    None => handler(&mut ctx, args),
                }
                if is_exec {
                    crate::replication::primary::exec_end(srv);
                }
                if tracked {
                    super::tracking::after_command(srv, clients, (idx, &mut *reply), entry.meta, args);
                }
                let blocked = clients[idx].st.blocked;
                if write && !blocked && srv.repl.active() && srv.master.is_none() {
                    let changed = crate::replication::primary::changes(srv) != changes;
                    let out = reply.buf.get(before..).unwrap_or(&[]);
                    crate::replication::primary::propagate(srv, db, entry.meta, args, out, changed);
                }
                let nanos = started.map(crate::util::tsc::nanos_since);
                let stat = srv.cmd_stat(entry.id);
                // A command that blocked is counted when it is served (see `blocking::serve`).
                stat.calls += u64::from(!blocked);
                if let Some(n) = nanos {
                    stat.nanos += n;
                }
                if reply.buf.get(before) == Some(&b'-') {
                    stat.failed += 1;
                }
                if let Some(n) = nanos.filter(|_| !blocked) {
                    super::observe::after_command(srv, clients, idx, entry, args, n);
                }
                if !srv.monitors.is_empty() {
                    super::monitor::feed(srv, clients, idx, entry.meta, args, false);
                }
                if srv.cluster.is_some() {
                    crate::cluster::migrate::after_command(srv, db, entry.meta, args);
                    let out = reply.len().saturating_sub(before);
                    crate::cluster::slot_stats::after_command(srv, entry.meta, args, nanos, out);
                }
                if srv.notify_flags != 0 {
                    // Keys the command found expired publish `expired` even if it notified nothing.
                    super::notify::flush_expired(srv, clients, Some((idx, &mut *reply)));
                }
                // Blocking: any write to a key someone waits on may serve them (RENAME, COPY,
                // RESTORE, pushes of every type); the executor serves after this command.
                if srv.blocking.any() && entry.meta.has_flag("write") {
                    super::blocking::signal_command_keys(srv, clients[idx].st.db, entry.meta, args);
                }
            }
        }
    } else {
        txn::reject(srv, clients, idx, None, reply, &format!("ERR {}", unknown_command(args)));
    }
    finish(srv, clients, reply, idx, name, before);
}

/// Valkey's out-of-memory gate (`processCommand`): runs evictions, then says whether the
/// command must be refused with -OOM — a `denyoom` command; inside MULTI any command but the
/// transaction's own (queueing would grow memory without bound); EXEC when it holds a `denyoom`
/// command.
fn oom_refuses(
    srv: &mut Server,
    clients: &mut Slab<Client>,
    idx: usize,
    entry: &'static CommandEntry,
    reply: &mut Reply,
) -> bool {
    let multi = clients[idx].st.multi.as_ref();
    let deny = if entry.full_name == "exec" {
        multi.is_some_and(|m| m.denyoom)
    } else {
        entry.meta.has_flag("denyoom") || (multi.is_some() && !txn::runs_in_multi(&entry.full_name))
    };
    let now_ms = srv.now_ms;
    let mut ctx =
        Ctx { srv, clients, me: idx, out: reply, cmd: entry.meta, cmd_name: &entry.full_name, now_ms };
    !super::evict::admit(&mut ctx, deny)
}

/// Error statistics and reply modes, after the command ran or was refused.
fn finish(
    srv: &mut Server,
    clients: &mut Slab<Client>,
    reply: &mut Reply,
    idx: usize,
    name: &[u8],
    before: usize,
) {
    // WATCH: flag the watchers of keys this command changed.
    txn::process_touched(srv, clients);
    if reply.buf.get(before) == Some(&b'-') {
        srv.stats.total_error_replies += 1;
        srv.observe.errors.record(&reply.buf[before..]);
    }
    // The client may be gone (it cannot be: handlers only mark clients), but be defensive.
    let Some(c) = clients.get_mut(idx) else {
        return;
    };
    // ASKING is one-shot: it covers the next command only.
    if c.st.asking && !name.eq_ignore_ascii_case(b"asking") && !c.st.deferred {
        c.st.asking = false;
    }
    if c.st.master {
        // The primary gets no replies (REPLCONF GETACK answers on its own, see `replica`).
        reply.truncate(before);
    }
    match c.st.reply_mode {
        ReplyMode::Off => reply.truncate(before),
        ReplyMode::Skip => {
            reply.truncate(before);
            c.st.reply_mode = ReplyMode::On;
        }
        _ => {}
    }
    reply.resp3 = c.st.resp3;
    if srv.tracking.active {
        // The running client's own invalidations follow its reply (even under CLIENT REPLY
        // OFF: pushes are not replies).
        super::tracking::finish(srv, clients, reply, idx, name);
    }
}

/// `-ERR unknown command 'x', with args beginning with: 'a' 'b' ` exactly as Valkey builds it.
pub fn unknown_command(args: &[Bytes]) -> String {
    let mut s = format!("unknown command '{}', with args beginning with: ", truncate_lossy(&args[0], 128));
    let mut used = 0;
    for a in &args[1..] {
        if used >= 128 {
            break;
        }
        let room = 128 - used;
        let part = truncate_lossy(a, room);
        used += part.len() + 3;
        s.push('\'');
        s.push_str(&part);
        s.push_str("' ");
    }
    s
}

/// First `max` bytes of `b` as text (invalid UTF-8 replaced), as `%.128s` prints.
pub fn truncate_lossy(b: &[u8], max: usize) -> String {
    String::from_utf8_lossy(&b[..b.len().min(max)]).into_owned()
}
