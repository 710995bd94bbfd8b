//! Every place where cluster code reads or writes values and TTLs in the keyspace: the DUMP
//! payload (RDB-compatible, so DUMP/RESTORE interoperate with Valkey and external tools),
//! snapshotting a key for a migration, installing a migrated key, and walking or freeing the
//! keys of a set of slots. Kept in one file so the keyspace can change under it easily.
//!
//! Payload: `<RDB type><RDB value><RDB version u16 LE><CRC-64/Jones u64 LE>`, the CRC over
//! all preceding bytes. Strings use the RDB integer encodings; collections are written in the
//! plain RDB forms (list 1, set 2, hash 4, zset-2 5) that every Valkey and Redis still loads.
//! LZF-compressed strings from other servers are decompressed; the listpack, intset and
//! quicklist forms that Valkey writes for its own collections are not read yet.

use bytes::Bytes;

use super::SlotSet;
use crate::keyspace::node::ValueRef;
use crate::keyspace::slot::{key_slot, SLOTS};
use crate::keyspace::types::{HashValue, ListValue, SetValue, ZSetValue};
use crate::keyspace::{Db, Value};

/// The RDB version written (Valkey 8.0 / Redis 7.2).
pub const RDB_VERSION: u16 = 11;
const RDB_TYPE_STRING: u8 = 0;
const RDB_TYPE_LIST: u8 = 1;
const RDB_TYPE_SET: u8 = 2;
const RDB_TYPE_HASH: u8 = 4;
const RDB_TYPE_ZSET_2: u8 = 5;
/// Collections longer than this in a payload are refused rather than preallocated blindly.
const MAX_ELEMENTS: usize = 1 << 32;
const ENC_INT8: u8 = 0;
const ENC_INT16: u8 = 1;
const ENC_INT32: u8 = 2;
const ENC_LZF: u8 = 3;

/// Why a payload could not be restored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("DUMP payload version or checksum are wrong")]
    VersionOrChecksum,
    #[error("Bad data format")]
    BadFormat,
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

/// CRC-64/Jones as Valkey's `crc64(0, ...)`.
pub fn crc64(data: &[u8]) -> u64 {
    data.iter().fold(0u64, |crc, &b| CRC64[((crc ^ b as u64) & 0xff) as usize] ^ (crc >> 8))
}

