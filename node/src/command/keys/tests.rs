//! Unit tests of the generic key commands through the in-process harness. Keys are created
//! straight in the keyspace so these tests do not depend on the string family.

use super::space::parse_cursor;
use crate::config::Config;
use crate::exec::testing::Harness;
use crate::keyspace::Value;
use crate::util::now_ms;

fn put(h: &mut Harness, db: usize, key: &[u8], v: &[u8], expire_at: Option<i64>) {
    h.srv.dbs[db].set(key, Value::from_bytes(v), expire_at, 0);
}

fn h_with(keys: &[&str]) -> Harness {
    let mut h = Harness::default();
    for k in keys {
        put(&mut h, 0, k.as_bytes(), b"v", None);
    }
    h
}

fn run_bin(h: &mut Harness, args: &[&[u8]]) -> String {
    String::from_utf8_lossy(&h.run_as(0, args)).into_owned()
}

#[test]
fn del_counts_live_keys_only_and_duplicates_once() {
    let mut h = h_with(&["a", "b"]);
    put(&mut h, 0, b"gone", b"v", Some(1));
    assert_eq!(h.run("DEL a a b c gone"), ":2\r\n");
    assert_eq!(h.srv.dbs[0].len(), 0);
    assert_eq!(h.srv.dbs[0].expired, 1);
    let mut h = h_with(&["a"]);
    assert_eq!(h.run("UNLINK a x"), ":1\r\n");
    assert_eq!(h.run("DEL"), "-ERR wrong number of arguments for 'del' command\r\n");
}

#[test]
fn unlink_frees_big_values_off_the_executor() {
    let mut h = Harness::default();
    put(&mut h, 0, b"big", &vec![b'x'; 1 << 20], None);
    put(&mut h, 0, b"small", b"x", None);
    let before = h.srv.garbage.len();
    assert_eq!(h.run("UNLINK big small"), ":2\r\n");
    assert_eq!(h.srv.garbage.len(), before + 1);
}

#[test]
fn exists_counts_duplicates_and_records_stats() {
    let mut h = h_with(&["a"]);
    assert_eq!(h.run("EXISTS a a b"), ":2\r\n");
    assert_eq!(h.srv.stats.keyspace_hits, 2);
    assert_eq!(h.srv.stats.keyspace_misses, 1);
}

#[test]
fn type_reports_string_or_none() {
    let mut h = h_with(&["a"]);
    assert_eq!(h.run("TYPE a"), "+string\r\n");
    assert_eq!(h.run("TYPE b"), "+none\r\n");
}

#[test]
fn empty_and_binary_keys() {
    let mut h = Harness::default();
    put(&mut h, 0, b"", b"v", None);
    put(&mut h, 0, b"a\0b\r\n", b"v", None);
    assert_eq!(run_bin(&mut h, &[b"EXISTS", b"", b"a\0b\r\n"]), ":2\r\n");
    assert_eq!(run_bin(&mut h, &[b"RENAME", b"a\0b\r\n", b""]), "+OK\r\n");
    assert_eq!(run_bin(&mut h, &[b"KEYS", b"*"]), "*1\r\n$0\r\n\r\n");
}

#[test]
fn touch_updates_access_time_even_for_no_touch_clients() {
    let mut h = h_with(&["a"]);
    h.srv.dbs[0].set(b"a", Value::Int(1), None, 0);
    h.clients[0].st.no_touch = true;
    // lru stays 0 under TYPE, would move under TOUCH (clock may still be 0 this early, so
    // check the counters instead of the clock).
    assert_eq!(h.run("TOUCH a b a"), ":2\r\n");
    assert_eq!(h.srv.stats.keyspace_hits, 2);
    assert_eq!(h.srv.stats.keyspace_misses, 1);
}

