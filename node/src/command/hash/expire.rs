//! Valkey 9 hash field expiry: HEXPIRE, HPEXPIRE, HEXPIREAT, HPEXPIREAT, HTTL, HPTTL,
//! HEXPIRETIME, HPEXPIRETIME, HPERSIST, HGETEX and HSETEX, with Valkey 9.1's replies, error
//! strings and check order. A field's deadline lives in the hash value (see
//! `HashValue::set_field_expiry`); the key goes into its database's `hfe_keys` so the active
//! cycle finds it. The commands' effects reach replicas with absolute deadlines
//! (`HPEXPIREAT`, HSETEX with `PXAT`): the deadline a handler used is kept in [`last_deadline`]
//! for `replication::propagate`.

use std::cell::Cell;

use bytes::Bytes;

use super::{limits, read_and_out, write_hash, Write};
use crate::exec::ctx::WRONGTYPE;
use crate::exec::notify::class;
use crate::exec::Ctx;
use crate::keyspace::node::ValueRef;

const NUMFIELDS: &str = "numfields should be greater than 0 and match the provided number of fields";

std::thread_local! {
    /// The absolute deadline (unix ms) the last field-expiry command used.
    static DEADLINE: Cell<i64> = const { Cell::new(0) };
}

/// The absolute deadline (unix ms) of the last HEXPIRE-family, HGETEX or HSETEX command,
/// for the replication rewrite.
pub fn last_deadline() -> i64 {
    DEADLINE.get()
}

/// How a time argument is given.
#[derive(Clone, Copy, PartialEq)]
enum Unit {
    /// Seconds from now (EX, HEXPIRE).
    Secs,
    /// Milliseconds from now (PX, HPEXPIRE).
    Ms,
    /// Unix seconds (EXAT, HEXPIREAT).
    AtSecs,
    /// Unix milliseconds (PXAT, HPEXPIREAT).
    AtMs,
}

/// Valkey's expire-time check: a negative time or one whose deadline overflows is
/// `invalid expire time in '<cmd>' command`. Returns the deadline in unix ms.
fn deadline(ctx: &mut Ctx, v: i64, unit: Unit, cmd: &str) -> Option<i64> {
    let at = (|| {
        if v < 0 {
            return None;
        }
        let ms = match unit {
            Unit::Secs | Unit::AtSecs => v.checked_mul(1000)?,
            Unit::Ms | Unit::AtMs => v,
        };
        match unit {
            Unit::Secs | Unit::Ms => ms.checked_add(ctx.now_ms),
            _ => Some(ms),
        }
    })();
    match at {
        Some(at) => {
            DEADLINE.set(at);
            Some(at)
        }
        None => {
            ctx.out.err(&format!("invalid expire time in '{cmd}' command"));
            None
        }
    }
}

/// Checks `FIELDS numfields` at `at`: the count must be positive and `per` arguments per
/// field must make up the rest of the command exactly. Returns the field arguments.
fn fields_at<'a>(ctx: &mut Ctx, args: &'a [Bytes], at: usize, per: usize) -> Option<&'a [Bytes]> {
    let Some(n_arg) = args.get(at + 1) else {
        ctx.out.err(NUMFIELDS);
        return None;
    };
    let n = ctx.arg_i64(n_arg)?;
    let rest = &args[at + 2..];
    if n <= 0 || (n as u64).checked_mul(per as u64) != Some(rest.len() as u64) {
        ctx.out.err(NUMFIELDS);
        return None;
    }
    Some(rest)
}

