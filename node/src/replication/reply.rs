//! Reads back the reply a command produced, for the few commands whose stream form depends on
//! what they returned (SPOP's members, INCRBYFLOAT's result, the key a blocking pop served).
//! Only what those replies use: bulk strings, arrays (RESP2 and RESP3), nulls, doubles.

/// One reply value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Bulk(Vec<u8>),
    Array(Vec<Value>),
    Other,
}

impl Value {
    pub fn bulk(self) -> Option<Vec<u8>> {
        match self {
            Value::Bulk(b) => Some(b),
            _ => None,
        }
    }

    /// The first element of an array, as a bulk string.
    pub fn first_bulk(self) -> Option<Vec<u8>> {
        match self {
            Value::Array(mut items) if !items.is_empty() => items.swap_remove(0).bulk(),
            _ => None,
        }
    }
}

/// Parses the first value of `buf`; `None` if it is cut short or malformed.
pub fn parse(buf: &[u8]) -> Option<Value> {
    let mut pos = 0;
    value(buf, &mut pos, 0)
}

fn line<'a>(buf: &'a [u8], pos: &mut usize) -> Option<&'a [u8]> {
    let rest = buf.get(*pos..)?;
    let end = rest.windows(2).position(|w| w == b"\r\n")?;
    *pos += end + 2;
    Some(&rest[..end])
}

fn value(buf: &[u8], pos: &mut usize, depth: usize) -> Option<Value> {
    if depth > 8 {
        return None;
    }
    let kind = *buf.get(*pos)?;
    *pos += 1;
    let head = line(buf, pos)?;
    match kind {
        b'$' => {
            let n: i64 = std::str::from_utf8(head).ok()?.parse().ok()?;
            if n < 0 {
                return Some(Value::Other);
            }
            let n = n as usize;
            let data = buf.get(*pos..pos.checked_add(n)?)?.to_vec();
            *pos += n + 2;
            Some(Value::Bulk(data))
        }
        b'*' | b'~' | b'>' => {
            let n: i64 = std::str::from_utf8(head).ok()?.parse().ok()?;
            if n < 0 {
                return Some(Value::Other);
            }
            let mut items = Vec::new();
            for _ in 0..n {
                items.push(value(buf, pos, depth + 1)?);
            }
            Some(Value::Array(items))
        }
        b',' | b'+' | b':' => Some(Value::Bulk(head.to_vec())),
        _ => Some(Value::Other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_bulks_arrays_and_rejects_truncation() {
        assert_eq!(parse(b"$3\r\nabc\r\n"), Some(Value::Bulk(b"abc".to_vec())));
        assert_eq!(
            parse(b"*2\r\n$1\r\nk\r\n*1\r\n$1\r\nv\r\n"),
            Some(Value::Array(vec![
                Value::Bulk(b"k".to_vec()),
                Value::Array(vec![Value::Bulk(b"v".to_vec())])
            ]))
        );
        assert_eq!(parse(b"*2\r\n$1\r\nk\r\n"), None);
        assert_eq!(parse(b"$5\r\nab"), None);
        assert_eq!(parse(b"$-1\r\n"), Some(Value::Other));
        assert_eq!(parse(b""), None);
    }
}
