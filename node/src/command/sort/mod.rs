//! SORT and SORT_RO (Valkey's `sort.c`): sort a list, set or sorted set numerically or by
//! bytes (ALPHA), optionally by the values other keys hold (BY pattern), return other keys'
//! values (GET patterns) and store the result as a list (STORE). Check order, LIMIT clamping,
//! the "nosort" shortcuts, tie-breaking and the cluster-mode pattern checks follow Valkey 8 so
//! replies agree byte for byte; see `pattern` for key lookups and `strtod` for weights.

mod pattern;
pub(crate) mod strtod;
#[cfg(test)]
mod tests;

use std::cmp::Ordering;

use bytes::Bytes;

use super::Handler;
use crate::exec::notify::class;
use crate::exec::Ctx;
use crate::keyspace::node::ValueRef;
use crate::keyspace::slot::key_slot;
use crate::keyspace::types::list::End;
use crate::keyspace::types::ListValue;
use crate::keyspace::Value;

pub fn handler(name: &str) -> Option<Handler> {
    Some(match name {
        "sort" => sort,
        "sort_ro" => sort_ro,
        _ => return None,
    })
}

/// SORT key [BY pattern] [LIMIT offset count] [GET pattern ...] [ASC|DESC] [ALPHA]
/// [STORE destination]
pub fn sort(ctx: &mut Ctx, args: &[Bytes]) {
    generic(ctx, args, false);
}

/// SORT_RO: SORT without STORE (which is then a syntax error).
pub fn sort_ro(ctx: &mut Ctx, args: &[Bytes]) {
    generic(ctx, args, true);
}

/// Parsed options.
#[derive(Default)]
struct Opts {
    desc: bool,
    alpha: bool,
    limit_start: i64,
    limit_count: i64,
    store: Option<Bytes>,
    by: Option<Bytes>,
    /// BY a pattern without `*`: nothing to sort by.
    dontsort: bool,
    gets: Vec<Bytes>,
}

/// The errors of cluster mode, for patterns whose keys may live in other slots.
const BY_DENIED: &str =
    "BY option of SORT denied in Cluster mode when keys formed by the pattern may be in different slots.";
const GET_DENIED: &str =
    "GET option of SORT denied in Cluster mode when keys formed by the pattern may be in different slots.";

/// Parses the options left to right, replying the first error as Valkey does.
fn parse(ctx: &mut Ctx, args: &[Bytes], readonly: bool) -> Option<Opts> {
    let mut o = Opts { limit_count: -1, ..Opts::default() };
    let cluster = ctx.srv.cluster.is_some();
    let slot = key_slot(&args[1]);
    let same_slot = |p: &[u8]| pattern::pattern_slot(p) == Some(slot);
    let is = |a: &Bytes, w: &str| a.eq_ignore_ascii_case(w.as_bytes());
    let mut j = 2;
    while j < args.len() {
        let left = args.len() - j - 1;
        let a = &args[j];
        if is(a, "asc") {
            o.desc = false;
        } else if is(a, "desc") {
            o.desc = true;
        } else if is(a, "alpha") {
            o.alpha = true;
        } else if is(a, "limit") && left >= 2 {
            o.limit_start = ctx.arg_i64(&args[j + 1])?;
            o.limit_count = ctx.arg_i64(&args[j + 2])?;
            j += 2;
        } else if !readonly && is(a, "store") && left >= 1 {
            o.store = Some(args[j + 1].clone());
            j += 1;
        } else if is(a, "by") && left >= 1 {
            let p = &args[j + 1];
            o.by = Some(p.clone());
            if !pattern::cstr(p).contains(&b'*') {
                o.dontsort = true;
            } else if cluster && !same_slot(p) {
                ctx.out.err(BY_DENIED);
                return None;
            }
            j += 1;
        } else if is(a, "get") && left >= 1 {
            let p = &args[j + 1];
            // `GET #` names no key (exempt since Valkey 8.0.2).
            if cluster && !pattern::is_self(p) && !same_slot(p) {
                ctx.out.err(GET_DENIED);
                return None;
            }
            o.gets.push(p.clone());
            j += 1;
        } else {
            ctx.syntax_error();
            return None;
        }
        j += 1;
    }
    Some(o)
}

/// What the sorted key holds.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    List,
    Set,
    ZSet,
}

/// One element to sort, with its weight.
struct Item {
    elem: Bytes,
    score: f64,
    /// ALPHA with BY: the weight as bytes (`None`: the weight key is missing).
    cmp: Option<Bytes>,
}

