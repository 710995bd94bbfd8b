//! The reconciler: one `ShoalCluster` at a time, from its spec to running shards.
//!
//! Each reconcile, inside the finalizer:
//! 1. server-side apply (one field manager, owner references) of the ConfigMap, the headless and
//!    client Services, the PodDisruptionBudget, the optional ServiceMonitor and NetworkPolicy
//!    (deleted when turned off) and one StatefulSet per desired shard;
//! 2. one control-plane step (`controlplane::driver`, the code local mode runs): topology pushes
//!    through the pods' DNS names, slot migrations, draining of shards beyond `spec.shards`;
//! 3. a drained shard's StatefulSet is deleted only once the nodes' topology no longer names it
//!    — never before, so scale-in cannot lose slots;
//! 4. the autoscaler decides from the metrics the step observed, and writes `spec.shards` through
//!    the `/scale` subresource (the same path an HPA or `kubectl scale` uses);
//! 5. each pod's readiness gate and `shoal.dev/serving` label follow what its node is (the
//!    topology's primary of a shard owning slots: serving; an in-sync replica: Ready only), then
//!    status is applied.
//!
//! Rollouts and voluntary disruptions (`rollout`): a pod whose template revision is outdated or
//! whose Node is being removed is recreated, one shard at a time. Without replicas the pod is
//! marked and its shard left out of the desired shards until it has drained, then deleted; with
//! replicas the shard is rolled in place: replica pods first, each back in sync before the next
//! step, then a planned failover, then the old primary's pod.
//!
//! Events mark every disruptive step. The operator's memory per cluster (`ClusterState`) is a
//! cache: the nodes hold the topology, so a restarted operator picks up where the last one was.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, Preconditions};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::finalizer::{finalizer, Event as FinalizerEvent};
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde_json::json;
use tokio::sync::Mutex;

use super::control::{policy, ClusterState, ControlFactory};
use super::crd::{AutoscalingStatus, ScaleDecisionStatus, ShoalCluster, ShoalClusterStatus};
use super::error::{kube as kerr, Error, Result};
use super::metrics::Metrics;
use super::resources::{self as res, Defaults, Names, SHARD_LABEL};
use super::status::{self, StatusInput};
use super::{pods, rollout, rollout_run};
use crate::controlplane::autoscaler::{ScaleAction, ScaleDecision};
use crate::controlplane::driver::{DesiredShard, Phase, StepReport};
use crate::controlplane::membership::Change;
use crate::controlplane::model::{slot_count, MigrationOperation, MigrationState, NodeAddr};
use crate::controlplane::rollout::RolloutStatus;

/// The one field manager of every object the operator applies.
pub const FIELD_MANAGER: &str = "shoal-operator";
/// The finalizer: deletion waits until the operator has forgotten the cluster.
pub const FINALIZER: &str = "shoal.dev/cleanup";
/// Requeue while something moves (migrations, new pods).
pub const REQUEUE_BUSY: Duration = Duration::from_secs(2);
/// Requeue of a quiet cluster: the autoscaler's sampling period.
pub const REQUEUE_IDLE: Duration = Duration::from_secs(10);
/// Requeue after an error.
pub const REQUEUE_ERROR: Duration = Duration::from_secs(5);

/// What every reconcile shares.
pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    pub defaults: Defaults,
    factory: Box<ControlFactory>,
    clusters: StdMutex<HashMap<String, Arc<Mutex<ClusterState>>>>,
    /// The wall clock for status timestamps (fixed in tests).
    pub(super) now: fn() -> Timestamp,
}

impl Context {
    pub fn new(
        client: Client,
        metrics: Arc<Metrics>,
        defaults: Defaults,
        factory: Box<ControlFactory>,
    ) -> Context {
        let recorder = Recorder::new(client.clone(), "shoal-operator".into());
        Context {
            client,
            recorder,
            metrics,
            defaults,
            factory,
            clusters: Default::default(),
            now: Timestamp::now,
        }
    }

    /// Replaces the clock (tests).
    pub fn with_clock(self, now: fn() -> Timestamp) -> Context {
        Context { now, ..self }
    }

