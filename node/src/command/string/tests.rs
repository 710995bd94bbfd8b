//! Handler tests through the in-process harness (raw RESP2 replies unless noted).

use crate::exec::testing::Harness;

const SYNTAX: &str = "-ERR syntax error\r\n";
const NOT_INT: &str = "-ERR value is not an integer or out of range\r\n";

fn h() -> Harness {
    Harness::default()
}

#[test]
fn get_set_basics() {
    let mut h = h();
    assert_eq!(h.run("GET k"), "$-1\r\n");
    assert_eq!(h.run("SET k v"), "+OK\r\n");
    assert_eq!(h.run("GET k"), "$1\r\nv\r\n");
    assert_eq!(h.run("SET k 123"), "+OK\r\n");
    assert_eq!(h.run("GET k"), "$3\r\n123\r\n");
    assert_eq!(h.run_as(0, &[b"SET", b"", b"\x00\xff"]), b"+OK\r\n");
    assert_eq!(h.run_as(0, &[b"GET", b""]), b"$2\r\n\x00\xff\r\n");
}

#[test]
fn set_options() {
    let mut h = h();
    assert_eq!(h.run("SET k v NX"), "+OK\r\n");
    assert_eq!(h.run("SET k w NX"), "$-1\r\n");
    assert_eq!(h.run("SET k w XX"), "+OK\r\n");
    assert_eq!(h.run("SET m w XX"), "$-1\r\n");
    assert_eq!(h.run("SET k x GET"), "$1\r\nw\r\n");
    assert_eq!(h.run("SET n x GET"), "$-1\r\n");
    assert_eq!(h.run("SET k y NX GET"), "$1\r\nx\r\n");
    assert_eq!(h.run("GET k"), "$1\r\nx\r\n");
    assert_eq!(h.run("SET k v NX XX"), SYNTAX);
    assert_eq!(h.run("SET k v EX 10 PX 10"), SYNTAX);
    assert_eq!(h.run("SET k v EX 10 KEEPTTL"), SYNTAX);
    assert_eq!(h.run("SET k v EX"), SYNTAX);
    assert_eq!(h.run("SET k v PERSIST"), SYNTAX);
    assert_eq!(h.run("SET k v EX 10 EX 20"), "+OK\r\n");
    assert_eq!(h.run("SET k v nx nx"), "$-1\r\n");
    assert_eq!(h.run("SET k v EX abc"), NOT_INT);
    for bad in ["EX 0", "EX -1", "PX 0", "EXAT 0", "PXAT -5", "EX 9223372036854776"] {
        assert_eq!(
            h.run(&format!("SET k v {bad}")),
            "-ERR invalid expire time in 'set' command\r\n",
            "{bad}"
        );
    }
    // Relative time overflowing when the clock is added.
    assert_eq!(h.run("SET k v PX 9223372036854775807"), "-ERR invalid expire time in 'set' command\r\n");
    assert_eq!(h.run_as(0, &[b"SET", b"k", b"v", b"NX\x00junk"]), b"$-1\r\n");
}

#[test]
fn set_ttl_semantics() {
    let mut h = h();
    assert_eq!(h.run("SET k v EX 100"), "+OK\r\n");
    assert!(h.srv.dbs[0].volatile_len() == 1);
    assert_eq!(h.run("SET k w KEEPTTL"), "+OK\r\n");
    assert!(h.srv.dbs[0].volatile_len() == 1);
    assert_eq!(h.run("SET k w"), "+OK\r\n");
    assert!(h.srv.dbs[0].volatile_len() == 0);
    // An absolute time in the past removes the key.
    assert_eq!(h.run("SET k v EXAT 1"), "+OK\r\n");
    assert_eq!(h.run("GET k"), "$-1\r\n");
    assert_eq!(h.run("SET k v"), "+OK\r\n");
    assert_eq!(h.run("SET k w PXAT 1 GET"), "$1\r\nv\r\n");
    assert_eq!(h.run("GET k"), "$-1\r\n");
}

