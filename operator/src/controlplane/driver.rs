//! The migration driver: one idempotent reconcile step at a time, from the observed state towards
//! the desired shards. It keeps no plan between steps — each step observes, re-plans (the planner
//! is stable, so the plan does not drift) and does the next safe thing:
//!
//! 1. fold migrations the nodes report as finished into the topology (a control plane that died
//!    between a migration's end and its topology push catches up here);
//! 2. while a migration runs anywhere, only wait (never two conflicting operations);
//! 3. add new shards (empty) and give unowned slots away, in one push;
//! 4. bring nodes holding an older epoch up to date;
//! 5. start the next migrations, one per source and per target shard, on the source primary;
//! 6. once drained shards own nothing, remove them from the topology.
//!
//! Every topology change is pushed with epoch = highest epoch seen + 1. A failed migration leaves
//! the slots with their source; the next step plans the same move again, after a backoff.
//!
//! Before planning, [`membership`](super::membership) decides which node each topology entry
//! is now: a node that came back at its address with a new id replaces the old one (its shard's
//! slots go to it at once), and a node silent past `fail_after` is marked `fail`. Failing actions
//! back off with jitter ([`super::backoff`]); those failing for long are reported as stuck.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::backoff::{BackoffPolicy, Backoffs, StuckAction};
pub use super::failover::FailoverLog;
use super::failover::{self, FailoverError, FailoverRecord, PlannedOptions};
use super::membership::{self, Change};
use super::model::{
    MigrationJob, MigrationState, NodeAddr, NodeId, ObservedState, Role, ShardId, SlotRange, Topology,
    TopologyNode, TopologyShard, SLOT_COUNT,
};
use super::observe::{observe, ClientPool};
use super::planner::{next_moves, plan, PlanError, PlanInput, PlanOptions};

/// A shard the infrastructure provides: its id and its nodes' endpoints, primary first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DesiredShard {
    pub id: ShardId,
    pub nodes: Vec<NodeAddr>,
}

/// Where the cluster stands after a step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Phase {
    /// The topology matches the desired shards; nothing to do.
    Converged,
    /// Something changed this step (a push, migrations started); step again.
    Progressing,
    /// Migrations are running; step again later.
    Migrating,
    /// Cannot proceed yet (nodes unreachable, backoff); step again later.
    Waiting,
}

/// The outcome of one step.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepReport {
    pub phase: Phase,
    /// What the step did or waits for, one line each (also logged).
    pub actions: Vec<String>,
    pub observed: ObservedState,
    /// Migration jobs running now.
    pub running: Vec<MigrationJob>,
    /// Slots still to move to reach the desired layout (including those moving now).
    pub slots_to_move: usize,
    /// Slots that no answering primary serves (unowned, or owned by a silent or failed node).
    #[serde(default)]
    pub unserved_slots: usize,
    /// Membership changes this step (replacements, fail marks).
    #[serde(default)]
    pub membership: Vec<Change>,
    /// Actions that keep failing.
    #[serde(default)]
    pub stuck: Vec<StuckAction>,
    /// Promotions made by this step.
    #[serde(default)]
    pub failovers: Vec<FailoverRecord>,
}

impl StepReport {
    /// True when the observed topology names shard `id`.
    pub fn in_topology(&self, id: &ShardId) -> bool {
        self.observed.topology.as_ref().is_some_and(|t| t.shard(id).is_some())
    }

    /// Every answering replica's lag behind its primary.
    pub fn replica_lags(&self) -> Vec<failover::ReplicaLag> {
        self.observed
            .topology
            .as_ref()
            .map_or_else(Vec::new, |t| failover::replica_lags(t, &self.observed.nodes))
    }
}

/// Why a step could not even be planned.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("planning: {0}")]
    Plan(#[from] PlanError),
}

/// How long a node may stay silent before it is marked `fail` in the topology.
pub const DEFAULT_FAIL_AFTER: Duration = Duration::from_secs(5);

/// Drives a cluster towards its desired shards. Holds connections, retry backoffs and the
/// clock of silent nodes only: all of it soft state, rebuilt from the nodes after a restart.
pub struct Driver {
    pool: ClientPool,
    opts: PlanOptions,
    backoff: Backoffs,
    seen_jobs: HashSet<String>,
    down_since: HashMap<NodeId, Instant>,
    fail_after: Duration,
    failovers: FailoverLog,
    planned: PlannedOptions,
    /// Promotions decided this step, recorded once their push reached the new primary.
    pending_failovers: Vec<FailoverRecord>,
    /// Promotions made this step (moved into the report).
    step_failovers: Vec<FailoverRecord>,
    /// ACL users last applied per node (see `users`).
    users: super::users::UsersState,
}