#[test]
fn randomkey_and_keys() {
    let mut h = Harness::default();
    assert_eq!(h.run("RANDOMKEY"), "$-1\r\n");
    put(&mut h, 0, b"only", b"v", None);
    assert_eq!(h.run("RANDOMKEY"), "$4\r\nonly\r\n");
    put(&mut h, 0, b"other", b"v", None);
    put(&mut h, 0, b"old", b"v", Some(1));
    let r = h.run("KEYS o*");
    assert!(r.starts_with("*2\r\n"), "{r}");
    assert!(r.contains("$4\r\nonly\r\n") && r.contains("$5\r\nother\r\n"));
    assert_eq!(h.run("KEYS x*"), "*0\r\n");
    assert_eq!(h.run("KEYS on[k-m]y"), "*1\r\n$4\r\nonly\r\n");
}

#[test]
fn scan_walks_everything_and_filters() {
    let mut h = Harness::default();
    for i in 0..100 {
        put(&mut h, 0, format!("k{i}").as_bytes(), b"v", None);
    }
    let mut cursor = "0".to_string();
    let mut seen = std::collections::HashSet::new();
    loop {
        let r = h.run(&format!("SCAN {cursor} COUNT 7 MATCH k1*"));
        let lines: Vec<&str> = r.split("\r\n").collect();
        assert_eq!(lines[0], "*2");
        cursor = lines[2].to_string();
        for w in lines[4..].chunks(2) {
            if let [_, k] = w {
                if !k.is_empty() {
                    assert!(k.starts_with("k1"));
                    seen.insert(k.to_string());
                }
            }
        }
        if cursor == "0" {
            break;
        }
    }
    assert_eq!(seen.len(), 11);
    assert!(h.run("SCAN 0 COUNT 1000 TYPE string").contains("*100\r\n"));
    assert_eq!(h.run("SCAN 0 COUNT 1000 TYPE LIST"), "*2\r\n$1\r\n0\r\n*0\r\n");
}

#[test]
fn scan_errors() {
    let mut h = Harness::default();
    assert_eq!(h.run("SCAN x"), "-ERR invalid cursor\r\n");
    assert_eq!(h.run("SCAN -1"), "-ERR invalid cursor\r\n");
    assert_eq!(h.run("SCAN 0 COUNT 0"), "-ERR syntax error\r\n");
    assert_eq!(h.run("SCAN 0 COUNT -1"), "-ERR syntax error\r\n");
    assert_eq!(h.run("SCAN 0 COUNT x"), "-ERR value is not an integer or out of range\r\n");
    assert_eq!(h.run("SCAN 0 MATCH"), "-ERR syntax error\r\n");
    assert_eq!(h.run("SCAN 0 FOO bar"), "-ERR syntax error\r\n");
    assert_eq!(h.run("SCAN 0 TYPE foo"), "-ERR unknown type name 'foo'\r\n");
    assert_eq!(h.run("SCAN 0 NOVALUES"), "-ERR NOVALUES option can only be used in HSCAN\r\n");
}

#[test]
fn scan_cursor_parsing_follows_string2ull() {
    assert_eq!(parse_cursor(b"0"), Some(0));
    assert_eq!(parse_cursor(b"18446744073709551615"), Some(u64::MAX));
    assert_eq!(parse_cursor(b"18446744073709551616"), None);
    assert_eq!(parse_cursor(b"007"), Some(7));
    assert_eq!(parse_cursor(b" 7"), Some(7));
    assert_eq!(parse_cursor(b"+7"), Some(7));
    assert_eq!(parse_cursor(b"-07"), Some(7u64.wrapping_neg()));
    assert_eq!(parse_cursor(b"-7"), None);
    assert_eq!(parse_cursor(b"7 "), None);
    assert_eq!(parse_cursor(b""), None);
    assert_eq!(parse_cursor(b" "), None);
    assert_eq!(parse_cursor(b"7\0junk"), Some(7));
}

