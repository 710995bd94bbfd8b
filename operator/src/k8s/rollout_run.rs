//! Carries out the one rollout action [`super::rollout::decide`] chose this reconcile: mark a
//! shard for drain, delete a drained shard's pod, delete a replica pod, or hand a shard's primary
//! over to a replica with a planned failover. Kept apart from the pure decision so that the
//! decision is unit-tested without an API server, and apart from the reconciler so that each
//! file stays readable.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use kube::runtime::events::EventType;

use super::control::ClusterState;
use super::crd::ShoalCluster;
use super::error::Result;
use super::pods;
use super::reconcile::Context;
use super::resources as res;
use super::rollout::{Action, Decision, ShardPod};
use crate::controlplane::driver::StepReport;

/// Does `decision.action`. Pods deleted are dropped from `shard_pods`; a planned failover that
/// succeeded swaps the primary mark in `views`, so the serving label follows the new primary in
/// this same reconcile (the new primary is protected by the PodDisruptionBudget at once).
#[allow(clippy::too_many_arguments)]
pub async fn carry_out(
    sc: &ShoalCluster,
    ctx: &Context,
    ns: &str,
    st: &mut ClusterState,
    report: &StepReport,
    decision: &Decision,
    shard_pods: &mut BTreeMap<(u32, u32), Pod>,
    views: &mut [ShardPod],
) -> Result<()> {
    match &decision.action {
        Action::None => {}
        Action::Mark { ordinal, pod, why } => {
            pods::mark_drain(ctx, ns, pod).await?;
            ctx.event(
                sc,
                EventType::Normal,
                "RolloutDrain",
                format!("pod {pod} needs recreating ({why}): draining shard {ordinal}'s slots to the other shards first"),
            )
            .await;
        }
        Action::Recreate { ordinal, pod } => {
            pods::recreate(ctx, ns, pod).await?;
            shard_pods.retain(|_, p| p.metadata.name.as_deref() != Some(pod.as_str()));
            ctx.metrics.pods_recreated.inc();
            ctx.event(
                sc,
                EventType::Normal,
                "RolloutRecreate",
                format!("shard {ordinal} owns no slots: deleted pod {pod}; it comes back with the new template and takes slots back"),
            )
            .await;
        }
        Action::RecreateReplica { ordinal, pod, why } => {
            pods::recreate(ctx, ns, pod).await?;
            shard_pods.retain(|_, p| p.metadata.name.as_deref() != Some(pod.as_str()));
            ctx.metrics.pods_recreated.inc();
            ctx.event(
                sc,
                EventType::Normal,
                "RolloutRecreate",
                format!("shard {ordinal}: deleted replica pod {pod} ({why}); the rollout waits until it is back and in sync"),
            )
            .await;
        }
        Action::Failover { ordinal, pod } => {
            let Some(member) = views.iter().find(|v| &v.name == pod).map(|v| v.member) else {
                return Ok(());
            };
            let addr = res::member_addr(sc, *ordinal, member, &ctx.defaults);
            let (shard, _) = res::desired_shard(sc, *ordinal, &ctx.defaults);
            let Some(to) = report.observed.nodes.iter().find(|o| o.addr == addr).and_then(|o| o.id.clone())
            else {
                return Ok(());
            };
            match st.control.planned_failover(&report.observed, &shard, &to).await {
                Ok(rec) => {
                    for v in views.iter_mut().filter(|v| v.ordinal == *ordinal) {
                        v.primary = v.member == member;
                        v.in_sync = false;
                    }
                    ctx.metrics.record_failover(&rec);
                    ctx.event(
                        sc,
                        EventType::Normal,
                        "RolloutFailover",
                        format!(
                            "shard {ordinal}: primary handed over to pod {pod} before its old pod is recreated (writes paused {} ms, epoch {})",
                            rec.recovered_in.as_millis(),
                            rec.epoch
                        ),
                    )
                    .await;
                }
                Err(e) => {
                    ctx.event(
                        sc,
                        EventType::Warning,
                        "RolloutFailoverFailed",
                        format!("shard {ordinal}: planned failover to pod {pod} failed, nothing changed; retrying: {e}"),
                    )
                    .await;
                }
            }
        }
    }
    Ok(())
}
