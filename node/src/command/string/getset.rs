//! GET, SET and their variants (SETNX, SETEX, PSETEX, GETSET, GETDEL, GETEX), MGET, MSET,
//! MSETNX. SET and GETEX share Valkey's option parser, including its quirks: repeated options
//! are accepted, conflicting ones are a syntax error, and an option word ends at a NUL byte.

use bytes::Bytes;

use super::{dispose, read_and_out, reply_str};
use crate::exec::notify::class;
use crate::exec::{Ctx, WRONGTYPE};
use crate::keyspace::Value;
use crate::protocol::Reply;

const NX: u32 = 1 << 0;
const XX: u32 = 1 << 1;
const GET: u32 = 1 << 2;
const KEEPTTL: u32 = 1 << 3;
const PERSIST: u32 = 1 << 4;
const EX: u32 = 1 << 5;
const PX: u32 = 1 << 6;
const EXAT: u32 = 1 << 7;
const PXAT: u32 = 1 << 8;

/// Parsed SET/GETEX options.
struct Options<'a> {
    flags: u32,
    expire: Option<&'a Bytes>,
}

/// An option word as C's `strcasecmp` sees it: up to the first NUL.
fn word(arg: &[u8]) -> &[u8] {
    match arg.iter().position(|&b| b == 0) {
        Some(i) => &arg[..i],
        None => arg,
    }
}

/// Valkey's `parseExtendedStringArgumentsOrReply`. `None` means a syntax error.
fn parse_options(args: &[Bytes], from: usize, set: bool) -> Option<Options<'_>> {
    let mut o = Options { flags: 0, expire: None };
    let mut j = from;
    while j < args.len() {
        let opt = word(&args[j]);
        let next = args.get(j + 1);
        let is = |name: &[u8]| opt.eq_ignore_ascii_case(name);
        let f = o.flags;
        let timed = |excluded: u32, flag: u32| (f & excluded == 0 && next.is_some()).then_some(flag);
        let expiry = if is(b"ex") {
            timed(KEEPTTL | PERSIST | EXAT | PX | PXAT, EX)
        } else if is(b"px") {
            timed(KEEPTTL | PERSIST | EX | EXAT | PXAT, PX)
        } else if is(b"exat") {
            timed(KEEPTTL | PERSIST | EX | PX | PXAT, EXAT)
        } else if is(b"pxat") {
            timed(KEEPTTL | PERSIST | EX | EXAT | PX, PXAT)
        } else {
            None
        };
        if let Some(flag) = expiry {
            o.flags |= flag;
            o.expire = next;
            j += 1;
        } else if set && is(b"nx") && f & XX == 0 {
            o.flags |= NX;
        } else if set && is(b"xx") && f & NX == 0 {
            o.flags |= XX;
        } else if set && is(b"get") {
            o.flags |= GET;
        } else if set && is(b"keepttl") && f & (PERSIST | EX | EXAT | PX | PXAT) == 0 {
            o.flags |= KEEPTTL;
        } else if !set && is(b"persist") && f & (EX | EXAT | PX | PXAT | KEEPTTL) == 0 {
            o.flags |= PERSIST;
        } else {
            return None;
        }
        j += 1;
    }
    Some(o)
}

/// `getExpireMillisecondsOrReply`: the absolute expiry in ms, or an error reply. Relative
/// times are added to the command's clock; the sum wrapping negative is an error, as in C.
fn expire_at(out: &mut Reply, cmd: &str, now: i64, flags: u32, arg: &[u8]) -> Option<i64> {
    let Some(v) = crate::util::parse_i64(arg) else {
        out.err("value is not an integer or out of range");
        return None;
    };
    let seconds = flags & (EX | EXAT) != 0;
    let invalid = |out: &mut Reply| {
        out.err(&format!("invalid expire time in '{cmd}' command"));
        None
    };
    if v <= 0 || (seconds && v > i64::MAX / 1000) {
        return invalid(out);
    }
    let mut ms = if seconds { v * 1000 } else { v };
    if flags & (EX | PX) != 0 {
        ms = ms.wrapping_add(now);
    }
    if ms <= 0 {
        return invalid(out);
    }
    Some(ms)
}

/// `getGenericCommand`: replies the value or null. False (after `-WRONGTYPE`) if the key holds
/// another type.
fn get_generic(ctx: &mut Ctx, key: &[u8]) -> bool {
    let (e, out) = read_and_out(ctx, key);
    match e.as_ref().map(|e| e.value().as_string()) {
        None => out.null(),
        Some(Some(s)) => reply_str(out, s),
        Some(None) => {
            out.error(WRONGTYPE);
            return false;
        }
    }
    true
}