#[test]
fn expire_sets_and_reports() {
    let mut h = h_with(&["k"]);
    assert_eq!(h.run("TTL k"), ":-1\r\n");
    assert_eq!(h.run("PTTL k"), ":-1\r\n");
    assert_eq!(h.run("TTL nokey"), ":-2\r\n");
    assert_eq!(h.run("EXPIRETIME nokey"), ":-2\r\n");
    assert_eq!(h.run("EXPIRE k 100"), ":1\r\n");
    assert_eq!(h.run("TTL k"), ":100\r\n");
    let pttl: i64 = h.run("PTTL k")[1..].trim().parse().unwrap();
    assert!((99_000..=100_000).contains(&pttl));
    let at: i64 = h.run("PEXPIRETIME k")[1..].trim().parse().unwrap();
    assert!((at - now_ms() - 100_000).abs() < 1000);
    assert_eq!(h.run("EXPIRE nokey 100"), ":0\r\n");
    assert_eq!(h.run("PERSIST k"), ":1\r\n");
    assert_eq!(h.run("PERSIST k"), ":0\r\n");
    assert_eq!(h.run("PERSIST nokey"), ":0\r\n");
    assert_eq!(h.run("TTL k"), ":-1\r\n");
    assert_eq!(h.run("EXPIREAT k 4102444800"), ":1\r\n");
    assert_eq!(h.run("EXPIRETIME k"), ":4102444800\r\n");
    assert_eq!(h.run("PEXPIRETIME k"), ":4102444800000\r\n");
    assert_eq!(h.run("PEXPIREAT k 4102444800123"), ":1\r\n");
    assert_eq!(h.run("EXPIRETIME k"), ":4102444800\r\n");
}

#[test]
fn expire_in_the_past_deletes() {
    let mut h = h_with(&["a", "b", "c"]);
    assert_eq!(h.run("EXPIRE a -1"), ":1\r\n");
    assert_eq!(h.run("PEXPIRE b 0"), ":1\r\n");
    assert_eq!(h.run("EXPIREAT c 1"), ":1\r\n");
    assert_eq!(h.srv.dbs[0].len(), 0);
    assert_eq!(h.run("EXPIRE a -1"), ":0\r\n");
}

#[test]
fn expire_conditions() {
    let mut h = h_with(&["k"]);
    assert_eq!(h.run("EXPIRE k 100 XX"), ":0\r\n");
    assert_eq!(h.run("EXPIRE k 100 GT"), ":0\r\n");
    assert_eq!(h.run("EXPIRE k 100 LT"), ":1\r\n");
    assert_eq!(h.run("EXPIRE k 200 NX"), ":0\r\n");
    assert_eq!(h.run("EXPIRE k 50 GT"), ":0\r\n");
    assert_eq!(h.run("EXPIRE k 200 gt"), ":1\r\n");
    assert_eq!(h.run("EXPIRE k 300 LT"), ":0\r\n");
    assert_eq!(h.run("EXPIRE k 100 lt xx"), ":1\r\n");
    assert_eq!(h.run("TTL k"), ":100\r\n");
    assert_eq!(h.run("PERSIST k"), ":1\r\n");
    assert_eq!(h.run("EXPIRE k 100 NX"), ":1\r\n");
}

#[test]
fn expire_errors() {
    let mut h = h_with(&["k"]);
    assert_eq!(
        h.run("EXPIRE k 10 NX XX"),
        "-ERR NX and XX, GT or LT options at the same time are not compatible\r\n"
    );
    assert_eq!(
        h.run("EXPIRE k 10 NX GT"),
        "-ERR NX and XX, GT or LT options at the same time are not compatible\r\n"
    );
    assert_eq!(h.run("PEXPIRE k 10 GT LT"), "-ERR GT and LT options at the same time are not compatible\r\n");
    assert_eq!(h.run("EXPIRE k x foo"), "-ERR Unsupported option foo\r\n");
    assert_eq!(run_bin(&mut h, &[b"EXPIRE", b"k", b"1", b"a\r\nb\0c"]), "-ERR Unsupported option a  b\r\n");
    assert_eq!(h.run("EXPIRE k x"), "-ERR value is not an integer or out of range\r\n");
    assert_eq!(h.run("EXPIRE k 9223372036854775807"), "-ERR invalid expire time in 'expire' command\r\n");
    assert_eq!(h.run("EXPIRE k -9223372036854776"), "-ERR invalid expire time in 'expire' command\r\n");
    assert_eq!(h.run("PEXPIRE k 9223372036854775807"), "-ERR invalid expire time in 'pexpire' command\r\n");
    assert_eq!(h.run("EXPIREAT k 9223372036854776"), "-ERR invalid expire time in 'expireat' command\r\n");
    // The key is untouched by every refusal.
    assert_eq!(h.run("TTL k"), ":-1\r\n");
    // Extremes that do fit.
    assert_eq!(h.run("PEXPIREAT k 9223372036854775807"), ":1\r\n");
    assert_eq!(h.run("EXPIRETIME k"), ":9223372036854776\r\n");
    assert_eq!(h.run("PEXPIRETIME k"), ":9223372036854775807\r\n");
    assert_eq!(h.run("PEXPIRE k -9223372036854775808"), ":1\r\n");
    assert_eq!(h.run("EXISTS k"), ":0\r\n");
}

