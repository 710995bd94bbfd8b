//! MONITOR against shoal-node and redis-server side by side: the same commands from another
//! client must appear the same way (timestamps and client ports aside): quoting, the database,
//! script calls from `lua`, redacted secrets, admin and scripting commands left out.

use shoal_e2e::{RawClient, RedisRef, ShoalNode};

/// Runs the commands on `c` while `m` monitors; returns the feed with times and ports masked.
fn watch(m: &mut RawClient, mut c: RawClient) -> Vec<String> {
    assert_eq!(m.cmd(&["MONITOR"]).unwrap(), b"+OK\r\n");
    let script = "return redis.call('GET', KEYS[1])";
    let commands: Vec<Vec<&str>> = vec![
        vec!["SET", "k", "a \"b\"\n\x01"],
        vec!["GET", "k"],
        vec!["CONFIG", "GET", "maxmemory"],
        vec!["EVAL", script, "1", "k"],
        vec!["AUTH", "user", "secret"],
        vec!["HELLO", "2", "AUTH", "default", "secret", "SETNAME", "me"],
        vec!["SELECT", "2"],
        vec!["INCR", "n"],
        vec!["PING"],
    ];
    for cmd in &commands {
        c.cmd(cmd).unwrap();
    }
    let mut feed = Vec::new();
    // Commands that appear: SET, GET, GET (from the script), AUTH, HELLO, SELECT, INCR, PING.
    for _ in 0..8 {
        let line = String::from_utf8_lossy(&m.read_raw().unwrap()).into_owned();
        // "+1700000000.123456 [0 127.0.0.1:5555] ..." -> "[0 client] ..."
        let rest = line.split_once(' ').map(|x| x.1).unwrap_or("");
        let (who, args) = rest.split_once("] ").unwrap_or((rest, ""));
        let db = who.trim_start_matches('[').split(' ').next().unwrap_or("");
        let client = if who.ends_with(" lua") { "lua" } else { "client" };
        assert!(line.starts_with('+') && line.as_bytes()[11] == b'.', "{line}");
        feed.push(format!("[{db} {client}] {args}"));
    }
    m.send_cmd(&["PING"]).unwrap();
    feed
}

#[test]
fn monitor_feed_agrees_with_redis_server() {
    let redis = RedisRef::start().expect("redis-server is needed");
    let reference = watch(&mut redis.connect(), redis.connect());
    let node = ShoalNode::start(&[]);
    let mut monitor = node.connect();
    let ours = watch(&mut monitor, node.connect());
    assert_eq!(ours, reference);
    assert!(ours.iter().any(|l| l.starts_with("[0 lua] \"GET\" \"k\"")), "{ours:?}");
    assert!(ours.iter().any(|l| l.contains("\"(redacted)\"")) && !ours.iter().any(|l| l.contains("secret")));
    assert!(ours.iter().any(|l| l.starts_with("[2 client] \"INCR\"")), "{ours:?}");
    let mut c = node.connect();
    let list = String::from_utf8_lossy(&c.cmd(&["CLIENT", "LIST"]).unwrap()).into_owned();
    assert!(list.contains("flags=O"), "{list}");
    drop(monitor);
}