    fn state(&self, key: &str) -> Arc<Mutex<ClusterState>> {
        let mut m = self.clusters.lock().unwrap_or_else(|p| p.into_inner());
        m.entry(key.to_string())
            .or_insert_with(|| Arc::new(Mutex::new(ClusterState::new((self.factory)()))))
            .clone()
    }

    fn forget(&self, key: &str) {
        self.clusters.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
    }

    /// Clusters the operator holds control-plane state for.
    pub fn known_clusters(&self) -> Vec<String> {
        let mut v: Vec<String> =
            self.clusters.lock().unwrap_or_else(|p| p.into_inner()).keys().cloned().collect();
        v.sort();
        v
    }

    pub(super) async fn event(&self, sc: &ShoalCluster, type_: EventType, reason: &str, note: String) {
        let ev = Event {
            type_,
            reason: reason.into(),
            note: Some(note.chars().take(1000).collect()),
            action: reason.into(),
            secondary: None,
        };
        // An event that cannot be written must not fail the reconcile that caused it.
        if let Err(e) = self.recorder.publish(&ev, &sc.object_ref(&())).await {
            tracing::warn!(error = %e, reason, "publishing an event failed");
        }
    }
}

/// The controller's reconcile function.
pub async fn reconcile(sc: Arc<ShoalCluster>, ctx: Arc<Context>) -> Result<Action> {
    let ns = sc.namespace().ok_or(Error::Incomplete("namespace"))?;
    let api: Api<ShoalCluster> = Api::namespaced(ctx.client.clone(), &ns);
    let started = Instant::now();
    ctx.metrics.reconciles.inc();
    let r = finalizer(&api, FINALIZER, sc, |ev| async {
        match ev {
            FinalizerEvent::Apply(sc) => apply(sc, ctx.clone()).await,
            FinalizerEvent::Cleanup(sc) => cleanup(sc, ctx.clone()).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)));
    ctx.metrics.duration.observe(started.elapsed().as_secs_f64());
    r
}

/// The controller's error policy: count the failure by kind and retry soon.
pub fn error_policy(sc: Arc<ShoalCluster>, err: &Error, ctx: Arc<Context>) -> Action {
    tracing::warn!(cluster = %sc.name_any(), error = %err, "reconcile failed");
    ctx.metrics.error(err.metric_label());
    Action::requeue(REQUEUE_ERROR)
}

fn key(sc: &ShoalCluster) -> String {
    format!("{}/{}", sc.namespace().unwrap_or_default(), sc.name_any())
}

async fn ssa<K>(api: &Api<K>, name: &str, obj: &K, what: &'static str) -> Result<K>
where
    K: Resource + Clone + Serialize + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.patch(name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(obj)).await.map_err(kerr(what))
}

/// Applies everything but the StatefulSets.
async fn apply_shared(sc: &ShoalCluster, ctx: &Context, ns: &str) -> Result<()> {
    let c = &ctx.client;
    let n = Names::of(sc);
    ssa(&Api::<ConfigMap>::namespaced(c.clone(), ns), &n.config(), &res::config_map(sc), "apply ConfigMap")
        .await?;
    let svcs = Api::<Service>::namespaced(c.clone(), ns);
    ssa(&svcs, &n.headless(), &res::headless_service(sc), "apply headless Service").await?;
    ssa(&svcs, &n.client(), &res::client_service(sc), "apply client Service").await?;
    let pdbs = Api::<PodDisruptionBudget>::namespaced(c.clone(), ns);
    ssa(&pdbs, &n.client(), &res::pod_disruption_budget(sc), "apply PodDisruptionBudget").await?;
    if let Some(sm) = res::service_monitor(sc) {
        let api = Api::<DynamicObject>::namespaced_with(c.clone(), ns, &res::service_monitor_resource());
        let pp = PatchParams::apply(FIELD_MANAGER).force();
        match api.patch(&n.client(), &pp, &Patch::Apply(&sm)).await {
            Ok(_) => {}
            // No prometheus-operator in the cluster: say so, but keep the cache running.
            Err(kube::Error::Api(s)) if s.code == 404 => {
                ctx.event(
                    sc,
                    EventType::Warning,
                    "ServiceMonitorUnavailable",
                    "the ServiceMonitor kind (monitoring.coreos.com/v1) is not installed".into(),
                )
                .await;
            }
            Err(e) => return Err(kerr("apply ServiceMonitor")(e)),
        }
    }
    Ok(())
}

