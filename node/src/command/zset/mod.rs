//! Sorted-set commands with Valkey 8's replies, error strings and check order (`t_zset.c`).
//! Split by concern: `write` (ZADD, ZINCRBY, ZREM, ZPOP*, ZMPOP), `read` (scores, ranks,
//! counts, ZRANDMEMBER, ZSCAN), `range` (the ZRANGE family, ZRANGESTORE, ZREMRANGEBY*) and
//! `algebra` (ZUNION/ZINTER/ZDIFF, their STORE forms, ZINTERCARD). The type itself lives in
//! `keyspace::types::zset`; this module parses arguments and shapes replies.

mod algebra;
mod parse;
mod range;
mod read;
#[cfg(test)]
mod tests;
mod write;

use bytes::Bytes;

use super::Handler;
use crate::config::Config;
use crate::exec::notify::class;
use crate::exec::{Ctx, Server};
use crate::keyspace::node::ValueRef;
use crate::keyspace::types::zset::Limits;
use crate::keyspace::types::ZSetValue;
use crate::keyspace::{Node, Value};
use crate::protocol::Reply;

pub use write::pop;

/// Removed or overwritten values at least this big are dropped off the executor thread.
const FREE_LATER_MIN: usize = 64 * 1024;

pub fn handler(name: &str) -> Option<Handler> {
    Some(match name {
        "zadd" => write::zadd,
        "zincrby" => write::zincrby,
        "zrem" => write::zrem,
        "zpopmin" => write::zpopmin,
        "zpopmax" => write::zpopmax,
        "zmpop" => write::zmpop,
        "bzpopmin" => write::bzpopmin,
        "bzpopmax" => write::bzpopmax,
        "bzmpop" => write::bzmpop,
        "zscore" => read::zscore,
        "zmscore" => read::zmscore,
        "zcard" => read::zcard,
        "zrank" => read::zrank,
        "zrevrank" => read::zrevrank,
        "zcount" => read::zcount,
        "zlexcount" => read::zlexcount,
        "zrandmember" => read::zrandmember,
        "zscan" => read::zscan,
        "zrange" => range::zrange,
        "zrangestore" => range::zrangestore,
        "zrangebyscore" => range::zrangebyscore,
        "zrevrangebyscore" => range::zrevrangebyscore,
        "zrangebylex" => range::zrangebylex,
        "zrevrangebylex" => range::zrevrangebylex,
        "zrevrange" => range::zrevrange,
        "zremrangebyrank" => range::zremrangebyrank,
        "zremrangebyscore" => range::zremrangebyscore,
        "zremrangebylex" => range::zremrangebylex,
        "zunion" => algebra::zunion,
        "zinter" => algebra::zinter,
        "zdiff" => algebra::zdiff,
        "zunionstore" => algebra::zunionstore,
        "zinterstore" => algebra::zinterstore,
        "zdiffstore" => algebra::zdiffstore,
        "zintercard" => algebra::zintercard,
        _ => return None,
    })
}

/// The configured listpack thresholds.
fn limits(ctx: &Ctx) -> Limits {
    limits_of(&ctx.srv.config)
}

/// The listpack thresholds of a configuration (two table lookups: only ask when they matter).
fn limits_of(c: &Config) -> Limits {
    Limits {
        entries: usize::try_from(c.get_i64("zset-max-listpack-entries")).unwrap_or(0),
        value: usize::try_from(c.get_i64("zset-max-listpack-value")).unwrap_or(0),
    }
}

/// Runs `f` on the sorted set at `key` (or `None` if missing) with the reply buffer, after a
/// read lookup (expiry, statistics). Replies WRONGTYPE and returns `None` for other types.
fn read<R>(ctx: &mut Ctx, key: &[u8], f: impl FnOnce(Option<&ZSetValue>, &mut Reply) -> R) -> Option<R> {
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
    let out = &mut *ctx.out;
    match e {
        None => Some(f(None, out)),
        Some(e) => match e.value() {
            ValueRef::ZSet(z) => Some(f(Some(z), out)),
            _ => {
                out.error(crate::exec::ctx::WRONGTYPE);
                None
            }
        },
    }
}

