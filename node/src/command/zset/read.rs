//! Reads of single members and counts: ZSCORE, ZMSCORE, ZCARD, ZRANK, ZREVRANK, ZCOUNT,
//! ZLEXCOUNT, ZRANDMEMBER and ZSCAN.

use bytes::Bytes;

use super::{is, parse, read, reply_members};
use crate::exec::Ctx;
use crate::protocol::reply::format_double;
use crate::util::{glob_match, parse_i64};

/// ZSCORE key member
pub fn zscore(ctx: &mut Ctx, args: &[Bytes]) {
    read(ctx, &args[1], |z, out| match z.and_then(|z| z.score(&args[2])) {
        Some(s) => out.double(s),
        None => out.null(),
    });
}

/// ZMSCORE key member [member ...]
pub fn zmscore(ctx: &mut Ctx, args: &[Bytes]) {
    read(ctx, &args[1], |z, out| {
        out.array(args.len() - 2);
        for m in &args[2..] {
            match z.and_then(|z| z.score(m)) {
                Some(s) => out.double(s),
                None => out.null(),
            }
        }
    });
}

/// ZCARD key
pub fn zcard(ctx: &mut Ctx, args: &[Bytes]) {
    read(ctx, &args[1], |z, out| out.int(z.map_or(0, |z| z.len()) as i64));
}

/// ZRANK key member [WITHSCORE]
pub fn zrank(ctx: &mut Ctx, args: &[Bytes]) {
    rank_generic(ctx, args, false);
}

/// ZREVRANK key member [WITHSCORE]
pub fn zrevrank(ctx: &mut Ctx, args: &[Bytes]) {
    rank_generic(ctx, args, true);
}

fn rank_generic(ctx: &mut Ctx, args: &[Bytes], rev: bool) {
    if args.len() > 4 {
        ctx.wrong_arity();
        return;
    }
    let withscore = match args.get(3) {
        Some(a) if is(a, "withscore") => true,
        Some(_) => {
            ctx.syntax_error();
            return;
        }
        None => false,
    };
    read(ctx, &args[1], |z, out| match z.and_then(|z| z.rank(&args[2]).map(|r| (r, z.len()))) {
        Some(((rank, score), len)) => {
            let rank = if rev { len - 1 - rank } else { rank };
            if withscore {
                out.array(2);
                out.int(rank as i64);
                out.double(score);
            } else {
                out.int(rank as i64);
            }
        }
        None if withscore => out.null_array(),
        None => out.null(),
    });
}

/// ZCOUNT key min max
pub fn zcount(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(r) = parse::score_range(&args[2], &args[3]) else {
        ctx.out.err("min or max is not a float");
        return;
    };
    read(ctx, &args[1], |z, out| out.int(z.map_or(0, |z| z.count_in_score(&r)) as i64));
}

/// ZLEXCOUNT key min max
pub fn zlexcount(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(r) = parse::lex_range(&args[2], &args[3]) else {
        ctx.out.err("min or max not valid string range item");
        return;
    };
    read(ctx, &args[1], |z, out| out.int(z.map_or(0, |z| z.count_in_lex(&r)) as i64));
}

/// ZRANDMEMBER key [count [WITHSCORES]]
pub fn zrandmember(ctx: &mut Ctx, args: &[Bytes]) {
    if args.len() < 3 {
        read(ctx, &args[1], |z, out| match z.filter(|z| !z.is_empty()) {
            Some(z) => out.bulk(z.get(z.at(fastrand::usize(..z.len()))).0),
            None => out.null(),
        });
        return;
    }
    let Some(l) = ctx.arg_i64(&args[2]) else { return };
    if l == i64::MIN {
        ctx.out.err("value is out of range, value must between -9223372036854775807 and 9223372036854775807");
        return;
    }
    let withscores = match args.get(3) {
        _ if args.len() > 4 => {
            ctx.syntax_error();
            return;
        }
        Some(a) if !is(a, "withscores") => {
            ctx.syntax_error();
            return;
        }
        Some(_) => {
            if !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&l) {
                ctx.out.err("value is out of range");
                return;
            }
            true
        }
        None => false,
    };
    read(ctx, &args[1], |z, out| {
        let Some(z) = z.filter(|z| !z.is_empty() && l != 0) else {
            out.array(0);
            return;
        };
        let size = z.len();
        let pick = |i: usize| z.get(z.at(i));
        if l < 0 {
            // Repetitions allowed: `count` independent draws, streamed without preallocation.
            let count = l.unsigned_abs() as usize;
            out.array(if withscores && !out.resp3 { count * 2 } else { count });
            for _ in 0..count {
                let (m, s) = pick(fastrand::usize(..size));
                if withscores && out.resp3 {
                    out.array(2);
                }
                out.bulk(m);
                if withscores {
                    out.double(s);
                }
            }
            return;
        }
        let count = l as usize;
        let items: Vec<(&[u8], f64)> = if count >= size {
            // The whole set, walked from the tail as Valkey's `zuiNext` does.
            z.iter_rev_from(z.at(size - 1)).collect()
        } else if count * 3 > size {
            // Most of the set: drop random members from a full copy.
            let mut all: Vec<usize> = (0..size).collect();
            fastrand::shuffle(&mut all);
            all.truncate(count);
            all.into_iter().map(pick).collect()
        } else {
            let mut seen = std::collections::HashSet::with_capacity(count);
            let mut picked = Vec::with_capacity(count);
            while picked.len() < count {
                let i = fastrand::usize(..size);
                if seen.insert(i) {
                    picked.push(pick(i));
                }
            }
            picked
        };
        reply_members(out, &items, withscores);
    });
}

