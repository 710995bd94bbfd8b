//! A small, strict RESP2/RESP3 reply parser for tests: it finds where one reply frame ends
//! (so a client can read exactly one reply) and builds a tree used to compare replies by shape
//! or as sorted multisets. Kept independent of the node's own encoder on purpose, so the tests
//! do not share its bugs.

use std::fmt::Write as _;

/// One parsed reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A line-typed frame: `+` simple, `-` error, `:` integer, `_` null, `#` boolean,
    /// `,` double, `(` big number. Holds the type byte and the text without `\r\n`.
    Line(u8, Vec<u8>),
    /// A length-prefixed frame: `$` bulk, `!` blob error, `=` verbatim. `None` is a null
    /// (`$-1`).
    Blob(u8, Option<Vec<u8>>),
    /// An aggregate: `*` array, `%` map, `~` set, `>` push, `|` attribute. Maps and attributes
    /// hold their keys and values flattened; an attribute also holds the value it annotates as
    /// its last child. `None` is a null array (`*-1`).
    Agg(u8, Option<Vec<Value>>),
}

impl Value {
    /// The RESP type byte.
    pub fn kind(&self) -> u8 {
        match self {
            Value::Line(k, _) | Value::Blob(k, _) | Value::Agg(k, _) => *k,
        }
    }

    /// True for `-` and `!` errors.
    pub fn is_error(&self) -> bool {
        matches!(self.kind(), b'-' | b'!')
    }

    /// Re-encodes the value as RESP (the exact bytes it was parsed from).
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Value::Line(k, text) => {
                out.push(*k);
                out.extend_from_slice(text);
                out.extend_from_slice(b"\r\n");
            }
            Value::Blob(k, None) => {
                out.push(*k);
                out.extend_from_slice(b"-1\r\n");
            }
            Value::Blob(k, Some(data)) => {
                out.push(*k);
                out.extend_from_slice(data.len().to_string().as_bytes());
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(data);
                out.extend_from_slice(b"\r\n");
            }
            Value::Agg(k, None) => {
                out.push(*k);
                out.extend_from_slice(b"-1\r\n");
            }
            Value::Agg(k, Some(kids)) => {
                out.push(*k);
                let n = match k {
                    b'%' => kids.len() / 2,
                    b'|' => kids.len().saturating_sub(1) / 2,
                    _ => kids.len(),
                };
                out.extend_from_slice(n.to_string().as_bytes());
                out.extend_from_slice(b"\r\n");
                for kid in kids {
                    kid.encode(out);
                }
            }
        }
    }

    /// The RESP bytes of the value.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }
}

/// Why bytes are not a valid reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadFrame(pub String);

impl std::fmt::Display for BadFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "malformed reply: {}", self.0)
    }
}

impl std::error::Error for BadFrame {}

/// Parses one reply from the start of `buf`: `Ok(None)` when more bytes are needed, otherwise
/// the value and how many bytes it used.
pub fn parse(buf: &[u8]) -> Result<Option<(Value, usize)>, BadFrame> {
    let mut pos = 0;
    Ok(parse_at(buf, &mut pos, 0)?.map(|v| (v, pos)))
}

/// Nesting deeper than this is treated as garbage rather than recursed into.
const MAX_DEPTH: usize = 64;

fn line(buf: &[u8], pos: usize) -> Option<(&[u8], usize)> {
    let rest = buf.get(pos..)?;
    let cr = rest.windows(2).position(|w| w == b"\r\n")?;
    Some((&rest[..cr], pos + cr + 2))
}

fn int(text: &[u8]) -> Result<i64, BadFrame> {
    std::str::from_utf8(text)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| BadFrame(format!("bad length {:?}", escape(text))))
}

