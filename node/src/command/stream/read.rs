//! XREAD and XREADGROUP (`xreadCommand`). Streams that can serve are answered at once;
//! otherwise, with BLOCK, the client parks on the keys through `exec::blocking` with `$`
//! already resolved to the ID it meant, and the same handler runs again when a key is
//! written (Valkey 7.2+ re-executes blocked stream reads the same way). Inside MULTI/EXEC
//! BLOCK acts as a timeout.

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{b, effect, effects_begin, get, no_key_or_group, parse_id, reply_entry, reply_id, touched, Got};
use crate::exec::blocking::{self, Blocked, Kind};
use crate::exec::notify::class;
use crate::exec::{Ctx, WRONGTYPE};
use crate::keyspace::types::stream::StreamId;

/// XREAD [COUNT count] [BLOCK milliseconds] STREAMS key [key ...] id [id ...]
pub fn xread(ctx: &mut Ctx, args: &[Bytes]) {
    read_generic(ctx, args, false);
}

/// XREADGROUP GROUP group consumer [COUNT count] [BLOCK milliseconds] [NOACK] STREAMS key
/// [key ...] id [id ...]
pub fn xreadgroup(ctx: &mut Ctx, args: &[Bytes]) {
    effects_begin(ctx);
    read_generic(ctx, args, true);
}

/// `getTimeoutFromObjectOrReply` in milliseconds: `None` on error (replied), `Some(None)`
/// for "forever".
fn parse_ms_timeout(ctx: &mut Ctx, arg: &[u8]) -> Option<Option<Instant>> {
    let Some(ms) = crate::util::parse_i64(arg) else {
        ctx.out.err("timeout is not an integer or out of range");
        return None;
    };
    if ms < 0 {
        ctx.out.err("timeout is negative");
        return None;
    }
    if ms == 0 {
        return Some(None);
    }
    if ms > i64::MAX - ctx.now_ms {
        ctx.out.err("timeout is out of range");
        return None;
    }
    Some(ctx.srv.now.checked_add(Duration::from_millis(ms as u64)))
}

/// What one stream of the request reads.
enum Plan {
    Skip,
    /// Entries after this ID (XREAD, or XREADGROUP `>` after the group's last ID).
    After(StreamId),
    /// XREADGROUP with an ID: the consumer's pending entries after it.
    History(StreamId),
}

