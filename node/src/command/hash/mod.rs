//! Hash commands (Valkey's `t_hash.c`) with Valkey 8's replies, error strings and check
//! order. Split by concern: [`read`] (HGET ... HGETALL), [`write`] (HSET, HDEL, the HINCRBY
//! pair) and [`random`] (HRANDFIELD, HSCAN). This module keeps what they share, and the SCAN
//! option parsing SSCAN reuses.

pub(crate) mod expire;
mod random;
mod read;
mod write;

#[cfg(test)]
pub(crate) mod tests;

use bytes::Bytes;

use super::Handler;
use crate::exec::{Ctx, Server};
use crate::keyspace::node::ValueRef;
use crate::keyspace::types::hash::HashLimits;
use crate::keyspace::types::HashValue;
use crate::keyspace::{EntryMut, Value};
use crate::protocol::Reply;

pub fn handler(name: &str) -> Option<Handler> {
    Some(match name {
        "hset" => write::hset,
        "hmset" => write::hmset,
        "hsetnx" => write::hsetnx,
        "hdel" => write::hdel,
        "hgetdel" => write::hgetdel,
        "hincrby" => write::hincrby,
        "hincrbyfloat" => write::hincrbyfloat,
        "hget" => read::hget,
        "hmget" => read::hmget,
        "hexists" => read::hexists,
        "hlen" => read::hlen,
        "hstrlen" => read::hstrlen,
        "hkeys" => read::hkeys,
        "hvals" => read::hvals,
        "hgetall" => read::hgetall,
        "hrandfield" => random::hrandfield,
        "hscan" => random::hscan,
        "hexpire" => expire::hexpire,
        "hpexpire" => expire::hpexpire,
        "hexpireat" => expire::hexpireat,
        "hpexpireat" => expire::hpexpireat,
        "httl" => expire::httl,
        "hpttl" => expire::hpttl,
        "hexpiretime" => expire::hexpiretime,
        "hpexpiretime" => expire::hpexpiretime,
        "hpersist" => expire::hpersist,
        "hgetex" => expire::hgetex,
        "hsetex" => expire::hsetex,
        _ => return None,
    })
}

/// The conversion thresholds as configured now.
fn limits(ctx: &Ctx) -> HashLimits {
    let c = &ctx.srv.config;
    HashLimits {
        max_entries: c.get_i64("hash-max-listpack-entries").max(0) as usize,
        max_value: c.get_i64("hash-max-listpack-value").max(0) as usize,
    }
}

/// `lookup_read` (expiry, access time, hit/miss statistics) that also hands back the reply
/// buffer, so a handler can reply straight from the stored value.
pub(crate) fn read_and_out<'c>(ctx: &'c mut Ctx<'_>, key: &[u8]) -> (Option<EntryMut<'c>>, &'c mut Reply) {
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

/// Lazy hash field expiry before a hash command looks at `key`: fields whose TTL passed
/// are removed (see `Db::expire_fields`).
pub(crate) fn expire_fields(ctx: &mut Ctx, key: &[u8]) {
    let now = ctx.now_ms;
    ctx.db().expire_fields(key, now);
}

/// [`read_and_out`] for hash commands: expired fields are removed first.
pub(crate) fn hash_read<'c>(ctx: &'c mut Ctx<'_>, key: &[u8]) -> (Option<EntryMut<'c>>, &'c mut Reply) {
    expire_fields(ctx, key);
    read_and_out(ctx, key)
}

/// What a write to a collection key found and did.
pub(crate) enum Write<R> {
    /// The key holds another type (nothing was changed).
    WrongType,
    /// The key does not exist and the command does not create it.
    Missing,
    /// The change ran; `emptied`: it left the collection empty, so the key was deleted.
    Done { r: R, emptied: bool },
}

