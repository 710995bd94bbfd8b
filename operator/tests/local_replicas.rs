//! Local mode with replicas: real `shoal-node` processes, one replica per shard, and a writer
//! that records every acknowledged write.
//! - `planned_failover_of_every_primary_loses_no_write`: each primary in turn hands over to its
//!   replica (writes paused, exact catch-up, push): 0 acknowledged writes lost.
//! - `killed_primary_fails_over_under_load`: `kill -9` of a primary under a writer that confirms
//!   each write with `WAIT 1`: the restarted node comes back fenced, the replica is promoted;
//!   the time until writes resume is reported, writes `WAIT` confirmed are never lost, other
//!   loss is counted and reported.
//! - `rolling_restart_with_replicas_loses_no_write`: a configuration change rolls replica
//!   first, then a planned failover, then the old primary: 0 acknowledged writes lost.
//! - `control_plane_killed_mid_failover`: the control loop dies after pushing the promotion to
//!   the new primary only; a new one settles it: every slot owned, one primary per shard.
//!
//! Waits are bounded loops over control-loop ticks; nothing sleeps to synchronise.

mod support;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use shoal_e2e::cluster::key_slot;
use shoal_operator::controlplane::failover::{FailoverError, Stage};
use shoal_operator::controlplane::model::{NodeAddr, Role};
use shoal_operator::local::{LocalCluster, LocalConfig};
use support::{cluster_get, config, lost_keys, pct, ports, ready, tick_until, topology, ResilientWriter};

fn replicated(tag: &str, shards: u32) -> LocalConfig {
    LocalConfig { replicas: 1, ..config(tag, shards) }
}

