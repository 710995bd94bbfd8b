//! Bitmap handler tests through the in-process harness (raw RESP2 replies).

use crate::exec::testing::Harness;

#[test]
fn setbit_getbit_and_errors() {
    let mut h = Harness::default();
    assert_eq!(h.run("SETBIT k 7 1"), ":0\r\n");
    assert_eq!(h.run("SETBIT k 7 1"), ":1\r\n");
    assert_eq!(h.run("GET k"), "$1\r\n\x01\r\n");
    assert_eq!(h.run("GETBIT k 7"), ":1\r\n");
    assert_eq!(h.run("GETBIT k 100"), ":0\r\n");
    assert_eq!(h.run("SETBIT k -1 1"), "-ERR bit offset is not an integer or out of range\r\n");
    assert_eq!(h.run("SETBIT k 4294967296 1"), "-ERR bit offset is not an integer or out of range\r\n");
    assert_eq!(h.run("SETBIT k 1 2"), "-ERR bit is not an integer or out of range\r\n");
    h.run("SET n 1");
    assert_eq!(h.run("GETBIT n 2"), ":1\r\n", "'1' is 0x31");
    assert_eq!(h.run("SETBIT n 7 0"), ":1\r\n");
    assert_eq!(h.run("GET n"), "$1\r\n0\r\n");
    assert_eq!(h.run("OBJECT ENCODING n"), "$3\r\nraw\r\n");
}

#[test]
fn bitcount_and_bitpos_ranges() {
    let mut h = Harness::default();
    h.run("SET s foobar");
    assert_eq!(h.run("BITCOUNT s"), ":26\r\n");
    assert_eq!(h.run("BITCOUNT s 1 1"), ":6\r\n");
    assert_eq!(h.run("BITCOUNT s 5 30 BIT"), ":17\r\n");
    assert_eq!(h.run("BITCOUNT s -1 -2"), ":0\r\n");
    assert_eq!(h.run("BITCOUNT s 0"), "-ERR syntax error\r\n");
    h.run_as(0, &[b"SET", b"p", b"\xff\xf0\x00"]);
    assert_eq!(h.run("BITPOS p 0"), ":12\r\n");
    assert_eq!(h.run("BITPOS p 1 2"), ":-1\r\n");
    assert_eq!(h.run("BITPOS p 0 0 0"), ":-1\r\n", "end given: no zero in \\xff");
    assert_eq!(h.run("BITPOS p 0 0"), ":12\r\n");
    assert_eq!(h.run("BITPOS p 1 7 15 BIT"), ":7\r\n");
    assert_eq!(h.run("BITPOS p 0 7 15 BIT"), ":12\r\n");
    assert_eq!(h.run("BITPOS p 2"), "-ERR The bit argument must be 1 or 0.\r\n");
    assert_eq!(h.run("BITPOS missing 0"), ":0\r\n");
    assert_eq!(h.run("BITPOS missing 1"), ":-1\r\n");
}

#[test]
fn bitop_and_bitfield() {
    let mut h = Harness::default();
    h.run("SET a abc");
    h.run("SET b a");
    assert_eq!(h.run("BITOP AND d a b"), ":3\r\n");
    assert_eq!(h.run("GET d"), "$3\r\na\x00\x00\r\n");
    assert_eq!(h.run("BITOP NOT d a b"), "-ERR BITOP NOT must be called with a single source key.\r\n");
    assert_eq!(h.run("BITOP NAND d a"), "-ERR syntax error\r\n");
    assert_eq!(h.run("BITOP OR d x y"), ":0\r\n");
    assert_eq!(h.run("EXISTS d"), ":0\r\n");
    assert_eq!(h.run("BITFIELD f SET u8 0 255 GET u8 0 INCRBY u8 0 1"), "*3\r\n:0\r\n:255\r\n:0\r\n");
    assert_eq!(h.run("BITFIELD f OVERFLOW SAT INCRBY i8 #1 200"), "*1\r\n:127\r\n");
    assert_eq!(h.run("BITFIELD f OVERFLOW FAIL INCRBY i8 #1 1"), "*1\r\n$-1\r\n");
    assert_eq!(h.run("BITFIELD f GET i64 0 GET u63 1"), "*2\r\n:35747322042253312\r\n:35747322042253312\r\n");
    assert_eq!(
        h.run("BITFIELD f GET u64 0"),
        "-ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.\r\n"
    );
    assert_eq!(h.run("BITFIELD_RO f SET u8 0 1"), "-ERR BITFIELD_RO only supports the GET subcommand\r\n");
    assert_eq!(h.run("BITFIELD f OVERFLOW X"), "-ERR Invalid OVERFLOW type specified\r\n");
    assert_eq!(h.run("BITFIELD f GET i8"), "-ERR syntax error\r\n");
}
