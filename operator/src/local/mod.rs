//! Local mode: runs a self-managing Shoal cluster as `shoal-node` processes on this machine,
//! driven by the same control plane as the Kubernetes operator. Shard `i` is ordinal `i`: a
//! primary and `replicas` replicas (separate processes), so scaling in removes the highest
//! ordinals once the driver has drained them. A killed primary is restarted by the supervisor,
//! comes back fenced, and the driver promotes a replica; a shard with replicas is rolled in
//! place, replica first, with a planned failover.
//!
//! Each tick: restart dead nodes, start the nodes of new shards, run one driver step, stop the
//! nodes of shards the topology no longer names, roll a changed node configuration through one
//! shard at a time (`rollout`), record the metrics, and let the autoscaler decide the shard
//! count and each node's `io-threads`.

pub mod supervisor;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::controlplane::autoscaler::AutoscalePolicy;
use crate::controlplane::driver::{Driver, DriverError, FailoverLog, Phase, StepReport};
use crate::controlplane::failover::{self, FailoverError, FailoverRecord};
use crate::controlplane::history::AutoscaleHistory;
use crate::controlplane::model::{NodeAddr, SLOT_COUNT};
use crate::controlplane::planner::PlanOptions;
use crate::controlplane::rollout::{self, InPlace, MemberView, Rollout, RolloutStatus, Seen, Step};
use supervisor::{default_node_bin, NodeTemplate, Supervisor, SupervisorError};

/// Local-mode configuration: a YAML file (the same field names as the Kubernetes resource's
/// spec where they overlap) and/or command-line flags.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LocalConfig {
    /// Cluster name: shard ids derive from it.
    pub name: String,
    /// Shards to start with.
    pub shards: u32,
    /// Replicas per shard (each a `shoal-node` process replicating from the shard's primary).
    pub replicas: u32,
    /// Address the nodes bind and announce.
    pub host: String,
    /// Port of shard 0 (shard i uses base + i); unset: ephemeral ports.
    pub port_base: Option<u16>,
    /// Prometheus metrics port of shard 0 (shard i serves on base + i); unset: no endpoint.
    pub metrics_port_base: Option<u16>,
    /// Where node directories live.
    pub dir: PathBuf,
    /// The `shoal-node` binary (default: next to `shoal-operator`, else on PATH).
    pub node_bin: Option<PathBuf>,
    /// Each node's `maxmemory` (e.g. `256mb`), which memory targets are relative to.
    pub maxmemory: Option<String>,
    /// Each node's initial `io-threads`.
    pub io_threads: Option<u32>,
    /// The password every node requires (`requirepass`); the control loop authenticates with it.
    pub requirepass: Option<String>,
    /// How the control loop authenticates instead (an ACL user, TLS), when set. Not read from
    /// the config file: it holds a password.
    #[serde(skip)]
    pub credentials: Option<crate::controlplane::credentials::Credentials>,
    /// More `--name value` arguments for every node.
    pub node_args: Vec<String>,
    pub autoscaling: AutoscalePolicy,
    pub migration: PlanOptions,
    /// Control-loop period, milliseconds.
    pub interval_ms: u64,
    /// How long a node may stay silent before it is marked `fail`, milliseconds.
    pub fail_after_ms: u64,
}

impl Default for LocalConfig {
    fn default() -> Self {
        LocalConfig {
            name: "shoal".into(),
            shards: 3,
            replicas: 0,
            host: "127.0.0.1".into(),
            port_base: None,
            metrics_port_base: None,
            dir: PathBuf::from("shoal-local"),
            node_bin: None,
            maxmemory: None,
            io_threads: None,
            requirepass: None,
            credentials: None,
            node_args: Vec::new(),
            autoscaling: AutoscalePolicy::default(),
            migration: PlanOptions::default(),
            interval_ms: 500,
            fail_after_ms: crate::controlplane::driver::DEFAULT_FAIL_AFTER.as_millis() as u64,
        }
    }
}

