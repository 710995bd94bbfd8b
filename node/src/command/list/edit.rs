//! LREM and LTRIM: removals from anywhere in a list.

use bytes::Bytes;

use super::{delete_if_empty, fill, list_mut, list_mut_untracked, write_list, Found};
use crate::exec::notify::class;
use crate::exec::{Ctx, WRONGTYPE};

/// LREM key count element: count > 0 from the head, < 0 from the tail, 0 all.
pub fn lrem(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(count) = ctx.arg_i64(&args[2]) else { return };
    let key = &args[1];
    let fill = fill(ctx);
    let (found, out) = write_list(ctx, key);
    let mut e = match found {
        Found::List(e) => e,
        Found::WrongType => return out.error(WRONGTYPE),
        Found::Missing => return out.int(0),
    };
    let Some(l) = list_mut_untracked(&mut e) else { return };
    let removed = l.remove_eq(&args[3], count.unsigned_abs() as usize, count >= 0, fill);
    out.int(removed as i64);
    if removed > 0 {
        ctx.db().signal_modified(key);
        ctx.notify(class::LIST, "lrem", key);
    }
    delete_if_empty(ctx, key);
}

/// LTRIM key start stop
pub fn ltrim(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(start) = ctx.arg_i64(&args[2]) else { return };
    let Some(end) = ctx.arg_i64(&args[3]) else { return };
    let key = &args[1];
    let fill = fill(ctx);
    let (found, out) = write_list(ctx, key);
    let mut e = match found {
        Found::List(e) => e,
        Found::WrongType => return out.error(WRONGTYPE),
        Found::Missing => return out.ok(),
    };
    let Some(l) = list_mut(&mut e) else { return };
    let len = l.len() as i64;
    let (mut start, mut end) = (start, end);
    if start < 0 {
        start = start.saturating_add(len);
    }
    if end < 0 {
        end = end.saturating_add(len);
    }
    if start < 0 {
        start = 0;
    }
    if start > end || start >= len {
        l.retain_range(1, 0, fill);
    } else {
        l.retain_range(start as usize, end.min(len - 1) as usize, fill);
    }
    out.ok();
    ctx.notify(class::LIST, "ltrim", key);
    delete_if_empty(ctx, key);
}
