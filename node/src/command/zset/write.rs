//! Writes: ZADD (with its flag conflicts), ZINCRBY, ZREM, and the pops (ZPOPMIN, ZPOPMAX,
//! ZMPOP). `pop` is the shared pop step, so the blocking forms can be built on it.

use bytes::Bytes;

use super::{is, limits, limits_of, parse, write, Found};
use crate::exec::blocking::{self, Blocked, Kind};
use crate::exec::notify::class;
use crate::exec::Ctx;
use crate::keyspace::types::zset::{Added, Limits};
use crate::keyspace::types::ZSetValue;
use crate::keyspace::Value;
use crate::protocol::Reply;

/// Options of ZADD.
#[derive(Default, Clone, Copy)]
struct Flags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
    ch: bool,
    incr: bool,
}

/// ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member [score member ...]
pub fn zadd(ctx: &mut Ctx, args: &[Bytes]) {
    let mut f = Flags::default();
    let mut i = 2;
    while i < args.len() {
        let a = &args[i];
        match () {
            _ if is(a, "nx") => f.nx = true,
            _ if is(a, "xx") => f.xx = true,
            _ if is(a, "gt") => f.gt = true,
            _ if is(a, "lt") => f.lt = true,
            _ if is(a, "ch") => f.ch = true,
            _ if is(a, "incr") => f.incr = true,
            _ => break,
        }
        i += 1;
    }
    add_generic(ctx, args, i, f);
}

/// ZINCRBY key increment member
pub fn zincrby(ctx: &mut Ctx, args: &[Bytes]) {
    add_generic(ctx, args, 2, Flags { incr: true, ..Flags::default() });
}

/// Valkey's `zaddGenericCommand`: pairs start at `first`.
fn add_generic(ctx: &mut Ctx, args: &[Bytes], first: usize, f: Flags) {
    let rest = &args[first..];
    if rest.is_empty() || !rest.len().is_multiple_of(2) {
        ctx.syntax_error();
        return;
    }
    if f.nx && f.xx {
        ctx.out.err("XX and NX options at the same time are not compatible");
        return;
    }
    if (f.nx && (f.gt || f.lt)) || (f.gt && f.lt) {
        ctx.out.err("GT, LT, and/or NX options at the same time are not compatible");
        return;
    }
    if f.incr && rest.len() > 2 {
        ctx.out.err("INCR option supports a single increment-element pair");
        return;
    }
    let mut pairs = Vec::with_capacity(rest.len() / 2);
    for p in rest.chunks(2) {
        let Some(s) = parse::score(&p[0]) else {
            ctx.out.err("value is not a valid float");
            return;
        };
        pairs.push((s, &p[1][..]));
    }
    let key = &args[1];
    let r = write(
        ctx,
        key,
        |found, _, config| match found {
            // A set past the listpack limits never converts back: skip the config lookups.
            Found::ZSet(z) if z.encoding() == "skiplist" => Some(apply(z, &pairs, f, Limits::default())),
            Found::ZSet(z) => Some(apply(z, &pairs, f, limits_of(config))),
            Found::Missing => None,
        },
        |o| o.is_some_and(|(added, updated, ..)| added + updated > 0),
    );
    let outcome = match r {
        None => return,
        Some((Some(o), _)) => Some(o),
        Some((None, _)) if f.xx => None,
        Some((None, _)) => {
            let lim = limits(ctx);
            let longest = pairs.iter().map(|(_, m)| m.len()).max().unwrap_or(0);
            let mut z = ZSetValue::with_hint(pairs.len(), longest, lim);
            let o = apply(&mut z, &pairs, f, lim);
            let clock = ctx.clock();
            ctx.db().set(key, Value::ZSet(Box::new(z)), None, clock);
            Some(o)
        }
    };
    let (added, updated, processed, score, nan) = outcome.unwrap_or((0, 0, 0, 0.0, false));
    if nan {
        ctx.out.err("resulting score is not a number (NaN)");
    } else if f.incr {
        if processed > 0 {
            ctx.out.double(score);
        } else {
            ctx.out.null();
        }
    } else {
        ctx.out.int(if f.ch { added + updated } else { added });
    }
    if added + updated > 0 {
        ctx.notify(class::ZSET, if f.incr { "zincr" } else { "zadd" }, key);
    }
}

