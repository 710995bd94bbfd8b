//! Local mode under failure, with real `shoal-node` processes and a writer that records every
//! acknowledged write:
//! - `wiped_node_is_replaced_under_a_writer`: a node loses its data directory and is killed
//!   (`kill -9`), as a recreated pod is. It comes back with a new id; within 10 s every slot is
//!   served again, no phantom shard is left, and only the killed shard's keys acknowledged
//!   before its restart (by the killed process) are gone (one copy per shard: counted and reported, not hidden).
//! - `rolling_restart_with_a_config_change_loses_no_write`: a configuration change rolls through
//!   every node (drain, restart, give back) under the writer: zero acknowledged writes lost,
//!   every node runs the new configuration, and the longest write wait is reported.
//!
//! Waits are bounded loops over control-loop ticks; nothing sleeps to synchronise.

mod support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use shoal_e2e::cluster::key_slot;
use shoal_operator::local::LocalCluster;
use support::{cluster_get, config, owning, tick_until, ResilientWriter};

fn ports(c: &LocalCluster) -> Vec<u16> {
    c.sup.nodes().map(|p| p.addr.port).collect()
}

async fn node_says(port: u16, args: &[&str]) -> String {
    let addr = shoal_operator::controlplane::model::NodeAddr { ip: "127.0.0.1".into(), hostname: None, port };
    let mut c = shoal_operator::controlplane::client::NodeClient::connect(
        &addr,
        Duration::from_secs(5),
        &Default::default(),
    )
    .await
    .expect("connect");
    c.command_text(args).await.expect("command")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wiped_node_is_replaced_under_a_writer() {
    let cfg = config("wipe", 3);
    let dir = cfg.dir.clone();
    let mut c = LocalCluster::start(cfg).await.expect("start");
    tick_until(&mut c, Duration::from_secs(30), "3 shards formed", |c| c.converged() && owning(c) == 3).await;
    let seeds = ports(&c);
    let writer = ResilientWriter::start(seeds.clone(), "w", 3000);
    // Let the writer cover the keyspace before the failure.
    tick_until(&mut c, Duration::from_secs(30), "3000 writes", |_| writer.acked() >= 3000).await;

    let victim = c.sup.node(1).expect("node 1");
    let (pid, vdir) = (victim.pid().expect("pid"), victim.dir.clone());
    let topo = c.last.as_ref().and_then(|r| r.observed.topology.clone()).expect("topology");
    let shard1 = topo.shard(&c.sup.shard_id(1)).expect("shard 1").clone();
    let old_id = shard1.primary().expect("primary").id.clone();
    let victim_slots: HashSet<u16> = shard1.slots.iter().flat_map(|r| r.slots()).collect();
    std::fs::remove_file(vdir.join("nodes.conf")).expect("remove nodes.conf");
    let killed_at = Instant::now();
    // SAFETY: kill(2) has no memory-safety preconditions; the pid is our own unreaped child.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };

    // Until the supervisor has restarted the node, an acknowledgement can only have come from
    // the killed process (its reply may still be in flight when `kill` returns): writes to its
    // slots acknowledged before this point were on the copy that died.
    tick_until(&mut c, Duration::from_secs(10), "node 1 restarted", |c| {
        c.sup.node(1).is_some_and(|p| p.restarts == 1)
    })
    .await;
    let restarted_by = Instant::now();
    tick_until(&mut c, Duration::from_secs(10), "every slot served by a new node 1", |c| {
        c.sup.node(1).is_some_and(|p| p.restarts == 1)
            && c.last.as_ref().is_some_and(|r| {
                r.unserved_slots == 0
                    && r.observed.topology.as_ref().is_some_and(|t| {
                        t.covered_slots() == 16384
                            && t.shard_of_node(&old_id).is_none()
                            && r.observed.nodes.iter().all(|n| n.reachable())
                    })
            })
    })
    .await;
    let recovered = killed_at.elapsed();
    let recovered_at = Instant::now();
    tick_until(&mut c, Duration::from_secs(20), "converged", |c| c.converged()).await;
    let t = c.last.as_ref().and_then(|r| r.observed.topology.clone()).expect("topology");
    assert_eq!(t.shards.len(), 3, "no phantom shard: {t:?}");
    let new_id = t.shard(&c.sup.shard_id(1)).and_then(|s| s.primary()).expect("primary").id.clone();
    assert_ne!(new_id, old_id, "the node came back with a new id");
    let info = node_says(c.sup.node(1).expect("node").addr.port, &["CLUSTER", "INFO"]).await;
    assert!(info.contains("cluster_state:ok"), "{info}");
    // Writes after the recovery reach the new node.
    let so_far = writer.acked();
    tick_until(&mut c, Duration::from_secs(30), "1000 more writes", |_| writer.acked() >= so_far + 1000)
        .await;
    let rep = writer.finish().await;
    assert!(rep.unexpected.is_empty(), "only MOVED, reconnects and CLUSTERDOWN: {:?}", rep.unexpected);

    let (mut lost_victim, mut checked) = (0usize, 0usize);
    for (key, (val, at)) in &rep.last {
        let got = cluster_get(seeds[0], key).await;
        let on_victim = victim_slots.contains(&key_slot(key.as_bytes()));
        if on_victim && *at < restarted_by {
            // Written to the only copy that was just destroyed.
            if got.as_deref() != Some(val.to_string().as_str()) {
                lost_victim += 1;
            }
            continue;
        }
        checked += 1;
        assert_eq!(got, Some(val.to_string()), "{key} acknowledged (on the killed shard: {on_victim})");
    }
    let after = rep.last.values().filter(|(_, at)| *at > recovered_at).count();
    assert!(after > 0, "writes acknowledged after the recovery");
    eprintln!(
        "wiped node: every slot served {:.2}s after kill -9; {} writes acked, {} MOVED, {} reconnects, \
         {} CLUSTERDOWN retries, longest write wait {:.2}s; {checked} keys intact, {lost_victim} keys of \
         the killed shard lost (acknowledged by its only copy before the restart)",
        recovered.as_secs_f64(),
        rep.acked,
        rep.moved,
        rep.reconnects,
        rep.down,
        rep.max_write_wait.as_secs_f64()
    );
    c.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_restart_with_a_config_change_loses_no_write() {
    let cfg = config("roll", 3);
    let dir = cfg.dir.clone();
    let mut c = LocalCluster::start(cfg.clone()).await.expect("start");
    tick_until(&mut c, Duration::from_secs(30), "3 shards formed", |c| c.converged() && owning(c) == 3).await;
    let seeds = ports(&c);
    let writer = ResilientWriter::start(seeds.clone(), "r", 2000);
    tick_until(&mut c, Duration::from_secs(30), "2000 writes", |_| writer.acked() >= 2000).await;

    let mut changed = cfg.clone();
    changed.node_args = vec!["--hz".into(), "25".into()];
    assert!(c.reconfigure(&changed));
    assert_eq!(c.rollout_status().outdated, 3);
    let began = Instant::now();
    let mut rolled = Vec::new();
    tick_until(&mut c, Duration::from_secs(180), "every node rolled", |c| {
        c.settled() && c.rollout_status().updated == 3 && owning(c) == 3
    })
    .await;
    let took = began.elapsed();
    for p in c.sup.nodes() {
        rolled.push(p.restarts);
    }
    assert_eq!(rolled, vec![1, 1, 1], "each node restarted once");
    for p in c.sup.nodes() {
        let hz = node_says(p.addr.port, &["CONFIG", "GET", "hz"]).await;
        assert!(hz.contains("25"), "node {} runs the new configuration: {hz}", p.ordinal);
    }
    let rep = writer.finish().await;
    assert!(rep.unexpected.is_empty(), "{:?}", rep.unexpected);
    let mut lost = 0;
    for (key, (val, _)) in &rep.last {
        if cluster_get(seeds[0], key).await != Some(val.to_string()) {
            lost += 1;
        }
    }
    eprintln!(
        "rolling restart of 3 shards: {:.1}s; {} writes acked, {} MOVED, {} reconnects, {} CLUSTERDOWN \
         retries; longest write wait {:.3}s; {lost} of {} keys lost",
        took.as_secs_f64(),
        rep.acked,
        rep.moved,
        rep.reconnects,
        rep.down,
        rep.max_write_wait.as_secs_f64(),
        rep.last.len()
    );
    assert_eq!(lost, 0, "no acknowledged write lost");
    c.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_shard_rollout_pauses_instead_of_losing_keys() {
    let cfg = config("roll1", 1);
    let dir = cfg.dir.clone();
    let mut c = LocalCluster::start(cfg.clone()).await.expect("start");
    tick_until(&mut c, Duration::from_secs(30), "1 shard formed", |c| c.converged() && owning(c) == 1).await;
    let mut changed = cfg.clone();
    changed.node_args = vec!["--hz".into(), "25".into()];
    assert!(c.reconfigure(&changed));
    tick_until(&mut c, Duration::from_secs(10), "a paused rollout", |c| c.rollout_status().paused.is_some())
        .await;
    let s = c.rollout_status();
    assert!(s.paused.as_deref().is_some_and(|p| p.contains("single shard")), "{s:?}");
    assert_eq!((s.updated, s.outdated), (0, 1));
    assert_eq!(c.sup.node(0).expect("node").restarts, 0, "the only copy was not restarted");
    // Scaling out lets it proceed.
    c.set_target(2);
    tick_until(&mut c, Duration::from_secs(120), "rolled on 2 shards", |c| {
        c.settled() && c.rollout_status().updated == 2
    })
    .await;
    c.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}

/// A node paused with SIGSTOP (a hung process: the supervisor sees it alive) is marked `fail`
/// once the failure-detection window passes; the other nodes then report Valkey's
/// `cluster_state:fail` with its slots counted in `cluster_slots_fail`, and `master,fail` in
/// CLUSTER NODES. Resumed, it answers again and the mark is cleared everywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_node_is_marked_fail_on_every_node_then_cleared() {
    let mut cfg = config("pause", 2);
    cfg.fail_after_ms = 1000;
    let dir = cfg.dir.clone();
    let mut c = LocalCluster::start(cfg).await.expect("start");
    tick_until(&mut c, Duration::from_secs(30), "2 shards formed", |c| c.converged() && owning(c) == 2).await;
    let victim = c.sup.node(1).expect("node 1");
    let (pid, victim_port) = (victim.pid().expect("pid") as libc::pid_t, victim.addr.port);
    let other = c.sup.node(0).expect("node 0").addr.port;
    let topo = c.last.as_ref().and_then(|r| r.observed.topology.clone()).expect("topology");
    let shard1 = topo.shard(&c.sup.shard_id(1)).expect("shard 1").clone();
    let victim_id = shard1.primary().expect("primary").id.clone();
    let victim_slots: usize = shard1.slots.iter().map(|r| r.slots().count()).sum();
    assert!(victim_slots > 0);

    // SAFETY: kill(2) has no memory-safety preconditions; the pid is our own child.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    tick_until(&mut c, Duration::from_secs(15), "the paused node marked fail", |c| {
        c.last.as_ref().is_some_and(|r| {
            r.observed
                .topology
                .as_ref()
                .is_some_and(|t| t.shards.iter().flat_map(|s| &s.nodes).any(|n| n.id == victim_id && n.fail))
        })
    })
    .await;
    // The mark reaches the node that still answers with the next push; wait for it, bounded.
    let deadline = Instant::now() + Duration::from_secs(10);
    let info = loop {
        c.tick().await.expect("tick");
        let info = node_says(other, &["CLUSTER", "INFO"]).await;
        if info.contains("cluster_state:fail") || Instant::now() > deadline {
            break info;
        }
        // The control loop's own pace, as in `tick_until`.
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGCONT) };
    assert!(info.contains("cluster_state:fail"), "{info}");
    assert!(info.contains(&format!("cluster_slots_fail:{victim_slots}\r\n")), "{info}");
    assert!(info.contains(&format!("cluster_slots_ok:{}\r\n", 16384 - victim_slots)), "{info}");
    let nodes = node_says(other, &["CLUSTER", "NODES"]).await;
    assert!(
        nodes.lines().any(|l| l.starts_with(victim_id.0.as_str()) && l.contains(" master,fail ")),
        "{nodes}"
    );

    let deadline = Instant::now() + Duration::from_secs(15);
    let (a, b) = loop {
        c.tick().await.expect("tick");
        let a = node_says(other, &["CLUSTER", "INFO"]).await;
        let b = node_says(victim_port, &["CLUSTER", "INFO"]).await;
        if (a.contains("cluster_state:ok") && b.contains("cluster_state:ok")) || Instant::now() > deadline {
            break (a, b);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(a.contains("cluster_state:ok") && a.contains("cluster_slots_fail:0\r\n"), "{a}");
    assert!(b.contains("cluster_state:ok"), "{b}");
    assert_eq!(c.sup.node(1).expect("node").restarts, 0, "paused, not restarted");
    c.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}
