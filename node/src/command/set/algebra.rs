//! Set algebra: SINTER, SINTERCARD, SINTERSTORE, SUNION, SUNIONSTORE, SDIFF, SDIFFSTORE.
//! Each source key is looked up once (statistics, lazy expiry, type check in argument order)
//! and then read in place; results are built as Valkey builds them — the same starting
//! encoding and the same sequence of adds — so a stored result reports the encoding Valkey's
//! would.

use bytes::Bytes;

use super::{db_and_out, find_set, limits, set_in, Found};
use crate::command::hash::cstr;
use crate::exec::notify::class;
use crate::exec::Ctx;
use crate::keyspace::types::SetValue;
use crate::keyspace::Value;
use crate::util::parse_i64;

/// Removed destination values at least this big are dropped off the executor.
const FREE_LATER_MIN: usize = 64 * 1024;

/// Looks every key up in order; replies WRONGTYPE (and returns `None`) at the first key of
/// another type, else returns how many keys are missing.
fn lookup_all(ctx: &mut Ctx, keys: &[Bytes]) -> Option<usize> {
    let mut missing = 0;
    for k in keys {
        match find_set(ctx, k) {
            Found::Missing => missing += 1,
            Found::WrongType => {
                ctx.wrong_type();
                return None;
            }
            Found::Set => {}
        }
    }
    Some(missing)
}

/// Stores a result set at `dst` (replacing whatever was there, TTL included) and replies its
/// size; an empty result deletes `dst` instead.
fn store(ctx: &mut Ctx, dst: &[u8], result: SetValue, event: &str) {
    if result.is_empty() {
        return store_empty(ctx, dst);
    }
    let n = result.len();
    let clock = ctx.clock();
    let old = ctx.db().set(dst, Value::Set(Box::new(result)), None, clock);
    if let Some(old) = old {
        if old.value().heap_size() >= FREE_LATER_MIN {
            ctx.free_later(old);
        }
    }
    ctx.out.int(n as i64);
    ctx.notify(class::SET, event, dst);
}

fn store_empty(ctx: &mut Ctx, dst: &[u8]) {
    ctx.out.int(0);
    if let Some(old) = ctx.db().remove(dst) {
        if old.value().heap_size() >= FREE_LATER_MIN {
            ctx.free_later(old);
        }
        ctx.notify(class::GENERIC, "del", dst);
    }
}

/// What an intersection produces.
enum Inter<'a> {
    Reply,
    Card(usize),
    Store(&'a [u8]),
}

/// Valkey's `sinterGenericCommand`.
fn inter(ctx: &mut Ctx, keys: &[Bytes], mode: Inter) {
    let Some(missing) = lookup_all(ctx, keys) else { return };
    if missing > 0 {
        return match mode {
            Inter::Store(dst) => store_empty(ctx, dst),
            Inter::Card(_) => ctx.out.int(0),
            Inter::Reply => ctx.out.set(0),
        };
    }
    let lim = limits(ctx);
    let (db, out) = db_and_out(ctx);
    let mut sets: Vec<&SetValue> = keys.iter().filter_map(|k| set_in(db, k)).collect();
    sets.sort_by_key(|s| s.len());
    let first = sets[0];
    let others: Vec<&SetValue> = sets[1..].iter().copied().filter(|s| !std::ptr::eq(*s, first)).collect();
    let common = first.iter().filter(|m| others.iter().all(|s| s.contains(m)));
    match mode {
        Inter::Reply => {
            let found: Vec<&[u8]> = common.collect();
            out.set(found.len());
            found.iter().for_each(|m| out.bulk(m));
        }
        Inter::Card(limit) => {
            let n = if limit == 0 { common.count() } else { common.take(limit).count() };
            out.int(n as i64);
        }
        Inter::Store(dst) => {
            let mut result =
                if first.encoding() == "intset" { SetValue::default() } else { SetValue::new_listpack() };
            let mut only_integers = true;
            for m in common {
                only_integers &= parse_i64(m).is_some();
                result.add(m, &lim);
            }
            if only_integers {
                result.maybe_to_intset(&lim);
            }
            store(ctx, dst, result, "sinterstore");
        }
    }
}

/// SINTER key [key ...] (a set in RESP3)
pub fn sinter(ctx: &mut Ctx, args: &[Bytes]) {
    inter(ctx, &args[1..], Inter::Reply);
}

