//! The primitives under every RDB form: lengths, strings with their integer and LZF
//! encodings, little-endian numbers and CRC-64/Jones, read through a [`Cursor`] that never
//! indexes past its input.
//!
//! A cursor over a partial stream reports [`Fail::Incomplete`] (and how many bytes it would
//! have needed) instead of an error, so the file reader can wait for the next chunk and retry
//! the same unit; over a complete payload the caller turns that into "corrupt".

use std::borrow::Cow;

use super::RdbError;

pub const ENC_INT8: u8 = 0;
pub const ENC_INT16: u8 = 1;
pub const ENC_INT32: u8 = 2;
pub const ENC_LZF: u8 = 3;

/// LZF's best case: a 3-byte back-reference expands to 264 bytes. A header that claims more
/// than this ratio is lying, and is refused before anything is allocated for it.
const LZF_MAX_RATIO: usize = 88;

/// Why a read stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fail {
    /// The input ended inside the unit being read: retry with more.
    Incomplete,
    Error(RdbError),
}

impl From<RdbError> for Fail {
    fn from(e: RdbError) -> Self {
        Fail::Error(e)
    }
}

/// Shorthand for a corrupt-data failure.
pub fn corrupt<T>(what: &'static str) -> Result<T, Fail> {
    Err(Fail::Error(RdbError::Corrupt(what)))
}

const fn crc64_table() -> [u64; 256] {
    // CRC-64/Jones, reflected: polynomial 0xad93d23594c935a9 bit-reversed.
    let poly: u64 = 0x95ac9329ac4bc9b5;
    let mut table = [0u64; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u64;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ poly } else { crc >> 1 };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
}

static CRC64: [u64; 256] = crc64_table();

/// Continues a CRC-64/Jones over more data (Valkey's `crc64(crc, ...)`).
pub fn crc64_update(crc: u64, data: &[u8]) -> u64 {
    data.iter().fold(crc, |crc, &b| CRC64[((crc ^ b as u64) & 0xff) as usize] ^ (crc >> 8))
}

/// CRC-64/Jones as Valkey's `crc64(0, ...)`.
pub fn crc64(data: &[u8]) -> u64 {
    crc64_update(0, data)
}

/// An RDB length, or the special string encoding that replaces it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Len {
    Plain(u64),
    Encoded(u8),
}

/// A string as stored: raw bytes or an integer encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RStr<'a> {
    Bytes(Cow<'a, [u8]>),
    Int(i64),
}

impl RStr<'_> {
    /// The bytes; integers are formatted as Valkey does.
    pub fn into_bytes(self) -> Vec<u8> {
        match self {
            RStr::Bytes(b) => b.into_owned(),
            RStr::Int(n) => itoa::Buffer::new().format(n).as_bytes().to_vec(),
        }
    }
}

