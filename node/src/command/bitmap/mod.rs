//! Bitmaps: SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP, BITFIELD and BITFIELD_RO, ported from
//! Valkey 8's `bitops.c` with its argument checks in the same order and the same error texts.
//!
//! Bitmaps are plain strings: reads work on any string value (an integer-encoded one is read
//! as its decimal digits, as Valkey's `getObjectReadOnlyString` does) and writes store a raw
//! string, as `dbUnshareStringValue` does. Bit 0 is the most significant bit of byte 0.
//! `count` holds BITCOUNT/BITPOS, `field` BITFIELD.

mod count;
mod field;
#[cfg(test)]
mod tests;

use bytes::Bytes;

use super::Handler;
use crate::exec::notify::class;
use crate::exec::Ctx;
use crate::keyspace::value::StrRef;
use crate::keyspace::Value;

pub fn handler(name: &str) -> Option<Handler> {
    Some(match name {
        "setbit" => setbit,
        "getbit" => getbit,
        "bitcount" => count::bitcount,
        "bitpos" => count::bitpos,
        "bitop" => bitop,
        "bitfield" => field::bitfield,
        "bitfield_ro" => field::bitfield_ro,
        _ => return None,
    })
}

const OFFSET_ERR: &str = "bit offset is not an integer or out of range";
/// Reply when a huge offset (possible with a raised `proto-max-bulk-len`) cannot be allocated:
/// Valkey would abort the process there; Shoal refuses the command instead.
const NO_MEMORY: &str = "string exceeds available memory";

/// Valkey's `getBitOffsetFromArgument`: a bit offset, or with `hash` a `#N` offset counted in
/// units of `bits`; negative or beyond `proto-max-bulk-len` bytes is an error.
fn bit_offset(ctx: &mut Ctx, arg: &[u8], hash: bool, bits: u32) -> Option<u64> {
    let usehash = hash && arg.len() > 1 && arg[0] == b'#';
    let parsed = crate::util::parse_i64(&arg[usehash as usize..]);
    let max_bulk = ctx.srv.config.get_i64("proto-max-bulk-len");
    let off = parsed.map(|v| if usehash { v.wrapping_mul(bits as i64) } else { v });
    match off {
        Some(v) if v >= 0 && (v >> 3) < max_bulk => Some(v as u64),
        _ => {
            ctx.out.err(OFFSET_ERR);
            None
        }
    }
}

/// Runs `f` over the bytes of the string at `key` (`None` when missing), after a read lookup.
/// `Err(())` (with WRONGTYPE replied) when the key holds another type.
fn read_string<R>(ctx: &mut Ctx, key: &[u8], f: impl FnOnce(Option<&[u8]>) -> R) -> Result<R, ()> {
    let Some(e) = ctx.lookup_read(key) else {
        return Ok(f(None));
    };
    let r = match e.value().as_string() {
        None => None,
        Some(StrRef::Bytes(b)) => Some(f(Some(b))),
        Some(StrRef::Int(n)) => Some(f(Some(itoa::Buffer::new().format(n).as_bytes()))),
    };
    r.ok_or_else(|| ctx.wrong_type())
}

/// Valkey's `lookupStringForBitCommand`: the string at `key` as a buffer of at least
/// `maxbit / 8 + 1` bytes (zero-padded, created when missing). `None` (WRONGTYPE replied) for
/// other types. The flag says whether the key was created or grown.
fn write_string(ctx: &mut Ctx, key: &[u8], maxbit: u64) -> Option<(Vec<u8>, bool)> {
    let need = (maxbit >> 3) as usize + 1;
    let Some(e) = ctx.lookup_write(key) else {
        let mut buf = Vec::new();
        if buf.try_reserve_exact(need).is_err() {
            ctx.out.err(NO_MEMORY);
            return None;
        }
        buf.resize(need, 0);
        return Some((buf, true));
    };
    let len = match e.value().as_string() {
        None => {
            ctx.wrong_type();
            return None;
        }
        Some(s) => s.len(),
    };
    // Check the allocation before the value is taken out, so a refusal loses nothing.
    if need > len && Vec::<u8>::new().try_reserve_exact(need).is_err() {
        ctx.out.err(NO_MEMORY);
        return None;
    }
    let mut e = ctx.lookup_write(key)?;
    let mut buf = match e.value().as_string() {
        None => return None,
        Some(StrRef::Int(n)) => itoa::Buffer::new().format(n).as_bytes().to_vec(),
        Some(StrRef::Bytes(_)) => match e.take_value() {
            Value::Str(b) => Vec::from(b),
            _ => Vec::new(),
        },
    };
    let grown = buf.len() < need;
    if grown {
        buf.resize(need, 0);
    }
    Some((buf, grown))
}

