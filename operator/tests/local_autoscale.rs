//! Local mode resizing itself, with real `shoal-node` processes on ephemeral ports:
//! - `memory_target_grows_then_shrinks`: one shard with a memory target takes keys until it
//!   crosses the target; the autoscaler grows the cluster, slots migrate while a writer keeps
//!   writing and sees nothing but `-MOVED`; every key is there afterwards. Deleting the bulk
//!   brings memory under the scale-in threshold and, after the cooldown, the cluster shrinks
//!   back, again losing nothing;
//! - `killed_node_comes_back_with_its_identity_and_slots`: `kill -9` on a shard's node; the
//!   supervisor restarts it, it keeps its node id and slots and serves them;
//! - `control_plane_restart_mid_migration_completes`: the control loop forgets everything while
//!   a migration runs; the next control loop rebuilds its view from the nodes and completes the
//!   resize with every key present.

mod support;

use std::time::Duration;

use shoal_operator::controlplane::autoscaler::AutoscalePolicy;
use shoal_operator::controlplane::client::NodeClient;
use shoal_operator::controlplane::model::MigrationState;
use shoal_operator::controlplane::planner::PlanOptions;
use shoal_operator::local::LocalCluster;
use support::{config, owning, tick_until, RawWriter};

async fn cluster_conn(port: u16) -> redis::cluster_async::ClusterConnection {
    redis::cluster::ClusterClient::new(vec![format!("redis://127.0.0.1:{port}/")])
        .expect("client")
        .get_async_connection()
        .await
        .expect("cluster connection")
}

async fn fill(conn: &mut redis::cluster_async::ClusterConnection, prefix: &str, n: usize, size: usize) {
    let value = "x".repeat(size);
    for i in 0..n {
        let _: () = redis::cmd("SET")
            .arg(format!("{prefix}{i}"))
            .arg(format!("{i}:{value}"))
            .query_async(conn)
            .await
            .expect("SET");
    }
}

async fn check(conn: &mut redis::cluster_async::ClusterConnection, prefix: &str, n: usize, size: usize) {
    let value = "x".repeat(size);
    for i in 0..n {
        let v: Option<String> =
            redis::cmd("GET").arg(format!("{prefix}{i}")).query_async(conn).await.expect("GET");
        assert_eq!(v.as_deref(), Some(format!("{i}:{value}").as_str()), "key {prefix}{i}");
    }
}

