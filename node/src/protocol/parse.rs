//! Incremental RESP request parser: multibulk (`*N\r\n$len\r\n...`) and inline commands.
//!
//! The parser never copies multibulk arguments: it returns byte ranges into the caller's
//! buffer, and the caller freezes the consumed prefix into a `Bytes` and slices it. State is
//! kept between calls so a huge bulk arriving in many reads is scanned once, not re-parsed on
//! every read. Error texts are exactly Valkey's (`networking.c:processMultibulkBuffer`).

use std::ops::Range;

use super::ProtocolError;

/// Longest inline command or count line accepted, as Valkey's `PROTO_INLINE_MAX_SIZE`.
pub const INLINE_MAX: usize = 64 * 1024;
/// Bulks at least this large are read exactly into their own buffer (`PROTO_MBULK_BIG_ARG`).
pub const BIG_ARG: usize = 32 * 1024;

/// One complete request found at the start of the buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// Arguments as ranges into the buffer; `consumed` bytes make up the request.
    Multibulk { args: Vec<Range<usize>>, consumed: usize },
    /// An inline command: arguments are unescaped copies.
    Inline { args: Vec<Vec<u8>>, consumed: usize },
}

impl Frame {
    /// Bytes of the buffer this request used.
    pub fn consumed(&self) -> usize {
        match self {
            Frame::Multibulk { consumed, .. } | Frame::Inline { consumed, .. } => *consumed,
        }
    }

    /// True for an empty request (`*0\r\n`, `*-1\r\n` or a blank inline line): nothing to run.
    pub fn is_empty(&self) -> bool {
        match self {
            Frame::Multibulk { args, .. } => args.is_empty(),
            Frame::Inline { args, .. } => args.is_empty(),
        }
    }
}

#[derive(Debug, Default, Clone)]
struct Multibulk {
    /// Arguments still expected.
    remaining: usize,
    args: Vec<Range<usize>>,
    /// Where the next `$len` line (or the pending bulk's data) starts.
    pos: usize,
    /// Length of the bulk whose data starts at `pos`, once its header has been read.
    bulk: Option<usize>,
}

/// Limits the parser enforces; they come from the node's configuration.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_bulk_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_bulk_len: 512 * 1024 * 1024 }
    }
}

/// Parser state for one connection.
#[derive(Debug, Default, Clone)]
pub struct Parser {
    multibulk: Option<Multibulk>,
}

impl Parser {
    pub fn new() -> Self {
        Parser::default()
    }

    /// Bytes the parser still needs to finish the bulk it is inside, if it knows; used to size
    /// the next read so a big argument lands in one allocation.
    pub fn pending_bulk(&self, buffered: usize) -> Option<usize> {
        let mb = self.multibulk.as_ref()?;
        let len = mb.bulk?;
        (mb.pos + len + 2).checked_sub(buffered)
    }

    /// True when the parser is in the middle of a request.
    pub fn mid_request(&self) -> bool {
        self.multibulk.is_some()
    }

