//! Local mode with replicas under churn: real `shoal-node` processes, one replica per shard, a
//! cluster writer (follows `MOVED`, reconnects, retries `CLUSTERDOWN`) recording every
//! acknowledged write.
//! - `scale_3_5_3_with_replicas_loses_no_write`: 3 -> 5 -> 3 shards; every tick checks that a new
//!   shard has its replica attached and in sync before any slot moves to it; 0 writes lost.
//! - `repeated_primary_kills_lose_no_confirmed_write`: `kill -9` of a primary, 20 times,
//!   alternating shards; each time waits until writes to its slots resume and the restarted
//!   node is back as an in-sync replica. Reports p50/p99 of the time until writes resume and the
//!   replica lag at each kill; asserts that no write `WAIT 1` confirmed is lost, reports other
//!   loss as a number.
//!
//! Waits are bounded loops over control-loop ticks; nothing sleeps to synchronise.

mod support;

use std::cell::RefCell;
use std::collections::HashSet;
use std::time::{Duration, Instant};

use shoal_operator::local::{LocalCluster, LocalConfig};
use support::{cluster_get, config, lost_keys, pct, ports, ready, tick_until, topology, ResilientWriter};

fn replicated(tag: &str, shards: u32) -> LocalConfig {
    LocalConfig { replicas: 1, ..config(tag, shards) }
}