/// Valkey's LIMIT clamping for `n` elements: the inclusive output range `start..=end`
/// (`end < start` when empty). Never overflows: both values are first clamped to `n`.
fn clamp_limit(start: i64, count: i64, n: i64) -> (i64, i64) {
    let mut start = start.clamp(0, n);
    let count = count.clamp(-1, n);
    let mut end = if count < 0 { n - 1 } else { start + count - 1 };
    if start >= n {
        start = n - 1;
        end = n - 2;
    }
    if end >= n {
        end = n - 1;
    }
    (start, end)
}

/// Loads the elements of `key` (only those of `start..=end`, in ASC/DESC order, when a list
/// or sorted set needs no sorting). `None` after replying WRONGTYPE.
fn load(ctx: &mut Ctx, key: &[u8], o: &Opts) -> Option<(Kind, Vec<Bytes>, i64, i64)> {
    let b = |s: &[u8]| Bytes::copy_from_slice(s);
    let Some(mut e) = ctx.lookup_read(key) else {
        let (start, end) = clamp_limit(o.limit_start, o.limit_count, 0);
        return Some((Kind::List, Vec::new(), start, end));
    };
    let (kind, n) = match e.value() {
        ValueRef::List(l) => (Kind::List, l.len()),
        ValueRef::Set(s) => (Kind::Set, s.len()),
        ValueRef::ZSet(z) => (Kind::ZSet, z.len()),
        _ => {
            ctx.wrong_type();
            return None;
        }
    };
    // Valkey converts a sorted set it sorts to a skiplist, whatever happens next.
    if let Some(Value::ZSet(z)) = e.value_mut_untracked().filter(|_| kind == Kind::ZSet) {
        z.convert_to_skiplist();
    }
    let (start, end) = clamp_limit(o.limit_start, o.limit_count, n as i64);
    // Lists and sorted sets keep their order when nothing is sorted: take the range directly.
    if o.dontsort && kind != Kind::Set {
        let take = if end >= start { (end - start + 1) as usize } else { 0 };
        let skip = start.max(0) as usize;
        // Positions from the chosen end: O(1) list indexing, an O(log n) zset rank lookup.
        let at = |i: usize| if o.desc { n - 1 - i } else { i };
        let v: Vec<Bytes> = match e.value() {
            _ if take == 0 => Vec::new(),
            ValueRef::List(l) => (skip..skip + take).filter_map(|i| l.get(at(i))).map(b).collect(),
            ValueRef::ZSet(z) if o.desc => {
                z.iter_rev_from(z.at(at(skip))).take(take).map(|(m, _)| b(m)).collect()
            }
            ValueRef::ZSet(z) => z.iter_from(z.at(skip)).take(take).map(|(m, _)| b(m)).collect(),
            _ => Vec::new(),
        };
        let len = v.len() as i64;
        return Some((kind, v, 0, len - 1));
    }
    let v: Vec<Bytes> = match e.value() {
        ValueRef::List(l) => l.iter().map(b).collect(),
        ValueRef::Set(s) => s.iter().map(b).collect(),
        ValueRef::ZSet(z) => z.iter().map(|(m, _)| b(m)).collect(),
        _ => Vec::new(),
    };
    Some((kind, v, start, end))
}

/// `strcmp`: bytes compared up to the first NUL, as `strcoll` in the C locale.
fn c_cmp(a: &[u8], b: &[u8]) -> Ordering {
    pattern::cstr(a).cmp(pattern::cstr(b))
}

