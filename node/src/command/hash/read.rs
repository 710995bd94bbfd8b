//! Hash reads: HGET, HMGET, HEXISTS, HLEN, HSTRLEN, HKEYS, HVALS, HGETALL.

use bytes::Bytes;

use super::hash_read;
use crate::exec::ctx::WRONGTYPE;
use crate::exec::Ctx;
use crate::keyspace::node::ValueRef;

/// HGET key field
pub fn hget(ctx: &mut Ctx, args: &[Bytes]) {
    let (e, out) = hash_read(ctx, &args[1]);
    match e.as_ref().map(|e| e.value()) {
        None => out.null(),
        Some(ValueRef::Hash(h)) => match h.get(&args[2]) {
            Some(v) => out.bulk(v),
            None => out.null(),
        },
        Some(_) => out.error(WRONGTYPE),
    }
}

/// HMGET key field [field ...]
pub fn hmget(ctx: &mut Ctx, args: &[Bytes]) {
    let (e, out) = hash_read(ctx, &args[1]);
    let h = match e.as_ref().map(|e| e.value()) {
        None => None,
        Some(ValueRef::Hash(h)) => Some(h),
        Some(_) => return out.error(WRONGTYPE),
    };
    out.array(args.len() - 2);
    for f in &args[2..] {
        match h.and_then(|h| h.get(f)) {
            Some(v) => out.bulk(v),
            None => out.null(),
        }
    }
}

/// Replies an integer computed from the hash at `args[1]` (0 when the key is missing).
fn int_of(ctx: &mut Ctx, args: &[Bytes], f: impl FnOnce(&crate::keyspace::types::HashValue) -> i64) {
    let (e, out) = hash_read(ctx, &args[1]);
    match e.as_ref().map(|e| e.value()) {
        None => out.int(0),
        Some(ValueRef::Hash(h)) => out.int(f(h)),
        Some(_) => out.error(WRONGTYPE),
    }
}

/// HEXISTS key field
pub fn hexists(ctx: &mut Ctx, args: &[Bytes]) {
    int_of(ctx, args, |h| h.get(&args[2]).is_some() as i64);
}

/// HLEN key
pub fn hlen(ctx: &mut Ctx, args: &[Bytes]) {
    int_of(ctx, args, |h| h.len() as i64);
}

/// HSTRLEN key field
pub fn hstrlen(ctx: &mut Ctx, args: &[Bytes]) {
    int_of(ctx, args, |h| h.get(&args[2]).map_or(0, |v| v.len() as i64));
}

#[derive(Clone, Copy, PartialEq)]
enum Part {
    Keys,
    Vals,
    All,
}

/// Valkey's `genericHgetallCommand`.
fn getall(ctx: &mut Ctx, args: &[Bytes], part: Part) {
    let (e, out) = hash_read(ctx, &args[1]);
    let h = match e.as_ref().map(|e| e.value()) {
        None => None,
        Some(ValueRef::Hash(h)) => Some(h),
        Some(_) => return out.error(WRONGTYPE),
    };
    let len = h.map_or(0, |h| h.len());
    if part == Part::All {
        out.map(len);
    } else {
        out.array(len);
    }
    for (f, v) in h.into_iter().flat_map(|h| h.iter()) {
        if part != Part::Vals {
            out.bulk(f);
        }
        if part != Part::Keys {
            out.bulk(v);
        }
    }
}

/// HKEYS key
pub fn hkeys(ctx: &mut Ctx, args: &[Bytes]) {
    getall(ctx, args, Part::Keys);
}

/// HVALS key
pub fn hvals(ctx: &mut Ctx, args: &[Bytes]) {
    getall(ctx, args, Part::Vals);
}

/// HGETALL key (a map in RESP3)
pub fn hgetall(ctx: &mut Ctx, args: &[Bytes]) {
    getall(ctx, args, Part::All);
}