/// Stores a buffer built by `write_string` back as a raw string, keeping the key's TTL.
fn store_string(ctx: &mut Ctx, key: &[u8], buf: Vec<u8>) {
    let clock = ctx.clock();
    let value = Value::Str(Bytes::from(buf));
    let old = match ctx.lookup_write(key) {
        Some(mut e) => e.set_value_raw(value),
        None => ctx.db().set_raw(key, value, None, clock),
    };
    if let Some(old) = old {
        ctx.free_later(old);
    }
}

fn setbit(ctx: &mut Ctx, args: &[Bytes]) {
    let key = &args[1];
    let Some(offset) = bit_offset(ctx, &args[2], false, 0) else { return };
    const BIT_ERR: &str = "bit is not an integer or out of range";
    let on = match crate::util::parse_i64(&args[3]) {
        Some(v @ (0 | 1)) => v == 1,
        _ => return ctx.out.err(BIT_ERR),
    };
    let Some((mut buf, grown)) = write_string(ctx, key, offset) else { return };
    let byte = (offset >> 3) as usize;
    let mask = 1u8 << (7 - (offset & 7));
    let was = buf[byte] & mask != 0;
    if on {
        buf[byte] |= mask;
    } else {
        buf[byte] &= !mask;
    }
    store_string(ctx, key, buf);
    if grown || was != on {
        ctx.notify(class::STRING, "setbit", key);
    }
    ctx.out.int(was as i64);
}

fn getbit(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(offset) = bit_offset(ctx, &args[2], false, 0) else { return };
    let byte = (offset >> 3) as usize;
    let mask = 1u8 << (7 - (offset & 7));
    if let Ok(bit) =
        read_string(ctx, &args[1], |s| s.and_then(|s| s.get(byte)).is_some_and(|b| b & mask != 0))
    {
        ctx.out.int(bit as i64);
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    And,
    Or,
    Xor,
    Not,
}

fn bitop(ctx: &mut Ctx, args: &[Bytes]) {
    let name = &args[1];
    let op = if name.eq_ignore_ascii_case(b"and") {
        Op::And
    } else if name.eq_ignore_ascii_case(b"or") {
        Op::Or
    } else if name.eq_ignore_ascii_case(b"xor") {
        Op::Xor
    } else if name.eq_ignore_ascii_case(b"not") {
        Op::Not
    } else {
        return ctx.syntax_error();
    };
    if op == Op::Not && args.len() != 4 {
        return ctx.out.err("BITOP NOT must be called with a single source key.");
    }
    let target = &args[2];
    let mut sources: Vec<Option<Vec<u8>>> = Vec::with_capacity(args.len() - 3);
    for key in &args[3..] {
        match read_string(ctx, key, |s| s.map(<[u8]>::to_vec)) {
            Ok(s) => sources.push(s),
            Err(()) => return,
        }
    }
    let maxlen = sources.iter().map(|s| s.as_ref().map_or(0, Vec::len)).max().unwrap_or(0);
    if maxlen == 0 {
        let old = ctx.db().remove(target);
        if let Some(old) = old {
            ctx.free_later(old);
            ctx.notify(class::GENERIC, "del", target);
        }
        return ctx.out.int(0);
    }
    let byte = |s: &Option<Vec<u8>>, i: usize| s.as_ref().and_then(|s| s.get(i)).copied().unwrap_or(0);
    let mut res = vec![0u8; maxlen];
    for (i, r) in res.iter_mut().enumerate() {
        let mut out = byte(&sources[0], i);
        if op == Op::Not {
            out = !out;
        }
        for s in &sources[1..] {
            let b = byte(s, i);
            match op {
                Op::And => out &= b,
                Op::Or => out |= b,
                Op::Xor => out ^= b,
                Op::Not => {}
            }
        }
        *r = out;
    }
    let clock = ctx.clock();
    if let Some(old) = ctx.db().set_raw(target, Value::Str(Bytes::from(res)), None, clock) {
        ctx.free_later(old);
    }
    ctx.notify(class::STRING, "set", target);
    ctx.out.int(maxlen as i64);
}