fn generic(ctx: &mut Ctx, args: &[Bytes], readonly: bool) {
    let Some(mut o) = parse(ctx, args, readonly) else { return };
    let Some((kind, elems, start, end)) = load(ctx, &args[1], &o) else { return };
    // A set has no order of its own: when the result is stored (or a script runs), sort it
    // by bytes so every replica and replay gets the same list.
    if o.dontsort && kind == Kind::Set && (o.store.is_some() || in_script(ctx)) {
        o.dontsort = false;
        o.alpha = true;
        o.by = None;
    }
    let mut items: Vec<Item> = elems.into_iter().map(|elem| Item { elem, score: 0.0, cmp: None }).collect();
    let mut bad_number = false;
    if !o.dontsort {
        for it in &mut items {
            let weight = match &o.by {
                Some(p) => match pattern::lookup(ctx, p, &it.elem) {
                    Some(w) => w,
                    None => continue,
                },
                None => it.elem.clone(),
            };
            if o.alpha {
                if o.by.is_some() {
                    it.cmp = Some(weight);
                }
            } else {
                let p = strtod::strtod(&weight);
                it.score = p.value;
                let ends = weight.get(p.used).is_none_or(|&b| b == 0);
                if !ends || p.erange || p.value.is_nan() {
                    bad_number = true;
                }
            }
        }
        let (alpha, by, store) = (o.alpha, o.by.is_some(), o.store.is_some());
        let cmp = |a: &Item, b: &Item| -> Ordering {
            if !alpha {
                if a.score > b.score {
                    Ordering::Greater
                } else if a.score < b.score {
                    Ordering::Less
                } else {
                    a.elem.cmp(&b.elem)
                }
            } else if by {
                match (&a.cmp, &b.cmp) {
                    (None, None) => Ordering::Equal,
                    (None, Some(_)) => Ordering::Less,
                    (Some(_), None) => Ordering::Greater,
                    (Some(x), Some(y)) if store => x.cmp(y),
                    (Some(x), Some(y)) => c_cmp(x, y),
                }
            } else if store {
                a.elem.cmp(&b.elem)
            } else {
                c_cmp(&a.elem, &b.elem)
            }
        };
        // Stable, as glibc's merge-sort `qsort`: equal weights keep their loading order.
        if o.desc {
            items.sort_by(|a, b| cmp(b, a));
        } else {
            items.sort_by(cmp);
        }
    }
    if bad_number {
        ctx.out.err("One or more scores can't be converted into double");
        return;
    }
    let range = if end >= start { &items[start as usize..=end as usize] } else { &[][..] };
    match o.store.take() {
        None => reply(ctx, range, &o.gets),
        Some(dst) => store(ctx, range, &o.gets, &dst),
    }
}

/// The command runs inside a script (Valkey's `CLIENT_SCRIPT`).
fn in_script(ctx: &Ctx) -> bool {
    ctx.clients[ctx.me].st.id == crate::scripting::eval::SCRIPT_CLIENT_ID
}

fn reply(ctx: &mut Ctx, range: &[Item], gets: &[Bytes]) {
    ctx.out.array(range.len() * gets.len().max(1));
    for it in range {
        if gets.is_empty() {
            ctx.out.bulk(&it.elem);
        }
        for g in gets {
            match pattern::lookup(ctx, g, &it.elem) {
                Some(v) => ctx.out.bulk(&v),
                None => ctx.out.null(),
            }
        }
    }
}

/// STORE: the result as a list at `dst` (replacing it, TTL included); an empty result
/// deletes `dst`. Missing GET values are stored as empty strings.
fn store(ctx: &mut Ctx, range: &[Item], gets: &[Bytes], dst: &[u8]) {
    let mut values: Vec<Bytes> = Vec::with_capacity(range.len() * gets.len().max(1));
    for it in range {
        if gets.is_empty() {
            values.push(it.elem.clone());
        }
        for g in gets {
            values.push(pattern::lookup(ctx, g, &it.elem).unwrap_or_default());
        }
    }
    let n = values.len();
    if n > 0 {
        let fill = ctx.srv.config.get_i64("list-max-listpack-size");
        // Valkey pushes onto a quicklist, then converts it to a listpack if it stayed one
        // node: pushing one by one with the encoding check gives the same answer.
        let mut list = ListValue::default();
        for v in &values {
            list.push(End::Tail, v, fill);
        }
        let clock = ctx.clock();
        let old = ctx.db().set(dst, Value::List(Box::new(list)), None, clock);
        dispose(ctx, old);
        // Clients blocked on `dst` (BLPOP & co) may be served now. The dispatcher signals
        // the keys of a write by its key specs, which SORT's STORE key is not in.
        let db = ctx.clients[ctx.me].st.db;
        crate::exec::blocking::signal_key_ready(ctx.srv, db, dst);
        ctx.notify(class::LIST, "sortstore", dst);
    } else if let Some(old) = ctx.db().remove(dst) {
        dispose(ctx, Some(old));
        ctx.notify(class::GENERIC, "del", dst);
    }
    ctx.out.int(n as i64);
}

/// Drops a replaced or removed value, off the executor when it is large.
fn dispose(ctx: &mut Ctx, old: Option<crate::keyspace::Node>) {
    if let Some(old) = old.filter(|o| o.value().heap_size() >= 64 * 1024) {
        ctx.free_later(old);
    }
}