/// The backoff key of migrations out of shard `src`.
fn migrate_key(src: &ShardId) -> String {
    format!("migrate slots out of shard {}", short(&src.0))
}

impl Driver {
    pub fn new(opts: PlanOptions, timeout: Duration) -> Driver {
        Driver {
            pool: ClientPool::new(timeout),
            opts,
            backoff: Backoffs::new(BackoffPolicy::default()),
            seen_jobs: HashSet::new(),
            down_since: HashMap::new(),
            fail_after: DEFAULT_FAIL_AFTER,
            failovers: FailoverLog::default(),
            planned: PlannedOptions::default(),
            pending_failovers: Vec::new(),
            step_failovers: Vec::new(),
            users: super::users::UsersState::default(),
        }
    }

    /// Brings the ACL users of the nodes at `addrs` in line with `desired` (see `users`).
    pub async fn sync_users(
        &mut self,
        addrs: &[NodeAddr],
        desired: &super::users::DesiredUsers,
    ) -> super::users::UsersReport {
        super::users::sync(&mut self.pool, &mut self.users, addrs, desired).await
    }

    /// Replaces the bounds of planned failovers.
    pub fn with_planned(mut self, p: PlannedOptions) -> Driver {
        self.planned = p;
        self
    }

    /// The bounds of planned failovers (tests set `abandon_at`).
    pub fn planned_options_mut(&mut self) -> &mut PlannedOptions {
        &mut self.planned
    }

    /// Failovers this control plane made.
    pub fn failovers(&self) -> &FailoverLog {
        &self.failovers
    }

    /// Sets the failure-detection window (how long a node may be silent before `fail`).
    pub fn with_fail_after(mut self, d: Duration) -> Driver {
        self.fail_after = d;
        self
    }

    /// Dials nodes through `d` (see [`super::observe::Dialer`]).
    pub fn with_dialer(mut self, d: super::observe::Dialer) -> Driver {
        self.pool.set_dialer(d);
        self
    }

    /// Replaces the backoff policy (tests use short stuck windows).
    pub fn with_backoff(mut self, p: BackoffPolicy) -> Driver {
        self.backoff = Backoffs::new(p);
        self
    }

    /// The password the nodes require (`requirepass`), if any: the `default` user, no TLS.
    pub fn set_password(&mut self, password: Option<String>) {
        self.pool.set_credentials(super::credentials::Credentials::password(password));
    }

    /// Who the control plane is to the nodes (user, password, TLS).
    pub fn set_credentials(&mut self, creds: super::credentials::Credentials) {
        self.pool.set_credentials(creds);
    }

    /// Planned failover of `shard` to the replica `to` (default: the replica with the highest
    /// offset), from the last observation `obs`: writes paused on the primary, the replica
    /// caught up exactly, the topology pushed at `obs.max_epoch() + 1`, the primary unpaused.
    /// Nothing changes when it fails (see [`failover::Planned`] for the unknown-outcome cases).
    pub async fn planned_failover(
        &mut self,
        obs: &ObservedState,
        shard: &ShardId,
        to: Option<&NodeId>,
    ) -> Result<FailoverRecord, FailoverError> {
        let r = super::failover_run::planned(&mut self.pool, obs, shard, to, false, &self.planned).await;
        if let Ok(rec) = &r {
            tracing::info!(
                shard = %short(&shard.0),
                new = %short(&rec.new_primary.0),
                epoch = rec.epoch,
                paused_ms = rec.recovered_in.as_millis() as u64,
                "planned failover done"
            );
            self.failovers.record(rec.clone());
        }
        r
    }

    /// Sets `io-threads` on the node at `addr`.
    pub async fn set_io_threads(
        &mut self,
        addr: &NodeAddr,
        n: u32,
    ) -> Result<(), super::client::ClientError> {
        let mut c = self.pool.get(addr).await?;
        let r = c.set_io_threads(n).await;
        if r.is_err() {
            self.pool.drop_client(addr);
        }
        r
    }

