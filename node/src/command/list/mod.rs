//! List commands with Valkey 8's replies, error strings and check order (`t_list.c`). Split by
//! concern: `push` (LPUSH family, LINSERT, LSET), `pop` (LPOP/RPOP, LMPOP, LMOVE, RPOPLPUSH),
//! `read` (LLEN, LRANGE, LINDEX, LPOS), `edit` (LREM, LTRIM) and `block` (BLPOP, BRPOP,
//! BLMOVE, BRPOPLPUSH, BLMPOP and CLIENT UNBLOCK, over `exec::blocking`).
//!
//! Every change keeps Valkey's invariants: a list that becomes empty is deleted (with a `del`
//! event), every change is reported with `Ctx::notify` under Valkey's event names, and every
//! push signals the key to clients blocked on it.

mod block;
mod edit;
mod pop;
mod push;
mod read;
#[cfg(test)]
mod tests;

use super::Handler;
use crate::exec::notify::class;
use crate::exec::{Ctx, Server};
use crate::keyspace::node::ValueRef;
use crate::keyspace::types::list::End;
use crate::keyspace::types::ListValue;
use crate::keyspace::{EntryMut, Value};
use crate::protocol::Reply;

pub fn handler(name: &str) -> Option<Handler> {
    Some(match name {
        "lpush" => push::lpush,
        "rpush" => push::rpush,
        "lpushx" => push::lpushx,
        "rpushx" => push::rpushx,
        "linsert" => push::linsert,
        "lset" => push::lset,
        "lpop" => pop::lpop,
        "rpop" => pop::rpop,
        "lmpop" => pop::lmpop,
        "lmove" => pop::lmove,
        "rpoplpush" => pop::rpoplpush,
        "llen" => read::llen,
        "lrange" => read::lrange,
        "lindex" => read::lindex,
        "lpos" => read::lpos,
        "lrem" => edit::lrem,
        "ltrim" => edit::ltrim,
        "blpop" => block::blpop,
        "brpop" => block::brpop,
        "blmove" => block::blmove,
        "brpoplpush" => block::brpoplpush,
        "blmpop" => block::blmpop,
        "client|unblock" => block::client_unblock,
        _ => return None,
    })
}

/// Deleted lists at least this big are dropped off the executor thread.
const FREE_LATER_MIN: usize = 64 * 1024;

/// `list-max-listpack-size`.
fn fill(ctx: &Ctx) -> i64 {
    ctx.srv.config.get_i64("list-max-listpack-size")
}

/// A key looked up for a list command.
enum Found<'c> {
    Missing,
    WrongType,
    List(EntryMut<'c>),
}

/// `lookupKeyWrite` plus the type check, handing back the reply buffer too.
fn write_list<'c>(ctx: &'c mut Ctx<'_>, key: &[u8]) -> (Found<'c>, &'c mut Reply) {
    let st = &ctx.clients[ctx.me].st;
    let (db, touch) = (st.db, !st.no_touch);
    let clock = ctx.srv.lru_clock();
    let Server { dbs, .. } = &mut *ctx.srv;
    let found = match dbs[db].get(key, ctx.now_ms, clock, touch) {
        None => Found::Missing,
        Some(e) if matches!(e.value(), ValueRef::List(_)) => Found::List(e),
        Some(_) => Found::WrongType,
    };
    (found, &mut *ctx.out)
}

/// `lookupKeyRead` (hit/miss statistics) plus the type check and the reply buffer.
fn read_list<'c>(ctx: &'c mut Ctx<'_>, key: &[u8]) -> (Found<'c>, &'c mut Reply) {
    let st = &ctx.clients[ctx.me].st;
    let (db, touch) = (st.db, !st.no_touch);
    let clock = ctx.srv.lru_clock();
    let Server { dbs, stats, .. } = &mut *ctx.srv;
    let found = match dbs[db].get(key, ctx.now_ms, clock, touch) {
        None => {
            stats.keyspace_misses += 1;
            Found::Missing
        }
        Some(e) => {
            stats.keyspace_hits += 1;
            if matches!(e.value(), ValueRef::List(_)) {
                Found::List(e)
            } else {
                Found::WrongType
            }
        }
    };
    (found, &mut *ctx.out)
}

/// The list inside an entry found by `write_list`/`read_list` (always `Some` there).
fn list_ref<'a>(e: &'a EntryMut<'_>) -> Option<&'a ListValue> {
    match e.value() {
        ValueRef::List(l) => Some(l),
        _ => None,
    }
}

/// The list inside an entry found by `write_list`, for changes (always `Some` there).
fn list_mut<'a>(e: &'a mut EntryMut<'_>) -> Option<&'a mut ListValue> {
    match e.value_mut() {
        Some(Value::List(l)) => Some(l),
        _ => None,
    }
}

/// As `list_mut`, without counting as a modification (WATCH): for LREM and LINSERT, which
/// call `Db::signal_modified` only when they changed the list, as Valkey signals them.
fn list_mut_untracked<'a>(e: &'a mut EntryMut<'_>) -> Option<&'a mut ListValue> {
    match e.value_mut_untracked() {
        Some(Value::List(l)) => Some(l),
        _ => None,
    }
}

