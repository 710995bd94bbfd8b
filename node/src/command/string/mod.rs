//! String commands (GET/SET family, counters, ranges, LCS) with Valkey 8's exact replies,
//! error strings and check order. Split by concern: `getset` (reads, writes, expiry options),
//! `counter` (INCR family and INCRBYFLOAT over the emulated `long double` in `longdouble`),
//! `range` (APPEND, STRLEN, GETRANGE, SETRANGE) and `lcs`.

mod counter;
mod getset;
mod lcs;
pub(crate) mod longdouble;
mod range;
#[cfg(test)]
mod tests;

use bytes::BytesMut;

use super::Handler;
use crate::config::Config;
use crate::exec::{Ctx, Server};
use crate::keyspace::value::StrRef;
use crate::keyspace::{EntryMut, Node, Value};
use crate::protocol::Reply;

/// Overwritten or deleted values at least this big are dropped off the executor thread.
const FREE_LATER_MIN: usize = 64 * 1024;

/// `proto-max-bulk-len` default, used if the configured value cannot be read.
const DEFAULT_MAX_BULK: i64 = 512 * 1024 * 1024;

pub fn handler(name: &str) -> Option<Handler> {
    Some(match name {
        "get" => getset::get,
        "set" => getset::set,
        "setnx" => getset::setnx,
        "setex" => getset::setex,
        "psetex" => getset::psetex,
        "getset" => getset::getset,
        "getdel" => getset::getdel,
        "delifeq" => getset::delifeq,
        "msetex" => getset::msetex,
        "getex" => getset::getex,
        "mget" => getset::mget,
        "mset" => getset::mset,
        "msetnx" => getset::msetnx,
        "incr" => counter::incr,
        "decr" => counter::decr,
        "incrby" => counter::incrby,
        "decrby" => counter::decrby,
        "incrbyfloat" => counter::incrbyfloat,
        "append" => range::append,
        "strlen" => range::strlen,
        "getrange" | "substr" => range::getrange,
        "setrange" => range::setrange,
        "lcs" => lcs::lcs,
        _ => return None,
    })
}

/// `lookup_read` (expiry, access time, hit/miss statistics) that also hands back the reply
/// buffer, so a handler can reply straight from the stored value without copying it.
fn read_and_out<'c>(ctx: &'c mut Ctx<'_>, key: &[u8]) -> (Option<EntryMut<'c>>, &'c mut Reply) {
    let st = &ctx.clients[ctx.me].st;
    let (db, touch) = (st.db, !st.no_touch);
    let clock = ctx.srv.lru_clock();
    let Server { dbs, stats, .. } = &mut *ctx.srv;
    let e = dbs[db].get(key, ctx.now_ms, clock, touch);
    if e.is_some() {
        stats.keyspace_hits += 1;
    } else {
        stats.keyspace_misses += 1;
    }
    (e, &mut *ctx.out)
}

/// `lookup_write` (expiry, access time, no statistics) plus the reply buffer and the
/// configuration (for size limits checked while the entry is held).
fn write_and_out<'c>(ctx: &'c mut Ctx<'_>, key: &[u8]) -> (Option<EntryMut<'c>>, &'c mut Reply, &'c Config) {
    let st = &ctx.clients[ctx.me].st;
    let (db, touch) = (st.db, !st.no_touch);
    let clock = ctx.srv.lru_clock();
    let Server { dbs, config, .. } = &mut *ctx.srv;
    let e = dbs[db].get(key, ctx.now_ms, clock, touch);
    (e, &mut *ctx.out, config)
}

/// Replies a string value as a bulk string.
fn reply_str(out: &mut Reply, s: StrRef<'_>) {
    match s {
        StrRef::Bytes(b) => out.bulk(b),
        StrRef::Int(n) => out.bulk_i64(n),
    }
}

/// Drops a replaced or removed entry, off the executor when it is large.
fn dispose(ctx: &mut Ctx, old: Option<Node>) {
    if let Some(old) = old {
        if old.value().heap_size() >= FREE_LATER_MIN {
            ctx.free_later(old);
        }
    }
}

/// The smallest value `proto-max-bulk-len` accepts: shorter strings need no config lookup.
const MIN_MAX_BULK: u64 = 1024 * 1024;

/// True if `total` bytes exceed the configured `proto-max-bulk-len`.
fn over_max_bulk(config: &Config, total: u64) -> bool {
    if total <= MIN_MAX_BULK {
        return false;
    }
    let max = match config.get_i64("proto-max-bulk-len") {
        n if n > 0 => n,
        _ => DEFAULT_MAX_BULK,
    };
    total > max as u64
}

/// Valkey's `checkStringLength`: `-ERR string exceeds maximum allowed size
/// (proto-max-bulk-len)` (and false) when `size + append` is over the limit.
fn check_string_length(out: &mut Reply, config: &Config, size: u64, append: u64) -> bool {
    if over_max_bulk(config, size.saturating_add(append)) {
        out.err("string exceeds maximum allowed size (proto-max-bulk-len)");
        return false;
    }
    true
}

/// Takes a string value's bytes out for in-place modification (APPEND, SETRANGE). A uniquely
/// owned buffer is reused, so repeated appends grow it amortised instead of copying it whole.
fn take_bytes_mut(v: &mut Value) -> BytesMut {
    if let Value::Str(b) = v {
        let b = std::mem::take(b);
        return b.try_into_mut().unwrap_or_else(|b| BytesMut::from(&b[..]));
    }
    let s = v.as_string().map(|s| s.to_vec()).unwrap_or_default();
    BytesMut::from(&s[..])
}