/// SINTERSTORE destination key [key ...]
pub fn sinterstore(ctx: &mut Ctx, args: &[Bytes]) {
    inter(ctx, &args[2..], Inter::Store(&args[1]));
}

/// SINTERCARD numkeys key [key ...] [LIMIT limit]
pub fn sintercard(ctx: &mut Ctx, args: &[Bytes]) {
    let numkeys = match parse_i64(&args[1]) {
        Some(n) if n >= 1 => n as usize,
        _ => return ctx.out.err("numkeys should be greater than 0"),
    };
    if numkeys > args.len() - 2 {
        return ctx.out.err("Number of keys can't be greater than number of args");
    }
    let mut limit = 0;
    let mut j = 2 + numkeys;
    while j < args.len() {
        if cstr(&args[j]).eq_ignore_ascii_case(b"limit") && j + 1 < args.len() {
            j += 1;
            match parse_i64(&args[j]) {
                Some(n) if n >= 0 => limit = n as usize,
                _ => return ctx.out.err("LIMIT can't be negative"),
            }
        } else {
            return ctx.syntax_error();
        }
        j += 1;
    }
    inter(ctx, &args[2..2 + numkeys], Inter::Card(limit));
}

#[derive(Clone, Copy, PartialEq)]
enum Op {
    Union,
    Diff,
}

/// Valkey's `sunionDiffGenericCommand`.
fn union_diff(ctx: &mut Ctx, keys: &[Bytes], dst: Option<&[u8]>, op: Op) {
    if lookup_all(ctx, keys).is_none() {
        return;
    }
    let lim = limits(ctx);
    let (db, out) = db_and_out(ctx);
    let mut sets: Vec<Option<&SetValue>> = keys.iter().map(|k| set_in(db, k)).collect();
    let sameset =
        keys[1..].iter().zip(&sets[1..]).any(|(k, s)| *k == keys[0] || (s.is_none() && sets[0].is_none()));
    let mut result = SetValue::default();
    match (op, sets[0]) {
        (Op::Union, _) => {
            for s in sets.iter().flatten() {
                s.iter().for_each(|m| {
                    result.add(m, &lim);
                });
            }
        }
        (Op::Diff, _) if sameset => {}
        (Op::Diff, None) => {}
        (Op::Diff, Some(first)) => {
            let size = |s: &Option<&SetValue>| s.map_or(0, |s| s.len());
            let present = sets.iter().filter(|s| s.is_some()).count();
            let algo_one = first.len() * present / 2;
            let algo_two: usize = sets.iter().map(size).sum();
            if algo_one <= algo_two {
                sets[1..].sort_by_key(|s| std::cmp::Reverse(size(s)));
                let others: Vec<&SetValue> = sets[1..].iter().flatten().copied().collect();
                for m in first.iter() {
                    if !others.iter().any(|s| s.contains(m)) {
                        result.add(m, &lim);
                    }
                }
            } else {
                first.iter().for_each(|m| {
                    result.add(m, &lim);
                });
                for s in sets[1..].iter().flatten() {
                    if result.is_empty() {
                        break;
                    }
                    s.iter().for_each(|m| {
                        result.remove(m);
                    });
                }
            }
        }
    }
    match dst {
        None => {
            out.set(result.len());
            result.iter().for_each(|m| out.bulk(m));
        }
        Some(dst) => store(ctx, dst, result, if op == Op::Union { "sunionstore" } else { "sdiffstore" }),
    }
}

/// SUNION key [key ...] (a set in RESP3)
pub fn sunion(ctx: &mut Ctx, args: &[Bytes]) {
    union_diff(ctx, &args[1..], None, Op::Union);
}

/// SUNIONSTORE destination key [key ...]
pub fn sunionstore(ctx: &mut Ctx, args: &[Bytes]) {
    union_diff(ctx, &args[2..], Some(&args[1]), Op::Union);
}

/// SDIFF key [key ...] (a set in RESP3)
pub fn sdiff(ctx: &mut Ctx, args: &[Bytes]) {
    union_diff(ctx, &args[1..], None, Op::Diff);
}

/// SDIFFSTORE destination key [key ...]
pub fn sdiffstore(ctx: &mut Ctx, args: &[Bytes]) {
    union_diff(ctx, &args[2..], Some(&args[1]), Op::Diff);
}