fn put_len(out: &mut Vec<u8>, len: usize) {
    if len < 1 << 6 {
        out.push(len as u8);
    } else if len < 1 << 14 {
        out.push(0x40 | (len >> 8) as u8);
        out.push(len as u8);
    } else if len <= u32::MAX as usize {
        out.push(0x80);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
}

/// The DUMP payload of a value.
pub fn dump(value: ValueRef<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    match value {
        ValueRef::Int(n) => {
            out.push(RDB_TYPE_STRING);
            put_int(&mut out, n);
        }
        ValueRef::Str(s) => {
            out.push(RDB_TYPE_STRING);
            put_str(&mut out, s);
        }
        ValueRef::Hash(h) => {
            out.push(RDB_TYPE_HASH);
            put_len(&mut out, h.len());
            for (f, v) in h.iter() {
                put_str(&mut out, f);
                put_str(&mut out, v);
            }
        }
        ValueRef::List(l) => {
            out.push(RDB_TYPE_LIST);
            put_len(&mut out, l.len());
            for v in l.iter() {
                put_str(&mut out, v);
            }
        }
        ValueRef::Set(set) => {
            out.push(RDB_TYPE_SET);
            put_len(&mut out, set.len());
            for m in set.iter() {
                put_str(&mut out, m);
            }
        }
        ValueRef::ZSet(z) => {
            out.push(RDB_TYPE_ZSET_2);
            put_len(&mut out, z.len());
            for (m, score) in z.iter() {
                put_str(&mut out, m);
                out.extend_from_slice(&score.to_le_bytes());
            }
        }
    }
    out.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = crc64(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    put_len(out, s.len());
    out.extend_from_slice(s);
}

fn put_int(out: &mut Vec<u8>, n: i64) {
    if let Ok(n) = i8::try_from(n) {
        out.extend_from_slice(&[0xc0 | ENC_INT8, n as u8]);
    } else if let Ok(n) = i16::try_from(n) {
        out.push(0xc0 | ENC_INT16);
        out.extend_from_slice(&n.to_le_bytes());
    } else if let Ok(n) = i32::try_from(n) {
        out.push(0xc0 | ENC_INT32);
        out.extend_from_slice(&n.to_le_bytes());
    } else {
        put_str(out, itoa::Buffer::new().format(n).as_bytes());
    }
}

/// Checks the footer of a payload (`verifyDumpPayload`) and returns the RDB body.
fn verify(payload: &[u8]) -> Result<&[u8], PayloadError> {
    if payload.len() < 10 {
        return Err(PayloadError::VersionOrChecksum);
    }
    let (body, footer) = payload.split_at(payload.len() - 10);
    let version = u16::from_le_bytes([footer[0], footer[1]]);
    let mut crc = [0u8; 8];
    crc.copy_from_slice(&footer[2..]);
    if version > RDB_VERSION || u64::from_le_bytes(crc) != crc64(&payload[..payload.len() - 8]) {
        return Err(PayloadError::VersionOrChecksum);
    }
    Ok(body)
}

struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], PayloadError> {
        if self.data.len() < n {
            return Err(PayloadError::BadFormat);
        }
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        Ok(head)
    }

    fn byte(&mut self) -> Result<u8, PayloadError> {
        Ok(self.take(1)?[0])
    }

    /// A length, or `Err(encoding)` wrapped as `Ok((true, enc))` for special encodings.
    fn len(&mut self) -> Result<(bool, u64), PayloadError> {
        let b = self.byte()?;
        Ok(match b >> 6 {
            0 => (false, (b & 0x3f) as u64),
            1 => (false, (((b & 0x3f) as u64) << 8) | self.byte()? as u64),
            2 if b == 0x80 => {
                let mut x = [0u8; 4];
                x.copy_from_slice(self.take(4)?);
                (false, u32::from_be_bytes(x) as u64)
            }
            2 if b == 0x81 => {
                let mut x = [0u8; 8];
                x.copy_from_slice(self.take(8)?);
                (false, u64::from_be_bytes(x))
            }
            3 => (true, (b & 0x3f) as u64),
            _ => return Err(PayloadError::BadFormat),
        })
    }

    fn plain_len(&mut self) -> Result<usize, PayloadError> {
        match self.len()? {
            (false, n) => usize::try_from(n).map_err(|_| PayloadError::BadFormat),
            _ => Err(PayloadError::BadFormat),
        }
    }

    /// A collection's element count.
    fn count(&mut self) -> Result<usize, PayloadError> {
        let n = self.plain_len()?;
        // Every element takes at least one byte, so a count beyond the rest is a lie.
        if n > self.data.len() || n > MAX_ELEMENTS {
            return Err(PayloadError::BadFormat);
        }
        Ok(n)
    }

    /// A string element of a collection, as bytes.
    fn bytes(&mut self) -> Result<Vec<u8>, PayloadError> {
        Ok(match self.string()? {
            Value::Int(n) => itoa::Buffer::new().format(n).as_bytes().to_vec(),
            Value::Str(s) => s.to_vec(),
            _ => return Err(PayloadError::BadFormat),
        })
    }

    fn string(&mut self) -> Result<Value, PayloadError> {
        let (special, n) = self.len()?;
        if !special {
            let n = usize::try_from(n).map_err(|_| PayloadError::BadFormat)?;
            return Ok(Value::from_bytes(self.take(n)?));
        }
        Ok(match n as u8 {
            ENC_INT8 => Value::Int(self.byte()? as i8 as i64),
            ENC_INT16 => {
                let b = self.take(2)?;
                Value::Int(i16::from_le_bytes([b[0], b[1]]) as i64)
            }
            ENC_INT32 => {
                let b = self.take(4)?;
                Value::Int(i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64)
            }
            ENC_LZF => {
                let clen = self.plain_len()?;
                let len = self.plain_len()?;
                let data = lzf_decompress(self.take(clen)?, len).ok_or(PayloadError::BadFormat)?;
                Value::from_bytes(&data)
            }
            _ => return Err(PayloadError::BadFormat),
        })
    }
}

