//! Conversions between Lua values and replies, with Valkey's rules (`script_lua.c`):
//!
//! | reply (RESP2)   | Lua                     | Lua returned       | reply             |
//! |-----------------|-------------------------|--------------------|-------------------|
//! | integer         | number                  | number             | integer (truncated) |
//! | bulk            | string                  | string             | bulk              |
//! | nil bulk/array  | false                   | false / nil        | nil bulk          |
//! | array           | table (1..n)            | true               | integer 1         |
//! | status          | `{ok=...}`              | array table        | array up to the first nil |
//! | error           | `{err=...}`             | `{ok=}` / `{err=}` | status / error    |
//!
//! RESP3 (after `redis.setresp(3)`): null is nil, maps `{map={...}}`, sets `{set={...}}`,
//! doubles `{double=n}`, booleans booleans, big numbers `{big_number=s}`, verbatim strings
//! `{verbatim_string={format=f, string=s}}`; scripts may return those forms too.

use mlua::{Lua, Table, Value};

use super::resp::Resp;
use crate::protocol::Reply;

/// Nesting beyond this is refused (a table that contains itself would never end).
const MAX_DEPTH: usize = 200;

/// A command's reply as the script sees it.
pub fn to_lua(lua: &Lua, r: Resp, resp3: bool) -> mlua::Result<Value> {
    Ok(match r {
        Resp::Int(n) => Value::Integer(n),
        Resp::Bulk(b) => Value::String(lua.create_string(&b)?),
        Resp::Nil => {
            if resp3 {
                Value::Nil
            } else {
                Value::Boolean(false)
            }
        }
        Resp::Status(s) => one_field(lua, "ok", Value::String(lua.create_string(&s)?))?,
        Resp::Error(e) => one_field(lua, "err", Value::String(lua.create_string(&e)?))?,
        Resp::Array(items) => {
            let t = lua.create_table_with_capacity(items.len(), 0)?;
            for (i, it) in items.into_iter().enumerate() {
                t.raw_set(i + 1, to_lua(lua, it, resp3)?)?;
            }
            Value::Table(t)
        }
        Resp::Set(items) => {
            let inner = lua.create_table()?;
            for it in items {
                inner.raw_set(to_lua(lua, it, resp3)?, true)?;
            }
            one_field(lua, "set", Value::Table(inner))?
        }
        Resp::Map(pairs) => {
            let inner = lua.create_table()?;
            for (k, v) in pairs {
                inner.raw_set(to_lua(lua, k, resp3)?, to_lua(lua, v, resp3)?)?;
            }
            one_field(lua, "map", Value::Table(inner))?
        }
        Resp::Double(d) => one_field(lua, "double", Value::Number(d))?,
        Resp::Bool(b) => Value::Boolean(b),
        Resp::BigNumber(b) => one_field(lua, "big_number", Value::String(lua.create_string(&b)?))?,
        Resp::Verbatim(fmt, text) => {
            let inner = lua.create_table()?;
            inner.raw_set("format", lua.create_string(&fmt)?)?;
            inner.raw_set("string", lua.create_string(&text)?)?;
            one_field(lua, "verbatim_string", Value::Table(inner))?
        }
    })
}

fn one_field(lua: &Lua, name: &str, v: Value) -> mlua::Result<Value> {
    let t = lua.create_table_with_capacity(0, 1)?;
    t.raw_set(name, v)?;
    Ok(Value::Table(t))
}

/// Writes what a script returned as the reply, in the caller's protocol. Booleans follow the
/// script's own protocol (`redis.setresp`, `resp3`), as in Valkey: under RESP2 (the default)
/// true is `:1` and false a null, under RESP3 they are booleans (`:1`/`:0` to a RESP2 caller).
pub fn to_reply(v: &Value, out: &mut Reply, resp3: bool) {
    write(v, out, 0, resp3);
}

fn write(v: &Value, out: &mut Reply, depth: usize, resp3: bool) {
    if depth > MAX_DEPTH {
        out.err("reached lua stack limit");
        return;
    }
    match v {
        Value::Nil => out.null(),
        Value::Boolean(b) if resp3 => out.boolean(*b),
        Value::Boolean(true) => out.int(1),
        Value::Boolean(false) => out.null(),
        Value::Integer(n) => out.int(*n),
        Value::Number(f) => out.int(truncate(*f)),
        Value::String(s) => out.bulk(&s.as_bytes()),
        Value::Table(t) => write_table(t, out, depth, resp3),
        // Functions, userdata, threads: Valkey sends a nil.
        _ => out.null(),
    }
}

fn truncate(f: f64) -> i64 {
    if f.is_nan() {
        i64::MIN
    } else {
        f as i64
    }
}

