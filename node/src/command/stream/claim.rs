//! XPENDING, XCLAIM and XAUTOCLAIM: reading and moving a group's pending entries. Claims
//! reach replicas as Valkey sends them (one `XCLAIM ... FORCE JUSTID` per entry, or
//! `XGROUP SETID` for a lone LASTID), recorded with `effect`.

use bytes::Bytes;

use super::read::{setid_effect, xclaim_effect};
use super::{
    b, effect, effects_begin, get, interval_id, no_key_or_group, reply_entry, reply_id, strict_id, touched,
    Got,
};
use crate::exec::notify::class;
use crate::exec::{Ctx, WRONGTYPE};
use crate::keyspace::types::stream::{Pending, StreamId};

/// XPENDING key group [[IDLE min-idle-time] start end count [consumer]]
pub fn xpending(ctx: &mut Ctx, args: &[Bytes]) {
    let argc = args.len();
    if argc != 3 && !(6..=9).contains(&argc) {
        return ctx.syntax_error();
    }
    let mut range = None;
    let mut consumer: Option<&Bytes> = None;
    let mut minidle = 0i64;
    if argc >= 6 {
        let mut at = 3;
        if args[3].eq_ignore_ascii_case(b"idle") {
            let Some(v) = ctx.arg_i64(&args[4]) else { return };
            minidle = v;
            if argc < 8 {
                return ctx.syntax_error();
            }
            at += 2;
        }
        let Some(count) = ctx.arg_i64(&args[at + 2]) else { return };
        let Some(start) = interval_id(ctx, &args[at], true) else { return };
        let Some(end) = interval_id(ctx, &args[at + 1], false) else { return };
        consumer = args.get(at + 3);
        range = Some((start, end, count.max(0) as u64));
    }
    let (key, gname) = (&args[1], &args[2]);
    let now = ctx.now_ms;
    let (s, out) = match get(ctx, key, true) {
        (Got::WrongType, out) => return out.error(WRONGTYPE),
        (Got::Missing, out) => return no_key_or_group(out, key, gname, ""),
        (Got::Stream(s), out) => (s, out),
    };
    let Some(g) = s.groups.get(&gname[..]) else { return no_key_or_group(out, key, gname, "") };
    let Some((start, end, count)) = range else {
        out.array(4);
        out.int(g.pel.len() as i64);
        let (Some((first, _)), Some((last, _))) = (g.pel.first_key_value(), g.pel.last_key_value()) else {
            out.null();
            out.null();
            return out.null_array();
        };
        reply_id(out, *first);
        reply_id(out, *last);
        let busy: Vec<_> = g.consumers.iter().filter(|(_, c)| !c.pel.is_empty()).collect();
        out.array(busy.len());
        for (name, c) in busy {
            out.array(2);
            out.bulk(name);
            out.bulk(c.pel.len().to_string().as_bytes());
        }
        return;
    };
    let ids: Vec<StreamId> = match consumer {
        Some(name) => match g.consumers.get(&name[..]) {
            Some(c) if start <= end => c.pel.range(start..=end).copied().collect(),
            Some(_) => Vec::new(),
            None => return out.array(0),
        },
        None if start <= end => g.pel.range(start..=end).map(|(id, _)| *id).collect(),
        None => Vec::new(),
    };
    let mut rows: Vec<(StreamId, &Pending)> = Vec::new();
    for id in ids {
        if rows.len() as u64 >= count {
            break;
        }
        let Some(p) = g.pel.get(&id) else { continue };
        if minidle != 0 && now.saturating_sub(p.delivery_time) < minidle {
            continue;
        }
        rows.push((id, p));
    }
    out.array(rows.len());
    for (id, p) in rows {
        out.array(4);
        reply_id(out, id);
        out.bulk(&p.consumer);
        out.int(now.saturating_sub(p.delivery_time).max(0));
        out.int(p.delivery_count as i64);
    }
}

/// Parses `arg` as a long long, replying `-ERR <msg>` if it is not one.
fn ll_or(ctx: &mut Ctx, arg: &[u8], msg: &str) -> Option<i64> {
    let v = crate::util::parse_i64(arg);
    if v.is_none() {
        ctx.out.err(msg);
    }
    v
}

