//! PUBLISH across a 3-shard cluster (`cluster::bus`): a subscriber on one node gets what is
//! published on any node, exactly once, whatever node the publisher picked; the reply counts
//! the receiving node's subscribers, as Valkey's; a dead peer costs dropped messages (counted),
//! never the publisher's reply.

use std::time::Duration;

use shoal_e2e::cluster::{Cluster, ClusterNode};
use shoal_e2e::RawClient;

fn subscriber(node: &ClusterNode, channel: &str, pattern: bool) -> RawClient {
    let mut c = node.node.connect();
    let cmd = if pattern { "PSUBSCRIBE" } else { "SUBSCRIBE" };
    c.send_cmd(&[cmd, channel]).unwrap();
    let confirm = String::from_utf8_lossy(&c.read_raw().unwrap()).into_owned();
    assert!(confirm.contains("subscribe"), "{confirm}");
    c
}

/// The next message pushed to a subscriber: (channel, payload).
fn next_message(c: &mut RawClient) -> String {
    String::from_utf8_lossy(&c.read_raw().expect("a message within the read timeout")).into_owned()
}

#[test]
fn publish_reaches_subscribers_on_every_node() {
    let cluster = Cluster::start(3);
    let mut subs: Vec<RawClient> = (0..3).map(|i| subscriber(cluster.node(i), "news", false)).collect();
    let mut pattern = subscriber(cluster.node(2), "ne*", true);
    for i in 0..3 {
        let mut publisher = cluster.node(i).node.connect();
        let msg = format!("hello from node {i}");
        // The reply counts this node's subscribers: the channel one, plus the pattern on node 2.
        let local = if i == 2 { 2 } else { 1 };
        assert_eq!(publisher.cmd(&["PUBLISH", "news", &msg]).unwrap(), format!(":{local}\r\n").into_bytes());
        for s in subs.iter_mut() {
            let got = next_message(s);
            assert!(got.contains("message") && got.contains(&msg), "{got}");
        }
        let got = next_message(&mut pattern);
        assert!(got.contains("pmessage") && got.contains(&msg), "{got}");
    }
    // Exactly once: nothing else arrived (a PING answers before any late duplicate would).
    for s in subs.iter_mut().chain(std::iter::once(&mut pattern)) {
        s.send_cmd(&["PING"]).unwrap();
        let r = next_message(s);
        assert!(r.contains("pong"), "only the pong is left: {r}");
    }
    let info = cluster.node(0).run("INFO stats");
    assert!(info.contains("cluster_publish_forwarded:2\r\n"), "{info}");
}

#[test]
fn a_dead_peer_costs_dropped_messages_not_the_publisher() {
    let mut cluster = Cluster::start(3);
    let mut sub = subscriber(cluster.node(1), "ch", false);
    // Stopped (dropping the handle kills the process).
    cluster.nodes[2] = None;
    let mut publisher = cluster.node(0).node.connect();
    for i in 0..20 {
        assert_eq!(publisher.cmd(&["PUBLISH", "ch", &format!("m{i}")]).unwrap(), b":0\r\n");
    }
    for i in 0..20 {
        let got = next_message(&mut sub);
        assert!(got.contains(&format!("m{i}")), "in order: {got}");
    }
    let dropped = shoal_e2e::cluster::wait_for(Duration::from_secs(10), "drops counted", || {
        let info = cluster.node(0).run("INFO stats");
        let n: u64 = info.split("cluster_publish_dropped:").nth(1)?.split("\r\n").next()?.parse().ok()?;
        (n > 0).then_some(n)
    });
    assert!(dropped <= 20, "{dropped}");
}

