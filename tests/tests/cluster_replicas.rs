//! Replicas in cluster mode with real node processes, the test acting as the control plane:
//! a pushed topology makes a node its shard primary's replica; a planned failover (CLIENT
//! PAUSE WRITE on the primary, wait for the replica's offset, push the swapped roles, UNPAUSE)
//! under a writer that records every acknowledged write loses none and shows clients only
//! MOVED; the old primary follows the new one with a partial resync; READONLY reads, CLUSTER
//! SHARDS offsets and CLUSTER REPLICAS; a primary restarted without its data is fenced until
//! a push, then resyncs as a replica; CLUSTER FAILOVER's checks.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use shoal_e2e::cluster::{key_in_slot, wait_for, ClusterNode, Router, TempDir};
use shoal_e2e::resp::Value;

const WAIT: Duration = Duration::from_secs(30);

/// Three nodes: shard A = node 0 (primary, slots 0-8191) + node 1 (replica), shard B = node 2.
struct Trio {
    nodes: Vec<ClusterNode>,
    _dirs: Vec<TempDir>,
    epoch: u64,
}

impl Trio {
    fn start() -> Trio {
        let dirs: Vec<TempDir> = (0..3).map(|_| TempDir::new("replicas")).collect();
        let nodes = dirs.iter().map(|d| ClusterNode::start(&d.0, None, &[])).collect();
        let mut t = Trio { nodes, _dirs: dirs, epoch: 0 };
        t.push(0, 1, &[0, 1, 2]);
        wait_for(WAIT, "node 1 to sync from node 0", || t.linked(1).then_some(()));
        t
    }

    /// Pushes shard A = `primary` + `replica`, shard B = node 2, to `order`'s nodes in order.
    fn push(&mut self, primary: usize, replica: usize, order: &[usize]) {
        self.epoch += 1;
        let n = |i: usize, role: &str| {
            format!(
                r#"{{"id": "{}", "ip": "127.0.0.1", "port": {}, "role": "{role}"}}"#,
                self.nodes[i].id,
                self.nodes[i].port()
            )
        };
        let json = format!(
            r#"{{"epoch": {}, "shards": [{{"id": "{:040x}", "slots": [[0, 8191]], "nodes": [{}, {}]}}, {{"id": "{:040x}", "slots": [[8192, 16383]], "nodes": [{}]}}]}}"#,
            self.epoch,
            1,
            n(primary, "primary"),
            n(replica, "replica"),
            2,
            n(2, "primary")
        );
        for &i in order {
            let reply =
                self.nodes[i].node.connect().cmd(&["CLUSTER", "SETTOPOLOGY", json.as_str()]).expect("push");
            assert_eq!(reply, b"+OK\r\n", "push to node {i}: {}", String::from_utf8_lossy(&reply));
        }
    }

    fn info(&self, i: usize) -> HashMap<String, String> {
        let text = self.nodes[i].run("INFO replication");
        text.lines()
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.to_string(), v.trim().to_string()))
            .collect()
    }

    fn linked(&self, i: usize) -> bool {
        self.info(i).get("master_link_status").map(String::as_str) == Some("up")
    }

    fn offset(&self, i: usize, field: &str) -> u64 {
        self.info(i).get(field).and_then(|v| v.parse().ok()).unwrap_or(0)
    }
}

/// A writer over every slot through a MOVED-following client; records acknowledged values
/// and any error that is not a redirection.
struct Writer {
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<HashMap<String, u64>>>,
    errors: Arc<Mutex<Vec<String>>>,
    handle: Option<std::thread::JoinHandle<Router>>,
}

impl Writer {
    fn start(seed: u16) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(Mutex::new(HashMap::new()));
        let errors = Arc::new(Mutex::new(Vec::new()));
        let (s, a, e) = (stop.clone(), acked.clone(), errors.clone());
        let handle = std::thread::spawn(move || {
            let mut router = Router::new(seed);
            let mut i = 0u64;
            while !s.load(Ordering::Relaxed) {
                let key = format!("w:{}", i % 3000);
                let val = i.to_string();
                match router.run(key.as_bytes(), &[b"SET", key.as_bytes(), val.as_bytes()]) {
                    Ok(_) => {
                        a.lock().expect("lock").insert(key, i);
                    }
                    Err(err) => e.lock().expect("lock").push(err),
                }
                i += 1;
            }
            router
        });
        Writer { stop, acked, errors, handle: Some(handle) }
    }

    fn acked(&self) -> usize {
        self.acked.lock().expect("lock").len()
    }

    fn wait_acks(&self, n: usize) {
        wait_for(WAIT, "the writer's acknowledgements", || (self.acked() >= n).then_some(()));
    }

    /// Stops and returns the client (its MOVED count) and the errors seen.
    fn finish(mut self) -> (Router, Vec<String>, HashMap<String, u64>) {
        self.stop.store(true, Ordering::Relaxed);
        let router = self.handle.take().expect("running").join().expect("writer thread");
        let errors = self.errors.lock().expect("lock").clone();
        let acked = self.acked.lock().expect("lock").clone();
        (router, errors, acked)
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::Blob(_, Some(b)) | Value::Line(_, b) => String::from_utf8_lossy(b).into_owned(),
        other => format!("{other:?}"),
    }
}

