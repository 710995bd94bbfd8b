//! Handler tests through the in-process harness; the differential suite (tests/diff/sort.txt)
//! compares everything else with redis-server.

use crate::exec::testing::Harness;

#[test]
fn numeric_alpha_limit_and_store() {
    let mut h = Harness::default();
    h.run("RPUSH l 3 10 2 1");
    assert_eq!(h.run("SORT l LIMIT 1 2"), "*2\r\n$1\r\n2\r\n$1\r\n3\r\n");
    assert_eq!(h.run("SORT l ALPHA DESC LIMIT 0 1"), "*1\r\n$1\r\n3\r\n");
    assert_eq!(h.run("SORT l LIMIT 9223372036854775807 -9223372036854775808"), "*0\r\n");
    assert_eq!(h.run("SORT l STORE dst"), ":4\r\n");
    assert_eq!(h.run("LRANGE dst 0 -1"), "*4\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n$2\r\n10\r\n");
    assert_eq!(h.run("SORT missing STORE dst"), ":0\r\n");
    assert_eq!(h.run("EXISTS dst"), ":0\r\n");
    assert_eq!(h.run("SORT_RO l STORE dst"), "-ERR syntax error\r\n");
    h.run("RPUSH bad 1 x");
    assert_eq!(h.run("SORT bad"), "-ERR One or more scores can't be converted into double\r\n");
}

#[test]
fn by_and_get_patterns() {
    let mut h = Harness::default();
    h.run("RPUSH l a b c");
    h.run("MSET w_a 3 w_b 1 w_c 2");
    h.run("HSET h_a f x");
    assert_eq!(h.run("SORT l BY w_*"), "*3\r\n$1\r\nb\r\n$1\r\nc\r\n$1\r\na\r\n");
    assert_eq!(h.run("SORT l BY w_* GET # GET h_*->f LIMIT 0 1 DESC"), "*2\r\n$1\r\na\r\n$1\r\nx\r\n");
    assert_eq!(h.run("SORT l BY nosort DESC GET w_*"), "*3\r\n$1\r\n2\r\n$1\r\n1\r\n$1\r\n3\r\n");
    h.run("ZADD z 1 c 2 b 3 a");
    assert_eq!(h.run("SORT z BY nosort LIMIT 1 5 DESC"), "*2\r\n$1\r\nb\r\n$1\r\nc\r\n");
}

#[test]
fn store_publishes_sortstore_or_del() {
    let mut h = Harness::default();
    let s = h.add_client();
    h.run("CONFIG SET notify-keyspace-events KEA");
    h.run_as(s, &[b"PSUBSCRIBE", b"__keyevent@0__:*"]);
    h.take_pending(s);
    h.run("RPUSH l b a");
    h.run("SORT l ALPHA STORE dst");
    let got = h.take_pending(s);
    assert!(got.contains("__keyevent@0__:sortstore\r\n$3\r\ndst\r\n"), "{got}");
    h.run("SORT missing STORE dst");
    let got = h.take_pending(s);
    assert!(got.contains("__keyevent@0__:del\r\n$3\r\ndst\r\n"), "{got}");
    h.run("SORT missing STORE dst");
    assert_eq!(h.take_pending(s), "", "nothing to delete, no event");
}

#[test]
fn stored_results_take_valkeys_list_encoding() {
    let mut h = Harness::default();
    h.run("RPUSH small 3 1 2");
    h.run("SORT small STORE a");
    assert_eq!(h.run("OBJECT ENCODING a"), "$8\r\nlistpack\r\n");
    for i in 0..2000 {
        h.run(&format!("RPUSH big element-{i:05}"));
    }
    h.run("SORT big ALPHA STORE b");
    assert_eq!(h.run("OBJECT ENCODING b"), "$9\r\nquicklist\r\n");
    assert_eq!(h.run("LLEN b"), ":2000\r\n");
}

#[test]
fn store_serves_clients_blocked_on_the_destination() {
    let mut h = Harness::default();
    let b = h.add_client();
    assert_eq!(h.run_as(b, &[b"BLPOP", b"dst", b"0"]), b"");
    h.run("RPUSH l 2 1");
    assert_eq!(h.run("SORT l STORE dst"), ":2\r\n");
    assert_eq!(h.take_pending(b), "*2\r\n$3\r\ndst\r\n$1\r\n1\r\n");
    assert_eq!(h.run("LRANGE dst 0 -1"), "*1\r\n$1\r\n2\r\n");
}