#[test]
fn rename_and_renamenx() {
    let mut h = Harness::default();
    put(&mut h, 0, b"a", b"1", Some(now_ms() + 100_000));
    put(&mut h, 0, b"b", b"2", None);
    assert_eq!(h.run("RENAME nokey x"), "-ERR no such key\r\n");
    assert_eq!(h.run("RENAME nokey nokey"), "-ERR no such key\r\n");
    assert_eq!(h.run("RENAMENX nokey x"), "-ERR no such key\r\n");
    assert_eq!(h.run("RENAME a a"), "+OK\r\n");
    assert_eq!(h.run("RENAMENX a a"), ":0\r\n");
    assert_eq!(h.run("RENAMENX a b"), ":0\r\n");
    assert_eq!(h.run("RENAME a b"), "+OK\r\n");
    assert_eq!(h.run("EXISTS a"), ":0\r\n");
    assert_eq!(h.run("TTL b"), ":100\r\n");
    assert_eq!(h.run("RENAMENX b c"), ":1\r\n");
    assert_eq!(h.run("TTL c"), ":100\r\n");
    assert_eq!(h.srv.dbs[0].len(), 1);
}

#[test]
fn copy_within_and_across_databases() {
    let mut h = Harness::default();
    put(&mut h, 0, b"a", b"hello", Some(now_ms() + 100_000));
    put(&mut h, 0, b"b", b"x", None);
    assert_eq!(h.run("COPY a a"), "-ERR source and destination objects are the same\r\n");
    assert_eq!(h.run("COPY a a DB 1"), ":1\r\n");
    assert_eq!(h.run("COPY a b"), ":0\r\n");
    assert_eq!(h.run("COPY a b REPLACE"), ":1\r\n");
    assert_eq!(h.run("TTL b"), ":100\r\n");
    assert_eq!(h.run("COPY nokey z"), ":0\r\n");
    assert_eq!(h.run("COPY a z db 15 replace"), ":1\r\n");
    assert_eq!(h.srv.dbs[15].len(), 1);
    assert_eq!(h.srv.dbs[1].len(), 1);
    assert_eq!(h.run("COPY a z DB 16"), "-ERR DB index is out of range\r\n");
    assert_eq!(h.run("COPY a z DB -1"), "-ERR DB index is out of range\r\n");
    assert_eq!(h.run("COPY a z DB x"), "-ERR value is not an integer or out of range\r\n");
    assert_eq!(
        h.run("COPY a z DB 99999999999"),
        "-ERR value is out of range, value must between -2147483648 and 2147483647\r\n"
    );
    assert_eq!(h.run("COPY a z DB"), "-ERR syntax error\r\n");
    assert_eq!(h.run("COPY a z FOO"), "-ERR syntax error\r\n");
}

#[test]
fn move_between_databases() {
    let mut h = Harness::default();
    put(&mut h, 0, b"a", b"1", Some(now_ms() + 100_000));
    put(&mut h, 1, b"b", b"2", None);
    put(&mut h, 0, b"b", b"3", None);
    assert_eq!(h.run("MOVE a 0"), "-ERR source and destination objects are the same\r\n");
    assert_eq!(h.run("MOVE a 16"), "-ERR DB index is out of range\r\n");
    assert_eq!(h.run("MOVE a x"), "-ERR value is not an integer or out of range\r\n");
    assert_eq!(h.run("MOVE nokey 1"), ":0\r\n");
    assert_eq!(h.run("MOVE b 1"), ":0\r\n");
    assert_eq!(h.run("MOVE a 1"), ":1\r\n");
    assert_eq!(h.srv.dbs[0].len(), 1);
    assert_eq!(h.srv.dbs[1].len(), 2);
    assert!(h.srv.dbs[1].get(b"a", now_ms(), 0, false).is_some_and(|e| e.expire_at().is_some()));
}

