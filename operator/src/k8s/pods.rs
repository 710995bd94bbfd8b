//! The operator's hands on shard pods: reading them (with their StatefulSets' update revisions
//! and the Nodes being removed) for [`super::rollout`], marking and recreating them, and keeping
//! each pod's readiness gate and `shoal.dev/serving` label in step with what its node serves.
//!
//! Why the label: the PodDisruptionBudget admits no eviction of a pod labelled serving, so a
//! voluntary disruption (`kubectl drain`, a node group upgrade) waits until the operator has
//! drained that shard, and the readiness gate keeps the client Service on pods that serve.

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
use crate::controlplane::model::NodeId;

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

/// The cluster's primary pods (`<cluster>-<ordinal>-0`), by ordinal.
pub async fn shard_pods(sc: &ShoalCluster, ctx: &Context, ns: &str) -> Result<BTreeMap<u32, Pod>> {
    let n = Names::of(sc);
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    let lp = ListParams::default().labels(&format!("app.kubernetes.io/instance={}", n.cluster));
    let list = pods.list(&lp).await.map_err(kerr("list Pods"))?;
    Ok(list
        .items
        .into_iter()
        .filter_map(|p| {
            let o: u32 = p.labels().get(SHARD_LABEL)?.parse().ok()?;
            (p.name_any() == n.pod(o)).then_some((o, p))
        })
        .collect())
}

/// The rollout's view of a pod.
pub fn shard_pod(ordinal: u32, p: &Pod) -> ShardPod {
    ShardPod {
        ordinal,
        name: p.name_any(),
        revision: p.labels().get(REVISION_LABEL).cloned(),
        node: p.spec.as_ref().and_then(|s| s.node_name.clone()),
        drain_since: p.annotations().get(DRAIN_ANNOTATION).and_then(|t| t.parse().ok()),
        deleting: p.metadata.deletion_timestamp.is_some(),
    }
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

/// True when the node answering at shard `ordinal`'s address is the primary the topology names
/// for it, owns slots, and is not marked failed.
pub fn serves(sc: &ShoalCluster, ctx: &Context, r: &StepReport, ordinal: u32) -> bool {
    let (id, addr) = res::desired_shard(sc, ordinal, &ctx.defaults);
    let Some(shard) = r.observed.topology.as_ref().and_then(|t| t.shard(&id)) else { return false };
    let Some(primary) = shard.primary() else { return false };
    let answering: Option<&NodeId> =
        r.observed.nodes.iter().find(|o| o.addr == addr && o.reachable()).and_then(|o| o.id.as_ref());
    !shard.slots.is_empty() && !primary.fail && answering == Some(&primary.id)
}

/// Sets each primary pod's `shoal.dev/slots-owned` condition and `shoal.dev/serving` label when
/// they differ from what its node serves, so the client Service routes only to serving pods and
/// the PodDisruptionBudget protects exactly those.
pub async fn sync_serving(
    sc: &ShoalCluster,
    ctx: &Context,
    ns: &str,
    r: &StepReport,
    pods: &BTreeMap<u32, Pod>,
) -> Result<()> {
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    for (&ordinal, pod) in pods {
        let owns = serves(sc, ctx, r, ordinal);
        let want = if owns { "True" } else { "False" };
        let have = pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == SLOTS_READINESS_GATE))
            .map(|c| c.status.as_str());
        if have != Some(want) {
            let patch = json!({ "status": { "conditions": [{
                "type": SLOTS_READINESS_GATE,
                "status": want,
                "reason": if owns { "OwnsSlots" } else { "NoSlots" },
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
