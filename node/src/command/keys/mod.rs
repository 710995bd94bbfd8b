//! Generic key commands: the ones that work on any key whatever its type (Valkey's `db.c`,
//! `expire.c` and the OBJECT part of `object.c`).
//!
//! Split by concern: [`space`] reads and deletes keys (DEL, EXISTS, KEYS, SCAN, ...),
//! [`expire`] sets and reports TTLs, [`relocate`] renames, copies and moves keys between
//! databases, [`object`] is OBJECT. This module keeps what they share: lookups with Valkey's
//! exact statistics/access-time rules, lazy freeing, and argument helpers that reproduce how
//! Valkey's C code sees binary arguments.

mod expire;
pub(crate) mod object;
mod relocate;
mod space;

pub(crate) use space::parse_cursor;

#[cfg(test)]
mod tests;

use bytes::Bytes;

use super::Handler;
use crate::exec::{Ctx, Server};
use crate::keyspace::{EntryMut, Node};
use crate::protocol::Reply;

pub fn handler(name: &str) -> Option<Handler> {
    Some(match name {
        "del" => space::del,
        "unlink" => space::unlink,
        "exists" => space::exists,
        "type" => space::type_,
        "touch" => space::touch,
        "randomkey" => space::randomkey,
        "keys" => space::keys,
        "scan" => space::scan,
        "expire" => expire::expire,
        "pexpire" => expire::pexpire,
        "expireat" => expire::expireat,
        "pexpireat" => expire::pexpireat,
        "ttl" => expire::ttl,
        "pttl" => expire::pttl,
        "expiretime" => expire::expiretime,
        "pexpiretime" => expire::pexpiretime,
        "persist" => expire::persist,
        "rename" => relocate::rename,
        "renamenx" => relocate::renamenx,
        "copy" => relocate::copy,
        "move" => relocate::move_,
        "object|encoding" => object::encoding,
        "object|freq" => object::freq,
        "object|idletime" => object::idletime,
        "object|refcount" => object::refcount,
        "object|help" => object::help,
        _ => return None,
    })
}

/// Values whose heap part is at least this big are dropped off the executor when a lazy
/// free applies (Valkey frees asynchronously only when it is worth the hand-off).
const LAZYFREE_MIN_BYTES: usize = 64 * 1024;

/// Looks a key up for reading with hit/miss statistics, updating its access time only when
/// `touch` is set. Valkey's `lookupKeyReadWithFlags`: pass `false` where it uses
/// `LOOKUP_NOTOUCH` (TTL, TYPE, EXISTS, OBJECT); TOUCH passes `true` even for NO-TOUCH clients.
pub(crate) fn read_key<'c>(ctx: &'c mut Ctx, key: &[u8], touch: bool) -> Option<EntryMut<'c>> {
    let i = ctx.clients[ctx.me].st.db;
    let clock = ctx.srv.lru_clock();
    let now = ctx.now_ms;
    let Server { dbs, stats, .. } = &mut *ctx.srv;
    let e = dbs[i].get(key, now, clock, touch);
    if e.is_some() {
        stats.keyspace_hits += 1;
    } else {
        stats.keyspace_misses += 1;
    }
    e
}

/// When a removed value may be freed off the executor.
#[derive(Clone, Copy)]
enum LazyFree {
    /// Always (UNLINK).
    Always,
    /// When this `lazyfree-*` directive is `yes`. Only read for big values, so the common
    /// small-value path never pays for the configuration lookup.
    If(&'static str),
}

/// Drops a removed entry, off the executor when the value is big and `lazy` allows it.
fn dispose(srv: &mut Server, entry: Node, lazy: LazyFree) {
    if entry.value().heap_size() >= LAZYFREE_MIN_BYTES
        && match lazy {
            LazyFree::Always => true,
            LazyFree::If(directive) => srv.config.get_bool(directive),
        }
    {
        srv.free_later(entry);
    }
}

/// The argument as C code sees it through `strcasecmp`/`strtoull`: up to the first NUL byte.
fn cstr(arg: &[u8]) -> &[u8] {
    match arg.iter().position(|&b| b == 0) {
        Some(n) => &arg[..n],
        None => arg,
    }
}

/// `-ERR <prefix><arg><suffix>` with a client-supplied (possibly binary) argument, CR/LF
/// replaced by spaces as Valkey's `addReplyErrorFormat` does.
fn err_with_arg(out: &mut Reply, prefix: &str, arg: &[u8], suffix: &str) {
    out.raw(b"-ERR ");
    out.raw(prefix.as_bytes());
    for chunk in arg.split_inclusive(|&b| b == b'\r' || b == b'\n') {
        match chunk.split_last() {
            Some((&last, head)) if last == b'\r' || last == b'\n' => {
                out.raw(head);
                out.raw(b" ");
            }
            _ => out.raw(chunk),
        }
    }
    out.raw(suffix.as_bytes());
    out.raw(b"\r\n");
}

/// Parses a database index as `getIntFromObjectOrReply` followed by `selectDb`'s range check,
/// replying the matching error on failure.
fn db_index_arg(ctx: &mut Ctx, arg: &Bytes) -> Option<usize> {
    let n = ctx.arg_i64(arg)?;
    let Ok(n) = i32::try_from(n) else {
        ctx.out.err("value is out of range, value must between -2147483648 and 2147483647");
        return None;
    };
    // A single-database cluster node checks against `databases`, as Valkey 8 (whose cluster
    // nodes keep them all), so COPY ... DB 1 gets its cluster-mode error, not this one.
    let limit = if single_cluster_db(ctx.srv) {
        ctx.srv.config.get_i64("databases").max(1) as usize
    } else {
        ctx.srv.dbs.len()
    };
    match usize::try_from(n) {
        Ok(i) if i < limit => Some(i),
        _ => {
            ctx.out.err("DB index is out of range");
            None
        }
    }
}

/// Values overwritten or deleted implicitly by a command (RENAME's destination, COPY REPLACE).
const LAZY_SERVER_DEL: LazyFree = LazyFree::If("lazyfree-lazy-server-del");

/// True when the node runs in cluster mode with one database (`cluster-databases 1`, the
/// default): SELECT, MOVE and cross-database COPY get Valkey 8's cluster-mode errors. With more
/// databases (Valkey 9) they work as on a standalone node.
pub fn single_cluster_db(srv: &Server) -> bool {
    srv.dbs.len() == 1 && srv.config.get_bool("cluster-enabled")
}
