//! Bitmaps and HyperLogLogs across servers: an HLL built by redis-server and copied over as a
//! plain string counts the same on Shoal (and back), and DUMP/RESTORE carries both types.

use shoal_e2e::{RedisRef, ShoalNode};

fn bulk(reply: &[u8]) -> Vec<u8> {
    // `$<len>\r\n<bytes>\r\n`
    let start = reply.iter().position(|&b| b == b'\n').map_or(0, |i| i + 1);
    reply[start..reply.len().saturating_sub(2)].to_vec()
}

#[test]
fn hll_strings_move_between_redis_and_shoal() {
    let redis = RedisRef::start().expect("redis-server");
    let node = ShoalNode::start(&[]);
    let mut r = redis.connect();
    let mut s = node.connect();
    // A sparse one, and one big enough to be dense.
    let small: Vec<String> = (0..50).map(|i| format!("user:{i}")).collect();
    let big: Vec<String> = (0..5000).map(|i| format!("visit:{i}")).collect();
    for (key, elems) in [("small", &small), ("big", &big)] {
        let mut cmd = vec!["PFADD".to_string(), key.to_string()];
        cmd.extend(elems.iter().cloned());
        assert_eq!(r.cmd(&cmd).expect("pfadd"), b":1\r\n");
        let value = bulk(&r.cmd(&["GET", key]).expect("get"));
        assert_eq!(s.cmd(&[b"SET".as_ref(), key.as_bytes(), &value]).expect("set"), b"+OK\r\n");
        let theirs = r.cmd(&["PFCOUNT", key]).expect("count");
        assert_eq!(s.cmd(&["PFCOUNT", key]).expect("count"), theirs, "{key}");
        // Adding the same new elements on both sides keeps the bytes identical.
        let add = ["PFADD", key, "new-1", "new-2", "user:1"];
        assert_eq!(s.cmd(&add).expect("pfadd"), r.cmd(&add).expect("pfadd"));
        assert_eq!(s.cmd(&["GET", key]).expect("get"), r.cmd(&["GET", key]).expect("get"));
    }
    let union = r.cmd(&["PFCOUNT", "small", "big"]).expect("union");
    assert_eq!(s.cmd(&["PFCOUNT", "small", "big"]).expect("union"), union);
    // And back: an HLL merged on Shoal counts the same on redis-server.
    assert_eq!(s.run("PFMERGE merged small big"), "+OK\r\n");
    let value = bulk(&s.cmd(&["GET", "merged"]).expect("get"));
    r.cmd(&[b"SET".as_ref(), b"merged", &value]).expect("set");
    assert_eq!(r.cmd(&["PFCOUNT", "merged"]).expect("count"), s.cmd(&["PFCOUNT", "merged"]).expect("count"));
}

#[test]
fn dump_restore_round_trips_bitmaps_and_hlls() {
    let node = ShoalNode::start(&[]);
    let mut s = node.connect();
    s.run("SETBIT bm 1000 1");
    s.run("BITFIELD bm SET i16 #3 -1234");
    s.run("PFADD hl a b c d");
    for key in ["bm", "hl"] {
        let payload = bulk(&s.cmd(&["DUMP", key]).expect("dump"));
        let copy = format!("{key}-copy");
        let r = s.cmd(&[b"RESTORE".as_ref(), copy.as_bytes(), b"0", &payload]).expect("restore");
        assert_eq!(r, b"+OK\r\n");
        assert_eq!(s.cmd(&["GET", &copy]).expect("get"), s.cmd(&["GET", key]).expect("get"));
    }
    assert_eq!(s.run("GETBIT bm-copy 1000"), ":1\r\n");
    assert_eq!(s.run("BITFIELD bm-copy GET i16 #3"), "*1\r\n:-1234\r\n");
    assert_eq!(s.run("PFCOUNT hl-copy"), ":4\r\n");
}
