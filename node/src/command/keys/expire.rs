//! Key time-to-live: EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT (with NX/XX/GT/LT), TTL, PTTL,
//! EXPIRETIME, PEXPIRETIME and PERSIST, as Valkey's `expire.c`. All arithmetic is checked:
//! a TTL that would overflow is refused with Valkey's error, never wrapped.

use bytes::Bytes;

use super::{cstr, dispose, err_with_arg, read_key, LazyFree};
use crate::exec::Ctx;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Unit {
    Seconds,
    Millis,
}

/// EXPIRE key seconds [NX | XX | GT | LT]
pub fn expire(ctx: &mut Ctx, args: &[Bytes]) {
    let now = ctx.now_ms;
    set_expire(ctx, args, now, Unit::Seconds);
}

/// PEXPIRE key milliseconds [NX | XX | GT | LT]
pub fn pexpire(ctx: &mut Ctx, args: &[Bytes]) {
    let now = ctx.now_ms;
    set_expire(ctx, args, now, Unit::Millis);
}

/// EXPIREAT key unix-time-seconds [NX | XX | GT | LT]
pub fn expireat(ctx: &mut Ctx, args: &[Bytes]) {
    set_expire(ctx, args, 0, Unit::Seconds);
}

/// PEXPIREAT key unix-time-milliseconds [NX | XX | GT | LT]
pub fn pexpireat(ctx: &mut Ctx, args: &[Bytes]) {
    set_expire(ctx, args, 0, Unit::Millis);
}

/// The conditions of the NX/XX/GT/LT options.
#[derive(Default, Clone, Copy)]
struct Cond {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
}

impl Cond {
    /// Parses the options after the time, replying Valkey's error on a bad one or a bad mix.
    fn parse(ctx: &mut Ctx, opts: &[Bytes]) -> Option<Cond> {
        let mut c = Cond::default();
        for opt in opts {
            let o = cstr(opt);
            if o.eq_ignore_ascii_case(b"nx") {
                c.nx = true;
            } else if o.eq_ignore_ascii_case(b"xx") {
                c.xx = true;
            } else if o.eq_ignore_ascii_case(b"gt") {
                c.gt = true;
            } else if o.eq_ignore_ascii_case(b"lt") {
                c.lt = true;
            } else {
                err_with_arg(ctx.out, "Unsupported option ", o, "");
                return None;
            }
        }
        if c.nx && (c.xx || c.gt || c.lt) {
            ctx.out.err("NX and XX, GT or LT options at the same time are not compatible");
            return None;
        }
        if c.gt && c.lt {
            ctx.out.err("GT and LT options at the same time are not compatible");
            return None;
        }
        Some(c)
    }

    /// Whether the new absolute expiry `when` may replace `current` (`None`: no TTL, which
    /// GT and LT treat as infinite).
    fn allows(self, current: Option<i64>, when: i64) -> bool {
        match current {
            None => !self.xx && !self.gt,
            Some(cur) => !(self.nx || (self.gt && when <= cur) || (self.lt && when >= cur)),
        }
    }
}

/// Valkey's `expireGenericCommand`: `base` is the time the argument counts from (now for the
/// relative forms, 0 for the absolute ones).
fn set_expire(ctx: &mut Ctx, args: &[Bytes], base: i64, unit: Unit) {
    let Some(cond) = Cond::parse(ctx, &args[3..]) else {
        return;
    };
    let Some(n) = ctx.arg_i64(&args[2]) else {
        return;
    };
    let ms = match unit {
        Unit::Seconds => n.checked_mul(1000),
        Unit::Millis => Some(n),
    };
    let Some(when) = ms.and_then(|ms| ms.checked_add(base)) else {
        let msg = format!("invalid expire time in '{}' command", ctx.cmd_name);
        ctx.out.err(&msg);
        return;
    };
    let key = &args[1];
    let current = match ctx.lookup_write(key) {
        Some(e) => e.expire_at(),
        None => {
            ctx.out.int(0);
            return;
        }
    };
    if !cond.allows(current, when) {
        ctx.out.int(0);
        return;
    }
    let now = ctx.now_ms;
    if when <= now {
        // Already in the past: Valkey deletes the key (and propagates a DEL).
        if let Some(entry) = ctx.db().remove(key) {
            dispose(ctx.srv, entry, LazyFree::If("lazyfree-lazy-expire"));
        }
    } else {
        ctx.db().set_expire(key, Some(when));
    }
    ctx.out.int(1);
}

/// TTL key
pub fn ttl(ctx: &mut Ctx, args: &[Bytes]) {
    report(ctx, &args[1], false, false);
}

/// PTTL key
pub fn pttl(ctx: &mut Ctx, args: &[Bytes]) {
    report(ctx, &args[1], true, false);
}

/// EXPIRETIME key
pub fn expiretime(ctx: &mut Ctx, args: &[Bytes]) {
    report(ctx, &args[1], false, true);
}

/// PEXPIRETIME key
pub fn pexpiretime(ctx: &mut Ctx, args: &[Bytes]) {
    report(ctx, &args[1], true, true);
}

/// Valkey's `ttlGenericCommand`: -2 for a missing key, -1 without TTL, else the remaining
/// (or absolute) time; seconds are rounded to the nearest one.
fn report(ctx: &mut Ctx, key: &[u8], ms: bool, absolute: bool) {
    let now = ctx.now_ms;
    let Some(e) = read_key(ctx, key, false) else {
        ctx.out.int(-2);
        return;
    };
    let Some(at) = e.expire_at() else {
        ctx.out.int(-1);
        return;
    };
    let t = if absolute { at } else { at.saturating_sub(now) }.max(0);
    let v = if ms {
        t
    } else {
        // In i128 so that an expiry near i64::MAX rounds instead of overflowing.
        ((i128::from(t) + 500) / 1000) as i64
    };
    ctx.out.int(v);
}

/// PERSIST key
pub fn persist(ctx: &mut Ctx, args: &[Bytes]) {
    let key = &args[1];
    let had_ttl = ctx.lookup_write(key).is_some_and(|e| e.expire_at().is_some());
    if had_ttl {
        ctx.db().set_expire(key, None);
    }
    ctx.out.int(i64::from(had_ttl));
}
