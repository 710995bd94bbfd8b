//! Local mode end to end, with real `shoal-node` processes on ephemeral ports:
//! - `supervises_real_nodes`: nodes start, report their ports, are restarted on the same port
//!   after `kill -9`, and stop cleanly;
//! - `resizes_and_tunes_from_metrics`: a 2-shard cluster takes keys, grows to 3 shards (slots
//!   migrate, no key lost), shrinks back to 2, and has a node's `io-threads` raised under load
//!   and lowered after, through the node's `CLUSTER MYID/SETTOPOLOGY/MIGRATESLOTS/...`.
//!
//! Waits are bounded loops over control-loop ticks; nothing sleeps to synchronise.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use shoal_operator::controlplane::autoscaler::{AutoscalePolicy, IoThreadsPolicy};
use shoal_operator::controlplane::client::NodeClient;
use shoal_operator::local::LocalCluster;
use support::{config, owning, tick_until};

async fn ping(port: u16) -> bool {
    let Ok(c) = redis::Client::open(format!("redis://127.0.0.1:{port}/")) else { return false };
    let Ok(mut conn) = c.get_multiplexed_async_connection().await else { return false };
    redis::cmd("PING").query_async::<String>(&mut conn).await.is_ok_and(|r| r == "PONG")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supervises_real_nodes() {
    let cfg = config("sup", 2);
    let dir = cfg.dir.clone();
    let mut c = LocalCluster::start(cfg).await.expect("start");
    let ports: Vec<u16> = c.sup.nodes().map(|p| p.addr.port).collect();
    assert_eq!(ports.len(), 2);
    for &p in &ports {
        assert!(ping(p).await, "node on {p} answers");
    }
    // kill -9 node 1: the next ticks restart it on the same port and directory.
    let pid = c.sup.node(1).and_then(|p| p.pid()).expect("pid");
    // SAFETY: kill(2) has no memory-safety preconditions; the pid is our own unreaped child.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
    tick_until(&mut c, Duration::from_secs(20), "the restart", |c| {
        c.sup.node(1).is_some_and(|p| p.restarts == 1)
    })
    .await;
    let p = c.sup.node(1).expect("node 1");
    assert_eq!(p.addr.port, ports[1], "restarted on its port");
    assert_ne!(p.pid(), Some(pid));
    assert!(ping(ports[1]).await);
    c.shutdown().await;
    assert_eq!(c.sup.nodes().count(), 0);
    for &p in &ports {
        assert!(!ping(p).await, "node on {p} stopped");
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// True when the node speaks the control-plane commands.
async fn cluster_supported(port: u16) -> bool {
    let addr = shoal_operator::controlplane::model::NodeAddr { ip: "127.0.0.1".into(), hostname: None, port };
    match NodeClient::connect(&addr, Duration::from_secs(5), &Default::default()).await {
        Ok(mut c) => c.my_id().await.is_ok(),
        Err(_) => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resizes_and_tunes_from_metrics() {
    let mut cfg = config("resize", 2);
    let dir = cfg.dir.clone();
    cfg.io_threads = Some(1);
    cfg.autoscaling = AutoscalePolicy {
        enabled: true,
        cpu_target_percent: None,
        memory_target_percent: None,
        io_threads: Some(IoThreadsPolicy {
            min: 1,
            max: 2,
            raise_busy_percent: 1.0,
            raise_samples: 2,
            lower_samples: 4,
        }),
        ..AutoscalePolicy::default()
    };
    let mut c = LocalCluster::start(cfg).await.expect("start");
    let port0 = c.endpoint().expect("endpoint").port;
    assert!(cluster_supported(port0).await, "shoal-node answers CLUSTER MYID");
    tick_until(&mut c, Duration::from_secs(20), "2 shards formed", |c| c.converged() && owning(c) == 2).await;

    // Keys through a real cluster client.
    let client =
        redis::cluster::ClusterClient::new(vec![format!("redis://127.0.0.1:{port0}/")]).expect("client");
    let mut conn = client.get_async_connection().await.expect("cluster connection");
    const KEYS: usize = 2000;
    for i in 0..KEYS {
        let _: () = redis::cmd("SET").arg(format!("k{i}")).arg(i).query_async(&mut conn).await.expect("SET");
    }

    // Grow to 3 shards while a writer keeps writing: it sees only redirections it can follow.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let mut conn = client.get_async_connection().await.expect("writer connection");
        tokio::spawn(async move {
            let mut n = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let r: redis::RedisResult<()> =
                    redis::cmd("SET").arg(format!("w{}", n % 500)).arg(n).query_async(&mut conn).await;
                r.expect("write during migration");
                n += 1;
            }
            n
        })
    };
    c.set_target(3);
    tick_until(&mut c, Duration::from_secs(60), "3 shards", |c| c.converged() && owning(c) == 3).await;
    stop.store(true, Ordering::Relaxed);
    let writes = writer.await.expect("writer");
    assert!(writes > 0);
    for i in 0..KEYS {
        let v: Option<usize> =
            redis::cmd("GET").arg(format!("k{i}")).query_async(&mut conn).await.expect("GET");
        assert_eq!(v, Some(i), "key k{i} after scale-out");
    }

    // Back to 2: shard 2 drains, leaves the topology, and its node stops.
    c.set_target(2);
    tick_until(&mut c, Duration::from_secs(60), "2 shards", |c| {
        c.converged() && owning(c) == 2 && c.sup.node(2).is_none()
    })
    .await;
    for i in 0..KEYS {
        let v: Option<usize> =
            redis::cmd("GET").arg(format!("k{i}")).query_async(&mut conn).await.expect("GET");
        assert_eq!(v, Some(i), "key k{i} after scale-in");
    }

    // Load on node 0 raises its io-threads; idle lowers it again.
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let stop = stop.clone();
        let c0 = redis::Client::open(format!("redis://127.0.0.1:{port0}/")).expect("client");
        let mut conn = c0.get_multiplexed_async_connection().await.expect("conn");
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let mut p = redis::pipe();
                for _ in 0..64 {
                    p.cmd("PING");
                }
                let _: redis::RedisResult<Vec<String>> = p.query_async(&mut conn).await;
            }
        })
    };
    let io_of = |c: &LocalCluster| {
        c.last.as_ref().and_then(|r| {
            r.observed.nodes.iter().find(|n| n.addr.port == port0)?.metrics.as_ref().map(|m| m.io_threads)
        })
    };
    tick_until(&mut c, Duration::from_secs(30), "io-threads raised", |c| io_of(c) == Some(2)).await;
    stop.store(true, Ordering::Relaxed);
    load.await.expect("load task");
    tick_until(&mut c, Duration::from_secs(30), "io-threads lowered", |c| io_of(c) == Some(1)).await;

    c.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}
