//! Pub/Sub against real nodes over real sockets, in both I/O thread modes: fan-out to many
//! subscribers in RESP2 and RESP3, patterns, the RESP2 subscriber-mode rules, unsubscribe
//! counts, keyspace notifications, sharded pub/sub on a cluster-mode node, a slow subscriber
//! cut off by the pubsub output buffer limit while the node keeps serving, and redis-py's
//! PubSub. Tests marked `reference` also run against redis-server, so their expectations are
//! Redis's own bytes.

use std::process::Command;
use std::time::{Duration, Instant};

use shoal_e2e::cluster::{key_in_slot, Cluster};
use shoal_e2e::{io_threads_test, run_with_timeout, RawClient, Server, ShoalNode};

fn msg(kind: &str, parts: &[&str], resp3: bool) -> String {
    let mut s =
        format!("{}{}\r\n${}\r\n{kind}\r\n", if resp3 { '>' } else { '*' }, parts.len() + 1, kind.len());
    for p in parts {
        s.push_str(&format!("${}\r\n{p}\r\n", p.len()));
    }
    s
}

fn subscribe(c: &mut RawClient, cmd: &str, name: &str, count: usize, resp3: bool) {
    c.send_cmd(&[cmd, name]).unwrap();
    let kind = cmd.to_ascii_lowercase();
    let want = format!(
        "{}3\r\n${}\r\n{kind}\r\n${}\r\n{name}\r\n:{count}\r\n",
        if resp3 { '>' } else { '*' },
        kind.len(),
        name.len()
    );
    assert_eq!(c.read_text(), want);
}

io_threads_test!(fn fan_out_to_many_subscribers_in_resp2_and_resp3(n) {
    let node = ShoalNode::with_io_threads(n, &[]);
    let mut subs: Vec<(RawClient, bool)> = Vec::new();
    for i in 0..200 {
        let resp3 = i % 2 == 1;
        let mut c = node.connect();
        if resp3 {
            c.send_cmd(&["HELLO", "3"]).unwrap();
            c.read_value().unwrap();
        }
        subscribe(&mut c, "SUBSCRIBE", "news", 1, resp3);
        subs.push((c, resp3));
    }
    let mut pats: Vec<(RawClient, bool)> = Vec::new();
    for i in 0..10 {
        let resp3 = i % 2 == 0;
        let mut c = node.connect();
        if resp3 {
            c.send_cmd(&["HELLO", "3"]).unwrap();
            c.read_value().unwrap();
        }
        subscribe(&mut c, "PSUBSCRIBE", "ne*", 1, resp3);
        pats.push((c, resp3));
    }
    let mut publisher = node.connect();
    assert_eq!(publisher.run("PUBSUB NUMSUB news"), "*2\r\n$4\r\nnews\r\n:200\r\n");
    assert_eq!(publisher.run("PUBSUB NUMPAT"), ":1\r\n");
    for m in 0..5 {
        assert_eq!(publisher.run(&format!("PUBLISH news m{m}")), ":210\r\n");
    }
    assert_eq!(publisher.run("PUBLISH other x"), ":0\r\n");
    for (c, resp3) in &mut subs {
        for m in 0..5 {
            assert_eq!(c.read_text(), msg("message", &["news", &format!("m{m}")], *resp3));
        }
    }
    for (c, resp3) in &mut pats {
        for m in 0..5 {
            assert_eq!(c.read_text(), msg("pmessage", &["ne*", "news", &format!("m{m}")], *resp3));
        }
    }
    // Closing subscribers leaves the registries: only the live ones count.
    drop(subs.drain(100..));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = publisher.run("PUBSUB NUMSUB news");
        if r == "*2\r\n$4\r\nnews\r\n:100\r\n" {
            break;
        }
        assert!(Instant::now() < deadline, "disconnected subscribers still counted: {r}");
        std::thread::yield_now();
    }
    assert_eq!(publisher.run("PUBLISH news last"), ":110\r\n");
    let info = publisher.run("INFO");
    assert!(info.contains("pubsub_channels:1\r\n"), "{info}");
    assert!(info.contains("pubsub_patterns:1\r\n"), "{info}");
    assert!(info.contains("pubsub_clients:110\r\n"), "{info}");
});

