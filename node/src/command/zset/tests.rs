//! Handler tests through the in-process harness: what the differential suite cannot compare
//! against Redis 7.0 (Valkey 8-only forms, shortest-form doubles, big sets, sets as inputs,
//! DUMP/RESTORE round trips).

use crate::exec::testing::Harness;
use crate::keyspace::types::SetValue;
use crate::keyspace::Value;

fn h() -> Harness {
    Harness::default()
}

fn resp3(h: &mut Harness) {
    h.clients[0].st.resp3 = true;
}

#[test]
fn scores_reply_in_the_shortest_round_trip_form() {
    let mut h = h();
    h.run("ZADD z 1.1 a 0.1 b 1e20 c 0.000001 d");
    assert_eq!(h.run("ZSCORE z a"), "$3\r\n1.1\r\n");
    assert_eq!(h.run("ZINCRBY z 0.2 b"), "$19\r\n0.30000000000000004\r\n");
    assert_eq!(h.run("ZSCORE z c"), "$5\r\n1e+20\r\n");
    assert_eq!(h.run("ZSCORE z d"), "$8\r\n0.000001\r\n");
    resp3(&mut h);
    assert_eq!(h.run("ZSCORE z a"), ",1.1\r\n");
}

#[test]
fn rank_with_score_as_valkey_8() {
    let mut h = h();
    h.run("ZADD z 1 a 2.5 b");
    assert_eq!(h.run("ZRANK z b WITHSCORE"), "*2\r\n:1\r\n$3\r\n2.5\r\n");
    assert_eq!(h.run("ZREVRANK z b withscore"), "*2\r\n:0\r\n$3\r\n2.5\r\n");
    assert_eq!(h.run("ZRANK z nomember WITHSCORE"), "*-1\r\n");
    assert_eq!(h.run("ZRANK nokey a WITHSCORE"), "*-1\r\n");
    assert_eq!(h.run("ZRANK z a bogus"), "-ERR syntax error\r\n");
    assert_eq!(h.run("ZRANK z a WITHSCORE x"), "-ERR wrong number of arguments for 'zrank' command\r\n");
    resp3(&mut h);
    assert_eq!(h.run("ZRANK z b WITHSCORE"), "*2\r\n:1\r\n,2.5\r\n");
    assert_eq!(h.run("ZRANK z nomember WITHSCORE"), "_\r\n");
}

#[test]
fn incr_to_nan_is_refused_and_changes_nothing() {
    let mut h = h();
    h.run("ZADD z inf a");
    assert_eq!(h.run("ZINCRBY z -inf a"), "-ERR resulting score is not a number (NaN)\r\n");
    assert_eq!(h.run("ZADD z INCR -inf a"), "-ERR resulting score is not a number (NaN)\r\n");
    assert_eq!(h.run("ZSCORE z a"), "$3\r\ninf\r\n");
}

#[test]
fn a_million_members_rank_and_range_in_log_time() {
    let mut h = h();
    // Built through the type directly: a million ZADD round trips would dominate the test.
    let mut z = crate::keyspace::types::ZSetValue::default();
    for i in 0..1_000_000u32 {
        z.insert_scored(format!("m{i:07}").as_bytes(), f64::from(i));
    }
    h.srv.dbs[0].set(b"big", Value::ZSet(Box::new(z)), None, 0);
    assert_eq!(h.run("OBJECT ENCODING big"), "$8\r\nskiplist\r\n");
    assert_eq!(h.run("ZCARD big"), ":1000000\r\n");
    let t = std::time::Instant::now();
    for i in (0..1_000_000).step_by(9973) {
        assert_eq!(h.run(&format!("ZRANK big m{i:07}")), format!(":{i}\r\n"));
        let r = h.run(&format!("ZRANGE big {i} {i}"));
        assert_eq!(r, format!("*1\r\n$8\r\nm{i:07}\r\n"));
    }
    assert_eq!(
        h.run("ZRANGE big 500000 500001 WITHSCORES"),
        "*4\r\n$8\r\nm0500000\r\n$6\r\n500000\r\n$8\r\nm0500001\r\n$6\r\n500001\r\n"
    );
    assert_eq!(h.run("ZCOUNT big (10 20"), ":10\r\n");
    assert_eq!(h.run("ZRANGE big 999998 +inf BYSCORE"), "*2\r\n$8\r\nm0999998\r\n$8\r\nm0999999\r\n");
    assert_eq!(h.run("ZREVRANK big m0000000"), ":999999\r\n");
    // ~200 rank and range queries: linear scans would take seconds even in release builds.
    assert!(t.elapsed() < std::time::Duration::from_secs(5), "{:?}", t.elapsed());
    assert_eq!(h.run("ZREMRANGEBYRANK big 0 499999"), ":500000\r\n");
    assert_eq!(h.run("ZRANK big m0500000"), ":0\r\n");
}

#[test]
fn zscan_of_a_big_set_visits_every_member_once() {
    let mut h = h();
    h.run("CONFIG SET zset-max-listpack-entries 4");
    let members: Vec<String> = (0..50).map(|i| format!("m{i}")).collect();
    h.run(&format!(
        "ZADD z {}",
        members.iter().enumerate().map(|(i, m)| format!("{i} {m}")).collect::<Vec<_>>().join(" ")
    ));
    assert_eq!(h.run("OBJECT ENCODING z"), "$8\r\nskiplist\r\n");
    let mut cursor = "0".to_string();
    let mut seen = Vec::new();
    for _ in 0..100 {
        let r = h.run(&format!("ZSCAN z {cursor} COUNT 7"));
        let lines: Vec<&str> = r.split("\r\n").collect();
        cursor = lines[2].to_string();
        // Pairs of (member, score) bulk strings after the inner array header.
        let items: Vec<&str> = lines[5..].iter().step_by(2).copied().filter(|l| !l.is_empty()).collect();
        for pair in items.chunks(2) {
            seen.push(pair[0].to_string());
        }
        if cursor == "0" {
            break;
        }
    }
    assert_eq!(cursor, "0");
    seen.sort();
    let mut want = members.clone();
    want.sort();
    assert_eq!(seen, want);
    let r = h.run("ZSCAN z 0 COUNT 100 MATCH m1* NOSCORES");
    assert!(r.starts_with("*2\r\n$1\r\n0\r\n*11\r\n"), "{r}");
    assert_eq!(h.run("ZSCAN z 0 NOVALUES"), "-ERR NOVALUES option can only be used in HSCAN\r\n");
}