fn parse_at(buf: &[u8], pos: &mut usize, depth: usize) -> Result<Option<Value>, BadFrame> {
    if depth > MAX_DEPTH {
        return Err(BadFrame("nesting too deep".into()));
    }
    let Some(&kind) = buf.get(*pos) else {
        return Ok(None);
    };
    let Some((text, next)) = line(buf, *pos + 1) else {
        return Ok(None);
    };
    match kind {
        b'+' | b'-' | b':' | b'_' | b'#' | b',' | b'(' => {
            *pos = next;
            Ok(Some(Value::Line(kind, text.to_vec())))
        }
        b'$' | b'!' | b'=' => {
            let n = int(text)?;
            if n == -1 && kind == b'$' {
                *pos = next;
                return Ok(Some(Value::Blob(kind, None)));
            }
            let n = usize::try_from(n).map_err(|_| BadFrame(format!("bulk length {n}")))?;
            let end = next + n;
            if buf.len() < end + 2 {
                return Ok(None);
            }
            if &buf[end..end + 2] != b"\r\n" {
                return Err(BadFrame("bulk not terminated by CRLF".into()));
            }
            *pos = end + 2;
            Ok(Some(Value::Blob(kind, Some(buf[next..end].to_vec()))))
        }
        b'*' | b'%' | b'~' | b'>' | b'|' => {
            let n = int(text)?;
            if n == -1 && kind == b'*' {
                *pos = next;
                return Ok(Some(Value::Agg(kind, None)));
            }
            let n = usize::try_from(n).map_err(|_| BadFrame(format!("aggregate length {n}")))?;
            let items = if matches!(kind, b'%' | b'|') { n * 2 } else { n };
            let mut p = next;
            let mut kids = Vec::with_capacity(items.min(4096));
            for _ in 0..items {
                match parse_at(buf, &mut p, depth + 1)? {
                    Some(v) => kids.push(v),
                    None => return Ok(None),
                }
            }
            if kind == b'|' {
                // An attribute annotates the reply that follows it.
                match parse_at(buf, &mut p, depth + 1)? {
                    Some(v) => kids.push(v),
                    None => return Ok(None),
                }
            }
            *pos = p;
            Ok(Some(Value::Agg(kind, Some(kids))))
        }
        other => Err(BadFrame(format!("unknown type byte {:?}", char::from(other)))),
    }
}

/// Encodes a command as a RESP multibulk request.
/// A bulk string reply as text: `$<len>\r\n<s>\r\n`.
pub fn bulk_text(s: &str) -> String {
    format!("${}\r\n{s}\r\n", s.len())
}

pub fn encode_command<A: AsRef<[u8]>>(args: &[A]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + args.iter().map(|a| a.as_ref().len() + 16).sum::<usize>());
    out.push(b'*');
    out.extend_from_slice(args.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
    for a in args {
        let a = a.as_ref();
        out.push(b'$');
        out.extend_from_slice(a.len().to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Bytes as readable text: printable ASCII as is, `\r` `\n` `\t` `\\` `\"` escaped, others as
/// `\xHH`.
pub fn escape(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len());
    for &b in bytes {
        match b {
            b'\r' => s.push_str("\\r"),
            b'\n' => s.push_str("\\n"),
            b'\t' => s.push_str("\\t"),
            b'\\' => s.push_str("\\\\"),
            b'"' => s.push_str("\\\""),
            0x20..=0x7e => s.push(char::from(b)),
            _ => {
                let _ = write!(s, "\\x{b:02x}");
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(raw: &[u8]) -> Value {
        let (v, used) = parse(raw).unwrap().unwrap();
        assert_eq!(used, raw.len(), "{}", escape(raw));
        assert_eq!(v.to_bytes(), raw);
        for cut in 0..raw.len() {
            assert_eq!(parse(&raw[..cut]).unwrap(), None, "cut {cut}");
        }
        v
    }

    #[test]
    fn every_type_roundtrips() {
        for raw in [
            &b"+OK\r\n"[..],
            b"-ERR x\r\n",
            b":-12\r\n",
            b"_\r\n",
            b"#t\r\n",
            b",1.5\r\n",
            b"(123\r\n",
            b"$-1\r\n",
            b"$0\r\n\r\n",
            b"$4\r\na\r\nb\r\n",
            b"!3\r\nERR\r\n",
            b"=7\r\ntxt:abc\r\n",
            b"*-1\r\n",
            b"*0\r\n",
            b"*2\r\n$1\r\na\r\n*1\r\n:1\r\n",
            b"%1\r\n+k\r\n:1\r\n",
            b"~2\r\n+a\r\n+b\r\n",
            b">2\r\n+message\r\n$1\r\nx\r\n",
            b"|1\r\n+ttl\r\n:3\r\n$1\r\nv\r\n",
        ] {
            roundtrip(raw);
        }
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(parse(b"?x\r\n").is_err());
        assert!(parse(b"$2\r\nabcd\r\n").is_err());
        assert!(parse(b"*x\r\n").is_err());
    }

    #[test]
    fn encodes_commands_and_escapes() {
        assert_eq!(encode_command(&["GET", "k"]), b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
        assert_eq!(escape(b"a\r\n\x00\"\\"), "a\\r\\n\\x00\\\"\\\\");
    }
}