fn is(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

/// HEXPIRE key seconds [NX | XX | GT | LT] FIELDS numfields field [field ...]
pub fn hexpire(ctx: &mut Ctx, args: &[Bytes]) {
    expire_generic(ctx, args, Unit::Secs, "hexpire");
}

/// HPEXPIRE key milliseconds [NX | XX | GT | LT] FIELDS numfields field [field ...]
pub fn hpexpire(ctx: &mut Ctx, args: &[Bytes]) {
    expire_generic(ctx, args, Unit::Ms, "hpexpire");
}

/// HEXPIREAT key unix-time-seconds [NX | XX | GT | LT] FIELDS numfields field [field ...]
pub fn hexpireat(ctx: &mut Ctx, args: &[Bytes]) {
    expire_generic(ctx, args, Unit::AtSecs, "hexpireat");
}

/// HPEXPIREAT key unix-time-milliseconds [NX | XX | GT | LT] FIELDS numfields field [field ...]
pub fn hpexpireat(ctx: &mut Ctx, args: &[Bytes]) {
    expire_generic(ctx, args, Unit::AtMs, "hpexpireat");
}

/// The HEXPIRE family. Per field: -2 no such field (or key), 0 the condition was not met,
/// 1 the TTL was set, 2 the deadline has passed so the field was deleted.
fn expire_generic(ctx: &mut Ctx, args: &[Bytes], unit: Unit, cmd: &str) {
    // The first FIELDS token after the time starts the field block, which must end the
    // command; it is checked before anything else, as Valkey does.
    let Some(fi) = (3..args.len()).find(|&i| is(&args[i], "fields")) else {
        return ctx.out.err(NUMFIELDS);
    };
    let Some(fields) = fields_at(ctx, args, fi, 1) else { return };
    let Some(v) = ctx.arg_i64(&args[2]) else { return };
    let Some(at) = deadline(ctx, v, unit, cmd) else { return };
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for opt in &args[3..fi] {
        match () {
            _ if is(opt, "nx") => nx = true,
            _ if is(opt, "xx") => xx = true,
            _ if is(opt, "gt") => gt = true,
            _ if is(opt, "lt") => lt = true,
            _ => return ctx.out.err(&format!("Unsupported option {}", String::from_utf8_lossy(opt))),
        }
    }
    if nx && (xx || gt || lt) {
        return ctx.out.err("NX and XX, GT or LT options at the same time are not compatible");
    }
    if gt && lt {
        return ctx.out.err("GT and LT options at the same time are not compatible");
    }
    let now = ctx.now_ms;
    let key = &args[1];
    let res = write_hash(
        ctx,
        key,
        false,
        |h| {
            fields
                .iter()
                .map(|f| {
                    if h.get(f).is_none() {
                        return -2;
                    }
                    let cur = h.field_expiry(f);
                    let ok = (!nx || cur.is_none())
                        && (!xx || cur.is_some())
                        // No TTL counts as an infinite one.
                        && (!gt || cur.is_some_and(|c| at > c))
                        && (!lt || cur.is_none_or(|c| at < c));
                    if !ok {
                        0
                    } else if at <= now {
                        h.remove(f);
                        2
                    } else {
                        h.set_field_expiry(f, at);
                        1
                    }
                })
                .collect::<Vec<i64>>()
        },
        |codes| codes.iter().any(|&c| c > 0),
    );
    match res {
        Write::WrongType => ctx.wrong_type(),
        Write::Missing => {
            ctx.out.array(fields.len());
            for _ in fields {
                ctx.out.int(-2);
            }
        }
        Write::Done { r, emptied } => {
            ctx.out.array(r.len());
            for &c in &r {
                ctx.out.int(c);
            }
            if r.contains(&1) {
                ctx.db().hfe_keys.insert(key.clone());
                ctx.notify(class::HASH, "hexpire", key);
            }
            if r.contains(&2) {
                ctx.notify(class::HASH, "hexpired", key);
                if emptied {
                    ctx.notify(class::GENERIC, "del", key);
                }
            }
        }
    }
}

/// What the TTL readers reply.
#[derive(Clone, Copy)]
enum Ttl {
    Secs,
    Ms,
    AtSecs,
    AtMs,
}

/// HTTL key FIELDS numfields field [field ...]
pub fn httl(ctx: &mut Ctx, args: &[Bytes]) {
    ttl_generic(ctx, args, Ttl::Secs);
}

/// HPTTL key FIELDS numfields field [field ...]
pub fn hpttl(ctx: &mut Ctx, args: &[Bytes]) {
    ttl_generic(ctx, args, Ttl::Ms);
}

/// HEXPIRETIME key FIELDS numfields field [field ...]
pub fn hexpiretime(ctx: &mut Ctx, args: &[Bytes]) {
    ttl_generic(ctx, args, Ttl::AtSecs);
}

/// HPEXPIRETIME key FIELDS numfields field [field ...]
pub fn hpexpiretime(ctx: &mut Ctx, args: &[Bytes]) {
    ttl_generic(ctx, args, Ttl::AtMs);
}

/// `FIELDS numfields field...` at `args[2..]` for HTTL and HPERSIST: a wrong count is a
/// syntax error for HTTL, the numfields error for HPERSIST.
fn fixed_fields<'a>(ctx: &mut Ctx, args: &'a [Bytes], count_err: Option<&str>) -> Option<&'a [Bytes]> {
    if !is(&args[2], "fields") {
        ctx.syntax_error();
        return None;
    }
    let n = ctx.arg_i64(&args[3])?;
    let rest = &args[4..];
    if n <= 0 || n as u64 != rest.len() as u64 {
        match count_err {
            Some(e) => ctx.out.err(e),
            None => ctx.syntax_error(),
        }
        return None;
    }
    Some(rest)
}