    /// Observes only (no action).
    pub async fn observe(&mut self, addrs: &[NodeAddr]) -> ObservedState {
        observe(&mut self.pool, addrs).await
    }

    /// One reconcile step. `others` are nodes that are not in `desired` but may still be in the
    /// topology (shards being drained): they are observed and pushed to as well.
    pub async fn step(
        &mut self,
        desired: &[DesiredShard],
        others: &[NodeAddr],
    ) -> Result<StepReport, DriverError> {
        let mut addrs: Vec<NodeAddr> = desired.iter().flat_map(|s| s.nodes.iter().cloned()).collect();
        for a in others {
            if !addrs.contains(a) {
                addrs.push(a.clone());
            }
        }
        self.pool.retain(&addrs);
        let obs = observe(&mut self.pool, &addrs).await;
        let mut actions = Vec::new();
        let running: Vec<MigrationJob> = dedup_jobs(obs.running_migrations());
        let ids: HashMap<&NodeAddr, &NodeId> =
            obs.nodes.iter().filter_map(|n| Some((&n.addr, n.id.as_ref()?))).collect();
        let node_shard: HashMap<NodeId, ShardId> = obs
            .topology
            .iter()
            .flat_map(|t| t.shards.iter())
            .flat_map(|s| s.nodes.iter().map(move |n| (n.id.clone(), s.id.clone())))
            .collect();
        // Outcomes of jobs not seen before: a failure backs the source shard off (doubling), a
        // success clears its backoff.
        for j in obs.nodes.iter().flat_map(|n| &n.migrations) {
            if !j.state.is_terminal() || !self.seen_jobs.insert(j.name.clone()) {
                continue;
            }
            let Some(src) = node_shard.get(&j.source_node) else { continue };
            if j.state == MigrationState::Success {
                self.backoff.succeeded(&migrate_key(src));
            } else {
                let why = format!("job {} {:?}: {}", j.name, j.state, j.message);
                self.backoff.failed(&migrate_key(src), why, Instant::now());
                tracing::warn!(job = %j.name, slots = ?j.slots, state = ?j.state, message = %j.message, "slot migration did not complete");
                actions
                    .push(format!("migration {} {:?}: {} (retry after backoff)", j.name, j.state, j.message));
            }
        }
        let epoch = obs.max_epoch();
        let mut topo = obs.topology.clone().unwrap_or_default();
        let mut changed = Vec::new();

        // 1. Finished migrations not yet in the topology.
        let finished =
            fold_finished_jobs(&mut topo, obs.nodes.iter().flat_map(|n| n.migrations.iter()), &node_shard);
        if finished > 0 {
            changed.push(format!("{finished} migrated slots change owner"));
        }
        // Endpoints of known nodes that moved (a restarted pod with a new IP or port).
        for shard in &mut topo.shards {
            for n in &mut shard.nodes {
                if let Some(o) = obs.nodes.iter().find(|o| o.id.as_ref() == Some(&n.id)) {
                    if o.addr.port != n.port || o.addr.ip != n.ip {
                        changed.push(format!("node {} moved to {}", short(&n.id.0), o.addr));
                        n.ip = o.addr.ip.clone();
                        n.port = o.addr.port;
                        n.hostname = o.addr.hostname.clone();
                    }
                }
            }
        }

        // Membership: replacements of nodes that came back with a new id, fail marks.
        let now = Instant::now();
        let silent: HashSet<NodeId> =
            membership::silent_nodes(&topo, &obs.nodes).into_iter().cloned().collect();
        self.down_since.retain(|id, _| silent.contains(id));
        for id in &silent {
            self.down_since.entry(id.clone()).or_insert(now);
        }
        let down_for: HashMap<NodeId, Duration> =
            self.down_since.iter().map(|(id, t)| (id.clone(), now.duration_since(*t))).collect();
        let members = membership::reconcile(&mut topo, desired, &obs.nodes, &down_for, self.fail_after);
        // Newcomers (no data) that took a primary's entry: a replica is promoted over them.
        let mut replaced: HashMap<NodeId, Instant> = HashMap::new();
        for c in &members {
            tracing::warn!("{c}");
            if let Change::Replaced { old, new, shard, .. } = c {
                let was_primary = topo.shard(shard).and_then(|s| s.primary()).is_some_and(|p| &p.id == new);
                let since = self.down_since.remove(old).unwrap_or(now);
                if was_primary {
                    replaced.insert(new.clone(), since);
                }
            }
            changed.push(c.to_string());
        }
        for line in membership::join_replicas(&mut topo, desired, &obs.nodes) {
            tracing::info!("{line}");
            changed.push(line);
        }

        // Promotions: failed, fenced or replaced primaries, FORCE/TAKEOVER requests.
        let replaced_ids: HashSet<NodeId> = replaced.keys().cloned().collect();
        let mut first: Vec<NodeId> = Vec::new();
        let mut promoted: Vec<FailoverRecord> = Vec::new();
        for d in failover::automatic(&topo, &obs.nodes, &replaced_ids) {
            if failover::promote(&mut topo, &d.shard, &d.new).is_err() {
                continue;
            }
            let since = replaced.get(&d.old).or_else(|| self.down_since.get(&d.old)).copied().unwrap_or(now);
            let what = format!(
                "failover of shard {}: {} promoted over {} ({}, offset {})",
                short(&d.shard.0),
                short(&d.new.0),
                short(&d.old.0),
                d.cause,
                d.offset
            );
            tracing::warn!("{what}");
            changed.push(what);
            first.push(d.new.clone());
            promoted.push(FailoverRecord {
                shard: d.shard,
                old_primary: d.old,
                new_primary: d.new,
                cause: d.cause,
                epoch: epoch + 1,
                offset: d.offset,
                recovered_in: now.duration_since(since),
            });
        }
        self.pending_failovers = promoted;
        self.step_failovers.clear();
        let unserved = membership::unserved_slots(&topo, &obs.nodes);

        // 2. Wait while migrations run.
        let order = shard_order(&topo, desired);
        topo.shards.sort_by_key(|s| order(&s.id));
        let input = PlanInput::from_topology(&topo, desired.iter().map(|s| s.id.clone()).collect());
        let p = plan(&input, &self.opts)?;
        let running_slots: usize = running.iter().map(|j| super::model::slot_count(&j.slots)).sum();
        let slots_to_move = p.moved_slots() + running_slots;
        if !running.is_empty() {
            if !changed.is_empty() {
                self.push(&mut topo, epoch + 1, &obs, &mut actions, &changed, &first).await;
            }
            actions.push(format!("{} migration(s) running", running.len()));
            return Ok(self.report(
                Phase::Migrating,
                actions,
                obs,
                running,
                slots_to_move,
                unserved,
                members,
            ));
        }

        // 3. New shards and unowned slots, in one push.
        for id in &p.added {
            let Some(d) = desired.iter().find(|d| &d.id == id) else { continue };
            let mut nodes = Vec::new();
            for (i, a) in d.nodes.iter().enumerate() {
                let Some(nid) = ids.get(a) else { continue };
                nodes.push(TopologyNode {
                    id: (*nid).clone(),
                    ip: a.ip.clone(),
                    hostname: a.hostname.clone(),
                    port: a.port,
                    role: if i == 0 { Role::Primary } else { Role::Replica },
                    fail: false,
                });
            }
            if nodes.first().map(|n| n.role) != Some(Role::Primary) {
                actions.push(format!("waiting for the primary of new shard {}", short(&id.0)));
                return Ok(self.report(
                    Phase::Waiting,
                    actions,
                    obs,
                    running,
                    slots_to_move,
                    unserved,
                    members,
                ));
            }
            topo.shards.push(TopologyShard { id: id.clone(), slots: Vec::new(), nodes });
            changed.push(format!("add shard {}", short(&id.0)));
        }
        for c in &p.claims {
            if let Some(s) = topo.shards.iter_mut().find(|s| s.id == c.id) {
                let mut all: Vec<u16> = s.slots.iter().flat_map(SlotRange::slots).collect();
                all.extend(c.slots.iter().flat_map(SlotRange::slots));
                s.slots = super::model::ranges_of(all);
                changed.push(format!(
                    "shard {} claims {} unowned slots",
                    short(&c.id.0),
                    super::model::slot_count(&c.slots)
                ));
            }
        }
        if !changed.is_empty() {
            self.push(&mut topo, epoch + 1, &obs, &mut actions, &changed, &first).await;
            return Ok(self.report(
                Phase::Progressing,
                actions,
                obs,
                running,
                slots_to_move,
                unserved,
                members,
            ));
        }

        // 4. Laggards.
        let laggards: Vec<&NodeAddr> =
            obs.nodes.iter().filter(|n| n.reachable() && n.epoch < topo.epoch).map(|n| &n.addr).collect();
        if !laggards.is_empty() {
            let mut tried = 0;
            for a in laggards {
                let key = format!("push topology to {a}");
                if !self.backoff.ready(&key, now) {
                    continue;
                }
                tried += 1;
                // A primary of an older epoch that the topology now makes a replica (a planned
                // failover interrupted after the promotion push): it may still hold its clients'
                // writes paused; once it knows it is a replica, release them to get -MOVED.
                let demoted = obs.nodes.iter().find(|n| &n.addr == a).is_some_and(|n| {
                    n.replication.as_ref().is_some_and(|r| r.role == Some(Role::Primary))
                        && n.id.as_ref().is_some_and(|id| {
                            topo.shard_of_node(id).is_some_and(|s| s.replicas().any(|r| &r.id == id))
                        })
                });
                let r = match self.pool.get(a).await {
                    Ok(mut c) => match c.set_topology(&topo).await {
                        Ok(()) if demoted => c.unpause().await.or(Ok(())),
                        r => r,
                    },
                    Err(e) => Err(e),
                };
                match r {
                    Ok(()) => {
                        self.backoff.succeeded(&key);
                        actions.push(format!("brought {a} up to epoch {}", topo.epoch));
                    }
                    Err(e) => {
                        self.pool.drop_client(a);
                        let d = self.backoff.failed(&key, e.to_string(), now);
                        actions.push(format!(
                            "pushing epoch {} to {a} failed: {e} (retry in {:.1}s)",
                            topo.epoch,
                            d.as_secs_f64()
                        ));
                    }
                }
            }
            log_actions(&actions);
            let phase = if tried > 0 { Phase::Progressing } else { Phase::Waiting };
            return Ok(self.report(phase, actions, obs, running, slots_to_move, unserved, members));
        }

        // 4b. Planned `CLUSTER FAILOVER` requests, one per step.
        if let Some((shard, to)) = failover::planned_requests(&topo, &obs.nodes).into_iter().next() {
            let key = format!("planned failover of shard {}", short(&shard.0));
            if self.backoff.ready(&key, now) {
                let r = super::failover_run::planned(
                    &mut self.pool,
                    &obs,
                    &shard,
                    Some(&to),
                    true,
                    &self.planned,
                )
                .await;
                match r {
                    Ok(rec) => {
                        self.backoff.succeeded(&key);
                        actions.push(format!(
                            "CLUSTER FAILOVER: {} promoted in shard {} (writes paused {} ms)",
                            short(&to.0),
                            short(&shard.0),
                            rec.recovered_in.as_millis()
                        ));
                        self.failovers.record(rec.clone());
                        self.step_failovers.push(rec);
                    }
                    Err(e) => {
                        let d = self.backoff.failed(&key, e.to_string(), now);
                        actions.push(format!("{key}: {e} (retry in {:.1}s)", d.as_secs_f64()));
                    }
                }
                log_actions(&actions);
                return Ok(self.report(
                    Phase::Progressing,
                    actions,
                    obs,
                    running,
                    slots_to_move,
                    unserved,
                    members,
                ));
            }
        }

        // 5. Start migrations.
        if !p.moves.is_empty() {
            // Shards whose migrations back off, whose primary does not answer, or new shards
            // whose replicas are not attached and in sync yet, wait.
            let unready = membership::unready_new_shards(&topo, desired, &obs.nodes);
            let busy: HashSet<ShardId> = topo
                .shards
                .iter()
                .filter(|s| {
                    !self.backoff.ready(&migrate_key(&s.id), now)
                        || s.primary().is_none_or(|p| p.fail || silent.contains(&p.id))
                })
                .map(|s| s.id.clone())
                .chain(unready)
                .collect();
            let mut started = 0;
            for m in next_moves(&p.moves, &busy) {
                let (Some(src), Some(dst)) = (
                    topo.shard(&m.from).and_then(|s| s.primary()),
                    topo.shard(&m.to).and_then(|s| s.primary()),
                ) else {
                    continue;
                };
                let src_addr =
                    NodeAddr { ip: src.ip.clone(), hostname: src.hostname.clone(), port: src.port };
                let r = match self.pool.get(&src_addr).await {
                    Ok(mut c) => c.migrate_slots(&m.slots, &dst.id).await,
                    Err(e) => Err(e),
                };
                let what = format!(
                    "migrate {} slots {} from shard {} to shard {}",
                    super::model::slot_count(&m.slots),
                    ranges_text(&m.slots),
                    short(&m.from.0),
                    short(&m.to.0)
                );
                let key = migrate_key(&m.from);
                match r {
                    Ok(()) => {
                        started += 1;
                        // Held until the job is seen running or finished, so a move is never
                        // started twice; a failed job counts as a failure when it is seen.
                        self.backoff.hold(&key, now);
                        actions.push(what);
                    }
                    Err(e) => {
                        self.pool.drop_client(&src_addr);
                        let d = self.backoff.failed(&key, format!("{what}: {e}"), now);
                        actions.push(format!("{what} failed: {e} (retry in {:.1}s)", d.as_secs_f64()));
                    }
                }
            }
            if started == 0 && actions.is_empty() {
                let waiting: Vec<&str> = busy.iter().map(|s| short(&s.0)).collect();
                actions.push(format!(
                    "moves wait for shard(s) {} (backoff, primary silent, or a new shard's replicas not in sync)",
                    waiting.join(",")
                ));
            }
            log_actions(&actions);
            let phase = if started > 0 { Phase::Progressing } else { Phase::Waiting };
            return Ok(self.report(phase, actions, obs, running, slots_to_move, unserved, members));
        }

        // 6. Remove drained shards.
        let empty: Vec<ShardId> = p
            .drained
            .iter()
            .filter(|id| topo.shard(id).is_some_and(|s| s.slots.is_empty()))
            .cloned()
            .collect();
        if !empty.is_empty() {
            topo.shards.retain(|s| !empty.contains(&s.id));
            let what: Vec<String> =
                empty.iter().map(|id| format!("remove drained shard {}", short(&id.0))).collect();
            self.push(&mut topo, epoch + 1, &obs, &mut actions, &what, &first).await;
            return Ok(self.report(
                Phase::Progressing,
                actions,
                obs,
                running,
                slots_to_move,
                unserved,
                members,
            ));
        }
        // Converged only when every slot is served too: a failed primary is not a finished
        // cluster, whatever the layout.
        let phase = if p.is_done() && unserved == 0 { Phase::Converged } else { Phase::Waiting };
        if p.is_done() && unserved > 0 {
            actions.push(format!("{unserved} slot(s) unserved: their primary does not answer"));
        }
        Ok(self.report(phase, actions, obs, running, slots_to_move, unserved, members))
    }

