//! Reconcile scenarios with replicas (`replicasPerShard: 1`) against the fake API server and the
//! simulated control plane:
//! - the `shoal.dev/serving` label (the PodDisruptionBudget's selector) follows the topology's
//!   primary, whichever pod runs it, and only primaries carry it; an in-sync replica is Ready;
//! - a template change rolls each shard in place: replica pod, wait until it is back in sync,
//!   planned failover, old primary's pod; one shard at a time, no slot drained;
//! - a cordoned Node under a primary: the primary hands over before its pod is deleted.

use serde_json::{json, Value};

use super::control::NodeControl;
use super::fixtures::cluster;
use super::reconcile_tests::{condition, sts, Harness, NS};
use super::resources::{desired_shard, member_addr, Defaults};
use super::rollout::DRAIN_ANNOTATION;
use crate::controlplane::model::{NodeAddr, ShardId};

fn replicated(shards: i32) -> Harness {
    let mut sc = cluster("c", shards);
    sc.spec.replicas_per_shard = 1;
    Harness::new(sc)
}

fn path(o: u32, m: u32) -> String {
    format!("{NS}/pods/c-{o}-{m}")
}

fn pod(o: u32, m: u32, rev: &str, node: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": format!("c-{o}-{m}"), "namespace": "default",
                        "labels": {"app.kubernetes.io/instance": "c", "shoal.dev/shard": o.to_string(),
                                   "controller-revision-hash": rev}},
           "spec": {"nodeName": node, "containers": []},
           "status": {"conditions": []}})
}

fn put_pods(h: &Harness, shards: u32, rev: &str) {
    for o in 0..shards {
        for m in 0..2 {
            h.api.put(&path(o, m), pod(o, m, rev, &format!("node-{o}-{m}")));
        }
    }
}

fn addr(o: u32, m: u32) -> NodeAddr {
    let mut sc = cluster("c", 1);
    sc.spec.replicas_per_shard = 1;
    member_addr(&sc, o, m, &Defaults::default())
}

fn shard_id(o: u32) -> ShardId {
    desired_shard(&cluster("c", 1), o, &Defaults::default()).0
}

fn serving(h: &Harness, o: u32, m: u32) -> Option<String> {
    h.api.get(&path(o, m))?["metadata"]["labels"]["shoal.dev/serving"].as_str().map(str::to_string)
}

