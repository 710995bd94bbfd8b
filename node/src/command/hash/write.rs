//! Hash writes: HSET, HMSET, HSETNX, HDEL, HINCRBY, HINCRBYFLOAT. Each reports the keyspace
//! event Valkey does (`hset`, `hdel`, `hincrby`, `hincrbyfloat`, and `del` when HDEL empties
//! the hash).

use bytes::Bytes;

use super::{limits, write_hash, Write};
use crate::command::string::longdouble::Ld;
use crate::exec::notify::class;
use crate::exec::Ctx;
use crate::util::parse_i64;

/// HSET key field value [field value ...]
pub fn hset(ctx: &mut Ctx, args: &[Bytes]) {
    set_fields(ctx, args, false);
}

/// HMSET key field value [field value ...]
pub fn hmset(ctx: &mut Ctx, args: &[Bytes]) {
    set_fields(ctx, args, true);
}

fn set_fields(ctx: &mut Ctx, args: &[Bytes], hmset: bool) {
    if args.len() % 2 == 1 {
        return ctx.wrong_arity();
    }
    let lim = limits(ctx);
    let pairs = &args[2..];
    let longest = pairs.iter().map(Bytes::len).max().unwrap_or(0);
    let added = write_hash(
        ctx,
        &args[1],
        true,
        |h| {
            h.prepare(pairs.len() / 2, longest, &lim);
            pairs.chunks_exact(2).filter(|p| h.set(&p[0], &p[1], &lim)).count()
        },
        |_| true,
    );
    match added {
        Write::Done { r, .. } => {
            if hmset {
                ctx.out.ok();
            } else {
                ctx.out.int(r as i64);
            }
            ctx.notify(class::HASH, "hset", &args[1]);
        }
        _ => ctx.wrong_type(),
    }
}

/// HSETNX key field value
pub fn hsetnx(ctx: &mut Ctx, args: &[Bytes]) {
    let lim = limits(ctx);
    let (f, v) = (&args[2], &args[3]);
    let set = write_hash(
        ctx,
        &args[1],
        true,
        |h| {
            if h.get(f).is_some() {
                return false;
            }
            h.prepare(1, f.len().max(v.len()), &lim);
            h.set(f, v, &lim)
        },
        |&set| set,
    );
    match set {
        Write::Done { r, .. } => {
            ctx.out.int(r as i64);
            if r {
                ctx.notify(class::HASH, "hset", &args[1]);
            }
        }
        _ => ctx.wrong_type(),
    }
}

/// HDEL key field [field ...]
pub fn hdel(ctx: &mut Ctx, args: &[Bytes]) {
    let key = &args[1];
    match write_hash(ctx, key, false, |h| args[2..].iter().filter(|f| h.remove(f)).count(), |&n| n > 0) {
        Write::WrongType => ctx.wrong_type(),
        Write::Missing => ctx.out.int(0),
        Write::Done { r, emptied } => {
            ctx.out.int(r as i64);
            if r > 0 {
                ctx.notify(class::HASH, "hdel", key);
                if emptied {
                    ctx.notify(class::GENERIC, "del", key);
                }
            }
        }
    }
}

/// HINCRBY key field increment
pub fn hincrby(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(incr) = ctx.arg_i64(&args[3]) else { return };
    let lim = limits(ctx);
    let field = &args[2];
    let res = write_hash(
        ctx,
        &args[1],
        true,
        |h| {
            let old = match h.get(field) {
                Some(v) => parse_i64(v).ok_or("hash value is not an integer")?,
                None => 0,
            };
            let new = old.checked_add(incr).ok_or("increment or decrement would overflow")?;
            h.set_keep_ttl(field, itoa::Buffer::new().format(new).as_bytes(), &lim);
            Ok(new)
        },
        Result::is_ok,
    );
    match res {
        Write::Done { r: Ok(n), .. } => {
            ctx.out.int(n);
            ctx.notify(class::HASH, "hincrby", &args[1]);
        }
        Write::Done { r: Err(msg), .. } => ctx.out.err(msg),
        _ => ctx.wrong_type(),
    }
}

/// HINCRBYFLOAT key field increment, in Valkey's `long double` arithmetic.
pub fn hincrbyfloat(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(incr) = Ld::parse(&args[3]) else {
        return ctx.out.err("value is not a valid float");
    };
    if !incr.is_finite() {
        return ctx.out.err("value is NaN or Infinity");
    }
    let lim = limits(ctx);
    let field = &args[2];
    let res = write_hash(
        ctx,
        &args[1],
        true,
        |h| {
            let old = match h.get(field) {
                Some(v) => Ld::parse(v).ok_or("hash value is not a float")?,
                None => Ld::ZERO,
            };
            let sum = old.add(incr);
            if !sum.is_finite() {
                return Err("increment would produce NaN or Infinity");
            }
            let text = sum.to_human();
            h.set_keep_ttl(field, text.as_bytes(), &lim);
            Ok(text)
        },
        Result::is_ok,
    );
    match res {
        Write::Done { r: Ok(text), .. } => {
            ctx.out.bulk(text.as_bytes());
            ctx.notify(class::HASH, "hincrbyfloat", &args[1]);
        }
        Write::Done { r: Err(msg), .. } => ctx.out.err(msg),
        _ => ctx.wrong_type(),
    }
}

/// HGETDEL key FIELDS numfields field [field ...] (Valkey 9): the fields' values (nil for
/// missing ones), and the fields deleted; `hdel`, and `del` when the hash is left empty.
pub fn hgetdel(ctx: &mut Ctx, args: &[Bytes]) {
    if !args[2].eq_ignore_ascii_case(b"fields") {
        return ctx.syntax_error();
    }
    let Some(n) = ctx.arg_i64(&args[3]) else { return };
    let fields = &args[4..];
    if n <= 0 || n as usize != fields.len() {
        return ctx.out.err("numfields should be greater than 0 and match the provided number of fields");
    }
    let key = &args[1];
    let res = write_hash(
        ctx,
        key,
        false,
        |h| {
            let values: Vec<Option<Bytes>> = fields
                .iter()
                .map(|f| {
                    let v = h.get(f).map(Bytes::copy_from_slice);
                    if v.is_some() {
                        h.remove(f);
                    }
                    v
                })
                .collect();
            values
        },
        |v| v.iter().any(Option::is_some),
    );
    match res {
        Write::WrongType => ctx.wrong_type(),
        Write::Missing => {
            ctx.out.array(fields.len());
            for _ in fields {
                ctx.out.null();
            }
        }
        Write::Done { r, emptied } => {
            ctx.out.array(r.len());
            for v in &r {
                match v {
                    Some(b) => ctx.out.bulk(b),
                    None => ctx.out.null(),
                }
            }
            if r.iter().any(Option::is_some) {
                ctx.notify(class::HASH, "hdel", key);
                if emptied {
                    ctx.notify(class::GENERIC, "del", key);
                }
            }
        }
    }
}
