//! The client matrix: every cluster client Shoal's users run — ioredis and node-redis
//! (tests/node/matrix.js), redis-py and valkey-glide (tests/python/matrix_*.py), and the
//! `redis` crate (client_matrix/redis_rs.rs) — runs the same scenarios against its own 3-shard
//! cluster, in RESP2 and RESP3 where the client has it: topology discovery, 1000 keys over
//! many slots, a pipeline, a hashtag MULTI/EXEC, SCAN over every primary, BLPOP woken from
//! another connection, PUBLISH/SUBSCRIBE across nodes, sharded pub/sub, and a live migration of
//! a slot while the client writes (every acknowledged write read back afterwards), followed by
//! a message on a sharded channel of the moved slot.
//!
//! What a client does not do on Valkey 9.1 either is asserted as such (`Expect`), so this
//! table stays the truth of docs/cluster-clients.md: a client upgrade that changes a row fails
//! here until the doc says so.

#[path = "client_matrix/driver.rs"]
mod driver;
#[path = "client_matrix/redis_rs.rs"]
mod redis_rs;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use driver::{assert_results, node_script, python, python_script, Expect, Run};

fn node_client(client: &str, resp: u8, expect: &[(&str, Expect)]) {
    let mut run = Run::new();
    let args = [node_script("matrix.js"), client.into(), run.seed(), resp.to_string(), run.tag.clone()];
    let results = run.run_script("node", &args);
    assert_results(&format!("{client} RESP{resp}"), &results, expect);
    run.assert_slot_moved();
}

fn python_client(script: &str, label: &str, resp: u8, expect: &[(&str, Expect)]) {
    let mut run = Run::new();
    let args = [python_script(script), run.seed(), resp.to_string(), run.tag.clone()];
    let results = run.run_script(&python(), &args);
    assert_results(&format!("{label} RESP{resp}"), &results, expect);
    run.assert_slot_moved();
}

#[test]
fn ioredis_resp2() {
    node_client("ioredis", 2, &[]);
}

#[test]
fn ioredis_resp3() {
    node_client("ioredis", 3, &[]);
}

#[test]
fn node_redis_resp2() {
    node_client("node-redis", 2, &[]);
}

#[test]
fn node_redis_resp3() {
    node_client("node-redis", 3, &[]);
}

/// redis-py 5.2's ClusterPubSub drops the server's `sunsubscribe` without resubscribing, on
/// Valkey 9.1 as here: the subscriber of the moved slot hears nothing more.
#[test]
fn redis_py_resp2() {
    let no_resubscribe = ("sharded_pubsub_slot_move", Expect::ClientFailure("timed out"));
    python_client("matrix_redispy.py", "redis-py", 2, &[no_resubscribe]);
}

/// redis-py 5.2's RESP3 parser has no cluster error classes, so RedisCluster raises MOVED
/// as a plain ResponseError instead of following it, on Valkey 9.1 as here: after a slot
/// moves, commands on it fail until the client refreshes its map.
#[test]
fn redis_py_resp3() {
    let moved = [
        ("migration", Expect::ClientFailure("ResponseError: MOVED")),
        ("sharded_pubsub_slot_move", Expect::ClientFailure("ResponseError: MOVED")),
    ];
    python_client("matrix_redispy.py", "redis-py", 3, &moved);
}

#[test]
fn glide_resp3() {
    python_client("matrix_glide.py", "valkey-glide", 3, &[]);
}

#[test]
fn glide_resp2() {
    let skipped = ["pubsub", "sharded_pubsub", "sharded_pubsub_slot_move"].map(|s| (s, Expect::Skipped));
    python_client("matrix_glide.py", "valkey-glide", 2, &skipped);
}

fn redis_rs(resp: u8) {
    let mut run = Run::new();
    let (tx, rx) = std::sync::mpsc::channel();
    let migrated = Arc::new(AtomicBool::new(false));
    let (seed, tag, done) = (run.cluster.node(0).port(), run.tag.clone(), migrated.clone());
    let scenarios = std::thread::spawn(move || redis_rs::run(seed, resp, tag, tx, done));
    // The scenarios ask once, mid-writes; a run that ends first drops the sender.
    if rx.recv_timeout(Duration::from_secs(240)).is_ok() {
        run.migrate();
        migrated.store(true, Ordering::Release);
    }
    let results = scenarios.join().expect("redis-rs scenarios");
    let skipped = ["pubsub", "sharded_pubsub", "sharded_pubsub_slot_move"].map(|s| (s, Expect::Skipped));
    assert_results(&format!("redis-rs RESP{resp}"), &results, &skipped);
    run.assert_slot_moved();
}

#[test]
fn redis_rs_resp2() {
    redis_rs(2);
}

#[test]
fn redis_rs_resp3() {
    redis_rs(3);
}
