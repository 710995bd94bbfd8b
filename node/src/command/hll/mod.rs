//! HyperLogLog commands: PFADD, PFCOUNT (one key, with the cached cardinality; several keys,
//! the union) and PFMERGE, as Valkey 8's `hyperloglog.c`. The values are strings in Valkey's
//! exact format (`repr`), so they survive GET/SET, DUMP/RESTORE and copies between servers.

mod repr;
#[cfg(test)]
mod tests;

use bytes::Bytes;

use super::Handler;
use crate::exec::notify::class;
use crate::exec::Ctx;
use crate::keyspace::value::StrRef;
use crate::keyspace::Value;

pub fn handler(name: &str) -> Option<Handler> {
    Some(match name {
        "pfadd" => pfadd,
        "pfcount" => pfcount,
        "pfmerge" => pfmerge,
        _ => return None,
    })
}

const INVALID: &str = "WRONGTYPE Key is not a valid HyperLogLog string value.";
const CORRUPT: &str = "INVALIDOBJ Corrupted HLL object detected";

/// What a key holds, for HLL purposes.
enum Found {
    Missing,
    /// A valid HLL string (its bytes).
    Hll(Vec<u8>),
    /// An error was replied (WRONGTYPE or not an HLL).
    Replied,
}

/// Looks `key` up (for writing, or for reading with statistics) and checks it is an HLL as
/// Valkey's `isHLLObjectOrReply` does: integer-encoded strings never are.
fn lookup(ctx: &mut Ctx, key: &[u8], write: bool) -> Found {
    let e = if write { ctx.lookup_write(key) } else { ctx.lookup_read(key) };
    let Some(e) = e else { return Found::Missing };
    let bytes = match e.value().as_string() {
        None => {
            ctx.wrong_type();
            return Found::Replied;
        }
        Some(StrRef::Int(_)) => None,
        Some(StrRef::Bytes(b)) => repr::is_valid(b).then(|| b.to_vec()),
    };
    match bytes {
        Some(b) => Found::Hll(b),
        None => {
            ctx.out.error(INVALID);
            Found::Replied
        }
    }
}

/// Stores an HLL string as a raw string, keeping an existing key's TTL.
fn store(ctx: &mut Ctx, key: &[u8], s: Vec<u8>) {
    let value = Value::Str(Bytes::from(s));
    let clock = ctx.clock();
    let old = match ctx.lookup_write(key) {
        Some(mut e) => e.set_value_raw(value),
        None => ctx.db().set_raw(key, value, None, clock),
    };
    if let Some(old) = old {
        ctx.free_later(old);
    }
}

fn sparse_max(ctx: &Ctx) -> usize {
    ctx.srv.config.get_i64("hll-sparse-max-bytes").max(0) as usize
}

fn pfadd(ctx: &mut Ctx, args: &[Bytes]) {
    let key = &args[1];
    let max_bytes = sparse_max(ctx);
    let (mut s, mut updated) = match lookup(ctx, key, true) {
        Found::Replied => return,
        Found::Missing => (repr::new_sparse(), true),
        Found::Hll(s) => (s, false),
    };
    for ele in &args[2..] {
        match repr::add(&mut s, ele, max_bytes) {
            Ok(changed) => updated |= changed,
            Err(_) => return ctx.out.error(CORRUPT),
        }
    }
    if updated {
        repr::invalidate_cache(&mut s);
        store(ctx, key, s);
        ctx.notify(class::STRING, "pfadd", key);
    }
    ctx.out.int(updated as i64);
}

fn pfcount(ctx: &mut Ctx, args: &[Bytes]) {
    if args.len() > 2 {
        let mut max = Box::new([0u8; repr::REGISTERS]);
        for key in &args[1..] {
            match lookup(ctx, key, false) {
                Found::Missing => {}
                Found::Replied => return,
                Found::Hll(s) => {
                    if repr::merge_into(&mut max, &s).is_err() {
                        return ctx.out.error(CORRUPT);
                    }
                }
            }
        }
        return ctx.out.int(repr::count_raw(&max) as i64);
    }
    let key = &args[1];
    let mut s = match lookup(ctx, key, true) {
        Found::Missing => return ctx.out.int(0),
        Found::Replied => return,
        Found::Hll(s) => s,
    };
    let card = match repr::cached(&s) {
        Some(c) => c,
        None => {
            let Ok(c) = repr::count(&s) else {
                return ctx.out.error(CORRUPT);
            };
            // Writing the cache back is a modification, as in Valkey (WATCH sees it).
            repr::set_cache(&mut s, c);
            store(ctx, key, s);
            c
        }
    };
    ctx.out.int(card as i64);
}

fn pfmerge(ctx: &mut Ctx, args: &[Bytes]) {
    let mut max = Box::new([0u8; repr::REGISTERS]);
    let mut dense = false;
    // The destination is a source too.
    for key in &args[1..] {
        match lookup(ctx, key, false) {
            Found::Missing => {}
            Found::Replied => return,
            Found::Hll(s) => {
                dense |= repr::is_dense(&s);
                if repr::merge_into(&mut max, &s).is_err() {
                    return ctx.out.error(CORRUPT);
                }
            }
        }
    }
    let key = &args[1];
    let max_bytes = sparse_max(ctx);
    let mut s = match lookup(ctx, key, true) {
        Found::Hll(s) => s,
        _ => repr::new_sparse(),
    };
    if dense {
        match repr::to_dense(&s) {
            Ok(d) => s = d,
            Err(_) => return ctx.out.error(CORRUPT),
        }
    }
    for (i, &v) in max.iter().enumerate() {
        // A corrupted destination was already refused while merging.
        if v != 0 && repr::raise(&mut s, i, v, max_bytes).is_err() {
            return ctx.out.error(CORRUPT);
        }
    }
    repr::invalidate_cache(&mut s);
    store(ctx, key, s);
    // Valkey reports PFMERGE as a `pfadd` event (a mass add of elements).
    ctx.notify(class::STRING, "pfadd", key);
    ctx.out.ok();
}