#[test]
fn replicas_follow_the_topology_and_a_planned_failover_loses_no_write() {
    let mut t = Trio::start();
    assert_eq!(t.info(1).get("role").map(String::as_str), Some("slave"));
    let w = Writer::start(t.nodes[2].port());
    w.wait_acks(1000);

    // The planned failover, as the control plane does it.
    let started = std::time::Instant::now();
    assert_eq!(t.nodes[0].run("CLIENT PAUSE 20000 WRITE"), "+OK\r\n");
    let target = t.offset(0, "master_repl_offset");
    wait_for(WAIT, "the replica to reach the paused primary's offset", || {
        (t.offset(1, "slave_repl_offset") >= target).then_some(())
    });
    assert_eq!(t.offset(0, "master_repl_offset"), target, "a paused primary's offset stands still");
    t.push(1, 0, &[1, 0, 2]);
    assert_eq!(t.nodes[0].run("CLIENT UNPAUSE"), "+OK\r\n");
    let handover = started.elapsed();
    let before = w.acked();
    w.wait_acks(before + 500);
    wait_for(WAIT, "the old primary to follow the new one", || t.linked(0).then_some(()));
    let (router, errors, acked) = w.finish();
    assert!(errors.is_empty(), "clients saw errors other than MOVED: {:?}", &errors[..errors.len().min(5)]);
    assert!(router.moved > 0, "the writer was redirected to the new primary");

    // Every acknowledged write is on the new primary (and, after WAIT, on its replica).
    let mut check = Router::new(t.nodes[2].port());
    let mut lost = 0;
    for (k, v) in &acked {
        let got = check.run(k.as_bytes(), &[b"GET", k.as_bytes()]).expect("GET");
        if text(&got).parse::<u64>().ok() < Some(*v) {
            lost += 1;
        }
    }
    assert_eq!(lost, 0, "{lost} of {} acknowledged keys lost in the failover", acked.len());
    let new_primary = t.nodes[1].node.connect();
    let stats = t.nodes[1].run("INFO stats");
    assert!(stats.contains("sync_full:0\r\n"), "no full sync after the hand-over: {stats}");
    assert!(stats.contains("sync_partial_ok:1\r\n"), "the old primary continued: {stats}");
    drop(new_primary);
    let mut c = t.nodes[1].node.connect();
    assert_eq!(c.run("WAIT 1 5000"), ":1\r\n");

    // Reads on the replica need READONLY; writes are always MOVED to the primary.
    let key = key_in_slot(100, "r");
    let mut r = t.nodes[0].node.connect();
    let moved = r.run(&format!("GET {key}"));
    assert_eq!(moved, format!("-MOVED 100 127.0.0.1:{}\r\n", t.nodes[1].port()));
    assert_eq!(c.run(&format!("SET {key} hello")), "+OK\r\n");
    assert_eq!(c.run("WAIT 1 5000"), ":1\r\n");
    assert_eq!(r.run("READONLY"), "+OK\r\n");
    assert_eq!(r.run(&format!("GET {key}")), "$5\r\nhello\r\n");
    assert!(r.run(&format!("SET {key} x")).starts_with("-MOVED 100 "));

    // CLUSTER SHARDS on the primary: the replica's acknowledged offset, CLUSTER REPLICAS.
    // (A replica's ACK to WAIT's GETACK excludes the GETACK itself; its next ACK covers it.)
    let own = wait_for(WAIT, "the replica's ACK to reach the primary's offset", || {
        let info = t.info(1);
        let own = info.get("master_repl_offset")?.clone();
        info.get("slave0")?.contains(&format!("offset={own},")).then_some(own)
    });
    let shards = c.read_value_of(&["CLUSTER", "SHARDS"]);
    let dump = format!("{shards:?}");
    let offsets = dump.matches(&format!("Line(58, {:?})", own.as_bytes())).count();
    assert_eq!(offsets, 2, "primary and replica at offset {own} in CLUSTER SHARDS: {dump}");
    let replicas = c.run(&format!("CLUSTER REPLICAS {}", t.nodes[1].id));
    assert!(replicas.starts_with("*1\r\n") && replicas.contains(&t.nodes[0].id), "{replicas}");
    let none = c.run(&format!("CLUSTER REPLICAS {}", t.nodes[0].id));
    assert_eq!(none, "-ERR The specified node is not a master\r\n");
    println!(
        "planned failover under a writer: hand-over {handover:?}, {} keys acknowledged, 0 lost, {} MOVED followed",
        acked.len(),
        router.moved
    );
}

