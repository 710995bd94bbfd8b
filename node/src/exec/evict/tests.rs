//! Policy behaviour in-process, with the memory figure replaced by "1000 bytes per key" so
//! that which key goes is deterministic enough to assert on.

use bytes::Bytes;

use crate::exec::testing::Harness;
use crate::exec::Server;
use crate::keyspace::Value;

/// 1000 bytes per key over every database.
fn per_key(srv: &Server) -> u64 {
    srv.dbs.iter().map(|d| d.len() as u64).sum::<u64>() * 1000
}

/// A node holding at most `keys` keys under `policy`.
fn node(policy: &str, keys: u64) -> Harness {
    let mut h = Harness::default();
    h.srv.evict.used = per_key;
    assert_eq!(h.run(&format!("CONFIG SET maxmemory {} maxmemory-policy {policy}", keys * 1000)), "+OK\r\n");
    h
}

fn exists(h: &mut Harness, key: &str) -> bool {
    h.run(&format!("EXISTS {key}")) == ":1\r\n"
}

#[test]
fn noeviction_refuses_writes_but_serves_reads_and_deletes() {
    let mut h = node("noeviction", 3);
    for i in 0..4 {
        assert_eq!(h.run(&format!("SET k{i} v")), "+OK\r\n", "under the limit before each command");
    }
    assert_eq!(h.run("SET k9 v"), format!("-{}\r\n", super::OOM));
    assert_eq!(h.run("INCR k0"), format!("-{}\r\n", super::OOM));
    assert_eq!(h.run("GET k0"), "$1\r\nv\r\n");
    assert_eq!(h.srv.dbs[0].len(), 4, "nothing evicted");
    assert_eq!(h.run("DEL k0"), ":1\r\n", "DEL is not denyoom");
    assert_eq!(h.run("SET k9 v"), "+OK\r\n", "back under the limit");
    assert!(h.run("INFO stats").contains("evicted_keys:0\r\n"));
    assert!(h.run("INFO stats").contains("total_error_replies:2\r\n"));
}

#[test]
fn allkeys_policies_hold_the_key_count_and_count_evictions() {
    for policy in ["allkeys-lru", "allkeys-lfu", "allkeys-random"] {
        let mut h = node(policy, 10);
        for i in 0..100 {
            assert_eq!(h.run(&format!("SET k{i} v")), "+OK\r\n", "{policy}");
            assert!(h.srv.dbs[0].len() <= 11, "{policy}: {} keys", h.srv.dbs[0].len());
        }
        assert_eq!(h.srv.stats.evicted_keys, 89, "{policy}");
        // INFO evicts the eleventh key before it reports.
        assert!(h.run("INFO stats").contains("evicted_keys:90\r\n"), "{policy}");
        assert_eq!(h.srv.dbs[0].len(), 10, "{policy}");
    }
}

#[test]
fn lru_evicts_the_longest_idle_first() {
    let mut h = node("allkeys-lru", 5);
    // Samples at least as many as there are keys: every key is looked at.
    h.run("CONFIG SET maxmemory-samples 10");
    let now = h.srv.raw_lru_clock().wrapping_add(1000);
    // Access fields as if key i was last touched 100 - i seconds ago.
    for i in 0..6u32 {
        h.srv.dbs[0].set(format!("k{i}").as_bytes(), Value::Int(1), None, now - 100 + i);
    }
    h.srv.started -= std::time::Duration::from_secs(1000);
    assert_eq!(h.run("PING"), "+PONG\r\n");
    assert!(!exists(&mut h, "k0"), "the oldest access goes");
    for i in 1..6 {
        assert!(exists(&mut h, &format!("k{i}")), "k{i}");
    }
}

#[test]
fn lfu_evicts_the_least_frequent_first() {
    let mut h = node("allkeys-lfu", 3);
    let min = crate::keyspace::evict::lfu_minutes(h.srv.now_ms);
    for (i, counter) in [(0u32, 40u32), (1, 2), (2, 30), (3, 20)] {
        h.srv.dbs[0].set(format!("k{i}").as_bytes(), Value::Int(1), None, (min << 8) | counter);
    }
    assert_eq!(h.run("PING"), "+PONG\r\n");
    assert!(!exists(&mut h, "k1"), "counter 2 is the least frequent");
    assert_eq!(h.srv.dbs[0].len(), 3);
}

#[test]
fn volatile_ttl_evicts_the_nearest_deadline_first() {
    let mut h = node("volatile-ttl", 5);
    assert_eq!(h.run("SET persistent v"), "+OK\r\n");
    for (i, ttl) in [(0, 500), (1, 100), (2, 900), (3, 300), (4, 700)] {
        assert_eq!(h.run(&format!("SET k{i} v EX {ttl}")), "+OK\r\n");
    }
    // Six keys, room for five: the shortest TTL (k1) goes, then k3, then k0.
    assert_eq!(h.run("PING"), "+PONG\r\n");
    assert!(!exists(&mut h, "k1"));
    assert_eq!(h.run("SET n1 v"), "+OK\r\n");
    assert_eq!(h.run("PING"), "+PONG\r\n");
    assert!(!exists(&mut h, "k3"));
    assert_eq!(h.run("SET n2 v"), "+OK\r\n");
    assert_eq!(h.run("PING"), "+PONG\r\n");
    assert!(!exists(&mut h, "k0"));
    for k in ["persistent", "k2", "k4"] {
        assert!(exists(&mut h, k), "{k}");
    }
}

