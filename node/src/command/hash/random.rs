//! HRANDFIELD and HSCAN: the hash reads whose replies are not a function of the contents
//! alone (random picks, cursor positions).

use bytes::Bytes;

use super::{cstr, distinct_indices, hash_read, random_count, scan_opts, scan_reply};
use crate::command::keys::parse_cursor;
use crate::exec::ctx::WRONGTYPE;
use crate::exec::Ctx;
use crate::keyspace::node::ValueRef;
use crate::protocol::Reply;
use crate::util::glob_match;

/// HRANDFIELD key [count [WITHVALUES]]
pub fn hrandfield(ctx: &mut Ctx, args: &[Bytes]) {
    if args.len() == 2 {
        let (e, out) = hash_read(ctx, &args[1]);
        return match e.as_ref().map(|e| e.value()) {
            None => out.null(),
            Some(ValueRef::Hash(h)) => out.bulk(h.at(fastrand::usize(..h.len())).0),
            Some(_) => out.error(WRONGTYPE),
        };
    }
    let Some(n) = random_count(ctx, &args[2]) else { return };
    if args.len() > 4 || (args.len() == 4 && !cstr(&args[3]).eq_ignore_ascii_case(b"withvalues")) {
        return ctx.syntax_error();
    }
    let withvalues = args.len() == 4;
    if withvalues && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&n) {
        return ctx.out.err("value is out of range");
    }
    let (e, out) = hash_read(ctx, &args[1]);
    let h = match e.as_ref().map(|e| e.value()) {
        None => return out.array(0),
        Some(ValueRef::Hash(h)) => h,
        Some(_) => return out.error(WRONGTYPE),
    };
    let count = n.unsigned_abs() as usize;
    if count == 0 {
        return out.array(0);
    }
    let size = h.len();
    // A listpack is read in one pass, not once per pick.
    let packed: Option<Vec<(&[u8], &[u8])>> = (h.encoding() == "listpack").then(|| h.iter().collect());
    let pick = |out: &mut Reply, i: usize| {
        let (f, v) = packed.as_ref().map_or_else(|| h.at(i), |p| p[i]);
        if withvalues && out.resp3 {
            out.array(2);
        }
        out.bulk(f);
        if withvalues {
            out.bulk(v);
        }
    };
    let header =
        |out: &mut Reply, len: usize| out.array(if withvalues && !out.resp3 { len * 2 } else { len });
    if n < 0 || count == 1 {
        // With repetitions, in random order.
        header(out, count);
        for _ in 0..count {
            pick(out, fastrand::usize(..size));
        }
    } else if count >= size {
        header(out, size);
        (0..size).for_each(|i| pick(out, i));
    } else {
        header(out, count);
        distinct_indices(size, count).into_iter().for_each(|i| pick(out, i));
    }
}

/// HSCAN key cursor [MATCH pattern] [COUNT count] [NOVALUES]
pub fn hscan(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(cursor) = parse_cursor(&args[2]) else {
        return ctx.out.err("invalid cursor");
    };
    // The key is looked up before the options are checked, as Valkey does.
    let kind = hash_read(ctx, &args[1]).0.map(|e| matches!(e.value(), ValueRef::Hash(_)));
    match kind {
        None => return scan_reply(ctx.out, 0, &[]),
        Some(false) => return ctx.wrong_type(),
        Some(true) => {}
    }
    let Some(opts) = scan_opts(ctx, args, true) else { return };
    let db = ctx.clients[ctx.me].st.db;
    let Some(ValueRef::Hash(h)) = ctx.srv.dbs[db].peek(&args[1]) else { return };
    let mut items: Vec<&[u8]> = Vec::new();
    let next = h.scan(cursor, opts.count, |f, v| {
        if opts.pattern.is_none_or(|p| glob_match(p, f, false)) {
            items.push(f);
            if !opts.novalues {
                items.push(v);
            }
        }
    });
    scan_reply(ctx.out, next, &items);
}
