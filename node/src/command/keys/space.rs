//! Keyspace-wide reads and deletes: DEL, UNLINK, EXISTS, TYPE, TOUCH, RANDOMKEY, KEYS, SCAN.

use bytes::Bytes;

use super::{cstr, dispose, err_with_arg, read_key, LazyFree};
use crate::exec::notify::class;
use crate::exec::Ctx;
use crate::util::{glob_match, parse_i64};

/// DEL key [key ...]
pub fn del(ctx: &mut Ctx, args: &[Bytes]) {
    delete(ctx, &args[1..], LazyFree::If("lazyfree-lazy-user-del"));
}

/// UNLINK key [key ...]: DEL that frees big values off the executor.
pub fn unlink(ctx: &mut Ctx, args: &[Bytes]) {
    delete(ctx, &args[1..], LazyFree::Always);
}

/// Removes each key, counting only those that were live: a key found expired is removed as
/// an expiry (Valkey's `expireIfNeeded` before the delete), not counted as deleted.
fn delete(ctx: &mut Ctx, keys: &[Bytes], lazy: LazyFree) {
    let now = ctx.now_ms;
    let i = ctx.clients[ctx.me].st.db;
    let mut deleted = 0;
    for key in keys {
        let db = &mut ctx.srv.dbs[i];
        let Some(entry) = db.remove(key) else {
            continue;
        };
        // A replica applying its primary's DEL: the key was live there, whatever our clock.
        let expired = !db.keeps_expired() && entry.expire_at().is_some_and(|at| now > at);
        if expired {
            db.note_expired(key);
        } else {
            deleted += 1;
        }
        dispose(ctx.srv, entry, lazy);
        if !expired {
            ctx.notify(class::GENERIC, "del", key);
        }
    }
    ctx.out.int(deleted);
}

/// EXISTS key [key ...]: a key named twice counts twice.
pub fn exists(ctx: &mut Ctx, args: &[Bytes]) {
    let mut n = 0;
    for key in &args[1..] {
        if read_key(ctx, key, false).is_some() {
            n += 1;
        }
    }
    ctx.out.int(n);
}

/// TYPE key
pub fn type_(ctx: &mut Ctx, args: &[Bytes]) {
    let name = read_key(ctx, &args[1], false).map_or("none", |e| e.value().type_name());
    ctx.out.simple(name);
}

/// TOUCH key [key ...]: updates access times, even for a NO-TOUCH client (that is the point).
pub fn touch(ctx: &mut Ctx, args: &[Bytes]) {
    let mut n = 0;
    for key in &args[1..] {
        if read_key(ctx, key, true).is_some() {
            n += 1;
        }
    }
    ctx.out.int(n);
}

/// RANDOMKEY
pub fn randomkey(ctx: &mut Ctx, _args: &[Bytes]) {
    let now = ctx.now_ms;
    match ctx.db().random_key(now) {
        Some(k) => ctx.out.bulk(&k),
        None => ctx.out.null(),
    }
}

/// KEYS pattern
pub fn keys(ctx: &mut Ctx, args: &[Bytes]) {
    let pattern = &args[1][..];
    let all = pattern == b"*";
    let now = ctx.now_ms;
    let i = ctx.clients[ctx.me].st.db;
    let matched: Vec<&[u8]> =
        ctx.srv.dbs[i].iter(now).map(|(k, _)| k).filter(|k| all || glob_match(pattern, k, false)).collect();
    ctx.out.array(matched.len());
    for k in matched {
        ctx.out.bulk(k);
    }
}

/// Type names SCAN TYPE accepts (`getObjectTypeByName`), matched case-insensitively.
const TYPE_NAMES: [&str; 6] = ["string", "list", "set", "zset", "hash", "stream"];

/// SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]
pub fn scan(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(cursor) = parse_cursor(&args[1]) else {
        ctx.out.err("invalid cursor");
        return;
    };
    let mut count: i64 = 10;
    let mut pattern: Option<&[u8]> = None;
    let mut type_name: Option<&'static str> = None;
    let mut i = 2;
    while i < args.len() {
        let opt = cstr(&args[i]);
        let has_value = i + 1 < args.len();
        if opt.eq_ignore_ascii_case(b"count") && has_value {
            let Some(n) = ctx.arg_i64(&args[i + 1]) else {
                return;
            };
            if n < 1 {
                ctx.syntax_error();
                return;
            }
            count = n;
        } else if opt.eq_ignore_ascii_case(b"match") && has_value {
            let p = &args[i + 1][..];
            pattern = (p != b"*").then_some(p);
        } else if opt.eq_ignore_ascii_case(b"type") && has_value {
            let name = cstr(&args[i + 1]);
            match TYPE_NAMES.iter().find(|t| t.as_bytes().eq_ignore_ascii_case(name)) {
                Some(t) => type_name = Some(t),
                None => {
                    err_with_arg(ctx.out, "unknown type name '", name, "'");
                    return;
                }
            }
        } else if opt.eq_ignore_ascii_case(b"novalues") {
            ctx.out.err("NOVALUES option can only be used in HSCAN");
            return;
        } else if opt.eq_ignore_ascii_case(b"noscores") {
            ctx.out.err("NOSCORES option can only be used in ZSCAN");
            return;
        } else {
            ctx.syntax_error();
            return;
        }
        i += 2;
    }

    let now = ctx.now_ms;
    let db = ctx.clients[ctx.me].st.db;
    let count = usize::try_from(count).unwrap_or(usize::MAX);
    let mut found: Vec<Bytes> = Vec::with_capacity(count.min(64));
    let next = ctx.srv.dbs[db].scan(cursor, count, now, |k, e| {
        if type_name.is_some_and(|t| e.value().type_name() != t) {
            return;
        }
        if pattern.is_some_and(|p| !glob_match(p, k, false)) {
            return;
        }
        found.push(Bytes::copy_from_slice(k));
    });
    ctx.out.array(2);
    let mut buf = itoa::Buffer::new();
    ctx.out.bulk(buf.format(next).as_bytes());
    ctx.out.array(found.len());
    for k in &found {
        ctx.out.bulk(k);
    }
}

/// A SCAN cursor as Valkey's `string2ull` reads it: a canonical non-negative integer, or
/// whatever `strtoull` accepts in full (leading spaces, a sign, leading zeros; a `-` wraps).
pub(crate) fn parse_cursor(arg: &[u8]) -> Option<u64> {
    let s = cstr(arg);
    if let Some(n) = parse_i64(s) {
        return u64::try_from(n).ok();
    }
    let start = s
        .iter()
        .position(|&b| !matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r'))
        .unwrap_or(s.len());
    let body = &s[start..];
    let (neg, digits) = match body.first() {
        Some(b'-') => (true, &body[1..]),
        Some(b'+') => (false, &body[1..]),
        _ => (false, body),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut v: u64 = 0;
    for &d in digits {
        v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    Some(if neg { v.wrapping_neg() } else { v })
}
