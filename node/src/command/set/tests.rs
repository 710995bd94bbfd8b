//! Set handler tests through the in-process harness: random picks and pops as property
//! checks, scans over big tables, the listpack encoding (which Redis 7.0 lacks, so the
//! differential suite cannot check it), RESP3 shapes and DUMP/RESTORE.

use std::collections::{HashMap, HashSet};

use crate::command::hash::tests::{bulks, header};
use crate::exec::testing::Harness;

fn with_members(n: usize) -> Harness {
    let mut h = Harness::default();
    for i in 0..n {
        assert_eq!(h.run(&format!("SADD s m{i}")), ":1\r\n");
    }
    h
}

fn members(h: &mut Harness, key: &str) -> HashSet<Vec<u8>> {
    bulks(&h.run_as(0, &[b"SMEMBERS", key.as_bytes()])).into_iter().collect()
}

fn enc(h: &mut Harness, key: &str) -> String {
    let r = h.run(&format!("OBJECT ENCODING {key}"));
    r.lines().nth(1).unwrap_or("").to_string()
}

#[test]
fn srandmember_properties() {
    for size in [5, 300] {
        let mut h = with_members(size);
        let all = members(&mut h, "s");
        for count in [1, 2, size / 2, size - 1, size, size + 3] {
            let got = bulks(&h.run_as(0, &[b"SRANDMEMBER", b"s", count.to_string().as_bytes()]));
            assert_eq!(got.len(), count.min(size));
            assert_eq!(got.iter().collect::<HashSet<_>>().len(), got.len(), "distinct for {count}");
            assert!(got.iter().all(|m| all.contains(m)));
        }
        let got = bulks(&h.run("SRANDMEMBER s -1000").into_bytes());
        assert_eq!(got.len(), 1000);
        assert!(got.iter().all(|m| all.contains(m)));
        // With 1000 draws from 5 members, every member shows up.
        if size == 5 {
            assert_eq!(got.iter().collect::<HashSet<_>>().len(), 5);
        }
        assert_eq!(members(&mut h, "s"), all, "SRANDMEMBER must not change the set");
    }
}

#[test]
fn spop_properties() {
    for (size, count) in [(10, 1), (10, 3), (10, 9), (300, 20), (300, 290), (300, 300), (5, 50)] {
        let mut h = with_members(size);
        let before = members(&mut h, "s");
        let popped = bulks(&h.run_as(0, &[b"SPOP", b"s", count.to_string().as_bytes()]));
        assert_eq!(popped.len(), count.min(size));
        let popped: HashSet<_> = popped.into_iter().collect();
        assert_eq!(popped.len(), count.min(size), "distinct");
        let after = members(&mut h, "s");
        assert!(popped.is_disjoint(&after));
        assert_eq!(popped.union(&after).cloned().collect::<HashSet<_>>(), before);
        assert_eq!(h.run("EXISTS s"), if count >= size { ":0\r\n" } else { ":1\r\n" });
    }
    let mut h = with_members(3);
    for _ in 0..3 {
        assert!(h.run("SPOP s").starts_with("$2\r\nm"));
    }
    assert_eq!(h.run("EXISTS s"), ":0\r\n");
}

#[test]
fn spop_rebuild_keeps_a_compact_encoding() {
    // Popping most of a big set rebuilds it from the survivors, as Valkey does.
    let mut h = with_members(300);
    assert_eq!(enc(&mut h, "s"), "hashtable");
    h.run("SPOP s 295");
    assert_eq!(h.run("SCARD s"), ":5\r\n");
    assert_eq!(enc(&mut h, "s"), "listpack");
}

#[test]
fn sscan_returns_every_stable_member_across_writes() {
    let mut h = with_members(1000);
    let mut seen: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut cursor = b"0".to_vec();
    let mut step = 0;
    loop {
        let items = bulks(&h.run_as(0, &[b"SSCAN", b"s", &cursor, b"COUNT", b"5"]));
        cursor = items[0].clone();
        for m in &items[1..] {
            *seen.entry(m.clone()).or_default() += 1;
        }
        step += 1;
        h.run(&format!("SADD s new{step} new{step}b"));
        h.run(&format!("SREM s m{}", 900 + step % 100));
        if cursor == b"0" {
            break;
        }
        assert!(step < 10_000, "scan does not end");
    }
    for i in 0..900 {
        assert!(seen.contains_key(format!("m{i}").as_bytes()), "m{i} missed");
    }
    assert_eq!(h.run("SSCAN s 0 NOVALUES"), "-ERR NOVALUES option can only be used in HSCAN\r\n");
}

