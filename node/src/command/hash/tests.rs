//! Hash handler tests through the in-process harness: what the differential suite cannot
//! check byte for byte (random picks, scans over big tables, NOVALUES, RESP3 shapes of random
//! replies, DUMP/RESTORE), as property checks.

use std::collections::{HashMap, HashSet};

use crate::exec::testing::Harness;

/// Every bulk string of a reply, in order (aggregate headers skipped).
pub(crate) fn bulks(reply: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < reply.len() {
        let end = i + reply[i..].windows(2).position(|w| w == b"\r\n").expect("line end");
        if reply[i] == b'$' {
            let n: usize = std::str::from_utf8(&reply[i + 1..end]).expect("utf8").parse().expect("len");
            out.push(reply[end + 2..end + 2 + n].to_vec());
            i = end + 2 + n + 2;
        } else {
            i = end + 2;
        }
    }
    out
}

/// The header line of a reply (`*3`, `%2`, ...).
pub(crate) fn header(reply: &[u8]) -> String {
    let end = reply.windows(2).position(|w| w == b"\r\n").expect("line end");
    String::from_utf8_lossy(&reply[..end]).into_owned()
}

fn with_fields(n: usize) -> Harness {
    let mut h = Harness::default();
    for i in 0..n {
        assert_eq!(h.run(&format!("HSET h f{i} v{i}")), ":1\r\n");
    }
    h
}

#[test]
fn hrandfield_positive_count_is_distinct_and_capped() {
    for size in [5, 300] {
        let mut h = with_fields(size);
        for count in [1, 2, size / 2, size - 1, size, size + 10] {
            let r = h.run_as(0, &[b"HRANDFIELD", b"h", count.to_string().as_bytes()]);
            let fields = bulks(&r);
            assert_eq!(fields.len(), count.min(size), "count {count} of {size}");
            let distinct: HashSet<_> = fields.iter().collect();
            assert_eq!(distinct.len(), fields.len(), "repeated field for count {count}");
            assert!(fields.iter().all(|f| f.starts_with(b"f")));
        }
    }
}

#[test]
fn hrandfield_negative_count_repeats_and_withvalues_pairs_match() {
    let mut h = with_fields(3);
    let r = h.run_as(0, &[b"HRANDFIELD", b"h", b"-50"]);
    let fields = bulks(&r);
    assert_eq!(fields.len(), 50);
    assert!(fields.iter().collect::<HashSet<_>>().len() <= 3);
    for count in ["-20", "2", "3", "10"] {
        let r = h.run_as(0, &[b"HRANDFIELD", b"h", count.as_bytes(), b"WITHVALUES"]);
        let items = bulks(&r);
        assert_eq!(items.len() % 2, 0);
        for pair in items.chunks(2) {
            assert_eq!(pair[1][1..], pair[0][1..], "value of {:?}", pair[0]);
        }
    }
    // RESP3: an array of [field, value] arrays.
    h.run("HELLO 3");
    let r = h.run("HRANDFIELD h -4 WITHVALUES");
    assert!(r.starts_with("*4\r\n*2\r\n$"), "{r:?}");
    let r = h.run("HRANDFIELD h 2");
    assert!(r.starts_with("*2\r\n$"), "{r:?}");
}

#[test]
fn hscan_returns_every_stable_field_across_writes() {
    let mut h = with_fields(1000);
    assert_eq!(h.run("OBJECT ENCODING h"), "$9\r\nhashtable\r\n");
    let mut seen: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut cursor = b"0".to_vec();
    let mut step = 0;
    loop {
        let r = h.run_as(0, &[b"HSCAN", b"h", &cursor, b"COUNT", b"7"]);
        let items = bulks(&r);
        cursor = items[0].clone();
        for pair in items[1..].chunks(2) {
            *seen.entry(pair[0].clone()).or_default() += 1;
        }
        // Grow the table (and shrink it) while scanning.
        step += 1;
        h.run(&format!("HSET h new{step} x"));
        if step % 3 == 0 {
            h.run(&format!("HDEL h f{}", 900 + step % 100));
        }
        if cursor == b"0" {
            break;
        }
        assert!(step < 10_000, "scan does not end");
    }
    for i in 0..900 {
        assert!(seen.get(format!("f{i}").as_bytes()).is_some_and(|&n| n >= 1), "f{i} missed");
    }
}

