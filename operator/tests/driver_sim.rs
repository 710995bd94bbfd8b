//! The driver against simulated nodes (see `sim/`): resizing 2 → 3 → 2 shards keeps every slot
//! owned and never pushes a refused topology; a control plane restarted mid-migration, or after
//! a migration finished unseen, converges without starting the migration again; a failed
//! migration is retried; metrics drive an io-threads change.

mod sim;

use std::time::Duration;

use shoal_operator::controlplane::autoscaler::{AutoscalePolicy, IoThreadsPolicy};
use shoal_operator::controlplane::driver::{DesiredShard, Driver, Phase, StepReport};
use shoal_operator::controlplane::history::AutoscaleHistory;
use shoal_operator::controlplane::membership::Change;
use shoal_operator::controlplane::model::{NodeAddr, ShardId, SLOT_COUNT};
use shoal_operator::controlplane::planner::PlanOptions;
use sim::SimNode;

async fn nodes(n: usize) -> Vec<SimNode> {
    let mut v = Vec::new();
    for i in 0..n {
        v.push(SimNode::start(format!("{:040x}", 0xabc000 + i)).await);
    }
    v
}

fn addr(n: &SimNode) -> NodeAddr {
    NodeAddr { ip: "127.0.0.1".into(), hostname: None, port: n.port }
}

fn desired(nodes: &[SimNode], k: usize) -> (Vec<DesiredShard>, Vec<NodeAddr>) {
    let d = nodes[..k]
        .iter()
        .enumerate()
        .map(|(i, n)| DesiredShard { id: ShardId::for_ordinal("sim", i as u32), nodes: vec![addr(n)] })
        .collect();
    (d, nodes[k..].iter().map(addr).collect())
}

