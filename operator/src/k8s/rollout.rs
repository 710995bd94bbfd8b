//! Operator-driven rollouts and voluntary disruptions: which shard pod must be recreated, and the
//! safe order to do it in. Pure: the reconciler gathers the pods, their StatefulSets' update
//! revisions and the Nodes being removed, and carries out the one action decided here.
//!
//! A pod *needs recreation* when it runs an older pod template revision than its StatefulSet's
//! `updateRevision` (image or node-config change; the StatefulSets use `OnDelete`, so nothing
//! restarts behind the operator's back), or when its Node is cordoned or tainted for removal
//! (`kubectl drain`, EKS managed node group upgrades, Karpenter, cluster-autoscaler).
//!
//! One shard at a time, and only on a converged cluster:
//! 1. mark the pod `shoal.dev/rollout-drain=<time>` (the mark survives an operator restart);
//! 2. while marked, the shard is left out of the desired shards: its slots drain to the others;
//! 3. once the topology no longer names it, delete the pod; its StatefulSet recreates it with
//!    the new template (on another Node if its own is going away);
//! 4. the new pod carries no mark, so the shard is desired again and takes slots back.
//!
//! A single shard without replicas cannot be drained: the rollout pauses and says so, rather
//! than destroy the only copy. A step that takes longer than [`STEP_TIMEOUT`] pauses too.
//!
//! Shards with replicas (`replicasPerShard > 0`) are never drained: a replica holds a copy, so
//! the shard is rolled in place, as local mode does ([`next_replicated`]): delete an outdated
//! replica pod, wait until it is back and in sync, planned-failover the primary to an updated
//! in-sync replica, then delete the old primary's pod (now a replica). No slot moves. One shard
//! at a time: nothing is done while any pod of the cluster is missing, being deleted, not
//! answering, or a replica not in sync — a recreated pod holds the rollout until it has caught
//! up, and this needs no mark that must survive an operator restart.

use std::collections::{HashMap, HashSet};

use k8s_openapi::jiff::{SignedDuration, Timestamp};

use crate::controlplane::rollout::{next_replicated, InPlace, MemberView, RolloutStatus};

pub use crate::controlplane::rollout::STEP_TIMEOUT;

/// The annotation marking the pod whose shard is being drained for recreation.
pub const DRAIN_ANNOTATION: &str = "shoal.dev/rollout-drain";
/// The label the StatefulSet controller puts on each pod: the revision it was created from.
pub const REVISION_LABEL: &str = "controller-revision-hash";
/// Taints that announce a Node's removal (besides `spec.unschedulable`, a cordon).
pub const REMOVAL_TAINTS: &[&str] = &[
    "node.kubernetes.io/unschedulable",
    "karpenter.sh/disrupted",
    "karpenter.sh/disruption",
    "ToBeDeletedByClusterAutoscaler",
    "eks.amazonaws.com/nodegroup-upgrade",
];

/// A shard's pod as the rollout sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShardPod {
    pub ordinal: u32,
    /// Its index in the shard's StatefulSet (0 starts as the primary).
    pub member: u32,
    pub name: String,
    pub revision: Option<String>,
    pub node: Option<String>,
    /// When the drain mark was set, if it is.
    pub drain_since: Option<Timestamp>,
    /// The pod is being deleted.
    pub deleting: bool,
    /// Its node is the shard's primary in the observed topology (not marked failed).
    pub primary: bool,
    /// Its node answers and the topology lists it in its shard.
    pub reachable: bool,
    /// A replica whose link is up, not loading, close to the primary's offset.
    pub in_sync: bool,
}

/// What the reconciler knows this round.
pub struct Input<'a> {
    pub pods: &'a [ShardPod],
    /// Shard ordinal → its StatefulSet's `status.updateRevision`.
    pub update_revision: &'a HashMap<u32, String>,
    /// Nodes cordoned or tainted for removal.
    pub removing_nodes: &'a HashSet<String>,
    /// `spec.shards`.
    pub shards: u32,
    /// `spec.replicasPerShard`: above 0, shards are rolled in place, replica first.
    pub replicas: u32,
    /// The control plane converged on the desired shards (no migration, nothing unserved).
    pub converged: bool,
    /// Shard ordinal → named in the nodes' topology.
    pub in_topology: &'a dyn Fn(u32) -> bool,
    pub now: Timestamp,
}

/// The one thing to do now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    None,
    /// Set the drain mark on this pod.
    Mark {
        ordinal: u32,
        pod: String,
        why: String,
    },
    /// The shard is drained: delete its pod.
    Recreate {
        ordinal: u32,
        pod: String,
    },
    /// A shard with replicas: delete this replica pod (outdated, or its Node is going away).
    RecreateReplica {
        ordinal: u32,
        pod: String,
        why: String,
    },
    /// A shard with replicas: planned failover of the primary to the node of this pod.
    Failover {
        ordinal: u32,
        pod: String,
    },
}

