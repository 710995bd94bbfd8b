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

use std::collections::{HashMap, HashSet};

use k8s_openapi::jiff::{SignedDuration, Timestamp};

use crate::controlplane::rollout::RolloutStatus;

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

/// A shard's primary pod as the rollout sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShardPod {
    pub ordinal: u32,
    pub name: String,
    pub revision: Option<String>,
    pub node: Option<String>,
    /// When the drain mark was set, if it is.
    pub drain_since: Option<Timestamp>,
    /// The pod is being deleted.
    pub deleting: bool,
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
    let desired: Vec<&ShardPod> = input.pods.iter().filter(|p| p.ordinal < input.shards).collect();
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
            converged,
            in_topology: &in_topology,
            now: now(),
        })
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
