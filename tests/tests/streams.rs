//! Streams over real sockets: blocking XREAD woken by XADD from another connection (and its
//! timeout), XREADGROUP BLOCK with two consumers getting each entry exactly once, XACK, and
//! a dead consumer's pending entries taken over with XPENDING/XCLAIM/XAUTOCLAIM. These run
//! against shoal-node with 1 and 2 I/O threads and against redis-server as the reference.
//! Then replication: a Shoal primary's stream writes (XADD `*` with `~` trimming, group reads,
//! claims) reach a Shoal replica and a redis-server replica identical to the primary, both
//! through the command stream and through a full sync.
//! Cluster mode: blocked readers get MOVED when their slot leaves, streams migrate with their
//! slot. DUMP/RESTORE and RDB files with redis-server and Valkey are in `rdb_interop.rs`.

use std::time::{Duration, Instant};

use shoal_e2e::client::RawClient;
use shoal_e2e::io_threads_test;
use shoal_e2e::process::Server;
use shoal_e2e::resp::Value as Resp;
use shoal_e2e::{RedisRef, ShoalNode};

const WAIT: Duration = Duration::from_secs(10);

/// Waits (bounded) until the node counts `n` blocked clients.
fn wait_blocked(c: &mut RawClient, n: usize) {
    c.wait_info("clients", "blocked_clients", n, WAIT);
}

fn bulk(s: &str) -> String {
    shoal_e2e::resp::bulk_text(s)
}

/// `[[key, [[id, [f, v]]]]]`, an XREAD reply with one stream and one entry.
fn one_entry(key: &str, id: &str, f: &str, v: &str) -> String {
    format!("*1\r\n*2\r\n{}*1\r\n*2\r\n{}*2\r\n{}{}", bulk(key), bulk(id), bulk(f), bulk(v))
}

io_threads_test!(reference fn blocked_xread_is_woken_by_xadd(n) {
    let server = Server::start(n, &[]);
    let mut admin = server.connect();
    let mut reader = server.connect();
    admin.run("XADD s 1-0 f old");
    reader.send_cmd(&["XREAD", "BLOCK", "0", "STREAMS", "nothing", "s", "$", "$"]).expect("send");
    wait_blocked(&mut admin, 1);
    // Writes elsewhere, and a group change on the key, do not answer it.
    admin.run("XADD other 1-0 f v");
    admin.run("XGROUP CREATE s g $");
    assert_eq!(admin.run("XADD s 2-0 f new"), bulk("2-0"));
    assert_eq!(reader.read_text(), one_entry("s", "2-0", "f", "new"));
    wait_blocked(&mut admin, 0);
    // A timeout answers a null array, no earlier than asked.
    let start = Instant::now();
    assert_eq!(reader.run("XREAD BLOCK 150 STREAMS s $"), "*-1\r\n");
    assert!(start.elapsed() >= Duration::from_millis(140), "{:?}", start.elapsed());
});

