//! The operator's hands on shard pods: reading them (with their StatefulSets' update revisions
//! and the Nodes being removed) for [`super::rollout`], marking and recreating them, and keeping
//! each pod's readiness gate and `shoal.dev/serving` label in step with what its node serves.
//!
//! Why the label: the PodDisruptionBudget admits no eviction of a pod labelled serving, so a
//! voluntary disruption (`kubectl drain`, a node group upgrade) waits until the operator has
//! drained that shard (no replicas) or handed its primary over to a replica (with replicas), and
//! the readiness gate keeps the client Service on pods that serve.
//!
//! The label follows the node that *is* the shard's primary in the observed topology, whichever
//! pod of the StatefulSet runs it: after a failover the new primary is protected and the old one
//! no longer is. Replica pods are never labelled serving: evicting one loses no data (the
//! primary holds every write, and the replica resyncs when it is back), so a shard may lose its
//! replica pod to a drain while its primary keeps serving. A replica pod is Ready (its gate
//! True) while it is in sync: it answers reads and redirects writes with `MOVED`.

use std::collections::{BTreeMap, HashMap, HashSet};

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::ResourceExt;
use serde_json::json;

use super::crd::ShoalCluster;
use super::error::{kube as kerr, Result};
use super::reconcile::Context;
use super::resources::{self as res, Names, SHARD_LABEL, SLOTS_READINESS_GATE};
use super::rollout::{ShardPod, DRAIN_ANNOTATION, REMOVAL_TAINTS, REVISION_LABEL};
use crate::controlplane::driver::StepReport;
use crate::controlplane::failover;
use crate::controlplane::model::Role;

pub use super::resources::SERVING_LABEL;

/// Shard ordinal → `status.updateRevision` of the cluster's StatefulSets that report one.
pub fn update_revisions(list: &[StatefulSet]) -> HashMap<u32, String> {
    list.iter()
        .filter_map(|s| {
            let o = s.labels().get(SHARD_LABEL)?.parse().ok()?;
            Some((o, s.status.as_ref()?.update_revision.clone()?))
        })
        .collect()
}

/// Every pod of the cluster's shards (`<cluster>-<ordinal>-<member>`), by (ordinal, member).
pub async fn shard_pods(sc: &ShoalCluster, ctx: &Context, ns: &str) -> Result<BTreeMap<(u32, u32), Pod>> {
    let n = Names::of(sc);
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    let lp = ListParams::default().labels(&format!("app.kubernetes.io/instance={}", n.cluster));
    let list = pods.list(&lp).await.map_err(kerr("list Pods"))?;
    Ok(list
        .items
        .into_iter()
        .filter_map(|p| {
            let o: u32 = p.labels().get(SHARD_LABEL)?.parse().ok()?;
            let name = p.name_any();
            let m: u32 = name.strip_prefix(&format!("{}-", n.statefulset(o)))?.parse().ok()?;
            Some(((o, m), p))
        })
        .collect())
}

/// The rollout's view of a pod, before the control-plane step fills in its node's role
/// ([`observe_roles`]).
pub fn shard_pod(ordinal: u32, member: u32, p: &Pod) -> ShardPod {
    ShardPod {
        ordinal,
        member,
        name: p.name_any(),
        revision: p.labels().get(REVISION_LABEL).cloned(),
        node: p.spec.as_ref().and_then(|s| s.node_name.clone()),
        drain_since: p.annotations().get(DRAIN_ANNOTATION).and_then(|t| t.parse().ok()),
        deleting: p.metadata.deletion_timestamp.is_some(),
        ..ShardPod::default()
    }
}

/// Fills in what each pod's node is in the observed topology: answering and listed in its
/// shard, the shard's primary (not marked failed), an in-sync replica.
pub fn observe_roles(views: &mut [ShardPod], sc: &ShoalCluster, ctx: &Context, r: &StepReport) {
    let topo = r.observed.topology.as_ref();
    for v in views {
        let addr = res::member_addr(sc, v.ordinal, v.member, &ctx.defaults);
        let (shard_id, _) = res::desired_shard(sc, v.ordinal, &ctx.defaults);
        let id = r.observed.nodes.iter().find(|o| o.addr == addr && o.reachable()).and_then(|o| o.id.clone());
        let entry = topo
            .and_then(|t| t.shard(&shard_id))
            .and_then(|s| s.nodes.iter().find(|n| id.as_ref() == Some(&n.id)));
        v.reachable = entry.is_some();
        v.primary = entry.is_some_and(|n| n.role == Role::Primary && !n.fail);
        v.in_sync = match (topo, &id) {
            (Some(t), Some(id)) if !v.primary => failover::in_sync(t, &r.observed.nodes, id),
            _ => false,
        };
    }
}

