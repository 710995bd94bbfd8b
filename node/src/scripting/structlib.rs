//! `struct` (Roberto Ierusalimschy's lstruct, as Valkey bundles it): `struct.pack(fmt, ...)`,
//! `struct.unpack(fmt, s [, pos])` and `struct.size(fmt)` over binary strings.
//!
//! Format: `<` little-endian, `>` big-endian (`=` native, little here), `!n` alignment,
//! `x` a zero byte, `b`/`B` 1-byte, `h`/`H` 2, `l`/`L` 8, `T` 8, `i`/`I[n]` n bytes (4 by
//! default), `f` float, `d` double, `s` a zero-terminated string, `c[n]` n chars (`c0`: the
//! whole string when packing, the length unpacked just before when unpacking), spaces ignored.

use mlua::{Lua, MultiValue, Table, Value, Variadic};

use super::libs::POSITIONED;

/// Largest integer field.
const MAXINTSIZE: usize = 32;

fn err<T>(msg: impl std::fmt::Display) -> mlua::Result<T> {
    Err(mlua::Error::RuntimeError(format!("{POSITIONED}{msg}")))
}

struct Header {
    little: bool,
    align: usize,
}

/// One parsed option: its letter and size.
struct Opt {
    code: u8,
    size: usize,
}

fn digits(fmt: &[u8], i: &mut usize, default: usize) -> usize {
    if !fmt.get(*i).is_some_and(u8::is_ascii_digit) {
        return default;
    }
    let mut n = 0usize;
    while let Some(d) = fmt.get(*i).filter(|c| c.is_ascii_digit()) {
        n = n.saturating_mul(10).saturating_add((d - b'0') as usize);
        *i += 1;
    }
    n
}

/// The next data option, applying header options on the way; `None` at the end.
fn next_opt(fmt: &[u8], i: &mut usize, h: &mut Header, func: &str) -> mlua::Result<Option<Opt>> {
    while let Some(&c) = fmt.get(*i) {
        *i += 1;
        let size = match c {
            b' ' => continue,
            b'<' | b'=' => {
                h.little = true;
                continue;
            }
            b'>' => {
                h.little = false;
                continue;
            }
            b'!' => {
                let a = digits(fmt, i, 8);
                if !a.is_power_of_two() {
                    return err(format!("alignment {a} is not a power of 2"));
                }
                h.align = a;
                continue;
            }
            b'x' | b'b' | b'B' => 1,
            b'h' | b'H' => 2,
            b'l' | b'L' | b'T' | b'd' => 8,
            b'f' => 4,
            b'i' | b'I' => {
                let n = digits(fmt, i, 4);
                if n > MAXINTSIZE {
                    return err(format!("integral size {n} is larger than limit of {MAXINTSIZE}"));
                }
                n
            }
            b'c' => digits(fmt, i, 1),
            b's' => 0,
            other => {
                return err(format!(
                    "bad argument #1 to '{func}' (invalid format option '{}')",
                    other as char
                ))
            }
        };
        return Ok(Some(Opt { code: c, size }));
    }
    Ok(None)
}

/// Padding before a field of `size` at offset `len` under the header's alignment.
fn gap(len: usize, size: usize, h: &Header, code: u8) -> usize {
    if matches!(code, b'c' | b's' | b'x') || size <= 1 {
        return 0;
    }
    let align = size.min(h.align);
    if align <= 1 {
        return 0;
    }
    (align - (len & (align - 1))) & (align - 1)
}

fn put_int(out: &mut Vec<u8>, v: i64, size: usize, little: bool) {
    let mut bytes = vec![if v < 0 { 0xff } else { 0 }; size];
    let raw = v.to_le_bytes();
    for (k, b) in bytes.iter_mut().enumerate().take(8) {
        *b = raw[k];
    }
    if !little {
        bytes.reverse();
    }
    out.extend_from_slice(&bytes);
}