fn read_generic(ctx: &mut Ctx, args: &[Bytes], grouped: bool) {
    let mut timeout: Option<Option<Instant>> = None;
    let mut count: u64 = 0;
    let mut streams_arg = 0;
    let mut group: Option<(&Bytes, &Bytes)> = None;
    let mut noack = false;
    let mut i = 1;
    while i < args.len() {
        let more = args.len() - i - 1;
        let o = &args[i];
        if o.eq_ignore_ascii_case(b"block") && more > 0 {
            if ctx.clients[ctx.me].st.id == crate::scripting::eval::SCRIPT_CLIENT_ID {
                let msg = format!(
                    "{} command is not allowed with BLOCK option from scripts",
                    String::from_utf8_lossy(&args[0])
                );
                return ctx.out.err(&msg);
            }
            i += 1;
            let Some(t) = parse_ms_timeout(ctx, &args[i]) else { return };
            timeout = Some(t);
        } else if o.eq_ignore_ascii_case(b"count") && more > 0 {
            i += 1;
            let Some(n) = ctx.arg_i64(&args[i]) else { return };
            count = n.max(0) as u64;
        } else if o.eq_ignore_ascii_case(b"streams") && more > 0 {
            streams_arg = i + 1;
            if !(args.len() - streams_arg).is_multiple_of(2) {
                let (cmd, sym) = if grouped { ("xreadgroup", '>') } else { ("xread", '$') };
                let msg = format!(
                    "Unbalanced '{cmd}' list of streams: for each stream key an ID or '{sym}' must be specified."
                );
                return ctx.out.err(&msg);
            }
            break;
        } else if o.eq_ignore_ascii_case(b"group") && more >= 2 {
            if !grouped {
                return ctx
                    .out
                    .err("The GROUP option is only supported by XREADGROUP. You called XREAD instead.");
            }
            group = Some((&args[i + 1], &args[i + 2]));
            i += 2;
        } else if o.eq_ignore_ascii_case(b"noack") {
            if !grouped {
                return ctx
                    .out
                    .err("The NOACK option is only supported by XREADGROUP. You called XREAD instead.");
            }
            noack = true;
        } else {
            return ctx.syntax_error();
        }
        i += 1;
    }
    if streams_arg == 0 {
        return ctx.syntax_error();
    }
    if grouped && group.is_none() {
        return ctx.out.err("Missing GROUP option for XREADGROUP");
    }
    let n = (args.len() - streams_arg) / 2;
    let keys = &args[streams_arg..streams_arg + n];
    // The IDs, and the arguments a blocked client retries with (`$` resolved).
    let mut ids = Vec::with_capacity(n);
    let mut retry_args: Vec<Bytes> = args.to_vec();
    for (k, key) in keys.iter().enumerate() {
        let arg = &args[streams_arg + n + k];
        let (s, out) = match get(ctx, key, true) {
            (Got::WrongType, out) => return out.error(WRONGTYPE),
            (Got::Missing, out) => (None, out),
            (Got::Stream(s), out) => (Some(s), out),
        };
        if let Some((g, _)) = group {
            if !s.as_ref().is_some_and(|s| s.groups.contains_key(&g[..])) {
                return no_key_or_group(out, key, g, " in XREADGROUP with GROUP option");
            }
        }
        let id = if &arg[..] == b"$" {
            if grouped {
                return out.err(
                    "The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set.",
                );
            }
            let id = s.map_or(StreamId::MIN, |s| s.last_id);
            retry_args[streams_arg + n + k] = b(&id.to_string());
            id
        } else if &arg[..] == b">" {
            if !grouped {
                return out.err(
                    "The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option.",
                );
            }
            StreamId::MAX
        } else {
            match parse_id(arg, true, 0, false) {
                Some((id, _)) => id,
                None => return out.err(super::INVALID_ID),
            }
        };
        ids.push(id);
    }

    // What can be served now.
    let now = ctx.now_ms;
    let mut plans = Vec::with_capacity(n);
    for (k, key) in keys.iter().enumerate() {
        let (Got::Stream(s), _) = get(ctx, key, true) else {
            plans.push(Plan::Skip);
            continue;
        };
        if let Some((g, c)) = group {
            // Valkey creates the consumer (and marks it seen) on every stream it names.
            let created = s.groups.get_mut(&g[..]).is_some_and(|grp| grp.touch_consumer(c, now));
            if created {
                // Valkey sends this only for NOACK reads (the XCLAIMs create the consumer
                // otherwise); Shoal always does, so a consumer that read nothing exists on
                // replicas too.
                effect(|| vec![b("XGROUP"), b("CREATECONSUMER"), key.clone(), g.clone(), c.clone()]);
                ctx.notify(class::STREAM, "xgroup-createconsumer", key);
            }
            touched(ctx, key);
        }
        let (Got::Stream(s), _) = get(ctx, key, false) else { continue };
        let gt = ids[k];
        let top = s.edge_id(false);
        let plan = match group {
            Some(_) if gt != StreamId::MAX => Plan::History(gt),
            Some((g, _)) => match (top, s.groups.get(&g[..])) {
                (Some(top), Some(grp)) if top > grp.last_id => Plan::After(grp.last_id),
                _ => Plan::Skip,
            },
            None => match top {
                Some(top) if top > gt => Plan::After(gt),
                _ => Plan::Skip,
            },
        };
        plans.push(plan);
    }
    let served = plans.iter().filter(|p| !matches!(p, Plan::Skip)).count();
    if served > 0 {
        if ctx.out.resp3 {
            ctx.out.map(served);
        } else {
            ctx.out.array(served);
        }
        for (k, plan) in plans.iter().enumerate() {
            if matches!(plan, Plan::Skip) {
                continue;
            }
            if !ctx.out.resp3 {
                ctx.out.array(2);
            }
            ctx.out.bulk(&keys[k]);
            match group {
                Some((g, c)) => serve_group(ctx, &keys[k], g, c, plan, count, noack),
                None => serve_plain(ctx, &keys[k], plan, count),
            }
        }
        return;
    }
    if let Some(deadline) = timeout {
        if blocking::block(ctx, &retry_args, keys, deadline, Kind::Stream) == Blocked::Denied {
            ctx.out.null_array();
        }
        return;
    }
    ctx.out.null_array();
}

fn take_count(count: u64) -> usize {
    if count == 0 {
        usize::MAX
    } else {
        usize::try_from(count).unwrap_or(usize::MAX)
    }
}