fn memory_ratios(c: &LocalCluster) -> String {
    c.last
        .as_ref()
        .map(|r| {
            r.observed
                .nodes
                .iter()
                .filter_map(|n| n.metrics.as_ref()?.memory_ratio())
                .map(|m| format!("{:.0}%", m * 100.0))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_target_grows_then_shrinks() {
    let mut cfg = config("mem", 1);
    let dir = cfg.dir.clone();
    cfg.maxmemory = Some("64mb".into());
    cfg.migration = PlanOptions { max_slots_per_move: 2048 };
    cfg.autoscaling = AutoscalePolicy {
        enabled: true,
        min_shards: 1,
        max_shards: 3,
        cpu_target_percent: None,
        memory_target_percent: Some(25.0),
        scale_out_samples: 2,
        scale_in_samples: 3,
        scale_out_cooldown_secs: 0,
        scale_in_cooldown_secs: 2,
        ..AutoscalePolicy::default()
    };
    let mut c = LocalCluster::start(cfg).await.expect("start");
    let port0 = c.endpoint().expect("endpoint").port;
    tick_until(&mut c, Duration::from_secs(20), "1 shard formed", |c| c.converged() && owning(c) == 1).await;
    // A few ticks below target: the autoscaler holds.
    for _ in 0..5 {
        c.tick().await.expect("tick");
    }
    assert_eq!(owning(&c), 1, "grew without load: {}", memory_ratios(&c));

    // ~24 MB of values on a 64 MB node: about 40% against a 25% target.
    let mut conn = cluster_conn(port0).await;
    const BIG: usize = 12_000;
    const SIZE: usize = 2000;
    fill(&mut conn, "big", BIG, SIZE).await;

    let writer = RawWriter::start(port0, "w", 1000);
    tick_until(&mut c, Duration::from_secs(90), "scale-out from memory", |c| c.converged() && owning(c) >= 2)
        .await;
    let rep = writer.finish().await;
    assert!(
        rep.unexpected.is_empty(),
        "replies other than OK/MOVED: {:?}",
        &rep.unexpected[..rep.unexpected.len().min(5)]
    );
    assert!(rep.moved > 0, "the writer never followed a MOVED ({} writes)", rep.writes);
    let grown = owning(&c);
    check(&mut conn, "big", BIG, SIZE).await;
    for (k, v) in &rep.last {
        let got: Option<usize> = redis::cmd("GET").arg(k).query_async(&mut conn).await.expect("GET");
        assert_eq!(got, Some(*v), "writer key {k} after scale-out");
    }

    // Delete the bulk: memory falls below 75% of the target and the cluster shrinks back.
    for i in 0..BIG {
        let _: usize = redis::cmd("DEL").arg(format!("big{i}")).query_async(&mut conn).await.expect("DEL");
    }
    let writer = RawWriter::start(port0, "v", 1000);
    tick_until(&mut c, Duration::from_secs(90), "scale-in after the deletes", |c| {
        c.converged() && owning(c) == 1 && c.sup.node(1).is_none()
    })
    .await;
    let rep2 = writer.finish().await;
    assert!(
        rep2.unexpected.is_empty(),
        "replies other than OK/MOVED: {:?}",
        &rep2.unexpected[..rep2.unexpected.len().min(5)]
    );
    for (k, v) in rep.last.iter().chain(rep2.last.iter()) {
        let got: Option<usize> = redis::cmd("GET").arg(k).query_async(&mut conn).await.expect("GET");
        assert_eq!(got, Some(*v), "writer key {k} after scale-in from {grown} shards");
    }
    c.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_node_comes_back_with_its_identity_and_slots() {
    let cfg = config("kill", 2);
    let dir = cfg.dir.clone();
    let mut c = LocalCluster::start(cfg).await.expect("start");
    tick_until(&mut c, Duration::from_secs(20), "2 shards formed", |c| c.converged() && owning(c) == 2).await;
    let addr = c.sup.node(1).expect("node 1").addr.clone();
    let mut nc =
        NodeClient::connect(&addr, Duration::from_secs(5), &Default::default()).await.expect("connect");
    let id = nc.my_id().await.expect("id");
    let shard_of = |c: &LocalCluster| {
        let t = c.last.as_ref()?.observed.topology.as_ref()?;
        t.shard_of_node(&id).map(|s| s.slots.clone())
    };
    let slots = shard_of(&c).expect("node 1 owns slots");
    assert!(!slots.is_empty());
    drop(nc);

    let pid = c.sup.node(1).and_then(|p| p.pid()).expect("pid");
    // SAFETY: kill(2) has no memory-safety preconditions; the pid is our own unreaped child.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
    tick_until(&mut c, Duration::from_secs(30), "the restart", |c| {
        c.sup.node(1).is_some_and(|p| p.restarts == 1) && c.converged()
    })
    .await;
    let mut nc =
        NodeClient::connect(&addr, Duration::from_secs(5), &Default::default()).await.expect("reconnect");
    assert_eq!(nc.my_id().await.expect("id"), id, "the node kept its identity");
    assert_eq!(shard_of(&c), Some(slots.clone()), "the node kept its slots");

    // It serves them: a key of its first slot is written and read through a cluster client.
    let slot = slots[0].start;
    let key = (0..100_000)
        .map(|i| format!("key{i}"))
        .find(|k| shoal_e2e::cluster::key_slot(k.as_bytes()) == slot)
        .expect("a key in the slot");
    let mut conn = cluster_conn(addr.port).await;
    let _: () = redis::cmd("SET").arg(&key).arg("back").query_async(&mut conn).await.expect("SET");
    let v: Option<String> = redis::cmd("GET").arg(&key).query_async(&mut conn).await.expect("GET");
    assert_eq!(v.as_deref(), Some("back"));
    let mut direct = redis::Client::open(format!("redis://127.0.0.1:{}/", addr.port))
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("direct connection");
    let v: Option<String> =
        redis::cmd("GET").arg(&key).query_async(&mut direct).await.expect("GET on the owner");
    assert_eq!(v.as_deref(), Some("back"), "the restarted node answers for its slot itself");
    c.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_plane_restart_mid_migration_completes() {
    let mut cfg = config("cprestart", 1);
    let dir = cfg.dir.clone();
    // Small moves: the resize takes several migrations, so one is surely in flight.
    cfg.migration = PlanOptions { max_slots_per_move: 512 };
    let mut c = LocalCluster::start(cfg).await.expect("start");
    let port0 = c.endpoint().expect("endpoint").port;
    tick_until(&mut c, Duration::from_secs(20), "1 shard formed", |c| c.converged() && owning(c) == 1).await;
    let mut conn = cluster_conn(port0).await;
    const KEYS: usize = 20_000;
    fill(&mut conn, "k", KEYS, 200).await;

    c.set_target(2);
    // Tick until the source node itself reports a job that has not finished, then drop the
    // control plane's state on the spot.
    let src = c.sup.node(0).expect("node 0").addr.clone();
    let mut nc =
        NodeClient::connect(&src, Duration::from_secs(5), &Default::default()).await.expect("connect");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let caught = loop {
        c.tick().await.expect("tick");
        let jobs = nc.slot_migrations().await.expect("GETSLOTMIGRATIONS");
        if let Some(j) = jobs.iter().find(|j| !j.state.is_terminal()) {
            break j.clone();
        }
        assert!(owning(&c) < 2 || !c.converged(), "the resize finished before a job was seen in flight");
        assert!(std::time::Instant::now() < deadline, "no migration seen in flight: {}", c.status_line());
    };
    c.restart_control_plane();
    tick_until(&mut c, Duration::from_secs(90), "2 shards after the restart", |c| {
        c.converged() && owning(c) == 2
    })
    .await;
    let t = c.last.as_ref().and_then(|r| r.observed.topology.clone()).expect("topology");
    assert_eq!(t.covered_slots(), 16384, "every slot owned");
    let counts: Vec<usize> = t.shards.iter().map(|s| s.slot_count()).collect();
    assert!(counts.iter().all(|&n| n == 8192), "balanced: {counts:?}");
    check(&mut conn, "k", KEYS, 200).await;
    // The job caught in flight finished (or was replaced by a successful retry); none failed
    // for good and nothing is left running.
    let jobs = nc.slot_migrations().await.expect("GETSLOTMIGRATIONS");
    assert!(jobs.iter().all(|j| j.state.is_terminal()), "jobs still running: {jobs:?}");
    assert!(
        jobs.iter().any(|j| j.slots == caught.slots && j.state == MigrationState::Success),
        "the job caught in flight ({:?}) never succeeded: {jobs:?}",
        caught.slots
    );
    c.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}