/// Creates a list at `key` (which must be missing) and returns its entry.
fn create<'c>(ctx: &'c mut Ctx<'_>, key: &[u8]) -> (Found<'c>, &'c mut Reply) {
    let clock = ctx.clock();
    ctx.db().set(key, Value::List(Box::default()), None, clock);
    write_list(ctx, key)
}

/// After removing elements: the pop event, then delete the key if the list is empty
/// (Valkey's `listElementsRemoved`).
fn elements_removed(ctx: &mut Ctx, key: &[u8], end: End) {
    ctx.notify(class::LIST, if end == End::Head { "lpop" } else { "rpop" }, key);
    delete_if_empty(ctx, key);
}

/// Deletes `key` if it holds an empty list, with the `del` event; otherwise lets a shrunk list
/// go back to listpack.
fn delete_if_empty(ctx: &mut Ctx, key: &[u8]) {
    let fill = fill(ctx);
    // Untracked: re-encoding a shrunk list is no modification; the removal that shrank it
    // was counted by its command.
    let empty = match ctx.lookup_write(key) {
        Some(mut e) => match e.value_mut_untracked() {
            Some(Value::List(l)) if l.is_empty() => true,
            Some(Value::List(l)) => {
                l.shrink_check(fill);
                false
            }
            _ => false,
        },
        None => false,
    };
    if empty {
        if let Some(old) = ctx.db().remove(key) {
            if old.value().heap_size() >= FREE_LATER_MIN {
                ctx.free_later(old);
            }
        }
        ctx.notify(class::GENERIC, "del", key);
    }
}

/// Tells blocked clients that `key` got elements.
fn signal(ctx: &mut Ctx, key: &[u8]) {
    let db = ctx.clients[ctx.me].st.db;
    crate::exec::blocking::signal_key_ready(ctx.srv, db, key);
}

/// `LEFT`/`RIGHT` (Valkey's `getListPositionFromObjectOrReply`), replying a syntax error.
fn parse_end(ctx: &mut Ctx, arg: &[u8]) -> Option<End> {
    if arg.eq_ignore_ascii_case(b"left") {
        Some(End::Head)
    } else if arg.eq_ignore_ascii_case(b"right") {
        Some(End::Tail)
    } else {
        ctx.syntax_error();
        None
    }
}

/// `getRangeLongFromObjectOrReply`: an integer in `min..=max`; `msg` replaces both errors
/// when given, as in Valkey.
fn range_long(ctx: &mut Ctx, arg: &[u8], min: i64, max: i64, msg: Option<&str>) -> Option<i64> {
    match crate::util::parse_i64(arg) {
        Some(v) if v >= min && v <= max => Some(v),
        Some(_) => {
            match msg {
                Some(m) => ctx.out.err(m),
                None => ctx.out.err(&format!("value is out of range, value must between {min} and {max}")),
            }
            None
        }
        None => {
            ctx.out.err(msg.unwrap_or("value is not an integer or out of range"));
            None
        }
    }
}

/// `getPositiveLongFromObjectOrReply`.
fn positive_long(ctx: &mut Ctx, arg: &[u8], msg: Option<&str>) -> Option<i64> {
    range_long(ctx, arg, 0, i64::MAX, Some(msg.unwrap_or("value is out of range, must be positive")))
}

/// Replies `start..=end` of `l` (Valkey's `addListRangeReply`), reversed if asked.
fn range_reply(out: &mut Reply, l: &ListValue, start: i64, end: i64, reverse: bool) {
    let len = l.len() as i64;
    let (mut start, mut end) = (start, end);
    if start < 0 {
        start += len;
    }
    if end < 0 {
        end += len;
    }
    if start < 0 {
        start = 0;
    }
    if start > end || start >= len {
        out.array(0);
        return;
    }
    if end >= len {
        end = len - 1;
    }
    let n = (end - start + 1) as usize;
    out.array(n);
    let it = l.iter().skip(start as usize).take(n);
    if reverse {
        for v in it.rev() {
            out.bulk(v);
        }
    } else {
        for v in it {
            out.bulk(v);
        }
    }
}

/// Pops up to `count` elements from `end` of the list at `key` (which must hold a non-empty
/// list) and replies `[key, [elements]]` (Valkey's `listPopRangeAndReplyWithKey`).
fn pop_range_with_key(ctx: &mut Ctx, key: &[u8], end: End, count: i64) {
    let (found, out) = write_list(ctx, key);
    let Found::List(mut e) = found else { return };
    let Some(l) = list_mut(&mut e) else { return };
    let n = (count.max(0) as usize).min(l.len());
    out.array(2);
    out.bulk(key);
    out.array(n);
    for _ in 0..n {
        if let Some(v) = l.pop(end) {
            out.bulk(&v);
        }
    }
    elements_removed(ctx, key, end);
}