fn gate(h: &Harness, o: u32, m: u32) -> Option<String> {
    let p = h.api.get(&path(o, m))?;
    p["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "shoal.dev/slots-owned")
        .and_then(|c| c["status"].as_str().map(str::to_string))
}

/// The member (pod index) whose node is shard `o`'s primary in the simulated topology.
fn primary_member(h: &Harness, o: u32) -> u32 {
    let t = h.sim.topology().expect("topology");
    let p = t.shard(&shard_id(o)).and_then(|s| s.primary()).expect("primary").clone();
    (0..2).find(|&m| p.at(&addr(o, m))).expect("a pod runs the primary")
}

fn set_update_revision(h: &Harness, shards: u32, rev: &str) {
    for i in 0..shards {
        let mut s = h.api.get(&sts(i)).expect("statefulset");
        s["status"] = json!({"updateRevision": rev, "currentRevision": "v1"});
        h.api.put(&sts(i), s);
    }
}

#[tokio::test]
async fn the_serving_label_follows_the_primary_after_a_failover() {
    let h = replicated(2);
    h.converge(10).await;
    put_pods(&h, 2, "v1");
    h.once().await.expect("reconcile");
    for o in 0..2 {
        assert_eq!(serving(&h, o, 0).as_deref(), Some("true"), "shard {o}'s primary is protected");
        assert_eq!(serving(&h, o, 1).as_deref(), Some("false"), "a replica is not: it may be evicted");
        assert_eq!((gate(&h, o, 0).as_deref(), gate(&h, o, 1).as_deref()), (Some("True"), Some("True")));
    }
    // A replica loading a full sync is not Ready (and still not serving).
    h.sim.set_syncing(&addr(1, 1), true);
    h.once().await.expect("reconcile");
    assert_eq!((gate(&h, 1, 1).as_deref(), serving(&h, 1, 1).as_deref()), (Some("False"), Some("false")));
    h.sim.set_syncing(&addr(1, 1), false);

    // Shard 0's primary moves to pod c-0-1 (a failover the control plane made).
    let t = h.sim.topology().expect("topology");
    let to = t.shard(&shard_id(0)).and_then(|s| s.replicas().next()).expect("replica").id.clone();
    let mut sim = h.sim.clone();
    sim.planned_failover(&Default::default(), &shard_id(0), &to).await.expect("failover");
    h.once().await.expect("reconcile");
    assert_eq!(serving(&h, 0, 1).as_deref(), Some("true"), "the new primary is protected");
    assert_eq!(serving(&h, 0, 0).as_deref(), Some("false"), "the old one, a replica now, is not");
    assert_eq!(gate(&h, 0, 0).as_deref(), Some("True"), "an in-sync replica stays Ready");
    let serving_pods = (0..2)
        .flat_map(|o| (0..2).map(move |m| (o, m)))
        .filter(|&(o, m)| serving(&h, o, m).as_deref() == Some("true"));
    assert_eq!(serving_pods.count(), 2, "exactly one protected pod per shard");
    let st = h.stored().status.expect("status");
    let s0 = st.shard_status.iter().find(|s| s.ordinal == 0).expect("shard 0");
    assert_eq!(s0.pod, "c-0-1", "status names the primary's pod");
    assert!(s0.endpoint.starts_with("c-0-1."), "{}", s0.endpoint);
    assert!(s0.reachable);
    assert_eq!(condition(&h.stored(), "Ready").as_deref(), Some("True"));
}

#[tokio::test]
async fn a_rollout_with_replicas_goes_replica_first_then_fails_over_then_recreates_the_old_primary() {
    let h = replicated(2);
    h.converge(10).await;
    put_pods(&h, 2, "v1");
    set_update_revision(&h, 2, "v2");
    let mut order: Vec<String> = Vec::new();
    let mut failovers_seen = 0;
    let mut syncing: Option<NodeAddr> = None;
    let (mut failover_events, mut drain_events) = (0, 0);
    for _ in 0..60 {
        h.api.clear_requests();
        h.once().await.expect("reconcile");
        failover_events += h.events("RolloutFailover").len();
        drain_events += h.events("RolloutDrain").len();
        let deleted: Vec<String> = h
            .lines()
            .into_iter()
            .filter_map(|l| l.strip_prefix(&format!("DELETE {NS}/pods/")).map(str::to_string))
            .collect();
        let fos = h.sim.log().failovers;
        for (shard, _) in &fos[failovers_seen..] {
            let o = (0..2).find(|&o| &shard_id(o) == shard).expect("ordinal");
            order.push(format!("failover shard {o} to c-{o}-{}", primary_member(&h, o)));
        }
        assert!(deleted.len() + fos.len() - failovers_seen <= 1, "one action per reconcile: {deleted:?}");
        failovers_seen = fos.len();
        // The previous pod is back and in sync only now, after one reconcile of waiting.
        if let Some(a) = syncing.take() {
            assert!(deleted.is_empty(), "nothing happens while a recreated pod syncs: {deleted:?}");
            h.sim.set_syncing(&a, false);
        }
        for name in deleted {
            order.push(format!("delete {name}"));
            let (o, m) = name.strip_prefix("c-").and_then(|r| r.split_once('-')).expect("pod name");
            let (o, m): (u32, u32) = (o.parse().expect("o"), m.parse().expect("m"));
            // The StatefulSet controller recreates it from the new template; it resyncs.
            h.api.put(&path(o, m), pod(o, m, "v2", &format!("node-{o}-{m}")));
            h.sim.set_syncing(&addr(o, m), true);
            syncing = Some(addr(o, m));
        }
        for o in 0..2 {
            let p = primary_member(&h, o);
            assert_eq!(
                serving(&h, o, p).as_deref(),
                Some("true"),
                "shard {o}'s primary c-{o}-{p} stays protected"
            );
        }
        let sc = h.stored();
        if order.len() == 6 && condition(&sc, "RollingOut").as_deref() == Some("False") {
            break;
        }
    }
    assert_eq!(
        order,
        [
            "delete c-0-1",
            "failover shard 0 to c-0-1",
            "delete c-0-0",
            "delete c-1-1",
            "failover shard 1 to c-1-1",
            "delete c-1-0"
        ]
    );
    // No drain: both shards stayed desired and kept their slots throughout.
    assert!(h.sim.log().steps.iter().all(|s| s.0 == 2), "no shard left out of the desired shards");
    assert!(h.sim.layout().iter().all(|(_, n)| *n == 8192), "{:?}", h.sim.layout());
    for o in 0..2 {
        for m in 0..2 {
            let p = h.api.get(&path(o, m)).expect("pod");
            assert!(
                p["metadata"]["annotations"][DRAIN_ANNOTATION].is_null(),
                "c-{o}-{m} never marked for drain"
            );
        }
    }
    let st = h.stored().status.expect("status");
    assert_eq!((st.updated_pods, st.outdated_pods), (4, 0));
    assert_eq!((failover_events, drain_events), (2, 0));
    assert_eq!(h.ctx.metrics.pods_recreated.get(), 4);
    assert!(
        h.ctx.metrics.encode().contains("failovers_total{cause=\"planned\"} 2"),
        "{}",
        h.ctx.metrics.encode()
    );
    for o in 0..2 {
        assert_eq!(st.shard_status[o as usize].pod, format!("c-{o}-1"));
        assert_eq!(
            (serving(&h, o, 1).as_deref(), serving(&h, o, 0).as_deref()),
            (Some("true"), Some("false"))
        );
    }
}

#[tokio::test]
async fn a_cordoned_node_under_a_primary_hands_it_over_before_its_pod_goes() {
    let h = replicated(1);
    h.converge(10).await;
    put_pods(&h, 1, "v1");
    set_update_revision(&h, 1, "v1");
    h.once().await.expect("reconcile");
    assert_eq!(serving(&h, 0, 0).as_deref(), Some("true"), "the budget holds the drain back");
    h.api.put(
        "/api/v1/nodes/node-0-0",
        json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-0-0"},
               "spec": {"unschedulable": true}}),
    );
    h.api.clear_requests();
    h.once().await.expect("reconcile");
    assert_eq!(h.sim.log().failovers.len(), 1, "{:?}", h.lines());
    assert_eq!(primary_member(&h, 0), 1);
    assert!(!h.lines().iter().any(|l| l.starts_with("DELETE")), "the failover comes first");
    // The label moved in the same reconcile: the drain may now evict c-0-0, and c-0-1 is held.
    assert_eq!((serving(&h, 0, 0).as_deref(), serving(&h, 0, 1).as_deref()), (Some("false"), Some("true")));
    h.api.clear_requests();
    h.once().await.expect("reconcile");
    assert!(h.lines().contains(&format!("DELETE {}", path(0, 0))), "{:?}", h.lines());
}