#[test]
fn hscan_novalues_and_option_errors() {
    let mut h = Harness::default();
    h.run("HSET h a 1 b 2");
    assert_eq!(h.run("HSCAN h 0 NOVALUES"), "*2\r\n$1\r\n0\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n");
    assert_eq!(h.run("HSCAN h 0 novalues MATCH b"), "*2\r\n$1\r\n0\r\n*1\r\n$1\r\nb\r\n");
    assert_eq!(h.run("HSCAN h 0 NOSCORES"), "-ERR NOSCORES option can only be used in ZSCAN\r\n");
    assert_eq!(h.run("HSCAN h -1"), "-ERR invalid cursor\r\n");
    assert_eq!(h.run("HSCAN nokey 0 NOVALUES"), "*2\r\n$1\r\n0\r\n*0\r\n");
}

#[test]
fn a_million_fields_stay_o1() {
    let mut h = Harness::default();
    // Build through the type directly (the harness would dominate), then use the commands.
    let mut v = crate::keyspace::types::HashValue::default();
    let lim = crate::keyspace::types::hash::HashLimits::default();
    for i in 0..1_000_000u32 {
        v.set(format!("field:{i}").as_bytes(), &i.to_le_bytes(), &lim);
    }
    let clock = h.srv.lru_clock();
    h.srv.dbs[0].set(b"m", crate::keyspace::Value::Hash(Box::new(v)), None, clock);
    let start = std::time::Instant::now();
    for i in (0..1_000_000).step_by(997) {
        assert_eq!(h.run(&format!("HEXISTS m field:{i}")), ":1\r\n");
        assert_eq!(h.run(&format!("HEXISTS m nofield:{i}")), ":0\r\n");
    }
    // ~2000 lookups: linear scans would take minutes even in a debug build.
    assert!(start.elapsed() < std::time::Duration::from_secs(20), "{:?}", start.elapsed());
    assert_eq!(h.run("HLEN m"), ":1000000\r\n");
}

#[test]
fn dump_restore_round_trip_keeps_contents_and_encoding() {
    let mut h = Harness::default();
    h.run("HSET small f1 v1 f2 2");
    for i in 0..200 {
        h.run(&format!("HSET big f{i} v{i}"));
    }
    for (key, enc) in [("small", "listpack"), ("big", "hashtable")] {
        let dump = h.run_as(0, &[b"DUMP", key.as_bytes()]);
        let payload = bulks(&dump).remove(0);
        let copy = format!("{key}-copy");
        assert_eq!(h.run_as(0, &[b"RESTORE", copy.as_bytes(), b"0", &payload]), b"+OK\r\n");
        let a = bulks(&h.run_as(0, &[b"HGETALL", key.as_bytes()]));
        let b = bulks(&h.run_as(0, &[b"HGETALL", copy.as_bytes()]));
        let pairs =
            |v: Vec<Vec<u8>>| v.chunks(2).map(|p| (p[0].clone(), p[1].clone())).collect::<HashMap<_, _>>();
        assert_eq!(pairs(a), pairs(b));
        assert_eq!(h.run(&format!("OBJECT ENCODING {copy}")), format!("${}\r\n{enc}\r\n", enc.len()));
    }
}

#[test]
fn memory_usage_grows_with_the_hash() {
    let mut h = Harness::default();
    h.run("HSET h a 1");
    let small: i64 = h.run("MEMORY USAGE h")[1..].trim().parse().expect("int");
    for i in 0..500 {
        h.run(&format!("HSET h field{i} {}", "x".repeat(50)));
    }
    let big: i64 = h.run("MEMORY USAGE h")[1..].trim().parse().expect("int");
    assert!(big > small + 500 * 50, "{small} -> {big}");
}

#[test]
fn resp3_shapes() {
    let mut h = Harness::default();
    h.run("HELLO 3");
    h.run("HSET h a 1");
    assert_eq!(h.run("HGETALL h"), "%1\r\n$1\r\na\r\n$1\r\n1\r\n");
    assert_eq!(h.run("HGETALL nokey"), "%0\r\n");
    assert_eq!(h.run("HRANDFIELD nokey"), "_\r\n");
    assert_eq!(h.run("HGET h nofield"), "_\r\n");
    assert_eq!(header(&h.run_as(0, &[b"HMGET", b"h", b"a", b"b"])), "*2");
}

#[test]
fn presized_hset_converts_as_valkey_8() {
    // Valkey 8's hashTypeTryConversion: more new pairs than the listpack limit convert
    // first, even when they repeat one field.
    let mut h = Harness::default();
    h.run("CONFIG SET hash-max-listpack-entries 2");
    assert_eq!(h.run("HSET h a 1 a 2 a 3"), ":1\r\n");
    assert_eq!(h.run("OBJECT ENCODING h"), "$9\r\nhashtable\r\n");
    assert_eq!(h.run("HSET k a 1 b 2"), ":2\r\n");
    assert_eq!(h.run("OBJECT ENCODING k"), "$8\r\nlistpack\r\n");
}