/// Valkey's `zsetAdd` over each pair: (added, updated, processed, last score, NaN hit).
fn apply(z: &mut ZSetValue, pairs: &[(f64, &[u8])], f: Flags, lim: Limits) -> (i64, i64, i64, f64, bool) {
    let (mut added, mut updated, mut processed, mut last) = (0, 0, 0, 0.0);
    for &(score, member) in pairs {
        let mut score = score;
        match z.score(member) {
            Some(cur) => {
                if f.nx {
                    continue;
                }
                if f.incr {
                    score += cur;
                    if score.is_nan() {
                        return (added, updated, processed, last, true);
                    }
                }
                if (f.lt && score >= cur) || (f.gt && score <= cur) {
                    continue;
                }
                if z.add(member, score, lim) == Added::Updated {
                    updated += 1;
                }
            }
            None if f.xx => continue,
            None => {
                z.add(member, score, lim);
                added += 1;
            }
        }
        processed += 1;
        last = score;
    }
    (added, updated, processed, last, false)
}

/// ZREM key member [member ...]
pub fn zrem(ctx: &mut Ctx, args: &[Bytes]) {
    let key = &args[1];
    let r = write(
        ctx,
        key,
        |found, _, _| match found {
            Found::Missing => 0,
            Found::ZSet(z) => {
                let mut n = 0;
                for m in &args[2..] {
                    if z.remove(m) {
                        n += 1;
                        if z.is_empty() {
                            break;
                        }
                    }
                }
                n
            }
        },
        |&n| n > 0,
    );
    let Some((deleted, removed)) = r else { return };
    ctx.out.int(deleted);
    if deleted > 0 {
        ctx.notify(class::ZSET, "zrem", key);
        if removed {
            ctx.notify(class::GENERIC, "del", key);
        }
    }
}

/// Pops up to `count` members from the low end (`max` false) or the high end of a set, in
/// pop order. The blocking pops (BZPOPMIN, BZPOPMAX, BZMPOP) are built on this.
pub fn pop(z: &mut ZSetValue, max: bool, count: usize) -> Vec<(Box<[u8]>, f64)> {
    z.pop(max, count)
}

/// ZPOPMIN key [count]
pub fn zpopmin(ctx: &mut Ctx, args: &[Bytes]) {
    zpop_cmd(ctx, args, false);
}

/// ZPOPMAX key [count]
pub fn zpopmax(ctx: &mut Ctx, args: &[Bytes]) {
    zpop_cmd(ctx, args, true);
}

fn zpop_cmd(ctx: &mut Ctx, args: &[Bytes], max: bool) {
    if args.len() > 3 {
        ctx.syntax_error();
        return;
    }
    let mut count = None;
    if let Some(c) = args.get(2) {
        match crate::util::parse_i64(c) {
            Some(n) if n >= 0 => count = Some(n as usize),
            _ => {
                ctx.out.err("value is out of range, must be positive");
                return;
            }
        }
    }
    // RESP3 nests [member, score] pairs only when a count was given.
    let nested = ctx.out.resp3 && count.is_some();
    generic_pop(ctx, &args[1..2], max, count, false, nested, false);
}

/// ZMPOP numkeys key [key ...] MIN|MAX [COUNT count]
pub fn zmpop(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(m) = parse_mpop(ctx, args, 1) else { return };
    generic_pop(ctx, &args[m.keys.clone()], m.max, Some(m.count), true, true, true);
}

/// The parsed arguments of ZMPOP / BZMPOP.
pub(super) struct MPop {
    pub keys: std::ops::Range<usize>,
    pub max: bool,
    pub count: usize,
}

/// Valkey's `zmpopGenericCommand` argument checks, `numkeys` at `numkeys_idx`.
pub(super) fn parse_mpop(ctx: &mut Ctx, args: &[Bytes], numkeys_idx: usize) -> Option<MPop> {
    let numkeys = match crate::util::parse_i64(&args[numkeys_idx]) {
        Some(n) if n >= 1 => n as usize,
        _ => {
            ctx.out.err("numkeys should be greater than 0");
            return None;
        }
    };
    let where_idx = (numkeys_idx + 1).saturating_add(numkeys);
    if where_idx >= args.len() {
        ctx.syntax_error();
        return None;
    }
    let max = if is(&args[where_idx], "min") {
        false
    } else if is(&args[where_idx], "max") {
        true
    } else {
        ctx.syntax_error();
        return None;
    };
    let mut count = None;
    let mut j = where_idx + 1;
    while j < args.len() {
        if count.is_none() && is(&args[j], "count") && j + 1 < args.len() {
            match crate::util::parse_i64(&args[j + 1]) {
                Some(n) if n >= 1 => count = Some(n as usize),
                _ => {
                    ctx.out.err("count should be greater than 0");
                    return None;
                }
            }
            j += 2;
        } else {
            ctx.syntax_error();
            return None;
        }
    }
    Some(MPop { keys: numkeys_idx + 1..where_idx, max, count: count.unwrap_or(1) })
}

