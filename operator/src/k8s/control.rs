//! The seam between the reconciler and the control plane. The reconciler reaches shard nodes only
//! through [`NodeControl`], whose production implementation is `controlplane::driver::Driver` —
//! the same code local mode runs against real nodes. Tests substitute a scripted control plane,
//! since no shard node runs next to a mocked API server.
//!
//! [`ClusterState`] is what the operator remembers per cluster between reconciles: the driver
//! (connections, retry backoffs), the autoscaler's metric history and resize bookkeeping. All of
//! it can be lost: the nodes hold the topology, so a restarted operator only loses metric history
//! and cooldown clocks (it then waits a full window before deciding again).

use std::time::{Duration, Instant};

use futures::future::BoxFuture;

use super::crd::{AutoscalingSpec, ShoalCluster};
use crate::controlplane::autoscaler::{AutoscalePolicy, IoThreadsPolicy};
use crate::controlplane::credentials::Credentials;
use crate::controlplane::driver::{DesiredShard, Driver, DriverError, StepReport};
use crate::controlplane::failover::FailoverRecord;
use crate::controlplane::history::AutoscaleHistory;
use crate::controlplane::model::{NodeAddr, NodeId, ObservedState, ShardId};
use crate::controlplane::planner::PlanOptions;
use crate::controlplane::users::{DesiredUsers, UsersReport};

/// What the reconciler asks of the shard nodes.
pub trait NodeControl: Send {
    /// One control-plane step towards `desired` (see `Driver::step`).
    fn step<'a>(
        &'a mut self,
        desired: &'a [DesiredShard],
        others: &'a [NodeAddr],
    ) -> BoxFuture<'a, Result<StepReport, DriverError>>;

    /// Sets a node's `io-threads`.
    fn set_io_threads<'a>(&'a mut self, addr: &'a NodeAddr, n: u32) -> BoxFuture<'a, Result<(), String>>;

    /// Who the control plane is to the nodes (the operator's user, the `default` password
    /// as a fallback, TLS material), before each step.
    fn set_credentials(&mut self, creds: Credentials);

    /// Brings the nodes' ACL users in line with `desired`.
    fn sync_users<'a>(
        &'a mut self,
        addrs: &'a [NodeAddr],
        desired: &'a DesiredUsers,
    ) -> BoxFuture<'a, UsersReport>;

    /// Planned failover of `shard` to the replica `to`, from the observation `obs` (see
    /// `Driver::planned_failover`): no acknowledged write lost; nothing changes when it fails.
    fn planned_failover<'a>(
        &'a mut self,
        obs: &'a ObservedState,
        shard: &'a ShardId,
        to: &'a NodeId,
    ) -> BoxFuture<'a, Result<FailoverRecord, String>>;
}

impl NodeControl for Driver {
    fn step<'a>(
        &'a mut self,
        desired: &'a [DesiredShard],
        others: &'a [NodeAddr],
    ) -> BoxFuture<'a, Result<StepReport, DriverError>> {
        Box::pin(Driver::step(self, desired, others))
    }

    fn set_io_threads<'a>(&'a mut self, addr: &'a NodeAddr, n: u32) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move { Driver::set_io_threads(self, addr, n).await.map_err(|e| e.to_string()) })
    }

    fn set_credentials(&mut self, creds: Credentials) {
        Driver::set_credentials(self, creds);
    }

    fn sync_users<'a>(
        &'a mut self,
        addrs: &'a [NodeAddr],
        desired: &'a DesiredUsers,
    ) -> BoxFuture<'a, UsersReport> {
        Box::pin(Driver::sync_users(self, addrs, desired))
    }

    fn planned_failover<'a>(
        &'a mut self,
        obs: &'a ObservedState,
        shard: &'a ShardId,
        to: &'a NodeId,
    ) -> BoxFuture<'a, Result<FailoverRecord, String>> {
        Box::pin(async move {
            Driver::planned_failover(self, obs, shard, Some(to)).await.map_err(|e| e.to_string())
        })
    }
}

/// Makes the control plane of a newly seen cluster.
pub type ControlFactory = dyn Fn() -> Box<dyn NodeControl> + Send + Sync;

/// The production factory: a `Driver` with default migration options and a 5 s node timeout.
pub fn driver_factory() -> Box<ControlFactory> {
    Box::new(|| Box::new(Driver::new(PlanOptions::default(), Duration::from_secs(5))))
}

/// Per-cluster memory of the operator.
pub struct ClusterState {
    pub control: Box<dyn NodeControl>,
    pub history: AutoscaleHistory,
    /// Shard count a resize started from, until the control plane converges on the new count.
    pub resize_from: Option<u32>,
    /// The shard count the last reconcile drove towards.
    pub last_target: Option<u32>,
    /// Successful migration jobs already counted in the metrics.
    pub counted_jobs: std::collections::HashSet<String>,
    /// Running migration jobs already announced (event, counter).
    pub started_jobs: std::collections::HashSet<String>,
    /// Stuck actions already announced (event, counter), until they recover.
    pub stuck_reported: std::collections::HashSet<String>,
    /// This cluster's share of the `stuck_actions` and `unserved_slots` gauges.
    pub gauges: (i64, i64),
    /// Known to have no NetworkPolicy of ours (checked once while `networkPolicy` is off).
    pub network_policy_absent: bool,
    started: Instant,
}

impl ClusterState {
    pub fn new(control: Box<dyn NodeControl>) -> ClusterState {
        ClusterState {
            control,
            history: AutoscaleHistory::default(),
            resize_from: None,
            last_target: None,
            counted_jobs: Default::default(),
            started_jobs: Default::default(),
            stuck_reported: Default::default(),
            gauges: (0, 0),
            network_policy_absent: false,
            started: Instant::now(),
        }
    }

    /// Seconds since the operator first saw the cluster: the autoscaler's clock.
    pub fn now_secs(&self) -> u64 {
        self.started.elapsed().as_secs()
    }
}

/// The control plane's autoscaling policy for a cluster's spec (disabled without `autoscaling`).
pub fn policy(sc: &ShoalCluster) -> AutoscalePolicy {
    let mut p = AutoscalePolicy::default();
    if let Some(a) = &sc.spec.autoscaling {
        apply_autoscaling(&mut p, a);
    }
    if let Some(io) = sc.spec.io_threads.as_ref().filter(|io| io.auto) {
        p.io_threads = Some(IoThreadsPolicy {
            min: io.min.max(1) as u32,
            max: io.max.max(io.min).max(1) as u32,
            ..IoThreadsPolicy::default()
        });
    }
    p
}

fn apply_autoscaling(p: &mut AutoscalePolicy, a: &AutoscalingSpec) {
    p.enabled = a.enabled;
    p.recommend_only = a.recommend_only;
    p.min_shards = a.min_shards.max(1) as u32;
    p.max_shards = a.max_shards.max(a.min_shards).max(1) as u32;
    p.cpu_target_percent = a.target_cpu_percent.map(f64::from);
    p.memory_target_percent = a.target_memory_percent.map(f64::from);
    p.scale_out_cooldown_secs = a.scale_out_cooldown_seconds.max(0) as u64;
    p.scale_in_cooldown_secs = a.scale_in_cooldown_seconds.max(0) as u64;
    p.disable_scale_in = a.disable_scale_in;
}