#[test]
fn setnx_setex_psetex_getset() {
    let mut h = h();
    assert_eq!(h.run("SETNX k v"), ":1\r\n");
    assert_eq!(h.run("SETNX k w"), ":0\r\n");
    assert_eq!(h.run("SETEX k 10 x"), "+OK\r\n");
    assert_eq!(h.run("SETEX k 0 x"), "-ERR invalid expire time in 'setex' command\r\n");
    assert_eq!(h.run("PSETEX k -1 x"), "-ERR invalid expire time in 'psetex' command\r\n");
    assert_eq!(h.run("PSETEX k abc x"), NOT_INT);
    assert_eq!(h.run("PSETEX k 1000 y"), "+OK\r\n");
    assert_eq!(h.run("GETSET k z"), "$1\r\ny\r\n");
    assert_eq!(h.srv.dbs[0].volatile_len(), 0);
    assert_eq!(h.run("GETSET n z"), "$-1\r\n");
    assert_eq!(h.run("GET n"), "$1\r\nz\r\n");
}

#[test]
fn getdel_getex() {
    let mut h = h();
    assert_eq!(h.run("GETDEL k"), "$-1\r\n");
    h.run("SET k v");
    assert_eq!(h.run("GETDEL k"), "$1\r\nv\r\n");
    assert_eq!(h.run("GET k"), "$-1\r\n");
    assert_eq!(h.run("GETEX k EX 0"), "$-1\r\n");
    h.run("SET k v");
    assert_eq!(h.run("GETEX k"), "$1\r\nv\r\n");
    assert_eq!(h.run("GETEX k EX 0"), "-ERR invalid expire time in 'getex' command\r\n");
    assert_eq!(h.run("GETEX k EX 100"), "$1\r\nv\r\n");
    assert_eq!(h.srv.dbs[0].volatile_len(), 1);
    assert_eq!(h.run("GETEX k PERSIST"), "$1\r\nv\r\n");
    assert_eq!(h.srv.dbs[0].volatile_len(), 0);
    assert_eq!(h.run("GETEX k PERSIST EX 1"), SYNTAX);
    assert_eq!(h.run("GETEX k NX"), SYNTAX);
    assert_eq!(h.run("GETEX k KEEPTTL"), SYNTAX);
    assert_eq!(h.run("GETEX k PXAT 1"), "$1\r\nv\r\n");
    assert_eq!(h.run("GET k"), "$-1\r\n");
}

#[test]
fn multi_key() {
    let mut h = h();
    assert_eq!(h.run("MSET a 1 b 2"), "+OK\r\n");
    assert_eq!(h.run("MSET a 1 b"), "-ERR wrong number of arguments for 'mset' command\r\n");
    assert_eq!(h.run("MGET a b c"), "*3\r\n$1\r\n1\r\n$1\r\n2\r\n$-1\r\n");
    assert_eq!(h.run("MSETNX a 3 c 4"), ":0\r\n");
    assert_eq!(h.run("MSETNX c 3 d 4"), ":1\r\n");
    assert_eq!(h.run("MSETNX c"), "-ERR wrong number of arguments for 'msetnx' command\r\n");
    assert_eq!(h.run("GET d"), "$1\r\n4\r\n");
}

#[test]
fn counters() {
    let mut h = h();
    assert_eq!(h.run("INCR n"), ":1\r\n");
    assert_eq!(h.run("INCRBY n 10"), ":11\r\n");
    assert_eq!(h.run("DECR n"), ":10\r\n");
    assert_eq!(h.run("DECRBY n 20"), ":-10\r\n");
    assert_eq!(h.run("INCRBY n abc"), NOT_INT);
    assert_eq!(h.run("INCRBY n 01"), NOT_INT);
    assert_eq!(h.run("DECRBY n -9223372036854775808"), "-ERR decrement would overflow\r\n");
    h.run("SET m 9223372036854775807");
    assert_eq!(h.run("INCR m"), "-ERR increment or decrement would overflow\r\n");
    h.run("SET m -9223372036854775808");
    assert_eq!(h.run("DECR m"), "-ERR increment or decrement would overflow\r\n");
    h.run("SET s abc");
    assert_eq!(h.run("INCR s"), NOT_INT);
    h.run_as(0, &[b"SET", b"s", b" 1"]);
    assert_eq!(h.run("INCR s"), NOT_INT);
    // TTL survives.
    h.run("SET t 1 EX 100");
    assert_eq!(h.run("INCR t"), ":2\r\n");
    assert_eq!(h.srv.dbs[0].volatile_len(), 1);
}

