//! BITFIELD and BITFIELD_RO: GET/SET/INCRBY of signed (i1..i64) and unsigned (u1..u63)
//! integers at any bit offset (or `#N` in units of the type's width), with OVERFLOW
//! WRAP|SAT|FAIL, as Valkey 8's `bitfieldGeneric`. Every operation is parsed and checked before
//! any runs, so an error leaves the key untouched.

use bytes::Bytes;

use super::{bit_offset, read_string, store_string, write_string};
use crate::exec::notify::class;
use crate::exec::Ctx;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Overflow {
    Wrap,
    Sat,
    Fail,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Get,
    Set,
    Incr,
}

#[derive(Clone, Copy)]
struct Op {
    kind: Kind,
    offset: u64,
    bits: u32,
    signed: bool,
    value: i64,
    overflow: Overflow,
}

pub fn bitfield(ctx: &mut Ctx, args: &[Bytes]) {
    run(ctx, args, false);
}

pub fn bitfield_ro(ctx: &mut Ctx, args: &[Bytes]) {
    run(ctx, args, true);
}

/// Valkey's `getBitfieldTypeFromArgument`: `i1`..`i64` or `u1`..`u63`.
fn bitfield_type(ctx: &mut Ctx, arg: &[u8]) -> Option<(bool, u32)> {
    const ERR: &str =
        "Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.";
    let signed = match arg.first() {
        Some(b'i') => true,
        Some(b'u') => false,
        _ => {
            ctx.out.err(ERR);
            return None;
        }
    };
    // The C code reads the width with strlen: it stops at a NUL byte.
    let digits = &arg[1..];
    let digits = &digits[..digits.iter().position(|&b| b == 0).unwrap_or(digits.len())];
    match crate::util::parse_i64(digits) {
        Some(b) if b >= 1 && b <= if signed { 64 } else { 63 } => Some((signed, b as u32)),
        _ => {
            ctx.out.err(ERR);
            None
        }
    }
}

fn parse(ctx: &mut Ctx, args: &[Bytes]) -> Option<Vec<Op>> {
    let mut ops = Vec::new();
    let mut overflow = Overflow::Wrap;
    let mut j = 2;
    while j < args.len() {
        let rem = args.len() - j - 1;
        let sub = &args[j];
        let kind = if sub.eq_ignore_ascii_case(b"get") && rem >= 2 {
            Kind::Get
        } else if sub.eq_ignore_ascii_case(b"set") && rem >= 3 {
            Kind::Set
        } else if sub.eq_ignore_ascii_case(b"incrby") && rem >= 3 {
            Kind::Incr
        } else if sub.eq_ignore_ascii_case(b"overflow") && rem >= 1 {
            let t = &args[j + 1];
            overflow = if t.eq_ignore_ascii_case(b"wrap") {
                Overflow::Wrap
            } else if t.eq_ignore_ascii_case(b"sat") {
                Overflow::Sat
            } else if t.eq_ignore_ascii_case(b"fail") {
                Overflow::Fail
            } else {
                ctx.out.err("Invalid OVERFLOW type specified");
                return None;
            };
            j += 2;
            continue;
        } else {
            ctx.syntax_error();
            return None;
        };
        let (signed, bits) = bitfield_type(ctx, &args[j + 1])?;
        let offset = bit_offset(ctx, &args[j + 2], true, bits)?;
        let mut value = 0;
        if kind != Kind::Get {
            value = ctx.arg_i64(&args[j + 3])?;
        }
        ops.push(Op { kind, offset, bits, signed, value, overflow });
        j += if kind == Kind::Get { 3 } else { 4 };
    }
    Some(ops)
}

