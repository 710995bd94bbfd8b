//! BITCOUNT and BITPOS with BYTE|BIT ranges, negative indexes and BITPOS's "end given"
//! rule, as Valkey 8's `bitcountCommand` / `bitposCommand`.

use bytes::Bytes;

use super::read_string;
use crate::exec::Ctx;

/// A range resolved against a string: byte indexes `start..=end` plus, for BIT ranges, masks of
/// the bits of the first and last byte that fall outside it.
struct Range {
    start: i64,
    end: i64,
    first_neg: u8,
    last_neg: u8,
}

/// Valkey's index conversion shared by both commands; `totlen` is the string length in bytes.
fn resolve(totlen: i64, mut start: i64, mut end: i64, isbit: bool) -> Range {
    let totlen = if isbit { totlen << 3 } else { totlen };
    if start < 0 {
        start += totlen;
    }
    if end < 0 {
        end += totlen;
    }
    start = start.max(0);
    end = end.max(0);
    if end >= totlen {
        end = totlen - 1;
    }
    let (mut first_neg, mut last_neg) = (0u8, 0u8);
    if isbit && start <= end {
        first_neg = !((1u16 << (8 - (start & 7))) - 1) as u8;
        last_neg = ((1u16 << (7 - (end & 7))) - 1) as u8;
        start >>= 3;
        end >>= 3;
    }
    Range { start, end, first_neg, last_neg }
}

/// BYTE or BIT (case-insensitive); `None` is a syntax error.
fn unit(arg: &[u8]) -> Option<bool> {
    if arg.eq_ignore_ascii_case(b"bit") {
        Some(true)
    } else if arg.eq_ignore_ascii_case(b"byte") {
        Some(false)
    } else {
        None
    }
}

fn popcount(b: &[u8]) -> i64 {
    b.iter().map(|x| x.count_ones() as i64).sum()
}

pub fn bitcount(ctx: &mut Ctx, args: &[Bytes]) {
    let mut range = None;
    match args.len() {
        2 => {}
        4 | 5 => {
            let Some(start) = ctx.arg_i64(&args[2]) else { return };
            let Some(end) = ctx.arg_i64(&args[3]) else { return };
            let isbit = match args.get(4) {
                None => false,
                Some(u) => match unit(u) {
                    Some(b) => b,
                    None => return ctx.syntax_error(),
                },
            };
            range = Some((start, end, isbit));
        }
        _ => return ctx.syntax_error(),
    }
    let Ok(n) = read_string(ctx, &args[1], |s| {
        let p = s?;
        let r = match range {
            None => Range { start: 0, end: p.len() as i64 - 1, first_neg: 0, last_neg: 0 },
            Some((start, end, _)) if start < 0 && end < 0 && start > end => return Some(0),
            Some((start, end, isbit)) => resolve(p.len() as i64, start, end, isbit),
        };
        if r.start > r.end {
            return Some(0);
        }
        let (s, e) = (r.start as usize, r.end as usize);
        let mut count = popcount(&p[s..=e]);
        if r.first_neg != 0 {
            count -= (p[s] & r.first_neg).count_ones() as i64;
        }
        if r.last_neg != 0 {
            count -= (p[e] & r.last_neg).count_ones() as i64;
        }
        Some(count)
    }) else {
        return;
    };
    ctx.out.int(n.unwrap_or(0));
}

/// Valkey's `serverBitpos`: the first bit equal to `bit` in `p`; when looking for a clear bit
/// in all-ones bytes, the first bit after them; when looking for a set bit and none is, -1.
fn first_bit(p: &[u8], bit: bool) -> i64 {
    for (i, &b) in p.iter().enumerate() {
        let v = if bit { b } else { !b };
        if v != 0 {
            return (i as i64) * 8 + v.leading_zeros() as i64;
        }
    }
    if bit {
        -1
    } else {
        (p.len() as i64) * 8
    }
}

pub fn bitpos(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(bit) = ctx.arg_i64(&args[2]) else { return };
    if bit != 0 && bit != 1 {
        return ctx.out.err("The bit argument must be 1 or 0.");
    }
    let bit = bit == 1;
    let mut range = None;
    match args.len() {
        3 => {}
        4..=6 => {
            let Some(start) = ctx.arg_i64(&args[3]) else { return };
            let isbit = match args.get(5) {
                None => false,
                Some(u) => match unit(u) {
                    Some(b) => b,
                    None => return ctx.syntax_error(),
                },
            };
            let end = match args.get(4) {
                None => None,
                Some(a) => match ctx.arg_i64(a) {
                    Some(v) => Some(v),
                    None => return,
                },
            };
            range = Some((start, end, isbit));
        }
        _ => return ctx.syntax_error(),
    }
    let Ok(pos) = read_string(ctx, &args[1], |s| {
        let Some(p) = s else {
            return if bit { -1 } else { 0 };
        };
        let end_given = matches!(range, Some((_, Some(_), _)));
        let r = match range {
            None => Range { start: 0, end: p.len() as i64 - 1, first_neg: 0, last_neg: 0 },
            Some((start, end, isbit)) => {
                resolve(p.len() as i64, start, end.unwrap_or(p.len() as i64 - 1), isbit)
            }
        };
        if r.start > r.end {
            return -1;
        }
        scan_range(p, &r, bit, end_given)
    }) else {
        return;
    };
    ctx.out.int(pos);
}

/// The search part of `bitposCommand` over a non-empty resolved range.
fn scan_range(p: &[u8], r: &Range, bit: bool, end_given: bool) -> i64 {
    let mut start = r.start as usize;
    let end = r.end as usize;
    let mut bytes = end - start + 1;
    let edge = |b: u8, neg: u8| if bit { b & !neg } else { b | neg };
    let pos = 'found: {
        if r.first_neg != 0 {
            let mut c = edge(p[start], r.first_neg);
            if r.last_neg != 0 && bytes == 1 {
                c = edge(c, r.last_neg);
            }
            let pos = first_bit(&[c], bit);
            if bytes == 1 || (pos != -1 && pos != 8) {
                break 'found pos;
            }
            start += 1;
            bytes -= 1;
        }
        let cur = bytes - (r.last_neg != 0) as usize;
        if cur > 0 {
            let pos = first_bit(&p[start..start + cur], bit);
            if bytes == cur || (pos != -1 && pos != (cur as i64) << 3) {
                break 'found pos;
            }
            start += cur;
            bytes -= cur;
        }
        first_bit(&[edge(p[end], r.last_neg)], bit)
    };
    // With an explicit end, the bits right of the range are not zero padding.
    if end_given && !bit && pos == (bytes as i64) << 3 {
        return -1;
    }
    if pos == -1 {
        -1
    } else {
        pos + ((start as i64) << 3)
    }
}
