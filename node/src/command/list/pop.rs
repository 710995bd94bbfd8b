//! LPOP, RPOP (with COUNT), LMPOP, LMOVE and RPOPLPUSH. `lmove_generic` is also what a served
//! BLMOVE/BRPOPLPUSH runs.

use bytes::Bytes;

use super::{
    create, elements_removed, fill, list_mut, parse_end, pop_range_with_key, positive_long, range_long,
    signal, write_list, Found,
};
use crate::exec::notify::class;
use crate::exec::{Ctx, WRONGTYPE};
use crate::keyspace::types::list::End;

/// LPOP key [count]
pub fn lpop(ctx: &mut Ctx, args: &[Bytes]) {
    pop_generic(ctx, args, End::Head);
}

/// RPOP key [count]
pub fn rpop(ctx: &mut Ctx, args: &[Bytes]) {
    pop_generic(ctx, args, End::Tail);
}

/// Valkey's `popGenericCommand`: a bulk string without COUNT, an array with it.
fn pop_generic(ctx: &mut Ctx, args: &[Bytes], end: End) {
    if args.len() > 3 {
        ctx.wrong_arity();
        return;
    }
    let count = match args.get(2) {
        Some(arg) => match positive_long(ctx, arg, None) {
            Some(n) => Some(n),
            None => return,
        },
        None => None,
    };
    let key = &args[1];
    let (found, out) = write_list(ctx, key);
    let mut e = match found {
        Found::List(e) => e,
        Found::WrongType => return out.error(WRONGTYPE),
        Found::Missing if count.is_some() => return out.null_array(),
        Found::Missing => return out.null(),
    };
    let Some(l) = list_mut(&mut e) else { return };
    match count {
        Some(0) => return out.array(0),
        None => match l.pop(end) {
            Some(v) => out.bulk(&v),
            None => return out.null(),
        },
        Some(n) => {
            let n = (n as usize).min(l.len());
            out.array(n);
            for _ in 0..n {
                if let Some(v) = l.pop(end) {
                    out.bulk(&v);
                }
            }
        }
    }
    elements_removed(ctx, key, end);
}

/// What LMPOP and BLMPOP parsed: keys, end and count.
pub(super) struct Mpop {
    pub first_key: usize,
    pub numkeys: usize,
    pub end: End,
    pub count: i64,
}

/// Valkey's `lmpopGenericCommand` argument parsing, `numkeys` at `args[at]`.
pub(super) fn parse_mpop(ctx: &mut Ctx, args: &[Bytes], at: usize) -> Option<Mpop> {
    let numkeys = range_long(ctx, &args[at], 1, i64::MAX, Some("numkeys should be greater than 0"))? as usize;
    let where_idx = match numkeys.checked_add(at + 1) {
        Some(i) if i < args.len() => i,
        _ => {
            ctx.syntax_error();
            return None;
        }
    };
    let end = parse_end(ctx, &args[where_idx])?;
    let mut count = None;
    let mut j = where_idx + 1;
    while j < args.len() {
        if count.is_none() && args[j].eq_ignore_ascii_case(b"count") && j + 1 < args.len() {
            j += 1;
            count = Some(range_long(ctx, &args[j], 1, i64::MAX, Some("count should be greater than 0"))?);
        } else {
            ctx.syntax_error();
            return None;
        }
        j += 1;
    }
    Some(Mpop { first_key: at + 1, numkeys, end, count: count.unwrap_or(1) })
}

/// Pops from the first non-empty list of `keys`: true if it replied (elements or an error),
/// false if every key was missing.
pub(super) fn mpop_first(ctx: &mut Ctx, keys: &[Bytes], end: End, count: i64) -> bool {
    for key in keys {
        match write_list(ctx, key) {
            (Found::Missing, _) => continue,
            (Found::WrongType, out) => {
                out.error(WRONGTYPE);
                return true;
            }
            (Found::List(_), _) => {
                pop_range_with_key(ctx, key, end, count);
                return true;
            }
        }
    }
    false
}

/// LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT count]
pub fn lmpop(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(m) = parse_mpop(ctx, args, 1) else { return };
    if !mpop_first(ctx, &args[m.first_key..m.first_key + m.numkeys], m.end, m.count) {
        ctx.out.null_array();
    }
}

/// LMOVE source destination LEFT|RIGHT LEFT|RIGHT
pub fn lmove(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(from) = parse_end(ctx, &args[3]) else { return };
    let Some(to) = parse_end(ctx, &args[4]) else { return };
    lmove_generic(ctx, &args[1], &args[2], from, to);
}

/// RPOPLPUSH source destination
pub fn rpoplpush(ctx: &mut Ctx, args: &[Bytes]) {
    lmove_generic(ctx, &args[1], &args[2], End::Tail, End::Head);
}

/// Valkey's `lmoveGenericCommand`: the destination's type is checked before anything is
/// popped; the push event comes before the pop event; source and destination may be the
/// same list (a rotation).
pub(super) fn lmove_generic(ctx: &mut Ctx, src: &Bytes, dst: &Bytes, from: End, to: End) {
    let fill = fill(ctx);
    match write_list(ctx, src) {
        (Found::List(_), _) => {}
        (Found::WrongType, out) => return out.error(WRONGTYPE),
        (Found::Missing, out) => return out.null(),
    }
    if src != dst {
        if let (Found::WrongType, out) = write_list(ctx, dst) {
            return out.error(WRONGTYPE);
        }
    }
    let value = match write_list(ctx, src) {
        (Found::List(mut e), _) => list_mut(&mut e).and_then(|l| l.pop(from)),
        _ => None,
    };
    let Some(value) = value else { return ctx.out.null() };
    if let (Found::Missing, _) = write_list(ctx, dst) {
        create(ctx, dst);
    }
    if let (Found::List(mut e), out) = write_list(ctx, dst) {
        if let Some(l) = list_mut(&mut e) {
            l.push(to, &value, fill);
        }
        out.bulk(&value);
    }
    ctx.notify(class::LIST, if to == End::Head { "lpush" } else { "rpush" }, dst);
    signal(ctx, dst);
    elements_removed(ctx, src, from);
}
