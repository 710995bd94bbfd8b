//! Decoders for the packed blobs Redis and Valkey store small collections in: listpack (7.0+),
//! ziplist (before 7.0), intset and zipmap (before 2.6). Each blob arrives as one RDB string;
//! these walk it with every offset checked against the blob and every header checked against
//! what was found (total bytes, entry count, back-lengths, previous-entry lengths), as
//! Valkey's deep integrity validation does, so a corrupt blob is an error and never a panic
//! or a huge allocation (entries are counted in the blob's bytes, which are already there).

use super::RdbError;

/// One element of a packed blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry<'a> {
    Str(&'a [u8]),
    Int(i64),
}

impl Entry<'_> {
    pub fn to_vec(self) -> Vec<u8> {
        match self {
            Entry::Str(s) => s.to_vec(),
            Entry::Int(n) => itoa::Buffer::new().format(n).as_bytes().to_vec(),
        }
    }

    /// A sorted-set score (`zzlStrtod`): integers as they are, strings parsed as doubles.
    pub fn score(self) -> Result<f64, RdbError> {
        let v = match self {
            Entry::Int(n) => n as f64,
            Entry::Str(s) => parse_score(s).ok_or(RdbError::Corrupt("bad score in a packed sorted set"))?,
        };
        if v.is_nan() {
            return Err(RdbError::Corrupt("NaN score"));
        }
        Ok(v)
    }
}

/// A score written as text (`d2string`: "1.5", "inf", "-inf", "1e+20").
pub fn parse_score(s: &[u8]) -> Option<f64> {
    std::str::from_utf8(s).ok()?.parse::<f64>().ok()
}

fn bad(what: &'static str) -> RdbError {
    RdbError::Corrupt(what)
}

/// Bytes `at..at+n` of `data`.
fn slice(data: &[u8], at: usize, n: usize) -> Result<&[u8], RdbError> {
    at.checked_add(n).and_then(|end| data.get(at..end)).ok_or(bad("packed entry past the end of its blob"))
}

fn le_signed(b: &[u8]) -> i64 {
    // Sign-extend a little-endian integer of 1..=8 bytes.
    let mut v: u64 = 0;
    for (i, &x) in b.iter().enumerate() {
        v |= (x as u64) << (8 * i);
    }
    let shift = 64 - 8 * b.len() as u32;
    ((v << shift) as i64) >> shift
}

/// A listpack: `<total u32><count u16><entry>...<0xff>`, each entry `<encoding+data><backlen>`.
pub fn listpack(data: &[u8]) -> Result<Vec<Entry<'_>>, RdbError> {
    if data.len() < 7 {
        return Err(bad("listpack shorter than its header"));
    }
    let total = u32::from_le_bytes([data[0], data[1], data[2], data[3]]) as usize;
    let count = u16::from_le_bytes([data[4], data[5]]) as usize;
    if total != data.len() || data[data.len() - 1] != 0xff {
        return Err(bad("listpack size or end marker"));
    }
    let end = data.len() - 1;
    let mut out = Vec::new();
    let mut p = 6;
    while p < end {
        let b = data[p];
        let (head, len, entry) = match b {
            0x00..=0x7f => (1, 0, Entry::Int(b as i64)),
            0x80..=0xbf => {
                let n = (b & 0x3f) as usize;
                (1, n, Entry::Str(slice(data, p + 1, n)?))
            }
            0xc0..=0xdf => {
                let lo = *slice(data, p + 1, 1)?.first().unwrap_or(&0);
                let uv = (((b & 0x1f) as i64) << 8) | lo as i64;
                (2, 0, Entry::Int(if uv >= 1 << 12 { uv - (1 << 13) } else { uv }))
            }
            0xe0..=0xef => {
                let lo = *slice(data, p + 1, 1)?.first().unwrap_or(&0);
                let n = (((b & 0x0f) as usize) << 8) | lo as usize;
                (2, n, Entry::Str(slice(data, p + 2, n)?))
            }
            0xf0 => {
                let l = slice(data, p + 1, 4)?;
                let n = u32::from_le_bytes([l[0], l[1], l[2], l[3]]) as usize;
                (5, n, Entry::Str(slice(data, p + 5, n)?))
            }
            0xf1 => (3, 0, Entry::Int(le_signed(slice(data, p + 1, 2)?))),
            0xf2 => (4, 0, Entry::Int(le_signed(slice(data, p + 1, 3)?))),
            0xf3 => (5, 0, Entry::Int(le_signed(slice(data, p + 1, 4)?))),
            0xf4 => (9, 0, Entry::Int(le_signed(slice(data, p + 1, 8)?))),
            _ => return Err(bad("unknown listpack encoding")),
        };
        let size = head + len;
        let blen = match size {
            0..=127 => 1,
            128..=16382 => 2,
            16383..=2097150 => 3,
            2097151..=268435454 => 4,
            _ => 5,
        };
        let back = slice(data, p + size, blen)?;
        let coded = back.iter().fold(0usize, |v, &x| (v << 7) | (x & 0x7f) as usize);
        if coded != size || p + size + blen > end {
            return Err(bad("listpack back-length"));
        }
        out.push(entry);
        p += size + blen;
    }
    // 65535 means "too many to count in the header".
    if count != u16::MAX as usize && count != out.len() {
        return Err(bad("listpack entry count"));
    }
    Ok(out)
}