/// True when the node of pod `v` is its shard's primary and the shard owns slots: what the
/// `shoal.dev/serving` label (and so the PodDisruptionBudget) protects.
pub fn serves(sc: &ShoalCluster, ctx: &Context, r: &StepReport, v: &ShardPod) -> bool {
    let (id, _) = res::desired_shard(sc, v.ordinal, &ctx.defaults);
    v.primary && r.observed.topology.as_ref().and_then(|t| t.shard(&id)).is_some_and(|s| !s.slots.is_empty())
}

/// Nodes cordoned (`spec.unschedulable`) or tainted for removal. Reading Nodes needs the
/// cluster-scoped `get/list nodes` the chart grants; without it, this says so once per
/// reconcile in the log and returns none (rollouts still work; drains of Nodes are not seen).
pub async fn removing_nodes(ctx: &Context) -> HashSet<String> {
    let nodes: Api<Node> = Api::all(ctx.client.clone());
    match nodes.list(&ListParams::default()).await {
        Ok(list) => list
            .items
            .iter()
            .filter(|n| {
                let spec = n.spec.as_ref();
                spec.and_then(|s| s.unschedulable).unwrap_or(false)
                    || spec.and_then(|s| s.taints.as_ref()).is_some_and(|ts| {
                        ts.iter().any(|t| {
                            REMOVAL_TAINTS.contains(&t.key.as_str()) && t.effect != "PreferNoSchedule"
                        })
                    })
            })
            .map(|n| n.name_any())
            .collect(),
        Err(e) => {
            tracing::debug!(error = %e, "listing Nodes failed; Node drains are not followed");
            HashSet::new()
        }
    }
}

/// Sets the drain mark on `pod` (the time it was set, RFC 3339).
pub async fn mark_drain(ctx: &Context, ns: &str, pod: &str) -> Result<()> {
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    let patch = json!({ "metadata": { "annotations": { DRAIN_ANNOTATION: (ctx.now)().to_string() } } });
    pods.patch(pod, &PatchParams::default(), &Patch::Merge(patch))
        .await
        .map_err(kerr("mark Pod for drain"))?;
    Ok(())
}

/// Deletes `pod` (its StatefulSet recreates it from the current template).
pub async fn recreate(ctx: &Context, ns: &str, pod: &str) -> Result<()> {
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    match pods.delete(pod, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(kerr("delete drained Pod")(e)),
    }
}

/// Sets each pod's `shoal.dev/slots-owned` condition and `shoal.dev/serving` label when they
/// differ from what its node does: the primary of a shard that owns slots is Ready and serving;
/// an in-sync replica is Ready, not serving; anything else is neither. The client Service then
/// routes only to pods that answer for their slots, and the PodDisruptionBudget protects exactly
/// the primaries.
pub async fn sync_serving(
    sc: &ShoalCluster,
    ctx: &Context,
    ns: &str,
    r: &StepReport,
    pods: &BTreeMap<(u32, u32), Pod>,
    views: &[ShardPod],
) -> Result<()> {
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    for v in views {
        let Some(pod) = pods.get(&(v.ordinal, v.member)) else { continue };
        let owns = serves(sc, ctx, r, v);
        let ready = owns || v.in_sync;
        let want = if ready { "True" } else { "False" };
        let have = pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == SLOTS_READINESS_GATE))
            .map(|c| c.status.as_str());
        if have != Some(want) {
            let reason = match (owns, v.in_sync) {
                (true, _) => "OwnsSlots",
                (false, true) => "InSyncReplica",
                _ => "NoSlots",
            };
            let patch = json!({ "status": { "conditions": [{
                "type": SLOTS_READINESS_GATE,
                "status": want,
                "reason": reason,
                "lastTransitionTime": (ctx.now)().to_string(),
            }]}});
            api.patch_status(&pod.name_any(), &PatchParams::default(), &Patch::Strategic(patch))
                .await
                .map_err(kerr("patch Pod readiness condition"))?;
        }
        let label = if owns { "true" } else { "false" };
        if pod.labels().get(SERVING_LABEL).map(String::as_str) != Some(label) {
            let patch = json!({ "metadata": { "labels": { SERVING_LABEL: label } } });
            api.patch(&pod.name_any(), &PatchParams::default(), &Patch::Merge(patch))
                .await
                .map_err(kerr("patch Pod serving label"))?;
        }
    }
    Ok(())
}
