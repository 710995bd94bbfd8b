//! LLEN, LRANGE, LINDEX and LPOS: reads, counted as keyspace hits and misses.

use bytes::Bytes;

use super::{list_ref, positive_long, range_long, range_reply, read_list, Found};
use crate::exec::{Ctx, WRONGTYPE};

/// LLEN key
pub fn llen(ctx: &mut Ctx, args: &[Bytes]) {
    match read_list(ctx, &args[1]) {
        (Found::List(e), out) => out.int(list_ref(&e).map_or(0, |l| l.len() as i64)),
        (Found::WrongType, out) => out.error(WRONGTYPE),
        (Found::Missing, out) => out.int(0),
    }
}

/// LRANGE key start stop (the indexes are parsed before the key is looked up).
pub fn lrange(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(start) = ctx.arg_i64(&args[2]) else { return };
    let Some(end) = ctx.arg_i64(&args[3]) else { return };
    match read_list(ctx, &args[1]) {
        (Found::List(e), out) => {
            if let Some(l) = list_ref(&e) {
                range_reply(out, l, start, end, false);
            }
        }
        (Found::WrongType, out) => out.error(WRONGTYPE),
        (Found::Missing, out) => out.array(0),
    }
}

/// LINDEX key index (the key is looked up before the index is parsed).
pub fn lindex(ctx: &mut Ctx, args: &[Bytes]) {
    let index = crate::util::parse_i64(&args[2]);
    match read_list(ctx, &args[1]) {
        (Found::List(e), out) => {
            let Some(index) = index else {
                return out.err("value is not an integer or out of range");
            };
            let Some(l) = list_ref(&e) else { return };
            let i = if index < 0 { index.saturating_add(l.len() as i64) } else { index };
            match usize::try_from(i).ok().and_then(|i| l.get(i)) {
                Some(v) => out.bulk(v),
                None => out.null(),
            }
        }
        (Found::WrongType, out) => out.error(WRONGTYPE),
        (Found::Missing, out) => out.null(),
    }
}

const RANK_ZERO: &str =
    "RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use \
                         negative to start from the end of the list";

/// LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len]
pub fn lpos(ctx: &mut Ctx, args: &[Bytes]) {
    let (mut rank, mut count, mut maxlen) = (1i64, None::<i64>, 0i64);
    let mut j = 3;
    while j < args.len() {
        let more = j + 1 < args.len();
        let opt = &args[j];
        if opt.eq_ignore_ascii_case(b"rank") && more {
            j += 1;
            let Some(r) = range_long(ctx, &args[j], -i64::MAX, i64::MAX, None) else { return };
            if r == 0 {
                return ctx.out.err(RANK_ZERO);
            }
            rank = r;
        } else if opt.eq_ignore_ascii_case(b"count") && more {
            j += 1;
            let Some(c) = positive_long(ctx, &args[j], Some("COUNT can't be negative")) else { return };
            count = Some(c);
        } else if opt.eq_ignore_ascii_case(b"maxlen") && more {
            j += 1;
            let Some(m) = positive_long(ctx, &args[j], Some("MAXLEN can't be negative")) else { return };
            maxlen = m;
        } else {
            return ctx.syntax_error();
        }
        j += 1;
    }
    let from_tail = rank < 0;
    let rank = rank.unsigned_abs();
    let element = &args[2];
    let (found, out) = read_list(ctx, &args[1]);
    let e = match found {
        Found::List(e) => e,
        Found::WrongType => return out.error(WRONGTYPE),
        Found::Missing if count.is_some() => return out.array(0),
        Found::Missing => return out.null(),
    };
    let Some(l) = list_ref(&e) else { return };
    let len = l.len();
    let limit = if maxlen == 0 { usize::MAX } else { maxlen as usize };
    let mut hits: Vec<i64> = Vec::new();
    let mut matches = 0u64;
    let want = count.map(|c| if c == 0 { u64::MAX } else { c as u64 }).unwrap_or(1);
    let mut scan = |i: usize, v: &[u8]| -> bool {
        if v == &element[..] {
            matches += 1;
            if matches >= rank {
                hits.push(if from_tail { (len - i - 1) as i64 } else { i as i64 });
                if hits.len() as u64 >= want {
                    return false;
                }
            }
        }
        true
    };
    if from_tail {
        for (i, v) in l.iter().rev().take(limit).enumerate() {
            if !scan(i, v) {
                break;
            }
        }
    } else {
        for (i, v) in l.iter().take(limit).enumerate() {
            if !scan(i, v) {
                break;
            }
        }
    }
    match count {
        Some(_) => {
            out.array(hits.len());
            for h in hits {
                out.int(h);
            }
        }
        None => match hits.first() {
            Some(&h) => out.int(h),
            None => out.null(),
        },
    }
}
