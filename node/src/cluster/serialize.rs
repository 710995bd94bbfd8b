//! Every place where cluster code reads or writes values and TTLs in the keyspace: the DUMP
//! payload (RDB-compatible, so DUMP/RESTORE interoperate with Valkey and external tools),
//! snapshotting a key for a migration, installing a migrated key, and walking or freeing the
//! keys of a set of slots. Kept in one file so the keyspace can change under it easily.
//!
//! Payload: `<RDB type><RDB value><RDB version u16 LE><CRC-64/Jones u64 LE>`, the CRC over
//! all preceding bytes. The value codec is the RDB one in `replication::rdb`: Shoal writes
//! the plain forms (list 1, set 2, hash 4, zset-2 5) that every Valkey and Redis loads, and
//! reads every form a Redis 7.0 or Valkey 8/9 `DUMP` holds (listpacks, intsets, quicklists,
//! ziplists, LZF strings) and streams; a hash with field TTLs is Valkey 9's `HASH_2` under
//! version 80. Module values are refused.

use bytes::Bytes;

use super::SlotSet;
use crate::keyspace::node::ValueRef;
use crate::keyspace::slot::{key_slot, SLOTS};
use crate::keyspace::{Db, Value};
use crate::replication::rdb::{self, value, RdbError};

/// The RDB version written in payloads (Valkey 8.0 / Redis 7.2).
pub const RDB_VERSION: u16 = 11;

/// Why a payload could not be restored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("DUMP payload version or checksum are wrong")]
    VersionOrChecksum,
    #[error("Bad data format")]
    BadFormat,
    /// A value Shoal has no type for (stream, module value, hash with field TTLs).
    #[error("Bad data format: {0}")]
    Unsupported(&'static str),
}

/// CRC-64/Jones as Valkey's `crc64(0, ...)`.
pub fn crc64(data: &[u8]) -> u64 {
    rdb::crc64(data)
}

/// The DUMP payload of a value.
pub fn dump(value: ValueRef<'_>) -> Vec<u8> {
    value::encode_payload(value, RDB_VERSION)
}

/// Checks the footer of a payload (`verifyDumpPayload`) and returns the RDB body and its
/// version. Valkey 9's versions (80, 81) are accepted so its DUMPs restore; Redis's
/// post-7.2 versions (12-79) are refused, as Valkey does.
fn verify(payload: &[u8]) -> Result<(&[u8], u16), PayloadError> {
    if payload.len() < 10 {
        return Err(PayloadError::VersionOrChecksum);
    }
    let (body, footer) = payload.split_at(payload.len() - 10);
    let version = u16::from_le_bytes([footer[0], footer[1]]);
    let mut crc = [0u8; 8];
    crc.copy_from_slice(&footer[2..]);
    let known = version <= RDB_VERSION || rdb::VALKEY_VERSIONS.contains(&version);
    if !known || u64::from_le_bytes(crc) != crc64(&payload[..payload.len() - 8]) {
        return Err(PayloadError::VersionOrChecksum);
    }
    Ok((body, version))
}

/// Decodes a DUMP payload into a value.
pub fn restore(payload: &[u8]) -> Result<Value, PayloadError> {
    let (body, version) = verify(payload)?;
    rdb::decode_payload(body, version).map_err(|e| match e {
        RdbError::Unsupported(what) => PayloadError::Unsupported(what),
        _ => PayloadError::BadFormat,
    })
}

/// One key as a migration ships it: its database, the payload, and its absolute expiry in
/// Unix ms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyImage {
    pub db: usize,
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
pub fn snapshot(db: &mut Db, index: usize, key: &[u8], now_ms: i64) -> KeyImage {
    let key = Bytes::copy_from_slice(key);
    match db.get(&key, now_ms, 0, false) {
        Some(e) => KeyImage { db: index, payload: Some(dump(e.value())), expire_at: e.expire_at(), key },
        None => KeyImage { db: index, key, payload: None, expire_at: None },
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
/// next cursor, 0 when done, the removed keys (replicas get them as DELs) and their values
/// so they can be dropped off the executor.
pub fn remove_slots_step(
    db: &mut Db,
    slots: &SlotSet,
    cursor: u64,
    budget: usize,
) -> (u64, Vec<Bytes>, Vec<Value>) {
    let mut doomed = Vec::new();
    // Expired keys count as live here (i64::MIN), so nothing is left behind.
    let next = slot_step(db, slots, cursor, budget, i64::MIN, |k| doomed.push(Bytes::copy_from_slice(k)));
    let values = doomed.iter().filter_map(|k| db.remove(k)).map(|e| e.into_value()).collect();
    (next, doomed, values)
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
    use crate::keyspace::types::{HashValue, ListValue, SetValue, ZSetValue};
    use crate::replication::rdb::types::{HASH as RDB_TYPE_HASH, LIST as RDB_TYPE_LIST, SET as RDB_TYPE_SET};

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
        // A quicklist (type 18) without nodes is an empty list.
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
            let (next, _, values) = remove_slots_step(&mut db, &slots, cursor, 5);
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
        let img = snapshot(&mut db, 0, b"k1", 0);
        let mut other = Db::new();
        install(&mut other, &img, 0).expect("install");
        assert_eq!(other.get(b"k1", 0, 0, false).map(|e| e.value().to_owned()), Some(Value::Int(1)));
        let mut cursor = 0;
        let mut removed = 0;
        loop {
            let (next, _, values) = remove_slots_step(&mut db, &slots, cursor, 50);
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
