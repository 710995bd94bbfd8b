//! The Prometheus endpoint of a real node (`--metrics-port`): counters move with the commands
//! clients run, gauges agree with what the node says over RESP, bad requests are refused
//! without harming the node, a cluster node reports its slots and keys per slot, and the
//! cluster bus's PUBLISH forwarding is counted as INFO stats counts it.
//!
//! The metrics port comes from the OS (bind port 0, note the port, release it); on the rare
//! collision with another process the node fails to start and the test tries another port.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use shoal_e2e::cluster::{even_split, key_in_slot, wait_for, Cluster, ClusterNode, TempDir};
use shoal_e2e::resp::Value;
use shoal_e2e::ShoalNode;

/// Every HTTP exchange is bounded by this.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

use shoal_e2e::process::free_port;

/// Starts a node with its metrics endpoint on a free port; returns it and the port.
fn start_with_metrics(start: impl Fn(&[&str]) -> ShoalNode) -> (ShoalNode, u16) {
    for _ in 0..5 {
        let port = free_port();
        let p = port.to_string();
        let started = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            start(&["--metrics-port", p.as_str(), "--metrics-bind", "127.0.0.1"])
        }));
        if let Ok(node) = started {
            let line = format!("Metrics on http://127.0.0.1:{port}/metrics");
            let logged =
                node.log.wait_for(shoal_e2e::process::START_TIMEOUT, |l| l.contains(&line).then_some(()));
            assert!(logged.is_some(), "no {line:?} in the log:\n{}", node.log.lines().join("\n"));
            return (node, port);
        }
    }
    panic!("could not start a node with a free metrics port in 5 attempts");
}

/// A raw HTTP exchange: sends `request`, returns (status, head, body).
fn http(port: u16, request: &[u8]) -> (u16, String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to metrics port");
    s.set_read_timeout(Some(HTTP_TIMEOUT)).expect("timeout");
    s.set_write_timeout(Some(HTTP_TIMEOUT)).expect("timeout");
    s.write_all(request).expect("send request");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read response");
    let text = String::from_utf8(raw).expect("utf-8 response");
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no head end: {text:?}"));
    let status =
        head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("status: {head}"));
    (status, head.to_string(), body.to_string())
}

fn get(port: u16, path: &str) -> (u16, String, String) {
    http(port, format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: test\r\n\r\n").as_bytes())
}

/// Scrapes `/metrics` and returns every series (`name{labels}`) with its value.
fn scrape(port: u16) -> HashMap<String, f64> {
    let (status, head, body) = get(port, "/metrics");
    assert_eq!(status, 200, "{head}\n{body}");
    assert!(head.contains("Content-Type: text/plain; version=0.0.4"), "{head}");
    let mut series = HashMap::new();
    for line in body.lines().filter(|l| !l.starts_with('#')) {
        let (key, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("sample line {line:?}"));
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("value in {line:?}"));
        assert!(series.insert(key.to_string(), value).is_none(), "duplicate series {key}");
    }
    series
}

fn value(series: &HashMap<String, f64>, key: &str) -> f64 {
    *series.get(key).unwrap_or_else(|| panic!("no series {key}"))
}

fn int_reply(v: Value) -> i64 {
    match v {
        Value::Line(b':', n) => {
            String::from_utf8_lossy(&n).parse().unwrap_or_else(|_| panic!("integer {n:?}"))
        }
        other => panic!("expected an integer: {other:?}"),
    }
}