/// Issue 16's report: ioredis and node-redis cluster clients subscribed to 6 channels receive
/// all 6 messages published through another cluster connection.
#[test]
fn ioredis_and_node_redis_receive_every_message() {
    let cluster = Cluster::start(3);
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/node");
    assert!(
        std::path::Path::new(dir).join("node_modules/ioredis").exists(),
        "Node.js packages missing: run `npm ci` in tests/node (scripts/test.sh does)"
    );
    let out = shoal_e2e::run_with_timeout(
        std::process::Command::new("node")
            .arg(format!("{dir}/pubsub.js"))
            .arg(cluster.node(0).port().to_string()),
        b"",
        Duration::from_secs(120),
    );
    assert!(out.status.success(), "pubsub.js failed:\n{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("ioredis 6/6, node-redis 6/6"), "{}", out.stdout);
}

/// A sharded subscriber of a slot that migrates away is told with Valkey's `sunsubscribe`
/// (an array in RESP2, a push in RESP3) when its node hands the slot over, before the control
/// plane pushes the topology; the source then redirects SSUBSCRIBE, and resubscribing on the
/// new owner, as node-redis, ioredis and GLIDE do (docs/cluster-clients.md), gets the next
/// SPUBLISH. A node outside the migration hears of the new owner from the source
/// (`CLUSTER SLOTSMOVED` over the bus), as Valkey's nodes do from the cluster bus, so a
/// client that reloads CLUSTER SLOTS from it on the `sunsubscribe` (ioredis) finds the target.
#[test]
fn sharded_subscribers_are_told_when_their_slot_migrates_away() {
    let cluster = Cluster::start(3);
    let ch = shoal_e2e::cluster::key_in_slot(100, "ch");
    assert_eq!(cluster.owner(100), 0);
    let mut resp2 = cluster.node(0).node.connect();
    let mut resp3 = cluster.node(0).node.connect();
    assert!(resp3.run("HELLO 3").starts_with('%'));
    for c in [&mut resp2, &mut resp3] {
        c.send_cmd(&["SSUBSCRIBE", ch.as_str()]).unwrap();
        assert!(next_message(c).contains("ssubscribe"));
    }
    let to = cluster.node(1);
    let r = cluster.node(0).run(&format!("CLUSTER MIGRATESLOTS SLOTSRANGE 100 100 NODE {}", to.id));
    assert_eq!(r, "+OK\r\n");
    let tail = format!("${}\r\n{ch}\r\n:0\r\n", ch.len());
    assert_eq!(next_message(&mut resp2), format!("*3\r\n$12\r\nsunsubscribe\r\n{tail}"));
    assert_eq!(next_message(&mut resp3), format!(">3\r\n$12\r\nsunsubscribe\r\n{tail}"));
    let moved = resp2.cmd(&["SSUBSCRIBE", ch.as_str()]).unwrap();
    assert_eq!(String::from_utf8_lossy(&moved), format!("-MOVED 100 127.0.0.1:{}\r\n", to.port()));
    let third = cluster.node(2);
    let key = shoal_e2e::cluster::key_in_slot(100, "k");
    let want = format!("-MOVED 100 127.0.0.1:{}\r\n", to.port());
    shoal_e2e::cluster::wait_for(Duration::from_secs(10), "the third node to redirect to the target", || {
        (third.run(&format!("GET {key}")) == want).then_some(())
    });
    let slots = third.run("CLUSTER SLOTS");
    assert!(
        slots.contains(&format!("*3\r\n:100\r\n:100\r\n*4\r\n$9\r\n127.0.0.1\r\n:{}\r\n", to.port())),
        "{slots}"
    );
    let mut again = to.node.connect();
    again.send_cmd(&["SSUBSCRIBE", ch.as_str()]).unwrap();
    assert!(next_message(&mut again).contains("ssubscribe"));
    assert_eq!(to.node.connect().cmd(&["SPUBLISH", ch.as_str(), "after"]).unwrap(), b":1\r\n");
    let got = next_message(&mut again);
    assert!(got.contains("smessage") && got.contains("after"), "{got}");
}

/// Issue 16's sharded pub/sub failures are the clients' own, the same on Valkey 9.1
/// (docs/cluster-clients.md): SSUBSCRIBE of several slots' channels in one call is CROSSSLOT
/// (ioredis, node-redis); ioredis without `shardedSubscribers` sends every SSUBSCRIBE to one
/// node and gives up after the MOVED redirections; one call per slot, with ioredis'
/// `shardedSubscribers`, gets every message.
#[test]
fn multi_slot_ssubscribe_fails_in_the_clients_as_on_valkey() {
    let cluster = Cluster::start(3);
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/node");
    assert!(
        std::path::Path::new(dir).join("node_modules/ioredis").exists(),
        "Node.js packages missing: run `npm ci` in tests/node (scripts/test.sh does)"
    );
    let out = shoal_e2e::run_with_timeout(
        std::process::Command::new("node")
            .arg(format!("{dir}/sharded_pitfalls.js"))
            .arg(cluster.node(0).port().to_string()),
        b"",
        Duration::from_secs(120),
    );
    assert!(out.status.success(), "sharded_pitfalls.js failed:\n{}\n{}", out.stdout, out.stderr);
    let line = out.stdout.lines().find_map(|l| l.strip_prefix("RESULT ")).expect("a RESULT line");
    let r: serde_json::Value = serde_json::from_str(line).expect("JSON");
    let crossslot = "error: CROSSSLOT Keys in request don't hash to the same slot";
    assert_eq!(r["ioredis_one_call"], crossslot);
    let redirections = r["ioredis_per_channel"].as_str().unwrap_or_default();
    assert!(
        redirections.starts_with("error: Too many Cluster redirections. Last error: ReplyError: MOVED "),
        "{r}"
    );
    assert_eq!(
        r["ioredis_sharded_subscribers_one_call"],
        "error: Possible CROSSSLOT error: All channels must hash to the same slot"
    );
    assert_eq!(r["ioredis_sharded_subscribers_per_channel"], "got 6");
    assert_eq!(r["node_redis_one_call"], crossslot);
    assert_eq!(r["node_redis_per_channel"], "got 6");
}