fn run(ctx: &mut Ctx, args: &[Bytes], readonly_cmd: bool) {
    let Some(ops) = parse(ctx, args) else { return };
    let key = &args[1];
    let writes = ops.iter().filter(|o| o.kind != Kind::Get);
    let Some(highest) = writes.map(|o| o.offset + o.bits as u64 - 1).max() else {
        // Only GETs: a missing key reads as zeros.
        let Ok(replies) = read_string(ctx, key, |s| {
            ops.iter().map(|o| get_padded(s.unwrap_or(&[]), o)).collect::<Vec<i64>>()
        }) else {
            return;
        };
        ctx.out.array(replies.len());
        for r in replies {
            ctx.out.int(r);
        }
        return;
    };
    if readonly_cmd {
        return ctx.out.err("BITFIELD_RO only supports the GET subcommand");
    }
    let Some((mut buf, grown)) = write_string(ctx, key, highest) else { return };
    let mut changes = grown as usize;
    let mut replies = Vec::with_capacity(ops.len());
    for o in &ops {
        if o.kind == Kind::Get {
            replies.push(Some(get_padded(&buf, o)));
            continue;
        }
        let old = get_unsigned(&buf, o.offset, o.bits);
        let (overflowed, newval, ret) = if o.signed {
            let old = sign_extend(old, o.bits);
            let (base, incr) = if o.kind == Kind::Incr { (old, o.value) } else { (o.value, 0) };
            let (of, limit) = signed_overflow(base, incr, o.bits, o.overflow);
            let newval = if of { limit } else { base.wrapping_add(incr) };
            (of, newval as u64, if o.kind == Kind::Incr { newval } else { old })
        } else {
            let (base, incr) = if o.kind == Kind::Incr { (old, o.value) } else { (o.value as u64, 0) };
            let (of, limit) = unsigned_overflow(base, incr, o.bits, o.overflow);
            let newval = if of { limit } else { base.wrapping_add(incr as u64) };
            (of, newval, if o.kind == Kind::Incr { newval as i64 } else { old as i64 })
        };
        if overflowed && o.overflow == Overflow::Fail {
            replies.push(None);
            continue;
        }
        replies.push(Some(ret));
        let before = get_unsigned(&buf, o.offset, o.bits);
        set_unsigned(&mut buf, o.offset, o.bits, newval);
        if before != get_unsigned(&buf, o.offset, o.bits) {
            changes += 1;
        }
    }
    store_string(ctx, key, buf);
    if changes > 0 {
        ctx.notify(class::STRING, "setbit", key);
    }
    ctx.out.array(replies.len());
    for r in replies {
        match r {
            Some(v) => ctx.out.int(v),
            None => ctx.out.null(),
        }
    }
}

/// GET over the string as if zero-padded to infinity.
fn get_padded(s: &[u8], o: &Op) -> i64 {
    let byte = (o.offset >> 3) as usize;
    let mut buf = [0u8; 9];
    for (i, b) in buf.iter_mut().enumerate() {
        match s.get(byte + i) {
            Some(&v) => *b = v,
            None => break,
        }
    }
    let v = get_unsigned(&buf, o.offset & 7, o.bits);
    if o.signed {
        sign_extend(v, o.bits)
    } else {
        v as i64
    }
}

fn get_unsigned(p: &[u8], mut offset: u64, bits: u32) -> u64 {
    let mut value = 0u64;
    for _ in 0..bits {
        let byte = p[(offset >> 3) as usize];
        let bit = 7 - (offset & 7);
        value = (value << 1) | ((byte as u64 >> bit) & 1);
        offset += 1;
    }
    value
}

fn set_unsigned(p: &mut [u8], mut offset: u64, bits: u32, value: u64) {
    for j in 0..bits {
        let bitval = (value >> (bits - 1 - j)) & 1;
        let byte = &mut p[(offset >> 3) as usize];
        let bit = 7 - (offset & 7);
        if bitval == 1 {
            *byte |= 1 << bit;
        } else {
            *byte &= !(1 << bit);
        }
        offset += 1;
    }
}

fn sign_extend(v: u64, bits: u32) -> i64 {
    if bits < 64 && v & (1u64 << (bits - 1)) != 0 {
        (v | (u64::MAX << bits)) as i64
    } else {
        v as i64
    }
}

/// Valkey's `checkUnsignedBitfieldOverflow`: whether `value + incr` leaves `bits` bits, and
/// the value WRAP or SAT stores instead.
fn unsigned_overflow(value: u64, incr: i64, bits: u32, ow: Overflow) -> (bool, u64) {
    let max = if bits == 64 { u64::MAX } else { (1u64 << bits) - 1 };
    let maxincr = max.wrapping_sub(value) as i64;
    let minincr = value.wrapping_neg() as i64;
    let wrap = || value.wrapping_add(incr as u64) & !(u64::MAX << bits);
    if value > max || (incr > 0 && incr > maxincr) {
        (true, if ow == Overflow::Wrap { wrap() } else { max })
    } else if incr < 0 && incr < minincr {
        (true, if ow == Overflow::Wrap { wrap() } else { 0 })
    } else {
        (false, 0)
    }
}

/// Valkey's `checkSignedBitfieldOverflow`.
fn signed_overflow(value: i64, incr: i64, bits: u32, ow: Overflow) -> (bool, i64) {
    let max = if bits == 64 { i64::MAX } else { (1i64 << (bits - 1)) - 1 };
    let min = -max - 1;
    let maxincr = (max as u64).wrapping_sub(value as u64) as i64;
    let minincr = min.wrapping_sub(value);
    let wrap = || {
        let mut c = (value as u64).wrapping_add(incr as u64);
        if bits < 64 {
            let mask = u64::MAX << bits;
            if c & (1u64 << (bits - 1)) != 0 {
                c |= mask;
            } else {
                c &= !mask;
            }
        }
        c as i64
    };
    if value > max || (bits != 64 && incr > maxincr) || (value >= 0 && incr > 0 && incr > maxincr) {
        (true, if ow == Overflow::Wrap { wrap() } else { max })
    } else if value < min || (bits != 64 && incr < minincr) || (value < 0 && incr < 0 && incr < minincr) {
        (true, if ow == Overflow::Wrap { wrap() } else { min })
    } else {
        (false, 0)
    }
}