#[test]
fn volatile_policies_never_touch_keys_without_ttl() {
    for policy in ["volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl"] {
        let mut h = node(policy, 5);
        for i in 0..5 {
            assert_eq!(h.run(&format!("SET p{i} v")), "+OK\r\n");
        }
        for i in 0..20 {
            assert_eq!(h.run(&format!("SET v{i} v EX 100")), "+OK\r\n", "{policy}");
        }
        // The newest volatile key goes before this write; then only keys without a TTL are
        // left and the next write is refused.
        assert_eq!(h.run("SET more v"), "+OK\r\n", "{policy}");
        assert_eq!(h.run("SET more2 v"), format!("-{}\r\n", super::OOM), "{policy}");
        for i in 0..5 {
            assert!(exists(&mut h, &format!("p{i}")), "{policy}: p{i}");
        }
        assert_eq!(h.srv.dbs[0].volatile_len(), 0, "{policy}");
        assert_eq!(h.run("GET p0"), "$1\r\nv\r\n");
    }
}

#[test]
fn evicts_across_databases() {
    let mut h = node("allkeys-random", 4);
    for db in 0..4 {
        h.srv.dbs[db].set(format!("k{db}").as_bytes(), Value::Str(Bytes::from_static(b"v")), None, 0);
        h.srv.dbs[db].set(format!("j{db}").as_bytes(), Value::Str(Bytes::from_static(b"v")), None, 0);
    }
    assert_eq!(h.run("PING"), "+PONG\r\n");
    let total: usize = h.srv.dbs.iter().map(|d| d.len()).sum();
    assert_eq!(total, 4);
    assert_eq!(h.srv.stats.evicted_keys, 4);
}

#[test]
fn object_freq_and_idletime_follow_the_policy() {
    let mut h = node("allkeys-lfu", 100);
    assert_eq!(h.run("SET k v"), "+OK\r\n");
    assert_eq!(h.run("OBJECT FREQ k"), ":5\r\n", "LFU_INIT_VAL");
    h.run("CONFIG SET lfu-log-factor 0");
    for _ in 0..20 {
        h.run("GET k");
    }
    assert_eq!(h.run("OBJECT FREQ k"), ":25\r\n", "factor 0 counts every access");
    assert!(h.run("OBJECT IDLETIME k").starts_with("-ERR An LFU maxmemory policy is selected"));
    h.run("CONFIG SET maxmemory-policy allkeys-lru");
    assert!(h.run("OBJECT FREQ k").starts_with("-ERR An LFU maxmemory policy is not selected"));
    h.run("GET k");
    assert_eq!(h.run("OBJECT IDLETIME k"), ":0\r\n");
}

#[test]
fn time_limits_follow_tenacity() {
    assert_eq!(super::time_limit_us(0), Some(0));
    assert_eq!(super::time_limit_us(10), Some(500));
    assert_eq!(super::time_limit_us(11), Some(575));
    assert_eq!(super::time_limit_us(100), None);
}

#[test]
fn info_reports_the_limit() {
    let mut h = Harness::default();
    h.run("CONFIG SET maxmemory 64mb maxmemory-policy volatile-ttl");
    let info = h.run("INFO memory");
    assert!(info.contains("maxmemory:67108864\r\n"), "{info}");
    assert!(info.contains("maxmemory_human:64.00M\r\n"), "{info}");
    assert!(info.contains("maxmemory_policy:volatile-ttl\r\n"), "{info}");
    assert!(info.contains("mem_not_counted_for_evict:0\r\n"), "{info}");
}

#[test]
fn over_the_limit_exec_is_refused_only_when_it_holds_a_denyoom_command() {
    let mut h = node("noeviction", 3);
    assert_eq!(h.run("SET k0 v"), "+OK\r\n");
    // Queued under the limit; the limit is passed before EXEC.
    assert_eq!(h.run("MULTI"), "+OK\r\n");
    assert_eq!(h.run("SET k1 v"), "+QUEUED\r\n");
    h.srv.evict.used = |_| u64::MAX;
    assert_eq!(
        h.run("EXEC"),
        format!("-EXECABORT Transaction discarded because of: {}\r\n", super::OOM),
        "EXEC with a write is refused"
    );
    assert_eq!(h.run("EXEC"), "-ERR EXEC without MULTI\r\n", "and the transaction is gone");
    assert!(!exists(&mut h, "k1"));
    // A read-only transaction queued before the limit was passed still runs.
    h.srv.evict.used = per_key;
    assert_eq!(h.run("MULTI"), "+OK\r\n");
    assert_eq!(h.run("GET k0"), "+QUEUED\r\n");
    h.srv.evict.used = |_| u64::MAX;
    assert_eq!(h.run("EXEC"), "*1\r\n$1\r\nv\r\n");
    // Over the limit, queueing itself is refused and dooms the transaction.
    assert_eq!(h.run("MULTI"), "+OK\r\n");
    assert_eq!(h.run("GET k0"), format!("-{}\r\n", super::OOM));
    assert_eq!(h.run("EXEC"), "-EXECABORT Transaction discarded because of previous errors.\r\n");
}