/// The decision and what status shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub action: Action,
    /// The ordinal left out of the desired shards while it drains.
    pub exclude: Option<u32>,
    pub status: RolloutStatus,
}

/// Why `pod` needs recreating, if it does.
pub fn needs_recreation(pod: &ShardPod, input: &Input<'_>) -> Option<String> {
    if pod.deleting {
        return None;
    }
    if let Some(node) = pod.node.as_ref().filter(|n| input.removing_nodes.contains(*n)) {
        return Some(format!("its Node {node} is being drained"));
    }
    match (&pod.revision, input.update_revision.get(&pod.ordinal)) {
        (Some(have), Some(want)) if have != want => Some(format!("it runs revision {have}, not {want}")),
        _ => None,
    }
}

/// Decides the rollout's next action (see the module docs).
pub fn decide(input: &Input<'_>) -> Decision {
    if input.replicas > 0 {
        return decide_replicated(input);
    }
    let desired: Vec<&ShardPod> =
        input.pods.iter().filter(|p| p.ordinal < input.shards && p.member == 0).collect();
    let outdated: Vec<(&ShardPod, String)> =
        desired.iter().filter_map(|p| Some((*p, needs_recreation(p, input)?))).collect();
    let marked = desired.iter().filter(|p| p.drain_since.is_some() && !p.deleting).min_by_key(|p| p.ordinal);
    let mut status = RolloutStatus {
        updated: (desired.len() - outdated.len()) as u32,
        outdated: outdated.len() as u32,
        current: None,
        paused: None,
    };
    if let Some(p) = marked {
        let drained = input.converged && !(input.in_topology)(p.ordinal);
        status.current = Some(format!("shard {}: draining before its pod is recreated", p.ordinal));
        let action = if drained {
            status.current = Some(format!("shard {}: recreating pod {}", p.ordinal, p.name));
            Action::Recreate { ordinal: p.ordinal, pod: p.name.clone() }
        } else {
            let since = p.drain_since.unwrap_or(input.now);
            let waited = input.now.duration_since(since);
            if waited > SignedDuration::try_from(STEP_TIMEOUT).unwrap_or(SignedDuration::MAX) {
                status.paused = Some(format!(
                    "shard {} has been draining for {}s (limit {}s); see the control-plane events",
                    p.ordinal,
                    waited.as_secs(),
                    STEP_TIMEOUT.as_secs()
                ));
            }
            Action::None
        };
        return Decision { action, exclude: Some(p.ordinal), status };
    }
    let Some((first, why)) = outdated.first() else {
        return Decision { action: Action::None, exclude: None, status };
    };
    if input.shards < 2 {
        status.paused = Some(format!(
            "pod {} needs recreating ({why}), but a single shard without replicas cannot be drained \
             without losing its keys; scale to 2 or more shards, or delete the pod to accept the loss",
            first.name
        ));
        return Decision { action: Action::None, exclude: None, status };
    }
    if !input.converged {
        status.current = Some(format!("waiting for the cluster to converge before shard {}", first.ordinal));
        return Decision { action: Action::None, exclude: None, status };
    }
    Decision {
        action: Action::Mark { ordinal: first.ordinal, pod: first.name.clone(), why: why.clone() },
        exclude: Some(first.ordinal),
        status,
    }
}

