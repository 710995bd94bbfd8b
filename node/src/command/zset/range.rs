//! Range queries: ZRANGE (BYSCORE, BYLEX, REV, LIMIT, WITHSCORES), its legacy forms, ZRANGESTORE
//! and ZREMRANGEBYRANK/SCORE/LEX. One parser and one walker serve them all, as Valkey's
//! `zrangeGenericCommand`; every range starts with an O(log n) skiplist descent.

use bytes::Bytes;

use super::{is, parse, read, reply_members, store, write, Found};
use crate::exec::notify::class;
use crate::exec::Ctx;
use crate::keyspace::types::zset::{LexRange, ScoreRange, NIL};
use crate::keyspace::types::ZSetValue;

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Auto,
    Rank,
    Score,
    Lex,
}

/// A parsed range request.
enum Spec {
    Rank(i64, i64),
    Score(ScoreRange),
    Lex(LexRange),
}

/// Options common to the family.
struct Query {
    spec: Spec,
    rev: bool,
    withscores: bool,
    offset: i64,
    limit: i64,
}

/// ZRANGE key start stop [BYSCORE|BYLEX] [REV] [LIMIT offset count] [WITHSCORES]
pub fn zrange(ctx: &mut Ctx, args: &[Bytes]) {
    range_cmd(ctx, args, Kind::Auto, None);
}

/// ZRANGEBYSCORE key min max [WITHSCORES] [LIMIT offset count]
pub fn zrangebyscore(ctx: &mut Ctx, args: &[Bytes]) {
    range_cmd(ctx, args, Kind::Score, Some(false));
}

/// ZREVRANGEBYSCORE key max min [WITHSCORES] [LIMIT offset count]
pub fn zrevrangebyscore(ctx: &mut Ctx, args: &[Bytes]) {
    range_cmd(ctx, args, Kind::Score, Some(true));
}

/// ZRANGEBYLEX key min max [LIMIT offset count]
pub fn zrangebylex(ctx: &mut Ctx, args: &[Bytes]) {
    range_cmd(ctx, args, Kind::Lex, Some(false));
}

/// ZREVRANGEBYLEX key max min [LIMIT offset count]
pub fn zrevrangebylex(ctx: &mut Ctx, args: &[Bytes]) {
    range_cmd(ctx, args, Kind::Lex, Some(true));
}

/// ZREVRANGE key start stop [WITHSCORES]
pub fn zrevrange(ctx: &mut Ctx, args: &[Bytes]) {
    range_cmd(ctx, args, Kind::Rank, Some(true));
}

fn range_cmd(ctx: &mut Ctx, args: &[Bytes], kind: Kind, dir: Option<bool>) {
    let Some(q) = parse_query(ctx, args, 1, false, kind, dir) else { return };
    read(ctx, &args[1], |z, out| {
        let items = z.map(|z| collect(z, &q)).unwrap_or_default();
        reply_members(out, &items, q.withscores);
    });
}

/// ZRANGESTORE dst src min max [BYSCORE|BYLEX] [REV] [LIMIT offset count]
pub fn zrangestore(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(q) = parse_query(ctx, args, 2, true, Kind::Auto, None) else { return };
    let Some(result) = read(ctx, &args[2], |z, _| {
        let mut dst = ZSetValue::default();
        if let Some(z) = z {
            for (m, s) in collect(z, &q) {
                dst.insert_scored(m, s);
            }
        }
        dst
    }) else {
        return;
    };
    store(ctx, &args[1], result, "zrangestore");
}

/// Valkey's option parsing for the family (`zrangeGenericCommand` steps 1 and 2).
fn parse_query(
    ctx: &mut Ctx,
    args: &[Bytes],
    key: usize,
    store: bool,
    kind: Kind,
    dir: Option<bool>,
) -> Option<Query> {
    let (mut kind, mut rev) = (kind, dir);
    let (mut withscores, mut offset, mut limit) = (false, 0i64, -1i64);
    let mut j = key + 3;
    while j < args.len() {
        let left = args.len() - j - 1;
        let a = &args[j];
        if !store && is(a, "withscores") {
            withscores = true;
        } else if is(a, "limit") && left >= 2 {
            offset = ctx.arg_i64(&args[j + 1])?;
            limit = ctx.arg_i64(&args[j + 2])?;
            j += 2;
        } else if rev.is_none() && is(a, "rev") {
            rev = Some(true);
        } else if kind == Kind::Auto && is(a, "bylex") {
            kind = Kind::Lex;
        } else if kind == Kind::Auto && is(a, "byscore") {
            kind = Kind::Score;
        } else {
            ctx.syntax_error();
            return None;
        }
        j += 1;
    }
    let rev = rev.unwrap_or(false);
    if kind == Kind::Auto {
        kind = Kind::Rank;
    }
    if limit != -1 && kind == Kind::Rank {
        ctx.out.err("syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX");
        return None;
    }
    if withscores && kind == Kind::Lex {
        ctx.out.err("syntax error, WITHSCORES not supported in combination with BYLEX");
        return None;
    }
    let (mut lo, mut hi) = (&args[key + 1], &args[key + 2]);
    if rev && kind != Kind::Rank {
        std::mem::swap(&mut lo, &mut hi);
    }
    let spec = match kind {
        Kind::Score => match parse::score_range(lo, hi) {
            Some(r) => Spec::Score(r),
            None => {
                ctx.out.err("min or max is not a float");
                return None;
            }
        },
        Kind::Lex => match parse::lex_range(lo, hi) {
            Some(r) => Spec::Lex(r),
            None => {
                ctx.out.err("min or max not valid string range item");
                return None;
            }
        },
        _ => Spec::Rank(ctx.arg_i64(lo)?, ctx.arg_i64(hi)?),
    };
    Some(Query { spec, rev, withscores: withscores || store, offset, limit })
}

