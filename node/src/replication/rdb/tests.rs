//! Codec tests: bytes captured from real servers, round trips through the writer and the
//! reader at every split point, and corrupted or truncated input that must fail cleanly.

use bytes::Bytes;
use proptest::prelude::*;

use super::*;
use crate::cluster::serialize::{dump, restore, PayloadError};
use crate::keyspace::types::stream::StreamId;
use crate::keyspace::types::{HashValue, ListValue, SetValue, ZSetValue};
use crate::keyspace::{Db, Value};

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap_or(0)).collect()
}

/// `SAVE` of Redis 7.0.15 after: XADD st 1-1 a 1 b 2; XADD st 2-1 c 3; XGROUP CREATE st g 0;
/// XREADGROUP GROUP g alice COUNT 1 STREAMS st >; SET after yes; SADD s2 x; FUNCTION LOAD.
const REDIS_70_FILE: &str = "524544495330303130fa0972656469732d76657206372e302e3135fa0a72656469732d62697473c040fa056374696d65c206da166bfa08757365642d6d656dc2e8501300fa08616f662d62617365c000f5404723216c7561206e616d653d6d796c69620a72656469732e72656769737465725f66756e6374696f6e28276631272c2066756e6374696f6e28292072657475726e203120656e6429fe00fb030002027332010178000561667465720379657313027374011000000000000000010000000000000001303000000013000201000102018161028162020001020100010001010102010501000101010001010181630203010601ff0202010101000002010167010101010000000000000001000000000000000146a94351a2010000010105616c69636546a94351a20100000100000000000000010000000000000001ff4e33e600dc8d0530";

/// The same on Valkey 9.1.2, plus HSET hx f1 v1 f2 v2; HEXPIRE hx 3600 FIELDS 1 f1; HSET hy a b.
const VALKEY_91_FILE: &str = "56414c4b4559303830fa0a76616c6b65792d76657205392e312e32fa0a72656469732d62697473c040fa056374696d65c206da166bfa08757365642d6d656dc200601500fa08616f662d62617365c000f5404823216c7561206e616d653d6d796c69620a7365727665722e72656769737465725f66756e6374696f6e28276631272c2066756e6374696f6e28292072657475726e203120656e6429fe00fb050015027374011000000000000000010000000000000001303000000013000201000102018161028162020001020100010001010102010501000101010001010181630203010601ff02020101010000020101670101010100000000000000010000000000000001baa94351a2010000010105616c696365baa94351a2010000baa94351a201000001000000000000000100000000000000010005616674657203796573140273320a0a0000000100817802ff160268780202663102763185987a51a2010000026632027632ffffffffffffffff100268790d0d0000000200816102816202fffff7509da5d8e3e783";

/// Reads a whole stream fed in chunks of `chunk` bytes.
fn read_all(data: &[u8], chunk: usize) -> Result<(Vec<RdbEvent>, RdbStats), RdbError> {
    let mut r = RdbReader::new();
    let mut events = Vec::new();
    for part in data.chunks(chunk.max(1)) {
        r.feed(part);
        while let Some(ev) = r.next_event()? {
            events.push(ev);
        }
    }
    r.finish()?;
    Ok((events, r.stats().clone()))
}

fn keys(events: &[RdbEvent]) -> Vec<&RdbKey> {
    events.iter().filter_map(|e| if let RdbEvent::Key(k) = e { Some(k) } else { None }).collect()
}

fn key<'a>(events: &'a [RdbEvent], name: &str) -> &'a RdbKey {
    keys(events).into_iter().find(|k| k.key == name.as_bytes()).unwrap_or_else(|| panic!("no key {name}"))
}