    #[allow(clippy::too_many_arguments)]
    fn report(
        &mut self,
        phase: Phase,
        actions: Vec<String>,
        observed: ObservedState,
        running: Vec<MigrationJob>,
        slots_to_move: usize,
        unserved_slots: usize,
        membership: Vec<Change>,
    ) -> StepReport {
        let stuck = self.backoff.stuck(Instant::now());
        let failovers = std::mem::take(&mut self.step_failovers);
        self.pending_failovers.clear();
        StepReport {
            phase,
            actions,
            observed,
            running,
            slots_to_move,
            unserved_slots,
            membership,
            stuck,
            failovers,
        }
    }

    /// Pushes `topo` at `epoch` to every reachable node.
    async fn push(
        &mut self,
        topo: &mut Topology,
        epoch: u64,
        obs: &ObservedState,
        actions: &mut Vec<String>,
        why: &[String],
        first: &[NodeId],
    ) {
        topo.epoch = epoch;
        if let Err(e) = topo.validate() {
            actions.push(format!("refusing to push an invalid topology: {e}"));
            tracing::error!(error = %e, "planned topology is invalid");
            return;
        }
        let mut ok = 0;
        let now = Instant::now();
        // New primaries first: they serve their slots before anyone is redirected to them.
        let mut targets: Vec<&super::model::ObservedNode> =
            obs.nodes.iter().filter(|n| n.reachable()).collect();
        targets.sort_by_key(|n| !n.id.as_ref().is_some_and(|id| first.contains(id)));
        for n in targets {
            let key = format!("push topology to {}", n.addr);
            let r = match self.pool.get(&n.addr).await {
                Ok(mut c) => c.set_topology(topo).await,
                Err(e) => Err(e),
            };
            match r {
                Ok(()) => {
                    ok += 1;
                    self.backoff.succeeded(&key);
                    let id = n.id.as_ref();
                    let (done, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending_failovers)
                        .into_iter()
                        .partition(|f| Some(&f.new_primary) == id);
                    self.pending_failovers = rest;
                    for f in done {
                        self.failovers.record(f.clone());
                        self.step_failovers.push(f);
                    }
                }
                Err(e) => {
                    self.pool.drop_client(&n.addr);
                    self.backoff.failed(&key, e.to_string(), now);
                    actions.push(format!("push to {} failed: {e}", n.addr));
                }
            }
        }
        actions.push(format!("pushed topology epoch {epoch} to {ok} node(s): {}", why.join("; ")));
        log_actions(actions);
    }
}