#[test]
fn counters_and_gauges_follow_commands() {
    let (node, port) = start_with_metrics(ShoalNode::start);
    let mut c = node.connect();
    let before = scrape(port);
    let sets_before = before.get(r#"shoal_commands_total{cmd="set"}"#).copied().unwrap_or(0.0);
    for i in 0..10 {
        assert_eq!(c.run(&format!("SET key:{i} v{i}")), "+OK\r\n");
    }
    assert_eq!(c.run("EXPIRE key:0 1000"), ":1\r\n");
    assert_eq!(c.run("GET key:1"), "$2\r\nv1\r\n");
    assert_eq!(c.run("GET nope"), "$-1\r\n");
    assert!(c.run("GET").starts_with("-ERR wrong number of arguments"));
    let dbsize = int_reply(c.read_value_of(&["DBSIZE"]));
    let after = scrape(port);
    assert_eq!(value(&after, r#"shoal_commands_total{cmd="set"}"#) - sets_before, 10.0);
    assert_eq!(value(&after, r#"shoal_commands_total{cmd="get"}"#), 2.0);
    assert_eq!(value(&after, r#"shoal_commands_rejected_calls_total{cmd="get"}"#), 1.0);
    assert!(value(&after, r#"shoal_commands_duration_seconds_total{cmd="set"}"#) > 0.0);
    assert_eq!(value(&after, r#"shoal_db_keys{db="0"}"#), dbsize as f64);
    assert_eq!(dbsize, 10);
    assert_eq!(value(&after, r#"shoal_db_keys_expiring{db="0"}"#), 1.0);
    assert_eq!(value(&after, "shoal_keyspace_hits_total"), 1.0);
    assert_eq!(value(&after, "shoal_keyspace_misses_total"), 1.0);
    assert!(
        value(&after, "shoal_commands_processed_total")
            >= value(&before, "shoal_commands_processed_total") + 13.0
    );
    assert!(value(&after, "shoal_net_input_bytes_total") > value(&before, "shoal_net_input_bytes_total"));
    assert!(value(&after, "shoal_connected_clients") >= 1.0);
    assert!(value(&after, "shoal_memory_used_bytes") > 0.0);
    assert!(value(&after, "shoal_memory_rss_bytes") > 0.0);
    assert_eq!(value(&after, "shoal_cluster_enabled"), 0.0);
    assert!(!after.contains_key("shoal_cluster_slots_owned"));
    let ratio = value(&after, "shoal_executor_busy_ratio");
    assert!((0.0..=1.0).contains(&ratio), "{ratio}");

    // CONFIG RESETSTAT resets the per-command figures, as it does INFO's.
    assert_eq!(c.run("CONFIG RESETSTAT"), "+OK\r\n");
    assert!(!scrape(port).contains_key(r#"shoal_commands_total{cmd="set"}"#));
}

#[test]
fn head_healthz_and_io_thread_gauges() {
    let (node, port) = start_with_metrics(|m| ShoalNode::with_io_threads(3, m));
    let (status, head, body) = http(port, b"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status, 200, "{head}");
    assert!(body.is_empty(), "HEAD returned a body: {body:?}");
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no Content-Length: {head}"));
    assert!(length > 1000, "{head}");
    let (status, _, body) = get(port, "/healthz");
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    let (status, _, body) = http(port, b"HEAD /healthz HTTP/1.0\r\n\r\n");
    assert_eq!((status, body.as_str()), (200, ""));
    let m = scrape(port);
    assert_eq!(value(&m, "shoal_io_threads_limit"), 3.0);
    assert_eq!(value(&m, "shoal_io_threads_active"), 2.0, "events-per-io-thread 0 activates every thread");
    // The limit follows CONFIG SET, as the operator changes it.
    assert_eq!(node.connect().run("CONFIG SET io-threads 2"), "+OK\r\n");
    // Applied by the executor's next cron tick.
    shoal_e2e::cluster::wait_for(HTTP_TIMEOUT, "io-threads limit 2 in metrics", || {
        (value(&scrape(port), "shoal_io_threads_limit") == 2.0).then_some(())
    });
}

#[test]
fn bad_requests_are_refused_and_harmless() {
    let (mut node, port) = start_with_metrics(ShoalNode::start);
    assert_eq!(get(port, "/nope").0, 404);
    assert_eq!(get(port, "/").0, 404);
    assert_eq!(http(port, b"garbage\r\n\r\n").0, 400);
    assert_eq!(http(port, b"GET /metrics HTTP/9.9\r\n\r\n").0, 400);
    assert_eq!(http(port, b"\xff\xff /metrics HTTP/1.1\r\n\r\n").0, 400);
    let (status, head, _) = http(port, b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(status, 405);
    assert!(head.contains("Allow: GET, HEAD"), "{head}");
    let mut huge = b"GET /metrics HTTP/1.1\r\n".to_vec();
    huge.extend(std::iter::repeat_n(b'x', 64 * 1024));
    assert_eq!(http(port, &huge).0, 431);

    // A client that sends half a request and stays silent holds the endpoint for at most
    // the request deadline (2 s); the next scrape is then served.
    let mut silent = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    silent.write_all(b"GET /met").expect("send");
    let started = Instant::now();
    let m = scrape(port);
    assert!(started.elapsed() < HTTP_TIMEOUT, "scrape took {:?}", started.elapsed());
    assert!(m.contains_key("shoal_uptime_seconds"));
    drop(silent);

    // A client that goes away mid-request harms nothing either.
    let mut gone = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    gone.write_all(b"GET /metrics HTTP/1.1\r\nHost").expect("send");
    drop(gone);
    assert_eq!(get(port, "/healthz").0, 200);
    assert_eq!(node.connect().run("PING"), "+PONG\r\n");
    node.assert_alive();
}

#[test]
fn cluster_node_reports_slots_and_keys_per_slot() {
    let dir = TempDir::new("metrics");
    let (node, port) = start_with_metrics(|m| ClusterNode::start(&dir.0, None, m).node);
    let mut c = node.connect();
    let myid = match c.read_value_of(&["CLUSTER", "MYID"]) {
        Value::Blob(_, Some(id)) => String::from_utf8_lossy(&id).into_owned(),
        other => panic!("CLUSTER MYID: {other:?}"),
    };
    let before = scrape(port);
    assert_eq!(value(&before, "shoal_cluster_enabled"), 1.0);
    assert_eq!(value(&before, "shoal_cluster_slots_owned"), 0.0);
    assert_eq!(value(&before, "shoal_cluster_epoch"), 0.0);

    // This node serves slots 0-8191; a node that does not exist serves the rest.
    let other = "b".repeat(40);
    let topology = format!(
        r#"{{"epoch": 3, "shards": [
            {{"id": "{:040x}", "slots": [[0, 8191]], "nodes": [{{"id": "{myid}", "ip": "127.0.0.1", "port": {}, "role": "primary"}}]}},
            {{"id": "{:040x}", "slots": [[8192, 16383]], "nodes": [{{"id": "{other}", "ip": "127.0.0.1", "port": 1, "role": "primary"}}]}}]}}"#,
        1, node.port, 2
    );
    assert_eq!(c.cmd(&["CLUSTER", "SETTOPOLOGY", topology.as_str()]).expect("push"), b"+OK\r\n");
    for i in 0..5 {
        let key = key_in_slot(0, &format!("k{i}"));
        assert_eq!(c.run(&format!("SET {key} v")), "+OK\r\n");
    }
    let key = key_in_slot(100, "x");
    assert_eq!(c.run(&format!("SET {key} v")), "+OK\r\n");
    let moved_key = key_in_slot(9000, "y");
    assert!(c.run(&format!("SET {moved_key} v")).starts_with("-MOVED 9000 "));

    let m = scrape(port);
    assert_eq!(value(&m, "shoal_cluster_epoch"), 3.0);
    assert_eq!(value(&m, "shoal_cluster_slots_owned"), 8192.0);
    assert_eq!(value(&m, "shoal_cluster_slots_assigned"), 16384.0);
    assert_eq!(value(&m, "shoal_cluster_state_ok"), 1.0);
    assert_eq!(value(&m, "shoal_cluster_slot_keys_count"), 8192.0);
    assert_eq!(value(&m, "shoal_cluster_slot_keys_sum"), 6.0);
    assert_eq!(value(&m, r#"shoal_cluster_slot_keys{quantile="1"}"#), 5.0);
    assert_eq!(value(&m, r#"shoal_cluster_slot_keys{quantile="0.5"}"#), 0.0);
    assert_eq!(value(&m, r#"shoal_cluster_slot_keys{quantile="0"}"#), 0.0);
    assert_eq!(value(&m, r#"shoal_cluster_migrations_active{direction="export"}"#), 0.0);
    assert_eq!(value(&m, r#"shoal_db_keys{db="0"}"#), 6.0);
    assert_eq!(value(&m, r#"shoal_commands_total{cmd="set"}"#), 6.0);
    assert_eq!(
        value(&m, r#"shoal_commands_rejected_calls_total{cmd="set"}"#),
        1.0,
        "MOVED is a rejected call"
    );
}

/// `INFO stats` field `name` of a node, as a number.
fn info_stat(node: &ClusterNode, name: &str) -> f64 {
    let info = node.run("INFO stats");
    let v = info.split(&format!("{name}:")).nth(1).and_then(|r| r.split("\r\n").next());
    v.and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("no {name} in {info}"))
}

#[test]
fn cluster_bus_forwarding_is_counted() {
    let dirs: Vec<TempDir> = (0..3).map(|_| TempDir::new("metrics-bus")).collect();
    let (first, port) = start_with_metrics(|m| ClusterNode::start(&dirs[0].0, None, m).node);
    let id = match first.connect().read_value_of(&["CLUSTER", "MYID"]) {
        Value::Blob(_, Some(id)) => String::from_utf8_lossy(&id).into_owned(),
        other => panic!("CLUSTER MYID: {other:?}"),
    };
    let mut nodes = vec![ClusterNode { node: first, id, dir: dirs[0].0.clone() }];
    nodes.extend(dirs[1..].iter().map(|d| ClusterNode::start(&d.0, None, &[])));
    let mut cluster = Cluster {
        ids: nodes.iter().map(|n| n.id.clone()).collect(),
        ports: nodes.iter().map(|n| n.port()).collect(),
        nodes: nodes.into_iter().map(Some).collect(),
        epoch: 0,
        assignment: even_split(3),
        dirs,
    };
    cluster.push(even_split(3));
    let before = scrape(port);
    assert_eq!(value(&before, "shoal_cluster_publish_forwarded_total"), 0.0);
    assert_eq!(value(&before, "shoal_cluster_publish_dropped_total"), 0.0);

    // Three messages, each written to both peers.
    let mut publisher = cluster.node(0).node.connect();
    for i in 0..3 {
        assert_eq!(publisher.run(&format!("PUBLISH news m{i}")), ":0\r\n");
    }
    let m = wait_for(HTTP_TIMEOUT, "6 forwarded messages in the metrics", || {
        let m = scrape(port);
        (value(&m, "shoal_cluster_publish_forwarded_total") == 6.0).then_some(m)
    });
    assert_eq!(value(&m, "shoal_cluster_publish_dropped_total"), 0.0);
    assert_eq!(info_stat(cluster.node(0), "cluster_publish_forwarded"), 6.0);

    // A dead peer: what cannot reach it is dropped and counted, the same figure as INFO's.
    cluster.nodes[2] = None;
    for i in 0..10 {
        assert_eq!(publisher.run(&format!("PUBLISH news d{i}")), ":0\r\n");
    }
    let dropped = wait_for(HTTP_TIMEOUT, "drops in the metrics", || {
        let d = value(&scrape(port), "shoal_cluster_publish_dropped_total");
        (d > 0.0).then_some(d)
    });
    assert!(dropped <= 10.0, "{dropped}");
    let m = scrape(port);
    assert_eq!(
        value(&m, "shoal_cluster_publish_dropped_total"),
        info_stat(cluster.node(0), "cluster_publish_dropped")
    );
    assert!(value(&m, "shoal_cluster_publish_forwarded_total") >= 16.0 - dropped, "node 1 got every message");
}