#[test]
fn reads_redis_70_and_valkey_91_files() {
    for (hex, valkey) in [(REDIS_70_FILE, false), (VALKEY_91_FILE, true)] {
        let data = unhex(hex);
        for chunk in [1, 2, 3, 7, 64, data.len()] {
            let (events, stats) = read_all(&data, chunk).expect("file reads");
            assert_eq!(key(&events, "after").value, Value::from_bytes(b"yes"));
            let Value::Set(s) = &key(&events, "s2").value else { panic!("s2 not a set") };
            assert_eq!(s.iter().collect::<Vec<_>>(), vec![&b"x"[..]]);
            let Value::Stream(st) = &key(&events, "st").value else { panic!("st not a stream") };
            let ids: Vec<String> =
                st.range(StreamId::MIN, StreamId::MAX, false).map(|e| e.id.to_string()).collect();
            assert_eq!(ids, ["1-1", "2-1"]);
            assert_eq!((st.last_id, st.entries_added), (StreamId::new(2, 1), 2));
            let g = &st.groups[&b"g"[..]];
            assert_eq!((g.last_id, g.entries_read), (StreamId::new(1, 1), 1));
            assert_eq!(g.pel[&StreamId::new(1, 1)].consumer, Bytes::from("alice"));
            assert_eq!(g.consumers[&b"alice"[..]].pel.len(), 1);
            assert_eq!(stats.functions_skipped, 1);
            assert!(events.iter().any(|e| matches!(e, RdbEvent::Aux { key, .. } if key == "redis-bits")));
            assert_eq!(events.last(), Some(&RdbEvent::End));
            if valkey {
                let Value::Hash(hx) = &key(&events, "hx").value else { panic!("hx not a hash") };
                assert!(hx.has_field_ttls(), "hx has a field TTL, loaded with it");
                let Value::Hash(h) = &key(&events, "hy").value else { panic!("hy not a hash") };
                assert_eq!(h.get(b"a"), Some(&b"b"[..]));
                assert_eq!(stats.keys, 5);
            } else {
                assert_eq!(stats.keys, 3);
            }
        }
    }
}

#[test]
fn restores_dump_payloads_of_redis_70_and_valkey_91() {
    // DUMP output, Redis 7.0.15 then Valkey 9.1.2 (version 80 in the footer).
    let cases: [(&[u8], &str); 8] = [
        (b"\x10\x13\x13\x00\x00\x00\x04\x00\x81f\x02\x81v\x02\x82f2\x03\x0c\x01\xff\n\x00\xf3d\xf9\x88\x89\x04. ", "h"),
        (b"\x0b\x18\x04\x00\x00\x00\x04\x00\x00\x00\xfd\xff\xff\xff\x01\x00\x00\x00\x02\x00\x00\x00p\x11\x01\x00\n\x00\x15\xefc{\x14\x0f\xcdd", "si"),
        (b"\x02\x03\xc0\x05\x01b\x01a\n\x00\xe7Kl\x12*\x80\xd2\xfa", "sl"),
        (b"\x11\x1a\x1a\x00\x00\x00\x06\x00\x81c\x02\xdf\xfd\x02\x81a\x02\x831.5\x04\x81b\x02\x02\x01\xff\n\x00\x88\xc4\xc00\xf0\xae\x82v", "z"),
        (b"\x12\x01\x02!!\x00\x00\x00\x05\x00\x81a\x02\x01\x01\xf2\x90\xee\xfe\x04\x84bbbb\x05\xf4\xcb\x04\xfbq\x1f\x01\x00\x00\t\xff\n\x00\xad\x05\x10\xfa\x19\x16\xa2A", "l"),
        (b"\x10\x13\x13\x00\x00\x00\x04\x00\x81f\x02\x81v\x02\x82f2\x03\x0c\x01\xffP\x00<N0\x19\x17VI\xd4", "h"),
        (b"\x14\x0f\x0f\x00\x00\x00\x03\x00\x81a\x02\x81b\x02\x05\x01\xffP\x00\xf0:0\xcd\x9a\xdc\x90\xcd", "sl"),
        (b"\x12\x01\x02!!\x00\x00\x00\x05\x00\x81a\x02\x01\x01\xf2\x90\xee\xfe\x04\x84bbbb\x05\xf4\xcb\x04\xfbq\x1f\x01\x00\x00\t\xffP\x00b/\xd9k\x87D\xc5\xb5", "l"),
    ];
    for (payload, name) in cases {
        let v = restore(payload).unwrap_or_else(|e| panic!("{name}: {e}"));
        match (name, &v) {
            ("h", Value::Hash(h)) => {
                assert_eq!((h.get(b"f"), h.get(b"f2"), h.len()), (Some(&b"v"[..]), Some(&b"12"[..]), 2))
            }
            ("si", Value::Set(s)) => {
                assert!(s.len() == 4 && ["1", "2", "-3", "70000"].iter().all(|m| s.contains(m.as_bytes())))
            }
            ("sl", Value::Set(s)) => {
                assert!(s.len() == 3 && ["a", "b", "5"].iter().all(|m| s.contains(m.as_bytes())))
            }
            ("z", Value::ZSet(z)) => assert_eq!(
                z.iter().map(|(m, s)| (m.to_vec(), s)).collect::<Vec<_>>(),
                vec![(b"c".to_vec(), -3.0), (b"a".to_vec(), 1.5), (b"b".to_vec(), 2.0)]
            ),
            ("l", Value::List(l)) => {
                assert_eq!(
                    l.iter().collect::<Vec<_>>(),
                    vec![&b"a"[..], b"1", b"-70000", b"bbbb", b"1234567890123"]
                )
            }
            _ => panic!("{name}: unexpected {v:?}"),
        }
        // Any truncation or bit flip is an error (the CRC catches nearly all), never a panic.
        for n in 0..payload.len() {
            assert!(restore(&payload[..n]).is_err());
        }
    }
}

