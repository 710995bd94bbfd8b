//! LCS: longest common subsequence of two string values by the classic O(N*M) table, walked
//! back exactly as Valkey walks it so the IDX ranges (and their order) are identical.

use bytes::Bytes;

use super::over_max_bulk;
use crate::exec::Ctx;
use crate::keyspace::value::StrRef;
use crate::keyspace::Value;

/// One matched range: `(a_start, a_end, b_start, b_end, len)`.
type Range = (u32, u32, u32, u32, u32);

/// A key's string bytes for LCS; a missing key is the empty string, another type is `Err`.
fn operand(ctx: &mut Ctx, key: &[u8]) -> Result<Value, ()> {
    match ctx.lookup_read(key) {
        None => Ok(Value::Str(Bytes::new())),
        Some(e) if e.value().as_string().is_some() => Ok(e.value().to_owned()),
        Some(_) => Err(()),
    }
}

pub fn lcs(ctx: &mut Ctx, args: &[Bytes]) {
    let (a, b) = match (operand(ctx, &args[1]), operand(ctx, &args[2])) {
        (Ok(a), Ok(b)) => (a, b),
        _ => return ctx.out.err("The specified keys must contain string values"),
    };
    let (mut getlen, mut getidx, mut withmatchlen) = (false, false, false);
    let mut minmatchlen = 0i64;
    let mut j = 3;
    while j < args.len() {
        let opt = args[j].split(|&c| c == 0).next().unwrap_or_default();
        if opt.eq_ignore_ascii_case(b"idx") {
            getidx = true;
        } else if opt.eq_ignore_ascii_case(b"len") {
            getlen = true;
        } else if opt.eq_ignore_ascii_case(b"withmatchlen") {
            withmatchlen = true;
        } else if opt.eq_ignore_ascii_case(b"minmatchlen") && j + 1 < args.len() {
            let Some(n) = ctx.arg_i64(&args[j + 1]) else {
                return;
            };
            minmatchlen = n.max(0);
            j += 1;
        } else {
            return ctx.syntax_error();
        }
        j += 1;
    }
    if getidx && getlen {
        return ctx.out.err("If you want both the length and indexes, please just use IDX.");
    }
    let (mut abuf, mut bbuf) = (itoa::Buffer::new(), itoa::Buffer::new());
    let (a, b) = (bytes_of(&a, &mut abuf), bytes_of(&b, &mut bbuf));
    if a.len() >= u32::MAX as usize - 1 || b.len() >= u32::MAX as usize - 1 {
        return ctx.out.err("String too long for LCS");
    }
    let cells = (a.len() as u64 + 1) * (b.len() as u64 + 1);
    if over_max_bulk(&ctx.srv.config, cells.saturating_mul(4)) {
        return ctx.out.err("Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len");
    }
    let Some(table) = build_table(a, b, cells as usize) else {
        return ctx.out.err("Insufficient memory, failed allocating transient memory for LCS");
    };
    let width = b.len() + 1;
    let at = |i: usize, j: usize| table[i * width + j];
    let total = at(a.len(), b.len());
    if getlen {
        return ctx.out.int(total as i64);
    }

    // Walk back from the end, collecting the common string and the matched ranges.
    let mut result = vec![0u8; total as usize];
    let mut idx = total as usize;
    let mut ranges: Vec<Range> = Vec::new();
    let alen = a.len() as u32;
    let (mut astart, mut aend, mut bstart, mut bend) = (alen, 0u32, 0u32, 0u32);
    let (mut i, mut j) = (a.len(), b.len());
    while i > 0 && j > 0 {
        let mut emit = false;
        if a[i - 1] == b[j - 1] {
            result[idx - 1] = a[i - 1];
            if astart == alen {
                (astart, aend) = (i as u32 - 1, i as u32 - 1);
                (bstart, bend) = (j as u32 - 1, j as u32 - 1);
            } else if astart == i as u32 && bstart == j as u32 {
                astart -= 1;
                bstart -= 1;
            } else {
                emit = true;
            }
            if astart == 0 || bstart == 0 {
                emit = true;
            }
            idx -= 1;
            i -= 1;
            j -= 1;
        } else {
            if at(i - 1, j) > at(i, j - 1) {
                i -= 1;
            } else {
                j -= 1;
            }
            if astart != alen {
                emit = true;
            }
        }
        if emit {
            let len = aend.wrapping_sub(astart).wrapping_add(1);
            if minmatchlen == 0 || len as i64 >= minmatchlen {
                ranges.push((astart, aend, bstart, bend, len));
            }
            astart = alen;
        }
    }

    let out = &mut *ctx.out;
    if !getidx {
        return out.bulk(&result);
    }
    out.map(2);
    out.bulk(b"matches");
    out.array(ranges.len());
    for (a0, a1, b0, b1, len) in ranges {
        out.array(2 + usize::from(withmatchlen));
        out.array(2);
        out.int(a0 as i64);
        out.int(a1 as i64);
        out.array(2);
        out.int(b0 as i64);
        out.int(b1 as i64);
        if withmatchlen {
            out.int(len as i64);
        }
    }
    out.bulk(b"len");
    out.int(total as i64);
}

fn bytes_of<'v>(v: &'v Value, digits: &'v mut itoa::Buffer) -> &'v [u8] {
    match v.as_string() {
        Some(StrRef::Bytes(b)) => b,
        Some(StrRef::Int(n)) => digits.format(n).as_bytes(),
        None => &[],
    }
}

/// `table[i * (b.len() + 1) + j]` = LCS length of `a[..i]` and `b[..j]`; `None` if the
/// allocation fails.
fn build_table(a: &[u8], b: &[u8], cells: usize) -> Option<Vec<u32>> {
    let mut t: Vec<u32> = Vec::new();
    t.try_reserve_exact(cells).ok()?;
    let width = b.len() + 1;
    t.resize(width, 0);
    for i in 1..=a.len() {
        t.push(0);
        let row = i * width;
        for j in 1..=b.len() {
            let v = if a[i - 1] == b[j - 1] {
                t[row - width + j - 1] + 1
            } else {
                t[row - width + j].max(t[row + j - 1])
            };
            t.push(v);
        }
    }
    Some(t)
}