/// A ziplist: `<zlbytes u32><zltail u32><zllen u16><entry>...<0xff>`, each entry
/// `<prevlen><encoding><data>`.
pub fn ziplist(data: &[u8]) -> Result<Vec<Entry<'_>>, RdbError> {
    if data.len() < 11 {
        return Err(bad("ziplist shorter than its header"));
    }
    let total = u32::from_le_bytes([data[0], data[1], data[2], data[3]]) as usize;
    let tail = u32::from_le_bytes([data[4], data[5], data[6], data[7]]) as usize;
    let count = u16::from_le_bytes([data[8], data[9]]) as usize;
    if total != data.len() || data[data.len() - 1] != 0xff {
        return Err(bad("ziplist size or end marker"));
    }
    let end = data.len() - 1;
    let mut out = Vec::new();
    let mut p = 10;
    let mut prev_size = 0;
    let mut last = 10;
    while p < end {
        let (plen, prev) = match data[p] {
            0xfe => {
                let l = slice(data, p + 1, 4)?;
                (5, u32::from_le_bytes([l[0], l[1], l[2], l[3]]) as usize)
            }
            0xff => return Err(bad("ziplist end marker inside the list")),
            n => (1, n as usize),
        };
        if prev != prev_size {
            return Err(bad("ziplist previous-entry length"));
        }
        let q = p + plen;
        let b = *slice(data, q, 1)?.first().unwrap_or(&0);
        let (head, len, entry) = match b {
            0x00..=0x3f => {
                let n = (b & 0x3f) as usize;
                (1, n, Entry::Str(slice(data, q + 1, n)?))
            }
            0x40..=0x7f => {
                let l = slice(data, q + 1, 1)?;
                let n = (((b & 0x3f) as usize) << 8) | l[0] as usize;
                (2, n, Entry::Str(slice(data, q + 2, n)?))
            }
            0x80 => {
                let l = slice(data, q + 1, 4)?;
                let n = u32::from_be_bytes([l[0], l[1], l[2], l[3]]) as usize;
                (5, n, Entry::Str(slice(data, q + 5, n)?))
            }
            0xc0 => (1, 2, Entry::Int(le_signed(slice(data, q + 1, 2)?))),
            0xd0 => (1, 4, Entry::Int(le_signed(slice(data, q + 1, 4)?))),
            0xe0 => (1, 8, Entry::Int(le_signed(slice(data, q + 1, 8)?))),
            0xf0 => (1, 3, Entry::Int(le_signed(slice(data, q + 1, 3)?))),
            0xfe => (1, 1, Entry::Int(le_signed(slice(data, q + 1, 1)?))),
            0xf1..=0xfd => (1, 0, Entry::Int((b & 0x0f) as i64 - 1)),
            _ => return Err(bad("unknown ziplist encoding")),
        };
        let size = plen + head + len;
        if p + size > end {
            return Err(bad("ziplist entry past the end"));
        }
        out.push(entry);
        last = p;
        prev_size = size;
        p += size;
    }
    if (count != u16::MAX as usize && count != out.len()) || (!out.is_empty() && tail != last) {
        return Err(bad("ziplist entry count or tail offset"));
    }
    Ok(out)
}

/// An intset: `<encoding u32: 2, 4 or 8><length u32><integers, little-endian, sorted>`.
pub fn intset(data: &[u8]) -> Result<Vec<i64>, RdbError> {
    if data.len() < 8 {
        return Err(bad("intset shorter than its header"));
    }
    let width = u32::from_le_bytes([data[0], data[1], data[2], data[3]]) as usize;
    let len = u32::from_le_bytes([data[4], data[5], data[6], data[7]]) as usize;
    if !matches!(width, 2 | 4 | 8) || Some(data.len() - 8) != len.checked_mul(width) {
        return Err(bad("intset encoding or length"));
    }
    let out: Vec<i64> = data[8..].chunks_exact(width).map(le_signed).collect();
    if out.windows(2).any(|w| w[0] >= w[1]) {
        return Err(bad("intset not sorted or with duplicates"));
    }
    Ok(out)
}

/// A field and its value.
pub type Pair<'a> = (&'a [u8], &'a [u8]);