io_threads_test!(reference fn subscriber_mode_rules_and_unsubscribe_counts(n) {
    let srv = Server::start(n, &[]);
    let mut c = srv.connect();
    assert_eq!(c.run("UNSUBSCRIBE"), "*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n");
    assert_eq!(c.run("PUNSUBSCRIBE"), "*3\r\n$12\r\npunsubscribe\r\n$-1\r\n:0\r\n");
    assert_eq!(c.run("SUNSUBSCRIBE"), "*3\r\n$12\r\nsunsubscribe\r\n$-1\r\n:0\r\n");
    assert_eq!(c.run("GET x"), "$-1\r\n", "not in subscriber mode after unsubscribing nothing");
    assert_eq!(c.run("SUBSCRIBE a"), "*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n");
    assert_eq!(c.run("PSUBSCRIBE p*"), "*3\r\n$10\r\npsubscribe\r\n$2\r\np*\r\n:2\r\n");
    assert_eq!(c.run("SSUBSCRIBE s"), "*3\r\n$10\r\nssubscribe\r\n$1\r\ns\r\n:1\r\n");
    assert_eq!(
        c.run("GET x"),
        "-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n"
    );
    assert_eq!(c.run("PING"), "*2\r\n$4\r\npong\r\n$0\r\n\r\n");
    assert_eq!(c.run("PING hello"), "*2\r\n$4\r\npong\r\n$5\r\nhello\r\n");
    assert_eq!(c.run("UNSUBSCRIBE nope"), "*3\r\n$11\r\nunsubscribe\r\n$4\r\nnope\r\n:2\r\n");
    assert_eq!(c.run("UNSUBSCRIBE"), "*3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:1\r\n");
    assert_eq!(c.run("PUNSUBSCRIBE"), "*3\r\n$12\r\npunsubscribe\r\n$2\r\np*\r\n:0\r\n");
    // Still in subscriber mode: the shard subscription remains.
    assert!(c.run("GET x").starts_with("-ERR Can't execute 'get'"));
    assert_eq!(c.run("SUNSUBSCRIBE s"), "*3\r\n$12\r\nsunsubscribe\r\n$1\r\ns\r\n:0\r\n");
    assert_eq!(c.run("GET x"), "$-1\r\n");
    // RESET leaves subscriber mode and drops every subscription.
    c.run("SUBSCRIBE a");
    assert_eq!(c.run("RESET"), "+RESET\r\n");
    assert_eq!(c.run("PUBLISH a x"), ":0\r\n");
    // In RESP3 everything is allowed, and messages are push frames.
    c.send_cmd(&["HELLO", "3"]).unwrap();
    c.read_value().unwrap();
    assert_eq!(c.run("SUBSCRIBE a"), ">3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n");
    assert_eq!(c.run("GET x"), "_\r\n");
    assert_eq!(c.run("PING"), "+PONG\r\n");
    c.send_cmd(&["PUBLISH", "a", "self"]).unwrap();
    assert_eq!(c.read_text(), ">3\r\n$7\r\nmessage\r\n$1\r\na\r\n$4\r\nself\r\n");
    assert_eq!(c.read_text(), ":1\r\n");
    // QUIT is allowed in subscriber mode (RESP2).
    let mut q = srv.connect();
    q.run("SUBSCRIBE a");
    assert_eq!(q.run("QUIT"), "+OK\r\n");
});

/// Reads messages until one matches `want`, failing on anything else unexpected.
fn expect_messages(c: &mut RawClient, want: &[String]) {
    for w in want {
        assert_eq!(&c.read_text(), w);
    }
}