/// What a write closure saw.
enum Found<'a> {
    Missing,
    ZSet(&'a mut ZSetValue),
}

/// Runs `f` on the sorted set at `key` for writing, with the reply buffer. Replies WRONGTYPE
/// and returns `None` for other types. Deletes the key if `f` left the set empty and reports
/// whether it did (the caller then notifies `del`). An existing set counts as modified (WATCH)
/// only when `changed` says `f`'s result changed it, as Valkey signals only writes that did
/// something (ZADD XX of a missing member, ZREM of one, do not).
fn write<R>(
    ctx: &mut Ctx,
    key: &[u8],
    f: impl FnOnce(Found<'_>, &mut Reply, &Config) -> R,
    changed: impl FnOnce(&R) -> bool,
) -> Option<(R, bool)> {
    let st = &ctx.clients[ctx.me].st;
    let (db, touch) = (st.db, !st.no_touch);
    let clock = ctx.srv.lru_clock();
    let now = ctx.now_ms;
    let out = &mut *ctx.out;
    let Server { dbs, config, .. } = &mut *ctx.srv;
    let d = &mut dbs[db];
    let mut modified = false;
    let (r, empty) = match d.get(key, now, clock, touch) {
        None => (f(Found::Missing, out, config), false),
        Some(mut e) => {
            if !matches!(e.value(), ValueRef::ZSet(_)) {
                out.error(crate::exec::ctx::WRONGTYPE);
                return None;
            }
            match e.value_mut_untracked() {
                Some(Value::ZSet(z)) => {
                    let r = f(Found::ZSet(z), out, config);
                    let empty = z.is_empty();
                    if !empty && changed(&r) {
                        modified = true;
                    }
                    (r, empty)
                }
                _ => {
                    out.error(crate::exec::ctx::WRONGTYPE);
                    return None;
                }
            }
        }
    };
    if modified {
        d.signal_modified(key);
    }
    if empty {
        let old = d.remove(key);
        dispose(ctx, old);
    }
    Some((r, empty))
}

/// Drops a replaced or removed entry, off the executor when it is large.
fn dispose(ctx: &mut Ctx, old: Option<Node>) {
    if let Some(old) = old {
        if old.value().heap_size() >= FREE_LATER_MIN {
            ctx.free_later(old);
        }
    }
}

/// Stores a computed set at `dst` (replacing any value and TTL) and replies its size; an
/// empty result deletes `dst` instead, as Valkey's store commands do.
pub(crate) fn store(ctx: &mut Ctx, dst: &[u8], mut z: ZSetValue, event: &str) {
    let n = z.len();
    if n > 0 {
        z.fit_encoding(limits(ctx));
        let clock = ctx.clock();
        let old = ctx.db().set(dst, Value::ZSet(Box::new(z)), None, clock);
        dispose(ctx, old);
        ctx.out.int(n as i64);
        ctx.notify(class::ZSET, event, dst);
    } else {
        ctx.out.int(0);
        let old = ctx.db().remove(dst);
        if old.is_some() {
            dispose(ctx, old);
            ctx.notify(class::GENERIC, "del", dst);
        }
    }
}

/// Replies members, with their scores if asked: a flat array in RESP2, `[member, score]`
/// pairs in RESP3, as Valkey's range replies.
fn reply_members(out: &mut Reply, items: &[(&[u8], f64)], withscores: bool) {
    if withscores && !out.resp3 {
        out.array(items.len() * 2);
    } else {
        out.array(items.len());
    }
    for (m, s) in items {
        if withscores && out.resp3 {
            out.array(2);
        }
        out.bulk(m);
        if withscores {
            out.double(*s);
        }
    }
}

/// True if the argument equals `word`, ignoring ASCII case.
fn is(arg: &Bytes, word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}