#[test]
fn incrbyfloat() {
    let mut h = h();
    assert_eq!(h.run("INCRBYFLOAT f 0.1"), "$3\r\n0.1\r\n");
    assert_eq!(h.run("INCRBYFLOAT f 0.2"), "$3\r\n0.3\r\n");
    assert_eq!(h.run("SET f 10.50"), "+OK\r\n");
    assert_eq!(h.run("INCRBYFLOAT f 0.1"), "$4\r\n10.6\r\n");
    assert_eq!(h.run("INCRBYFLOAT f -5"), "$3\r\n5.6\r\n");
    h.run("SET f 5.0e3");
    assert_eq!(h.run("INCRBYFLOAT f 2.0e2"), "$4\r\n5200\r\n");
    assert_eq!(h.run("INCRBYFLOAT f abc"), "-ERR value is not a valid float\r\n");
    assert_eq!(h.run("INCRBYFLOAT f nan"), "-ERR value is not a valid float\r\n");
    assert_eq!(h.run("INCRBYFLOAT f inf"), "-ERR increment would produce NaN or Infinity\r\n");
    h.run("SET s abc");
    assert_eq!(h.run("INCRBYFLOAT s 1"), "-ERR value is not a valid float\r\n");
    h.run("SET t 1 EX 100");
    assert_eq!(h.run("INCRBYFLOAT t 1"), "$1\r\n2\r\n");
    assert_eq!(h.srv.dbs[0].volatile_len(), 1);
}

#[test]
fn append_strlen_ranges() {
    let mut h = h();
    assert_eq!(h.run("APPEND k Hello"), ":5\r\n");
    assert_eq!(h.run("APPEND k _World"), ":11\r\n");
    assert_eq!(h.run("STRLEN k"), ":11\r\n");
    assert_eq!(h.run("STRLEN nope"), ":0\r\n");
    assert_eq!(h.run("GETRANGE k 0 4"), "$5\r\nHello\r\n");
    assert_eq!(h.run("GETRANGE k -5 -1"), "$5\r\nWorld\r\n");
    assert_eq!(h.run("GETRANGE k 20 30"), "$0\r\n\r\n");
    assert_eq!(h.run("GETRANGE nope 0 -1"), "$0\r\n\r\n");
    assert_eq!(h.run("SUBSTR k 0 0"), "$1\r\nH\r\n");
    assert_eq!(h.run("GETRANGE k a 1"), NOT_INT);
    h.run("SET n 12345");
    assert_eq!(h.run("STRLEN n"), ":5\r\n");
    assert_eq!(h.run("GETRANGE n 1 2"), "$2\r\n23\r\n");
    assert_eq!(h.run("APPEND n 6"), ":6\r\n");
    assert_eq!(h.run("INCR n"), ":123457\r\n");
    h.run("SET t a EX 100");
    assert_eq!(h.run("APPEND t b"), ":2\r\n");
    assert_eq!(h.srv.dbs[0].volatile_len(), 1);
}

#[test]
fn repeated_append_grows_in_place() {
    let mut h = h();
    let chunk = vec![b'x'; 1000];
    for i in 1..=200 {
        let r = h.run_as(0, &[b"APPEND", b"big", &chunk]);
        assert_eq!(r, format!(":{}\r\n", i * 1000).into_bytes());
    }
    assert_eq!(h.run("STRLEN big"), ":200000\r\n");
}