/// Per field: -2 no such field, -1 no TTL, else the TTL or deadline.
fn ttl_generic(ctx: &mut Ctx, args: &[Bytes], kind: Ttl) {
    let Some(fields) = fixed_fields(ctx, args, None) else { return };
    super::expire_fields(ctx, &args[1]);
    let now = ctx.now_ms;
    let (e, out) = read_and_out(ctx, &args[1]);
    let h = match e.as_ref().map(|e| e.value()) {
        None => None,
        Some(ValueRef::Hash(h)) => Some(h),
        Some(_) => return out.error(WRONGTYPE),
    };
    out.array(fields.len());
    for f in fields {
        let v = match h {
            Some(h) if h.get(f).is_some() => match h.field_expiry(f) {
                None => -1,
                Some(at) => match kind {
                    Ttl::Secs => ((at - now).max(0) + 500) / 1000,
                    Ttl::Ms => (at - now).max(0),
                    Ttl::AtSecs => (at + 500) / 1000,
                    Ttl::AtMs => at,
                },
            },
            _ => -2,
        };
        out.int(v);
    }
}

/// HPERSIST key FIELDS numfields field [field ...]: per field -2 no such field, -1 no TTL,
/// 1 the TTL was removed.
pub fn hpersist(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(fields) = fixed_fields(ctx, args, Some(NUMFIELDS)) else { return };
    let key = &args[1];
    let res = write_hash(
        ctx,
        key,
        false,
        |h| {
            fields
                .iter()
                .map(|f| {
                    if h.get(f).is_none() {
                        -2
                    } else if h.persist_field(f) {
                        1
                    } else {
                        -1
                    }
                })
                .collect::<Vec<i64>>()
        },
        |codes| codes.contains(&1),
    );
    match res {
        Write::WrongType => ctx.wrong_type(),
        Write::Missing => {
            ctx.out.array(fields.len());
            for _ in fields {
                ctx.out.int(-2);
            }
        }
        Write::Done { r, .. } => {
            ctx.out.array(r.len());
            for &c in &r {
                ctx.out.int(c);
            }
            if r.contains(&1) {
                ctx.notify(class::HASH, "hpersist", key);
            }
        }
    }
}

/// A time option of HGETEX/HSETEX: which one and its (unchecked) value.
type TimeOpt = Option<(Unit, i64)>;

fn time_unit(arg: &[u8]) -> Option<Unit> {
    Some(match () {
        _ if is(arg, "ex") => Unit::Secs,
        _ if is(arg, "px") => Unit::Ms,
        _ if is(arg, "exat") => Unit::AtSecs,
        _ if is(arg, "pxat") => Unit::AtMs,
        _ => return None,
    })
}