    /// Parses one request from the start of `buf`. `Ok(None)` means more bytes are needed. After
    /// a `Some`, the caller must drop `frame.consumed()` bytes from the front of `buf` before
    /// calling again. `auth_required` applies Valkey's limits for unauthenticated clients.
    pub fn parse(
        &mut self,
        buf: &[u8],
        limits: Limits,
        auth_required: bool,
    ) -> Result<Option<Frame>, ProtocolError> {
        if self.multibulk.is_none() {
            match buf.first() {
                None => return Ok(None),
                Some(b'*') => {}
                Some(_) => return parse_inline(buf),
            }
            let Some(nl) = find_cr(buf, 1) else {
                if buf.len() > INLINE_MAX {
                    return Err(ProtocolError::BigCount);
                }
                return Ok(None);
            };
            if nl + 1 >= buf.len() {
                return Ok(None);
            }
            let n = parse_i64(&buf[1..nl]).ok_or(ProtocolError::InvalidMultibulkLength)?;
            if n > i32::MAX as i64 {
                return Err(ProtocolError::InvalidMultibulkLength);
            }
            if n > 10 && auth_required {
                return Err(ProtocolError::UnauthenticatedMultibulkLength);
            }
            let consumed = nl + 2;
            if n <= 0 {
                return Ok(Some(Frame::Multibulk { args: Vec::new(), consumed }));
            }
            let n = n as usize;
            self.multibulk = Some(Multibulk {
                remaining: n,
                args: Vec::with_capacity(n.min(1024)),
                pos: consumed,
                bulk: None,
            });
        }
        let Some(mb) = self.multibulk.as_mut() else {
            return Ok(None);
        };
        while mb.remaining > 0 {
            let len = match mb.bulk {
                Some(len) => len,
                None => {
                    let Some(nl) = find_cr(buf, mb.pos) else {
                        if buf.len() - mb.pos > INLINE_MAX {
                            self.multibulk = None;
                            return Err(ProtocolError::BigBulkCount);
                        }
                        return Ok(None);
                    };
                    if nl + 1 >= buf.len() {
                        return Ok(None);
                    }
                    if buf[mb.pos] != b'$' {
                        let got = buf[mb.pos];
                        self.multibulk = None;
                        return Err(ProtocolError::ExpectedDollar(got));
                    }
                    let len = match parse_i64(&buf[mb.pos + 1..nl]) {
                        Some(l) if l >= 0 && (l as u64) <= limits.max_bulk_len as u64 => l as usize,
                        _ => {
                            self.multibulk = None;
                            return Err(ProtocolError::InvalidBulkLength);
                        }
                    };
                    if len > 16384 && auth_required {
                        self.multibulk = None;
                        return Err(ProtocolError::UnauthenticatedBulkLength);
                    }
                    mb.pos = nl + 2;
                    mb.bulk = Some(len);
                    len
                }
            };
            if buf.len() < mb.pos + len + 2 {
                return Ok(None);
            }
            mb.args.push(mb.pos..mb.pos + len);
            mb.pos += len + 2;
            mb.bulk = None;
            mb.remaining -= 1;
        }
        let mb = self.multibulk.take().unwrap_or_default();
        Ok(Some(Frame::Multibulk { args: mb.args, consumed: mb.pos }))
    }
}

fn find_cr(buf: &[u8], from: usize) -> Option<usize> {
    buf.get(from..)?.iter().position(|&b| b == b'\r').map(|p| p + from)
}

/// Valkey's `string2ll` for the count lines: optional `-`, digits, no leading `+`, no spaces.
fn parse_i64(s: &[u8]) -> Option<i64> {
    crate::util::parse_i64(s)
}

fn parse_inline(buf: &[u8]) -> Result<Option<Frame>, ProtocolError> {
    let Some(nl) = buf.iter().position(|&b| b == b'\n') else {
        if buf.len() > INLINE_MAX {
            return Err(ProtocolError::BigInline);
        }
        return Ok(None);
    };
    let mut line = &buf[..nl];
    if line.last() == Some(&b'\r') {
        line = &line[..line.len() - 1];
    }
    let args = split_args(line).ok_or(ProtocolError::UnbalancedQuotes)?;
    Ok(Some(Frame::Inline { args, consumed: nl + 1 }))
}

/// `sdssplitargs`: whitespace-separated words, with "double" (C escapes, `\xHH`) and 'single'
/// quotes. A closing quote must be followed by whitespace or the end of the line.
pub fn split_args(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    let mut i = 0;
    let n = line.len();
    loop {
        while i < n && line[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= n {
            return Some(out);
        }
        let mut cur = Vec::new();
        let mut inq = false;
        let mut insq = false;
        loop {
            if inq {
                if i >= n {
                    return None;
                }
                let c = line[i];
                if c == b'\\'
                    && i + 3 < n
                    && line[i + 1] == b'x'
                    && is_hex(line[i + 2])
                    && is_hex(line[i + 3])
                {
                    cur.push(hex(line[i + 2]) * 16 + hex(line[i + 3]));
                    i += 3;
                } else if c == b'\\' && i + 1 < n {
                    i += 1;
                    cur.push(match line[i] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 8,
                        b'a' => 7,
                        other => other,
                    });
                } else if c == b'"' {
                    if i + 1 < n && !line[i + 1].is_ascii_whitespace() {
                        return None;
                    }
                    i += 1;
                    break;
                } else {
                    cur.push(c);
                }
                i += 1;
            } else if insq {
                if i >= n {
                    return None;
                }
                let c = line[i];
                if c == b'\\' && i + 1 < n && line[i + 1] == b'\'' {
                    i += 1;
                    cur.push(b'\'');
                } else if c == b'\'' {
                    if i + 1 < n && !line[i + 1].is_ascii_whitespace() {
                        return None;
                    }
                    i += 1;
                    break;
                } else {
                    cur.push(c);
                }
                i += 1;
            } else {
                if i >= n {
                    break;
                }
                match line[i] {
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => {
                        i += 1;
                        break;
                    }
                    b'"' => inq = true,
                    b'\'' => insq = true,
                    c => cur.push(c),
                }
                i += 1;
            }
        }
        out.push(cur);
    }
}