#[test]
fn setrange() {
    let mut h = h();
    assert_eq!(h.run("SETRANGE k 5 x"), ":6\r\n");
    assert_eq!(h.run_as(0, &[b"GET", b"k"]), b"$6\r\n\x00\x00\x00\x00\x00x\r\n");
    assert_eq!(h.run("SETRANGE k 0 ab"), ":6\r\n");
    assert_eq!(h.run("SETRANGE e 0 "), ":0\r\n");
    assert_eq!(h.run("GET e"), "$-1\r\n");
    assert_eq!(h.run("SETRANGE k 3 "), ":6\r\n");
    assert_eq!(h.run("SETRANGE k -1 x"), "-ERR offset is out of range\r\n");
    assert_eq!(h.run("SETRANGE k x x"), NOT_INT);
    assert_eq!(
        h.run("SETRANGE k 536870912 x"),
        "-ERR string exceeds maximum allowed size (proto-max-bulk-len)\r\n"
    );
    assert_eq!(
        h.run("SETRANGE k 9223372036854775807 x"),
        "-ERR string exceeds maximum allowed size (proto-max-bulk-len)\r\n"
    );
    h.run("SET n 123");
    assert_eq!(h.run("SETRANGE n 1 9"), ":3\r\n");
    assert_eq!(h.run("GET n"), "$3\r\n193\r\n");
}

#[test]
fn lcs() {
    let mut h = h();
    h.run("MSET key1 ohmytext key2 mynewtext");
    assert_eq!(h.run("LCS key1 key2"), "$6\r\nmytext\r\n");
    assert_eq!(h.run("LCS key1 key2 LEN"), ":6\r\n");
    assert_eq!(
        h.run("LCS key1 key2 IDX"),
        "*4\r\n$7\r\nmatches\r\n*2\r\n*2\r\n*2\r\n:4\r\n:7\r\n*2\r\n:5\r\n:8\r\n\
         *2\r\n*2\r\n:2\r\n:3\r\n*2\r\n:0\r\n:1\r\n$3\r\nlen\r\n:6\r\n"
    );
    assert_eq!(
        h.run("LCS key1 key2 IDX MINMATCHLEN 4 WITHMATCHLEN"),
        "*4\r\n$7\r\nmatches\r\n*1\r\n*3\r\n*2\r\n:4\r\n:7\r\n*2\r\n:5\r\n:8\r\n:4\r\n\
         $3\r\nlen\r\n:6\r\n"
    );
    assert_eq!(
        h.run("LCS key1 key2 IDX LEN"),
        "-ERR If you want both the length and indexes, please just use IDX.\r\n"
    );
    assert_eq!(h.run("LCS key1 key2 MINMATCHLEN"), SYNTAX);
    assert_eq!(h.run("LCS key1 key2 MINMATCHLEN x"), NOT_INT);
    assert_eq!(h.run("LCS key1 key2 FOO"), SYNTAX);
    assert_eq!(h.run("LCS nope1 nope2"), "$0\r\n\r\n");
    h.clients[0].st.resp3 = true;
    assert_eq!(
        String::from_utf8_lossy(&h.run_as(0, &[b"LCS", b"key1", b"key2", b"IDX"])),
        "%2\r\n$7\r\nmatches\r\n*2\r\n*2\r\n*2\r\n:4\r\n:7\r\n*2\r\n:5\r\n:8\r\n\
         *2\r\n*2\r\n:2\r\n:3\r\n*2\r\n:0\r\n:1\r\n$3\r\nlen\r\n:6\r\n"
    );
}

#[test]
fn configured_max_bulk_len() {
    let args = ["--proto-max-bulk-len".to_string(), "1mb".to_string()];
    let config = crate::config::Config::from_args(&args).expect("valid config");
    let mut h = Harness::new(config);
    let too_big = "-ERR string exceeds maximum allowed size (proto-max-bulk-len)\r\n";
    assert_eq!(h.run("SETRANGE k 1048576 x"), too_big);
    assert_eq!(h.run("SETRANGE k 1048575 x"), ":1048576\r\n");
    assert_eq!(h.run("APPEND k x"), too_big);
    assert_eq!(h.run("SET a 1"), "+OK\r\n");
    assert_eq!(
        h.run("LCS a k LEN"),
        "-ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len\r\n"
    );
    let mut h2 = Harness::default();
    let long = vec![b'a'; 20_000];
    assert_eq!(h2.run_as(0, &[b"SET", b"x", &long]), b"+OK\r\n");
    assert_eq!(h2.run_as(0, &[b"SET", b"y", &long]), b"+OK\r\n");
    assert_eq!(
        h2.run("LCS x y LEN"),
        "-ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len\r\n"
    );
}