fn number(v: Option<&Value>, n: usize) -> mlua::Result<f64> {
    match v {
        Some(Value::Integer(i)) => Ok(*i as f64),
        Some(Value::Number(f)) => Ok(*f),
        Some(Value::String(s)) => s
            .to_str()?
            .trim()
            .parse()
            .or_else(|_| err(format!("bad argument #{n} to 'pack' (number expected, got string)"))),
        other => err(format!(
            "bad argument #{n} to 'pack' (number expected, got {})",
            other.map_or("nil", |v| v.type_name())
        )),
    }
}

fn pack(_: &Lua, args: Variadic<Value>) -> mlua::Result<mlua::BString> {
    let Some(Value::String(fmt)) = args.first() else {
        return err("bad argument #1 to 'pack' (string expected)");
    };
    let fmt = fmt.as_bytes().to_vec();
    let mut h = Header { little: true, align: 1 };
    let (mut i, mut arg, mut out) = (0, 1, Vec::new());
    while let Some(o) = next_opt(&fmt, &mut i, &mut h, "pack")? {
        out.resize(out.len() + gap(out.len(), o.size, &h, o.code), 0);
        match o.code {
            b'x' => out.push(0),
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                let n = number(args.get(arg), arg + 1)?;
                arg += 1;
                put_int(&mut out, n as i64, o.size, h.little);
            }
            b'f' => {
                let n = number(args.get(arg), arg + 1)? as f32;
                arg += 1;
                let b = if h.little { n.to_le_bytes() } else { n.to_be_bytes() };
                out.extend_from_slice(&b);
            }
            b'd' => {
                let n = number(args.get(arg), arg + 1)?;
                arg += 1;
                let b = if h.little { n.to_le_bytes() } else { n.to_be_bytes() };
                out.extend_from_slice(&b);
            }
            b'c' | b's' => {
                let Some(Value::String(s)) = args.get(arg) else {
                    return err(format!("bad argument #{} to 'pack' (string expected)", arg + 1));
                };
                arg += 1;
                let s = s.as_bytes();
                let take = if o.code == b'c' && o.size > 0 { o.size } else { s.len() };
                if o.code == b'c' && take > s.len() {
                    return err(format!("bad argument #{} to 'pack' (string too short)", arg + 1));
                }
                out.extend_from_slice(&s[..take]);
                if o.code == b's' {
                    out.push(0);
                }
            }
            _ => {}
        }
    }
    Ok(mlua::BString::from(out))
}

fn get_int(b: &[u8], signed: bool, little: bool) -> f64 {
    let mut v: u64 = 0;
    let n = b.len().min(8);
    let bytes: Vec<u8> =
        if little { b[..n].iter().rev().copied().collect() } else { b[b.len() - n..].to_vec() };
    for x in bytes {
        v = (v << 8) | u64::from(x);
    }
    if signed && n < 8 && n > 0 && v & (1 << (n * 8 - 1)) != 0 {
        v |= u64::MAX << (n * 8);
    }
    if signed {
        v as i64 as f64
    } else {
        v as f64
    }
}