/// A local-mode failure.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error(transparent)]
    Node(#[from] SupervisorError),
    #[error(transparent)]
    Driver(#[from] DriverError),
    #[error("installing the SIGTERM handler: {0}")]
    Signal(std::io::Error),
    #[error("reading {path}: {source}")]
    Config { path: PathBuf, source: std::io::Error },
    #[error("parsing {path}: {source}")]
    ConfigSyntax { path: PathBuf, source: yaml_serde::Error },
}

impl LocalConfig {
    /// Reads a YAML file.
    pub fn from_file(path: &std::path::Path) -> Result<LocalConfig, LocalError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| LocalError::Config { path: path.to_path_buf(), source })?;
        yaml_serde::from_str(&text)
            .map_err(|source| LocalError::ConfigSyntax { path: path.to_path_buf(), source })
    }
}

/// A running local cluster and its control loop state.
pub struct LocalCluster {
    pub cfg: LocalConfig,
    pub sup: Supervisor,
    driver: Driver,
    pub history: AutoscaleHistory,
    target: u32,
    resize_from: Option<u32>,
    progress_total: usize,
    started: Instant,
    last_hold: String,
    /// The last step's report.
    pub last: Option<StepReport>,
    rollout: Option<Rollout>,
    rollout_paused: Option<String>,
    /// How long one rollout step may take before the rollout reports itself paused.
    pub rollout_step_timeout: Duration,
}

/// The control loop's credentials: `credentials` if set, else the `requirepass` password.
fn set_credentials(driver: &mut Driver, cfg: &LocalConfig) {
    match &cfg.credentials {
        Some(c) => driver.set_credentials(c.clone()),
        None => driver.set_password(cfg.requirepass.clone()),
    }
}

fn new_driver(cfg: &LocalConfig) -> Driver {
    Driver::new(cfg.migration.clone(), Duration::from_secs(5))
        .with_fail_after(Duration::from_millis(cfg.fail_after_ms.max(100)))
}

/// The arguments every node gets: `nodeArgs` plus the typed settings.
fn node_args(cfg: &LocalConfig) -> Vec<String> {
    let mut args = cfg.node_args.clone();
    if let Some(m) = &cfg.maxmemory {
        args.extend(["--maxmemory".to_string(), m.clone()]);
    }
    if let Some(n) = cfg.io_threads {
        args.extend(["--io-threads".to_string(), n.to_string()]);
    }
    if let Some(pw) = &cfg.requirepass {
        args.extend(["--requirepass".to_string(), pw.clone()]);
    }
    args
}

impl LocalCluster {
    /// Starts the initial nodes (the first tick forms the cluster).
    pub async fn start(cfg: LocalConfig) -> Result<LocalCluster, LocalError> {
        let args = node_args(&cfg);
        let template = NodeTemplate {
            bin: cfg.node_bin.clone().unwrap_or_else(default_node_bin),
            dir: cfg.dir.clone(),
            port_base: cfg.port_base,
            host: cfg.host.clone(),
            metrics_port_base: cfg.metrics_port_base,
            replicas: cfg.replicas,
            args,
            generation: 0,
        };
        let mut sup = Supervisor::new(template, cfg.name.clone());
        let target = cfg.shards.max(1);
        for line in sup.ensure(target).await? {
            tracing::info!("{line}");
        }
        let mut driver = new_driver(&cfg);
        set_credentials(&mut driver, &cfg);
        Ok(LocalCluster {
            cfg,
            sup,
            driver,
            history: AutoscaleHistory::default(),
            target,
            resize_from: None,
            progress_total: 0,
            started: Instant::now(),
            last_hold: String::new(),
            last: None,
            rollout: None,
            rollout_paused: None,
            rollout_step_timeout: rollout::STEP_TIMEOUT,
        })
    }

