//! Stream commands with Valkey 8's replies, error strings and check order (`t_stream.c`),
//! over `keyspace::types::stream`. Split by concern: `add` (XADD, XTRIM, XDEL, XLEN, XSETID),
//! `range` (XRANGE, XREVRANGE), `read` (XREAD, XREADGROUP, blocking through `exec::blocking`),
//! `group` (XGROUP, XACK), `claim` (XPENDING, XCLAIM, XAUTOCLAIM) and `info` (XINFO).
//!
//! Replication: a stream command whose effect depends on the node (an XADD `*` ID, `~`
//! trimming, what XREADGROUP delivered, what XCLAIM took) records the commands that
//! reproduce it with [`effect`]; `replication::propagate` sends those instead of the command
//! (Valkey's `alsoPropagate` plus `preventCommandPropagation`), so replicas end identical.

mod add;
mod claim;
mod group;
mod info;
mod range;
mod read;
#[cfg(test)]
mod tests;

use std::cell::RefCell;

use bytes::Bytes;

use super::Handler;
use crate::exec::{Ctx, Server};
use crate::keyspace::types::stream::{Entry, NodeLimits, StreamId, StreamValue};
use crate::keyspace::Value;
use crate::protocol::Reply;

pub fn handler(name: &str) -> Option<Handler> {
    Some(match name {
        "xadd" => add::xadd,
        "xtrim" => add::xtrim,
        "xdel" => add::xdel,
        "xlen" => add::xlen,
        "xsetid" => add::xsetid,
        "xrange" => range::xrange,
        "xrevrange" => range::xrevrange,
        "xread" => read::xread,
        "xreadgroup" => read::xreadgroup,
        "xgroup|create" => group::create,
        "xgroup|setid" => group::setid,
        "xgroup|destroy" => group::destroy,
        "xgroup|createconsumer" => group::createconsumer,
        "xgroup|delconsumer" => group::delconsumer,
        "xgroup|help" => group::help,
        "xack" => group::xack,
        "xpending" => claim::xpending,
        "xclaim" => claim::xclaim,
        "xautoclaim" => claim::xautoclaim,
        "xinfo|stream" => info::stream,
        "xinfo|groups" => info::groups,
        "xinfo|consumers" => info::consumers,
        "xinfo|help" => info::help,
        _ => return None,
    })
}

const INVALID_ID: &str = "Invalid stream ID specified as stream command argument";

thread_local! {
    /// Commands that reproduce the running stream command's effect on a replica.
    static EFFECTS: RefCell<Option<Vec<Vec<Bytes>>>> = const { RefCell::new(None) };
}

/// Starts recording: the command's effects replace it in the replication stream. Nothing is
/// recorded (or allocated) while there is no replication stream to feed.
fn effects_begin(ctx: &Ctx) {
    let on = ctx.srv.repl.active();
    EFFECTS.with(|e| *e.borrow_mut() = on.then(Vec::new));
}

/// True while effects are being recorded (replication is on).
fn recording() -> bool {
    EFFECTS.with(|e| e.borrow().is_some())
}

/// Records one command of the running command's effect (built only while recording).
fn effect(args: impl FnOnce() -> Vec<Bytes>) {
    EFFECTS.with(|e| {
        if let Some(v) = e.borrow_mut().as_mut() {
            v.push(args());
        }
    });
}

/// The effects recorded by the stream command that just ran, `None` if it recorded none
/// (it then propagates verbatim). Called by `replication::propagate`.
pub fn take_effects() -> Option<Vec<Vec<Bytes>>> {
    EFFECTS.with(|e| e.borrow_mut().take())
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// A key looked up for a stream command.
enum Got<'c> {
    Missing,
    WrongType,
    Stream(&'c mut StreamValue),
}

/// `lookupKeyRead`/`lookupKeyWrite` plus the type check, with the reply buffer split off.
fn get<'c>(ctx: &'c mut Ctx<'_>, key: &[u8], read: bool) -> (Got<'c>, &'c mut Reply) {
    let st = &ctx.clients[ctx.me].st;
    let (db, touch) = (st.db, !st.no_touch);
    let clock = ctx.srv.lru_clock();
    let Server { dbs, stats, .. } = &mut *ctx.srv;
    let got = match dbs[db].get(key, ctx.now_ms, clock, touch) {
        None => {
            if read {
                stats.keyspace_misses += 1;
            }
            Got::Missing
        }
        Some(e) => {
            if read {
                stats.keyspace_hits += 1;
            }
            match e.into_value_mut_untracked() {
                Some(Value::Stream(s)) => Got::Stream(s),
                _ => Got::WrongType,
            }
        }
    };
    (got, &mut *ctx.out)
}

/// Creates an empty stream at `key` (which is missing).
fn create(ctx: &mut Ctx, key: &[u8]) {
    let clock = ctx.clock();
    ctx.db().set(key, Value::Stream(Box::default()), None, clock);
}

/// Records a change of `key` (WATCH, the replication change count).
fn touched(ctx: &mut Ctx, key: &[u8]) {
    ctx.db().signal_modified(key);
}

fn limits(ctx: &Ctx) -> NodeLimits {
    let cfg = &ctx.srv.config;
    NodeLimits {
        max_bytes: usize::try_from(cfg.get_i64("stream-node-max-bytes")).unwrap_or(4096),
        max_entries: u32::try_from(cfg.get_i64("stream-node-max-entries")).unwrap_or(u32::MAX),
    }
}