io_threads_test!(reference fn keyspace_notifications_for_set_del_expire_and_expired(n) {
    let srv = Server::start(n, &["--notify-keyspace-events", "KEA"]);
    let mut admin = srv.connect();
    assert_eq!(
        admin.run("CONFIG GET notify-keyspace-events"),
        "*2\r\n$22\r\nnotify-keyspace-events\r\n$3\r\nAKE\r\n"
    );
    let mut sub = srv.connect();
    subscribe(&mut sub, "PSUBSCRIBE", "__key*@0__:*", 1, false);
    let p = "__key*@0__:*";
    let space = |key: &str, ev: &str| msg("pmessage", &[p, &format!("__keyspace@0__:{key}"), ev], false);
    let event = |ev: &str, key: &str| msg("pmessage", &[p, &format!("__keyevent@0__:{ev}"), key], false);
    assert_eq!(admin.run("SET k v"), "+OK\r\n");
    expect_messages(&mut sub, &[space("k", "set"), event("set", "k")]);
    assert_eq!(admin.run("EXPIRE k 100"), ":1\r\n");
    expect_messages(&mut sub, &[space("k", "expire"), event("expire", "k")]);
    assert_eq!(admin.run("DEL k"), ":1\r\n");
    expect_messages(&mut sub, &[space("k", "del"), event("del", "k")]);
    assert_eq!(admin.run("DEL k"), ":0\r\n");
    assert_eq!(admin.run("INCRBY n 5"), ":5\r\n");
    expect_messages(&mut sub, &[space("n", "incrby"), event("incrby", "n")]);
    // Active expiry: nobody touches the key, the cron finds it.
    assert_eq!(admin.run("SET gone v PX 30"), "+OK\r\n");
    expect_messages(&mut sub, &[space("gone", "set"), event("set", "gone")]);
    expect_messages(&mut sub, &[space("gone", "expire"), event("expire", "gone")]);
    expect_messages(&mut sub, &[space("gone", "expired"), event("expired", "gone")]);
    // Only key-event channels, and only the generic class: SET is silent now.
    assert_eq!(admin.run("CONFIG SET notify-keyspace-events Eg"), "+OK\r\n");
    assert_eq!(admin.run("CONFIG GET notify-keyspace-events"), "*2\r\n$22\r\nnotify-keyspace-events\r\n$2\r\ngE\r\n");
    admin.run("SET a 1");
    admin.run("DEL a");
    expect_messages(&mut sub, &[event("del", "a")]);
    assert_eq!(
        admin.run("CONFIG SET notify-keyspace-events Kq"),
        "-ERR CONFIG SET failed (possibly related to argument 'notify-keyspace-events') - Invalid event class character. Use 'Ag$lshzxeKEtmdn'.\r\n"
    );
});

