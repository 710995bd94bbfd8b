//! XINFO STREAM [FULL [COUNT n]], GROUPS, CONSUMERS and HELP (`xinfoCommand`), with
//! Valkey 8's fields (consumers' `active-time` and `inactive`). `radix-tree-nodes` is
//! Shoal's node count: it has no radix tree, and the figure is internal to Valkey anyway.

use bytes::Bytes;

use super::{get, no_group, reply_entry, reply_help, reply_id, Got};
use crate::exec::{Ctx, WRONGTYPE};
use crate::keyspace::types::stream::{Group, StreamId, StreamValue, INVALID_ENTRIES_READ};
use crate::protocol::Reply;

/// The stream at `args[2]`, or the error replied (`no such key`, WRONGTYPE).
fn lookup<'c>(ctx: &'c mut Ctx<'_>, key: &[u8]) -> Option<(&'c mut StreamValue, &'c mut Reply)> {
    match get(ctx, key, true) {
        (Got::WrongType, out) => {
            out.error(WRONGTYPE);
            None
        }
        (Got::Missing, out) => {
            out.err("no such key");
            None
        }
        (Got::Stream(s), out) => Some((s, out)),
    }
}

fn entries_read(out: &mut Reply, g: &Group) {
    if g.entries_read == INVALID_ENTRIES_READ {
        out.null();
    } else {
        out.int(g.entries_read);
    }
}

fn lag(out: &mut Reply, s: &StreamValue, g: &Group) {
    match s.group_lag(g) {
        Some(l) => out.int(l),
        None => out.null(),
    }
}

/// XINFO STREAM key [FULL [COUNT count]]
pub fn stream(ctx: &mut Ctx, args: &[Bytes]) {
    let rest = &args[3..];
    let (full, count) = match rest.len() {
        0 => (false, 0),
        1 if rest[0].eq_ignore_ascii_case(b"full") => (true, 10),
        3 if rest[0].eq_ignore_ascii_case(b"full") && rest[1].eq_ignore_ascii_case(b"count") => {
            let Some(n) = ctx.arg_i64(&rest[2]) else { return };
            (true, if n < 0 { 10 } else { n })
        }
        _ => return super::subcommand_syntax(ctx, args),
    };
    let Some((s, out)) = lookup(ctx, &args[2]) else { return };
    let limit = if count == 0 { usize::MAX } else { usize::try_from(count).unwrap_or(usize::MAX) };
    out.map(if full { 9 } else { 10 });
    out.bulk(b"length");
    out.int(s.len() as i64);
    out.bulk(b"radix-tree-keys");
    out.int(s.node_count() as i64);
    out.bulk(b"radix-tree-nodes");
    out.int(s.node_count() as i64 + 1);
    out.bulk(b"last-generated-id");
    reply_id(out, s.last_id);
    out.bulk(b"max-deleted-entry-id");
    reply_id(out, s.max_deleted_id);
    out.bulk(b"entries-added");
    out.int(s.entries_added as i64);
    out.bulk(b"recorded-first-entry-id");
    reply_id(out, s.first_id);
    if !full {
        out.bulk(b"groups");
        out.int(s.groups.len() as i64);
        for (name, first) in [(&b"first-entry"[..], true), (b"last-entry", false)] {
            out.bulk(name);
            match s.edge_id(first).and_then(|id| s.get(id)) {
                Some(e) => reply_entry(out, &e),
                None => out.null(),
            }
        }
        return;
    }
    out.bulk(b"entries");
    let entries: Vec<_> = s.range(StreamId::MIN, StreamId::MAX, false).take(limit).collect();
    out.array(entries.len());
    for e in &entries {
        reply_entry(out, e);
    }
    out.bulk(b"groups");
    out.array(s.groups.len());
    for (name, g) in &s.groups {
        out.map(7);
        out.bulk(b"name");
        out.bulk(name);
        out.bulk(b"last-delivered-id");
        reply_id(out, g.last_id);
        out.bulk(b"entries-read");
        entries_read(out, g);
        out.bulk(b"lag");
        lag(out, s, g);
        out.bulk(b"pel-count");
        out.int(g.pel.len() as i64);
        out.bulk(b"pending");
        let pel: Vec<_> = g.pel.iter().take(limit).collect();
        out.array(pel.len());
        for (id, p) in pel {
            out.array(4);
            reply_id(out, *id);
            out.bulk(&p.consumer);
            out.int(p.delivery_time);
            out.int(p.delivery_count as i64);
        }
        out.bulk(b"consumers");
        out.array(g.consumers.len());
        for (cname, c) in &g.consumers {
            out.map(5);
            out.bulk(b"name");
            out.bulk(cname);
            out.bulk(b"seen-time");
            out.int(c.seen_time);
            out.bulk(b"active-time");
            out.int(c.active_time);
            out.bulk(b"pel-count");
            out.int(c.pel.len() as i64);
            out.bulk(b"pending");
            let ids: Vec<_> = c.pel.iter().take(limit).collect();
            out.array(ids.len());
            for id in ids {
                out.array(3);
                reply_id(out, *id);
                let p = g.pel.get(id);
                out.int(p.map_or(0, |p| p.delivery_time));
                out.int(p.map_or(0, |p| p.delivery_count as i64));
            }
        }
    }
}

/// XINFO GROUPS key
pub fn groups(ctx: &mut Ctx, args: &[Bytes]) {
    let Some((s, out)) = lookup(ctx, &args[2]) else { return };
    out.array(s.groups.len());
    for (name, g) in &s.groups {
        out.map(6);
        out.bulk(b"name");
        out.bulk(name);
        out.bulk(b"consumers");
        out.int(g.consumers.len() as i64);
        out.bulk(b"pending");
        out.int(g.pel.len() as i64);
        out.bulk(b"last-delivered-id");
        reply_id(out, g.last_id);
        out.bulk(b"entries-read");
        entries_read(out, g);
        out.bulk(b"lag");
        lag(out, s, g);
    }
}

/// XINFO CONSUMERS key group
pub fn consumers(ctx: &mut Ctx, args: &[Bytes]) {
    let now = ctx.now_ms;
    let (key, gname) = (&args[2], &args[3]);
    let Some((s, out)) = lookup(ctx, key) else { return };
    let Some(g) = s.groups.get(&gname[..]) else { return no_group(out, key, gname) };
    out.array(g.consumers.len());
    for (name, c) in &g.consumers {
        out.map(4);
        out.bulk(b"name");
        out.bulk(name);
        out.bulk(b"pending");
        out.int(c.pel.len() as i64);
        out.bulk(b"idle");
        out.int(now.saturating_sub(c.seen_time).max(0));
        out.bulk(b"inactive");
        out.int(if c.active_time == -1 { -1 } else { now.saturating_sub(c.active_time) });
    }
}

/// XINFO HELP
pub fn help(ctx: &mut Ctx, args: &[Bytes]) {
    let name = String::from_utf8_lossy(&args[0]).to_uppercase();
    reply_help(
        ctx,
        &name,
        &[
            "CONSUMERS <key> <groupname>",
            "    Show consumers of <groupname>.",
            "GROUPS <key>",
            "    Show the stream consumer groups.",
            "STREAM <key> [FULL [COUNT <count>]",
            "    Show information about the stream.",
        ],
    );
}
