//! Reply encoder. Commands append typed replies; the encoder writes RESP2 or RESP3 framing
//! according to the client's protocol, the way Valkey's `addReply*` family does (RESP3 types
//! degrade to their RESP2 equivalents: maps to flat arrays, doubles to bulk strings, ...).

use bytes::{BufMut, BytesMut};

/// Reply buffer for one client's batch of commands.
#[derive(Debug, Default)]
pub struct Reply {
    pub buf: BytesMut,
    pub resp3: bool,
}

impl Reply {
    pub fn new(resp3: bool) -> Self {
        Reply { buf: BytesMut::with_capacity(16 * 1024), resp3 }
    }

    #[inline]
    fn line(&mut self, prefix: u8, n: i64) {
        self.buf.put_u8(prefix);
        let mut b = itoa::Buffer::new();
        self.buf.extend_from_slice(b.format(n).as_bytes());
        self.buf.extend_from_slice(b"\r\n");
    }

    pub fn ok(&mut self) {
        self.buf.extend_from_slice(b"+OK\r\n");
    }

    /// `+text`: the text must not contain CR or LF.
    pub fn simple(&mut self, s: &str) {
        self.buf.put_u8(b'+');
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.extend_from_slice(b"\r\n");
    }

    /// An error reply; `msg` starts with its code (`ERR ...`, `WRONGTYPE ...`). Newlines are
    /// replaced by spaces as Valkey's `addReplyErrorLength` does, so the frame stays valid.
    pub fn error(&mut self, msg: &str) {
        self.buf.put_u8(b'-');
        for &b in msg.as_bytes() {
            self.buf.put_u8(if b == b'\r' || b == b'\n' { b' ' } else { b });
        }
        self.buf.extend_from_slice(b"\r\n");
    }

    /// `-ERR msg`.
    pub fn err(&mut self, msg: &str) {
        self.buf.extend_from_slice(b"-ERR ");
        self.error_tail(msg);
    }

    fn error_tail(&mut self, msg: &str) {
        for &b in msg.as_bytes() {
            self.buf.put_u8(if b == b'\r' || b == b'\n' { b' ' } else { b });
        }
        self.buf.extend_from_slice(b"\r\n");
    }

    pub fn int(&mut self, n: i64) {
        self.line(b':', n);
    }

    pub fn bulk(&mut self, data: &[u8]) {
        self.line(b'$', data.len() as i64);
        self.buf.extend_from_slice(data);
        self.buf.extend_from_slice(b"\r\n");
    }

    pub fn bulk_str(&mut self, s: &str) {
        self.bulk(s.as_bytes());
    }

    /// An integer sent as a bulk string (e.g. a value stored with integer encoding).
    pub fn bulk_i64(&mut self, n: i64) {
        let mut b = itoa::Buffer::new();
        self.bulk(b.format(n).as_bytes());
    }

    /// The null bulk string: `$-1` in RESP2, `_` in RESP3.
    pub fn null(&mut self) {
        if self.resp3 {
            self.buf.extend_from_slice(b"_\r\n");
        } else {
            self.buf.extend_from_slice(b"$-1\r\n");
        }
    }

    /// The null array: `*-1` in RESP2, `_` in RESP3.
    pub fn null_array(&mut self) {
        if self.resp3 {
            self.buf.extend_from_slice(b"_\r\n");
        } else {
            self.buf.extend_from_slice(b"*-1\r\n");
        }
    }

    pub fn array(&mut self, len: usize) {
        self.line(b'*', len as i64);
    }

    /// A map of `len` pairs; a flat array of `2 * len` items in RESP2.
    pub fn map(&mut self, len: usize) {
        if self.resp3 {
            self.line(b'%', len as i64);
        } else {
            self.line(b'*', 2 * len as i64);
        }
    }

    /// A set; an array in RESP2.
    pub fn set(&mut self, len: usize) {
        self.line(if self.resp3 { b'~' } else { b'*' }, len as i64);
    }