/// Decodes a DUMP payload into a value.
pub fn restore(payload: &[u8]) -> Result<Value, PayloadError> {
    let body = verify(payload)?;
    let mut r = Reader { data: body };
    let value = match r.byte()? {
        RDB_TYPE_STRING => r.string()?,
        RDB_TYPE_LIST => {
            let mut l = ListValue::default();
            for _ in 0..r.count()? {
                l.push_back(&r.bytes()?);
            }
            Value::List(Box::new(l))
        }
        RDB_TYPE_SET => {
            let mut set = SetValue::default();
            for _ in 0..r.count()? {
                if !set.insert_member(&r.bytes()?) {
                    return Err(PayloadError::BadFormat);
                }
            }
            Value::Set(Box::new(set))
        }
        RDB_TYPE_HASH => {
            let mut h = HashValue::default();
            for _ in 0..r.count()? {
                let f = r.bytes()?;
                if !h.insert_pair(&f, &r.bytes()?) {
                    return Err(PayloadError::BadFormat);
                }
            }
            Value::Hash(Box::new(h))
        }
        RDB_TYPE_ZSET_2 => {
            let mut z = ZSetValue::default();
            for _ in 0..r.count()? {
                let m = r.bytes()?;
                let mut b = [0u8; 8];
                b.copy_from_slice(r.take(8)?);
                let score = f64::from_le_bytes(b);
                if score.is_nan() || !z.insert_scored(&m, score) {
                    return Err(PayloadError::BadFormat);
                }
            }
            Value::ZSet(Box::new(z))
        }
        _ => return Err(PayloadError::BadFormat),
    };
    // Valkey refuses empty collections in a payload (they cannot exist as keys).
    if matches!(&value, Value::Hash(_) | Value::List(_) | Value::Set(_) | Value::ZSet(_))
        && value_len(&value) == 0
    {
        return Err(PayloadError::BadFormat);
    }
    if !r.data.is_empty() {
        return Err(PayloadError::BadFormat);
    }
    Ok(value)
}

fn value_len(v: &Value) -> usize {
    match v {
        Value::Hash(h) => h.len(),
        Value::List(l) => l.len(),
        Value::Set(s) => s.len(),
        Value::ZSet(z) => z.len(),
        Value::Str(_) | Value::Int(_) => 1,
    }
}

/// LZF decompression (liblzf's format), `len` bytes expected.
fn lzf_decompress(input: &[u8], len: usize) -> Option<Vec<u8>> {
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
            for k in 0..n + 2 {
                let b = out[start + k];
                out.push(b);
            }
        }
        if out.len() > len {
            return None;
        }
    }
    (out.len() == len).then_some(out)
}

/// One key as a migration ships it: the payload, and its absolute expiry in Unix ms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyImage {
    pub key: Bytes,
    /// `None`: the key no longer exists (ship a delete).
    pub payload: Option<Vec<u8>>,
    pub expire_at: Option<i64>,
}

impl KeyImage {
    /// Approximate bytes in flight, for backlog limits.
    pub fn size(&self) -> usize {
        self.key.len() + self.payload.as_ref().map_or(0, Vec::len) + 16
    }
}

/// The current state of a key (live or gone), without touching access time or statistics.
pub fn snapshot(db: &mut Db, key: &[u8], now_ms: i64) -> KeyImage {
    let key = Bytes::copy_from_slice(key);
    match db.get(&key, now_ms, 0, false) {
        Some(e) => KeyImage { payload: Some(dump(e.value())), expire_at: e.expire_at(), key },
        None => KeyImage { key, payload: None, expire_at: None },
    }
}

/// Installs a shipped key (replacing any old one) or deletes it.
pub fn install(db: &mut Db, img: &KeyImage, clock: u32) -> Result<(), PayloadError> {
    match &img.payload {
        Some(p) => {
            let value = restore(p)?;
            db.set(&img.key, value, img.expire_at, clock);
        }
        None => {
            db.remove(&img.key);
        }
    }
    Ok(())
}

/// One bounded step over every key of `slots`: visits at most `budget` table positions from
/// `cursor` (0 starts) and calls `f` with each live key found; returns the next cursor, 0 when
/// done. A key present for the whole walk is visited at least once.
pub fn scan_slots(
    db: &mut Db,
    slots: &SlotSet,
    cursor: u64,
    budget: usize,
    now_ms: i64,
    mut f: impl FnMut(&Bytes),
) -> u64 {
    slot_step(db, slots, cursor, budget, now_ms, |k| f(&Bytes::copy_from_slice(k)))
}

/// One bounded step of removing every key of `slots` (expired ones included); returns the
/// next cursor, 0 when done, and the removed values so they can be dropped off the executor.
pub fn remove_slots_step(db: &mut Db, slots: &SlotSet, cursor: u64, budget: usize) -> (u64, Vec<Value>) {
    let mut doomed = Vec::new();
    // Expired keys count as live here (i64::MIN), so nothing is left behind.
    let next = slot_step(db, slots, cursor, budget, i64::MIN, |k| doomed.push(Bytes::copy_from_slice(k)));
    let values = doomed.iter().filter_map(|k| db.remove(k)).map(|e| e.into_value()).collect();
    (next, values)
}

