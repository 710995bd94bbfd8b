//! One reply, parsed from the bytes a command wrote, so a script's `redis.call` can hand it
//! to Lua. Only complete replies produced by this node are parsed, so a malformed frame is a
//! bug, reported as an error value rather than a panic.

/// A parsed reply (RESP2 and RESP3 types).
#[derive(Debug, Clone, PartialEq)]
pub enum Resp {
    Status(Vec<u8>),
    Error(Vec<u8>),
    Int(i64),
    Bulk(Vec<u8>),
    /// A RESP2 nil bulk or nil array (`$-1`, `*-1`), or RESP3 `_`.
    Nil,
    Array(Vec<Resp>),
    Map(Vec<(Resp, Resp)>),
    Set(Vec<Resp>),
    Double(f64),
    Bool(bool),
    BigNumber(Vec<u8>),
    Verbatim(Vec<u8>, Vec<u8>),
}

/// Parses the first reply in `buf`.
pub fn parse(buf: &[u8]) -> Resp {
    let mut pos = 0;
    value(buf, &mut pos, 0).unwrap_or_else(|| Resp::Error(b"ERR internal error: unparsable reply".to_vec()))
}

fn line<'a>(buf: &'a [u8], pos: &mut usize) -> Option<&'a [u8]> {
    let rest = buf.get(*pos..)?;
    let end = rest.windows(2).position(|w| w == b"\r\n")?;
    *pos += end + 2;
    Some(&rest[..end])
}

fn num(b: &[u8]) -> Option<i64> {
    std::str::from_utf8(b).ok()?.parse().ok()
}

fn value(buf: &[u8], pos: &mut usize, depth: usize) -> Option<Resp> {
    if depth > 1000 {
        return None;
    }
    let kind = *buf.get(*pos)?;
    *pos += 1;
    let head = line(buf, pos)?;
    Some(match kind {
        b'+' => Resp::Status(head.to_vec()),
        b'-' => Resp::Error(head.to_vec()),
        b':' => Resp::Int(num(head)?),
        b'_' => Resp::Nil,
        b'#' => Resp::Bool(head == b"t"),
        b',' => Resp::Double(parse_double(head)?),
        b'(' => Resp::BigNumber(head.to_vec()),
        b'$' | b'=' | b'!' => {
            let n = num(head)?;
            if n < 0 {
                return Some(Resp::Nil);
            }
            let n = n as usize;
            let data = buf.get(*pos..*pos + n)?.to_vec();
            *pos += n + 2;
            match kind {
                b'!' => Resp::Error(data),
                b'=' => {
                    let (fmt, text) = if data.len() >= 4 {
                        (data[..3].to_vec(), data[4..].to_vec())
                    } else {
                        (b"txt".to_vec(), data)
                    };
                    Resp::Verbatim(fmt, text)
                }
                _ => Resp::Bulk(data),
            }
        }
        b'*' | b'~' | b'>' => {
            let n = num(head)?;
            if n < 0 {
                return Some(Resp::Nil);
            }
            let mut items = Vec::with_capacity((n as usize).min(1024));
            for _ in 0..n {
                items.push(value(buf, pos, depth + 1)?);
            }
            if kind == b'~' {
                Resp::Set(items)
            } else {
                Resp::Array(items)
            }
        }
        b'%' => {
            let n = num(head)?.max(0);
            let mut items = Vec::with_capacity((n as usize).min(1024));
            for _ in 0..n {
                let k = value(buf, pos, depth + 1)?;
                let v = value(buf, pos, depth + 1)?;
                items.push((k, v));
            }
            Resp::Map(items)
        }
        _ => return None,
    })
}

fn parse_double(b: &[u8]) -> Option<f64> {
    match b {
        b"inf" => Some(f64::INFINITY),
        b"-inf" => Some(f64::NEG_INFINITY),
        b"nan" => Some(f64::NAN),
        _ => std::str::from_utf8(b).ok()?.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type() {
        assert_eq!(parse(b"+OK\r\n"), Resp::Status(b"OK".to_vec()));
        assert_eq!(parse(b":-7\r\n"), Resp::Int(-7));
        assert_eq!(parse(b"$-1\r\n"), Resp::Nil);
        assert_eq!(
            parse(b"*2\r\n$1\r\na\r\n*-1\r\n"),
            Resp::Array(vec![Resp::Bulk(b"a".to_vec()), Resp::Nil])
        );
        assert_eq!(
            parse(b"%1\r\n+k\r\n,1.5\r\n"),
            Resp::Map(vec![(Resp::Status(b"k".to_vec()), Resp::Double(1.5))])
        );
        assert_eq!(parse(b"=7\r\ntxt:abc\r\n"), Resp::Verbatim(b"txt".to_vec(), b"abc".to_vec()));
        assert!(matches!(parse(b"$5\r\nab"), Resp::Error(_)), "truncated");
    }
}
