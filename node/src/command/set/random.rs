//! SRANDMEMBER, SPOP and SSCAN: the set commands whose replies are not a function of the
//! contents alone (random picks, cursor positions).

use bytes::Bytes;

use super::{db_and_out, find_set, limits, set_in, write_set, Found};
use crate::command::hash::{distinct_indices, random_count, scan_opts, scan_reply, Write};
use crate::command::keys::parse_cursor;
use crate::exec::notify::class;
use crate::exec::Ctx;
use crate::util::glob_match;

/// SRANDMEMBER key [count]
pub fn srandmember(ctx: &mut Ctx, args: &[Bytes]) {
    if args.len() > 3 {
        return ctx.syntax_error();
    }
    let n = match args.get(2) {
        Some(arg) => match random_count(ctx, arg) {
            Some(n) => Some(n),
            None => return,
        },
        None => None,
    };
    match find_set(ctx, &args[1]) {
        Found::Missing if n.is_some() => return ctx.out.array(0),
        Found::Missing => return ctx.out.null(),
        Found::WrongType => return ctx.wrong_type(),
        Found::Set => {}
    }
    let (db, out) = db_and_out(ctx);
    let Some(s) = set_in(db, &args[1]) else { return };
    let size = s.len();
    let Some(n) = n else {
        return out.bulk(s.at(fastrand::usize(..size)));
    };
    let count = n.unsigned_abs() as usize;
    // A listpack is read in one pass, not once per pick.
    let packed: Option<Vec<&[u8]>> = (s.encoding() == "listpack").then(|| s.iter().collect());
    let at = |i: usize| packed.as_ref().map_or_else(|| s.at(i), |p| p[i]);
    if count == 0 {
        out.array(0);
    } else if n < 0 || count == 1 {
        // With repetitions, in random order.
        out.array(count);
        for _ in 0..count {
            out.bulk(at(fastrand::usize(..size)));
        }
    } else if count >= size {
        out.array(size);
        s.iter().for_each(|m| out.bulk(m));
    } else {
        out.array(count);
        distinct_indices(size, count).into_iter().for_each(|i| out.bulk(at(i)));
    }
}

/// SPOP key [count]
pub fn spop(ctx: &mut Ctx, args: &[Bytes]) {
    match args.len() {
        2 => spop_one(ctx, args),
        3 => spop_count(ctx, args),
        _ => ctx.syntax_error(),
    }
}

fn spop_one(ctx: &mut Ctx, args: &[Bytes]) {
    let key = &args[1];
    match write_set(ctx, key, None, |s| s.remove_at(fastrand::usize(..s.len())), |_| true) {
        Write::WrongType => ctx.wrong_type(),
        Write::Missing => ctx.out.null(),
        Write::Done { r, emptied } => {
            ctx.notify(class::SET, "spop", key);
            ctx.out.bulk(&r);
            if emptied {
                ctx.notify(class::GENERIC, "del", key);
            }
        }
    }
}

/// How many times bigger than the count the remaining part must be for SPOP to pick the
/// popped members one by one rather than rebuild a set of the survivors
/// (`SPOP_MOVE_STRATEGY_MUL`).
const SPOP_MOVE_STRATEGY_MUL: usize = 5;

fn spop_count(ctx: &mut Ctx, args: &[Bytes]) {
    let key = &args[1];
    let count = match crate::util::parse_i64(&args[2]) {
        Some(n) if n >= 0 => n as usize,
        _ => return ctx.out.err("value is out of range, must be positive"),
    };
    let lim = limits(ctx);
    let popped = write_set(
        ctx,
        key,
        None,
        |s| {
            let size = s.len();
            if count == 0 {
                return Vec::new();
            }
            if count >= size {
                let all = s.iter().map(<[u8]>::to_vec).collect();
                *s = s.empty_compact();
                return all;
            }
            let remaining = size - count;
            if remaining * SPOP_MOVE_STRATEGY_MUL > count {
                (0..count).map(|_| s.remove_at(fastrand::usize(..s.len()))).collect()
            } else {
                // Keep a few survivors in a new set, as Valkey does, and return the rest.
                let mut keep = s.empty_compact();
                for _ in 0..remaining {
                    let m = s.remove_at(fastrand::usize(..s.len()));
                    keep.add(&m, &lim);
                }
                let out = s.iter().map(<[u8]>::to_vec).collect();
                *s = keep;
                out
            }
        },
        |popped| !popped.is_empty(),
    );
    match popped {
        Write::WrongType => ctx.wrong_type(),
        Write::Missing => ctx.out.set(0),
        Write::Done { r, emptied } => {
            if !r.is_empty() {
                ctx.notify(class::SET, "spop", key);
            }
            ctx.out.set(r.len());
            r.iter().for_each(|m| ctx.out.bulk(m));
            if emptied {
                ctx.notify(class::GENERIC, "del", key);
            }
        }
    }
}

/// SSCAN key cursor [MATCH pattern] [COUNT count]
pub fn sscan(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(cursor) = parse_cursor(&args[2]) else {
        return ctx.out.err("invalid cursor");
    };
    match find_set(ctx, &args[1]) {
        Found::Missing => return scan_reply(ctx.out, 0, &[]),
        Found::WrongType => return ctx.wrong_type(),
        Found::Set => {}
    }
    let Some(opts) = scan_opts(ctx, args, false) else { return };
    let (db, out) = db_and_out(ctx);
    let Some(s) = set_in(db, &args[1]) else { return };
    let mut items: Vec<&[u8]> = Vec::new();
    let next = s.scan(cursor, opts.count, |m| {
        if opts.pattern.is_none_or(|p| glob_match(p, m, false)) {
            items.push(m);
        }
    });
    scan_reply(out, next, &items);
}
