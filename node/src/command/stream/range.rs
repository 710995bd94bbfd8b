//! XRANGE and XREVRANGE (`xrangeGenericCommand`): the IDs and COUNT are checked before the
//! key, exclusive bounds move one ID inward, and COUNT 0 is a null array.

use bytes::Bytes;

use super::{get, interval_id, reply_entry, Got};
use crate::exec::{Ctx, WRONGTYPE};

/// XRANGE key start end [COUNT count]
pub fn xrange(ctx: &mut Ctx, args: &[Bytes]) {
    range_generic(ctx, args, false);
}

/// XREVRANGE key end start [COUNT count]
pub fn xrevrange(ctx: &mut Ctx, args: &[Bytes]) {
    range_generic(ctx, args, true);
}

fn range_generic(ctx: &mut Ctx, args: &[Bytes], rev: bool) {
    let (start_arg, end_arg) = if rev { (&args[3], &args[2]) } else { (&args[2], &args[3]) };
    let Some(start) = interval_id(ctx, start_arg, true) else { return };
    let Some(end) = interval_id(ctx, end_arg, false) else { return };
    let mut count: i64 = -1;
    let mut j = 4;
    while j < args.len() {
        if args[j].eq_ignore_ascii_case(b"count") && j + 1 < args.len() {
            let Some(n) = ctx.arg_i64(&args[j + 1]) else { return };
            count = n.max(0);
            j += 2;
        } else {
            return ctx.syntax_error();
        }
    }
    let (s, out) = match get(ctx, &args[1], true) {
        (Got::WrongType, out) => return out.error(WRONGTYPE),
        (Got::Missing, out) => return out.array(0),
        (Got::Stream(s), out) => (s, out),
    };
    if count == 0 {
        return out.null_array();
    }
    let limit = if count < 0 { usize::MAX } else { usize::try_from(count).unwrap_or(usize::MAX) };
    let entries: Vec<_> = s.range(start, end, rev).take(limit).collect();
    out.array(entries.len());
    for e in &entries {
        reply_entry(out, e);
    }
}