/// XCLAIM key group consumer min-idle-time id [id ...] [IDLE ms] [TIME unix-time-ms]
/// [RETRYCOUNT count] [FORCE] [JUSTID] [LASTID lastid]
pub fn xclaim(ctx: &mut Ctx, args: &[Bytes]) {
    effects_begin(ctx);
    let (key, gname, cname) = (&args[1], &args[2], &args[3]);
    let found = match get(ctx, key, true) {
        (Got::WrongType, out) => return out.error(WRONGTYPE),
        (Got::Missing, _) => false,
        (Got::Stream(s), _) => s.groups.contains_key(&gname[..]),
    };
    if !found {
        return no_key_or_group(ctx.out, key, gname, "");
    }
    let Some(minidle) = ll_or(ctx, &args[4], "Invalid min-idle-time argument for XCLAIM") else { return };
    let minidle = minidle.max(0);
    let mut ids = Vec::new();
    let mut j = 5;
    while j < args.len() {
        match super::parse_id(&args[j], true, 0, false) {
            Some((id, _)) => ids.push(id),
            None => break,
        }
        j += 1;
    }
    let now = ctx.now_ms;
    let (mut force, mut justid) = (false, false);
    let mut retrycount: Option<u64> = None;
    let mut deliverytime: Option<i64> = None;
    let mut last_id = StreamId::MIN;
    while j < args.len() {
        let more = args.len() - 1 - j;
        let opt = &args[j];
        if opt.eq_ignore_ascii_case(b"force") {
            force = true;
        } else if opt.eq_ignore_ascii_case(b"justid") {
            justid = true;
        } else if opt.eq_ignore_ascii_case(b"idle") && more > 0 {
            j += 1;
            let Some(v) = ll_or(ctx, &args[j], "Invalid IDLE option argument for XCLAIM") else { return };
            deliverytime = Some(now.wrapping_sub(v));
        } else if opt.eq_ignore_ascii_case(b"time") && more > 0 {
            j += 1;
            let Some(v) = ll_or(ctx, &args[j], "Invalid TIME option argument for XCLAIM") else { return };
            deliverytime = Some(v);
        } else if opt.eq_ignore_ascii_case(b"retrycount") && more > 0 {
            j += 1;
            let Some(v) = ll_or(ctx, &args[j], "Invalid RETRYCOUNT option argument for XCLAIM") else {
                return;
            };
            retrycount = u64::try_from(v).ok();
        } else if opt.eq_ignore_ascii_case(b"lastid") && more > 0 {
            j += 1;
            let Some(id) = strict_id(ctx, &args[j]) else { return };
            last_id = id;
        } else {
            let msg = format!("Unrecognized XCLAIM option '{}'", String::from_utf8_lossy(opt));
            return ctx.out.err(&msg);
        }
        j += 1;
    }
    let deliverytime = match deliverytime {
        Some(t) if t >= 0 && t <= now => t,
        _ => now,
    };
    let (Got::Stream(s), out) = get(ctx, key, false) else { return };
    let mut propagate_last_id = false;
    let mut created = false;
    if let Some(g) = s.groups.get_mut(&gname[..]) {
        if last_id > g.last_id {
            g.last_id = last_id;
            propagate_last_id = true;
        }
        // Valkey creates the consumer (and marks it seen) before claiming anything.
        created = g.touch_consumer(cname, now);
        if created {
            effect(|| vec![b("XGROUP"), b("CREATECONSUMER"), key.clone(), gname.clone(), cname.clone()]);
        }
    }
    let mut claimed: Vec<StreamId> = Vec::new();
    let mut changed = propagate_last_id;
    for id in ids {
        let exists = s.get(id).is_some();
        let Some(g) = s.groups.get_mut(&gname[..]) else { return };
        if !exists {
            if let Some(p) = g.pel.get(&id) {
                effect(|| {
                    xclaim_effect(key, gname, &p.consumer, id, p.delivery_time, p.delivery_count, g.last_id)
                });
                propagate_last_id = false;
                g.ack(id);
                changed = true;
            }
            continue;
        }
        let fresh = !g.pel.contains_key(&id);
        if fresh && !force {
            continue;
        }
        if !fresh && minidle > 0 {
            let idle = now.saturating_sub(g.pel[&id].delivery_time);
            if idle < minidle {
                continue;
            }
        }
        if fresh {
            g.deliver(id, cname, deliverytime);
        } else {
            g.reassign(id, cname);
        }
        if let Some(c) = g.consumers.get_mut(&cname[..]) {
            c.active_time = now;
        }
        let last = g.last_id;
        let Some(p) = g.pel.get_mut(&id) else { continue };
        p.delivery_time = deliverytime;
        if let Some(n) = retrycount {
            p.delivery_count = n;
        } else if !justid {
            p.delivery_count += 1;
        }
        effect(|| xclaim_effect(key, gname, cname, id, p.delivery_time, p.delivery_count, last));
        propagate_last_id = false;
        changed = true;
        claimed.push(id);
    }
    if propagate_last_id {
        if let Some(g) = s.groups.get(&gname[..]) {
            effect(|| setid_effect(key, gname, g.last_id, g.entries_read));
        }
    }
    out.array(claimed.len());
    for id in claimed {
        if justid {
            reply_id(out, id);
        } else {
            match s.get(id) {
                Some(e) => reply_entry(out, &e),
                None => out.null(),
            }
        }
    }
    if changed || created {
        touched(ctx, key);
    }
    if created {
        ctx.notify(class::STREAM, "xgroup-createconsumer", key);
    }
}

