//! Disruption scenarios against the fake API server:
//! - with the real driver and simulated nodes (`tests/sim`, dialled through the pods' DNS names):
//!   a pod recreated under a new node id takes its shard's slots; a silent node makes the cluster
//!   `Degraded` with its unserved slots counted, and its pod not ready;
//! - with the simulated control plane: an outdated template rolls one shard at a time (drained
//!   before its pod is deleted), a Node being drained moves its shard first, and a single shard
//!   pauses instead of losing its keys.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::control::ControlFactory;
use super::fixtures::{cluster, Sim};
use super::reconcile_tests::{condition, sts, Harness, NS};
use super::resources::{desired_shard, Defaults};
use super::rollout::DRAIN_ANNOTATION;
use super::sim::SimNode;
use crate::controlplane::driver::Driver;
use crate::controlplane::model::{NodeAddr, ShardId};
use crate::controlplane::observe::Dialer;
use crate::controlplane::planner::PlanOptions;

fn pod_path(i: u32) -> String {
    format!("{NS}/pods/c-{i}-0")
}

fn pod(i: u32, rev: &str, node: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": format!("c-{i}-0"), "namespace": "default",
                        "labels": {"app.kubernetes.io/instance": "c", "shoal.dev/shard": i.to_string(),
                                   "controller-revision-hash": rev}},
           "spec": {"nodeName": node, "containers": []},
           "status": {"conditions": []}})
}

fn shard_id(i: u32) -> ShardId {
    desired_shard(&cluster("c", 1), i, &Defaults::default()).0
}