/// Runs `f` on the hash at `key` for writing. A missing key gets a new hash when `create`
/// is set (Valkey's `hashTypeLookupWriteOrCreate`), stored only if `f` leaves it non-empty;
/// a hash `f` empties is deleted, as Valkey deletes empty collections. An existing hash counts
/// as modified (WATCH) only when `changed` says `f`'s result changed it, as Valkey signals
/// only writes that did something (HDEL of a missing field does not).
fn write_hash<R>(
    ctx: &mut Ctx,
    key: &[u8],
    create: bool,
    f: impl FnOnce(&mut HashValue) -> R,
    changed: impl FnOnce(&R) -> bool,
) -> Write<R> {
    let clock = ctx.clock();
    expire_fields(ctx, key);
    if let Some(mut e) = ctx.lookup_write(key) {
        if !matches!(e.value(), ValueRef::Hash(_)) {
            return Write::WrongType;
        }
        let Some(Value::Hash(h)) = e.value_mut_untracked() else { return Write::WrongType };
        let r = f(h);
        let emptied = h.is_empty();
        if emptied {
            ctx.db().remove(key);
        } else if changed(&r) {
            ctx.db().signal_modified(key);
        }
        return Write::Done { r, emptied };
    }
    if !create {
        return Write::Missing;
    }
    let mut h = HashValue::default();
    let r = f(&mut h);
    if !h.is_empty() {
        ctx.db().set(key, Value::Hash(Box::new(h)), None, clock);
    }
    Write::Done { r, emptied: false }
}

/// The argument as C code sees it through `strcasecmp`: up to the first NUL byte.
pub(crate) fn cstr(arg: &[u8]) -> &[u8] {
    match arg.iter().position(|&b| b == 0) {
        Some(n) => &arg[..n],
        None => arg,
    }
}

/// HSCAN/SSCAN options after the cursor.
pub(crate) struct ScanOpts<'a> {
    pub count: usize,
    pub pattern: Option<&'a [u8]>,
    pub novalues: bool,
}

/// Valkey's `scanGenericCommand` option parsing for a collection (`args[3..]`), replying
/// the error and returning `None` on a bad option. NOVALUES is accepted only for hashes.
pub(crate) fn scan_opts<'a>(ctx: &mut Ctx, args: &'a [Bytes], hash: bool) -> Option<ScanOpts<'a>> {
    let mut opts = ScanOpts { count: 10, pattern: None, novalues: false };
    let mut i = 3;
    while i < args.len() {
        let opt = cstr(&args[i]);
        let has_value = i + 1 < args.len();
        if opt.eq_ignore_ascii_case(b"count") && has_value {
            let n = ctx.arg_i64(&args[i + 1])?;
            if n < 1 {
                ctx.syntax_error();
                return None;
            }
            opts.count = usize::try_from(n).unwrap_or(usize::MAX);
            i += 2;
        } else if opt.eq_ignore_ascii_case(b"match") && has_value {
            let p = &args[i + 1][..];
            opts.pattern = (p != b"*").then_some(p);
            i += 2;
        } else if opt.eq_ignore_ascii_case(b"novalues") {
            if !hash {
                ctx.out.err("NOVALUES option can only be used in HSCAN");
                return None;
            }
            opts.novalues = true;
            i += 1;
        } else if opt.eq_ignore_ascii_case(b"noscores") {
            ctx.out.err("NOSCORES option can only be used in ZSCAN");
            return None;
        } else {
            ctx.syntax_error();
            return None;
        }
    }
    Some(opts)
}

/// A scan reply: `[cursor, [elements...]]`.
pub(crate) fn scan_reply(out: &mut Reply, next: u64, items: &[&[u8]]) {
    out.array(2);
    out.bulk(itoa::Buffer::new().format(next).as_bytes());
    out.array(items.len());
    for it in items {
        out.bulk(it);
    }
}

/// A COUNT argument of HRANDFIELD/SRANDMEMBER: `getRangeLongFromObjectOrReply` over
/// `[-LONG_MAX, LONG_MAX]`.
pub(crate) fn random_count(ctx: &mut Ctx, arg: &[u8]) -> Option<i64> {
    let Some(n) = crate::util::parse_i64(arg) else {
        ctx.not_integer();
        return None;
    };
    if n == i64::MIN {
        ctx.out.err("value is out of range, value must between -9223372036854775807 and 9223372036854775807");
        return None;
    }
    Some(n)
}

/// `count` distinct indices of `0..size` (`count < size`), in random order.
pub(crate) fn distinct_indices(size: usize, count: usize) -> Vec<usize> {
    if count * 3 > size {
        // Dense: a partial Fisher-Yates shuffle.
        let mut all: Vec<usize> = (0..size).collect();
        for i in 0..count {
            let j = fastrand::usize(i..size);
            all.swap(i, j);
        }
        all.truncate(count);
        all
    } else {
        let mut seen = std::collections::HashSet::with_capacity(count);
        let mut out = Vec::with_capacity(count);
        while out.len() < count {
            let i = fastrand::usize(..size);
            if seen.insert(i) {
                out.push(i);
            }
        }
        out
    }
}
