//! The libraries Valkey's Lua carries besides the standard ones, rebuilt in Rust: `cjson`
//! (lua-cjson's encode/decode and `cjson.null`), `bit` (LuaBitOp) and `cmsgpack`
//! (lua-cmsgpack's pack/unpack); `struct` is in `structlib`. Job queues such as BullMQ keep their job options in JSON and
//! msgpack and use these in nearly every script.

use mlua::{LightUserData, Lua, MultiValue, Table, Value, Variadic};

use super::convert::lua_number;

/// Nesting cjson refuses past (lua-cjson's `encode_max_depth`).
const JSON_MAX_DEPTH: usize = 1000;
/// Nesting lua-cmsgpack encodes as nil past.
const MSGPACK_MAX_NESTING: usize = 16;

/// Marks an error raised the way `luaL_error` raises it: the script's position is prepended
/// (see the error handler in `scripting`).
pub const POSITIONED: &str = "\u{1}";

fn err<T>(msg: impl Into<String>) -> mlua::Result<T> {
    Err(mlua::Error::RuntimeError(format!("{POSITIONED}{}", msg.into())))
}

/// `cjson.null`: a light userdata holding NULL, as in lua-cjson.
fn json_null() -> Value {
    Value::LightUserData(LightUserData(std::ptr::null_mut()))
}