io_threads_test!(fn lazy_expiry_publishes_expired(n) {
    let node = ShoalNode::with_io_threads(n, &["--notify-keyspace-events", "Ex", "--hz", "1"]);
    let mut admin = node.connect();
    let mut sub = node.connect();
    subscribe(&mut sub, "SUBSCRIBE", "__keyevent@0__:expired", 1, false);
    // Keys with a 1 ms TTL, read back at once: whichever of lazy or active expiry wins, the
    // event is published exactly once per key.
    for i in 0..20 {
        admin.run(&format!("SET k{i} v PX 1"));
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while admin.run("DBSIZE") != ":0\r\n" {
        for i in 0..20 {
            admin.run(&format!("GET k{i}"));
        }
        assert!(Instant::now() < deadline, "keys did not expire");
    }
    let mut got: Vec<String> = (0..20).map(|_| sub.read_text()).collect();
    got.sort();
    let mut want: Vec<String> =
        (0..20).map(|i| msg("message", &["__keyevent@0__:expired", &format!("k{i}")], false)).collect();
    want.sort();
    assert_eq!(got, want);
    assert_eq!(admin.run("PUBLISH __keyevent@0__:expired probe"), ":1\r\n");
    assert_eq!(sub.read_text(), msg("message", &["__keyevent@0__:expired", "probe"], false));
});

#[test]
fn sharded_pubsub_on_a_cluster_node() {
    let mut c = Cluster::start(2);
    let (lo, hi) = (key_in_slot(100, "a"), key_in_slot(16000, "b"));
    let lo2 = key_in_slot(100, "c");
    let owner = c.node(c.owner(100)).node.connect();
    let mut sub = owner;
    subscribe(&mut sub, "SSUBSCRIBE", &lo, 1, false);
    sub.send_cmd(&["SSUBSCRIBE", &lo2]).unwrap();
    assert_eq!(sub.read_text(), format!("*3\r\n$10\r\nssubscribe\r\n${}\r\n{lo2}\r\n:2\r\n", lo2.len()));
    // A channel of another node's slot is redirected; channels of two slots are refused.
    let r = sub.cmd(&["SSUBSCRIBE", &hi]).unwrap();
    let other = c.ports[c.owner(16000)];
    assert_eq!(String::from_utf8_lossy(&r), format!("-MOVED 16000 127.0.0.1:{other}\r\n"));
    let r = sub.cmd(&["SSUBSCRIBE", &lo, &hi]).unwrap();
    assert_eq!(r, b"-CROSSSLOT Keys in request don't hash to the same slot\r\n");
    let mut publisher = c.node(c.owner(100)).node.connect();
    let r = publisher.cmd(&["SPUBLISH", &hi, "x"]).unwrap();
    assert!(String::from_utf8_lossy(&r).starts_with("-MOVED 16000 "), "{}", String::from_utf8_lossy(&r));
    assert_eq!(publisher.cmd(&["SPUBLISH", &lo, "hello"]).unwrap(), b":1\r\n");
    assert_eq!(sub.read_text(), msg("smessage", &[&lo, "hello"], false));
    // Classic PUBLISH does not reach shard subscribers.
    assert_eq!(publisher.cmd(&["PUBLISH", &lo, "x"]).unwrap(), b":0\r\n");
    let chans = publisher.cmd(&["PUBSUB", "SHARDCHANNELS"]).unwrap();
    let text = String::from_utf8_lossy(&chans);
    assert!(text.starts_with("*2\r\n") && text.contains(&lo) && text.contains(&lo2), "{text}");
    let r = publisher.cmd(&["PUBSUB", "SHARDNUMSUB", &lo]).unwrap();
    assert_eq!(String::from_utf8_lossy(&r), format!("*2\r\n${}\r\n{lo}\r\n:1\r\n", lo.len()));
    sub.send_cmd(&["SUNSUBSCRIBE"]).unwrap();
    let first = sub.read_text();
    let second = sub.read_text();
    assert!(first.ends_with(":1\r\n") && second.ends_with(":0\r\n"), "{first} {second}");
    assert_eq!(publisher.cmd(&["SPUBLISH", &lo, "x"]).unwrap(), b":0\r\n");

    // When the slot moves to another node, its shard channels' subscribers are told.
    subscribe(&mut sub, "SSUBSCRIBE", &lo, 1, false);
    let mut moved = c.assignment.clone();
    let old_owner = c.owner(100);
    let new_owner = 1 - old_owner;
    moved.retain(|a| !(a.0 <= 100 && 100 <= a.1));
    moved.push((0, 100, new_owner));
    moved.push((101, 8191, old_owner));
    c.push(moved);
    assert_eq!(sub.read_text(), format!("*3\r\n$12\r\nsunsubscribe\r\n${}\r\n{lo}\r\n:0\r\n", lo.len()));
    let r = publisher.cmd(&["PUBSUB", "SHARDCHANNELS"]).unwrap();
    assert_eq!(r, b"*0\r\n");
}

io_threads_test!(fn slow_subscriber_is_cut_off_and_the_node_keeps_serving(n) {
    let node = ShoalNode::with_io_threads(n, &["--client-output-buffer-limit", "pubsub 256kb 0 0"]);
    let mut admin = node.connect();
    assert_eq!(
        admin.run("CONFIG GET client-output-buffer-limit"),
        "*2\r\n$26\r\nclient-output-buffer-limit\r\n$58\r\nnormal 0 0 0 slave 268435456 67108864 60 pubsub 262144 0 0\r\n"
    );
    let mut slow = node.connect();
    subscribe(&mut slow, "SUBSCRIBE", "feed", 1, false);
    let mut fast = node.connect();
    subscribe(&mut fast, "SUBSCRIBE", "feed", 1, false);
    let payload = "x".repeat(32 * 1024);
    let mut cut_off = false;
    // The slow subscriber never reads: once the kernel buffers are full its pending output
    // grows by 32 KB per message until it passes 256 KB. The fast one reads every message
    // before the next is published, so it stays far below the limit.
    for i in 0..4000 {
        let r = admin.cmd(&["PUBLISH", "feed", &payload]).unwrap();
        let receivers = String::from_utf8_lossy(&r).into_owned();
        let got = fast.read_raw().unwrap();
        assert!(got.ends_with(format!("{payload}\r\n").as_bytes()), "message {i}");
        if receivers == ":1\r\n" {
            cut_off = true;
            break;
        }
        assert_eq!(receivers, ":2\r\n");
    }
    assert!(cut_off, "the slow subscriber was never disconnected");
    let info = admin.run("INFO stats");
    assert!(info.contains("client_output_buffer_limit_disconnections:1\r\n"), "{info}");
    // The node's log reaches the test through a reader thread: wait (bounded) for the line.
    let logged = node.log.wait_for(shoal_e2e::process::START_TIMEOUT, |l| {
        l.contains("scheduled to be closed ASAP for overcoming of output buffer limits").then_some(())
    });
    assert!(logged.is_some(), "no log line:\n{}", node.log.lines().join("\n"));
    // The node keeps serving the others.
    assert_eq!(admin.run("SET k v"), "+OK\r\n");
    assert_eq!(admin.run("PUBLISH feed small"), ":1\r\n");
    assert_eq!(fast.read_text(), msg("message", &["feed", "small"], false));
    // The slow subscriber's socket ends: what it can still read is whole messages, then EOF.
    slow.stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match slow.read_raw() {
            Ok(_) => assert!(Instant::now() < deadline, "the slow subscriber's connection stayed open"),
            Err(e) => {
                assert_ne!(e.kind(), std::io::ErrorKind::TimedOut, "{e}");
                break;
            }
        }
    }
});