/// XREAD: the entries after the plan's ID.
fn serve_plain(ctx: &mut Ctx, key: &[u8], plan: &Plan, count: u64) {
    let (Got::Stream(s), out) = get(ctx, key, false) else { return };
    let Plan::After(gt) = *plan else { return };
    let Some(start) = gt.next() else { return out.array(0) };
    let entries: Vec<_> = s.range(start, StreamId::MAX, false).take(take_count(count)).collect();
    out.array(entries.len());
    for e in &entries {
        reply_entry(out, e);
    }
}

/// XREADGROUP on one stream: new entries (delivered to the consumer's PEL unless NOACK) or
/// the consumer's own history.
fn serve_group(ctx: &mut Ctx, key: &Bytes, g: &Bytes, c: &Bytes, plan: &Plan, count: u64, noack: bool) {
    let now = ctx.now_ms;
    let (Got::Stream(s), out) = get(ctx, key, false) else { return };
    let Some(grp) = s.groups.get_mut(&g[..]) else { return };
    match *plan {
        Plan::History(gt) => {
            let Some(consumer) = grp.consumers.get(&c[..]) else { return };
            let ids: Vec<StreamId> = match gt.next() {
                Some(start) => consumer.pel.range(start..).copied().take(take_count(count)).collect(),
                None => Vec::new(),
            };
            out.array(ids.len());
            let mut found = Vec::with_capacity(ids.len());
            for &id in &ids {
                match s.get(id) {
                    Some(e) => {
                        reply_entry(out, &e);
                        found.push(id);
                    }
                    None => {
                        out.array(2);
                        reply_id(out, id);
                        out.null_array();
                    }
                }
            }
            if let Some(grp) = s.groups.get_mut(&g[..]) {
                let last = grp.last_id;
                for id in &found {
                    if let Some(p) = grp.pel.get_mut(id) {
                        p.delivery_time = now;
                        p.delivery_count += 1;
                        // Valkey leaves replicas' counts behind here; Shoal keeps them equal.
                        effect(|| xclaim_effect(key, g, c, *id, now, p.delivery_count, last));
                    }
                }
            }
        }
        Plan::After(gt) => {
            let ids: Vec<StreamId> = match gt.next() {
                Some(start) => {
                    let entries: Vec<_> =
                        s.range(start, StreamId::MAX, false).take(take_count(count)).collect();
                    out.array(entries.len());
                    for e in &entries {
                        reply_entry(out, e);
                    }
                    entries.iter().map(|e| e.id).collect()
                }
                None => {
                    out.array(0);
                    Vec::new()
                }
            };
            let mut moved = false;
            for &id in &ids {
                moved |= s.group_read(g, id);
                if !noack {
                    let Some(grp) = s.groups.get_mut(&g[..]) else { break };
                    grp.deliver(id, c, now);
                    if let Some(consumer) = grp.consumers.get_mut(&c[..]) {
                        consumer.active_time = now;
                    }
                    let p = &grp.pel[&id];
                    effect(|| xclaim_effect(key, g, c, id, p.delivery_time, p.delivery_count, grp.last_id));
                }
            }
            // Always, not only with NOACK: an XCLAIM's LASTID does not carry the group's
            // read counter (Redis 7.0.x does the same since its #9127 fix).
            if moved {
                if let Some(grp) = s.groups.get(&g[..]) {
                    effect(|| setid_effect(key, g, grp.last_id, grp.entries_read));
                }
            }
        }
        Plan::Skip => {}
    }
}

/// Valkey's `streamPropagateXCLAIM`: how a replica learns a pending entry's state.
pub(super) fn xclaim_effect(
    key: &Bytes,
    g: &Bytes,
    consumer: &Bytes,
    id: StreamId,
    time: i64,
    count: u64,
    last_id: StreamId,
) -> Vec<Bytes> {
    vec![
        b("XCLAIM"),
        key.clone(),
        g.clone(),
        consumer.clone(),
        b("0"),
        b(&id.to_string()),
        b("TIME"),
        b(&time.to_string()),
        b("RETRYCOUNT"),
        b(&count.to_string()),
        b("FORCE"),
        b("JUSTID"),
        b("LASTID"),
        b(&last_id.to_string()),
    ]
}

/// Valkey's `streamPropagateGroupID`.
pub(super) fn setid_effect(key: &Bytes, g: &Bytes, last_id: StreamId, entries_read: i64) -> Vec<Bytes> {
    vec![
        b("XGROUP"),
        b("SETID"),
        key.clone(),
        g.clone(),
        b(&last_id.to_string()),
        b("ENTRIESREAD"),
        b(&entries_read.to_string()),
    ]
}