fn unpack(
    lua: &Lua,
    (fmt, data, pos): (mlua::String, mlua::String, Option<i64>),
) -> mlua::Result<MultiValue> {
    let fmt = fmt.as_bytes().to_vec();
    let data = data.as_bytes().to_vec();
    let mut h = Header { little: true, align: 1 };
    let mut at = match pos {
        Some(p) if p >= 1 => (p - 1) as usize,
        Some(_) => return err("offset must be 1 or greater"),
        None => 0,
    };
    let (mut i, mut out, mut last_num) = (0, Vec::new(), None::<f64>);
    while let Some(o) = next_opt(&fmt, &mut i, &mut h, "unpack")? {
        if at > data.len() {
            return err("bad argument #2 to 'unpack' (data string too short)");
        }
        at += gap(at, o.size, &h, o.code);
        let need = |n: usize| -> mlua::Result<()> {
            // Sizes come from the script (a `c0` length can be any unpacked number).
            if at.checked_add(n).is_none_or(|end| end > data.len()) {
                return err("bad argument #2 to 'unpack' (data string too short)");
            }
            Ok(())
        };
        match o.code {
            b'x' => {}
            b'b' | b'h' | b'l' | b'i' | b'B' | b'H' | b'L' | b'T' | b'I' => {
                need(o.size)?;
                let signed = matches!(o.code, b'b' | b'h' | b'l' | b'i');
                let v = get_int(&data[at..at + o.size], signed, h.little);
                last_num = Some(v);
                out.push(if v.fract() == 0.0 && v.abs() < 9.0e15 {
                    Value::Integer(v as i64)
                } else {
                    Value::Number(v)
                });
            }
            b'f' => {
                need(4)?;
                let b: [u8; 4] = data[at..at + 4].try_into().unwrap_or([0; 4]);
                out.push(Value::Number(f64::from(if h.little {
                    f32::from_le_bytes(b)
                } else {
                    f32::from_be_bytes(b)
                })));
            }
            b'd' => {
                need(8)?;
                let b: [u8; 8] = data[at..at + 8].try_into().unwrap_or([0; 8]);
                out.push(Value::Number(if h.little { f64::from_le_bytes(b) } else { f64::from_be_bytes(b) }));
            }
            b'c' => {
                let n = if o.size == 0 {
                    // The length unpacked just before is consumed, not returned.
                    match last_num.take() {
                        Some(n) if n >= 0.0 => {
                            out.pop();
                            n as usize
                        }
                        _ => return err("format 'c0' needs a previous size"),
                    }
                } else {
                    o.size
                };
                need(n)?;
                out.push(Value::String(lua.create_string(&data[at..at + n])?));
                at += n;
                continue;
            }
            b's' => {
                let Some(end) = data[at.min(data.len())..].iter().position(|&b| b == 0) else {
                    return err("unfinished string in data");
                };
                out.push(Value::String(lua.create_string(&data[at..at + end])?));
                at += end + 1;
                continue;
            }
            _ => {}
        }
        at += o.size;
    }
    out.push(Value::Integer(at as i64 + 1));
    Ok(MultiValue::from_iter(out))
}

fn size(_: &Lua, fmt: mlua::String) -> mlua::Result<i64> {
    let fmt = fmt.as_bytes().to_vec();
    let mut h = Header { little: true, align: 1 };
    let (mut i, mut total) = (0, 0usize);
    while let Some(o) = next_opt(&fmt, &mut i, &mut h, "size")? {
        if o.code == b's' || (o.code == b'c' && o.size == 0) {
            return err(format!("bad argument #1 to 'size' (option '{}' has no fixed size)", o.code as char));
        }
        total += gap(total, o.size, &h, o.code) + o.size;
    }
    Ok(total as i64)
}

/// The `struct` table.
pub fn table(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set("pack", lua.create_function(pack)?)?;
    t.raw_set("unpack", lua.create_function(unpack)?)?;
    t.raw_set("size", lua.create_function(size)?)?;
    Ok(t)
}

#[cfg(test)]
mod tests {
    use mlua::Lua;

    #[test]
    fn lengths_from_the_script_never_overflow() {
        let lua = Lua::new();
        lua.globals().set("struct", super::table(&lua).expect("table")).expect("set");
        // An unsigned 8-byte length of 2^64-1 for `c0`: an error, not an overflow.
        let r: mlua::Result<mlua::MultiValue> =
            lua.load("return struct.unpack('L c0', struct.pack('L', -1) .. 'x')").eval();
        assert!(r.is_err_and(|e| e.to_string().contains("data string too short")));
        let r: mlua::Result<mlua::MultiValue> =
            lua.load("return struct.unpack('x s', 'ab', 9000000000)").eval();
        assert!(r.is_err_and(|e| e.to_string().contains("data string too short")));
    }
}