#[test]
fn a_restarted_primary_is_fenced_until_a_push_then_resyncs_as_a_replica() {
    let mut t = Trio::start();
    let mut c = t.nodes[0].node.connect();
    let keys: Vec<String> = (0..200).map(|i| key_in_slot(i * 40, "k")).collect();
    for k in &keys {
        assert_eq!(c.run(&format!("SET {k} v")), "+OK\r\n");
    }
    assert_eq!(c.run("WAIT 1 5000"), ":1\r\n");
    drop(c);

    // kill -9 and restart on the same port and directory: the data is gone.
    let port = t.nodes[0].port();
    let dir = t.nodes[0].dir.clone();
    t.nodes[0].node.signal("KILL");
    let _ = t.nodes[0].node.wait_exit(WAIT);
    t.nodes[0] = ClusterNode::start(&dir, Some(port), &[]);
    assert_eq!(t.info(0).get("shoal_fenced").map(String::as_str), Some("1"));
    let mut c = t.nodes[0].node.connect();
    assert_eq!(c.run(&format!("GET {}", keys[0])), "-CLUSTERDOWN The cluster is down\r\n");
    assert_eq!(c.run(&format!("SET {} lost", keys[0])), "-CLUSTERDOWN The cluster is down\r\n");

    // The control plane promotes the replica; the fenced node becomes its replica.
    t.push(1, 0, &[1, 0, 2]);
    wait_for(WAIT, "the restarted node to sync as a replica", || t.linked(0).then_some(()));
    assert_eq!(t.info(0).get("shoal_fenced").map(String::as_str), Some("0"));
    assert_eq!(c.run("READONLY"), "+OK\r\n");
    for k in &keys {
        assert_eq!(c.run(&format!("GET {k}")), "$1\r\nv\r\n", "{k} on the resynced replica");
    }
}

#[test]
fn cluster_failover_is_checked_and_recorded_for_the_control_plane() {
    let mut t = Trio::start();
    let on_primary = t.nodes[0].run("CLUSTER FAILOVER");
    assert_eq!(on_primary, "-ERR You should send CLUSTER FAILOVER to a replica\r\n");
    assert_eq!(t.nodes[1].run("CLUSTER FAILOVER BOGUS"), "-ERR syntax error\r\n");
    assert_eq!(t.nodes[1].run("CLUSTER FAILOVER FORCE"), "+OK\r\n");
    assert_eq!(t.info(1).get("shoal_failover_requested").map(String::as_str), Some("force"));
    assert_eq!(t.nodes[1].run("CLUSTER FAILOVER"), "+OK\r\n");
    assert_eq!(t.info(1).get("shoal_failover_requested").map(String::as_str), Some("default"));
    // The control plane's push carries it out and clears the request.
    t.push(1, 0, &[1, 0, 2]);
    assert!(!t.info(1).contains_key("shoal_failover_requested"));
    assert_eq!(t.info(1).get("role").map(String::as_str), Some("master"));
    // REPLICAOF stays the control plane's business in cluster mode.
    assert_eq!(t.nodes[1].run("REPLICAOF NO ONE"), "-ERR REPLICAOF not allowed in cluster mode.\r\n");
}

/// A shard: its slot ranges, its primary's index, its replicas' indexes.
type ShardSpec<'a> = (&'a [(u16, u16)], usize, &'a [usize]);