io_threads_test!(reference fn consumers_share_entries_and_claim_a_dead_ones(n) {
    let server = Server::start(n, &[]);
    let mut admin = server.connect();
    assert_eq!(admin.run("XGROUP CREATE jobs g $ MKSTREAM"), "+OK\r\n");
    let mut alice = server.connect();
    let mut bob = server.connect();
    alice.send_cmd(&["XREADGROUP", "GROUP", "g", "alice", "COUNT", "1", "BLOCK", "0", "STREAMS", "jobs", ">"]).expect("send");
    wait_blocked(&mut admin, 1);
    bob.send_cmd(&["XREADGROUP", "GROUP", "g", "bob", "COUNT", "1", "BLOCK", "0", "STREAMS", "jobs", ">"]).expect("send");
    wait_blocked(&mut admin, 2);
    // Each entry goes to exactly one consumer, the first blocked first.
    admin.run("XADD jobs 1-0 job one");
    assert_eq!(alice.read_text(), one_entry("jobs", "1-0", "job", "one"));
    wait_blocked(&mut admin, 1);
    admin.run("XADD jobs 2-0 job two");
    assert_eq!(bob.read_text(), one_entry("jobs", "2-0", "job", "two"));
    wait_blocked(&mut admin, 0);
    assert_eq!(alice.run("XREADGROUP GROUP g alice STREAMS jobs >"), "*-1\r\n");
    // Alice acknowledges; Bob reads one more and dies without acknowledging.
    assert_eq!(alice.run("XACK jobs g 1-0"), ":1\r\n");
    admin.run("XADD jobs 3-0 job three");
    assert_eq!(bob.run("XREADGROUP GROUP g bob STREAMS jobs >"), one_entry("jobs", "3-0", "job", "three"));
    drop(bob);
    let summary = admin.run("XPENDING jobs g");
    assert_eq!(summary, format!("*4\r\n:2\r\n{}{}*1\r\n*2\r\n{}{}", bulk("2-0"), bulk("3-0"), bulk("bob"), bulk("2")));
    // Alice takes Bob's entries: one by XCLAIM, the rest by XAUTOCLAIM.
    let claimed = alice.run("XCLAIM jobs g alice 0 2-0");
    assert_eq!(claimed, format!("*1\r\n*2\r\n{}*2\r\n{}{}", bulk("2-0"), bulk("job"), bulk("two")));
    let auto = alice.run("XAUTOCLAIM jobs g alice 0 0 JUSTID");
    assert_eq!(auto, format!("*3\r\n{}*2\r\n{}{}*0\r\n", bulk("0-0"), bulk("2-0"), bulk("3-0")));
    let rows = alice.run("XPENDING jobs g - + 10 alice");
    assert_eq!(rows.matches("alice").count(), 2, "{rows}");
    // 2-0: read by Bob, claimed by Alice; JUSTID does not count as a delivery.
    assert!(rows.starts_with(&format!("*2\r\n*4\r\n{}{}", bulk("2-0"), bulk("alice"))), "{rows}");
    assert!(rows.ends_with(":2\r\n*4\r\n$3\r\n3-0\r\n$5\r\nalice\r\n") || rows.contains(":2\r\n*4"), "{rows}");
    assert_eq!(alice.run("XACK jobs g 2-0 3-0"), ":2\r\n");
    assert_eq!(admin.run("XPENDING jobs g"), "*4\r\n:0\r\n$-1\r\n$-1\r\n*-1\r\n");
});

/// Polls `f` (bounded) until it holds.
fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    shoal_e2e::cluster::wait_for(Duration::from_secs(30), what, || f().then_some(()));
}

/// What must be equal on a primary and its replicas (times of day excluded: XPENDING's idle
/// times and consumers' seen times are the local clock's).
fn state(c: &mut RawClient) -> Vec<String> {
    let mut out =
        vec![c.run("XRANGE s - +"), c.run("XINFO GROUPS s"), c.run("XLEN t"), c.run("XRANGE t - +")];
    // Consumers: name and pending count (idle times are local; 7.0 has no `inactive`).
    for g in ["g", "noack"] {
        c.send_cmd(&["XINFO", "CONSUMERS", "s", g]).expect("send");
        let Ok(Resp::Agg(_, Some(list))) = c.read_value() else { panic!("XINFO CONSUMERS") };
        let names: Vec<String> = list
            .into_iter()
            .map(|m| match m {
                Resp::Agg(_, Some(kv)) if kv.len() >= 4 => format!("{:?}={:?}", kv[1], kv[3]),
                other => panic!("consumer {other:?}"),
            })
            .collect();
        out.push(names.join("|"));
    }
    let info = c.run("XINFO STREAM s");
    // Drop radix-tree-nodes (an internal figure) but keep every other field.
    out.push(
        info.split("radix-tree-nodes")
            .nth(1)
            .map(|s| s.split_once("\r\n$17").map_or("", |p| p.1))
            .unwrap_or("")
            .to_string(),
    );
    for g in ["g", "noack"] {
        // Keep ID, consumer and delivery count of each row; drop the idle time.
        c.send_cmd(&["XPENDING", "s", g, "-", "+", "1000"]).expect("send");
        let Ok(Resp::Agg(_, Some(rows))) = c.read_value() else { panic!("XPENDING") };
        let kept: Vec<String> = rows
            .into_iter()
            .map(|r| match r {
                Resp::Agg(_, Some(cols)) if cols.len() == 4 => {
                    format!("{:?} {:?} {:?}", cols[0], cols[1], cols[3])
                }
                other => panic!("XPENDING row {other:?}"),
            })
            .collect();
        out.push(kept.join("|"));
    }
    out
}