#[test]
fn object_subcommands() {
    let mut h = Harness::default();
    put(&mut h, 0, b"n", b"100", None);
    put(&mut h, 0, b"big", b"100000", None);
    put(&mut h, 0, b"s", b"hello", None);
    put(&mut h, 0, b"r", &[b'x'; 45], None);
    assert_eq!(h.run("OBJECT ENCODING n"), "$3\r\nint\r\n");
    assert_eq!(h.run("OBJECT ENCODING s"), "$6\r\nembstr\r\n");
    assert_eq!(h.run("OBJECT ENCODING r"), "$3\r\nraw\r\n");
    assert_eq!(h.run("OBJECT ENCODING nokey"), "$-1\r\n");
    assert_eq!(h.run("OBJECT REFCOUNT n"), ":2147483647\r\n");
    assert_eq!(h.run("OBJECT REFCOUNT big"), ":1\r\n");
    assert_eq!(h.run("OBJECT REFCOUNT s"), ":1\r\n");
    assert_eq!(h.run("OBJECT IDLETIME s"), ":0\r\n");
    assert_eq!(h.run("OBJECT FREQ nokey"), "$-1\r\n");
    assert!(h
        .run("OBJECT FREQ s")
        .starts_with("-ERR An LFU maxmemory policy is not selected, access frequency not tracked."));
    assert_eq!(h.run("OBJECT ENCODING"), "-ERR wrong number of arguments for 'object|encoding' command\r\n");
    let help = h.run("OBJECT HELP");
    assert!(help.starts_with("*15\r\n+OBJECT <subcommand>"));
    assert!(help.ends_with("+HELP\r\n+    Print this help.\r\n"));
}

#[test]
fn object_under_lfu_policy() {
    let args = ["--maxmemory-policy".to_string(), "allkeys-lfu".to_string()];
    let mut h = Harness::new(Config::from_args(&args).unwrap());
    put(&mut h, 0, b"s", b"hello", None);
    assert_eq!(h.run("OBJECT FREQ s"), ":5\r\n");
    assert!(h
        .run("OBJECT IDLETIME s")
        .starts_with("-ERR An LFU maxmemory policy is selected, idle time not tracked."));
}

#[test]
fn no_touch_lookups_keep_the_access_time() {
    let mut h = Harness::default();
    h.srv.dbs[0].set(b"k", Value::Int(1), None, 0);
    // Pretend the node has been up for a minute.
    h.srv.started -= std::time::Duration::from_secs(60);
    for cmd in ["TTL k", "PTTL k", "TYPE k", "EXISTS k", "OBJECT ENCODING k", "EXPIRETIME k"] {
        h.run(cmd);
    }
    assert_eq!(h.run("OBJECT IDLETIME k"), ":60\r\n");
    h.run("TOUCH k");
    assert_eq!(h.run("OBJECT IDLETIME k"), ":0\r\n");
}

#[test]
fn del_frees_big_values_lazily_only_when_configured() {
    let mut h = Harness::default();
    put(&mut h, 0, b"big", &vec![b'x'; 1 << 20], None);
    assert_eq!(h.run("DEL big"), ":1\r\n");
    assert!(h.srv.garbage.is_empty());
    let args = ["--lazyfree-lazy-user-del".to_string(), "yes".to_string()];
    let mut h = Harness::new(Config::from_args(&args).unwrap());
    put(&mut h, 0, b"big", &vec![b'x'; 1 << 20], None);
    assert_eq!(h.run("DEL big"), ":1\r\n");
    assert_eq!(h.srv.garbage.len(), 1);
}
