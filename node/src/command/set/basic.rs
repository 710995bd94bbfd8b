//! Set membership and single-key writes: SADD, SREM, SISMEMBER, SMISMEMBER, SCARD, SMEMBERS,
//! SMOVE.

use bytes::Bytes;

use super::{db_and_out, find_set, limits, set_in, write_set, Found};
use crate::command::hash::{read_and_out, Write};
use crate::exec::ctx::WRONGTYPE;
use crate::exec::notify::class;
use crate::exec::Ctx;
use crate::keyspace::node::ValueRef;
use crate::keyspace::types::SetValue;
use crate::keyspace::Value;

/// SADD key member [member ...]
pub fn sadd(ctx: &mut Ctx, args: &[Bytes]) {
    let lim = limits(ctx);
    let members = &args[2..];
    let fresh = SetValue::create(&members[0], members.len(), &lim);
    let added = write_set(
        ctx,
        &args[1],
        Some(fresh),
        |s| {
            s.maybe_convert(members.len(), &lim);
            members.iter().filter(|m| s.add(m, &lim)).count()
        },
        |&n| n > 0,
    );
    match added {
        Write::Done { r, .. } => {
            ctx.out.int(r as i64);
            if r > 0 {
                ctx.notify(class::SET, "sadd", &args[1]);
            }
        }
        _ => ctx.wrong_type(),
    }
}

/// SREM key member [member ...]
pub fn srem(ctx: &mut Ctx, args: &[Bytes]) {
    let key = &args[1];
    match write_set(ctx, key, None, |s| args[2..].iter().filter(|m| s.remove(m)).count(), |&n| n > 0) {
        Write::WrongType => ctx.wrong_type(),
        Write::Missing => ctx.out.int(0),
        Write::Done { r, emptied } => {
            ctx.out.int(r as i64);
            if r > 0 {
                ctx.notify(class::SET, "srem", key);
                if emptied {
                    ctx.notify(class::GENERIC, "del", key);
                }
            }
        }
    }
}

/// Replies an integer computed from the set at `args[1]` (0 when the key is missing).
fn int_of(ctx: &mut Ctx, args: &[Bytes], f: impl FnOnce(&SetValue) -> i64) {
    let (e, out) = read_and_out(ctx, &args[1]);
    match e.as_ref().map(|e| e.value()) {
        None => out.int(0),
        Some(ValueRef::Set(s)) => out.int(f(s)),
        Some(_) => out.error(WRONGTYPE),
    }
}

/// SISMEMBER key member
pub fn sismember(ctx: &mut Ctx, args: &[Bytes]) {
    int_of(ctx, args, |s| s.contains(&args[2]) as i64);
}

/// SCARD key
pub fn scard(ctx: &mut Ctx, args: &[Bytes]) {
    int_of(ctx, args, |s| s.len() as i64);
}

/// SMISMEMBER key member [member ...]
pub fn smismember(ctx: &mut Ctx, args: &[Bytes]) {
    let (e, out) = read_and_out(ctx, &args[1]);
    let s = match e.as_ref().map(|e| e.value()) {
        None => None,
        Some(ValueRef::Set(s)) => Some(s),
        Some(_) => return out.error(WRONGTYPE),
    };
    out.array(args.len() - 2);
    for m in &args[2..] {
        out.int(s.is_some_and(|s| s.contains(m)) as i64);
    }
}

/// SMEMBERS key (a set in RESP3)
pub fn smembers(ctx: &mut Ctx, args: &[Bytes]) {
    match find_set(ctx, &args[1]) {
        Found::Missing => ctx.out.set(0),
        Found::WrongType => ctx.wrong_type(),
        Found::Set => {
            let (db, out) = db_and_out(ctx);
            if let Some(s) = set_in(db, &args[1]) {
                out.set(s.len());
                s.iter().for_each(|m| out.bulk(m));
            }
        }
    }
}

/// SMOVE source destination member
pub fn smove(ctx: &mut Ctx, args: &[Bytes]) {
    let (src, dst, member) = (&args[1], &args[2], &args[3]);
    let kind =
        |ctx: &mut Ctx, key: &[u8]| ctx.lookup_write(key).map(|e| matches!(e.value(), ValueRef::Set(_)));
    let src_kind = kind(ctx, src);
    let dst_kind = kind(ctx, dst);
    match (src_kind, dst_kind) {
        (None, _) => return ctx.out.int(0),
        (Some(false), _) | (_, Some(false)) => return ctx.wrong_type(),
        _ => {}
    }
    if src == dst {
        let (db, out) = db_and_out(ctx);
        return out.int(set_in(db, src).is_some_and(|s| s.contains(member)) as i64);
    }
    let removed = write_set(ctx, src, None, |s| s.remove(member), |&removed| removed);
    let Write::Done { r: true, emptied } = removed else {
        return ctx.out.int(0);
    };
    ctx.notify(class::SET, "srem", src);
    if emptied {
        ctx.notify(class::GENERIC, "del", src);
    }
    let lim = limits(ctx);
    let added = match ctx.lookup_write(dst) {
        Some(mut e) => match e.value_mut() {
            Some(Value::Set(s)) => s.add(member, &lim),
            _ => false,
        },
        None => {
            let mut s = SetValue::create(member, 1, &lim);
            s.add(member, &lim);
            let clock = ctx.clock();
            ctx.db().set(dst, Value::Set(Box::new(s)), None, clock);
            true
        }
    };
    if added {
        ctx.notify(class::SET, "sadd", dst);
    }
    ctx.out.int(1);
}