#[test]
fn redis_py_pubsub() {
    let probe = Command::new("python3").args(["-c", "import redis"]).output();
    if !probe.map(|o| o.status.success()).unwrap_or(false) {
        println!("skipped: python3 with the redis module is not available (pip install redis)");
        return;
    }
    let node = ShoalNode::with_io_threads(2, &[]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/python/pubsub_client.py");
    for proto in ["2", "3"] {
        let out = run_with_timeout(
            Command::new("python3").arg(script).arg(node.port.to_string()).arg(proto),
            b"",
            Duration::from_secs(60),
        );
        assert!(out.status.success(), "redis-py pubsub failed:\n{}\n{}", out.stdout, out.stderr);
        assert!(out.stdout.contains("redis-py pubsub ok"), "{}", out.stdout);
    }
}

#[test]
fn hash_fields_expired_by_the_active_cycle_publish_hexpired_then_del() {
    let node = ShoalNode::start(&["--notify-keyspace-events", "Ehg"]);
    let mut admin = node.connect();
    let mut sub = node.connect();
    subscribe(&mut sub, "SUBSCRIBE", "__keyevent@0__:hexpired", 1, false);
    subscribe(&mut sub, "SUBSCRIBE", "__keyevent@0__:del", 2, false);
    assert_eq!(admin.run("HSET h a 1 b 2"), ":2\r\n");
    // Nobody reads `h` again: only the cron's pass over hashes with field TTLs expires them.
    assert_eq!(admin.run("HPEXPIRE h 20 FIELDS 2 a b"), "*2\r\n:1\r\n:1\r\n");
    expect_messages(
        &mut sub,
        &[
            msg("message", &["__keyevent@0__:hexpired", "h"], false),
            msg("message", &["__keyevent@0__:del", "h"], false),
        ],
    );
    assert_eq!(admin.run("EXISTS h"), ":0\r\n");
}