#[test]
fn listpack_encoding_follows_valkey_8() {
    let mut h = Harness::default();
    h.run("SADD a x y");
    assert_eq!(enc(&mut h, "a"), "listpack");
    h.run("SADD i 1 2 3");
    assert_eq!(enc(&mut h, "i"), "intset");
    h.run("SADD i 05");
    assert_eq!(enc(&mut h, "i"), "listpack");
    assert_eq!(h.run("SMEMBERS i"), "*4\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n$2\r\n05\r\n");
    h.run(&format!("SADD a {}", "v".repeat(65)));
    assert_eq!(enc(&mut h, "a"), "hashtable");
    h.run("CONFIG SET set-max-listpack-entries 2");
    h.run("SADD b x y");
    assert_eq!(enc(&mut h, "b"), "listpack");
    h.run("SADD b z");
    assert_eq!(enc(&mut h, "b"), "hashtable");
    h.run("SADD c x y z");
    assert_eq!(enc(&mut h, "c"), "hashtable", "size hint past the limit");
    h.run("CONFIG SET set-max-listpack-entries 128");
    // SMOVE creates the destination from the member; SINTERSTORE of strings is a listpack,
    // of integers an intset.
    h.run("SADD src a 7");
    h.run("SMOVE src d1 a");
    assert_eq!(enc(&mut h, "d1"), "listpack");
    h.run("SMOVE src d2 7");
    assert_eq!(enc(&mut h, "d2"), "intset");
    h.run("SADD p q 1 2");
    h.run("SADD r q 1 2 3");
    h.run("SINTERSTORE d3 p r");
    assert_eq!(enc(&mut h, "d3"), "listpack");
    h.run("SREM p q");
    h.run("SINTERSTORE d4 p r");
    assert_eq!(enc(&mut h, "d4"), "intset");
}

#[test]
fn algebra_on_big_sets() {
    let mut h = Harness::default();
    for i in 0..400 {
        h.run(&format!("SADD a {i} x{i}"));
        if i % 2 == 0 {
            h.run(&format!("SADD b {i}"));
        }
    }
    assert_eq!(h.run("SINTERCARD 2 a b"), ":200\r\n");
    assert_eq!(h.run("SINTERCARD 2 a b LIMIT 7"), ":7\r\n");
    assert_eq!(h.run("SINTERSTORE i a b"), ":200\r\n");
    assert_eq!(enc(&mut h, "i"), "intset");
    assert_eq!(h.run("SDIFFSTORE d a b"), ":600\r\n");
    assert_eq!(h.run("SUNIONSTORE u a b"), ":800\r\n");
    assert_eq!(enc(&mut h, "u"), "hashtable");
    // SDIFF's second algorithm (many members to subtract) gives the same result.
    for i in 0..5000 {
        h.run(&format!("SADD huge y{i}"));
    }
    h.run("SADD small x1 x2 y3");
    assert_eq!(bulks(&h.run("SDIFF small huge").into_bytes()).len(), 2);
    assert_eq!(bulks(&h.run("SDIFF small a huge").into_bytes()), Vec::<Vec<u8>>::new());
}

#[test]
fn resp3_shapes() {
    let mut h = Harness::default();
    h.run("HELLO 3");
    h.run("SADD s a b");
    assert_eq!(header(&h.run("SMEMBERS s").into_bytes()), "~2");
    assert_eq!(h.run("SMEMBERS nokey"), "~0\r\n");
    assert_eq!(header(&h.run("SINTER s s").into_bytes()), "~2");
    assert_eq!(h.run("SINTER s nokey"), "~0\r\n");
    assert_eq!(header(&h.run("SUNION s nokey").into_bytes()), "~2");
    assert_eq!(h.run("SDIFF s s"), "~0\r\n");
    assert_eq!(header(&h.run("SPOP s 1").into_bytes()), "~1");
    assert_eq!(h.run("SPOP nokey 1"), "~0\r\n");
    assert_eq!(h.run("SPOP nokey"), "_\r\n");
    assert_eq!(h.run("SRANDMEMBER nokey"), "_\r\n");
    assert_eq!(header(&h.run("SRANDMEMBER s 5").into_bytes()), "*1");
}

#[test]
fn dump_restore_round_trip_for_every_encoding() {
    let mut h = Harness::default();
    h.run("SADD ints 3 1 2");
    h.run("SADD strs a b 1");
    for i in 0..200 {
        h.run(&format!("SADD big m{i}"));
    }
    for (key, e) in [("ints", "intset"), ("strs", "listpack"), ("big", "hashtable")] {
        let payload = bulks(&h.run_as(0, &[b"DUMP", key.as_bytes()])).remove(0);
        let copy = format!("{key}-copy");
        assert_eq!(h.run_as(0, &[b"RESTORE", copy.as_bytes(), b"0", &payload]), b"+OK\r\n");
        assert_eq!(members(&mut h, key), members(&mut h, &copy));
        assert_eq!(enc(&mut h, &copy), e);
    }
}

#[test]
fn copy_and_rename_keep_independent_values() {
    let mut h = Harness::default();
    h.run("SADD s a b");
    assert_eq!(h.run("COPY s t"), ":1\r\n");
    h.run("SADD t c");
    assert_eq!(h.run("SCARD s"), ":2\r\n");
    assert_eq!(h.run("RENAME t u"), "+OK\r\n");
    assert_eq!(h.run("SCARD u"), ":3\r\n");
    assert_eq!(h.run("TYPE u"), "+set\r\n");
    let mut keys = bulks(&h.run("SCAN 0 TYPE set COUNT 100").into_bytes());
    keys.sort();
    assert_eq!(keys, [&b"0"[..], b"s", b"u"]);
}
