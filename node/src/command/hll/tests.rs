//! HLL handler tests through the in-process harness (raw RESP2 replies).

use crate::exec::testing::Harness;

#[test]
fn pfadd_pfcount_pfmerge() {
    let mut h = Harness::default();
    assert_eq!(h.run("PFADD h a b c"), ":1\r\n");
    assert_eq!(h.run("PFADD h a"), ":0\r\n");
    assert_eq!(h.run("PFADD new"), ":1\r\n");
    assert_eq!(h.run("PFCOUNT h"), ":3\r\n");
    assert_eq!(h.run("PFADD g c d"), ":1\r\n");
    assert_eq!(h.run("PFCOUNT h g missing"), ":4\r\n");
    assert_eq!(h.run("PFMERGE m h g"), "+OK\r\n");
    assert_eq!(h.run("PFCOUNT m"), ":4\r\n");
    assert_eq!(h.run("OBJECT ENCODING m"), "$3\r\nraw\r\n");
}

#[test]
fn invalid_and_corrupted_values() {
    let mut h = Harness::default();
    h.run("SET s notanhll");
    h.run("SET i 12345");
    let invalid = "-WRONGTYPE Key is not a valid HyperLogLog string value.\r\n";
    assert_eq!(h.run("PFADD s a"), invalid);
    assert_eq!(h.run("PFCOUNT i"), invalid);
    assert_eq!(h.run("PFMERGE s i"), invalid);
    h.run_as(0, &[b"SET", b"bad", b"HYLL\x01\x00\x00\x00\x00\x00\x00\x80\x00\x00\x00\x80\x00"]);
    assert_eq!(h.run("PFCOUNT bad"), "-INVALIDOBJ Corrupted HLL object detected\r\n");
    h.run("LCS x y");
}