/// Applies the NetworkPolicy while `networkPolicy.enabled`; otherwise removes ours if there is
/// one. Removal checks once per operator lifetime and cluster (`network_policy_absent`), so a
/// cluster that never enabled it costs one GET, not one per reconcile.
async fn sync_network_policy(
    sc: &ShoalCluster,
    ctx: &Context,
    ns: &str,
    st: &mut ClusterState,
) -> Result<()> {
    let api = Api::<NetworkPolicy>::namespaced(ctx.client.clone(), ns);
    let name = Names::of(sc).client();
    if let Some(np) = res::network_policy(sc, &ctx.defaults) {
        ssa(&api, &name, &np, "apply NetworkPolicy").await?;
        st.network_policy_absent = false;
        return Ok(());
    }
    if st.network_policy_absent {
        return Ok(());
    }
    let existing = match api.get_opt(&name).await {
        Ok(np) => np,
        // An installation whose RBAC predates the NetworkPolicy rule: nothing of ours can exist.
        Err(kube::Error::Api(s)) if s.code == 403 => None,
        Err(e) => return Err(kerr("get NetworkPolicy")(e)),
    };
    // Only ours: a same-named policy someone else made is left alone.
    let ours = existing.filter(|np| {
        let uid = sc.uid();
        uid.is_some() && np.owner_references().iter().any(|o| Some(&o.uid) == uid.as_ref())
    });
    if let Some(np) = ours {
        let dp = DeleteParams {
            preconditions: Some(Preconditions { uid: np.uid(), resource_version: None }),
            ..DeleteParams::default()
        };
        match api.delete(&name, &dp).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
            Err(e) => return Err(kerr("delete NetworkPolicy")(e)),
        }
        ctx.event(
            sc,
            EventType::Normal,
            "NetworkPolicyRemoved",
            format!("networkPolicy is off: deleted NetworkPolicy {name}"),
        )
        .await;
    }
    st.network_policy_absent = true;
    Ok(())
}

/// The StatefulSets that exist and belong to this cluster, by shard ordinal.
async fn existing_statefulsets(sc: &ShoalCluster, api: &Api<StatefulSet>) -> Result<Vec<StatefulSet>> {
    let n = Names::of(sc);
    let lp = ListParams::default()
        .labels(&format!("app.kubernetes.io/instance={},app.kubernetes.io/component=node", n.cluster));
    let list = api.list(&lp).await.map_err(kerr("list StatefulSets"))?;
    let uid = sc.uid();
    Ok(list
        .items
        .into_iter()
        // Only those this cluster owns: a same-named cluster recreated since is not ours.
        .filter(|s| uid.is_none() || s.owner_references().iter().any(|o| Some(&o.uid) == uid.as_ref()))
        .filter(|s| s.labels().get(SHARD_LABEL).is_some_and(|o| o.parse::<u32>().is_ok()))
        .collect())
}

