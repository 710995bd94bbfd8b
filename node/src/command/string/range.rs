//! APPEND, STRLEN, GETRANGE/SUBSTR and SETRANGE: byte-level access to string values. Writes
//! modify the stored buffer in place (keeping the TTL) and store a plain, non-integer string,
//! as Valkey's `dbUnshareStringValue` does.

use bytes::Bytes;

use super::{check_string_length, read_and_out, take_bytes_mut, write_and_out};
use crate::exec::{Ctx, WRONGTYPE};
use crate::keyspace::value::StrRef;
use crate::keyspace::Value;

pub fn append(ctx: &mut Ctx, args: &[Bytes]) {
    let (key, tail) = (&args[1], &args[2]);
    let clock = ctx.clock();
    let (e, out, config) = write_and_out(ctx, key);
    let Some(mut e) = e else {
        out.int(tail.len() as i64);
        ctx.db().set(key, Value::from_bytes(tail), None, clock);
        return;
    };
    let Some(len) = e.value().as_string().map(|s| s.len()) else {
        return out.error(WRONGTYPE);
    };
    if !check_string_length(out, config, len as u64, tail.len() as u64) {
        return;
    }
    let mut old = e.take_value();
    let mut buf = take_bytes_mut(&mut old);
    buf.extend_from_slice(tail);
    out.int(buf.len() as i64);
    e.set_value_raw(Value::Str(buf.freeze()));
}

pub fn strlen(ctx: &mut Ctx, args: &[Bytes]) {
    let (e, out) = read_and_out(ctx, &args[1]);
    match e.as_ref().map(|e| e.value().as_string()) {
        None => out.int(0),
        Some(Some(s)) => out.int(s.len() as i64),
        Some(None) => out.error(WRONGTYPE),
    }
}

pub fn getrange(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(start) = ctx.arg_i64(&args[2]) else {
        return;
    };
    let Some(end) = ctx.arg_i64(&args[3]) else {
        return;
    };
    let (e, out) = read_and_out(ctx, &args[1]);
    let Some(e) = e else {
        return out.bulk(b"");
    };
    let mut digits = itoa::Buffer::new();
    let s: &[u8] = match e.value().as_string() {
        None => return out.error(WRONGTYPE),
        Some(StrRef::Bytes(b)) => b,
        Some(StrRef::Int(n)) => digits.format(n).as_bytes(),
    };
    match clamp_range(s.len() as i64, start, end) {
        Some((from, to)) => out.bulk(&s[from..=to]),
        None => out.bulk(b""),
    }
}

/// GETRANGE's index rules: negative indexes count from the end, both ends are clamped, and a
/// range that is empty after clamping (or two negative indexes in the wrong order) is `None`.
fn clamp_range(len: i64, mut start: i64, mut end: i64) -> Option<(usize, usize)> {
    if start < 0 && end < 0 && start > end {
        return None;
    }
    if start < 0 {
        start += len;
    }
    if end < 0 {
        end += len;
    }
    start = start.max(0);
    end = end.max(0);
    if end >= len {
        end = len - 1;
    }
    if start > end || len == 0 {
        return None;
    }
    Some((start as usize, end as usize))
}

pub fn setrange(ctx: &mut Ctx, args: &[Bytes]) {
    let (key, value) = (&args[1], &args[3]);
    let Some(offset) = ctx.arg_i64(&args[2]) else {
        return;
    };
    if offset < 0 {
        return ctx.out.err("offset is out of range");
    }
    let clock = ctx.clock();
    let (e, out, config) = write_and_out(ctx, key);
    let Some(mut e) = e else {
        if value.is_empty() {
            return out.int(0);
        }
        if !check_string_length(out, config, offset as u64, value.len() as u64) {
            return;
        }
        let offset = offset as usize;
        let mut buf = vec![0u8; offset + value.len()];
        buf[offset..].copy_from_slice(value);
        out.int(buf.len() as i64);
        ctx.db().set_raw(key, Value::Str(Bytes::from(buf)), None, clock);
        return;
    };
    let Some(len) = e.value().as_string().map(|s| s.len()) else {
        return out.error(WRONGTYPE);
    };
    if value.is_empty() {
        return out.int(len as i64);
    }
    if !check_string_length(out, config, offset as u64, value.len() as u64) {
        return;
    }
    let (offset, end) = (offset as usize, offset as usize + value.len());
    let mut old = e.take_value();
    let mut buf = take_bytes_mut(&mut old);
    if buf.len() < end {
        buf.resize(end, 0);
    }
    buf[offset..end].copy_from_slice(value);
    out.int(buf.len() as i64);
    e.set_value_raw(Value::Str(buf.freeze()));
}

#[cfg(test)]
mod tests {
    use super::clamp_range;

    #[test]
    fn ranges_follow_valkey() {
        assert_eq!(clamp_range(5, 0, -1), Some((0, 4)));
        assert_eq!(clamp_range(5, -3, -1), Some((2, 4)));
        assert_eq!(clamp_range(5, -1, -3), None);
        assert_eq!(clamp_range(5, 10, 20), None);
        assert_eq!(clamp_range(5, -100, 100), Some((0, 4)));
        assert_eq!(clamp_range(0, 0, -1), None);
        assert_eq!(clamp_range(5, i64::MIN, i64::MAX), Some((0, 4)));
        assert_eq!(clamp_range(5, 3, 2), None);
    }
}