/// Steps until converged (bounded), checking after each step that, once formed, the observed
/// topology covers every slot.
async fn converge(driver: &mut Driver, nodes: &[SimNode], k: usize) -> StepReport {
    let (d, others) = desired(nodes, k);
    let mut formed = false;
    for _ in 0..400 {
        let r = driver.step(&d, &others).await.expect("step");
        if let Some(t) = &r.observed.topology {
            if formed {
                assert_eq!(t.covered_slots(), usize::from(SLOT_COUNT), "a slot lost its owner: {t:?}");
            }
            formed |= t.covered_slots() == usize::from(SLOT_COUNT);
        }
        if r.phase == Phase::Converged {
            return r;
        }
        // Migrations finish on the nodes' polls; a short pause keeps the loop from spinning
        // through the driver's failure backoff. Progress is checked by the bound above, not by
        // the pause.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("did not converge on {k} shards");
}

fn opts(max: usize) -> PlanOptions {
    PlanOptions { max_slots_per_move: max }
}

#[tokio::test]
async fn resize_two_three_two_keeps_every_slot_owned() {
    let n = nodes(3).await;
    let mut driver = Driver::new(opts(2048), Duration::from_secs(5));
    converge(&mut driver, &n, 2).await;
    assert_eq!([n[0].owned_slots(), n[1].owned_slots(), n[2].owned_slots()], [8192, 8192, 0]);

    let r = converge(&mut driver, &n, 3).await;
    let owned: Vec<usize> = n.iter().map(SimNode::owned_slots).collect();
    assert_eq!(owned.iter().sum::<usize>(), 16384);
    assert!(owned.iter().all(|&c| c == 5461 || c == 5462), "{owned:?}");
    let epoch = r.observed.max_epoch();
    assert!(r.observed.nodes.iter().all(|o| o.epoch == epoch), "all nodes on the last epoch");

    let r = converge(&mut driver, &n, 2).await;
    assert!(!r.in_topology(&ShardId::for_ordinal("sim", 2)), "drained shard removed");
    assert_eq!([n[0].owned_slots(), n[1].owned_slots(), n[2].owned_slots()], [8192, 8192, 0]);
    for node in &n {
        assert_eq!(node.state.lock().unwrap().rejected_pushes, 0, "a push was refused");
    }
}

#[tokio::test]
async fn restart_mid_migration_resumes_without_restarting_it() {
    let n = nodes(2).await;
    n[0].state.lock().unwrap().polls_to_finish = 6;
    let mut driver = Driver::new(opts(16384), Duration::from_secs(5));
    converge(&mut driver, &n, 1).await;
    let (d, o) = desired(&n, 2);
    // Step until the migration has started, then "crash" the control plane.
    for _ in 0..10 {
        driver.step(&d, &o).await.unwrap();
        if n[0].state.lock().unwrap().migrations_started > 0 {
            break;
        }
    }
    assert_eq!(n[0].state.lock().unwrap().migrations_started, 1);
    drop(driver);
    let mut driver = Driver::new(opts(16384), Duration::from_secs(5));
    converge(&mut driver, &n, 2).await;
    assert_eq!(n[0].state.lock().unwrap().migrations_started, 1, "the migration was started twice");
    assert_eq!([n[0].owned_slots(), n[1].owned_slots()], [8192, 8192]);
}

#[tokio::test]
async fn migration_finished_while_control_plane_was_down_is_folded_in() {
    let n = nodes(2).await;
    n[0].state.lock().unwrap().polls_to_finish = 1000;
    let mut driver = Driver::new(opts(16384), Duration::from_secs(5));
    converge(&mut driver, &n, 1).await;
    let (d, o) = desired(&n, 2);
    for _ in 0..10 {
        driver.step(&d, &o).await.unwrap();
        if n[0].state.lock().unwrap().migrations_started > 0 {
            break;
        }
    }
    drop(driver);
    // The node finishes the job while no control plane runs.
    for j in &mut n[0].state.lock().unwrap().jobs {
        j.state = "success".into();
    }
    let mut driver = Driver::new(opts(16384), Duration::from_secs(5));
    converge(&mut driver, &n, 2).await;
    assert_eq!(n[0].state.lock().unwrap().migrations_started, 1);
    assert_eq!([n[0].owned_slots(), n[1].owned_slots()], [8192, 8192]);
}

#[tokio::test]
async fn failed_migration_is_retried() {
    let n = nodes(2).await;
    let mut driver = Driver::new(opts(16384), Duration::from_secs(5));
    converge(&mut driver, &n, 1).await;
    n[0].state.lock().unwrap().fail_next_migration = true;
    converge(&mut driver, &n, 2).await;
    assert_eq!(n[0].state.lock().unwrap().migrations_started, 2);
    assert_eq!([n[0].owned_slots(), n[1].owned_slots()], [8192, 8192]);
}

/// The issue-11 scenario: shard 1's node comes back without its data directory (a new id) at
/// its address. One step replaces it; its slots stay with its shard; no phantom shard is left.
#[tokio::test]
async fn node_back_with_a_new_id_takes_its_shards_slots_in_one_step() {
    let n = nodes(2).await;
    let mut driver = Driver::new(opts(2048), Duration::from_secs(5));
    let before = converge(&mut driver, &n, 2).await;
    let old = n[1].state.lock().unwrap().id.clone();
    let started = n[0].state.lock().unwrap().migrations_started;
    let slots = n[1].owned_slots();
    assert_eq!(slots, 8192);
    let new = format!("{:040x}", 0xfeed);
    n[1].wipe_and_restart(new.clone());
    let (d, others) = desired(&n, 2);
    let r = driver.step(&d, &others).await.expect("step");
    assert!(
        r.membership
            .iter()
            .any(|c| matches!(c, Change::Replaced { old: o, new: w, .. } if o.0 == old && w.0 == new)),
        "{:?}",
        r.actions
    );
    assert_eq!(n[1].owned_slots(), slots, "the new node serves its shard's slots after one step");
    assert_eq!(n[0].owned_slots(), 16384 - slots);
    let after = converge(&mut driver, &n, 2).await;
    let t = after.observed.topology.expect("topology");
    assert_eq!(t.shards.len(), 2, "no phantom shard: {t:?}");
    assert!(t.shards.iter().all(|s| s.nodes.iter().all(|x| x.id.0 != old)), "the old id is forgotten");
    assert!(after.stuck.is_empty());
    assert_eq!(after.unserved_slots, 0);
    assert!(t.epoch > before.observed.topology.expect("t").epoch);
    // Nothing was migrated to "myself" or anywhere: the layout was already balanced.
    assert_eq!(n[0].state.lock().unwrap().migrations_started, started);
    assert_eq!(n[1].state.lock().unwrap().migrations_started, 0);
}

/// A node that stops answering is marked `fail` once the window passes (the other nodes then
/// report the truth), the cluster is not Converged meanwhile, and the mark goes when it is back.
#[tokio::test]
async fn silent_node_is_marked_failed_then_cleared() {
    let n = nodes(2).await;
    let mut driver =
        Driver::new(opts(2048), Duration::from_secs(5)).with_fail_after(Duration::from_millis(200));
    converge(&mut driver, &n, 2).await;
    n[1].state.lock().unwrap().down = true;
    let (d, others) = desired(&n, 2);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut marked = false;
    while std::time::Instant::now() < deadline {
        let r = driver.step(&d, &others).await.expect("step");
        assert_ne!(r.phase, Phase::Converged, "a silent primary is not a converged cluster");
        assert_eq!(r.unserved_slots, 8192);
        if r.membership.iter().any(|c| matches!(c, Change::Failed { .. })) {
            marked = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(marked, "marked failed within the bound");
    let t0 = n[0].state.lock().unwrap().topology.clone().expect("topology");
    let failed: Vec<bool> =
        t0["shards"].as_array().unwrap().iter().map(|s| s["nodes"][0]["fail"] == true).collect();
    assert_eq!(failed.iter().filter(|f| **f).count(), 1, "node 0 holds the fail mark: {t0}");
    n[1].state.lock().unwrap().down = false;
    let r = converge(&mut driver, &n, 2).await;
    let t = r.observed.topology.expect("topology");
    assert!(t.shards.iter().all(|s| s.nodes.iter().all(|x| !x.fail)), "cleared: {t:?}");
}

#[tokio::test]
async fn metrics_raise_io_threads() {
    let n = nodes(1).await;
    let mut driver = Driver::new(opts(2048), Duration::from_secs(5));
    let r = converge(&mut driver, &n, 1).await;
    let policy = AutoscalePolicy {
        enabled: true,
        io_threads: Some(IoThreadsPolicy {
            min: 1,
            max: 3,
            raise_busy_percent: 50.0,
            raise_samples: 3,
            lower_samples: 3,
        }),
        ..AutoscalePolicy::default()
    };
    let mut h = AutoscaleHistory::default();
    h.record(&r.observed, 0);
    assert!(h.decide_io(&policy, &r.observed).is_empty());
    n[0].state.lock().unwrap().busy = 0.9;
    let mut changed = None;
    for t in 1..10 {
        let obs = driver.observe(&[addr(&n[0])]).await;
        h.record(&obs, t);
        if let Some((a, _, d)) = h.decide_io(&policy, &obs).into_iter().next() {
            driver.set_io_threads(&a, d.set_to.unwrap()).await.unwrap();
            changed = Some(t);
            break;
        }
    }
    assert_eq!(changed, Some(3), "raised after three busy samples");
    assert_eq!(n[0].state.lock().unwrap().io_threads, 2);
}