#[test]
fn refuses_what_shoal_cannot_hold() {
    // A Valkey 9 HASH_2 payload with one volatile field keeps its deadline.
    let mut body = vec![types::HASH_2, 1, 1, b'f', 1, b'v'];
    body.extend_from_slice(&1_700_000_000_000i64.to_le_bytes());
    let Ok(Value::Hash(h)) = decode_payload(&body, 80) else { panic!("HASH_2") };
    assert_eq!(h.field_expiry(b"f"), Some(1_700_000_000_000));
    // Without a TTL it is a plain hash; under an RDB 11 version type 22 means nothing.
    let mut body = vec![types::HASH_2, 1, 1, b'f', 1, b'v'];
    body.extend_from_slice(&(-1i64).to_le_bytes());
    assert!(matches!(decode_payload(&body, 80), Ok(Value::Hash(_))));
    assert_eq!(decode_payload(&body, 11), Err(RdbError::UnknownType(22)));
    let mut p = body.clone();
    p.extend_from_slice(&80u16.to_le_bytes());
    let crc = crc64(&p);
    p.extend_from_slice(&crc.to_le_bytes());
    assert!(matches!(restore(&p), Ok(Value::Hash(_))));
    // A module value (MODULE_2 with one unsigned field) is skipped whole.
    let body = [types::MODULE_2, 0x05, 2, 7, 0];
    assert_eq!(decode_payload(&body, 11), Err(RdbError::Unsupported(Skip::Module.what())));
    assert!(matches!(
        restore(&{
            let mut p = body.to_vec();
            p.extend_from_slice(&11u16.to_le_bytes());
            let crc = crc64(&p);
            p.extend_from_slice(&crc.to_le_bytes());
            p
        }),
        Err(PayloadError::Unsupported(_))
    ));
}

/// Databases holding every type, small (packed in Valkey) and large, with and without TTLs.
fn sample_dbs() -> Vec<Db> {
    let mut db0 = Db::new();
    let mut db3 = Db::new();
    db0.set(b"int", Value::Int(-12345), None, 0);
    db0.set(b"bigint", Value::Int(i64::MAX), Some(4_000_000_000_000), 0);
    db0.set(b"str", Value::from_bytes(b"hello"), None, 0);
    db0.set(b"long", Value::Str(Bytes::from("abcdefgh".repeat(500))), Some(4_000_000_000_001), 0);
    db0.set(b"empty", Value::Str(Bytes::new()), None, 0);
    for (name, n) in [("small", 3usize), ("large", 1000)] {
        let mut h = HashValue::default();
        let mut l = ListValue::default();
        let mut s = SetValue::default();
        let mut si = SetValue::default();
        let mut z = ZSetValue::default();
        for i in 0..n {
            h.insert_pair(format!("field{i}").as_bytes(), format!("value-{}", "v".repeat(i % 90)).as_bytes());
            l.push_back(format!("{}", i as i64 * 7919 - 3000).as_bytes());
            l.push_back(format!("elem{i}").as_bytes());
            s.insert_member(format!("member:{i}").as_bytes());
            si.insert_member(format!("{}", i as i64 * 1_000_003 - 500).as_bytes());
            z.insert_scored(format!("m{i}").as_bytes(), i as f64 / 3.0 - 10.0);
        }
        z.insert_scored(b"inf", f64::INFINITY);
        z.insert_scored(b"-inf", f64::NEG_INFINITY);
        db0.set(format!("hash:{name}").as_bytes(), Value::Hash(Box::new(h)), None, 0);
        db0.set(format!("list:{name}").as_bytes(), Value::List(Box::new(l)), Some(4_100_000_000_000), 0);
        db3.set(format!("set:{name}").as_bytes(), Value::Set(Box::new(s)), None, 0);
        db3.set(format!("intset:{name}").as_bytes(), Value::Set(Box::new(si)), None, 0);
        db3.set(format!("zset:{name}").as_bytes(), Value::ZSet(Box::new(z)), None, 0);
    }
    db3.set(b"gone", Value::Int(1), Some(5), 0);
    vec![db0, Db::new(), Db::new(), db3]
}