/// A reading position over a byte slice.
#[derive(Debug)]
pub struct Cursor<'a> {
    data: &'a [u8],
    pub pos: usize,
    /// After an [`Fail::Incomplete`]: the input length that read would have needed.
    pub short: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Cursor { data, pos: 0, short: 0 }
    }

    /// Bytes not read yet.
    pub fn rest(&self) -> &'a [u8] {
        self.data.get(self.pos..).unwrap_or(&[])
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    pub fn take(&mut self, n: usize) -> Result<&'a [u8], Fail> {
        let end = self.pos.checked_add(n).ok_or(Fail::Error(RdbError::Corrupt("length overflow")))?;
        match self.data.get(self.pos..end) {
            Some(s) => {
                self.pos = end;
                Ok(s)
            }
            None => {
                self.short = end;
                Err(Fail::Incomplete)
            }
        }
    }

    pub fn byte(&mut self) -> Result<u8, Fail> {
        Ok(self.take(1)?[0])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Fail> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    pub fn u32_le(&mut self) -> Result<u32, Fail> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    pub fn i64_le(&mut self) -> Result<i64, Fail> {
        Ok(i64::from_le_bytes(self.array()?))
    }

    pub fn f64_le(&mut self) -> Result<f64, Fail> {
        Ok(f64::from_le_bytes(self.array()?))
    }

    /// `rdbLoadLenByRef`.
    pub fn len(&mut self) -> Result<Len, Fail> {
        let b = self.byte()?;
        Ok(match b >> 6 {
            0 => Len::Plain((b & 0x3f) as u64),
            1 => Len::Plain((((b & 0x3f) as u64) << 8) | self.byte()? as u64),
            3 => Len::Encoded(b & 0x3f),
            _ if b == 0x80 => Len::Plain(u32::from_be_bytes(self.array()?) as u64),
            _ if b == 0x81 => Len::Plain(u64::from_be_bytes(self.array()?)),
            _ => return corrupt("unknown length encoding"),
        })
    }

    /// A length that must not be a string encoding.
    pub fn plain_len(&mut self) -> Result<u64, Fail> {
        match self.len()? {
            Len::Plain(n) => Ok(n),
            Len::Encoded(_) => corrupt("string encoding where a length was expected"),
        }
    }

    /// A length used as a byte count or size.
    pub fn size(&mut self) -> Result<usize, Fail> {
        usize::try_from(self.plain_len()?).map_err(|_| Fail::Error(RdbError::Corrupt("length too large")))
    }

    /// `rdbGenericLoadStringObject`: a string in any of its encodings.
    pub fn string(&mut self) -> Result<RStr<'a>, Fail> {
        match self.len()? {
            Len::Plain(n) => {
                let n = usize::try_from(n).map_err(|_| Fail::Error(RdbError::Corrupt("string too long")))?;
                Ok(RStr::Bytes(Cow::Borrowed(self.take(n)?)))
            }
            Len::Encoded(ENC_INT8) => Ok(RStr::Int(self.byte()? as i8 as i64)),
            Len::Encoded(ENC_INT16) => Ok(RStr::Int(i16::from_le_bytes(self.array()?) as i64)),
            Len::Encoded(ENC_INT32) => Ok(RStr::Int(i32::from_le_bytes(self.array()?) as i64)),
            Len::Encoded(ENC_LZF) => {
                let clen = self.size()?;
                let len = self.size()?;
                if len > clen.saturating_mul(LZF_MAX_RATIO) {
                    return corrupt("LZF length beyond what the compressed data can hold");
                }
                let data = lzf_decompress(self.take(clen)?, len).ok_or(RdbError::Corrupt("bad LZF data"))?;
                Ok(RStr::Bytes(Cow::Owned(data)))
            }
            Len::Encoded(_) => corrupt("unknown string encoding"),
        }
    }

    /// A string as bytes (integers formatted).
    pub fn bytes(&mut self) -> Result<Cow<'a, [u8]>, Fail> {
        Ok(match self.string()? {
            RStr::Bytes(b) => b,
            RStr::Int(n) => Cow::Owned(itoa::Buffer::new().format(n).as_bytes().to_vec()),
        })
    }

    /// Skips a string without decompressing it.
    pub fn skip_string(&mut self) -> Result<(), Fail> {
        match self.len()? {
            Len::Plain(n) => {
                let n = usize::try_from(n).map_err(|_| Fail::Error(RdbError::Corrupt("string too long")))?;
                self.take(n)?;
            }
            Len::Encoded(ENC_INT8) => drop(self.take(1)?),
            Len::Encoded(ENC_INT16) => drop(self.take(2)?),
            Len::Encoded(ENC_INT32) => drop(self.take(4)?),
            Len::Encoded(ENC_LZF) => {
                let clen = self.size()?;
                self.size()?;
                self.take(clen)?;
            }
            Len::Encoded(_) => return corrupt("unknown string encoding"),
        }
        Ok(())
    }
}

/// Runs `f` as one unit: on failure the cursor is back where it started, so an incomplete
/// unit can be retried whole when more input has arrived.
pub fn atomic<'a, T>(
    cur: &mut Cursor<'a>,
    f: impl FnOnce(&mut Cursor<'a>) -> Result<T, Fail>,
) -> Result<T, Fail> {
    let mark = cur.pos;
    let r = f(cur);
    if r.is_err() {
        cur.pos = mark;
    }
    r
}

/// LZF decompression (liblzf's format), exactly `len` bytes expected.
pub fn lzf_decompress(input: &[u8], len: usize) -> Option<Vec<u8>> {
    let mut out: Vec<u8> = Vec::with_capacity(len);
    let mut i = 0;
    while i < input.len() {
        let ctrl = input[i] as usize;
        i += 1;
        if ctrl < 32 {
            let n = ctrl + 1;
            out.extend_from_slice(input.get(i..i + n)?);
            i += n;
        } else {
            let mut n = ctrl >> 5;
            if n == 7 {
                n += *input.get(i)? as usize;
                i += 1;
            }
            let back = ((ctrl & 0x1f) << 8) + *input.get(i)? as usize + 1;
            i += 1;
            let start = out.len().checked_sub(back)?;
            // Byte by byte: the source may overlap what is being written (runs).
            for k in start..start + n + 2 {
                let b = *out.get(k)?;
                out.push(b);
            }
        }
        if out.len() > len {
            return None;
        }
    }
    (out.len() == len).then_some(out)
}