#[test]
fn stream_writes_reach_shoal_and_redis_replicas_identical() {
    let primary = ShoalNode::start(&[]);
    let shoal_replica = ShoalNode::start(&[]);
    let (redis_replica, _port) = RedisRef::start_tcp(&[]).expect("redis-server");
    let mut p = primary.connect();
    let mut replicas = [shoal_replica.connect(), redis_replica.connect()];
    for r in replicas.iter_mut() {
        assert_eq!(r.run(&format!("REPLICAOF 127.0.0.1 {}", primary.port)), "+OK\r\n");
        wait_until("the replica link is up", || r.run("INFO replication").contains("master_link_status:up"));
    }
    // XADD * (a concrete ID must reach the replicas), approximate trimming (an exact one must).
    p.run("XGROUP CREATE s g $ MKSTREAM");
    p.run("XGROUP CREATE s noack $");
    for i in 0..700 {
        let r = p
            .cmd(&["XADD", "s", "MAXLEN", "~", "450", "*", "n", &i.to_string(), "pad", "xxxxxxxx"])
            .expect("XADD");
        assert!(r.starts_with(b"$"), "{}", String::from_utf8_lossy(&r));
    }
    for i in 0..300 {
        p.run(&format!("XADD t {}-1 v {i}", i + 1));
    }
    assert_eq!(p.run("XTRIM t MINID ~ 250"), ":200\r\n");
    p.run("XTRIM t MAXLEN 60");
    // Group reads, NOACK reads, claims, acks and deletions.
    p.run("XREADGROUP GROUP g a COUNT 20 STREAMS s >");
    p.run("XREADGROUP GROUP g b COUNT 10 STREAMS s >");
    p.run("XREADGROUP GROUP noack c COUNT 15 NOACK STREAMS s >");
    p.run("XREADGROUP GROUP g b STREAMS s 0");
    let first = p.run("XRANGE s - + COUNT 1");
    let first_id = first.split("\r\n").nth(3).unwrap_or_default().to_string();
    p.run(&format!("XCLAIM s g b 0 {first_id} RETRYCOUNT 5"));
    p.run("XAUTOCLAIM s g c 0 0 COUNT 3");
    p.run(&format!("XACK s g {first_id}"));
    let last = p.run("XREVRANGE s + - COUNT 1");
    let last_id = last.split("\r\n").nth(3).unwrap_or_default().to_string();
    p.run(&format!("XDEL s {last_id}"));
    p.run("XGROUP CREATECONSUMER s g idle");
    // Consumers created by reads and claims that took nothing exist on replicas too.
    p.run("XREADGROUP GROUP g nothing-yet STREAMS s 0");
    p.run("XCLAIM s g claimer 0 0-1");
    p.run("XAUTOCLAIM s g autoclaimer 99999999 0");
    p.run("XGROUP DELCONSUMER s g a");
    assert_eq!(p.run("WAIT 2 10000"), ":2\r\n");
    let want = state(&mut p);
    assert!(want[0].starts_with("*4"), "the approximate trim kept whole nodes: {}", &want[0][..20]);
    for (r, name) in replicas.iter_mut().zip(["shoal", "redis-server"]) {
        let deadline = Instant::now() + WAIT;
        while state(r) != want && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let got = state(r);
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g, w, "{name} replica, part {i}");
        }
    }
    // Replicas that join now get the streams by full sync (RDB).
    let late_shoal = ShoalNode::start(&[]);
    let (late_redis, _port) = RedisRef::start_tcp(&[]).expect("redis-server");
    for (mut r, name) in [(late_shoal.connect(), "late shoal"), (late_redis.connect(), "late redis-server")] {
        assert_eq!(r.run(&format!("REPLICAOF 127.0.0.1 {}", primary.port)), "+OK\r\n");
        wait_until("the late replica synced", || r.run("INFO replication").contains("master_link_status:up"));
        let deadline = Instant::now() + WAIT;
        while state(&mut r) != want && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(state(&mut r), want, "{name} replica");
    }
}