/// Whether the hash at `key` is of another type (replies WRONGTYPE if so).
fn wrong_type_at(ctx: &mut Ctx, key: &[u8]) -> bool {
    super::expire_fields(ctx, key);
    let now = ctx.now_ms;
    let db = ctx.db();
    if db.is_expired_key(key, now) {
        return false;
    }
    match db.peek(key) {
        Some(ValueRef::Hash(_)) | None => false,
        Some(_) => {
            ctx.wrong_type();
            true
        }
    }
}

/// HGETEX key [EX seconds | PX milliseconds | EXAT unix-time-seconds |
/// PXAT unix-time-milliseconds | PERSIST] FIELDS numfields field [field ...]:
/// the values (nil for missing fields), then the fields' TTLs set or removed.
pub fn hgetex(ctx: &mut Ctx, args: &[Bytes]) {
    let mut time: TimeOpt = None;
    let mut persist = false;
    let mut i = 2;
    let fields = loop {
        let Some(opt) = args.get(i) else { return ctx.out.err(NUMFIELDS) };
        if is(opt, "fields") {
            match fields_at(ctx, args, i, 1) {
                Some(f) => break f,
                None => return,
            }
        } else if let Some(unit) = time_unit(opt) {
            if persist || time.is_some_and(|(u, _)| u != unit) || i + 1 >= args.len() {
                return ctx.syntax_error();
            }
            let Some(v) = ctx.arg_i64(&args[i + 1]) else { return };
            time = Some((unit, v));
            i += 2;
        } else if is(opt, "persist") {
            if time.is_some() {
                return ctx.syntax_error();
            }
            persist = true;
            i += 1;
        } else {
            return ctx.syntax_error();
        }
    };
    let key = &args[1];
    if wrong_type_at(ctx, key) {
        return;
    }
    let at = match time {
        Some((unit, v)) => match deadline(ctx, v, unit, "hgetex") {
            Some(at) => Some(at),
            None => return,
        },
        None => None,
    };
    let now = ctx.now_ms;
    // (values, fields whose TTL was set, deleted, persisted)
    let res = write_hash(
        ctx,
        key,
        false,
        |h| {
            let mut counts = (0, 0, 0);
            let values: Vec<Option<Bytes>> = fields
                .iter()
                .map(|f| {
                    let v = h.get(f).map(Bytes::copy_from_slice);
                    if v.is_some() {
                        match at {
                            Some(at) if at <= now => {
                                h.remove(f);
                                counts.1 += 1;
                            }
                            Some(at) => {
                                h.set_field_expiry(f, at);
                                counts.0 += 1;
                            }
                            None if persist && h.persist_field(f) => counts.2 += 1,
                            None => {}
                        }
                    }
                    v
                })
                .collect();
            (values, counts)
        },
        |(_, c)| *c != (0, 0, 0),
    );
    match res {
        Write::WrongType => ctx.wrong_type(),
        Write::Missing => {
            ctx.out.array(fields.len());
            for _ in fields {
                ctx.out.null();
            }
        }
        Write::Done { r: (values, (set, deleted, persisted)), emptied } => {
            ctx.out.array(values.len());
            for v in &values {
                match v {
                    Some(b) => ctx.out.bulk(b),
                    None => ctx.out.null(),
                }
            }
            if set > 0 {
                ctx.db().hfe_keys.insert(key.clone());
                ctx.notify(class::HASH, "hexpire", key);
            }
            if persisted > 0 {
                ctx.notify(class::HASH, "hpersist", key);
            }
            if deleted > 0 {
                ctx.notify(class::HASH, "hexpired", key);
                if emptied {
                    ctx.notify(class::GENERIC, "del", key);
                }
            }
        }
    }
}