async fn apply(sc: Arc<ShoalCluster>, ctx: Arc<Context>) -> Result<Action> {
    let ns = sc.namespace().ok_or(Error::Incomplete("namespace"))?;
    let name = sc.metadata.name.clone().ok_or(Error::Incomplete("name"))?;
    let n = Names::of(&sc);
    apply_shared(&sc, &ctx, &ns).await?;
    let state = ctx.state(&key(&sc));
    sync_network_policy(&sc, &ctx, &ns, &mut *state.lock().await).await?;

    let sts_api = Api::<StatefulSet>::namespaced(ctx.client.clone(), &ns);
    let sts_list = existing_statefulsets(&sc, &sts_api).await?;
    let existing: BTreeSet<u32> =
        sts_list.iter().filter_map(|s| s.labels().get(SHARD_LABEL)?.parse().ok()).collect();
    let revisions = pods::update_revisions(&sts_list);
    let mut shard_pods = pods::shard_pods(&sc, &ctx, &ns).await?;
    let removing = pods::removing_nodes(&ctx).await;
    let mut views: Vec<rollout::ShardPod> =
        shard_pods.iter().map(|(&(o, m), p)| pods::shard_pod(o, m, p)).collect();
    let replicas = sc.spec.replicas_per_shard.max(0) as u32;
    // The shard marked for drain (the mark is on its pod, so it survives an operator restart).
    // Shards with replicas are rolled in place, never drained.
    let drain = views
        .iter()
        .filter(|p| p.drain_since.is_some() && !p.deleting && p.ordinal < sc.desired_shards())
        .filter(|p| replicas == 0 && p.member == 0)
        .map(|p| p.ordinal)
        .min();
    let want = sc.desired_shards();
    for o in 0..want {
        let sts = res::statefulset(&sc, o, &ctx.defaults);
        ssa(&sts_api, &n.statefulset(o), &sts, "apply StatefulSet").await?;
        if !existing.contains(&o) {
            ctx.metrics.shards_added.inc();
            ctx.event(
                &sc,
                EventType::Normal,
                "ShardAdded",
                format!("created StatefulSet {} for shard {o}", n.statefulset(o)),
            )
            .await;
        }
    }
    let mut draining: Vec<u32> = existing.iter().copied().filter(|&o| o >= want).collect();

    let mut st = state.lock().await;
    let owning_before = sc.status.as_ref().map_or(0, |s| s.shards.max(0) as u32);
    if st.last_target.is_some_and(|t| t != want) {
        st.resize_from.get_or_insert(owning_before);
        ctx.event(
            &sc,
            EventType::Normal,
            "Resizing",
            format!("resizing from {owning_before} to {want} shard(s)"),
        )
        .await;
    }
    st.last_target = Some(want);

    let desired: Vec<DesiredShard> = (0..want)
        .filter(|&o| Some(o) != drain)
        .map(|o| {
            let (id, _) = res::desired_shard(&sc, o, &ctx.defaults);
            DesiredShard { id, nodes: res::desired_nodes(&sc, o, &ctx.defaults) }
        })
        .collect();
    let others: Vec<NodeAddr> = draining
        .iter()
        .copied()
        .chain(drain)
        .flat_map(|o| res::desired_nodes(&sc, o, &ctx.defaults))
        .collect();
    let security = match super::security_run::prepare(&sc, &ctx, &ns).await {
        Ok(s) => s,
        Err(err) => {
            drop(st);
            write_status(&sc, &ctx, None, &draining, None, Some(err.to_string()), None).await?;
            return Err(err);
        }
    };
    st.control.set_credentials(security.credentials);
    let report = match st.control.step(&desired, &others).await {
        Ok(r) => r,
        Err(e) => {
            let err = Error::Control(e);
            drop(st);
            write_status(&sc, &ctx, None, &draining, None, Some(err.to_string()), None).await?;
            return Err(err);
        }
    };
    record_steps(&sc, &ctx, &mut st, &report).await;
    // ACL users on every node, after the step so new nodes have been seen.
    let all: Vec<NodeAddr> =
        desired.iter().flat_map(|s| s.nodes.iter().cloned()).chain(others.iter().cloned()).collect();
    let users = st.control.sync_users(&all, &security.users).await;
    for (addr, name) in &users.deleted {
        ctx.event(
            &sc,
            EventType::Normal,
            "UserDeleted",
            format!("deleted ACL user {name} on {addr}: not in spec.users"),
        )
        .await;
    }
    if let Some((addr, why)) = users.failed.first() {
        ctx.event(
            &sc,
            EventType::Warning,
            "UsersNotApplied",
            format!("ACL users not applied on {} node(s), first {addr}: {why}", users.failed.len()),
        )
        .await;
    }

    // Scale-in: a drained shard's StatefulSet goes only once the topology no longer names it.
    if report.phase == Phase::Converged && !draining.is_empty() {
        let gone: Vec<u32> = draining
            .iter()
            .copied()
            .filter(|&o| !report.in_topology(&res::desired_shard(&sc, o, &ctx.defaults).0))
            .collect();
        for o in &gone {
            let dp = DeleteParams::foreground();
            match sts_api.delete(&n.statefulset(*o), &dp).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => return Err(kerr("delete drained StatefulSet")(e)),
            }
            ctx.metrics.shards_removed.inc();
            ctx.event(
                &sc,
                EventType::Normal,
                "ShardRemoved",
                format!("shard {o} owns no slots; deleted StatefulSet {}", n.statefulset(*o)),
            )
            .await;
        }
        draining.retain(|o| !gone.contains(o));
    }
    let now = st.now_secs();
    let owning = owning_shards(&report);
    if report.phase == Phase::Converged && draining.is_empty() {
        if let Some(from) = st.resize_from.take() {
            st.history.resized(from, want, now);
            ctx.event(
                &sc,
                EventType::Normal,
                "Resized",
                format!("{want} shard(s) own all slots (was {from})"),
            )
            .await;
        }
    }
    st.history.record(&report.observed, now);

    // Rollouts and Node drains, one shard at a time: drained before its pod is recreated, or
    // with replicas, in place (replica pods first, a planned failover, the old primary last).
    pods::observe_roles(&mut views, &sc, &ctx, &report);
    let converged = report.phase == Phase::Converged && draining.is_empty() && st.resize_from.is_none();
    let in_topology = |o: u32| report.in_topology(&res::desired_shard(&sc, o, &ctx.defaults).0);
    let decision = rollout::decide(&rollout::Input {
        pods: &views,
        update_revision: &revisions,
        removing_nodes: &removing,
        shards: want,
        replicas,
        converged,
        in_topology: &in_topology,
        now: (ctx.now)(),
    });
    rollout_run::carry_out(&sc, &ctx, &ns, &mut st, &report, &decision, &mut shard_pods, &mut views).await?;
    if let Some(why) = &decision.status.paused {
        ctx.event(&sc, EventType::Warning, "RolloutPaused", why.clone()).await;
    }
    let rolling = decision.exclude.is_some() || decision.status.outdated > 0;
    let autoscaling = autoscale(&sc, &ctx, &mut st, &report, owning, now, rolling).await?;
    drop(st);

    pods::sync_serving(&sc, &ctx, &ns, &report, &shard_pods, &views).await?;
    write_status(&sc, &ctx, Some(&report), &draining, autoscaling, None, Some(&decision.status)).await?;
    tracing::debug!(cluster = %name, phase = ?report.phase, "reconciled");
    Ok(Action::requeue(if report.phase == Phase::Converged && draining.is_empty() && !rolling {
        REQUEUE_IDLE
    } else {
        REQUEUE_BUSY
    }))
}