/// A zipmap (Redis before 2.6): `<zmlen u8><len>key<len><free>value[free]...<0xff>`.
pub fn zipmap(data: &[u8]) -> Result<Vec<Pair<'_>>, RdbError> {
    let mut p = 1;
    let mut out = Vec::new();
    let len_at = |p: usize| -> Result<(usize, usize), RdbError> {
        match *slice(data, p, 1)?.first().unwrap_or(&0xff) {
            254 => {
                let l = slice(data, p + 1, 4)?;
                Ok((5, u32::from_le_bytes([l[0], l[1], l[2], l[3]]) as usize))
            }
            255 => Err(bad("zipmap length is the end marker")),
            n => Ok((1, n as usize)),
        }
    };
    loop {
        if *slice(data, p, 1)?.first().unwrap_or(&0) == 0xff {
            break;
        }
        let (h, klen) = len_at(p)?;
        let key = slice(data, p + h, klen)?;
        p += h + klen;
        let (h, vlen) = len_at(p)?;
        let free = *slice(data, p + h, 1)?.first().unwrap_or(&0) as usize;
        let value = slice(data, p + h + 1, vlen)?;
        p += h + 1 + vlen + free;
        out.push((key, value));
    }
    if p + 1 != data.len() {
        return Err(bad("zipmap trailing bytes"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listpack_as_valkey_writes_it() {
        // HSET h f v f2 12 on Redis 7.0 / Valkey 9.1 (the blob inside DUMP).
        let lp = b"\x13\x00\x00\x00\x04\x00\x81f\x02\x81v\x02\x82f2\x03\x0c\x01\xff";
        assert_eq!(
            listpack(lp),
            Ok(vec![Entry::Str(b"f"), Entry::Str(b"v"), Entry::Str(b"f2"), Entry::Int(12)])
        );
        // RPUSH l a 1 -70000 bbbb 1234567890123: 24- and 64-bit integers.
        let lp = b"\x21\x00\x00\x00\x05\x00\x81a\x02\x01\x01\xf2\x90\xee\xfe\x04\x84bbbb\x05\
                   \xf4\xcb\x04\xfbq\x1f\x01\x00\x00\x09\xff";
        assert_eq!(
            listpack(lp),
            Ok(vec![
                Entry::Str(b"a"),
                Entry::Int(1),
                Entry::Int(-70000),
                Entry::Str(b"bbbb"),
                Entry::Int(1234567890123)
            ])
        );
        // A 13-bit negative integer (-3) and the ZADD blob's "1.5" score.
        let lp = b"\x1a\x00\x00\x00\x06\x00\x81c\x02\xdf\xfd\x02\x81a\x02\x831.5\x04\x81b\x02\x02\x01\xff";
        let e = listpack(lp).expect("zset listpack");
        assert_eq!(e[1], Entry::Int(-3));
        assert_eq!(e[3].score(), Ok(1.5));
    }

    #[test]
    fn ziplist_intset_zipmap() {
        // A ziplist of "a", 5, -2 (int8 encoding 0xfe), "hello" as Redis 6 writes it.
        let mut z = vec![0u8; 10];
        let entries: [&[u8]; 4] = [b"\x00\x01a", b"\x03\xf6", b"\x02\xfe\xfe", b"\x03\x05hello"];
        let mut tail = 10;
        for e in entries {
            tail = z.len();
            z.extend_from_slice(e);
        }
        z.push(0xff);
        let total = z.len() as u32;
        z[0..4].copy_from_slice(&total.to_le_bytes());
        z[4..8].copy_from_slice(&(tail as u32).to_le_bytes());
        z[8..10].copy_from_slice(&4u16.to_le_bytes());
        assert_eq!(
            ziplist(&z),
            Ok(vec![Entry::Str(b"a"), Entry::Int(5), Entry::Int(-2), Entry::Str(b"hello")])
        );
        let mut wrong_prev = z.clone();
        wrong_prev[13] = 2;
        assert!(ziplist(&wrong_prev).is_err());
        // SADD si 1 2 -3 70000.
        let is =
            b"\x04\x00\x00\x00\x04\x00\x00\x00\xfd\xff\xff\xff\x01\x00\x00\x00\x02\x00\x00\x00p\x11\x01\x00";
        assert_eq!(intset(is), Ok(vec![-3, 1, 2, 70000]));
        assert!(intset(&is[..is.len() - 1]).is_err());
        let zm = b"\x02\x01a\x03\x01xyz\x00\x02bb\x01\x00q\xff";
        assert_eq!(zipmap(zm), Ok(vec![(&b"a"[..], &b"xyz"[..]), (&b"bb"[..], &b"q"[..])]));
    }

    #[test]
    fn truncated_and_corrupted_blobs_are_errors() {
        let lp: &[u8] = b"\x13\x00\x00\x00\x04\x00\x81f\x02\x81v\x02\x82f2\x03\x0c\x01\xff";
        for n in 0..lp.len() {
            assert!(listpack(&lp[..n]).is_err());
        }
        for i in 0..lp.len() {
            for bit in 0..8 {
                let mut m = lp.to_vec();
                m[i] ^= 1 << bit;
                let _ = listpack(&m);
                let _ = ziplist(&m);
                let _ = intset(&m);
                let _ = zipmap(&m);
            }
        }
    }
}
