//! DEBUG's subset against redis-server, both started with `enable-debug-command yes`: every
//! PROTOCOL reply in RESP2 and RESP3 byte for byte, OBJECT (address and clock masked), SLEEP,
//! SET-ACTIVE-EXPIRE and LOG; and the refusal when the command is not enabled.

use shoal_e2e::{RawClient, RedisRef, ShoalNode};

fn transcript(mut c: RawClient) -> Vec<String> {
    let mut t = Vec::new();
    let run = |c: &mut RawClient, args: &[&str]| String::from_utf8_lossy(&c.cmd(args).unwrap()).into_owned();
    let types = [
        "string", "integer", "double", "bignum", "null", "array", "set", "map", "attrib", "verbatim", "true",
        "false", "bogus",
    ];
    for proto in ["2", "3"] {
        run(&mut c, &["HELLO", proto]);
        for ty in types {
            t.push(run(&mut c, &["DEBUG", "PROTOCOL", ty]));
        }
    }
    run(&mut c, &["HELLO", "2"]);
    t.push(run(&mut c, &["SET", "k", "hello"]));
    for key in ["k", "nokey"] {
        let r = run(&mut c, &["DEBUG", "OBJECT", key]);
        // "+Value at:0x7f.. refcount:1 encoding:embstr serializedlength:6 lru:123 lru_seconds_idle:0"
        let masked: Vec<&str> =
            r.split(' ').filter(|w| !w.starts_with("at:") && !w.starts_with("lru:")).collect();
        t.push(masked.join(" "));
    }
    t.push(run(&mut c, &["DEBUG", "SLEEP", "0.01"]));
    t.push(run(&mut c, &["DEBUG", "SET-ACTIVE-EXPIRE", "0"]));
    t.push(run(&mut c, &["DEBUG", "SET-ACTIVE-EXPIRE", "1"]));
    t.push(run(&mut c, &["DEBUG", "LOG", "hello from the test"]));
    t.push(run(&mut c, &["DEBUG", "NOSUCH"]));
    t
}

#[test]
fn debug_subset_agrees_with_redis_server() {
    let redis = RedisRef::start_with(&["--enable-debug-command", "yes"]).expect("redis-server is needed");
    let reference = transcript(redis.connect());
    let node = ShoalNode::start(&["--enable-debug-command", "yes"]);
    let ours = transcript(node.connect());
    assert_eq!(ours, reference);
    assert!(node.log.contains("hello from the test"));
    let off = ShoalNode::start(&[]);
    let r = String::from_utf8_lossy(&off.connect().cmd(&["DEBUG", "SLEEP", "0"]).unwrap()).into_owned();
    assert!(r.starts_with("-ERR DEBUG command not allowed."), "{r}");
}