    /// Applies a new node configuration (the typed settings and `nodeArgs` of `cfg`; the shard
    /// count, ports and directory stay). Running nodes are rolled one shard at a time, each
    /// drained before its restart. Returns false when nothing the nodes see changed.
    pub fn reconfigure(&mut self, cfg: &LocalConfig) -> bool {
        let changed = self.sup.set_args(node_args(cfg));
        if changed {
            self.cfg.node_args = cfg.node_args.clone();
            self.cfg.maxmemory = cfg.maxmemory.clone();
            self.cfg.io_threads = cfg.io_threads;
            tracing::info!(
                generation = self.sup.template.generation,
                "node configuration changed; rolling it out"
            );
        }
        changed
    }

    /// Updated and outdated nodes, the shard being rolled and why the rollout waits, if it does.
    pub fn rollout_status(&self) -> RolloutStatus {
        let outdated = self.sup.outdated_nodes(self.target).len() as u32;
        let running = self.sup.nodes().filter(|p| p.ordinal < self.target).count() as u32;
        RolloutStatus {
            updated: running.saturating_sub(outdated),
            outdated,
            current: self
                .rollout
                .as_ref()
                .map(|r| format!("shard {}: {:?}", r.ordinal, r.step).to_lowercase()),
            paused: self.rollout_paused.clone(),
        }
    }

    /// True while a shard is being rolled or nodes are outdated.
    pub fn rolling(&self) -> bool {
        self.rollout.is_some() || !self.sup.outdated(self.target).is_empty()
    }

    /// The shard count the loop is driving towards.
    pub fn target(&self) -> u32 {
        self.target
    }

    /// Resizes to `n` shards (as a manual operation; the autoscaler may change it later).
    pub fn set_target(&mut self, n: u32) {
        let n = n.max(1);
        if n != self.target {
            self.resize_from.get_or_insert(self.shards_owning_slots());
            tracing::info!(from = self.target, to = n, "resize requested");
            self.target = n;
        }
    }

    /// Brings every node's ACL users in line with `desired`, through the control loop's own
    /// connections (what the Kubernetes operator does with `spec.users`).
    pub async fn sync_users(
        &mut self,
        addrs: &[crate::controlplane::model::NodeAddr],
        desired: &crate::controlplane::users::DesiredUsers,
    ) -> crate::controlplane::users::UsersReport {
        self.driver.sync_users(addrs, desired).await
    }

    /// Forgets everything the control loop holds in memory (driver state, autoscaling
    /// history, the last observation), as a restarted control plane would, while the nodes keep
    /// running. The next tick rebuilds its view from what the nodes report, which is the point:
    /// the nodes are the source of truth for topology and migrations in flight.
    pub fn restart_control_plane(&mut self) {
        tracing::info!("control plane state dropped; resuming from the nodes");
        self.driver = new_driver(&self.cfg);
        set_credentials(&mut self.driver, &self.cfg);
        self.history = AutoscaleHistory::default();
        self.resize_from = None;
        self.progress_total = 0;
        self.last_hold.clear();
        self.last = None;
    }

    /// Failovers the control loop made since it (re)started.
    pub fn failovers(&self) -> &FailoverLog {
        self.driver.failovers()
    }

    /// The control loop's driver (tests set planned-failover options on it).
    pub fn driver_mut(&mut self) -> &mut Driver {
        &mut self.driver
    }

    /// Planned failover of shard `ordinal` to its best replica, from the last observation.
    pub async fn failover(&mut self, ordinal: u32) -> Result<FailoverRecord, FailoverError> {
        let id = self.sup.shard_id(ordinal);
        let obs = self.last.as_ref().map(|r| r.observed.clone()).unwrap_or_default();
        self.driver.planned_failover(&obs, &id, None).await
    }

    /// The client endpoint: shard 0's node.
    pub fn endpoint(&self) -> Option<NodeAddr> {
        self.sup.node(0).map(|p| p.addr.clone())
    }

    fn now_secs(&self) -> u64 {
        self.started.elapsed().as_secs()
    }

