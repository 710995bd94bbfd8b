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

/// Valkey's `d2string`, the reply format for doubles: `inf`, `-inf`, `nan`, `0`/`-0`, plain
/// integers when exactly integral within half the `long long` range, otherwise the shortest
/// round-trip digits laid out as `fpconv_dtoa` does (plain up to a few leading or trailing
/// zeros, else `d.ddde[+-]x` with an unpadded exponent).
pub fn format_double(v: f64) -> String {
    if v.is_nan() {
        return "nan".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    const HALF: f64 = (i64::MAX / 2) as f64;
    if (-HALF..=HALF).contains(&v) && v.fract() == 0.0 {
        return itoa::Buffer::new().format(v as i64).to_string();
    }
    // Shortest round-trip digits and decimal exponent from Rust's formatter.
    let sci = format!("{:e}", v.abs());
    let (mantissa, e) = sci.split_once('e').unwrap_or((&sci, "0"));
    let e: i32 = e.parse().unwrap_or(0);
    let digits: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).collect();
    let nd = digits.len() as i32;
    let k = e - (nd - 1);
    let exp = (k + nd - 1).abs();
    let mut out = String::with_capacity(26);
    if v < 0.0 {
        out.push('-');
    }
    let digit_str = |d: &[u8]| String::from_utf8_lossy(d).into_owned();
    if k >= 0 && exp < nd + 7 {
        out.push_str(&digit_str(&digits));
        out.extend(std::iter::repeat_n('0', k as usize));
    } else if k < 0 && (k > -7 || exp < 4) {
        let offset = nd + k;
        if offset <= 0 {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-offset) as usize));
            out.push_str(&digit_str(&digits));
        } else {
            out.push_str(&digit_str(&digits[..offset as usize]));
            out.push('.');
            out.push_str(&digit_str(&digits[offset as usize..]));
        }
    } else {
        out.push(digits[0] as char);
        if nd > 1 {
            out.push('.');
            out.push_str(&digit_str(&digits[1..]));
        }
        out.push('e');
        out.push(if k + nd - 1 < 0 { '-' } else { '+' });
        out.push_str(&exp.to_string());
    }
    out
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
        assert_eq!(format_double(1.1), "1.1");
        assert_eq!(format_double(-0.0), "-0");
        assert_eq!(format_double(1e19), "1e+19");
        assert_eq!(format_double(1.5e20), "1.5e+20");
        assert_eq!(format_double(4e18), "4000000000000000000");
        assert_eq!(format_double(0.000001), "0.000001");
        assert_eq!(format_double(1e-7), "1e-7");
        assert_eq!(format_double(0.000123456), "1.23456e-4");
        assert_eq!(format_double(0.00123456), "0.00123456");
        assert_eq!(format_double(-2.5), "-2.5");
        assert_eq!(format_double(12345678901234567890.0), "12345678901234567000");
        assert_eq!(format_double(1.7976931348623157e308), "1.7976931348623157e+308");
    }
}