fn field(t: &Table, name: &str) -> Value {
    t.raw_get::<Value>(name).unwrap_or(Value::Nil)
}

fn write_table(t: &Table, out: &mut Reply, depth: usize, resp3: bool) {
    if let Value::String(e) = field(t, "err") {
        let msg = String::from_utf8_lossy(&e.as_bytes()).replace(['\r', '\n'], " ");
        out.error(&msg);
        return;
    }
    if let Value::String(s) = field(t, "ok") {
        out.simple(&String::from_utf8_lossy(&s.as_bytes()).replace(['\r', '\n'], " "));
        return;
    }
    match field(t, "double") {
        Value::Number(d) => return out.double(d),
        Value::Integer(n) => return out.double(n as f64),
        _ => {}
    }
    if let Value::String(b) = field(t, "big_number") {
        let text = String::from_utf8_lossy(&b.as_bytes()).into_owned();
        if out.resp3 {
            out.raw(format!("({text}\r\n").as_bytes());
        } else {
            out.bulk(text.as_bytes());
        }
        return;
    }
    if let Value::Table(m) = field(t, "map") {
        let pairs: Vec<(Value, Value)> = m.pairs::<Value, Value>().filter_map(Result::ok).collect();
        if out.resp3 {
            out.map(pairs.len());
            for (k, v) in &pairs {
                write(k, out, depth + 1, resp3);
                write(v, out, depth + 1, resp3);
            }
        } else {
            out.array(pairs.len() * 2);
            for (k, v) in &pairs {
                write(k, out, depth + 1, resp3);
                write(v, out, depth + 1, resp3);
            }
        }
        return;
    }
    if let Value::Table(s) = field(t, "set") {
        let members: Vec<Value> = s.pairs::<Value, Value>().filter_map(Result::ok).map(|(k, _)| k).collect();
        if out.resp3 {
            out.set(members.len());
        } else {
            out.array(members.len());
        }
        for m in &members {
            write(m, out, depth + 1, resp3);
        }
        return;
    }
    if let Value::Table(v) = field(t, "verbatim_string") {
        if let (Value::String(f), Value::String(s)) = (field(&v, "format"), field(&v, "string")) {
            let fmt = String::from_utf8_lossy(&f.as_bytes()).into_owned();
            out.verbatim(&s.as_bytes(), &fmt);
            return;
        }
    }
    // An array: elements 1, 2, ... up to the first nil.
    let mut items = Vec::new();
    for i in 1.. {
        match t.raw_get::<Value>(i) {
            Ok(Value::Nil) | Err(_) => break,
            Ok(v) => items.push(v),
        }
    }
    out.array(items.len());
    for it in &items {
        write(it, out, depth + 1, resp3);
    }
}

/// A command argument from a Lua value: strings as they are, numbers as Lua prints them
/// (`%.14g`), anything else refused.
pub fn to_arg(v: &Value) -> Option<bytes::Bytes> {
    match v {
        Value::String(s) => Some(bytes::Bytes::copy_from_slice(&s.as_bytes())),
        Value::Integer(n) => Some(bytes::Bytes::from(n.to_string())),
        Value::Number(f) => Some(bytes::Bytes::from(lua_number(*f))),
        _ => None,
    }
}

/// Lua 5.1's `%.14g` for a number.
pub fn lua_number(f: f64) -> String {
    if f.is_nan() {
        return if f.is_sign_negative() { "-nan".into() } else { "nan".into() };
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if f == f.trunc() && f.abs() < 1e15 {
        return format!("{}", f as i64);
    }
    // %.14g: 14 significant digits, exponent form outside 1e-5..1e14, trailing zeros cut.
    let exp = f.abs().log10().floor() as i32;
    if !(-5..14).contains(&exp) {
        let s = format!("{:.13e}", f);
        let (mant, e) = s.split_once('e').unwrap_or((&s, "0"));
        let mant = mant.trim_end_matches('0').trim_end_matches('.');
        let e: i32 = e.parse().unwrap_or(0);
        return format!("{mant}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs());
    }
    let decimals = (13 - exp).max(0) as usize;
    let s = format!("{:.*}", decimals, f);
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_print_as_lua_5_1() {
        assert_eq!(lua_number(3.0), "3");
        assert_eq!(lua_number(0.1), "0.1");
        assert_eq!(lua_number(-2.5), "-2.5");
        assert_eq!(lua_number(1e15), "1e+15");
        assert_eq!(lua_number(1.0 / 3.0), "0.33333333333333");
        assert_eq!(lua_number(1e-7), "1e-07");
    }
}