fn check_round_trip(data: &[u8], dbs: &mut [Db], chunk: usize) {
    let (events, stats) = read_all(data, chunk).unwrap_or_else(|e| panic!("chunk {chunk}: {e}"));
    let live: usize = dbs.iter().map(|d| d.len()).sum::<usize>() - 1; // "gone" expired
    assert_eq!(stats.keys as usize, live);
    for k in keys(&events) {
        let db = &mut dbs[k.db as usize];
        let e = db.get(&k.key, 0, 0, false).unwrap_or_else(|| panic!("extra key {:?}", k.key));
        assert_eq!(e.value().to_owned(), k.value, "{:?}", k.key);
        assert_eq!(e.expire_at(), k.expire_ms, "{:?}", k.key);
    }
}

#[test]
fn writer_and_reader_round_trip_at_any_split() {
    let mut dbs = sample_dbs();
    for version in [7u16, 9, 10, 11, 80] {
        for compress in [false, true] {
            let opts = RdbOptions { version, compress, ..RdbOptions::default() };
            let data = save_dbs(&mut dbs, &opts, 1_000).expect("save");
            for chunk in [1, 5, 4096, data.len()] {
                check_round_trip(&data, &mut dbs, chunk);
            }
        }
    }
    // Every two-way split of a smaller file.
    let mut small = vec![Db::new()];
    small[0].set(b"k", Value::from_bytes(b"v"), Some(4_000_000_000_000), 0);
    let mut h = HashValue::default();
    h.insert_pair(b"f", &b"x".repeat(40));
    small[0].set(b"h", Value::Hash(Box::new(h)), None, 0);
    let data = save_dbs(&mut small, &RdbOptions::default(), 0).expect("save");
    for at in 0..=data.len() {
        let mut r = RdbReader::new();
        let mut n = 0;
        for part in [&data[..at], &data[at..]] {
            r.feed(part);
            while let Some(ev) = r.next_event().expect("valid") {
                n += matches!(ev, RdbEvent::Key(_)) as usize;
            }
        }
        assert!(r.is_done() && n == 2, "split at {at}");
    }
}

