//! Pure construction of `ShoalCluster.status` from the control plane's step report: conditions
//! with `observedGeneration`, per-shard slots and pods, migrations in flight and the autoscaler's
//! view. A condition keeps its `lastTransitionTime` while its status does not change, so status
//! writes are stable and server-side apply sees no change on a quiet cluster.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

use super::crd::{
    AutoscalingStatus, MigrationJobStatus, MigrationStatus, ShardStatus, ShoalCluster, ShoalClusterStatus,
    StuckActionStatus,
};
use super::resources::{desired_shard, member_addr, Defaults, Names};
use crate::controlplane::driver::{Phase, StepReport};
use crate::controlplane::model::{ShardId, SLOT_COUNT};
use crate::controlplane::rollout::RolloutStatus;

/// Everything the status is made of.
pub struct StatusInput<'a> {
    pub sc: &'a ShoalCluster,
    pub defaults: &'a Defaults,
    /// The last control-plane step, if one ran.
    pub report: Option<&'a StepReport>,
    /// Ordinals beyond `spec.shards` whose StatefulSets still exist (being drained).
    pub draining: &'a [u32],
    pub autoscaling: Option<AutoscalingStatus>,
    /// Why this reconcile could not do its job, if it could not.
    pub error: Option<String>,
    /// Updated/outdated pods and the rollout step, when the pods were read.
    pub rollout: Option<&'a RolloutStatus>,
    pub now: Timestamp,
}

/// Condition types, in the order they appear.
pub const CONDITIONS: [&str; 8] = [
    "Ready",
    "Progressing",
    "Degraded",
    "SlotsAssigned",
    "Rebalancing",
    "Autoscaling",
    "RollingOut",
    "Stuck",
];

fn phase_name(p: &Phase) -> &'static str {
    match p {
        Phase::Converged => "Converged",
        Phase::Progressing => "Progressing",
        Phase::Migrating => "Migrating",
        Phase::Waiting => "Waiting",
    }
}

/// Sets condition `type_` in `out`, keeping the previous transition time if the status is the same.
fn set(
    out: &mut Vec<Condition>,
    prev: &[Condition],
    (type_, ok, reason, message): (&str, bool, &str, String),
    generation: Option<i64>,
    now: Timestamp,
) {
    let status = if ok { "True" } else { "False" };
    let since = prev
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or(Time(now));
    out.push(Condition {
        type_: type_.into(),
        status: status.into(),
        reason: reason.into(),
        message,
        observed_generation: generation,
        last_transition_time: since,
    });
}

/// The ordinal of a shard id, among the ordinals the cluster may have.
fn ordinal_of(sc: &ShoalCluster, d: &Defaults, id: &ShardId, upto: u32) -> Option<u32> {
    (0..upto).find(|&i| &desired_shard(sc, i, d).0 == id)
}