fn log_actions(actions: &[String]) {
    for a in actions {
        tracing::info!("{a}");
    }
}

fn short(id: &str) -> &str {
    &id[..id.len().min(8)]
}

fn ranges_text(r: &[SlotRange]) -> String {
    r.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
}

/// Running jobs, once each (source and target both report them).
fn dedup_jobs<'a>(jobs: impl Iterator<Item = &'a MigrationJob>) -> Vec<MigrationJob> {
    let mut seen = HashSet::new();
    jobs.filter(|j| seen.insert((j.source_node.clone(), j.target_node.clone(), j.slots.clone())))
        .cloned()
        .collect()
}

/// Ordinal order: desired shards in their order, then the others in topology order.
fn shard_order<'a>(topo: &Topology, desired: &'a [DesiredShard]) -> impl Fn(&ShardId) -> (usize, usize) + 'a {
    let topo_pos: HashMap<ShardId, usize> =
        topo.shards.iter().enumerate().map(|(i, s)| (s.id.clone(), i)).collect();
    move |id| match desired.iter().position(|d| &d.id == id) {
        Some(i) => (0, i),
        None => (1, topo_pos.get(id).copied().unwrap_or(usize::MAX)),
    }
}

/// Gives each slot to the shard that the newest successful migration of that slot moved it
/// to, when the topology still names another owner. Returns how many slots changed owner.
/// Pure: `node_shard` maps node ids to their shards.
pub fn fold_finished_jobs<'a>(
    topo: &mut Topology,
    jobs: impl Iterator<Item = &'a MigrationJob>,
    node_shard: &HashMap<NodeId, ShardId>,
) -> usize {
    let mut newest: Vec<Option<&MigrationJob>> = vec![None; usize::from(SLOT_COUNT)];
    for j in jobs.filter(|j| j.state == MigrationState::Success) {
        for s in j.slots.iter().flat_map(SlotRange::slots).filter(|&s| s < SLOT_COUNT) {
            let e = &mut newest[usize::from(s)];
            if e.is_none_or(|old| j.last_update > old.last_update) {
                *e = Some(j);
            }
        }
    }
    let Ok(owners) = topo.owners() else { return 0 };
    let mut moved: HashMap<usize, Vec<u16>> = HashMap::new();
    let mut removed: HashMap<usize, HashSet<u16>> = HashMap::new();
    for (slot, j) in newest.iter().enumerate() {
        let Some(j) = j else { continue };
        let Some(target_shard) = node_shard.get(&j.target_node) else { continue };
        let Some(ti) = topo.shards.iter().position(|s| &s.id == target_shard) else { continue };
        if owners[slot] == Some(ti) {
            continue;
        }
        if let Some(oi) = owners[slot] {
            removed.entry(oi).or_default().insert(slot as u16);
        }
        moved.entry(ti).or_default().push(slot as u16);
    }
    let count = moved.values().map(Vec::len).sum();
    for (i, gone) in removed {
        let keep: Vec<u16> =
            topo.shards[i].slots.iter().flat_map(SlotRange::slots).filter(|s| !gone.contains(s)).collect();
        topo.shards[i].slots = super::model::ranges_of(keep);
    }
    for (i, add) in moved {
        let mut all: Vec<u16> = topo.shards[i].slots.iter().flat_map(SlotRange::slots).collect();
        all.extend(add);
        topo.shards[i].slots = super::model::ranges_of(all);
    }
    count
}

#[cfg(test)]
#[path = "driver_tests.rs"]
mod tests;