/// liblzf's compressor (`lzf_compress`, the "very fast" variant with a 16-bit hash), for
/// writers that want `rdbcompression`; `None` when the output would not be smaller.
pub fn lzf_compress(input: &[u8]) -> Option<Vec<u8>> {
    const HLOG: u32 = 14;
    const MAX_OFF: usize = 1 << 13;
    const MAX_REF: usize = (1 << 8) + (1 << 3);
    const MAX_LIT: usize = 1 << 5;
    if input.len() < 4 {
        return None;
    }
    let limit = input.len() - 1;
    let mut table = vec![0usize; 1 << HLOG];
    let mut out = Vec::with_capacity(input.len());
    let mut lit_start = 0usize; // index in `out` of the pending literal run's control byte
    let mut lit = 0usize;
    out.push(0);
    let hash = |p: usize| -> usize {
        let v = ((input[p] as u32) << 16) | ((input[p + 1] as u32) << 8) | input[p + 2] as u32;
        ((v.wrapping_mul(0x9E37_79B1)) >> (32 - HLOG)) as usize
    };
    let mut ip = 0usize;
    while ip + 2 < limit {
        let h = hash(ip);
        let cand = table[h];
        table[h] = ip + 1; // +1 so 0 means empty
        if cand > 0 {
            let r = cand - 1;
            let off = ip - r - 1;
            if r < ip && off < MAX_OFF && input[r..r + 3] == input[ip..ip + 3] {
                let maxlen = (input.len() - ip - 2).min(MAX_REF);
                let mut len = 3;
                while len < maxlen && input[r + len] == input[ip + len] {
                    len += 1;
                }
                // Close the literal run.
                if lit == 0 {
                    out.pop();
                } else {
                    out[lit_start] = (lit - 1) as u8;
                }
                let l = len - 2;
                if l < 7 {
                    out.push(((off >> 8) as u8) | ((l as u8) << 5));
                } else {
                    out.push(((off >> 8) as u8) | (7 << 5));
                    out.push((l - 7) as u8);
                }
                out.push(off as u8);
                lit = 0;
                lit_start = out.len();
                out.push(0);
                ip += len;
                continue;
            }
        }
        lit += 1;
        out.push(input[ip]);
        ip += 1;
        if lit == MAX_LIT {
            out[lit_start] = (MAX_LIT - 1) as u8;
            lit = 0;
            lit_start = out.len();
            out.push(0);
        }
        if out.len() >= input.len() {
            return None;
        }
    }
    while ip < input.len() {
        lit += 1;
        out.push(input[ip]);
        ip += 1;
        if lit == MAX_LIT {
            out[lit_start] = (MAX_LIT - 1) as u8;
            lit = 0;
            lit_start = out.len();
            out.push(0);
        }
    }
    if lit == 0 {
        out.pop();
    } else {
        out[lit_start] = (lit - 1) as u8;
    }
    (out.len() < input.len()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc64_check_value() {
        assert_eq!(crc64(b"123456789"), 0xe9c6d914c4b8d9ca);
        assert_eq!(crc64_update(crc64(b"1234"), b"56789"), crc64(b"123456789"));
    }

    #[test]
    fn lzf_round_trips_and_refuses_garbage() {
        let compressed = [0x00, b'a', 0xe0, 20, 0x00];
        assert_eq!(lzf_decompress(&compressed, 30), Some(vec![b'a'; 30]));
        assert_eq!(lzf_decompress(&compressed, 31), None);
        assert_eq!(lzf_decompress(&[0xe0, 20, 0x00], 29), None);
        for data in [
            vec![b'x'; 1000],
            b"abcabcabcabcabcabcabcabcabcabc hello hello hello hello".to_vec(),
            (0..5000u32).map(|i| (i % 251) as u8).collect(),
            (0..3000u32).map(|i| (i * 7 % 13) as u8).collect(),
        ] {
            let c = lzf_compress(&data).expect("compressible");
            assert!(c.len() < data.len());
            assert_eq!(lzf_decompress(&c, data.len()).as_deref(), Some(&data[..]));
        }
        assert_eq!(lzf_compress(b"abcdefgh"), None);
    }

    #[test]
    fn lengths_and_strings() {
        let mut c = Cursor::new(&[0x05, 0x41, 0x02, 0x80, 0, 1, 0, 0, 0xc0, 0xff, 0xc1, 0x00, 0x80]);
        assert_eq!(c.len(), Ok(Len::Plain(5)));
        assert_eq!(c.len(), Ok(Len::Plain(0x102)));
        assert_eq!(c.len(), Ok(Len::Plain(0x10000)));
        assert_eq!(c.string(), Ok(RStr::Int(-1)));
        assert_eq!(c.string(), Ok(RStr::Int(-32768)));
        assert!(c.is_empty());
        // Truncated in every place: incomplete, never a panic.
        for input in [&[0x41][..], &[0x80, 0], &[0x03, b'a'], &[0xc2, 1, 2], &[0xc3, 2, 5, 0]] {
            assert_eq!(Cursor::new(input).string().err(), Some(Fail::Incomplete), "{input:?}");
        }
        assert!(matches!(Cursor::new(&[0xc3, 1, 0x7f, 0]).string(), Err(Fail::Error(_))));
        assert!(matches!(Cursor::new(&[0xc9]).string(), Err(Fail::Error(_))));
    }
}
