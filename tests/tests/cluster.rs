//! A 3-shard cluster of real `shoal-node` processes with a pushed topology, driven by real
//! cluster clients: the `redis` crate's cluster-async client, redis-py's RedisCluster,
//! `redis-cli -c`, `redis-cli --cluster check` and `redis-benchmark --cluster`; plus raw
//! checks of redirection and a restart that must come back serving without a push.

use std::process::Command;
use std::time::Duration;

use shoal_e2e::cluster::{key_in_slot, Cluster, ClusterNode};
use shoal_e2e::run_with_timeout;

const TOOL_TIMEOUT: Duration = Duration::from_secs(90);

#[test]
fn topology_is_identical_everywhere_and_redirects_are_exact() {
    let c = Cluster::start(3);
    let slots: Vec<Vec<u8>> =
        (0..3).map(|i| c.node(i).node.connect().cmd(&["CLUSTER", "SLOTS"]).expect("slots")).collect();
    assert_eq!(slots[0], slots[1]);
    assert_eq!(slots[1], slots[2]);
    let shards: Vec<Vec<u8>> =
        (0..3).map(|i| c.node(i).node.connect().cmd(&["CLUSTER", "SHARDS"]).expect("shards")).collect();
    assert_eq!(shards[0], shards[2]);
    // `foo` is slot 12182, owned by node 2.
    let owner = c.owner(12182);
    assert_eq!(owner, 2);
    let mut n0 = c.node(0).node.connect();
    assert_eq!(n0.run("SET foo bar"), format!("-MOVED 12182 127.0.0.1:{}\r\n", c.ports[2]));
    let mut n2 = c.node(2).node.connect();
    assert_eq!(n2.run("SET foo bar"), "+OK\r\n");
    assert_eq!(n2.run("MSET foo 1 bar 2"), "-CROSSSLOT Keys in request don't hash to the same slot\r\n");
    assert_eq!(n2.run("MSET {foo}a 1 {foo}b 2"), "+OK\r\n");
    assert_eq!(n2.run("MGET {foo}a {foo}b"), "*2\r\n$1\r\n1\r\n$1\r\n2\r\n");
    assert_eq!(n2.run("SELECT 1"), "-ERR SELECT is not allowed in cluster mode\r\n");
    let nodes = n2.run("CLUSTER NODES");
    assert_eq!(nodes.matches("myself").count(), 1);
    assert!(nodes.contains(&format!("{} 127.0.0.1:{}", c.ids[2], c.ports[2])));
    assert!(n2.run("INFO cluster").contains("cluster_enabled:1"));
    assert!(n2.run("CLUSTER INFO").contains("cluster_state:ok"));
    // Invalid pushes are refused with a reason and change nothing.
    let stale = c.topology(&c.assignment, 0);
    let r = n2.cmd(&["CLUSTER", "SETTOPOLOGY", stale.as_str()]).expect("push");
    assert_eq!(r, b"-ERR Stale topology epoch 0: this node already has epoch 1\r\n");
    let bad = c.topology(&vec![(0, 100, 0), (100, 16383, 1)], 9);
    let r = String::from_utf8_lossy(&n2.cmd(&["CLUSTER", "SETTOPOLOGY", bad.as_str()]).expect("push"))
        .into_owned();
    assert!(r.starts_with("-ERR Slot 100 is assigned to both shard"), "{r}");
    assert_eq!(n2.run("GET foo"), "$3\r\nbar\r\n");
}

#[test]
fn redis_crate_cluster_async_client() {
    let c = Cluster::start(3);
    let urls: Vec<String> = c.ports.iter().map(|p| format!("redis://127.0.0.1:{p}/")).collect();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let client = redis::cluster::ClusterClientBuilder::new(urls)
            .connection_timeout(Duration::from_secs(10))
            .response_timeout(Duration::from_secs(10))
            .build()
            .expect("client");
        let mut con = client.get_async_connection().await.expect("connect");
        for i in 0..300 {
            let () =
                redis::cmd("SET").arg(format!("rs:{i}")).arg(i).query_async(&mut con).await.expect("set");
        }
        for i in 0..300 {
            let v: i64 = redis::cmd("GET").arg(format!("rs:{i}")).query_async(&mut con).await.expect("get");
            assert_eq!(v, i);
        }
        let () = redis::cmd("MSET")
            .arg("{t}a")
            .arg(1)
            .arg("{t}b")
            .arg(2)
            .query_async(&mut con)
            .await
            .expect("mset");
        let v: Vec<i64> =
            redis::cmd("MGET").arg("{t}a").arg("{t}b").query_async(&mut con).await.expect("mget");
        assert_eq!(v, vec![1, 2]);
        // The crate splits a cross-slot MSET per slot itself (the server's CROSSSLOT is checked
        // with raw requests above).
        let () =
            redis::cmd("MSET").arg("a").arg(1).arg("b").arg(2).query_async(&mut con).await.expect("mset");
        let v: Vec<i64> = redis::cmd("MGET").arg("a").arg("b").query_async(&mut con).await.expect("mget");
        assert_eq!(v, vec![1, 2]);
    });
}