fn gate(h: &Harness, i: u32) -> Option<String> {
    let p = h.api.get(&pod_path(i))?;
    p["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "shoal.dev/slots-owned")
        .and_then(|c| c["status"].as_str().map(str::to_string))
}

fn serving(h: &Harness, i: u32) -> Option<String> {
    h.api.get(&pod_path(i))?["metadata"]["labels"]["shoal.dev/serving"].as_str().map(str::to_string)
}

/// A harness whose control plane is the real driver, reaching `nodes[o]` for shard `o`.
fn real(shards: u32, nodes: &[SimNode]) -> Harness {
    let sc = cluster("c", shards as i32);
    let map: HashMap<NodeAddr, u16> = (0..shards)
        .map(|o| (desired_shard(&sc, o, &Defaults::default()).1, nodes[o as usize].port))
        .collect();
    let dialer: Dialer = Arc::new(move |a: &NodeAddr| NodeAddr {
        ip: "127.0.0.1".into(),
        hostname: None,
        // Port 1 refuses: an address no simulated node stands behind.
        port: map.get(a).copied().unwrap_or(1),
    });
    let factory: Box<ControlFactory> = Box::new(move || {
        Box::new(
            Driver::new(PlanOptions::default(), Duration::from_secs(5))
                .with_dialer(dialer.clone())
                .with_fail_after(Duration::from_millis(300)),
        )
    });
    Harness::with_factory(sc, Sim::default(), factory)
}

async fn sim_nodes(n: usize) -> Vec<SimNode> {
    let mut v = Vec::new();
    for i in 0..n {
        v.push(SimNode::start(format!("{:040x}", 0xc0de00 + i)).await);
    }
    v
}

#[tokio::test]
async fn a_pod_recreated_under_a_new_id_takes_its_shards_slots() {
    let nodes = sim_nodes(2).await;
    let h = real(2, &nodes);
    h.converge(30).await;
    for i in 0..2 {
        h.api.put(&pod_path(i), pod(i, "v1", "n"));
    }
    h.once().await.expect("reconcile");
    assert_eq!((gate(&h, 1).as_deref(), serving(&h, 1).as_deref()), (Some("True"), Some("true")));
    let old = nodes[1].state.lock().unwrap().id.clone();
    assert_eq!(nodes[1].owned_slots(), 8192);

    // The pod is recreated with an empty data directory: a new node id at the same DNS name.
    let new = format!("{:040x}", 0xbeef);
    nodes[1].wipe_and_restart(new.clone());
    h.api.clear_requests();
    h.once().await.expect("reconcile");
    let replaced = h.events("NodeReplaced");
    assert_eq!(replaced.len(), 1, "{:?}", h.lines());
    let note = replaced[0]["note"].as_str().unwrap_or("");
    assert!(note.contains(&new[..8]) && note.contains(&old[..8]), "{note}");
    assert_eq!(nodes[1].owned_slots(), 8192, "the new node serves its shard's slots after one reconcile");
    h.converge(10).await;
    let st = h.stored().status.expect("status");
    assert_eq!(condition(&h.stored(), "Ready").as_deref(), Some("True"));
    assert_eq!(st.unserved_slots, 0);
    assert_eq!(st.shard_status.len(), 2, "no phantom shard");
    assert_eq!(h.ctx.metrics.nodes_replaced.get(), 1);
    assert_eq!((gate(&h, 1).as_deref(), serving(&h, 1).as_deref()), (Some("True"), Some("true")));
}

#[tokio::test]
async fn a_silent_node_degrades_the_cluster_with_its_unserved_slots() {
    let nodes = sim_nodes(2).await;
    let h = real(2, &nodes);
    h.converge(30).await;
    for i in 0..2 {
        h.api.put(&pod_path(i), pod(i, "v1", "n"));
    }
    nodes[1].state.lock().unwrap().down = true;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        h.once().await.expect("reconcile");
        if !h.events("NodeFailed").is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "no NodeFailed event within the bound");
        // The failure-detection window has to pass; the loop is bounded by the deadline above.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let sc = h.stored();
    let st = sc.status.as_ref().expect("status");
    assert_eq!(st.unserved_slots, 8192);
    let degraded = st.conditions.iter().find(|c| c.type_ == "Degraded").expect("Degraded");
    assert_eq!((degraded.status.as_str(), degraded.reason.as_str()), ("True", "SlotsUnserved"));
    assert!(degraded.message.contains("8192 slot(s) unserved"), "{}", degraded.message);
    assert_eq!(condition(&sc, "Ready").as_deref(), Some("False"));
    assert_eq!((gate(&h, 1).as_deref(), serving(&h, 1).as_deref()), (Some("False"), Some("false")));
    assert_eq!((gate(&h, 0).as_deref(), serving(&h, 0).as_deref()), (Some("True"), Some("true")));
    // Node 0 holds the fail mark, so it reports cluster_state:fail to its clients.
    let t = nodes[0].state.lock().unwrap().topology.clone().expect("topology");
    assert!(t.to_string().contains(r#""fail":true"#), "{t}");

    nodes[1].state.lock().unwrap().down = false;
    h.converge(10).await;
    assert_eq!(condition(&h.stored(), "Ready").as_deref(), Some("True"));
    assert!(!h.events("NodeRecovered").is_empty());
    assert_eq!(h.stored().status.expect("status").unserved_slots, 0);
}

/// Sets `status.updateRevision` on every StatefulSet, as the StatefulSet controller would.
fn set_update_revision(h: &Harness, shards: u32, rev: &str) {
    for i in 0..shards {
        let mut s = h.api.get(&sts(i)).expect("statefulset");
        s["status"] = json!({"updateRevision": rev, "currentRevision": "v1"});
        h.api.put(&sts(i), s);
    }
}

fn marked(h: &Harness, shards: u32) -> Vec<u32> {
    (0..shards)
        .filter(|&i| {
            h.api
                .get(&pod_path(i))
                .is_some_and(|p| p["metadata"]["annotations"][DRAIN_ANNOTATION].is_string())
        })
        .collect()
}

#[tokio::test]
async fn an_outdated_template_rolls_one_drained_shard_at_a_time() {
    let h = Harness::new(cluster("c", 3));
    h.converge(20).await;
    for i in 0..3 {
        h.api.put(&pod_path(i), pod(i, "v1", "n"));
    }
    set_update_revision(&h, 3, "v2");
    let mut recreated = Vec::new();
    for _ in 0..200 {
        h.once().await.expect("reconcile");
        let m = marked(&h, 3);
        assert!(m.len() <= 1, "one shard at a time: {m:?}");
        for i in 0..3 {
            if h.api.get(&pod_path(i)).is_none() {
                let layout = h.sim.layout();
                assert!(
                    !layout.iter().any(|(id, _)| id == &shard_id(i)),
                    "pod {i} deleted only after its shard left the topology: {layout:?}"
                );
                recreated.push(i);
                // The StatefulSet controller recreates it from the new template.
                h.api.put(&pod_path(i), pod(i, "v2", "n"));
            }
        }
        let sc = h.stored();
        if recreated.len() == 3
            && condition(&sc, "RollingOut").as_deref() == Some("False")
            && condition(&sc, "Progressing").as_deref() == Some("False")
        {
            break;
        }
    }
    assert_eq!(recreated, vec![0, 1, 2], "in ordinal order, once each");
    let st = h.stored().status.expect("status");
    assert_eq!((st.updated_pods, st.outdated_pods), (3, 0));
    assert_eq!(h.events("RolloutDrain").len(), 3);
    assert_eq!(h.events("RolloutRecreate").len(), 3);
    assert_eq!(h.ctx.metrics.pods_recreated.get(), 3);
    let layout = h.sim.layout();
    assert_eq!(layout.len(), 3);
    assert!(layout.iter().all(|(_, n)| *n >= 5461), "every shard owns slots again: {layout:?}");
}

#[tokio::test]
async fn a_pod_on_a_node_being_drained_moves_its_shard_first() {
    let h = Harness::new(cluster("c", 2));
    h.converge(20).await;
    h.api.put(&pod_path(0), pod(0, "v1", "ip-10-0-0-1"));
    h.api.put(&pod_path(1), pod(1, "v1", "ip-10-0-0-2"));
    set_update_revision(&h, 2, "v1");
    h.once().await.expect("reconcile");
    assert!(marked(&h, 2).is_empty(), "nothing to do while every Node stays");
    assert_eq!(serving(&h, 0).as_deref(), Some("true"), "the PodDisruptionBudget protects a serving pod");
    h.api.put(
        "/api/v1/nodes/ip-10-0-0-2",
        json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "ip-10-0-0-2"},
               "spec": {"unschedulable": true}}),
    );
    h.once().await.expect("reconcile");
    assert_eq!(marked(&h, 2), vec![1]);
    let note = h.events("RolloutDrain")[0]["note"].as_str().unwrap_or("").to_string();
    assert!(note.contains("ip-10-0-0-2"), "{note}");
    let mut deleted = false;
    for _ in 0..50 {
        h.once().await.expect("reconcile");
        if h.api.get(&pod_path(1)).is_none() {
            deleted = true;
            break;
        }
        assert_eq!(serving(&h, 0).as_deref(), Some("true"));
    }
    assert!(deleted, "the drained pod is deleted so it reschedules on another Node");
    assert_eq!(h.sim.layout().len(), 1, "shard 1 left the topology before its pod went");
}

#[tokio::test]
async fn a_single_shard_rollout_pauses_instead_of_losing_its_keys() {
    let h = Harness::new(cluster("c", 1));
    h.converge(20).await;
    h.api.put(&pod_path(0), pod(0, "v1", "n"));
    set_update_revision(&h, 1, "v2");
    for _ in 0..3 {
        h.once().await.expect("reconcile");
    }
    assert!(h.api.get(&pod_path(0)).is_some(), "the only copy is not deleted");
    assert!(marked(&h, 1).is_empty());
    let sc = h.stored();
    let c = sc.status.as_ref().expect("status").conditions.iter().find(|c| c.type_ == "RollingOut").cloned();
    let c = c.expect("RollingOut");
    assert_eq!((c.status.as_str(), c.reason.as_str()), ("True", "RolloutPaused"));
    assert!(c.message.contains("single shard"), "{}", c.message);
    assert_eq!(sc.status.expect("status").outdated_pods, 1);
    assert!(!h.events("RolloutPaused").is_empty());
}