/// Shards of ordinal `>= from` that own slots, or are the target of a running migration, while
/// their replica is not in the topology with its link up: each is a violation.
fn early_slots(c: &LocalCluster, from: u32, to: u32) -> Vec<String> {
    let Some(rep) = &c.last else { return Vec::new() };
    let Some(t) = &rep.observed.topology else { return Vec::new() };
    let lags = rep.replica_lags();
    let mut out = Vec::new();
    for o in from..to {
        let Some(s) = t.shard(&c.sup.shard_id(o)) else { continue };
        let Some(p) = s.primary() else { continue };
        let taking = !s.slots.is_empty() || rep.running.iter().any(|j| j.target_node == p.id);
        let replica_ok = s.nodes.len() == 2 && lags.iter().any(|l| l.shard == s.id && l.link_up);
        if taking && !replica_ok {
            out.push(format!("shard {o} takes slots with nodes {:?}", s.nodes.len()));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_3_5_3_with_replicas_loses_no_write() {
    let cfg = replicated("scale", 3);
    let dir = cfg.dir.clone();
    let mut c = LocalCluster::start(cfg).await.expect("start");
    tick_until(&mut c, Duration::from_secs(60), "3 shards with in-sync replicas", |c| ready(c, 3)).await;
    let seeds = ports(&c);
    let writer = ResilientWriter::start(seeds.clone(), "s", 3000);
    tick_until(&mut c, Duration::from_secs(30), "1000 writes", |_| writer.acked() >= 1000).await;

    let violations = RefCell::new(Vec::new());
    let began = Instant::now();
    c.set_target(5);
    tick_until(&mut c, Duration::from_secs(180), "5 shards with in-sync replicas", |c| {
        violations.borrow_mut().extend(early_slots(c, 3, 5));
        ready(c, 5) && c.settled()
    })
    .await;
    let out_took = began.elapsed();
    assert_eq!(c.sup.nodes().count(), 10);
    let so_far = writer.acked();
    tick_until(&mut c, Duration::from_secs(30), "writes on 5 shards", |_| writer.acked() > so_far + 500)
        .await;

    let began = Instant::now();
    c.set_target(3);
    tick_until(&mut c, Duration::from_secs(180), "back to 3 shards, extra nodes stopped", |c| {
        ready(c, 3) && c.settled() && c.sup.nodes().count() == 6
    })
    .await;
    let in_took = began.elapsed();
    let so_far = writer.acked();
    tick_until(&mut c, Duration::from_secs(30), "writes on 3 shards", |_| writer.acked() > so_far + 500)
        .await;
    let t = topology(&c);
    assert_eq!((t.shards.len(), t.covered_slots()), (3, 16384));
    assert!(t.shards.iter().all(|s| s.nodes.len() == 2), "every shard keeps its replica");

    let rep = writer.finish().await;
    assert!(rep.unexpected.is_empty(), "{:?}", rep.unexpected);
    let lost = lost_keys(seeds[0], &rep).await;
    let mut waits = rep.waits.clone();
    eprintln!(
        "scale 3 -> 5 -> 3 shards x (1 + 1): out {:.1}s, in {:.1}s; {} writes acked, {} MOVED, {} retries; \
         write wait p50 {:?} p99 {:?} max {:?}; {} of {} keys lost; new shards took slots before their \
         replica was in sync: {}",
        out_took.as_secs_f64(),
        in_took.as_secs_f64(),
        rep.acked,
        rep.moved,
        rep.down,
        pct(&mut waits, 0.5),
        pct(&mut waits, 0.99),
        rep.max_write_wait,
        lost.len(),
        rep.last.len(),
        violations.borrow().len()
    );
    assert!(violations.borrow().is_empty(), "{:?}", violations.borrow());
    assert!(lost.is_empty(), "acknowledged writes lost: {lost:?}");
    c.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_primary_kills_lose_no_confirmed_write() {
    const KILLS: usize = 20;
    let cfg = replicated("kill20", 2);
    let dir = cfg.dir.clone();
    let mut c = LocalCluster::start(cfg).await.expect("start");
    tick_until(&mut c, Duration::from_secs(60), "2 shards with in-sync replicas", |c| ready(c, 2)).await;
    let seeds = ports(&c);
    let writer = ResilientWriter::start_with(seeds.clone(), "k", 1000, Some(200));
    tick_until(&mut c, Duration::from_secs(30), "500 writes", |_| writer.acked() >= 500).await;

    let began = Instant::now();
    let (mut resumed, mut lags, mut causes) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..KILLS {
        let ordinal = (i % 2) as u32;
        let shard = c.sup.shard_id(ordinal);
        tick_until(&mut c, Duration::from_secs(60), "in-sync replicas before the kill", |c| ready(c, 2))
            .await;
        let t = topology(&c);
        let s = t.shard(&shard).expect("shard").clone();
        let old = s.primary().expect("primary").clone();
        let lag = c
            .last
            .as_ref()
            .expect("report")
            .replica_lags()
            .iter()
            .find(|l| l.shard == shard)
            .map(|l| l.lag_bytes);
        lags.push(lag.unwrap_or(0));
        let slots: HashSet<u16> = s.slots.iter().flat_map(|r| r.slots()).collect();
        let victim = c.sup.nodes().find(|p| old.at(&p.addr)).expect("the primary's process");
        let pid = victim.pid().expect("pid") as libc::pid_t;
        let failovers = c.failovers().total;
        let killed_at = Instant::now();
        // SAFETY: kill(2) has no memory-safety preconditions; the pid is our own unreaped child.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        tick_until(&mut c, Duration::from_secs(30), "writes to the killed primary's slots resume", |_| {
            writer.acked_in_since(&slots, killed_at).is_some()
        })
        .await;
        let at = writer.acked_in_since(&slots, killed_at).expect("resumed");
        resumed.push(at.duration_since(killed_at));
        tick_until(&mut c, Duration::from_secs(60), "the old primary back as an in-sync replica", |c| {
            ready(c, 2)
                && c.failovers().total > failovers
                && topology(c).shard(&shard).is_some_and(|s| s.primary().is_some_and(|p| p.id != old.id))
        })
        .await;
        causes.push(c.failovers().recent.last().map(|r| r.cause.to_string()).unwrap_or_default());
    }
    let took = began.elapsed();
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
    let lost = lost_keys(seeds[0], &rep).await.len();
    let mut sorted = resumed.clone();
    let ms: Vec<u128> = resumed.iter().map(Duration::as_millis).collect();
    let distinct: HashSet<&String> = causes.iter().collect();
    eprintln!(
        "kill -9 of a primary x{KILLS} (alternating 2 shards, 1 replica each, WAIT 1 200 writer): {:.1}s in all; \
         writes to its slots resumed after p50 {:?} p99 {:?} max {:?} (each, ms: {ms:?}); replica lag at each \
         kill (bytes): {lags:?}; causes {distinct:?}; {} writes acked, {} WAIT-confirmed keys; {} WAIT-confirmed \
         writes lost; {other_lost} keys ({lost} by GET) whose last acknowledged write was lost",
        took.as_secs_f64(),
        pct(&mut sorted, 0.5),
        pct(&mut sorted, 0.99),
        sorted.last().copied().unwrap_or_default(),
        rep.acked,
        rep.durable.len(),
        durable_lost.len()
    );
    assert!(durable_lost.is_empty(), "WAIT-confirmed writes lost: {durable_lost:?}");
    assert!(pct(&mut sorted, 0.99) < Duration::from_secs(10), "writes resumed after {sorted:?}");
    c.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}