    /// Shards that own slots in the last observed topology.
    pub fn shards_owning_slots(&self) -> u32 {
        self.last
            .as_ref()
            .and_then(|r| r.observed.topology.as_ref())
            .map_or(0, |t| t.shards.iter().filter(|s| !s.slots.is_empty()).count() as u32)
    }

    /// True when the last step found the cluster converged on the target.
    pub fn converged(&self) -> bool {
        self.last.as_ref().is_some_and(|r| r.phase == Phase::Converged) && self.resize_from.is_none()
    }

    /// True when converged and every node runs the current configuration.
    pub fn settled(&self) -> bool {
        self.converged() && !self.rolling()
    }

    /// One control-loop iteration.
    pub async fn tick(&mut self) -> Result<Phase, LocalError> {
        self.sup.check().await;
        for line in self.sup.ensure(self.target).await? {
            tracing::info!("{line}");
        }
        let mut desired = self.sup.desired(self.target);
        let mut others = self.sup.beyond(self.target);
        // The shard being rolled is left out of the desired shards until it is restarted.
        if let Some(r) = self.rollout.as_ref().filter(|r| matches!(r.step, Step::Draining | Step::Restart)) {
            let id = self.sup.shard_id(r.ordinal);
            if let Some(i) = desired.iter().position(|d| d.id == id) {
                others.extend(desired.remove(i).nodes);
            }
        }
        let rep = self.driver.step(&desired, &others).await?;
        let now = self.now_secs();
        self.progress_total =
            if rep.slots_to_move == 0 { 0 } else { self.progress_total.max(rep.slots_to_move) };
        let phase = rep.phase.clone();
        if phase == Phase::Converged {
            let gone = (self.target..)
                .take_while(|&i| self.sup.node(i).is_some())
                .all(|i| !rep.in_topology(&self.sup.shard_id(i)));
            if !others.is_empty() && gone {
                for line in self.sup.stop_beyond(self.target, Duration::from_secs(5)).await {
                    tracing::info!("{line}");
                }
            }
            if let Some(from) = self.resize_from.take() {
                tracing::info!(from, to = self.target, "resize complete");
                self.history.resized(from, self.target, now);
            }
        }
        self.history.record(&rep.observed, now);
        self.last = Some(rep);
        self.roll().await?;
        self.autoscale(now).await;
        Ok(phase)
    }

    /// One move of the rollout state machine (see [`rollout`]).
    async fn roll(&mut self) -> Result<(), LocalError> {
        let Some(rep) = &self.last else { return Ok(()) };
        let converged = rep.phase == Phase::Converged && self.resize_from.is_none();
        if self.sup.template.replicas > 0 {
            return self.roll_in_place(converged).await;
        }
        let now = Instant::now();
        let Some(r) = self.rollout.clone() else {
            let outdated = self.sup.outdated(self.target);
            let Some(&first) = outdated.first() else {
                self.rollout_paused = None;
                return Ok(());
            };
            if !converged {
                return Ok(());
            }
            if self.target < 2 {
                let why = "a single shard without replicas cannot be drained: its keys would be lost; \
                           scale to 2 or more shards to roll the new configuration";
                if self.rollout_paused.as_deref() != Some(why) {
                    tracing::warn!("rollout paused: {why}");
                    self.rollout_paused = Some(why.into());
                }
                return Ok(());
            }
            tracing::info!(shard = first, "rollout: draining shard {first}");
            self.rollout = Some(Rollout { ordinal: first, step: Step::Draining, since: now });
            self.rollout_paused = None;
            return Ok(());
        };
        let id = self.sup.shard_id(r.ordinal);
        let topo_shard = rep.observed.topology.as_ref().and_then(|t| t.shard(&id));
        let seen = Seen {
            converged,
            in_topology: topo_shard.is_some(),
            owns_slots: topo_shard.is_some_and(|s| !s.slots.is_empty()),
        };
        match rollout::next(&r, seen) {
            Some(Step::Restart) => {
                let line = self.sup.restart(r.ordinal, Duration::from_secs(10)).await?;
                tracing::info!("rollout: {line}");
                self.rollout =
                    Some(Rollout { ordinal: r.ordinal, step: Step::Returning, since: Instant::now() });
                self.rollout_paused = None;
            }
            Some(step) => {
                let late = rollout::overdue(&r, now, self.rollout_step_timeout);
                if late.is_some() && late != self.rollout_paused {
                    tracing::warn!("rollout paused: {}", late.as_deref().unwrap_or(""));
                }
                self.rollout_paused = late;
                self.rollout = Some(Rollout { step, ..r });
            }
            None => {
                tracing::info!(
                    shard = r.ordinal,
                    "rollout: shard {} runs the new configuration and owns slots again",
                    r.ordinal
                );
                self.rollout = None;
                self.rollout_paused = None;
            }
        }
        Ok(())
    }