/// Pushes `shards` over `nodes`, to every node.
fn push_shards(nodes: &[ClusterNode], epoch: u64, shards: &[ShardSpec<'_>]) {
    let n = |i: usize, role: &str| {
        format!(
            r#"{{"id": "{}", "ip": "127.0.0.1", "port": {}, "role": "{role}"}}"#,
            nodes[i].id,
            nodes[i].port()
        )
    };
    let shards: Vec<String> = shards
        .iter()
        .enumerate()
        .map(|(s, (slots, p, rs))| {
            let slots: Vec<String> = slots.iter().map(|(a, b)| format!("[{a}, {b}]")).collect();
            let mut members = vec![n(*p, "primary")];
            members.extend(rs.iter().map(|&r| n(r, "replica")));
            format!(
                r#"{{"id": "{:040x}", "slots": [{}], "nodes": [{}]}}"#,
                s + 1,
                slots.join(", "),
                members.join(", ")
            )
        })
        .collect();
    let json = format!(r#"{{"epoch": {epoch}, "shards": [{}]}}"#, shards.join(", "));
    for node in nodes {
        let reply = node.node.connect().cmd(&["CLUSTER", "SETTOPOLOGY", json.as_str()]).expect("push");
        assert_eq!(reply, b"+OK\r\n", "{}", String::from_utf8_lossy(&reply));
    }
}

fn dbsize(node: &ClusterNode) -> i64 {
    node.run("DBSIZE").trim_start_matches(':').trim().parse().expect("DBSIZE")
}

#[test]
fn a_slot_migration_reaches_the_replicas_of_both_shards() {
    let dirs: Vec<TempDir> = (0..4).map(|_| TempDir::new("replicas-mig")).collect();
    let nodes: Vec<ClusterNode> = dirs.iter().map(|d| ClusterNode::start(&d.0, None, &[])).collect();
    push_shards(&nodes, 1, &[(&[(0, 8191)], 0, &[1]), (&[(8192, 16383)], 2, &[3])]);
    let linked = |i: usize| nodes[i].run("INFO replication").contains("master_link_status:up");
    wait_for(WAIT, "both replicas to sync", || (linked(1) && linked(3)).then_some(()));
    let mut router = Router::new(nodes[0].port());
    let keys: Vec<String> = (0..2000u16).map(|i| key_in_slot(i * 8, "m")).collect();
    for k in &keys {
        router.run(k.as_bytes(), &[b"SET", k.as_bytes(), k.as_bytes()]).expect("SET");
    }
    // Slots 0-4095 move from shard A to shard B with the atomic migration.
    let r = nodes[0].run(&format!("CLUSTER MIGRATESLOTS SLOTSRANGE 0 4095 NODE {}", nodes[2].id));
    assert_eq!(r, "+OK\r\n");
    let moved = keys.iter().filter(|k| shoal_e2e::cluster::key_slot(k.as_bytes()) <= 4095).count() as i64;
    let in_a = keys.iter().filter(|k| shoal_e2e::cluster::key_slot(k.as_bytes()) <= 8191).count() as i64;
    let total = keys.len() as i64;
    // The source frees the moved keys a bounded step per loop.
    wait_for(WAIT, "the migration to end and the source to free the keys", || {
        (dbsize(&nodes[0]) == in_a - moved && dbsize(&nodes[2]) == total - in_a + moved).then_some(())
    });
    push_shards(&nodes, 2, &[(&[(4096, 8191)], 0, &[1]), (&[(0, 4095), (8192, 16383)], 2, &[3])]);
    for p in [0, 2] {
        assert_eq!(nodes[p].run("WAIT 1 5000"), ":1\r\n");
    }
    assert_eq!(dbsize(&nodes[1]), dbsize(&nodes[0]), "the source's replica dropped the moved keys");
    assert_eq!(dbsize(&nodes[3]), dbsize(&nodes[2]), "the target's replica got the imported keys");
    for (replica, lo, hi) in [(1usize, 4096u16, 8191u16), (3, 0, 4095)] {
        let mut c = nodes[replica].node.connect();
        assert_eq!(c.run("READONLY"), "+OK\r\n");
        for k in keys.iter().filter(|k| (lo..=hi).contains(&shoal_e2e::cluster::key_slot(k.as_bytes()))) {
            assert_eq!(
                c.run(&format!("GET {k}")),
                format!("${}\r\n{k}\r\n", k.len()),
                "{k} on node {replica}"
            );
        }
    }
}

#[test]
fn redis_py_reads_from_replicas() {
    let t = Trio::start();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/python/replica_reads.py");
    for proto in ["2", "3"] {
        let out = shoal_e2e::run_with_timeout(
            std::process::Command::new("python3").arg(script).arg(t.nodes[2].port().to_string()).arg(proto),
            b"",
            Duration::from_secs(120),
        );
        assert!(
            out.status.success(),
            "redis-py read_from_replicas (RESP{proto}):\n{}\n{}",
            out.stdout,
            out.stderr
        );
        println!("{}", out.stdout.trim());
    }
}