/// A SCAN step restricted to `slots`. With one table per slot (cluster mode) the cursor's high
/// half is the slot, so the walk jumps straight from one wanted slot's table to the next and
/// never reads another slot's keys; with a single table it filters by slot.
fn slot_step(
    db: &mut Db,
    slots: &SlotSet,
    cursor: u64,
    budget: usize,
    now_ms: i64,
    mut f: impl FnMut(&[u8]),
) -> u64 {
    if !db.is_cluster() {
        return db.scan(cursor, budget, now_ms, |k, _| {
            if slots.contains(key_slot(k)) {
                f(k)
            }
        });
    }
    let wanted_from = |t: u64| (t..SLOTS as u64).find(|&s| slots.contains(s as u16));
    let mut cursor = cursor;
    let t = cursor >> 32;
    if !slots.contains(t as u16) {
        match wanted_from(t) {
            Some(s) => cursor = s << 32,
            None => return 0,
        }
    }
    let next = db.scan(cursor, budget, now_ms, |k, _| f(k));
    let nt = next >> 32;
    if next == 0 || slots.contains(nt as u16) {
        return next;
    }
    // The scan moved on to a slot we do not want: skip ahead (a later slot, so never 0).
    wanted_from(nt).map_or(0, |s| s << 32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc64_check_value() {
        assert_eq!(crc64(b"123456789"), 0xe9c6d914c4b8d9ca);
    }

    #[test]
    fn payloads_match_valkey() {
        assert_eq!(
            dump(Value::Str(Bytes::from_static(b"hello")).view()),
            b"\x00\x05hello\x0b\x00\x0a\xad\x62\x05\x98\xab\xc9\x83"
        );
        assert_eq!(dump(Value::Int(123).view()), b"\x00\xc0\x7b\x0b\x00\x21\x3d\xee\x92\xfd\xe5\x8e\x30");
        assert_eq!(
            dump(Value::from_bytes(b"bar").view()),
            b"\x00\x03bar\x0b\x00\x8f\x61\xf4\x13\x13\xf9\x14\x9e"
        );
    }

    #[test]
    fn round_trips() {
        for v in [
            Value::Int(0),
            Value::Int(-129),
            Value::Int(70000),
            Value::Int(i64::MAX),
            Value::Int(i64::MIN),
            Value::Str(Bytes::from(vec![7u8; 100])),
            Value::Str(Bytes::from(vec![1u8; 20000])),
            Value::Str(Bytes::new()),
        ] {
            assert_eq!(restore(&dump(v.view())), Ok(v));
        }
    }

    #[test]
    fn rejects_bad_payloads() {
        let mut p = dump(Value::Int(5).view());
        let n = p.len();
        p[n - 1] ^= 1;
        assert_eq!(restore(&p), Err(PayloadError::VersionOrChecksum));
        assert_eq!(restore(b"short"), Err(PayloadError::VersionOrChecksum));
        // Version 12 (Redis 7.4) is newer than ours.
        let mut body = vec![0u8, 1, b'x'];
        body.extend_from_slice(&12u16.to_le_bytes());
        let crc = crc64(&body);
        body.extend_from_slice(&crc.to_le_bytes());
        assert_eq!(restore(&body), Err(PayloadError::VersionOrChecksum));
        // A quicklist (type 18) is a form we do not read yet.
        let mut body = vec![18u8, 0];
        body.extend_from_slice(&11u16.to_le_bytes());
        let crc = crc64(&body);
        body.extend_from_slice(&crc.to_le_bytes());
        assert_eq!(restore(&body), Err(PayloadError::BadFormat));
    }

    #[test]
    fn collections_round_trip_in_the_plain_rdb_forms() {
        let mut h = HashValue::default();
        h.insert_pair(b"f1", b"v1");
        h.insert_pair(b"12", b"");
        let mut l = ListValue::default();
        for v in [&b"a"[..], b"", b"12345", b"a"] {
            l.push_back(v);
        }
        let mut s = SetValue::default();
        s.insert_member(b"x");
        s.insert_member(b"-7");
        let mut z = ZSetValue::default();
        z.insert_scored(b"m", 1.5);
        z.insert_scored(b"n", f64::NEG_INFINITY);
        for v in [
            Value::Hash(Box::new(h)),
            Value::List(Box::new(l)),
            Value::Set(Box::new(s)),
            Value::ZSet(Box::new(z)),
        ] {
            assert_eq!(restore(&dump(v.view())), Ok(v));
        }
        // Valkey's own hash payload for HSET h f v, in the plain form a Redis 6 would write.
        let mut body = vec![RDB_TYPE_HASH, 1, 1, b'f', 1, b'v'];
        body.extend_from_slice(&RDB_VERSION.to_le_bytes());
        let crc = crc64(&body);
        body.extend_from_slice(&crc.to_le_bytes());
        let Ok(Value::Hash(h)) = restore(&body) else { panic!("hash payload refused") };
        assert_eq!(h.iter().collect::<Vec<_>>(), vec![(&b"f"[..], &b"v"[..])]);
        // Empty collections, duplicate members and element counts past the end are refused.
        for bad in [
            vec![RDB_TYPE_SET, 0],
            vec![RDB_TYPE_SET, 2, 1, b'a', 1, b'a'],
            vec![RDB_TYPE_LIST, 0x3f, 1, b'a'],
        ] {
            let mut body = bad;
            body.extend_from_slice(&RDB_VERSION.to_le_bytes());
            let crc = crc64(&body);
            body.extend_from_slice(&crc.to_le_bytes());
            assert_eq!(restore(&body), Err(PayloadError::BadFormat), "{body:?}");
        }
    }

    #[test]
    fn lzf_strings_from_other_servers() {
        // "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" (30 x 'a') as liblzf compresses it: literal 'a',
        // then a back-reference of length 29 at distance 1.
        let compressed = [0x00, b'a', 0xe0, 20, 0x00];
        assert_eq!(lzf_decompress(&compressed, 30), Some(vec![b'a'; 30]));
        assert_eq!(lzf_decompress(&compressed, 31), None);
        assert_eq!(lzf_decompress(&[0xe0, 20, 0x00], 29), None);
    }

    #[test]
    fn slot_walks_on_per_slot_tables_read_only_the_wanted_slots() {
        let mut db = Db::new_cluster();
        for i in 0..3000 {
            db.set(format!("k{i}").as_bytes(), Value::Int(i), None, 0);
        }
        for ranges in [&[(0u16, 0u16)][..], &[(5, 900), (16000, 16383)], &[(0, 16383)], &[(100, 100)]] {
            let slots = SlotSet::from_ranges(ranges);
            let want: std::collections::HashSet<Bytes> = (0..3000)
                .map(|i| Bytes::from(format!("k{i}")))
                .filter(|k| slots.contains(key_slot(k)))
                .collect();
            let mut seen = std::collections::HashSet::new();
            let mut cursor = 0;
            loop {
                cursor = scan_slots(&mut db, &slots, cursor, 7, 0, |k| {
                    assert!(slots.contains(key_slot(k)), "visited an unwanted key {k:?}");
                    seen.insert(k.clone());
                });
                if cursor == 0 {
                    break;
                }
            }
            assert_eq!(seen, want, "{ranges:?}");
        }
        let slots = SlotSet::from_ranges(&[(0, 8191)]);
        let (mut cursor, mut removed) = (0, 0);
        loop {
            let (next, values) = remove_slots_step(&mut db, &slots, cursor, 5);
            removed += values.len();
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        let want = (0..3000).filter(|i| key_slot(format!("k{i}").as_bytes()) < 8192).count();
        assert_eq!((removed, db.len()), (want, 3000 - want));
    }

    #[test]
    fn slot_walks() {
        let mut db = Db::new();
        for i in 0..500 {
            db.set(format!("k{i}").as_bytes(), Value::Int(i), None, 0);
        }
        let slots = SlotSet::from_ranges(&[(0, 8191)]);
        let want = (0..500).filter(|i| key_slot(format!("k{i}").as_bytes()) < 8192).count();
        let mut seen = std::collections::HashSet::new();
        let mut cursor = 0;
        loop {
            cursor = scan_slots(&mut db, &slots, cursor, 37, 0, |k| {
                seen.insert(k.clone());
            });
            if cursor == 0 {
                break;
            }
        }
        assert_eq!(seen.len(), want);
        let img = snapshot(&mut db, b"k1", 0);
        let mut other = Db::new();
        install(&mut other, &img, 0).expect("install");
        assert_eq!(other.get(b"k1", 0, 0, false).map(|e| e.value().to_owned()), Some(Value::Int(1)));
        let mut cursor = 0;
        let mut removed = 0;
        loop {
            let (next, values) = remove_slots_step(&mut db, &slots, cursor, 50);
            removed += values.len();
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        assert_eq!(removed, want);
        assert_eq!(db.len(), 500 - want);
    }
}