#[test]
fn incremental_writer_chunks_and_replication_aux() {
    let opts = RdbOptions {
        repl: Some(ReplInfo { stream_db: 0, id: "a".repeat(40), offset: 1234 }),
        ..RdbOptions::default()
    };
    let mut w = RdbWriter::new(&opts).expect("writer");
    let mut out = Vec::new();
    w.select_db(0, 2, 0);
    w.write_key(b"a", Value::Int(1).view(), None);
    while let Some(c) = w.take_chunk(3) {
        assert!(c.len() <= 3);
        out.extend_from_slice(&c);
    }
    w.write_key(b"b", Value::Int(2).view(), None);
    w.finish();
    out.extend_from_slice(&w.take_all());
    assert!(out.starts_with(b"REDIS0010"));
    let mut tail = out.clone();
    tail.extend_from_slice(b"*1\r\n$4\r\nPING\r\n");
    let mut r = RdbReader::new();
    r.feed(&tail);
    let mut aux = Vec::new();
    while let Some(ev) = r.next_event().expect("valid") {
        if let RdbEvent::Aux { key, value } = ev {
            aux.push((key, value));
        }
    }
    assert!(aux.contains(&(Bytes::from("repl-offset"), Bytes::from("1234"))));
    assert!(aux.contains(&(Bytes::from("repl-id"), Bytes::from("a".repeat(40)))));
    assert_eq!(r.stats().keys, 2);
    assert_eq!(r.take_remaining(), b"*1\r\n$4\r\nPING\r\n");
    // Checksum off: 0 in the trailer, accepted. A wrong checksum is not.
    let mut w = RdbWriter::new(&RdbOptions { checksum: false, ..RdbOptions::default() }).expect("writer");
    w.finish();
    let data = w.take_all();
    assert!(data.ends_with(&[0; 8]) && read_all(&data, 4).is_ok());
    let mut bad = out.clone();
    let n = bad.len();
    bad[n - 1] ^= 0x40;
    assert!(matches!(read_all(&bad, 100), Err(RdbError::Checksum { .. })));
    assert_eq!(
        RdbWriter::new(&RdbOptions { version: 12, ..RdbOptions::default() }).err(),
        Some(RdbError::Version(12))
    );
}

#[test]
fn refuses_bad_headers_and_truncation() {
    assert!(matches!(read_all(b"RUBBISH00", 9), Err(RdbError::BadMagic(_))));
    assert_eq!(read_all(b"REDIS0012", 9).err(), Some(RdbError::Version(12)));
    assert_eq!(read_all(b"VALKEY011", 9).err(), Some(RdbError::Version(11)));
    let data = unhex(VALKEY_91_FILE);
    for n in 0..data.len() {
        assert!(read_all(&data[..n], 16).is_err(), "prefix {n}");
    }
}

/// Valid inputs to mutate: payloads and whole files.
fn corpus() -> Vec<Vec<u8>> {
    let mut dbs = sample_dbs();
    let mut out = vec![unhex(REDIS_70_FILE), unhex(VALKEY_91_FILE)];
    for (k, db) in [("hash:small", 0), ("list:small", 0), ("set:small", 3), ("zset:small", 3), ("long", 0)] {
        if let Some(e) = dbs[db].get(k.as_bytes(), 0, 0, false) {
            out.push(dump(e.value()));
        }
    }
    let mut small = vec![Db::new()];
    small[0].set(b"k", Value::Str(Bytes::from("xyz".repeat(30))), Some(4_000_000_000_000), 0);
    out.push(save_dbs(&mut small, &RdbOptions::default(), 0).unwrap_or_default());
    out
}

/// Feeds anything to both readers: they may fail but must not panic or loop.
fn exercise(data: &[u8]) {
    let _ = restore(data);
    if data.len() > 10 {
        let _ = decode_payload(&data[..data.len() - 10], 11);
    }
    let mut r = RdbReader::new();
    for part in data.chunks(7) {
        r.feed(part);
        while let Ok(Some(_)) = r.next_event() {}
    }
}