fn owning_shards(r: &StepReport) -> u32 {
    r.observed.topology.as_ref().map_or(0, |t| t.shards.iter().filter(|s| !s.slots.is_empty()).count() as u32)
}

/// Events and metrics for what the control-plane step did.
async fn record_steps(sc: &ShoalCluster, ctx: &Context, st: &mut ClusterState, r: &StepReport) {
    for j in &r.running {
        if st.started_jobs.insert(j.name.clone()) {
            ctx.metrics.migrations.inc();
            let slots: Vec<String> = j.slots.iter().map(ToString::to_string).collect();
            ctx.event(
                sc,
                EventType::Normal,
                "MigrationStarted",
                format!(
                    "moving slots {} from node {} to node {} (job {})",
                    slots.join(","),
                    j.source_node.0,
                    j.target_node.0,
                    j.name
                ),
            )
            .await;
        }
    }
    let finished = r.observed.nodes.iter().flat_map(|n| &n.migrations);
    for j in
        finished.filter(|j| j.operation == MigrationOperation::Export && j.state == MigrationState::Success)
    {
        if st.counted_jobs.insert(j.name.clone()) {
            ctx.metrics.slots_moved.inc_by(slot_count(&j.slots) as u64);
        }
    }
    ctx.metrics.record_replication(&format!("{}/{}", sc.namespace().unwrap_or_default(), sc.name_any()), r);
    for f in &r.failovers {
        let what = format!(
            "shard {}: {} promoted over {} ({}), epoch {}",
            &f.shard.0[..f.shard.0.len().min(8)],
            &f.new_primary.0[..f.new_primary.0.len().min(8)],
            &f.old_primary.0[..f.old_primary.0.len().min(8)],
            f.cause,
            f.epoch
        );
        ctx.event(sc, EventType::Warning, "Failover", what).await;
    }
    for c in &r.membership {
        let (type_, reason) = match c {
            Change::Replaced { .. } => {
                ctx.metrics.nodes_replaced.inc();
                (EventType::Warning, "NodeReplaced")
            }
            Change::Failed { .. } => {
                ctx.metrics.nodes_failed.inc();
                (EventType::Warning, "NodeFailed")
            }
            Change::Recovered { .. } => (EventType::Normal, "NodeRecovered"),
        };
        ctx.event(sc, type_, reason, c.to_string()).await;
    }
    let stuck_now: HashSet<String> = r.stuck.iter().map(|s| s.action.clone()).collect();
    for s in &r.stuck {
        if st.stuck_reported.insert(s.action.clone()) {
            ctx.metrics.actions_stuck.inc();
            ctx.event(
                sc,
                EventType::Warning,
                "ActionStuck",
                format!(
                    "{} has failed {} time(s) over {}s: {}",
                    s.action, s.failures, s.failing_for_secs, s.last_error
                ),
            )
            .await;
        }
    }
    st.stuck_reported.retain(|a| stuck_now.contains(a));
    let (stuck, unserved) = (r.stuck.len() as i64, r.unserved_slots as i64);
    ctx.metrics.stuck_now.inc_by(stuck - st.gauges.0);
    ctx.metrics.unserved_slots.inc_by(unserved - st.gauges.1);
    st.gauges = (stuck, unserved);
    for a in &r.actions {
        if a.starts_with("pushed topology") {
            ctx.event(sc, EventType::Normal, "TopologyPushed", a.clone()).await;
        } else if a.contains("failed") || a.contains("refusing") {
            ctx.event(sc, EventType::Warning, "ControlPlaneStep", a.clone()).await;
        }
    }
}