#[test]
fn redis_py_cluster_client() {
    let c = Cluster::start(3);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/python/cluster_client.py");
    for proto in ["3", "2"] {
        let out = run_with_timeout(
            Command::new("python3").arg(script).arg(c.ports[1].to_string()).arg(proto),
            b"",
            TOOL_TIMEOUT,
        );
        assert!(
            out.status.success(),
            "redis-py (install it with `pip install redis`) failed:\n{}\n{}",
            out.stdout,
            out.stderr
        );
        assert!(out.stdout.contains("redis-py cluster ok"), "{}", out.stdout);
    }
}

fn cli(args: &[&str], stdin: &str) -> shoal_e2e::Output {
    run_with_timeout(Command::new("redis-cli").args(args), stdin.as_bytes(), TOOL_TIMEOUT)
}

#[test]
fn redis_cli_follows_redirects_and_cluster_check_passes() {
    let c = Cluster::start(3);
    let p0 = c.ports[0].to_string();
    let out = cli(&["-c", "-p", &p0, "SET", "foo", "from-cli"], "");
    assert_eq!(out.stdout.trim(), "OK", "{out:?}");
    let out = cli(&["-c", "-p", &c.ports[1].to_string(), "GET", "foo"], "");
    assert_eq!(out.stdout.trim(), "from-cli", "{out:?}");
    let out = cli(&["--cluster", "check", &format!("127.0.0.1:{p0}")], "");
    assert!(out.status.success(), "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("[OK] All nodes agree about slots configuration."), "{}", out.stdout);
    assert!(out.stdout.contains("[OK] All 16384 slots covered."), "{}", out.stdout);
}

#[test]
fn redis_benchmark_cluster_mode() {
    let c = Cluster::start(3);
    let out = run_with_timeout(
        Command::new("redis-benchmark").args([
            "--cluster",
            "-p",
            &c.ports[0].to_string(),
            "-n",
            "3000",
            "-c",
            "10",
            "-t",
            "set,get",
            "-q",
        ]),
        b"",
        TOOL_TIMEOUT,
    );
    assert!(out.status.success(), "{}\n{}", out.stdout, out.stderr);
    let text = format!("{}\n{}", out.stdout, out.stderr);
    assert!(text.contains("SET:") && text.contains("GET:"), "{text}");
    assert!(!text.to_lowercase().contains("error"), "{text}");
    // The keys were spread over the shards by slot.
    for i in 0..3 {
        let r = c.node(i).run("DBSIZE");
        assert_ne!(r, ":0\r\n", "node {i} got no keys");
    }
}

#[test]
fn restart_keeps_id_and_topology() {
    let mut c = Cluster::start(3);
    let before = c.node(1).node.connect().cmd(&["CLUSTER", "SLOTS"]).expect("slots");
    let id = c.ids[0].clone();
    let port = c.ports[0];
    let dir = c.node(0).dir.clone();
    let mut old = c.nodes[0].take().expect("node 0");
    old.node.signal("TERM");
    assert!(old.node.wait_exit(Duration::from_secs(10)).is_some(), "node 0 did not stop");
    drop(old);
    let back = ClusterNode::start(&dir, Some(port), &[]);
    assert_eq!(back.id, id, "the node id must survive a restart");
    let mut con = back.node.connect();
    assert_eq!(con.cmd(&["CLUSTER", "SLOTS"]).expect("slots"), before);
    assert!(con.run("CLUSTER INFO").contains("cluster_state:ok"));
    let mine = key_in_slot(0, "x");
    assert_eq!(con.run(&format!("SET {mine} 1")), "+OK\r\n");
    let theirs = key_in_slot(16383, "x");
    assert_eq!(con.run(&format!("GET {theirs}")), format!("-MOVED 16383 127.0.0.1:{}\r\n", c.ports[2]));
    c.nodes[0] = Some(back);
}
