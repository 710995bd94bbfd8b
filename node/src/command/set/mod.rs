//! Set commands (Valkey's `t_set.c`) with Valkey 8's replies, error strings and check
//! order. Split by concern: [`basic`] (membership, SADD, SREM, SMOVE), [`random`]
//! (SRANDMEMBER, SPOP, SSCAN) and [`algebra`] (SINTER, SUNION, SDIFF, their STORE forms and
//! SINTERCARD). Shared helpers (read lookup with the reply buffer, SCAN options) live in the
//! hash family.

mod algebra;
mod basic;
mod random;

#[cfg(test)]
mod tests;

use super::hash::Write;
use super::Handler;
use crate::exec::Ctx;
use crate::keyspace::node::ValueRef;
use crate::keyspace::types::set::SetLimits;
use crate::keyspace::types::SetValue;
use crate::keyspace::{Db, Value};
use crate::protocol::Reply;

pub fn handler(name: &str) -> Option<Handler> {
    Some(match name {
        "sadd" => basic::sadd,
        "srem" => basic::srem,
        "sismember" => basic::sismember,
        "smismember" => basic::smismember,
        "scard" => basic::scard,
        "smembers" => basic::smembers,
        "smove" => basic::smove,
        "srandmember" => random::srandmember,
        "spop" => random::spop,
        "sscan" => random::sscan,
        "sinter" => algebra::sinter,
        "sintercard" => algebra::sintercard,
        "sinterstore" => algebra::sinterstore,
        "sunion" => algebra::sunion,
        "sunionstore" => algebra::sunionstore,
        "sdiff" => algebra::sdiff,
        "sdiffstore" => algebra::sdiffstore,
        _ => return None,
    })
}

/// The conversion thresholds as configured now.
fn limits(ctx: &Ctx) -> SetLimits {
    let c = &ctx.srv.config;
    let get = |name| c.get_i64(name).max(0) as usize;
    SetLimits {
        max_intset: get("set-max-intset-entries"),
        max_listpack: get("set-max-listpack-entries"),
        max_value: get("set-max-listpack-value"),
    }
}

/// Runs `f` on the set at `key` for writing. A missing key gets the set `create` builds
/// (stored only if `f` leaves it non-empty); a set `f` empties is deleted. An existing set
/// counts as modified (WATCH) only when `changed` says `f`'s result changed it, as Valkey
/// signals only writes that did something (SADD of a present member does not).
fn write_set<R>(
    ctx: &mut Ctx,
    key: &[u8],
    create: Option<SetValue>,
    f: impl FnOnce(&mut SetValue) -> R,
    changed: impl FnOnce(&R) -> bool,
) -> Write<R> {
    let clock = ctx.clock();
    if let Some(mut e) = ctx.lookup_write(key) {
        if !matches!(e.value(), ValueRef::Set(_)) {
            return Write::WrongType;
        }
        let Some(Value::Set(s)) = e.value_mut_untracked() else { return Write::WrongType };
        let r = f(s);
        let emptied = s.is_empty();
        if emptied {
            ctx.db().remove(key);
        } else if changed(&r) {
            ctx.db().signal_modified(key);
        }
        return Write::Done { r, emptied };
    }
    let Some(mut s) = create else { return Write::Missing };
    let r = f(&mut s);
    if !s.is_empty() {
        ctx.db().set(key, Value::Set(Box::new(s)), None, clock);
    }
    Write::Done { r, emptied: false }
}

/// What a read lookup of a set key found.
enum Found {
    Missing,
    WrongType,
    Set,
}

/// Looks `key` up for reading (statistics, lazy expiry) and reports what it holds; the
/// caller then borrows the value with `Db::peek`.
fn find_set(ctx: &mut Ctx, key: &[u8]) -> Found {
    match super::hash::read_and_out(ctx, key).0.map(|e| matches!(e.value(), ValueRef::Set(_))) {
        None => Found::Missing,
        Some(false) => Found::WrongType,
        Some(true) => Found::Set,
    }
}

/// The database (read-only) and the reply buffer, borrowed together.
fn db_and_out<'c>(ctx: &'c mut Ctx<'_>) -> (&'c Db, &'c mut Reply) {
    let i = ctx.clients[ctx.me].st.db;
    (&ctx.srv.dbs[i], &mut *ctx.out)
}

/// The set at `key` without side effects (after `find_set` looked it up).
fn set_in<'d>(db: &'d Db, key: &[u8]) -> Option<&'d SetValue> {
    match db.peek(key) {
        Some(ValueRef::Set(s)) => Some(s),
        _ => None,
    }
}