    /// A shard with replicas: one action of [`rollout::next_replicated`] per tick.
    async fn roll_in_place(&mut self, converged: bool) -> Result<(), LocalError> {
        let now = Instant::now();
        let ordinal = match (&self.rollout, self.sup.outdated(self.target).first()) {
            (Some(r), _) => r.ordinal,
            (None, Some(&o)) if converged => {
                tracing::info!(shard = o, "rollout: shard {o} in place, replica first");
                self.rollout = Some(Rollout { ordinal: o, step: Step::InPlace, since: now });
                o
            }
            (None, _) => {
                self.rollout_paused = None;
                return Ok(());
            }
        };
        let Some(rep) = &self.last else { return Ok(()) };
        let Some(topo) = rep.observed.topology.as_ref() else { return Ok(()) };
        let shard_id = self.sup.shard_id(ordinal);
        let shard = topo.shard(&shard_id);
        let generation = self.sup.template.generation;
        let mut ids = Vec::new();
        let views: Vec<MemberView> = self
            .sup
            .shard_nodes(ordinal)
            .map(|p| {
                let id = rep
                    .observed
                    .nodes
                    .iter()
                    .find(|o| o.addr == p.addr && o.reachable())
                    .and_then(|o| o.id.clone());
                let in_shard = |id: &crate::controlplane::model::NodeId| {
                    shard.is_some_and(|s| s.nodes.iter().any(|n| &n.id == id))
                };
                let primary = id
                    .as_ref()
                    .is_some_and(|id| shard.and_then(|s| s.primary()).is_some_and(|pr| &pr.id == id));
                ids.push((p.member, id.clone()));
                MemberView {
                    member: p.member,
                    outdated: p.generation < generation,
                    primary,
                    reachable: id.as_ref().is_some_and(in_shard),
                    in_sync: id.as_ref().is_some_and(|id| failover::in_sync(topo, &rep.observed.nodes, id)),
                }
            })
            .collect();
        let action =
            if converged { rollout::next_replicated(&views) } else { InPlace::Wait("converging".into()) };
        let r = self.rollout.clone().unwrap_or(Rollout { ordinal, step: Step::InPlace, since: now });
        match action {
            InPlace::Restart(m) => {
                let line = self.sup.restart_member(ordinal, m, Duration::from_secs(10)).await?;
                tracing::info!("rollout: {line}");
                self.rollout = Some(Rollout { since: Instant::now(), ..r });
                self.rollout_paused = None;
            }
            InPlace::Failover(m) => {
                let to = ids.iter().find(|(mm, _)| *mm == m).and_then(|(_, id)| id.clone());
                let obs = rep.observed.clone();
                match self.driver.planned_failover(&obs, &shard_id, to.as_ref()).await {
                    Ok(rec) => {
                        tracing::info!(
                            shard = ordinal,
                            "rollout: shard {ordinal} handed over to member {m} (writes paused {} ms)",
                            rec.recovered_in.as_millis()
                        );
                        self.rollout = Some(Rollout { since: Instant::now(), ..r });
                    }
                    Err(e) => {
                        tracing::warn!(shard = ordinal, error = %e, "rollout: planned failover failed; retrying")
                    }
                }
            }
            InPlace::Wait(why) => {
                let late =
                    rollout::overdue(&r, now, self.rollout_step_timeout).map(|l| format!("{l}: {why}"));
                if late.is_some() && late != self.rollout_paused {
                    tracing::warn!("rollout paused: {}", late.as_deref().unwrap_or(""));
                }
                self.rollout_paused = late;
            }
            InPlace::Done => {
                tracing::info!(
                    shard = ordinal,
                    "rollout: every node of shard {ordinal} runs the new configuration"
                );
                self.rollout = None;
                self.rollout_paused = None;
            }
        }
        Ok(())
    }