#[test]
fn plain_sets_count_with_score_one() {
    let mut h = h();
    let mut s = SetValue::default();
    for m in ["y", "w", "v"] {
        s.insert_member(m.as_bytes());
    }
    h.srv.dbs[0].set(b"s", Value::Set(Box::new(s)), None, 0);
    h.run("ZADD a 1 x 2 y 3 z");
    assert_eq!(h.run("ZINTER 2 a s WITHSCORES"), "*2\r\n$1\r\ny\r\n$1\r\n3\r\n");
    assert_eq!(
        h.run("ZUNION 2 a s WEIGHTS 1 10"),
        "*5\r\n$1\r\nx\r\n$1\r\nz\r\n$1\r\nv\r\n$1\r\nw\r\n$1\r\ny\r\n"
    );
    assert_eq!(h.run("ZDIFF 2 s a WITHSCORES"), "*4\r\n$1\r\nv\r\n$1\r\n1\r\n$1\r\nw\r\n$1\r\n1\r\n");
    assert_eq!(h.run("ZINTERCARD 2 a s"), ":1\r\n");
    assert_eq!(h.run("ZINTERSTORE out 2 s s"), ":3\r\n");
    assert_eq!(h.run("TYPE out"), "+zset\r\n");
    // A set is not a sorted set for the single-key commands.
    assert!(h.run("ZCARD s").starts_with("-WRONGTYPE"));
}

#[test]
fn dump_restore_round_trips_both_encodings() {
    let mut h = h();
    h.run("ZADD small 1.5 a -2 b inf c 0 d");
    let members: Vec<String> = (0..300).map(|i| format!("{} m{i}", f64::from(i) / 4.0)).collect();
    h.run(&format!("ZADD big {}", members.join(" ")));
    for (key, enc) in [("small", "listpack"), ("big", "skiplist")] {
        let payload = h.run_as(0, &[b"DUMP", key.as_bytes()]);
        let start = payload.iter().position(|&b| b == b'\n').expect("bulk header") + 1;
        let payload = &payload[start..payload.len() - 2];
        let copy = format!("{key}2");
        assert_eq!(h.run_as(0, &[b"RESTORE", copy.as_bytes(), b"0", payload]), b"+OK\r\n");
        assert_eq!(
            h.run(&format!("ZRANGE {copy} 0 -1 WITHSCORES")),
            h.run(&format!("ZRANGE {key} 0 -1 WITHSCORES"))
        );
        assert_eq!(h.run(&format!("OBJECT ENCODING {copy}")), format!("${}\r\n{enc}\r\n", enc.len()));
    }
}

#[test]
fn negative_zero_keeps_its_sign_only_in_a_skiplist() {
    let mut h = h();
    h.run("ZADD small -0 a");
    assert_eq!(h.run("ZSCORE small a"), "$1\r\n0\r\n");
    h.run("CONFIG SET zset-max-listpack-entries 0");
    h.run("ZADD big -0 a");
    assert_eq!(h.run("ZSCORE big a"), "$2\r\n-0\r\n");
}

#[test]
fn pops_and_store_results_in_resp3() {
    let mut h = h();
    resp3(&mut h);
    h.run("ZADD z 1 a 2 b 3 c");
    assert_eq!(h.run("ZPOPMIN z"), "*2\r\n$1\r\na\r\n,1\r\n");
    assert_eq!(h.run("ZPOPMAX z 1"), "*1\r\n*2\r\n$1\r\nc\r\n,3\r\n");
    assert_eq!(h.run("ZMPOP 1 z MIN"), "*2\r\n$1\r\nz\r\n*1\r\n*2\r\n$1\r\nb\r\n,2\r\n");
    assert_eq!(h.run("ZMPOP 1 z MIN"), "_\r\n");
    assert_eq!(h.run("EXISTS z"), ":0\r\n");
}

#[test]
fn pop_is_shared_with_the_blocking_forms() {
    let mut z = crate::keyspace::types::ZSetValue::default();
    for (m, s) in [("a", 1.0), ("b", 2.0), ("c", 3.0)] {
        z.insert_scored(m.as_bytes(), s);
    }
    let got = super::pop(&mut z, false, 2);
    assert_eq!(got, vec![(b"a"[..].into(), 1.0), (b"b"[..].into(), 2.0)]);
    assert_eq!(super::pop(&mut z, true, 5).len(), 1);
    assert!(z.is_empty());
}

#[test]
fn memory_usage_grows_with_the_set() {
    let mut h = h();
    h.run("ZADD z 1 a");
    let small: i64 = h.run("MEMORY USAGE z").trim_start_matches(':').trim().parse().expect("int");
    let members: Vec<String> = (0..1000).map(|i| format!("{i} member{i}")).collect();
    h.run(&format!("ZADD z {}", members.join(" ")));
    let big: i64 = h.run("MEMORY USAGE z").trim_start_matches(':').trim().parse().expect("int");
    assert!(big > small + 1000 * 16, "{small} -> {big}");
}