/// redis-py's stream API (consumer groups under load, claims, XINFO parsing) in RESP2 and
/// RESP3: `tests/python/streams_client.py`.
#[test]
fn redis_py_consumer_groups() {
    let node = ShoalNode::start(&["--io-threads", "2"]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/python/streams_client.py");
    let out = shoal_e2e::run_with_timeout(
        std::process::Command::new("python3").arg(script).arg(node.port.to_string()),
        b"",
        Duration::from_secs(180),
    );
    assert!(
        out.status.success() && out.stdout.contains("streams ok"),
        "streams_client.py failed (redis-py: pip install redis):\n{}\n{}\nnode log:\n{}",
        out.stdout,
        out.stderr,
        node.log.lines().join("\n")
    );
}

/// Cluster mode: clients blocked in XREAD and XREADGROUP on a key whose slot moves away get
/// `-MOVED` to the new owner; keys after STREAMS route (CROSSSLOT across slots).
#[test]
fn stream_waiters_on_a_slot_that_moves_away_get_moved() {
    use shoal_e2e::cluster::{key_slot, Cluster};
    let mut cluster = Cluster::start(2);
    let slot = key_slot(b"{s}a");
    let owner = cluster.owner(slot);
    let other = 1 - owner;
    let node = &cluster.node(owner).node;
    let mut admin = node.connect();
    assert_eq!(admin.run("XGROUP CREATE {s}a g $ MKSTREAM"), "+OK\r\n");
    assert!(admin.run("XREAD STREAMS {s}a other 0 0").starts_with("-CROSSSLOT"));
    let mut reader = node.connect();
    let mut grouped = node.connect();
    reader.send_cmd(&["XREAD", "BLOCK", "0", "STREAMS", "{s}a", "{s}b", "$", "$"]).expect("send");
    grouped.send_cmd(&["XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "{s}a", ">"]).expect("send");
    wait_blocked(&mut admin, 2);
    let new_port = cluster.ports[other];
    cluster.push(vec![(0, 16383, other)]);
    for c in [&mut reader, &mut grouped] {
        let reply = c.read_text();
        assert!(reply.starts_with(&format!("-MOVED {slot} ")), "{reply}");
        assert!(reply.ends_with(&format!(":{new_port}\r\n")), "{reply}");
    }
    wait_blocked(&mut admin, 0);
}

/// Cluster mode: a slot holding streams with groups migrates (`CLUSTER MIGRATESLOTS`) with
/// entries, deletions, groups, PELs and counters intact.
#[test]
fn streams_move_with_their_slot() {
    use shoal_e2e::cluster::{key_slot, migrations, wait_for, Cluster};
    let c = Cluster::start(2);
    let slot = key_slot(b"{m}s");
    let (from, to) = (c.owner(slot), 1 - c.owner(slot));
    let mut src = c.node(from).node.connect();
    for i in 1..=300 {
        src.run(&format!("XADD {{m}}s {i}-0 n {i} pad padding-{i}"));
    }
    src.run("XDEL {m}s 7-0");
    src.run("XGROUP CREATE {m}s g 0");
    src.run("XREADGROUP GROUP g alice COUNT 5 STREAMS {m}s >");
    src.run("XADD {m}t 1-1 f v");
    let before: Vec<String> =
        ["XRANGE {m}s - +", "XINFO GROUPS {m}s", "XPENDING {m}s g", "XINFO STREAM {m}s"]
            .iter()
            .map(|cmd| src.run(cmd))
            .collect();
    let r =
        c.node(from).run(&format!("CLUSTER MIGRATESLOTS SLOTSRANGE {slot} {slot} NODE {}", c.node(to).id));
    assert_eq!(r, "+OK\r\n");
    wait_for(WAIT, "the export finished", || {
        migrations(c.node(from))
            .into_iter()
            .rev()
            .find(|j| j.get("operation").map(String::as_str) == Some("EXPORT"))
            .filter(|j| ["success", "failed", "cancelled"].contains(&j["state"].as_str()))
    });
    let mut dst = c.node(to).node.connect();
    let after: Vec<String> = ["XRANGE {m}s - +", "XINFO GROUPS {m}s", "XPENDING {m}s g", "XINFO STREAM {m}s"]
        .iter()
        .map(|cmd| dst.run(cmd))
        .collect();
    assert_eq!(after, before);
    assert_eq!(dst.run("XLEN {m}t"), ":1\r\n");
    assert!(src.run("XLEN {m}s").starts_with("-MOVED"), "the source redirects");
}