    async fn autoscale(&mut self, now: u64) {
        let policy = self.cfg.autoscaling.clone();
        if !policy.enabled {
            return;
        }
        let Some(rep) = &self.last else { return };
        let in_progress = self.resize_from.is_some() || rep.phase != Phase::Converged || self.rolling();
        let obs = rep.observed.clone();
        let current = self.shards_owning_slots();
        if current == 0 {
            // No topology yet (the cluster is forming): nothing to resize from.
            return;
        }
        let d = self.history.decide(&policy, current, in_progress, now);
        let figures = serde_json::to_string(&d.figures).unwrap_or_default();
        match d.target() {
            Some(to) if policy.recommend_only => {
                if d.reason != self.last_hold {
                    tracing::info!(decision = ?d.action, reason = %d.reason, %figures, "autoscaler recommends (not acting)");
                    self.last_hold = d.reason.clone();
                }
                let _ = to;
            }
            Some(to) => {
                tracing::info!(decision = ?d.action, reason = %d.reason, %figures, "autoscaler resizes");
                self.set_target(to);
            }
            None => {
                if d.reason != self.last_hold {
                    tracing::debug!(reason = %d.reason, %figures, "autoscaler holds");
                    self.last_hold = d.reason;
                }
            }
        }
        for (addr, id, io) in self.history.decide_io(&policy, &obs) {
            let Some(to) = io.set_to else { continue };
            if policy.recommend_only {
                tracing::info!(node = %addr, reason = %io.reason, "io-threads recommendation (not acting)");
                continue;
            }
            match self.driver.set_io_threads(&addr, to).await {
                Ok(()) => tracing::info!(node = %addr, id = %id, reason = %io.reason, "io-threads changed"),
                Err(e) => tracing::warn!(node = %addr, error = %e, "setting io-threads failed"),
            }
        }
    }