/// Shards with replicas: in place, replica first, one shard at a time (see the module docs).
fn decide_replicated(input: &Input<'_>) -> Decision {
    let desired: Vec<&ShardPod> =
        input.pods.iter().filter(|p| p.ordinal < input.shards && p.member <= input.replicas).collect();
    let outdated: Vec<(&ShardPod, String)> =
        desired.iter().filter_map(|p| Some((*p, needs_recreation(p, input)?))).collect();
    let mut status = RolloutStatus {
        updated: (desired.len() - outdated.len()) as u32,
        outdated: outdated.len() as u32,
        current: None,
        paused: None,
    };
    let none = |status| Decision { action: Action::None, exclude: None, status };
    let Some(ordinal) = outdated.iter().map(|(p, _)| p.ordinal).min() else { return none(status) };
    let expected = (input.shards * (input.replicas + 1)) as usize;
    let wait = if !input.converged {
        Some("waiting for the cluster to converge".to_string())
    } else if let Some(p) = desired.iter().find(|p| p.deleting) {
        Some(format!("waiting for pod {} to be recreated", p.name))
    } else if desired.len() < expected {
        Some(format!("waiting for {} pod(s) to be created", expected - desired.len()))
    } else if let Some(p) = desired.iter().find(|p| !p.reachable) {
        Some(format!("waiting for pod {} to answer", p.name))
    } else {
        desired
            .iter()
            .find(|p| !p.primary && !p.in_sync)
            .map(|p| format!("waiting for pod {} to be in sync with its primary", p.name))
    };
    if let Some(why) = wait {
        status.current = Some(format!("shard {ordinal}: {why}"));
        return none(status);
    }
    let shard: Vec<&ShardPod> = desired.iter().copied().filter(|p| p.ordinal == ordinal).collect();
    let views: Vec<MemberView> = shard
        .iter()
        .map(|p| MemberView {
            member: p.member,
            outdated: needs_recreation(p, input).is_some(),
            primary: p.primary,
            reachable: p.reachable,
            in_sync: p.in_sync,
        })
        .collect();
    let pod = |m: u32| shard.iter().find(|p| p.member == m).map(|p| (*p).clone()).unwrap_or_default();
    let action = match next_replicated(&views) {
        InPlace::Restart(m) => {
            let p = pod(m);
            let why = needs_recreation(&p, input).unwrap_or_default();
            status.current = Some(format!("shard {ordinal}: recreating replica pod {}", p.name));
            Action::RecreateReplica { ordinal, pod: p.name, why }
        }
        InPlace::Failover(m) => {
            let p = pod(m);
            status.current = Some(format!("shard {ordinal}: handing the primary over to pod {}", p.name));
            Action::Failover { ordinal, pod: p.name }
        }
        InPlace::Wait(why) => {
            status.current = Some(format!("shard {ordinal}: {why}"));
            Action::None
        }
        InPlace::Done => Action::None,
    };
    Decision { action, exclude: None, status }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(o: u32, rev: &str) -> ShardPod {
        ShardPod {
            ordinal: o,
            name: format!("c-{o}-0"),
            revision: Some(rev.into()),
            node: Some(format!("node-{o}")),
            ..Default::default()
        }
    }

    fn now() -> Timestamp {
        "2026-01-01T00:00:00Z".parse().expect("ts")
    }

    fn run(pods: &[ShardPod], shards: u32, converged: bool, named: &[u32], removing: &[&str]) -> Decision {
        let revs: HashMap<u32, String> = (0..shards).map(|o| (o, "v2".to_string())).collect();
        let removing: HashSet<String> = removing.iter().map(|s| s.to_string()).collect();
        let named: HashSet<u32> = named.iter().copied().collect();
        let in_topology = move |o: u32| named.contains(&o);
        decide(&Input {
            pods,
            update_revision: &revs,
            removing_nodes: &removing,
            shards,
            replicas: 0,
            converged,
            in_topology: &in_topology,
            now: now(),
        })
    }

    /// Shard `o`'s pod `m`: revision, primary, in sync.
    fn member(o: u32, m: u32, rev: &str, primary: bool, in_sync: bool) -> ShardPod {
        ShardPod { member: m, name: format!("c-{o}-{m}"), primary, reachable: true, in_sync, ..pod(o, rev) }
    }

    fn run_replicated(pods: &[ShardPod], shards: u32, removing: &[&str]) -> Decision {
        let revs: HashMap<u32, String> = (0..shards).map(|o| (o, "v2".to_string())).collect();
        let removing: HashSet<String> = removing.iter().map(|s| s.to_string()).collect();
        let in_topology = |_: u32| true;
        decide(&Input {
            pods,
            update_revision: &revs,
            removing_nodes: &removing,
            shards,
            replicas: 1,
            converged: true,
            in_topology: &in_topology,
            now: now(),
        })
    }

    #[test]
    fn with_replicas_the_replica_pod_goes_first_then_a_failover_then_the_old_primary() {
        let d = run_replicated(&[member(0, 0, "v1", true, false), member(0, 1, "v1", false, true)], 1, &[]);
        assert!(
            matches!(&d.action, Action::RecreateReplica { ordinal: 0, pod, .. } if pod == "c-0-1"),
            "{d:?}"
        );
        assert_eq!((d.exclude, d.status.outdated), (None, 2), "no drain, even with one shard");
        // Back with the new revision but still syncing: wait.
        let d = run_replicated(&[member(0, 0, "v1", true, false), member(0, 1, "v2", false, false)], 1, &[]);
        assert_eq!(d.action, Action::None);
        assert!(d.status.current.as_deref().is_some_and(|c| c.contains("in sync")), "{d:?}");
        // In sync: hand the primary over to it.
        let d = run_replicated(&[member(0, 0, "v1", true, false), member(0, 1, "v2", false, true)], 1, &[]);
        assert_eq!(d.action, Action::Failover { ordinal: 0, pod: "c-0-1".into() });
        // The old primary is now a replica: recreate its pod.
        let d = run_replicated(&[member(0, 0, "v1", false, true), member(0, 1, "v2", true, false)], 1, &[]);
        assert!(matches!(&d.action, Action::RecreateReplica { pod, .. } if pod == "c-0-0"), "{d:?}");
        let d = run_replicated(&[member(0, 0, "v2", false, true), member(0, 1, "v2", true, false)], 1, &[]);
        assert_eq!((d.action, d.status.outdated), (Action::None, 0));
    }

    #[test]
    fn with_replicas_one_shard_at_a_time_and_nothing_while_a_pod_is_missing() {
        let pods = [
            member(0, 0, "v2", true, false),
            member(0, 1, "v2", false, false),
            member(1, 0, "v1", true, false),
            member(1, 1, "v1", false, true),
        ];
        // Shard 0's recreated replica is still syncing: shard 1 waits.
        let d = run_replicated(&pods, 2, &[]);
        assert_eq!(d.action, Action::None);
        assert!(d.status.current.as_deref().is_some_and(|c| c.contains("c-0-1")), "{d:?}");
        let d = run_replicated(&pods[..3], 2, &[]);
        assert!(d.status.current.as_deref().is_some_and(|c| c.contains("to be created")), "{d:?}");
        let mut gone = pods.clone();
        gone[1].deleting = true;
        assert_eq!(run_replicated(&gone, 2, &[]).action, Action::None);
    }

    #[test]
    fn with_replicas_a_primary_on_a_node_being_removed_hands_over_first() {
        let pods = [member(0, 0, "v2", true, false), member(0, 1, "v2", false, true)];
        let d = run_replicated(&pods, 1, &["node-0"]);
        // Both pods of the shard run on node-0 in this fixture: the replica moves first.
        assert!(matches!(&d.action, Action::RecreateReplica { why, .. } if why.contains("node-0")), "{d:?}");
        let mut moved = pods.clone();
        moved[1].node = Some("node-9".into());
        assert_eq!(
            run_replicated(&moved, 1, &["node-0"]).action,
            Action::Failover { ordinal: 0, pod: "c-0-1".into() }
        );
    }

    #[test]
    fn up_to_date_pods_need_nothing() {
        let d = run(&[pod(0, "v2"), pod(1, "v2")], 2, true, &[0, 1], &[]);
        assert_eq!(d.action, Action::None);
        assert_eq!((d.status.updated, d.status.outdated), (2, 0));
        assert_eq!(d.exclude, None);
    }

    #[test]
    fn the_lowest_outdated_shard_is_marked_only_on_a_converged_cluster() {
        let pods = [pod(0, "v2"), pod(1, "v1"), pod(2, "v1")];
        let d = run(&pods, 3, false, &[0, 1, 2], &[]);
        assert_eq!(d.action, Action::None);
        assert_eq!(d.status.outdated, 2);
        let d = run(&pods, 3, true, &[0, 1, 2], &[]);
        assert!(matches!(&d.action, Action::Mark { ordinal: 1, why, .. } if why.contains("v1")), "{d:?}");
        assert_eq!(d.exclude, Some(1));
    }

    #[test]
    fn a_marked_shard_drains_then_its_pod_is_recreated() {
        let mut p1 = pod(1, "v1");
        p1.drain_since = Some(now());
        let pods = [pod(0, "v2"), p1.clone(), pod(2, "v1")];
        // Still named in the topology: keep draining, excluded.
        let d = run(&pods, 3, true, &[0, 1, 2], &[]);
        assert_eq!((d.action.clone(), d.exclude), (Action::None, Some(1)));
        // Gone from the topology on a converged cluster: recreate.
        let d = run(&pods, 3, true, &[0, 2], &[]);
        assert_eq!(d.action, Action::Recreate { ordinal: 1, pod: "c-1-0".into() });
    }

    #[test]
    fn a_slow_drain_pauses_with_a_reason() {
        let mut p1 = pod(1, "v1");
        p1.drain_since = Some(now() - SignedDuration::from_secs(STEP_TIMEOUT.as_secs() as i64 + 1));
        let d = run(&[pod(0, "v2"), p1], 2, false, &[0, 1], &[]);
        assert!(d.status.paused.as_deref().is_some_and(|p| p.contains("draining")), "{d:?}");
    }

    #[test]
    fn a_pod_on_a_node_being_removed_is_drained_like_an_outdated_one() {
        let d = run(&[pod(0, "v2"), pod(1, "v2")], 2, true, &[0, 1], &["node-0"]);
        assert!(matches!(&d.action, Action::Mark { ordinal: 0, why, .. } if why.contains("node-0")), "{d:?}");
    }

    #[test]
    fn a_single_shard_pauses_instead_of_losing_its_keys() {
        let d = run(&[pod(0, "v1")], 1, true, &[0], &[]);
        assert_eq!(d.action, Action::None);
        assert!(d.status.paused.as_deref().is_some_and(|p| p.contains("single shard")));
    }
}