/// ZSCAN key cursor [MATCH pattern] [COUNT count] [NOSCORES]
pub fn zscan(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(cursor) = parse_cursor(&args[2]) else {
        ctx.out.err("invalid cursor");
        return;
    };
    // Options are judged only once the key is known to hold a set, as Valkey's
    // `scanGenericCommand` runs after the lookup; parse now, reply later.
    let opts = scan_options(&args[3..]);
    read(ctx, &args[1], |z, out| {
        let Some(z) = z else {
            out.array(2);
            out.bulk(b"0");
            out.array(0);
            return;
        };
        let (count, pattern, noscores) = match opts {
            Ok(o) => o,
            Err(msg) => return out.err(msg),
        };
        // A listpack-sized set comes back whole with cursor 0, as in Valkey; a big one in
        // rank order, the cursor being the next rank.
        let (from, n) = if z.encoding() == "listpack" {
            (0, z.len())
        } else {
            (usize::try_from(cursor).unwrap_or(usize::MAX), count)
        };
        let items: Vec<(&[u8], f64)> =
            if from < z.len() { z.iter_from(z.at(from)).take(n).collect() } else { Vec::new() };
        let next = from.saturating_add(items.len());
        let next = if next >= z.len() || items.is_empty() { 0 } else { next };
        let kept: Vec<_> =
            items.into_iter().filter(|(m, _)| pattern.is_none_or(|p| glob_match(p, m, false))).collect();
        out.array(2);
        out.bulk(itoa::Buffer::new().format(next).as_bytes());
        out.array(if noscores { kept.len() } else { kept.len() * 2 });
        for (m, s) in kept {
            out.bulk(m);
            if !noscores {
                out.bulk(format_double(s).as_bytes());
            }
        }
    });
}

/// ZSCAN's options: (COUNT, MATCH pattern unless `*`, NOSCORES), or the error to reply.
fn scan_options(args: &[Bytes]) -> Result<(usize, Option<&[u8]>, bool), &'static str> {
    let (mut count, mut pattern, mut noscores) = (10usize, None, false);
    let mut i = 0;
    while i < args.len() {
        let more = i + 1 < args.len();
        if is(&args[i], "count") && more {
            let n = parse_i64(&args[i + 1]).ok_or("value is not an integer or out of range")?;
            if n < 1 {
                return Err("syntax error");
            }
            count = usize::try_from(n).unwrap_or(usize::MAX);
            i += 2;
        } else if is(&args[i], "match") && more {
            let p = &args[i + 1][..];
            pattern = (p != b"*").then_some(p);
            i += 2;
        } else if is(&args[i], "novalues") {
            return Err("NOVALUES option can only be used in HSCAN");
        } else if is(&args[i], "noscores") {
            noscores = true;
            i += 1;
        } else {
            return Err("syntax error");
        }
    }
    Ok((count, pattern, noscores))
}

/// A cursor as `strtoull` reads it in full: decimal digits (a canonical integer or not).
fn parse_cursor(arg: &[u8]) -> Option<u64> {
    if let Some(n) = parse_i64(arg) {
        return u64::try_from(n).ok();
    }
    std::str::from_utf8(arg).ok()?.parse().ok()
}