#[test]
fn every_single_byte_mutation_fails_cleanly() {
    for base in corpus() {
        for i in 0..base.len() {
            for x in [0x00, 0xff, 0x80, 0x40, 0x01] {
                let mut m = base.clone();
                m[i] ^= x;
                exercise(&m);
                // The same mutation with the checksums fixed, so the decoders see it.
                if m.len() > 10 && !m.starts_with(b"REDIS") && !m.starts_with(b"VALKEY") {
                    let n = m.len() - 8;
                    let crc = crc64(&m[..n]);
                    m[n..].copy_from_slice(&crc.to_le_bytes());
                    exercise(&m);
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn random_mutations_never_panic(pick in 0usize..16, edits in prop::collection::vec((any::<usize>(), any::<u8>()), 1..8), cut in any::<usize>()) {
        let corpus = corpus();
        let mut m = corpus[pick % corpus.len()].clone();
        for (at, b) in edits {
            let i = at % m.len();
            m[i] = b;
        }
        if m.len() > 10 && !m.starts_with(b"REDIS") && !m.starts_with(b"VALKEY") {
            let n = m.len() - 8;
            let crc = crc64(&m[..n]);
            m[n..].copy_from_slice(&crc.to_le_bytes());
        }
        let keep = cut % (m.len() + 1);
        exercise(&m[..keep]);
        exercise(&m);
    }

    #[test]
    fn random_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..300)) {
        exercise(&data);
        let mut file = b"REDIS0011".to_vec();
        file.extend_from_slice(&data);
        exercise(&file);
    }
}

/// A ziplist of string entries (what Redis before 7.0 wrote for small collections).
fn ziplist_of(entries: &[&[u8]]) -> Vec<u8> {
    let mut z = vec![0u8; 10];
    let (mut prev, mut tail) = (0usize, 10usize);
    for e in entries {
        tail = z.len();
        let start = z.len();
        z.push(prev as u8);
        z.push(e.len() as u8);
        z.extend_from_slice(e);
        prev = z.len() - start;
    }
    z.push(0xff);
    let total = z.len() as u32;
    z[0..4].copy_from_slice(&total.to_le_bytes());
    z[4..8].copy_from_slice(&(tail as u32).to_le_bytes());
    z[8..10].copy_from_slice(&(entries.len() as u16).to_le_bytes());
    z
}

fn with_blob(rtype: u8, blob: &[u8]) -> Vec<u8> {
    let mut body = vec![rtype];
    value::put_str(&mut body, blob, false);
    body
}

#[test]
fn reads_the_pre_7_forms() {
    let z = ziplist_of(&[b"a", b"1", b"b", b"2.5"]);
    let Ok(Value::List(l)) = decode_payload(&with_blob(types::LIST_ZIPLIST, &z), 9) else { panic!("list") };
    assert_eq!(l.len(), 4);
    let Ok(Value::Hash(h)) = decode_payload(&with_blob(types::HASH_ZIPLIST, &z), 9) else { panic!("hash") };
    assert_eq!(h.get(b"b"), Some(&b"2.5"[..]));
    let Ok(Value::ZSet(zs)) = decode_payload(&with_blob(types::ZSET_ZIPLIST, &z), 9) else { panic!("zset") };
    assert_eq!(zs.iter().collect::<Vec<_>>(), vec![(&b"a"[..], 1.0), (&b"b"[..], 2.5)]);
    // Quicklist v1: two ziplist nodes, one of them LZF-compressed as Redis does past 20 bytes.
    let node2 = ziplist_of(&[&b"x".repeat(30), b"y"]);
    let mut body = vec![types::LIST_QUICKLIST, 2];
    value::put_str(&mut body, &z, false);
    value::put_str(&mut body, &node2, true);
    assert!(body.contains(&0xc3), "second node compressed");
    let Ok(Value::List(l)) = decode_payload(&body, 9) else { panic!("quicklist") };
    assert_eq!(l.iter().last(), Some(&b"y"[..]));
    assert_eq!(l.len(), 6);
    // Quicklist v2 with a PLAIN node (a large element stored alone).
    let mut body = vec![types::LIST_QUICKLIST_2, 1, 1];
    value::put_str(&mut body, b"plain element", false);
    let Ok(Value::List(l)) = decode_payload(&body, 11) else { panic!("quicklist 2") };
    assert_eq!(l.iter().collect::<Vec<_>>(), vec![&b"plain element"[..]]);
    // Zipmap (Redis 2.4) and the old text-score ZSET (3).
    let zm = b"\x02\x01a\x03\x01xyz\x00\x02bb\x01\x00q\xff";
    let Ok(Value::Hash(h)) = decode_payload(&with_blob(types::HASH_ZIPMAP, zm), 6) else { panic!("zipmap") };
    assert_eq!((h.get(b"a"), h.get(b"bb")), (Some(&b"xyz"[..]), Some(&b"q"[..])));
    let body = [types::ZSET, 2, 1, b'm', 3, b'1', b'.', b'5', 1, b'n', 254];
    let Ok(Value::ZSet(zs)) = decode_payload(&body, 6) else { panic!("zset 3") };
    assert_eq!(zs.iter().collect::<Vec<_>>(), vec![(&b"m"[..], 1.5), (&b"n"[..], f64::INFINITY)]);
    // Odd entry counts and duplicates are corrupt.
    let odd = ziplist_of(&[b"a", b"1", b"b"]);
    assert!(decode_payload(&with_blob(types::HASH_ZIPLIST, &odd), 9).is_err());
    let dup = ziplist_of(&[b"a", b"1", b"a", b"2"]);
    assert!(decode_payload(&with_blob(types::HASH_ZIPLIST, &dup), 9).is_err());
}

#[test]
fn skips_or_refuses_every_opcode_it_cannot_use() {
    let mut f = b"REDIS0011".to_vec();
    f.extend_from_slice(&[opcodes::MODULE_AUX, 0x05, 2, 2, 5, 3, b'a', b'b', b'c', 4]);
    f.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8, 0]); // a double field, then the module EOF
    f.extend_from_slice(&[opcodes::FUNCTION2, 4, b'c', b'o', b'd', b'e']);
    f.extend_from_slice(&[opcodes::SELECTDB, 2, opcodes::SLOT_INFO, 7, 1, 0, opcodes::IDLE, 0x40, 9]);
    f.extend_from_slice(&[opcodes::FREQ, 3, opcodes::EXPIRETIME, 0x10, 0, 0, 0]);
    f.extend_from_slice(&[types::STRING, 1, b'k', 1, b'v', opcodes::EOF]);
    let crc = crc64(&f);
    f.extend_from_slice(&crc.to_le_bytes());
    let (events, stats) = read_all(&f, 3).expect("reads");
    assert_eq!(
        keys(&events),
        vec![&RdbKey {
            db: 2,
            key: Bytes::from("k"),
            value: Value::from_bytes(b"v"),
            expire_ms: Some(16_000)
        }]
    );
    assert_eq!((stats.module_aux_skipped, stats.functions_skipped), (1, 1));
    for (op, what) in [(opcodes::FUNCTION_PRE_GA, "function"), (opcodes::SLOT_IMPORT, "slot-import")] {
        let mut f = b"VALKEY080".to_vec();
        f.extend_from_slice(&[op, 0, 0, 0]);
        let err = read_all(&f, 64).expect_err("refused");
        assert!(err.to_string().contains(what), "{err}");
    }
    // Redis 7.4's hash-with-metadata type (24) under a REDIS magic: refused, not misread.
    let mut f = b"REDIS0011".to_vec();
    f.extend_from_slice(&[24, 1, b'k', 0]);
    assert_eq!(read_all(&f, 64).err(), Some(RdbError::UnknownType(24)));
}