async fn node_says(port: u16, args: &[&str]) -> String {
    let addr = NodeAddr { ip: "127.0.0.1".into(), hostname: None, port };
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
async fn planned_failover_of_every_primary_loses_no_write() {
    let cfg = replicated("pfo", 2);
    let dir = cfg.dir.clone();
    let mut c = LocalCluster::start(cfg).await.expect("start");
    tick_until(&mut c, Duration::from_secs(60), "2 shards with in-sync replicas", |c| ready(c, 2)).await;
    let seeds = ports(&c);
    let writer = ResilientWriter::start(seeds.clone(), "p", 2000);
    tick_until(&mut c, Duration::from_secs(30), "2000 writes", |_| writer.acked() >= 2000).await;

    let mut pauses = Vec::new();
    for ordinal in 0..2 {
        let shard = c.sup.shard_id(ordinal);
        let before = topology(&c).shard(&shard).and_then(|s| s.primary()).expect("primary").id.clone();
        let rec = c.failover(ordinal).await.expect("planned failover");
        assert_eq!(rec.old_primary, before);
        pauses.push(rec.recovered_in);
        let so_far = writer.acked();
        tick_until(&mut c, Duration::from_secs(30), "converged on the new primary, writes flowing", |c| {
            ready(c, 2)
                && writer.acked() > so_far + 200
                && topology(c)
                    .shard(&shard)
                    .and_then(|s| s.primary())
                    .is_some_and(|p| p.id == rec.new_primary)
        })
        .await;
    }
    let rep = writer.finish().await;
    assert!(rep.unexpected.is_empty(), "{:?}", rep.unexpected);
    let lost = lost_keys(seeds[0], &rep).await;
    let mut waits = rep.waits.clone();
    eprintln!(
        "planned failover x2: writes paused {:?}; {} writes acked, {} MOVED, {} retries; write wait p50 {:?} p99 {:?} \
         max {:?}; {} of {} keys lost",
        pauses,
        rep.acked,
        rep.moved,
        rep.down,
        pct(&mut waits, 0.5),
        pct(&mut waits, 0.99),
        rep.max_write_wait,
        lost.len(),
        rep.last.len()
    );
    assert!(lost.is_empty(), "acknowledged writes lost: {lost:?}");
    assert_eq!(c.failovers().total, 2);
    c.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_primary_fails_over_under_load() {
    let cfg = replicated("kill", 2);
    let dir = cfg.dir.clone();
    let mut c = LocalCluster::start(cfg).await.expect("start");
    tick_until(&mut c, Duration::from_secs(60), "2 shards with in-sync replicas", |c| ready(c, 2)).await;
    let seeds = ports(&c);
    let writer = ResilientWriter::start_with(seeds.clone(), "k", 1000, Some(200));
    tick_until(&mut c, Duration::from_secs(30), "1000 writes", |_| writer.acked() >= 1000).await;

    let shard = c.sup.shard_id(1);
    let t = topology(&c);
    let s1 = t.shard(&shard).expect("shard 1").clone();
    let old = s1.primary().expect("primary").clone();
    let victim = c.sup.nodes().find(|p| old.at(&p.addr)).expect("the primary's process");
    let pid = victim.pid().expect("pid") as libc::pid_t;
    let victim_slots: HashSet<u16> = s1.slots.iter().flat_map(|r| r.slots()).collect();
    let killed_at = Instant::now();
    // SAFETY: kill(2) has no memory-safety preconditions; the pid is our own unreaped child.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    tick_until(&mut c, Duration::from_secs(20), "a replica promoted", |c| {
        c.failovers().total >= 1 && c.last.as_ref().is_some_and(|r| r.unserved_slots == 0)
    })
    .await;
    let promoted_in = killed_at.elapsed();
    let so_far = writer.acked();
    tick_until(&mut c, Duration::from_secs(60), "the old primary back as an in-sync replica", |c| {
        ready(c, 2) && writer.acked() > so_far + 500
    })
    .await;
    let t = topology(&c);
    let s1 = t.shard(&shard).expect("shard 1");
    assert_ne!(s1.primary().expect("primary").id, old.id, "a replica was promoted");
    assert!(
        s1.nodes.iter().any(|n| n.id == old.id && n.role == Role::Replica),
        "the old primary is a replica now"
    );
    let rep = writer.finish().await;
    assert!(rep.unexpected.is_empty(), "{:?}", rep.unexpected);

    let (mut durable_lost, mut other_lost) = (Vec::new(), 0usize);
    for (key, (val, _)) in &rep.last {
        let got: Option<usize> = cluster_get(seeds[0], key).await.and_then(|v| v.parse().ok());
        if let Some(d) = rep.durable.get(key) {
            if got.is_none_or(|g| g < *d) {
                durable_lost.push(format!("{key}: durable {d}, found {got:?}"));
            }
        }
        if got != Some(*val) {
            other_lost += 1;
        }
    }
    let on_victim = rep.last.keys().filter(|k| victim_slots.contains(&key_slot(k.as_bytes()))).count();
    let rec = c.failovers().recent.last().cloned().expect("failover record");
    eprintln!(
        "kill -9 of a primary: replica promoted {:.2}s after the kill ({}; control plane's time to recover {:.2}s); \
         longest write wait {:.2}s; {} writes acked, {} WAIT-confirmed keys, {} keys on the killed shard; \
         {} WAIT-confirmed writes lost, {other_lost} keys whose last acknowledged write was lost",
        promoted_in.as_secs_f64(),
        rec.cause,
        rec.recovered_in.as_secs_f64(),
        rep.max_write_wait.as_secs_f64(),
        rep.acked,
        rep.durable.len(),
        on_victim,
        durable_lost.len()
    );
    assert!(durable_lost.is_empty(), "WAIT-confirmed writes lost: {durable_lost:?}");
    assert!(promoted_in < Duration::from_secs(10), "promotion took {promoted_in:?}");
    c.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_restart_with_replicas_loses_no_write() {
    let cfg = replicated("rollr", 3);
    let dir = cfg.dir.clone();
    let mut c = LocalCluster::start(cfg.clone()).await.expect("start");
    tick_until(&mut c, Duration::from_secs(60), "3 shards with in-sync replicas", |c| ready(c, 3)).await;
    let seeds = ports(&c);
    let writer = ResilientWriter::start(seeds.clone(), "r", 2000);
    tick_until(&mut c, Duration::from_secs(30), "2000 writes", |_| writer.acked() >= 2000).await;

    let mut changed = cfg.clone();
    changed.node_args = vec!["--hz".into(), "25".into()];
    assert!(c.reconfigure(&changed));
    assert_eq!(c.rollout_status().outdated, 6);
    let began = Instant::now();
    tick_until(&mut c, Duration::from_secs(240), "every node rolled", |c| {
        c.settled() && c.rollout_status().updated == 6 && ready(c, 3)
    })
    .await;
    let took = began.elapsed();
    let restarts: Vec<u32> = c.sup.nodes().map(|p| p.restarts).collect();
    assert_eq!(restarts, vec![1; 6], "each node restarted once");
    for p in c.sup.nodes() {
        let hz = node_says(p.addr.port, &["CONFIG", "GET", "hz"]).await;
        assert!(hz.contains("25"), "node {}/{} runs the new configuration: {hz}", p.ordinal, p.member);
    }
    let rep = writer.finish().await;
    assert!(rep.unexpected.is_empty(), "{:?}", rep.unexpected);
    let lost = lost_keys(seeds[0], &rep).await;
    let mut waits = rep.waits.clone();
    eprintln!(
        "rolling restart of 3 shards x (1 primary + 1 replica): {:.1}s; {} failovers; {} writes acked, {} MOVED, \
         {} reconnects, {} retries; write wait p50 {:?} p99 {:?} max {:?}; {} of {} keys lost",
        took.as_secs_f64(),
        c.failovers().total,
        rep.acked,
        rep.moved,
        rep.reconnects,
        rep.down,
        pct(&mut waits, 0.5),
        pct(&mut waits, 0.99),
        rep.max_write_wait,
        lost.len(),
        rep.last.len()
    );
    assert!(lost.is_empty(), "acknowledged writes lost: {lost:?}");
    assert_eq!(c.failovers().total, 3, "one planned failover per shard");
    c.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_plane_killed_mid_failover() {
    let cfg = replicated("cpkill", 2);
    let dir = cfg.dir.clone();
    let mut c = LocalCluster::start(cfg).await.expect("start");
    tick_until(&mut c, Duration::from_secs(60), "2 shards with in-sync replicas", |c| ready(c, 2)).await;
    let seeds = ports(&c);
    let writer = ResilientWriter::start(seeds.clone(), "c", 1000);
    tick_until(&mut c, Duration::from_secs(30), "1000 writes", |_| writer.acked() >= 1000).await;

    // The promotion reaches the new primary; the old one is still paused and primary at the
    // old epoch when the control plane "dies".
    c.driver_mut().planned_options_mut().abandon_at = Some(Stage::PushOldPrimary);
    let shard = c.sup.shard_id(0);
    let err = c.failover(0).await.expect_err("abandoned");
    assert!(matches!(err, FailoverError::Abandoned(Stage::PushOldPrimary)), "{err}");
    let abandoned_at = Instant::now();
    c.restart_control_plane();
    tick_until(&mut c, Duration::from_secs(30), "converged again", |c| ready(c, 2)).await;
    let settled_in = abandoned_at.elapsed();
    let so_far = writer.acked();
    tick_until(&mut c, Duration::from_secs(30), "writes flowing again", |_| writer.acked() > so_far + 300)
        .await;

    // Every node holds the same epoch; every slot is owned; each shard has exactly one node
    // that says role:master, and it is the topology's primary.
    let t = topology(&c);
    assert_eq!(t.covered_slots(), 16384);
    let mut epochs = HashSet::new();
    let mut masters: HashMap<String, Vec<u16>> = HashMap::new();
    for p in c.sup.nodes() {
        let info = node_says(p.addr.port, &["CLUSTER", "INFO"]).await;
        epochs.insert(info.lines().find(|l| l.starts_with("cluster_current_epoch")).map(str::to_string));
        let repl = node_says(p.addr.port, &["INFO", "replication"]).await;
        if repl.contains("role:master") {
            let s = t.shard_of_node(
                &t.shards.iter().flat_map(|s| &s.nodes).find(|n| n.at(&p.addr)).expect("in topology").id,
            );
            masters.entry(s.expect("shard").id.0.clone()).or_default().push(p.addr.port);
        }
    }
    assert_eq!(epochs.len(), 1, "every node on the same epoch: {epochs:?}");
    for s in &t.shards {
        let ports = masters.get(&s.id.0).cloned().unwrap_or_default();
        assert_eq!(ports.len(), 1, "shard {} has one primary: {ports:?}", s.id);
        assert!(s.primary().is_some_and(|pr| pr.port == ports[0]));
    }
    let promoted = t.shard(&shard).and_then(|s| s.primary()).expect("primary").clone();
    let rep = writer.finish().await;
    assert!(rep.unexpected.is_empty(), "{:?}", rep.unexpected);
    let lost = lost_keys(seeds[0], &rep).await;
    eprintln!(
        "control plane killed mid-failover: a new one settled it in {:.2}s on {} as shard 0's primary; {} writes \
         acked, longest write wait {:.2}s; {} of {} keys lost",
        settled_in.as_secs_f64(),
        promoted.port,
        rep.acked,
        rep.max_write_wait.as_secs_f64(),
        lost.len(),
        rep.last.len()
    );
    assert!(lost.is_empty(), "acknowledged writes lost: {lost:?}");
    // The demoted primary's paused writes are released by the new control plane's push, not
    // held until the pause (10 s) lapses.
    assert!(rep.max_write_wait < Duration::from_secs(5), "writes held {:?}", rep.max_write_wait);
    c.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}

/// `CLUSTER FAILOVER` sent to a replica (what an operator types, or Valkey tooling sends) is
/// carried out by the control plane as a planned hand-over: clients see only MOVED and no
/// acknowledged write is lost. `CLUSTER FAILOVER FORCE` promotes at once without waiting for
/// the replica to catch up (as in Valkey): its loss is reported, not asserted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_failover_sent_to_a_replica_is_carried_out() {
    let cfg = replicated("cfo", 2);
    let dir = cfg.dir.clone();
    let mut c = LocalCluster::start(cfg).await.expect("start");
    tick_until(&mut c, Duration::from_secs(60), "2 shards with in-sync replicas", |c| ready(c, 2)).await;
    let seeds = ports(&c);
    let mut report = Vec::new();
    for (ordinal, form) in [(0u32, vec!["CLUSTER", "FAILOVER"]), (1, vec!["CLUSTER", "FAILOVER", "FORCE"])] {
        let writer = ResilientWriter::start(seeds.clone(), if ordinal == 0 { "f" } else { "g" }, 1000);
        tick_until(&mut c, Duration::from_secs(30), "1000 writes", |_| writer.acked() >= 1000).await;
        let shard = c.sup.shard_id(ordinal);
        let replica = topology(&c)
            .shard(&shard)
            .and_then(|s| s.nodes.iter().find(|n| n.role == Role::Replica).cloned())
            .expect("a replica");
        assert_eq!(node_says(replica.port, &form).await, "OK", "{form:?}");
        let so_far = writer.acked();
        tick_until(&mut c, Duration::from_secs(30), "the replica promoted, writes flowing", |c| {
            ready(c, 2)
                && writer.acked() > so_far + 200
                && topology(c).shard(&shard).and_then(|s| s.primary()).is_some_and(|p| p.id == replica.id)
        })
        .await;
        let rep = writer.finish().await;
        assert!(rep.unexpected.is_empty(), "{:?}", rep.unexpected);
        let lost = lost_keys(seeds[0], &rep).await;
        report.push(format!(
            "{}: {} acked, {} MOVED, {} of {} keys lost",
            form.join(" "),
            rep.acked,
            rep.moved,
            lost.len(),
            rep.last.len()
        ));
        if ordinal == 0 {
            assert!(lost.is_empty(), "a planned CLUSTER FAILOVER lost acknowledged writes: {lost:?}");
        }
    }
    eprintln!("{}", report.join("; "));
    assert_eq!(c.failovers().total, 2);
    c.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}