    /// A push message (pub/sub); an array in RESP2.
    pub fn push(&mut self, len: usize) {
        self.line(if self.resp3 { b'>' } else { b'*' }, len as i64);
    }

    /// A boolean: `#t`/`#f` in RESP3, `:1`/`:0` in RESP2.
    pub fn boolean(&mut self, v: bool) {
        if self.resp3 {
            self.buf.extend_from_slice(if v { b"#t\r\n" } else { b"#f\r\n" });
        } else {
            self.int(v as i64);
        }
    }

    /// A double: `,x` in RESP3, a bulk string in RESP2, formatted as Valkey's `addReplyDouble`.
    pub fn double(&mut self, v: f64) {
        let s = format_double(v);
        if self.resp3 {
            self.buf.put_u8(b',');
            self.buf.extend_from_slice(s.as_bytes());
            self.buf.extend_from_slice(b"\r\n");
        } else {
            self.bulk(s.as_bytes());
        }
    }

    /// A verbatim string (`=len\r\ntxt:...`) in RESP3, a bulk string in RESP2.
    pub fn verbatim(&mut self, text: &[u8], format: &str) {
        if self.resp3 {
            self.line(b'=', (text.len() + 4) as i64);
            self.buf.extend_from_slice(format.as_bytes());
            self.buf.put_u8(b':');
            self.buf.extend_from_slice(text);
            self.buf.extend_from_slice(b"\r\n");
        } else {
            self.bulk(text);
        }
    }

    /// Raw, already-encoded bytes.
    pub fn raw(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn truncate(&mut self, len: usize) {
        self.buf.truncate(len);
    }
}

/// Valkey's reply format for doubles: `inf`, `-inf`, `nan`, integers without a fraction when
/// exactly integral and small, otherwise the shortest representation that round-trips.
pub fn format_double(v: f64) -> String {
    if v.is_infinite() {
        return if v > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if v.is_nan() {
        return "nan".into();
    }
    let s = format!("{v}");
    // Rust never prints exponents for Display; Valkey switches to %e style for large/small
    // magnitudes (fpconv_dtoa). Match it for those ranges.
    if v != 0.0 && (v.abs() >= 1e21 || v.abs() < 1e-5) {
        return format_exp(v);
    }
    s
}

fn format_exp(v: f64) -> String {
    let s = format!("{v:e}");
    // Rust gives `1e21` / `1.5e-7`; fpconv gives `1e+21` / `1.5e-07`.
    match s.split_once('e') {
        Some((m, e)) => {
            let (sign, digits) = match e.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', e),
            };
            if digits.len() < 2 {
                format!("{m}e{sign}0{digits}")
            } else {
                format!("{m}e{sign}{digits}")
            }
        }
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resp2_and_resp3_framing() {
        let mut r = Reply::new(false);
        r.null();
        r.map(1);
        r.boolean(true);
        r.double(1.5);
        assert_eq!(&r.buf[..], b"$-1\r\n*2\r\n:1\r\n$3\r\n1.5\r\n");
        let mut r = Reply::new(true);
        r.null();
        r.map(1);
        r.boolean(true);
        r.double(1.5);
        r.verbatim(b"hi", "txt");
        assert_eq!(&r.buf[..], b"_\r\n%1\r\n#t\r\n,1.5\r\n=6\r\ntxt:hi\r\n");
    }

    #[test]
    fn errors_never_break_framing() {
        let mut r = Reply::new(false);
        r.err("a\r\nb");
        assert_eq!(&r.buf[..], b"-ERR a  b\r\n");
    }

    #[test]
    fn doubles() {
        assert_eq!(format_double(3.0), "3");
        assert_eq!(format_double(0.1), "0.1");
        assert_eq!(format_double(f64::INFINITY), "inf");
        assert_eq!(format_double(1e21), "1e+21");
    }
}