/// The whole status.
pub fn build(input: &StatusInput<'_>) -> ShoalClusterStatus {
    let sc = input.sc;
    let n = Names::of(sc);
    let desired = sc.desired_shards();
    let generation = sc.metadata.generation;
    let prev = sc.status.as_ref().map(|s| s.conditions.as_slice()).unwrap_or_default();
    let topo = input.report.and_then(|r| r.observed.topology.as_ref());
    let upto = desired.max(input.draining.iter().map(|o| o + 1).max().unwrap_or(0));

    // Per shard: every desired ordinal and every draining one, with what the topology says.
    let mut shards = Vec::new();
    for ordinal in (0..desired).chain(input.draining.iter().copied()) {
        let (id, first) = desired_shard(sc, ordinal, input.defaults);
        let owned = topo.and_then(|t| t.shard(&id)).map(|s| s.slots.clone()).unwrap_or_default();
        // The pod whose node is the shard's primary now (pod 0 until a failover moves it).
        let primary = topo.and_then(|t| t.shard(&id)).and_then(|s| s.primary());
        let (member, addr) = (0..=sc.spec.replicas_per_shard.max(0) as u32)
            .map(|m| (m, member_addr(sc, ordinal, m, input.defaults)))
            .find(|(_, a)| primary.is_some_and(|p| p.at(a)))
            .unwrap_or((0, first));
        let reachable =
            input.report.is_some_and(|r| r.observed.nodes.iter().any(|o| o.addr == addr && o.reachable()));
        shards.push(ShardStatus {
            ordinal: ordinal as i32,
            id: id.0,
            pod: n.member_pod(ordinal, member),
            endpoint: format!("{}:{}", addr.hostname.unwrap_or(addr.ip), addr.port),
            slots: owned.iter().map(ToString::to_string).collect(),
            slot_count: owned.iter().map(|r| r.len()).sum::<usize>() as i32,
            reachable,
            draining: ordinal >= desired,
        });
    }
    let owning = topo.map_or(0, |t| t.shards.iter().filter(|s| !s.slots.is_empty()).count()) as i32;
    let assigned = topo.map_or(0, |t| t.covered_slots()) as i32;
    let all_assigned = assigned == i32::from(SLOT_COUNT);
    let unreachable: Vec<&ShardStatus> = shards.iter().filter(|s| !s.reachable).collect();
    let owners_reachable = shards.iter().filter(|s| s.slot_count > 0).all(|s| s.reachable);
    // Topology shards the operator cannot place (another cluster's ids?) still count as owners.
    let stray = topo.map_or(0, |t| {
        t.shards.iter().filter(|s| ordinal_of(sc, input.defaults, &s.id, upto).is_none()).count()
    });

    let running = input.report.map_or(0, |r| r.running.len());
    let to_move = input.report.map_or(0, |r| r.slots_to_move);
    let phase = input.report.map(|r| phase_name(&r.phase));
    let converged = input.report.is_some_and(|r| r.phase == Phase::Converged)
        && owning == desired as i32
        && input.draining.is_empty();

    let unserved = input.report.map_or(0, |r| r.unserved_slots);
    let mut conds = Vec::new();
    let now = input.now;
    let ready = all_assigned && owners_reachable && unserved == 0 && input.error.is_none();
    set(
        &mut conds,
        prev,
        (
            "Ready",
            ready,
            if ready { "ClusterServing" } else { "NotServing" },
            if ready {
                format!("all {SLOT_COUNT} slots are served by {owning} shard(s)")
            } else if let Some(e) = &input.error {
                e.clone()
            } else {
                format!(
                    "{assigned} of {SLOT_COUNT} slots assigned, {unserved} unserved; {} shard(s) unreachable",
                    unreachable.len()
                )
            },
        ),
        generation,
        now,
    );
    set(
        &mut conds,
        prev,
        (
            "Progressing",
            !converged,
            if converged { "Converged" } else { phase.unwrap_or("Pending") },
            format!("{owning} of {desired} shard(s) own slots; {} draining", input.draining.len()),
        ),
        generation,
        now,
    );
    let degraded = input.error.is_some() || !unreachable.is_empty() || stray > 0 || unserved > 0;
    set(
        &mut conds,
        prev,
        (
            "Degraded",
            degraded,
            if input.error.is_some() {
                "ReconcileError"
            } else if unserved > 0 {
                "SlotsUnserved"
            } else if !unreachable.is_empty() {
                "NodesUnreachable"
            } else if stray > 0 {
                "UnknownShards"
            } else {
                "AsExpected"
            },
            match (&input.error, unreachable.is_empty()) {
                (Some(e), _) => e.clone(),
                (None, _) if unserved > 0 => format!(
                    "{unserved} slot(s) unserved: their primary does not answer or is marked failed{}",
                    if unreachable.is_empty() {
                        String::new()
                    } else {
                        format!(
                            " (unreachable: {})",
                            unreachable.iter().map(|s| s.pod.as_str()).collect::<Vec<_>>().join(", ")
                        )
                    }
                ),
                (None, false) => format!(
                    "unreachable: {}",
                    unreachable.iter().map(|s| s.pod.as_str()).collect::<Vec<_>>().join(", ")
                ),
                (None, true) if stray > 0 => {
                    format!("{stray} shard(s) in the topology are not this cluster's")
                }
                _ => "every node answers".into(),
            },
        ),
        generation,
        now,
    );
    set(
        &mut conds,
        prev,
        (
            "SlotsAssigned",
            all_assigned,
            if all_assigned { "AllSlotsAssigned" } else { "SlotsUnassigned" },
            format!("{assigned} of {SLOT_COUNT} slots assigned"),
        ),
        generation,
        now,
    );
    let rebalancing = running > 0 || to_move > 0;
    set(
        &mut conds,
        prev,
        (
            "Rebalancing",
            rebalancing,
            if running > 0 {
                "Migrating"
            } else if to_move > 0 {
                "Pending"
            } else {
                "Balanced"
            },
            format!("{running} migration(s) running, {to_move} slot(s) to move"),
        ),
        generation,
        now,
    );
    let a = sc.spec.autoscaling.as_ref();
    let enabled = a.is_some_and(|a| a.enabled);
    set(
        &mut conds,
        prev,
        (
            "Autoscaling",
            enabled,
            match a {
                Some(a) if a.enabled && a.recommend_only => "RecommendOnly",
                Some(a) if a.enabled => "Active",
                _ => "Disabled",
            },
            input.autoscaling.as_ref().and_then(|s| s.reason.clone()).unwrap_or_else(|| {
                if enabled {
                    "waiting for metrics".into()
                } else {
                    "autoscaling is off".into()
                }
            }),
        ),
        generation,
        now,
    );

    let ro = input.rollout.cloned().unwrap_or_default();
    let rolling = ro.current.is_some() || ro.outdated > 0;
    set(
        &mut conds,
        prev,
        (
            "RollingOut",
            rolling,
            if ro.paused.is_some() {
                "RolloutPaused"
            } else if ro.current.is_some() {
                "RollingOut"
            } else if ro.outdated > 0 {
                "Pending"
            } else {
                "UpToDate"
            },
            match (&ro.paused, &ro.current) {
                (Some(p), _) => format!("paused: {p}"),
                (None, Some(c)) => format!("{c}; {} pod(s) updated, {} outdated", ro.updated, ro.outdated),
                (None, None) => format!("{} pod(s) updated, {} outdated", ro.updated, ro.outdated),
            },
        ),
        generation,
        now,
    );
    let stuck = input.report.map(|r| r.stuck.as_slice()).unwrap_or_default();
    set(
        &mut conds,
        prev,
        (
            "Stuck",
            !stuck.is_empty(),
            if stuck.is_empty() { "NothingStuck" } else { "ActionsFailing" },
            if stuck.is_empty() {
                "no control-plane action keeps failing".into()
            } else {
                stuck
                    .iter()
                    .map(|s| {
                        format!(
                            "{} ({} failures over {}s: {})",
                            s.action, s.failures, s.failing_for_secs, s.last_error
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            },
        ),
        generation,
        now,
    );

    ShoalClusterStatus {
        unserved_slots: unserved as i32,
        updated_pods: ro.updated as i32,
        outdated_pods: ro.outdated as i32,
        stuck_actions: stuck
            .iter()
            .map(|s| StuckActionStatus {
                action: s.action.clone(),
                failures: s.failures as i32,
                failing_for_seconds: s.failing_for_secs as i64,
                last_error: s.last_error.clone(),
            })
            .collect(),
        observed_generation: generation,
        conditions: conds,
        shards: owning,
        selector: n.selector(),
        phase: phase.map(str::to_string),
        slots_assigned: assigned,
        epoch: topo.map_or(0, |t| t.epoch) as i64,
        shard_status: shards,
        migration: input.report.filter(|r| rebalancing && r.slots_to_move + r.running.len() > 0).map(|r| {
            MigrationStatus {
                slots_to_move: r.slots_to_move as i32,
                jobs: r
                    .running
                    .iter()
                    .map(|j| MigrationJobStatus {
                        name: j.name.clone(),
                        source_node: j.source_node.0.clone(),
                        target_node: j.target_node.0.clone(),
                        slots: j.slots.iter().map(ToString::to_string).collect(),
                    })
                    .collect(),
            }
        }),
        autoscaling: input.autoscaling.clone(),
        endpoint: Some(format!("{}.{}.svc:{}", n.client(), n.namespace, sc.spec.port)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::k8s::fixtures::cluster;

    fn at(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    fn input<'a>(sc: &'a ShoalCluster, defaults: &'a Defaults, now: Timestamp) -> StatusInput<'a> {
        StatusInput {
            sc,
            defaults,
            report: None,
            draining: &[],
            autoscaling: None,
            error: None,
            rollout: None,
            now,
        }
    }

    fn ready_since(st: &ShoalClusterStatus) -> Timestamp {
        st.conditions.iter().find(|c| c.type_ == "Ready").expect("Ready").last_transition_time.0
    }

    #[test]
    fn transition_times_hold_while_a_condition_keeps_its_status() {
        let mut sc = cluster("c", 2);
        let d = Defaults::default();
        let first = build(&input(&sc, &d, at("2026-01-01T00:00:00Z")));
        assert_eq!(first.conditions.len(), CONDITIONS.len());
        assert!(first.conditions.iter().all(|c| c.observed_generation == Some(1)));
        sc.status = Some(first);
        // Same statuses later: times do not move, so a quiet cluster's status is a no-op apply.
        let second = build(&input(&sc, &d, at("2026-01-01T01:00:00Z")));
        assert_eq!(ready_since(&second), at("2026-01-01T00:00:00Z"));
        sc.status = Some(second);
        // A new reason with the same status keeps the time (Degraded was already True: no node
        // answered); a flip (autoscaling turned on) takes the new time.
        sc.spec.autoscaling = Some(
            serde_json::from_value(
                serde_json::json!({"enabled": true, "maxShards": 4, "targetCPUPercent": 60}),
            )
            .expect("autoscaling"),
        );
        let mut failing = input(&sc, &d, at("2026-01-01T02:00:00Z"));
        failing.error = Some("boom".into());
        let third = build(&failing);
        let cond = |t: &str| third.conditions.iter().find(|c| c.type_ == t).expect("condition").clone();
        let degraded = cond("Degraded");
        assert_eq!((degraded.status.as_str(), degraded.reason.as_str()), ("True", "ReconcileError"));
        assert_eq!(degraded.last_transition_time.0, at("2026-01-01T00:00:00Z"));
        let auto = cond("Autoscaling");
        assert_eq!((auto.status.as_str(), auto.reason.as_str()), ("True", "Active"));
        assert_eq!(auto.last_transition_time.0, at("2026-01-01T02:00:00Z"));
        assert_eq!(ready_since(&third), at("2026-01-01T00:00:00Z"), "Ready was already False");
    }

    #[test]
    fn without_a_report_nothing_is_ready_or_assigned() {
        let sc = cluster("c", 3);
        let d = Defaults::default();
        let st = build(&StatusInput {
            sc: &sc,
            defaults: &d,
            report: None,
            draining: &[],
            autoscaling: None,
            error: None,
            rollout: None,
            now: Timestamp::UNIX_EPOCH,
        });
        assert_eq!((st.shards, st.slots_assigned, st.epoch), (0, 0, 0));
        assert_eq!(st.shard_status.len(), 3);
        assert!(st.shard_status.iter().all(|s| !s.reachable && s.slot_count == 0));
        let status_of = |t: &str| st.conditions.iter().find(|c| c.type_ == t).map(|c| c.status.clone());
        assert_eq!(status_of("Ready").as_deref(), Some("False"));
        assert_eq!(status_of("Progressing").as_deref(), Some("True"));
        assert_eq!(st.endpoint.as_deref(), Some("c.default.svc:6379"));
    }
}