/// Clamps a rank range to `len`: `None` when empty (Valkey's index sanitising).
fn clamp_ranks(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let llen = len as i64;
    let mut start = if start < 0 { llen + start } else { start };
    let mut end = if end < 0 { llen + end } else { end };
    if start < 0 {
        start = 0;
    }
    if start > end || start >= llen {
        return None;
    }
    if end >= llen {
        end = llen - 1;
    }
    Some((start as usize, end as usize))
}

/// Whether a member (with its score) is still inside the range being walked.
type InRange<'r> = Box<dyn Fn(&[u8], f64) -> bool + 'r>;

/// The members a query selects, in reply order.
fn collect<'z>(z: &'z ZSetValue, q: &Query) -> Vec<(&'z [u8], f64)> {
    let len = z.len();
    let (first, in_range): (u32, InRange<'_>) = match &q.spec {
        Spec::Rank(s, e) => {
            let Some((s, e)) = clamp_ranks(*s, *e, len) else { return Vec::new() };
            let n = e - s + 1;
            return if q.rev {
                z.iter_rev_from(z.at(len - 1 - s)).take(n).collect()
            } else {
                z.iter_from(z.at(s)).take(n).collect()
            };
        }
        Spec::Score(r) => {
            let first = if q.rev { z.last_in_score(r) } else { z.first_in_score(r) };
            let r = *r;
            let f: InRange<'_> =
                if q.rev { Box::new(move |_, s| r.gte_min(s)) } else { Box::new(move |_, s| r.lte_max(s)) };
            (first, f)
        }
        Spec::Lex(r) => {
            let first = if q.rev { z.last_in_lex(r) } else { z.first_in_lex(r) };
            let f: InRange<'_> =
                if q.rev { Box::new(move |m, _| r.gte_min(m)) } else { Box::new(move |m, _| r.lte_max(m)) };
            (first, f)
        }
    };
    if q.offset > 0 && q.offset as u64 >= len as u64 || first == NIL || q.offset < 0 {
        return Vec::new();
    }
    // A negative limit means no limit, as Valkey's `limit--` loop.
    let limit = if q.limit < 0 { usize::MAX } else { q.limit as usize };
    let it: Box<dyn Iterator<Item = (&[u8], f64)>> =
        if q.rev { Box::new(z.iter_rev_from(first)) } else { Box::new(z.iter_from(first)) };
    it.skip(q.offset as usize).take_while(|(m, s)| in_range(m, *s)).take(limit).collect()
}

/// ZREMRANGEBYRANK key start stop
pub fn zremrangebyrank(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(start) = ctx.arg_i64(&args[2]) else { return };
    let Some(end) = ctx.arg_i64(&args[3]) else { return };
    remrange(ctx, args, Spec::Rank(start, end), "zremrangebyrank");
}

/// ZREMRANGEBYSCORE key min max
pub fn zremrangebyscore(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(r) = parse::score_range(&args[2], &args[3]) else {
        ctx.out.err("min or max is not a float");
        return;
    };
    remrange(ctx, args, Spec::Score(r), "zremrangebyscore");
}

/// ZREMRANGEBYLEX key min max
pub fn zremrangebylex(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(r) = parse::lex_range(&args[2], &args[3]) else {
        ctx.out.err("min or max not valid string range item");
        return;
    };
    remrange(ctx, args, Spec::Lex(r), "zremrangebylex");
}

fn remrange(ctx: &mut Ctx, args: &[Bytes], spec: Spec, event: &str) {
    let key = &args[1];
    let r = write(
        ctx,
        key,
        |found, _, _| {
            let Found::ZSet(z) = found else { return 0 };
            let (from, n) = match &spec {
                Spec::Rank(s, e) => match clamp_ranks(*s, *e, z.len()) {
                    Some((s, e)) => (s, e - s + 1),
                    None => return 0,
                },
                Spec::Score(r) => match z.first_in_score(r) {
                    NIL => return 0,
                    x => (z.rank_of(x), z.count_in_score(r)),
                },
                Spec::Lex(r) => match z.first_in_lex(r) {
                    NIL => return 0,
                    x => (z.rank_of(x), z.count_in_lex(r)),
                },
            };
            if n == 0 {
                return 0;
            }
            z.remove_rank_range(from, from + n - 1)
        },
        |&n| n > 0,
    );
    let Some((deleted, removed)) = r else { return };
    ctx.out.int(deleted as i64);
    if deleted > 0 {
        ctx.notify(class::ZSET, event, key);
        if removed {
            ctx.notify(class::GENERIC, "del", key);
        }
    }
}