fn decision_status(
    d: &ScaleDecision,
    from: u32,
    to: u32,
    applied: bool,
    now: Timestamp,
) -> ScaleDecisionStatus {
    ScaleDecisionStatus {
        time: now.to_string(),
        action: if to > from { "ScaleOut" } else { "ScaleIn" }.into(),
        from_shards: from as i32,
        to_shards: to as i32,
        reason: d.reason.clone(),
        applied,
        figures: d
            .figures
            .iter()
            .map(|f| match f.value {
                Some(v) => format!("{:?} {v:.1}% (target {:.0}%)", f.metric, f.target),
                None => format!("{:?} no data (target {:.0}%)", f.metric, f.target),
            })
            .collect(),
    }
}

/// The autoscaler's turn: shards through `/scale`, `io-threads` through the control plane.
async fn autoscale(
    sc: &ShoalCluster,
    ctx: &Context,
    st: &mut ClusterState,
    r: &StepReport,
    owning: u32,
    now: u64,
    rolling: bool,
) -> Result<Option<AutoscalingStatus>> {
    let policy = policy(sc);
    if !policy.enabled && policy.io_threads.is_none() {
        return Ok(None);
    }
    let prev = sc.status.as_ref().and_then(|s| s.autoscaling.clone()).unwrap_or_default();
    let mut out = AutoscalingStatus { last_decision: prev.last_decision.clone(), ..Default::default() };
    if policy.enabled {
        // No decision before the cluster has converged: while shards are being created the owning
        // count is below `minShards`, and the bound correction would fight the spec.
        let in_progress = st.resize_from.is_some()
            || r.phase != Phase::Converged
            || owning != sc.desired_shards()
            || rolling;
        if in_progress {
            out.reason = Some(if rolling {
                "waiting for the rollout to finish".into()
            } else {
                "waiting for the cluster to converge".into()
            });
            out.recommended_shards = Some(sc.desired_shards() as i32);
            return Ok(Some(out));
        }
        let d = st.history.decide(&policy, owning, false, now);
        out.reason = Some(d.reason.clone());
        out.recommended_shards = Some(d.target().unwrap_or(sc.desired_shards()) as i32);
        if let (Some(to), ScaleAction::ScaleOut { .. } | ScaleAction::ScaleIn { .. }) =
            (d.target(), &d.action)
        {
            let applied = !policy.recommend_only;
            let ds = decision_status(&d, owning, to, applied, (ctx.now)());
            let repeat = prev.last_decision.as_ref().is_some_and(|p| {
                !applied && p.to_shards == ds.to_shards && p.from_shards == ds.from_shards && !p.applied
            });
            if !repeat {
                ctx.metrics.decision(if to > owning { "scale_out" } else { "scale_in" }, applied);
                let verb = if applied { "AutoscaleResize" } else { "AutoscaleRecommendation" };
                ctx.event(sc, EventType::Normal, verb, format!("{owning} -> {to} shard(s): {}", d.reason))
                    .await;
            }
            if applied {
                let api: Api<ShoalCluster> =
                    Api::namespaced(ctx.client.clone(), &sc.namespace().unwrap_or_default());
                let patch = Patch::Merge(json!({ "spec": { "replicas": to } }));
                api.patch_scale(&sc.name_any(), &PatchParams::default(), &patch)
                    .await
                    .map_err(kerr("patch /scale"))?;
            }
            out.last_decision = Some(ds);
        }
    }
    for (addr, _id, io) in st.history.decide_io(&policy, &r.observed) {
        let Some(to) = io.set_to else { continue };
        if policy.recommend_only {
            continue;
        }
        match st.control.set_io_threads(&addr, to).await {
            Ok(()) => {
                ctx.metrics.decision("io_threads", true);
                ctx.event(
                    sc,
                    EventType::Normal,
                    "IoThreadsChanged",
                    format!("{addr}: io-threads {to} ({})", io.reason),
                )
                .await;
            }
            Err(e) => ctx.event(sc, EventType::Warning, "IoThreadsFailed", format!("{addr}: {e}")).await,
        }
    }
    Ok(Some(out))
}

