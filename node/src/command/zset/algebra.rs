//! Set algebra over sorted sets (and plain sets, whose members count with score 1): ZUNION,
//! ZINTER, ZDIFF, their STORE forms and ZINTERCARD, as Valkey's
//! `zunionInterDiffGenericCommand` (WEIGHTS, AGGREGATE SUM|MIN|MAX, WITHSCORES, LIMIT).

use std::collections::HashMap;

use bytes::Bytes;

use super::{is, reply_members, store};
use crate::exec::Ctx;
use crate::keyspace::node::ValueRef;
use crate::keyspace::types::ZSetValue;
use crate::util::parse_i64;

#[derive(Clone, Copy, PartialEq)]
enum Op {
    Union,
    Inter,
    Diff,
}

#[derive(Clone, Copy)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

/// Members and scores of one input.
type Items = Vec<(Box<[u8]>, f64)>;

/// One input, materialised: members in its own order, and a lookup by member.
struct Source {
    items: Items,
    index: HashMap<Box<[u8]>, f64, foldhash::fast::RandomState>,
    weight: f64,
}

impl Source {
    fn find(&self, m: &[u8]) -> Option<f64> {
        self.index.get(m).copied()
    }
}

pub fn zunion(ctx: &mut Ctx, args: &[Bytes]) {
    generic(ctx, args, 1, None, Op::Union, false);
}

pub fn zinter(ctx: &mut Ctx, args: &[Bytes]) {
    generic(ctx, args, 1, None, Op::Inter, false);
}

pub fn zdiff(ctx: &mut Ctx, args: &[Bytes]) {
    generic(ctx, args, 1, None, Op::Diff, false);
}

pub fn zunionstore(ctx: &mut Ctx, args: &[Bytes]) {
    generic(ctx, args, 2, Some(&args[1]), Op::Union, false);
}

pub fn zinterstore(ctx: &mut Ctx, args: &[Bytes]) {
    generic(ctx, args, 2, Some(&args[1]), Op::Inter, false);
}

pub fn zdiffstore(ctx: &mut Ctx, args: &[Bytes]) {
    generic(ctx, args, 2, Some(&args[1]), Op::Diff, false);
}

/// ZINTERCARD numkeys key [key ...] [LIMIT limit]
pub fn zintercard(ctx: &mut Ctx, args: &[Bytes]) {
    generic(ctx, args, 1, None, Op::Inter, true);
}

fn combine(target: &mut f64, v: f64, agg: Aggregate) {
    match agg {
        Aggregate::Sum => {
            *target += v;
            if target.is_nan() {
                *target = 0.0;
            }
        }
        Aggregate::Min => *target = target.min(v),
        Aggregate::Max => *target = target.max(v),
    }
}

/// Reads one input key: a sorted set, a set (scores 1), or nothing. `Err` after WRONGTYPE.
fn load(ctx: &mut Ctx, key: &[u8]) -> Result<Option<Items>, ()> {
    let Some(e) = ctx.lookup_read(key) else { return Ok(None) };
    let items = match e.value() {
        ValueRef::ZSet(z) => z.iter().map(|(m, s)| (Box::from(m), s)).collect(),
        ValueRef::Set(s) => s.iter().map(|m| (Box::from(m), 1.0)).collect(),
        _ => {
            ctx.wrong_type();
            return Err(());
        }
    };
    Ok(Some(items))
}

