//! Pure construction of `ShoalCluster.status` from the control plane's step report: conditions
//! with `observedGeneration`, per-shard slots and pods, migrations in flight and the autoscaler's
//! view. A condition keeps its `lastTransitionTime` while its status does not change, so status
//! writes are stable and server-side apply sees no change on a quiet cluster.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

use super::crd::{
    AutoscalingStatus, MigrationJobStatus, MigrationStatus, ShardStatus, ShoalCluster, ShoalClusterStatus,
};
use super::resources::{desired_shard, Defaults, Names};
use crate::controlplane::driver::{Phase, StepReport};
use crate::controlplane::model::{ShardId, SLOT_COUNT};

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
    pub now: Timestamp,
}

/// Condition types, in the order they appear.
pub const CONDITIONS: [&str; 6] =
    ["Ready", "Progressing", "Degraded", "SlotsAssigned", "Rebalancing", "Autoscaling"];

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
        let (id, addr) = desired_shard(sc, ordinal, input.defaults);
        let owned = topo.and_then(|t| t.shard(&id)).map(|s| s.slots.clone()).unwrap_or_default();
        let reachable =
            input.report.is_some_and(|r| r.observed.nodes.iter().any(|o| o.addr == addr && o.reachable()));
        shards.push(ShardStatus {
            ordinal: ordinal as i32,
            id: id.0,
            pod: n.pod(ordinal),
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

    let mut conds = Vec::new();
    let now = input.now;
    let ready = all_assigned && owners_reachable && input.error.is_none();
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
                    "{assigned} of {SLOT_COUNT} slots assigned; {} shard(s) unreachable",
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
    let degraded = input.error.is_some() || !unreachable.is_empty() || stray > 0;
    set(
        &mut conds,
        prev,
        (
            "Degraded",
            degraded,
            if input.error.is_some() {
                "ReconcileError"
            } else if !unreachable.is_empty() {
                "NodesUnreachable"
            } else if stray > 0 {
                "UnknownShards"
            } else {
                "AsExpected"
            },
            match (&input.error, unreachable.is_empty()) {
                (Some(e), _) => e.clone(),
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

    ShoalClusterStatus {
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