/// XAUTOCLAIM key group consumer min-idle-time start [COUNT count] [JUSTID]
pub fn xautoclaim(ctx: &mut Ctx, args: &[Bytes]) {
    effects_begin(ctx);
    let (key, gname, cname) = (&args[1], &args[2], &args[3]);
    let Some(minidle) = ll_or(ctx, &args[4], "Invalid min-idle-time argument for XAUTOCLAIM") else { return };
    let minidle = minidle.max(0);
    let Some(start) = interval_id(ctx, &args[5], true) else { return };
    let mut count: u64 = 100;
    let mut justid = false;
    let mut j = 6;
    while j < args.len() {
        let more = args.len() - 1 - j;
        if args[j].eq_ignore_ascii_case(b"count") && more > 0 {
            let max = (i64::MAX / 16) as u64;
            match crate::util::parse_i64(&args[j + 1]).and_then(|v| u64::try_from(v).ok()) {
                Some(v) if (1..=max).contains(&v) => count = v,
                _ => return ctx.out.err("COUNT must be > 0"),
            }
            j += 1;
        } else if args[j].eq_ignore_ascii_case(b"justid") {
            justid = true;
        } else {
            return ctx.syntax_error();
        }
        j += 1;
    }
    let now = ctx.now_ms;
    let (s, out) = match get(ctx, key, true) {
        (Got::WrongType, out) => return out.error(WRONGTYPE),
        (Got::Missing, out) => return no_key_or_group(out, key, gname, ""),
        (Got::Stream(s), out) => (s, out),
    };
    let Some(g) = s.groups.get_mut(&gname[..]) else { return no_key_or_group(out, key, gname, "") };
    let created = g.touch_consumer(cname, now);
    if created {
        effect(|| vec![b("XGROUP"), b("CREATECONSUMER"), key.clone(), gname.clone(), cname.clone()]);
    }
    let mut attempts = count.saturating_mul(10);
    let mut left = count;
    let mut claimed: Vec<StreamId> = Vec::new();
    let mut deleted: Vec<StreamId> = Vec::new();
    let mut last_seen: Option<StreamId> = None;
    let mut eof = false;
    loop {
        if attempts == 0 || left == 0 {
            break;
        }
        attempts -= 1;
        let from = match last_seen {
            None => std::ops::Bound::Included(start),
            Some(id) => std::ops::Bound::Excluded(id),
        };
        let Some(g) = s.groups.get(&gname[..]) else { return };
        let Some(id) = g.pel.range((from, std::ops::Bound::Unbounded)).next().map(|(id, _)| *id) else {
            eof = true;
            break;
        };
        last_seen = Some(id);
        let exists = s.get(id).is_some();
        let Some(g) = s.groups.get_mut(&gname[..]) else { return };
        if !exists {
            if let Some(p) = g.pel.get(&id) {
                effect(|| {
                    xclaim_effect(key, gname, &p.consumer, id, p.delivery_time, p.delivery_count, g.last_id)
                });
            }
            g.ack(id);
            deleted.push(id);
            left -= 1;
            continue;
        }
        if minidle > 0 && now.saturating_sub(g.pel[&id].delivery_time) < minidle {
            continue;
        }
        g.reassign(id, cname);
        if let Some(c) = g.consumers.get_mut(&cname[..]) {
            c.active_time = now;
        }
        let last = g.last_id;
        let Some(p) = g.pel.get_mut(&id) else { continue };
        p.delivery_time = now;
        if !justid {
            p.delivery_count += 1;
        }
        effect(|| xclaim_effect(key, gname, cname, id, p.delivery_time, p.delivery_count, last));
        claimed.push(id);
        left -= 1;
    }
    // The cursor: the pending entry after the last one looked at (0-0 at the end).
    let next = if eof {
        None
    } else {
        let g = s.groups.get(&gname[..]);
        match last_seen {
            Some(id) => g.and_then(|g| {
                g.pel
                    .range((std::ops::Bound::Excluded(id), std::ops::Bound::Unbounded))
                    .next()
                    .map(|(i, _)| *i)
            }),
            None => None,
        }
    };
    out.array(3);
    reply_id(out, next.unwrap_or(StreamId::MIN));
    out.array(claimed.len());
    for &id in &claimed {
        if justid {
            reply_id(out, id);
        } else {
            match s.get(id) {
                Some(e) => reply_entry(out, &e),
                None => out.null(),
            }
        }
    }
    out.array(deleted.len());
    for &id in &deleted {
        reply_id(out, id);
    }
    if !claimed.is_empty() || !deleted.is_empty() || created {
        touched(ctx, key);
    }
    if created {
        ctx.notify(class::STREAM, "xgroup-createconsumer", key);
    }
}