fn is_hex(c: u8) -> bool {
    c.is_ascii_hexdigit()
}

fn hex(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => c - b'A' + 10,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(buf: &[u8]) -> Result<Option<Frame>, ProtocolError> {
        Parser::new().parse(buf, Limits::default(), false)
    }

    #[test]
    fn multibulk_whole_and_split() {
        let req = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n";
        let f = one(req).unwrap().unwrap();
        assert_eq!(f, Frame::Multibulk { args: vec![8..11, 17..18], consumed: req.len() });
        for cut in 0..req.len() {
            let mut p = Parser::new();
            assert_eq!(p.parse(&req[..cut], Limits::default(), false).unwrap(), None, "cut {cut}");
            assert_eq!(p.parse(req, Limits::default(), false).unwrap(), Some(f.clone_frame()));
        }
    }

    impl Frame {
        fn clone_frame(&self) -> Frame {
            match self {
                Frame::Multibulk { args, consumed } => {
                    Frame::Multibulk { args: args.clone(), consumed: *consumed }
                }
                Frame::Inline { args, consumed } => Frame::Inline { args: args.clone(), consumed: *consumed },
            }
        }
    }

    #[test]
    fn errors_match_valkey() {
        assert_eq!(one(b"*x\r\n").unwrap_err().to_string(), "Protocol error: invalid multibulk length");
        assert_eq!(one(b"*1\r\n+a\r\n").unwrap_err().to_string(), "Protocol error: expected '$', got '+'");
        assert_eq!(one(b"*1\r\n$-5\r\n").unwrap_err().to_string(), "Protocol error: invalid bulk length");
        assert_eq!(
            one(b"*3000000000\r\n").unwrap_err().to_string(),
            "Protocol error: invalid multibulk length"
        );
        let big = vec![b'a'; INLINE_MAX + 1];
        assert_eq!(one(&big).unwrap_err().to_string(), "Protocol error: too big inline request");
        assert_eq!(
            one(b"set \"a\"b\r\n").unwrap_err().to_string(),
            "Protocol error: unbalanced quotes in request"
        );
    }

    #[test]
    fn empty_requests_are_skipped() {
        assert!(one(b"*0\r\n").unwrap().unwrap().is_empty());
        assert!(one(b"*-1\r\n").unwrap().unwrap().is_empty());
        assert!(one(b"\r\n").unwrap().unwrap().is_empty());
    }

    #[test]
    fn inline_quotes_and_escapes() {
        let f = one(b"set \"a b\" 'c\\'d' \"\\x41\\n\"\r\n").unwrap().unwrap();
        match f {
            Frame::Inline { args, .. } => {
                assert_eq!(args, vec![b"set".to_vec(), b"a b".to_vec(), b"c'd".to_vec(), b"A\n".to_vec()])
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unauthenticated_limits() {
        let mut p = Parser::new();
        let e = p.parse(b"*11\r\n", Limits::default(), true).unwrap_err();
        assert_eq!(e.to_string(), "Protocol error: unauthenticated multibulk length");
        let e = Parser::new().parse(b"*1\r\n$16385\r\n", Limits::default(), true).unwrap_err();
        assert_eq!(e.to_string(), "Protocol error: unauthenticated bulk length");
    }

    #[test]
    fn bulk_over_limit() {
        let e = Parser::new().parse(b"*1\r\n$11\r\n", Limits { max_bulk_len: 10 }, false).unwrap_err();
        assert_eq!(e, ProtocolError::InvalidBulkLength);
    }
}