/// `string2ull`: a canonical integer, or what `strtoull` reads (leading space, a sign,
/// leading zeros) when it consumes the whole string without overflow.
fn string2ull(s: &[u8]) -> Option<u64> {
    if let Some(v) = crate::util::parse_i64(s) {
        return u64::try_from(v).ok();
    }
    let mut i = 0;
    while i < s.len() && matches!(s[i], b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r') {
        i += 1;
    }
    let neg = match s.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let digits = &s[i..];
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut v: u64 = 0;
    for &d in digits {
        v = v.checked_mul(10)?.checked_add((d - b'0') as u64)?;
    }
    Some(if neg { v.wrapping_neg() } else { v })
}

/// Valkey's `streamGenericParseIDOrReply`: `-`/`+` (unless `strict`), `<ms>`, `<ms>-<seq>`
/// and, when `allow_auto_seq`, `<ms>-*`. Returns the ID and whether the sequence was given.
fn parse_id(arg: &[u8], strict: bool, missing_seq: u64, allow_auto_seq: bool) -> Option<(StreamId, bool)> {
    if arg.len() > 127 {
        return None;
    }
    // The C code works on a NUL-terminated copy.
    let buf = &arg[..arg.iter().position(|&c| c == 0).unwrap_or(arg.len())];
    if buf == b"-" || buf == b"+" {
        if strict {
            return None;
        }
        return Some((if buf == b"-" { StreamId::MIN } else { StreamId::MAX }, true));
    }
    match buf.iter().position(|&c| c == b'-') {
        Some(dash) => {
            let ms = string2ull(&buf[..dash])?;
            let rest = &buf[dash + 1..];
            if allow_auto_seq && rest == b"*" {
                return Some((StreamId::new(ms, 0), false));
            }
            Some((StreamId::new(ms, string2ull(rest)?), true))
        }
        None => Some((StreamId::new(string2ull(buf)?, missing_seq), true)),
    }
}

/// A strict ID (`streamParseStrictIDOrReply`), replying the error when invalid.
fn strict_id(ctx: &mut Ctx, arg: &[u8]) -> Option<StreamId> {
    let id = parse_id(arg, true, 0, false).map(|p| p.0);
    if id.is_none() {
        ctx.out.err(INVALID_ID);
    }
    id
}

/// `streamParseIntervalIDOrReply` plus the exclusive-bound adjustment of XRANGE/XPENDING:
/// `(id` moves one up (a start) or down (an end).
fn interval_id(ctx: &mut Ctx, arg: &[u8], start: bool) -> Option<StreamId> {
    let missing_seq = if start { 0 } else { u64::MAX };
    let exclusive = arg.len() > 1 && arg[0] == b'(';
    let parsed = if exclusive {
        parse_id(&arg[1..], true, missing_seq, false)
    } else {
        parse_id(arg, false, missing_seq, false)
    };
    let Some((id, _)) = parsed else {
        ctx.out.err(INVALID_ID);
        return None;
    };
    if !exclusive {
        return Some(id);
    }
    let moved = if start { id.next() } else { id.prev() };
    if moved.is_none() {
        ctx.out.err(if start {
            "invalid start ID for the interval"
        } else {
            "invalid end ID for the interval"
        });
    }
    moved
}

fn reply_id(out: &mut Reply, id: StreamId) {
    // `<ms>-<seq>` in a stack buffer: this runs once per entry of every reply.
    let mut buf = [0u8; 41];
    let (mut a, mut b) = (itoa::Buffer::new(), itoa::Buffer::new());
    let (ms, seq) = (a.format(id.ms).as_bytes(), b.format(id.seq).as_bytes());
    buf[..ms.len()].copy_from_slice(ms);
    buf[ms.len()] = b'-';
    buf[ms.len() + 1..ms.len() + 1 + seq.len()].copy_from_slice(seq);
    out.bulk(&buf[..ms.len() + 1 + seq.len()]);
}

/// `[id, [field, value, ...]]`.
fn reply_entry(out: &mut Reply, e: &Entry<'_>) {
    out.array(2);
    reply_id(out, e.id);
    out.array(e.fields.len() * 2);
    for (f, v) in &e.fields {
        out.bulk(f);
        out.bulk(v);
    }
}

fn lossy(b: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(b)
}

/// `-NOGROUP No such key '<key>' or consumer group '<group>'<suffix>`.
fn no_key_or_group(out: &mut Reply, key: &[u8], group: &[u8], suffix: &str) {
    out.error(&format!("NOGROUP No such key '{}' or consumer group '{}'{suffix}", lossy(key), lossy(group)));
}

/// `-NOGROUP No such consumer group '<group>' for key name '<key>'`.
fn no_group(out: &mut Reply, key: &[u8], group: &[u8]) {
    out.error(&format!("NOGROUP No such consumer group '{}' for key name '{}'", lossy(group), lossy(key)));
}

/// `addReplySubcommandSyntaxError`.
fn subcommand_syntax(ctx: &mut Ctx, args: &[Bytes]) {
    let msg = format!(
        "unknown subcommand or wrong number of arguments for '{}'. Try {} HELP.",
        lossy(&args[1][..args[1].len().min(128)]),
        lossy(&args[0]).to_uppercase()
    );
    ctx.out.err(&msg);
}

/// The help lines of XGROUP HELP / XINFO HELP, with Valkey's header and footer.
fn reply_help(ctx: &mut Ctx, name: &str, lines: &[&str]) {
    ctx.out.array(lines.len() + 3);
    ctx.out.simple(&format!("{name} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"));
    for l in lines {
        ctx.out.simple(l);
    }
    ctx.out.simple("HELP");
    ctx.out.simple("    Print this help.");
}
