//! LPUSH, RPUSH, LPUSHX, RPUSHX, LINSERT and LSET. The listpack→quicklist check runs on the
//! whole batch of new elements before they are added, as Valkey's
//! `listTypeTryConversionAppend`, so `OBJECT ENCODING` agrees with Valkey afterwards.

use bytes::Bytes;

use super::{create, fill, list_mut, list_mut_untracked, signal, write_list, Found};
use crate::exec::notify::class;
use crate::exec::{Ctx, WRONGTYPE};
use crate::keyspace::types::list::End;
use crate::keyspace::EntryMut;
use crate::protocol::Reply;

/// LPUSH key element [element ...]
pub fn lpush(ctx: &mut Ctx, args: &[Bytes]) {
    push_generic(ctx, args, End::Head, false);
}

/// RPUSH key element [element ...]
pub fn rpush(ctx: &mut Ctx, args: &[Bytes]) {
    push_generic(ctx, args, End::Tail, false);
}

/// LPUSHX key element [element ...]
pub fn lpushx(ctx: &mut Ctx, args: &[Bytes]) {
    push_generic(ctx, args, End::Head, true);
}

/// RPUSHX key element [element ...]
pub fn rpushx(ctx: &mut Ctx, args: &[Bytes]) {
    push_generic(ctx, args, End::Tail, true);
}

/// Valkey's `pushGenericCommand`.
fn push_generic(ctx: &mut Ctx, args: &[Bytes], end: End, xx: bool) {
    let key = &args[1];
    let fill = fill(ctx);
    let done = match write_list(ctx, key) {
        (Found::List(mut e), out) => push_all(&mut e, out, &args[2..], end, fill),
        (Found::WrongType, out) => {
            out.error(WRONGTYPE);
            return;
        }
        (Found::Missing, _) => false,
    };
    if !done {
        if xx {
            ctx.out.int(0);
            return;
        }
        match create(ctx, key) {
            (Found::List(mut e), out) => {
                push_all(&mut e, out, &args[2..], end, fill);
            }
            _ => return,
        }
    }
    ctx.notify(class::LIST, if end == End::Head { "lpush" } else { "rpush" }, key);
    signal(ctx, key);
}

/// Pushes `items` and replies the new length.
fn push_all(e: &mut EntryMut, out: &mut Reply, items: &[Bytes], end: End, fill: i64) -> bool {
    let Some(l) = list_mut(e) else { return false };
    l.grow_check(fill, items.iter().map(|b| &b[..]));
    for v in items {
        l.push_raw(end, v);
    }
    out.int(l.len() as i64);
    true
}

/// LINSERT key BEFORE|AFTER pivot element
pub fn linsert(ctx: &mut Ctx, args: &[Bytes]) {
    let (key, pivot, value) = (&args[1], &args[3], &args[4]);
    let after = if args[2].eq_ignore_ascii_case(b"after") {
        true
    } else if args[2].eq_ignore_ascii_case(b"before") {
        false
    } else {
        ctx.syntax_error();
        return;
    };
    let fill = fill(ctx);
    let (found, out) = write_list(ctx, key);
    let mut e = match found {
        Found::List(e) => e,
        Found::WrongType => return out.error(WRONGTYPE),
        Found::Missing => return out.int(0),
    };
    let Some(l) = list_mut_untracked(&mut e) else { return };
    // Valkey converts before it knows whether the pivot is there.
    l.grow_check(fill, std::iter::once(&value[..]));
    let Some(pos) = l.iter().position(|v| v == &pivot[..]) else {
        out.int(-1);
        return;
    };
    l.insert(if after { pos + 1 } else { pos }, value, fill);
    out.int(l.len() as i64);
    ctx.db().signal_modified(key);
    ctx.notify(class::LIST, "linsert", key);
}

/// LSET key index element
pub fn lset(ctx: &mut Ctx, args: &[Bytes]) {
    let (key, value) = (&args[1], &args[3]);
    let fill = fill(ctx);
    let (found, out) = write_list(ctx, key);
    let mut e = match found {
        Found::List(e) => e,
        Found::WrongType => return out.error(WRONGTYPE),
        Found::Missing => return out.err("no such key"),
    };
    let Some(index) = crate::util::parse_i64(&args[2]) else {
        return out.err("value is not an integer or out of range");
    };
    let Some(l) = list_mut(&mut e) else { return };
    let len = l.len() as i64;
    let i = if index < 0 { index + len } else { index };
    let ok = i >= 0 && l.set(i as usize, value, fill);
    if !ok {
        // The growth check runs even for a bad index, as in Valkey.
        l.grow_check(fill, std::iter::once(&value[..]));
        return out.err("index out of range");
    }
    out.ok();
    ctx.notify(class::LIST, "lset", key);
}
