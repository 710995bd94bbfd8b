//! INCR, DECR, INCRBY, DECRBY (checked 64-bit arithmetic on integer strings) and INCRBYFLOAT
//! (80-bit `long double` arithmetic, see `longdouble`). The stored value keeps its TTL.

use bytes::Bytes;

use super::longdouble::Ld;
use super::write_and_out;
use crate::exec::{Ctx, WRONGTYPE};
use crate::keyspace::value::StrRef;
use crate::keyspace::Value;

pub fn incr(ctx: &mut Ctx, args: &[Bytes]) {
    incr_decr(ctx, &args[1], 1);
}

pub fn decr(ctx: &mut Ctx, args: &[Bytes]) {
    incr_decr(ctx, &args[1], -1);
}

pub fn incrby(ctx: &mut Ctx, args: &[Bytes]) {
    if let Some(n) = ctx.arg_i64(&args[2]) {
        incr_decr(ctx, &args[1], n);
    }
}

pub fn decrby(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(n) = ctx.arg_i64(&args[2]) else {
        return;
    };
    if n == i64::MIN {
        return ctx.out.err("decrement would overflow");
    }
    incr_decr(ctx, &args[1], -n);
}

/// Valkey's `incrDecrCommand`: a missing key counts from 0.
fn incr_decr(ctx: &mut Ctx, key: &[u8], by: i64) {
    let clock = ctx.clock();
    let (e, out, _) = write_and_out(ctx, key);
    let current = match e.as_ref().map(|e| e.value().as_string()) {
        None => 0,
        Some(None) => return out.error(WRONGTYPE),
        Some(Some(StrRef::Int(n))) => n,
        Some(Some(StrRef::Bytes(b))) => match crate::util::parse_i64(b) {
            Some(n) => n,
            None => return out.err("value is not an integer or out of range"),
        },
    };
    let Some(v) = current.checked_add(by) else {
        return out.err("increment or decrement would overflow");
    };
    out.int(v);
    match e {
        Some(mut e) => {
            e.set_value(Value::Int(v));
        }
        None => {
            ctx.db().set(key, Value::Int(v), None, clock);
        }
    }
}

pub fn incrbyfloat(ctx: &mut Ctx, args: &[Bytes]) {
    let key = &args[1];
    let clock = ctx.clock();
    let (e, out, _) = write_and_out(ctx, key);
    let current = match e.as_ref().map(|e| e.value().as_string()) {
        None => Some(Ld::ZERO),
        Some(None) => return out.error(WRONGTYPE),
        Some(Some(StrRef::Int(n))) => Some(Ld::from_i64(n)),
        Some(Some(StrRef::Bytes(b))) => Ld::parse(b),
    };
    let (Some(current), Some(incr)) = (current, Ld::parse(&args[2])) else {
        return out.err("value is not a valid float");
    };
    let sum = current.add(incr);
    if !sum.is_finite() {
        return out.err("increment would produce NaN or Infinity");
    }
    let text = Bytes::from(sum.to_human());
    out.bulk(&text);
    // Stored as a plain string, never integer-encoded, as Valkey's createStringObject does.
    let value = Value::Str(text);
    match e {
        Some(mut e) => {
            e.set_value(value);
        }
        None => {
            ctx.db().set(key, value, None, clock);
        }
    }
}