/// HSETEX key [FNX | FXX] [NX | XX] [EX seconds | PX milliseconds |
/// EXAT unix-time-seconds | PXAT unix-time-milliseconds | KEEPTTL]
/// FIELDS numfields field value [field value ...]: 1 if the fields were set, 0 if a condition
/// failed (nothing is set then). Without KEEPTTL or a time the fields lose their TTLs.
pub fn hsetex(ctx: &mut Ctx, args: &[Bytes]) {
    let (mut nx, mut xx, mut fnx, mut fxx, mut keepttl) = (false, false, false, false, false);
    let mut time: TimeOpt = None;
    let mut i = 2;
    let pairs = loop {
        let Some(opt) = args.get(i) else { return ctx.out.err(NUMFIELDS) };
        if is(opt, "fields") {
            match fields_at(ctx, args, i, 2) {
                Some(f) => break f,
                None => return,
            }
        }
        if let Some(unit) = time_unit(opt) {
            if keepttl || time.is_some_and(|(u, _)| u != unit) || i + 1 >= args.len() {
                return ctx.syntax_error();
            }
            let Some(v) = ctx.arg_i64(&args[i + 1]) else { return };
            time = Some((unit, v));
            i += 2;
            continue;
        }
        let ok = match () {
            _ if is(opt, "nx") => {
                !xx && {
                    nx = true;
                    true
                }
            }
            _ if is(opt, "xx") => {
                !nx && {
                    xx = true;
                    true
                }
            }
            _ if is(opt, "fnx") => {
                !fxx && {
                    fnx = true;
                    true
                }
            }
            _ if is(opt, "fxx") => {
                !fnx && {
                    fxx = true;
                    true
                }
            }
            _ if is(opt, "keepttl") => {
                time.is_none() && {
                    keepttl = true;
                    true
                }
            }
            _ => false,
        };
        if !ok {
            return ctx.syntax_error();
        }
        i += 1;
    };
    let key = &args[1];
    if wrong_type_at(ctx, key) {
        return;
    }
    let at = match time {
        Some((unit, v)) => match deadline(ctx, v, unit, "hsetex") {
            Some(at) => Some(at),
            None => return,
        },
        None => None,
    };
    let now = ctx.now_ms;
    let exists = ctx.db().contains(key, now);
    if (nx && exists) || (xx && !exists) {
        return ctx.out.int(0);
    }
    let lim = limits(ctx);
    let longest = pairs.iter().map(Bytes::len).max().unwrap_or(0);
    // (applied, fields deleted at once)
    let res = write_hash(
        ctx,
        key,
        true,
        |h| {
            let present = |f: &Bytes| h.get(f).is_some();
            if (fnx && pairs.chunks_exact(2).any(|p| present(&p[0])))
                || (fxx && !pairs.chunks_exact(2).all(|p| present(&p[0])))
            {
                return (false, 0);
            }
            h.prepare(pairs.len() / 2, longest, &lim);
            if at.is_some() {
                h.to_table();
            }
            let mut deleted = 0;
            for p in pairs.chunks_exact(2) {
                let old = if keepttl { h.field_expiry(&p[0]) } else { None };
                h.set(&p[0], &p[1], &lim);
                match at.or(old) {
                    Some(at) if at <= now => {
                        h.remove(&p[0]);
                        deleted += 1;
                    }
                    Some(at) => h.set_field_expiry(&p[0], at),
                    None => {}
                }
            }
            (true, deleted)
        },
        |&(applied, _)| applied,
    );
    match res {
        Write::Done { r: (applied, deleted), emptied } => {
            ctx.out.int(applied as i64);
            if applied {
                ctx.notify(class::HASH, "hset", key);
                if at.is_some_and(|at| at > now) || keepttl {
                    ctx.db().hfe_keys.insert(key.clone());
                }
                if at.is_some() {
                    // Valkey reports the TTL even when it has passed, then the expiry.
                    ctx.notify(class::HASH, "hexpire", key);
                }
                if deleted > 0 {
                    ctx.notify(class::HASH, "hexpired", key);
                    if emptied {
                        ctx.notify(class::GENERIC, "del", key);
                    }
                }
            }
        }
        _ => ctx.wrong_type(),
    }
}