/// Valkey's `setGenericCommand` for SET, SETNX, SETEX and PSETEX.
fn set_generic(
    ctx: &mut Ctx,
    o: &Options,
    key: &[u8],
    val: &[u8],
    on_ok: fn(&mut Reply),
    on_abort: fn(&mut Reply),
) {
    let at = match o.expire {
        Some(arg) => match expire_at(ctx.out, ctx.cmd_name, ctx.now_ms, o.flags, arg) {
            Some(ms) => Some(ms),
            None => return,
        },
        None => None,
    };
    let get = o.flags & GET != 0;
    if get && !get_generic(ctx, key) {
        return;
    }
    let found = ctx.lookup_write(key).is_some();
    if (o.flags & NX != 0 && found) || (o.flags & XX != 0 && !found) {
        if !get {
            on_abort(ctx.out);
        }
        return;
    }
    if at.is_some_and(|ms| ms <= ctx.now_ms) {
        // An absolute time already past: nothing to store, and the old value is expired now.
        if found {
            let old = ctx.db().remove(key);
            ctx.srv.stats.expired_keys += 1;
            dispose(ctx, old);
            ctx.notify(class::GENERIC, "del", key);
        }
        if !get {
            ctx.out.ok();
        }
        return;
    }
    let value = Value::from_bytes(val);
    let clock = ctx.clock();
    let db = ctx.db();
    let old = if at.is_none() && o.flags & KEEPTTL != 0 {
        db.set_value_keep_ttl(key, value, clock)
    } else {
        db.set(key, value, at, clock)
    };
    dispose(ctx, old);
    ctx.notify(class::STRING, "set", key);
    if at.is_some() {
        ctx.notify(class::GENERIC, "expire", key);
    }
    if !get {
        on_ok(ctx.out);
    }
}

fn reply_null(out: &mut Reply) {
    out.null();
}

fn reply_ok(out: &mut Reply) {
    out.ok();
}

pub fn get(ctx: &mut Ctx, args: &[Bytes]) {
    get_generic(ctx, &args[1]);
}

pub fn set(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(o) = parse_options(args, 3, true) else {
        return ctx.syntax_error();
    };
    set_generic(ctx, &o, &args[1], &args[2], reply_ok, reply_null);
}

pub fn setnx(ctx: &mut Ctx, args: &[Bytes]) {
    let o = Options { flags: NX, expire: None };
    set_generic(ctx, &o, &args[1], &args[2], |out| out.int(1), |out| out.int(0));
}

pub fn setex(ctx: &mut Ctx, args: &[Bytes]) {
    let o = Options { flags: EX, expire: Some(&args[2]) };
    set_generic(ctx, &o, &args[1], &args[3], reply_ok, reply_null);
}

pub fn psetex(ctx: &mut Ctx, args: &[Bytes]) {
    let o = Options { flags: PX, expire: Some(&args[2]) };
    set_generic(ctx, &o, &args[1], &args[3], reply_ok, reply_null);
}

pub fn getset(ctx: &mut Ctx, args: &[Bytes]) {
    if !get_generic(ctx, &args[1]) {
        return;
    }
    let clock = ctx.clock();
    let old = ctx.db().set(&args[1], Value::from_bytes(&args[2]), None, clock);
    dispose(ctx, old);
    ctx.notify(class::STRING, "set", &args[1]);
}

pub fn getdel(ctx: &mut Ctx, args: &[Bytes]) {
    let (e, out) = read_and_out(ctx, &args[1]);
    match e.as_ref().map(|e| e.value().as_string()) {
        None => return out.null(),
        Some(Some(s)) => reply_str(out, s),
        Some(None) => return out.error(WRONGTYPE),
    }
    let old = ctx.db().remove(&args[1]);
    dispose(ctx, old);
    ctx.notify(class::GENERIC, "del", &args[1]);
}

pub fn getex(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(o) = parse_options(args, 2, false) else {
        return ctx.syntax_error();
    };
    let key = &args[1];
    let (cmd, now) = (ctx.cmd_name, ctx.now_ms);
    let (e, out) = read_and_out(ctx, key);
    let Some(e) = e else {
        return out.null();
    };
    let had_ttl = e.expire_at().is_some();
    let Some(s) = e.value().as_string() else {
        return out.error(WRONGTYPE);
    };
    // The key and its type are checked before the expire time, as in Valkey 8.0.
    let at = match o.expire {
        Some(arg) => match expire_at(out, cmd, now, o.flags, arg) {
            Some(ms) => Some(ms),
            None => return,
        },
        None => None,
    };
    reply_str(out, s);
    match at {
        Some(ms) if o.flags & (EXAT | PXAT) != 0 && ms <= now => {
            let old = ctx.db().remove(key);
            ctx.srv.stats.expired_keys += 1;
            dispose(ctx, old);
            ctx.notify(class::GENERIC, "del", key);
        }
        Some(ms) => {
            ctx.db().set_expire(key, Some(ms));
            ctx.notify(class::GENERIC, "expire", key);
        }
        None if o.flags & PERSIST != 0 && had_ttl => {
            ctx.db().set_expire(key, None);
            ctx.notify(class::GENERIC, "persist", key);
        }
        None => {}
    }
}