#[test]
fn hashes_with_field_ttls_are_written_as_valkey_9_does() {
    let mut h = HashValue::default();
    let limits = crate::keyspace::types::hash::HashLimits::default();
    h.set(b"a", b"1", &limits);
    h.set(b"b", b"2", &limits);
    h.set_field_expiry(b"a", 4_000_000_000_000);
    let v = Value::Hash(Box::new(h));
    // DUMP: HASH_2 under version 80, every field with its deadline (-1: none); it restores
    // with the TTL, and other values keep the version asked for.
    let p = dump(v.view());
    assert_eq!(p[0], types::HASH_2);
    assert_eq!(u16::from_le_bytes([p[p.len() - 10], p[p.len() - 9]]), 80);
    let Ok(Value::Hash(back)) = restore(&p) else { panic!("restores") };
    assert_eq!((back.field_expiry(b"a"), back.field_expiry(b"b")), (Some(4_000_000_000_000), None));
    assert_eq!(back.len(), 2);
    let plain = dump(Value::from_bytes(b"x").view());
    assert_eq!(u16::from_le_bytes([plain[plain.len() - 10], plain[plain.len() - 9]]), 11);
    // A whole file: VALKEY080 keeps the TTL, RDB 10 writes the plain hash.
    let mut db = Db::new();
    db.set(b"h", v, None, 0);
    let mut dbs = vec![db];
    for (version, ttl) in [(80u16, Some(4_000_000_000_000)), (10, None)] {
        let opts = RdbOptions { version, ..RdbOptions::default() };
        let data = save_dbs(&mut dbs, &opts, 0).expect("writes");
        let (events, _) = read_all(&data, 5).expect("reads");
        let Value::Hash(h) = &key(&events, "h").value else { panic!("h not a hash") };
        assert_eq!((h.len(), h.field_expiry(b"a")), (2, ttl), "version {version}");
    }
}