/// BZPOPMIN key [key ...] timeout
pub fn bzpopmin(ctx: &mut Ctx, args: &[Bytes]) {
    bzpop(ctx, args, false);
}

/// BZPOPMAX key [key ...] timeout
pub fn bzpopmax(ctx: &mut Ctx, args: &[Bytes]) {
    bzpop(ctx, args, true);
}

/// Valkey's `blockingGenericZpopCommand`: `[key, member, score]` from the first non-empty
/// key, else the client blocks (this same handler runs again when a key is signalled).
fn bzpop(ctx: &mut Ctx, args: &[Bytes], max: bool) {
    let last = args.len() - 1;
    let Some(deadline) = blocking::parse_timeout(ctx, &args[last]) else { return };
    let keys = &args[1..last];
    if try_pop(ctx, keys, max, None, true, false) {
        return;
    }
    if blocking::block(ctx, args, keys, deadline, Kind::ZSet) == Blocked::Denied {
        ctx.out.null_array();
    }
}

/// BZMPOP timeout numkeys key [key ...] MIN|MAX [COUNT count]
pub fn bzmpop(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(m) = parse_mpop(ctx, args, 2) else { return };
    let Some(deadline) = blocking::parse_timeout(ctx, &args[1]) else { return };
    let keys = &args[m.keys.clone()];
    if try_pop(ctx, keys, m.max, Some(m.count), true, true) {
        return;
    }
    if blocking::block(ctx, args, keys, deadline, Kind::ZSet) == Blocked::Denied {
        ctx.out.null_array();
    }
}

/// Valkey's `genericZpopCommand`: pops from the first non-empty key of `keys`.
fn generic_pop(
    ctx: &mut Ctx,
    keys: &[Bytes],
    max: bool,
    count: Option<usize>,
    emit_key: bool,
    nested: bool,
    nil_when_empty: bool,
) {
    if try_pop(ctx, keys, max, count, emit_key, nested) {
        return;
    }
    if nil_when_empty {
        ctx.out.null_array();
    } else {
        ctx.out.array(0);
    }
}

/// Pops from the first non-empty key and replies; false (nothing replied) when every key is
/// missing. A wrong-type key replies its error and counts as served.
fn try_pop(
    ctx: &mut Ctx,
    keys: &[Bytes],
    max: bool,
    count: Option<usize>,
    emit_key: bool,
    nested: bool,
) -> bool {
    for key in keys {
        let r = write(
            ctx,
            key,
            |found, out, _| match found {
                Found::Missing => false,
                Found::ZSet(z) => {
                    let n = count.unwrap_or(1);
                    if n == 0 {
                        out.array(0);
                        return true;
                    }
                    let items = pop(z, max, n);
                    reply_popped(out, key, &items, emit_key, nested);
                    true
                }
            },
            |&popped| popped && count != Some(0),
        );
        match r {
            None => return true,
            Some((false, _)) => continue,
            Some((true, removed)) => {
                if count != Some(0) {
                    ctx.notify(class::ZSET, if max { "zpopmax" } else { "zpopmin" }, key);
                    if removed {
                        ctx.notify(class::GENERIC, "del", key);
                    }
                }
                return true;
            }
        }
    }
    false
}

fn reply_popped(out: &mut Reply, key: &[u8], items: &[(Box<[u8]>, f64)], emit_key: bool, nested: bool) {
    match (emit_key, nested) {
        (false, false) => out.array(items.len() * 2),
        (false, true) => out.array(items.len()),
        (true, false) => {
            out.array(items.len() * 2 + 1);
            out.bulk(key);
        }
        (true, true) => {
            out.array(2);
            out.bulk(key);
            out.array(items.len());
        }
    }
    for (m, s) in items {
        if nested {
            out.array(2);
        }
        out.bulk(m);
        out.double(*s);
    }
}