pub fn mget(ctx: &mut Ctx, args: &[Bytes]) {
    ctx.out.array(args.len() - 1);
    for key in &args[1..] {
        let (e, out) = read_and_out(ctx, key);
        match e.as_ref().and_then(|e| e.value().as_string()) {
            Some(s) => reply_str(out, s),
            None => out.null(),
        }
    }
}

/// Sets every pair, dropping any TTL (MSET, and MSETNX once it knows no key exists).
fn set_pairs(ctx: &mut Ctx, args: &[Bytes]) {
    let clock = ctx.clock();
    for pair in args[1..].chunks_exact(2) {
        let old = ctx.db().set(&pair[0], Value::from_bytes(&pair[1]), None, clock);
        dispose(ctx, old);
        ctx.notify(class::STRING, "set", &pair[0]);
    }
}

pub fn mset(ctx: &mut Ctx, args: &[Bytes]) {
    if args.len().is_multiple_of(2) {
        return ctx.wrong_arity();
    }
    set_pairs(ctx, args);
    ctx.out.ok();
}

pub fn msetnx(ctx: &mut Ctx, args: &[Bytes]) {
    if args.len().is_multiple_of(2) {
        return ctx.wrong_arity();
    }
    for pair in args[1..].chunks_exact(2) {
        if ctx.lookup_write(&pair[0]).is_some() {
            return ctx.out.int(0);
        }
    }
    set_pairs(ctx, args);
    ctx.out.int(1);
}

/// DELIFEQ key value (Valkey 9): deletes the key when it holds exactly `value`.
pub fn delifeq(ctx: &mut Ctx, args: &[Bytes]) {
    let key = &args[1];
    let equal = match ctx.lookup_write(key) {
        None => false,
        Some(e) => match e.value().as_string() {
            Some(crate::keyspace::value::StrRef::Bytes(b)) => b == &args[2][..],
            Some(crate::keyspace::value::StrRef::Int(n)) => {
                itoa::Buffer::new().format(n).as_bytes() == &args[2][..]
            }
            None => return ctx.wrong_type(),
        },
    };
    if !equal {
        return ctx.out.int(0);
    }
    let old = ctx.db().remove(key);
    dispose(ctx, old);
    ctx.notify(class::GENERIC, "del", key);
    ctx.out.int(1);
}

/// MSETEX numkeys key value [key value ...] [NX|XX] [EX|PX|EXAT|PXAT t|KEEPTTL] (Valkey 9):
/// MSET with SET's conditions (all keys or none) and one expiry for every key.
pub fn msetex(ctx: &mut Ctx, args: &[Bytes]) {
    let n = match crate::util::parse_i64(&args[1]) {
        Some(n) if n > 0 && n <= (i64::MAX - 2) / 2 => n as usize,
        _ => return ctx.out.err("invalid numkeys value or out of range"),
    };
    let end = 2 + 2 * n;
    if end > args.len() {
        return ctx.syntax_error();
    }
    let o = match parse_options(args, end, true) {
        Some(o) if o.flags & GET == 0 => o,
        _ => return ctx.syntax_error(),
    };
    let now = ctx.now_ms;
    let at = match o.expire {
        Some(arg) => match expire_at(ctx.out, "msetex", now, o.flags, arg) {
            Some(ms) => Some(ms),
            None => return,
        },
        None => None,
    };
    let pairs = &args[2..end];
    if o.flags & (NX | XX) != 0 {
        let want = o.flags & XX != 0;
        if pairs.chunks_exact(2).any(|p| ctx.lookup_write(&p[0]).is_some() != want) {
            return ctx.out.int(0);
        }
    }
    let clock = ctx.clock();
    for pair in pairs.chunks_exact(2) {
        let key = &pair[0];
        let keep =
            if o.flags & KEEPTTL != 0 { ctx.lookup_write(key).and_then(|e| e.expire_at()) } else { None };
        let old = ctx.db().set(key, Value::from_bytes(&pair[1]), keep, clock);
        dispose(ctx, old);
        ctx.notify(class::STRING, "set", key);
        match at {
            // An absolute time already past: set, then gone at once, as Valkey's SET.
            Some(ms) if ms <= now => {
                let old = ctx.db().remove(key);
                ctx.srv.stats.expired_keys += 1;
                dispose(ctx, old);
                ctx.notify(class::GENERIC, "del", key);
            }
            Some(ms) => {
                ctx.db().set_expire(key, Some(ms));
                ctx.notify(class::GENERIC, "expire", key);
            }
            None => {}
        }
    }
    ctx.out.int(1);
}