async fn write_status(
    sc: &ShoalCluster,
    ctx: &Context,
    report: Option<&StepReport>,
    draining: &[u32],
    autoscaling: Option<AutoscalingStatus>,
    error: Option<String>,
    rollout: Option<&RolloutStatus>,
) -> Result<()> {
    let status: ShoalClusterStatus = status::build(&StatusInput {
        sc,
        defaults: &ctx.defaults,
        report,
        draining,
        autoscaling,
        error,
        rollout,
        now: (ctx.now)(),
    });
    let api: Api<ShoalCluster> = Api::namespaced(ctx.client.clone(), &sc.namespace().unwrap_or_default());
    let body = json!({
        "apiVersion": ShoalCluster::api_version(&()),
        "kind": ShoalCluster::kind(&()),
        "status": status,
    });
    api.patch_status(&sc.name_any(), &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&body))
        .await
        .map_err(kerr("apply status"))?;
    Ok(())
}

/// Deletion: the owned objects go with the cluster (owner references); the operator forgets its
/// control-plane state and lets the finalizer go.
async fn cleanup(sc: Arc<ShoalCluster>, ctx: Arc<Context>) -> Result<Action> {
    {
        let state = ctx.state(&key(&sc));
        let st = state.lock().await;
        ctx.metrics.stuck_now.dec_by(st.gauges.0);
        ctx.metrics.unserved_slots.dec_by(st.gauges.1);
    }
    ctx.forget(&key(&sc));
    ctx.event(
        &sc,
        EventType::Normal,
        "Deleting",
        "cluster deleted; the objects it owns (StatefulSets, Services, ConfigMap, PodDisruptionBudget, NetworkPolicy) are garbage-collected".into(),
    )
    .await;
    Ok(Action::await_change())
}