fn generic(ctx: &mut Ctx, args: &[Bytes], numkeys_at: usize, dst: Option<&Bytes>, op: Op, card_only: bool) {
    let Some(setnum) = ctx.arg_i64(&args[numkeys_at]) else { return };
    if setnum < 1 {
        let msg = format!("at least 1 input key is needed for '{}' command", ctx.cmd_name);
        ctx.out.err(&msg);
        return;
    }
    if setnum as u64 > (args.len() - numkeys_at - 1) as u64 {
        ctx.syntax_error();
        return;
    }
    let setnum = setnum as usize;
    let keys = &args[numkeys_at + 1..numkeys_at + 1 + setnum];
    let mut srcs = Vec::with_capacity(setnum);
    for k in keys {
        let Ok(items) = load(ctx, k) else { return };
        let items = items.unwrap_or_default();
        let index = if op == Op::Union { HashMap::default() } else { items.iter().cloned().collect() };
        srcs.push(Source { items, index, weight: 1.0 });
    }
    let mut agg = Aggregate::Sum;
    let mut withscores = false;
    let mut limit = 0usize;
    let mut j = numkeys_at + 1 + setnum;
    while j < args.len() {
        let remaining = args.len() - j;
        if op != Op::Diff && !card_only && remaining > setnum && is(&args[j], "weights") {
            j += 1;
            for s in &mut srcs {
                match super::parse::score(&args[j]) {
                    Some(w) => s.weight = w,
                    None => {
                        ctx.out.err("weight value is not a float");
                        return;
                    }
                }
                j += 1;
            }
        } else if op != Op::Diff && !card_only && remaining >= 2 && is(&args[j], "aggregate") {
            agg = match &args[j + 1] {
                a if is(a, "sum") => Aggregate::Sum,
                a if is(a, "min") => Aggregate::Min,
                a if is(a, "max") => Aggregate::Max,
                _ => {
                    ctx.syntax_error();
                    return;
                }
            };
            j += 2;
        } else if dst.is_none() && !card_only && is(&args[j], "withscores") {
            withscores = true;
            j += 1;
        } else if card_only && remaining >= 2 && is(&args[j], "limit") {
            match parse_i64(&args[j + 1]) {
                Some(n) if n >= 0 => limit = n as usize,
                _ => {
                    ctx.out.err("LIMIT can't be negative");
                    return;
                }
            }
            j += 2;
        } else {
            ctx.syntax_error();
            return;
        }
    }
    if op != Op::Diff {
        srcs.sort_by_key(|s| s.items.len());
    }
    let mut result: HashMap<Box<[u8]>, f64, foldhash::fast::RandomState> = HashMap::default();
    let mut card = 0usize;
    match op {
        Op::Inter => {
            if let Some((first, rest)) = srcs.split_first() {
                for (m, s) in &first.items {
                    let mut score = first.weight * s;
                    if score.is_nan() {
                        score = 0.0;
                    }
                    let all = rest.iter().all(|o| match o.find(m) {
                        Some(v) => {
                            combine(&mut score, v * o.weight, agg);
                            true
                        }
                        None => false,
                    });
                    if !all {
                        continue;
                    }
                    if card_only {
                        card += 1;
                        if limit > 0 && card >= limit {
                            break;
                        }
                    } else {
                        result.insert(m.clone(), score);
                    }
                }
            }
        }
        Op::Union => {
            for src in &srcs {
                for (m, s) in &src.items {
                    let mut score = src.weight * s;
                    if score.is_nan() {
                        score = 0.0;
                    }
                    match result.get_mut(m) {
                        Some(cur) => combine(cur, score, agg),
                        None => {
                            result.insert(m.clone(), score);
                        }
                    }
                }
            }
        }
        Op::Diff => {
            if let Some((first, rest)) = srcs.split_first() {
                for (m, s) in &first.items {
                    if rest.iter().all(|o| o.find(m).is_none()) {
                        result.insert(m.clone(), *s);
                    }
                }
            }
        }
    }
    if card_only {
        ctx.out.int(card as i64);
        return;
    }
    let mut z = ZSetValue::default();
    for (m, s) in result {
        z.insert_scored(&m, s);
    }
    match dst {
        Some(dst) => {
            let event = match op {
                Op::Union => "zunionstore",
                Op::Inter => "zinterstore",
                Op::Diff => "zdiffstore",
            };
            store(ctx, dst, z, event);
        }
        None => {
            let items: Vec<(&[u8], f64)> = z.iter().collect();
            reply_members(ctx.out, &items, withscores);
        }
    }
}