    /// A one-line summary: shards, slots, migrations with a progress bar, ops/sec, memory.
    pub fn status_line(&self) -> String {
        let Some(rep) = &self.last else { return "starting".into() };
        let covered = rep.observed.topology.as_ref().map_or(0, |t| t.covered_slots());
        let nodes = rep.observed.nodes.iter().filter_map(|n| n.metrics.as_ref());
        let (ops, mem, keys) =
            nodes.fold((0, 0, 0), |a, m| (a.0 + m.ops_per_sec, a.1 + m.used_memory, a.2 + m.keys));
        let up = rep.observed.nodes.iter().filter(|n| n.reachable()).count();
        let mut s = format!(
            "shards {}/{} · nodes up {}/{} · slots {covered}/{SLOT_COUNT} · {ops} ops/s · {:.1} MiB · {keys} keys",
            self.shards_owning_slots(),
            self.target,
            up,
            rep.observed.nodes.len(),
            mem as f64 / (1024.0 * 1024.0),
        );
        let ro = self.rollout_status();
        if let Some(cur) = &ro.current {
            s.push_str(&format!(" · rollout {cur} ({} updated, {} outdated)", ro.updated, ro.outdated));
        }
        if let Some(why) = &ro.paused {
            s.push_str(&format!(" · rollout paused: {why}"));
        }
        if rep.unserved_slots > 0 {
            s.push_str(&format!(" · {} slots unserved", rep.unserved_slots));
        }
        let lags = rep.replica_lags();
        if !lags.is_empty() {
            let synced = lags.iter().filter(|l| l.link_up && !l.sync_in_progress).count();
            let max = lags.iter().map(|l| l.lag_bytes).max().unwrap_or(0);
            s.push_str(&format!(" · replicas in sync {synced}/{} (max lag {max} B)", lags.len()));
        }
        let log = self.driver.failovers();
        if let Some(last) = log.last_recovery() {
            s.push_str(&format!(" · failovers {} (last recovered in {:.2}s)", log.total, last.as_secs_f64()));
        }
        for a in &rep.stuck {
            s.push_str(&format!(
                " · stuck: {} ({} failures over {}s)",
                a.action, a.failures, a.failing_for_secs
            ));
        }
        if self.progress_total > 0 {
            let done = self.progress_total.saturating_sub(rep.slots_to_move);
            let width = 24;
            let filled = done * width / self.progress_total.max(1);
            s.push_str(&format!(
                " · migrating [{}{}] {done}/{} slots, {} job(s)",
                "#".repeat(filled),
                ".".repeat(width - filled),
                self.progress_total,
                rep.running.len()
            ));
        }
        s
    }

    /// Stops every node.
    pub async fn shutdown(&mut self) {
        self.sup.shutdown(Duration::from_secs(5)).await;
    }
}

/// Re-reads the local configuration (on SIGHUP).
pub type Reload = Box<dyn Fn() -> Result<LocalConfig, String> + Send>;

/// Runs local mode until Ctrl-C: forms the cluster, prints the endpoint, keeps a live status
/// line (on a terminal) and stops every node on exit. On SIGHUP, `reload` gives the new
/// configuration: a changed shard count resizes, a changed node configuration rolls out.
pub async fn run(cfg: LocalConfig, reload: Option<Reload>) -> Result<(), LocalError> {
    let interval = Duration::from_millis(cfg.interval_ms.max(50));
    let mut cluster = LocalCluster::start(cfg).await?;
    let tty = std::io::stderr().is_terminal();
    let mut announced = false;
    let mut last_log = Instant::now() - Duration::from_secs(3600);
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // SIGTERM (systemd, `timeout`, Kubernetes) stops as cleanly as Ctrl-C.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(LocalError::Signal)?;
    let mut hup =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).map_err(LocalError::Signal)?;
    let result = loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break Ok(()),
            _ = term.recv() => break Ok(()),
            _ = hup.recv() => {
                match reload.as_ref().map(|r| r()) {
                    Some(Ok(new)) => {
                        cluster.reconfigure(&new);
                        cluster.set_target(new.shards);
                    }
                    Some(Err(e)) => tracing::error!("reloading the configuration failed (keeping the current one): {e}"),
                    None => tracing::info!("SIGHUP ignored: no configuration to reload"),
                }
                continue;
            }
            _ = ticker.tick() => {}
        }
        if let Err(e) = cluster.tick().await {
            break Err(e);
        }
        if !announced && cluster.converged() {
            if let Some(ep) = cluster.endpoint() {
                println!(
                    "cluster ready: {} shards; connect with: redis-cli -c -h {} -p {}",
                    cluster.target(),
                    ep.ip,
                    ep.port
                );
                let _ = std::io::stdout().flush();
                announced = true;
            }
        }
        let line = cluster.status_line();
        if tty {
            eprint!("\r\x1b[2K{line}");
        } else if last_log.elapsed() >= Duration::from_secs(10) {
            // Without a terminal, a status line every 10 s instead of a live one.
            tracing::info!("{line}");
            last_log = Instant::now();
        }
    };
    if tty {
        eprintln!();
    }
    tracing::info!("stopping nodes");
    cluster.shutdown().await;
    result
}