/// Registers `cjson`, `bit` and `cmsgpack` as globals.
pub fn register(lua: &Lua) -> mlua::Result<()> {
    let g = lua.globals();
    let cjson = lua.create_table()?;
    cjson.raw_set("null", json_null())?;
    cjson.raw_set(
        "encode",
        lua.create_function(|_, v: Value| {
            let mut out = Vec::new();
            json_encode(&v, &mut out, 0)?;
            Ok(mlua::BString::from(out))
        })?,
    )?;
    cjson.raw_set(
        "decode",
        lua.create_function(|lua, s: mlua::String| {
            let v: serde_json::Value = serde_json::from_slice(&s.as_bytes()).map_err(|e| {
                mlua::Error::RuntimeError(format!("{POSITIONED}Expected value but found invalid token: {e}"))
            })?;
            json_to_lua(lua, &v, 0)
        })?,
    )?;
    g.raw_set("cjson", cjson)?;
    g.raw_set("bit", bit_table(lua)?)?;
    let mp = lua.create_table()?;
    mp.raw_set(
        "pack",
        lua.create_function(|_, args: Variadic<Value>| {
            if args.is_empty() {
                return err("MessagePack pack needs input.");
            }
            let mut out = Vec::new();
            for a in args.iter() {
                mp_encode(a, &mut out, 0);
            }
            Ok(mlua::BString::from(out))
        })?,
    )?;
    mp.raw_set(
        "unpack",
        lua.create_function(|lua, s: mlua::String| {
            let bytes = s.as_bytes();
            let mut pos = 0;
            let mut out = Vec::new();
            while pos < bytes.len() {
                out.push(mp_decode(lua, &bytes, &mut pos, 0)?);
            }
            Ok(MultiValue::from_iter(out))
        })?,
    )?;
    g.raw_set("cmsgpack", mp)?;
    g.raw_set("struct", super::structlib::table(lua)?)?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// cjson

/// A JSON string; bytes that are not escapes pass through as they are (lua-cjson does not
/// check UTF-8).
fn json_string(s: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &b in s {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'/' => out.extend_from_slice(b"\\/"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            8 => out.extend_from_slice(b"\\b"),
            12 => out.extend_from_slice(b"\\f"),
            0..=31 | 127 => out.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

fn json_encode(v: &Value, out: &mut Vec<u8>, depth: usize) -> mlua::Result<()> {
    if depth > JSON_MAX_DEPTH {
        return err(format!("Cannot serialise, excessive nesting ({})", depth));
    }
    match v {
        Value::Nil => out.extend_from_slice(b"null"),
        Value::LightUserData(p) if p.0.is_null() => out.extend_from_slice(b"null"),
        Value::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Integer(n) => out.extend_from_slice(n.to_string().as_bytes()),
        Value::Number(f) => {
            if !f.is_finite() {
                return err("Cannot serialise number: must not be NaN or Inf");
            }
            out.extend_from_slice(lua_number(*f).as_bytes());
        }
        Value::String(s) => json_string(&s.as_bytes(), out),
        Value::Table(t) => match array_len(t)? {
            Some(n) => {
                out.push(b'[');
                for i in 1..=n {
                    if i > 1 {
                        out.push(b',');
                    }
                    json_encode(&t.raw_get::<Value>(i)?, out, depth + 1)?;
                }
                out.push(b']');
            }
            None => {
                out.push(b'{');
                let mut first = true;
                for pair in t.clone().pairs::<Value, Value>() {
                    let (k, val) = pair?;
                    if !first {
                        out.push(b',');
                    }
                    first = false;
                    match &k {
                        Value::String(s) => json_string(&s.as_bytes(), out),
                        Value::Integer(n) => json_string(n.to_string().as_bytes(), out),
                        Value::Number(f) => json_string(lua_number(*f).as_bytes(), out),
                        _ => return err("Cannot serialise table: table key must be a number or string"),
                    }
                    out.push(b':');
                    json_encode(&val, out, depth + 1)?;
                }
                out.push(b'}');
            }
        },
        other => return err(format!("Cannot serialise {}: type not supported", other.type_name())),
    }
    Ok(())
}

/// lua-cjson's array test: every key a positive integer, not excessively sparse (largest key
/// over twice the count and over 10). `None`: an object (an empty table is one too).
fn array_len(t: &Table) -> mlua::Result<Option<usize>> {
    let (mut max, mut count) = (0usize, 0usize);
    for pair in t.clone().pairs::<Value, Value>() {
        let (k, _) = pair?;
        let idx = match k {
            Value::Integer(n) if n >= 1 => n as usize,
            Value::Number(f) if f >= 1.0 && f.fract() == 0.0 => f as usize,
            _ => return Ok(None),
        };
        max = max.max(idx);
        count += 1;
    }
    if count == 0 {
        return Ok(None);
    }
    if max > count * 2 && max > 10 {
        return err("Cannot serialise table: excessively sparse array");
    }
    Ok(Some(max))
}

fn json_to_lua(lua: &Lua, v: &serde_json::Value, depth: usize) -> mlua::Result<Value> {
    if depth > JSON_MAX_DEPTH {
        return err("Found too many nested data structures");
    }
    Ok(match v {
        serde_json::Value::Null => json_null(),
        serde_json::Value::Bool(b) => Value::Boolean(*b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) if i.unsigned_abs() < (1 << 53) => Value::Integer(i),
            _ => Value::Number(n.as_f64().unwrap_or(0.0)),
        },
        serde_json::Value::String(s) => Value::String(lua.create_string(s)?),
        serde_json::Value::Array(items) => {
            let t = lua.create_table_with_capacity(items.len(), 0)?;
            for (i, it) in items.iter().enumerate() {
                t.raw_set(i + 1, json_to_lua(lua, it, depth + 1)?)?;
            }
            Value::Table(t)
        }
        serde_json::Value::Object(map) => {
            let t = lua.create_table_with_capacity(0, map.len())?;
            for (k, val) in map {
                t.raw_set(lua.create_string(k)?, json_to_lua(lua, val, depth + 1)?)?;
            }
            Value::Table(t)
        }
    })
}

// ---------------------------------------------------------------------------------------------
// bit (LuaBitOp: 32-bit operations on Lua numbers)

fn tobit(v: &Value) -> mlua::Result<i32> {
    let f =
        match v {
            Value::Integer(n) => *n as f64,
            Value::Number(f) => *f,
            Value::String(s) => s.to_str()?.trim().parse::<f64>().map_err(|_| {
                mlua::Error::RuntimeError(format!("{POSITIONED}bad argument (number expected)"))
            })?,
            _ => return err("bad argument (number expected)"),
        };
    // Round to the nearest integer, then keep the low 32 bits (two's complement).
    Ok(f.round_ties_even().rem_euclid(4294967296.0) as u32 as i32)
}

fn bit_table(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set("tobit", lua.create_function(|_, v: Value| tobit(&v))?)?;
    t.raw_set("bnot", lua.create_function(|_, v: Value| Ok(!tobit(&v)?))?)?;
    t.raw_set("bswap", lua.create_function(|_, v: Value| Ok(tobit(&v)?.swap_bytes()))?)?;
    let fold = |f: fn(i32, i32) -> i32| {
        move |_: &Lua, args: Variadic<Value>| -> mlua::Result<i32> {
            let mut it = args.iter();
            let Some(first) = it.next() else {
                return err("bad argument #1 (number expected, got no value)");
            };
            let mut acc = tobit(first)?;
            for a in it {
                acc = f(acc, tobit(a)?);
            }
            Ok(acc)
        }
    };
    t.raw_set("band", lua.create_function(fold(|a, b| a & b))?)?;
    t.raw_set("bor", lua.create_function(fold(|a, b| a | b))?)?;
    t.raw_set("bxor", lua.create_function(fold(|a, b| a ^ b))?)?;
    let shift = |f: fn(i32, u32) -> i32| {
        move |_: &Lua, (v, n): (Value, Value)| -> mlua::Result<i32> {
            Ok(f(tobit(&v)?, (tobit(&n)? & 31) as u32))
        }
    };
    t.raw_set("lshift", lua.create_function(shift(|a, n| ((a as u32) << n) as i32))?)?;
    t.raw_set("rshift", lua.create_function(shift(|a, n| ((a as u32) >> n) as i32))?)?;
    t.raw_set("arshift", lua.create_function(shift(|a, n| a >> n))?)?;
    t.raw_set("rol", lua.create_function(shift(|a, n| (a as u32).rotate_left(n) as i32))?)?;
    t.raw_set("ror", lua.create_function(shift(|a, n| (a as u32).rotate_right(n) as i32))?)?;
    t.raw_set(
        "tohex",
        lua.create_function(|_, (v, n): (Value, Option<Value>)| {
            let x = tobit(&v)? as u32;
            let n = match n {
                Some(n) => tobit(&n)?,
                None => 8,
            };
            let upper = n < 0;
            let digits = n.unsigned_abs().min(8) as usize;
            let hex = if upper { format!("{x:08X}") } else { format!("{x:08x}") };
            Ok(hex[8 - digits..].to_string())
        })?,
    )?;
    Ok(t)
}

// ---------------------------------------------------------------------------------------------
// cmsgpack

fn mp_int(n: i64, out: &mut Vec<u8>) {
    match n {
        0..=127 => out.push(n as u8),
        -32..=-1 => out.push(n as i8 as u8),
        128..=0xff => out.extend_from_slice(&[0xcc, n as u8]),
        0x100..=0xffff => {
            out.push(0xcd);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(0xce);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        }
        n if n > 0 => {
            out.push(0xcf);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
        -128..=-33 => out.extend_from_slice(&[0xd0, n as i8 as u8]),
        -32768..=-129 => {
            out.push(0xd1);
            out.extend_from_slice(&(n as i16).to_be_bytes());
        }
        -2_147_483_648..=-32769 => {
            out.push(0xd2);
            out.extend_from_slice(&(n as i32).to_be_bytes());
        }
        _ => {
            out.push(0xd3);
            out.extend_from_slice(&n.to_be_bytes());
        }
    }
}

fn mp_len(len: usize, small: (u8, usize), codes: [u8; 3], out: &mut Vec<u8>) {
    if len < small.1 {
        out.push(small.0 | len as u8);
    } else if codes[0] != 0 && len <= 0xff {
        out.extend_from_slice(&[codes[0], len as u8]);
    } else if len <= 0xffff {
        out.push(codes[1]);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(codes[2]);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
}

fn mp_encode(v: &Value, out: &mut Vec<u8>, depth: usize) {
    match v {
        Value::Nil => out.push(0xc0),
        Value::Boolean(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Integer(n) => mp_int(*n, out),
        Value::Number(f) => {
            if f.fract() == 0.0 && f.is_finite() && f.abs() < 9.2e18 {
                mp_int(*f as i64, out);
            } else if (*f as f32) as f64 == *f {
                out.push(0xca);
                out.extend_from_slice(&(*f as f32).to_be_bytes());
            } else {
                out.push(0xcb);
                out.extend_from_slice(&f.to_be_bytes());
            }
        }
        Value::String(s) => {
            let b = s.as_bytes();
            mp_len(b.len(), (0xa0, 32), [0xd9, 0xda, 0xdb], out);
            out.extend_from_slice(&b);
        }
        Value::Table(t) if depth < MSGPACK_MAX_NESTING => {
            let pairs: Vec<(Value, Value)> =
                t.clone().pairs::<Value, Value>().filter_map(Result::ok).collect();
            let n = pairs.len();
            let is_array = (1..=n).all(|i| t.raw_get::<Value>(i).is_ok_and(|v| !v.is_nil()));
            if is_array && n > 0 {
                mp_len(n, (0x90, 16), [0, 0xdc, 0xdd], out);
                for i in 1..=n {
                    mp_encode(&t.raw_get::<Value>(i).unwrap_or(Value::Nil), out, depth + 1);
                }
            } else {
                mp_len(n, (0x80, 16), [0, 0xde, 0xdf], out);
                for (k, val) in &pairs {
                    mp_encode(k, out, depth + 1);
                    mp_encode(val, out, depth + 1);
                }
            }
        }
        _ => out.push(0xc0),
    }
}

fn take<'a>(b: &'a [u8], pos: &mut usize, n: usize) -> mlua::Result<&'a [u8]> {
    let s = b
        .get(*pos..*pos + n)
        .ok_or_else(|| mlua::Error::RuntimeError(format!("{POSITIONED}Missing bytes in input.")))?;
    *pos += n;
    Ok(s)
}

fn be(b: &[u8]) -> u64 {
    b.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x))
}

fn mp_decode(lua: &Lua, b: &[u8], pos: &mut usize, depth: usize) -> mlua::Result<Value> {
    if depth > 1000 {
        return err("Bad data format in input.");
    }
    let t = take(b, pos, 1)?[0];
    let str_of = |lua: &Lua, pos: &mut usize, n: usize| -> mlua::Result<Value> {
        Ok(Value::String(lua.create_string(take(b, pos, n)?)?))
    };
    Ok(match t {
        0x00..=0x7f => Value::Integer(i64::from(t)),
        0xe0..=0xff => Value::Integer(i64::from(t as i8)),
        0xa0..=0xbf => str_of(lua, pos, (t & 0x1f) as usize)?,
        0x90..=0x9f => mp_array(lua, b, pos, (t & 0x0f) as usize, depth)?,
        0x80..=0x8f => mp_map(lua, b, pos, (t & 0x0f) as usize, depth)?,
        0xc0 => Value::Nil,
        0xc2 => Value::Boolean(false),
        0xc3 => Value::Boolean(true),
        0xc4 | 0xd9 => {
            let n = take(b, pos, 1)?[0] as usize;
            str_of(lua, pos, n)?
        }
        0xc5 | 0xda => {
            let n = be(take(b, pos, 2)?) as usize;
            str_of(lua, pos, n)?
        }
        0xc6 | 0xdb => {
            let n = be(take(b, pos, 4)?) as usize;
            str_of(lua, pos, n)?
        }
        0xca => Value::Number(f64::from(f32::from_bits(be(take(b, pos, 4)?) as u32))),
        0xcb => Value::Number(f64::from_bits(be(take(b, pos, 8)?))),
        0xcc => Value::Integer(be(take(b, pos, 1)?) as i64),
        0xcd => Value::Integer(be(take(b, pos, 2)?) as i64),
        0xce => Value::Integer(be(take(b, pos, 4)?) as i64),
        0xcf => Value::Number(be(take(b, pos, 8)?) as f64),
        0xd0 => Value::Integer(i64::from(be(take(b, pos, 1)?) as u8 as i8)),
        0xd1 => Value::Integer(i64::from(be(take(b, pos, 2)?) as u16 as i16)),
        0xd2 => Value::Integer(i64::from(be(take(b, pos, 4)?) as u32 as i32)),
        0xd3 => Value::Integer(be(take(b, pos, 8)?) as i64),
        0xdc => {
            let n = be(take(b, pos, 2)?) as usize;
            mp_array(lua, b, pos, n, depth)?
        }
        0xdd => {
            let n = be(take(b, pos, 4)?) as usize;
            mp_array(lua, b, pos, n, depth)?
        }
        0xde => {
            let n = be(take(b, pos, 2)?) as usize;
            mp_map(lua, b, pos, n, depth)?
        }
        0xdf => {
            let n = be(take(b, pos, 4)?) as usize;
            mp_map(lua, b, pos, n, depth)?
        }
        _ => return err("Bad data format in input."),
    })
}

fn mp_array(lua: &Lua, b: &[u8], pos: &mut usize, n: usize, depth: usize) -> mlua::Result<Value> {
    // Every element takes at least a byte: a count beyond the input is bad data, not a huge
    // allocation.
    if n > b.len() - *pos {
        return err("Missing bytes in input.");
    }
    let t = lua.create_table_with_capacity(n, 0)?;
    for i in 1..=n {
        t.raw_set(i, mp_decode(lua, b, pos, depth + 1)?)?;
    }
    Ok(Value::Table(t))
}

fn mp_map(lua: &Lua, b: &[u8], pos: &mut usize, n: usize, depth: usize) -> mlua::Result<Value> {
    if n > (b.len() - *pos) / 2 {
        return err("Missing bytes in input.");
    }
    let t = lua.create_table_with_capacity(0, n)?;
    for _ in 0..n {
        let k = mp_decode(lua, b, pos, depth + 1)?;
        let v = mp_decode(lua, b, pos, depth + 1)?;
        if !k.is_nil() {
            t.raw_set(k, v)?;
        }
    }
    Ok(Value::Table(t))
}
