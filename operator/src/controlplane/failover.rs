//! Failover: replacing a shard's primary by one of its replicas, planned or forced.
//!
//! Why here and not in the nodes: Shoal nodes do not gossip or vote. The control plane already
//! owns the topology and its epoch, so it decides promotions too, and fences with the epoch: a
//! promotion is a push of the topology at `epoch + 1` with the roles swapped. A node obeys the
//! newest epoch it is given; an old primary that comes back gets the new topology as a replica
//! and never serves those slots as primary again.
//!
//! - **Planned** (rollouts, `CLUSTER FAILOVER` without option): pause writes on the primary P
//!   (`CLIENT PAUSE <ms> WRITE`), read P's `master_repl_offset`, wait (bounded) until the
//!   replica R has applied exactly that much, push to R first, then to P, then to the rest, and
//!   unpause P: the paused clients get `-MOVED` to R. If R does not catch up in time, P is
//!   unpaused and nothing changed. The sequence is the pure [`Planned`] state machine; the
//!   driver runs its commands against the nodes ([`super::driver::Driver::planned_failover`]).
//! - **Automatic** ([`automatic`]): a primary marked `fail` (silent past `fail_after`), a
//!   primary that restarted without its data and says `shoal_fenced:1`, or a primary entry just
//!   taken by a newcomer with no data (a wiped pod) is replaced by the answering replica with
//!   the highest replication offset ([`candidate`]); `CLUSTER FAILOVER FORCE|TAKEOVER` on a
//!   replica promotes it the same way. The driver pushes the new primary first.
//!
//! What a promotion can lose: with a dead primary, the writes it acknowledged that no replica
//! had received. Writes acknowledged with `WAIT 1` had reached a replica; the replica with the
//! highest offset holds every byte any replica holds, so those survive.

use std::collections::HashSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::client::ClientError;
use super::model::{
    FailoverKind, NodeAddr, NodeId, ObservedNode, ReplicationInfo, Role, ShardId, Topology, TopologyError,
    TopologyShard,
};

/// Why a shard's primary changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Cause {
    /// Planned: writes paused, the replica caught up exactly (rollouts, `CLUSTER FAILOVER`).
    Planned,
    /// The primary was silent past the failure-detection window.
    PrimaryFailed,
    /// The primary restarted without its data and is fenced.
    PrimaryFenced,
    /// A node with a new id (no data) came up in the primary's place.
    PrimaryReplaced,
    /// `CLUSTER FAILOVER FORCE|TAKEOVER` on the replica.
    Requested(FailoverKind),
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Cause::Planned => "planned",
            Cause::PrimaryFailed => "primary failed",
            Cause::PrimaryFenced => "primary restarted without its data (fenced)",
            Cause::PrimaryReplaced => "primary replaced by an empty node",
            Cause::Requested(FailoverKind::Default) => "CLUSTER FAILOVER",
            Cause::Requested(FailoverKind::Force) => "CLUSTER FAILOVER FORCE",
            Cause::Requested(FailoverKind::Takeover) => "CLUSTER FAILOVER TAKEOVER",
        })
    }
}

/// One promotion, as recorded and reported.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FailoverRecord {
    pub shard: ShardId,
    pub old_primary: NodeId,
    pub new_primary: NodeId,
    pub cause: Cause,
    /// The epoch of the push that made the change.
    pub epoch: u64,
    /// The new primary's replication offset when it was chosen.
    pub offset: u64,
    /// From the first sign of trouble (the primary silent, fenced or replaced; the start of a
    /// planned failover) to the push: how long the shard's writes could not be served.
    #[serde(with = "millis")]
    pub recovered_in: Duration,
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

/// Failovers since the control plane started (soft state: a restarted control plane counts
/// from zero, as a restarted Prometheus counter does).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FailoverLog {
    pub total: u64,
    /// The most recent ones, newest last (at most 32).
    pub recent: Vec<FailoverRecord>,
}

impl FailoverLog {
    pub(super) fn record(&mut self, r: FailoverRecord) {
        self.total += 1;
        self.recent.push(r);
        if self.recent.len() > 32 {
            self.recent.remove(0);
        }
    }

    /// The time to recover of the newest failover.
    pub fn last_recovery(&self) -> Option<Duration> {
        self.recent.last().map(|r| r.recovered_in)
    }
}

/// Why a failover did not happen.
#[derive(Debug, thiserror::Error)]
pub enum FailoverError {
    #[error("shard {0} is not in the topology")]
    NoShard(ShardId),
    #[error("shard {0} has no primary")]
    NoPrimary(ShardId),
    #[error("shard {0} has no replica that can take over (answering, not fenced, not syncing)")]
    NoCandidate(ShardId),
    #[error("node {0} is not a replica of shard {1}")]
    NotAReplica(NodeId, ShardId),
    #[error("the promoted topology is invalid: {0}")]
    Invalid(#[from] TopologyError),
    #[error(transparent)]
    Node(#[from] ClientError),
    #[error("planned failover aborted, nothing changed: {0}")]
    Aborted(String),
    #[error("planned failover stopped with its outcome unknown, the next step settles it: {0}")]
    Unsettled(String),
    #[error("planned failover abandoned at {0:?} (test hook)")]
    Abandoned(Stage),
}

/// The replica of `shard` to promote: answering, not marked `fail`, not fenced, not in a full
/// sync, not in `exclude`; the highest replication offset wins, then topology order. Returns it
/// with its offset.
pub fn candidate(
    shard: &TopologyShard,
    observed: &[ObservedNode],
    exclude: &HashSet<NodeId>,
) -> Option<(NodeId, u64)> {
    let mut best: Option<(NodeId, u64)> = None;
    for n in shard.replicas().filter(|n| !n.fail && !exclude.contains(&n.id)) {
        let Some(o) = observed.iter().find(|o| o.reachable() && o.id.as_ref() == Some(&n.id)) else {
            continue;
        };
        let Some(r) = &o.replication else { continue };
        if r.fenced || r.sync_in_progress {
            continue;
        }
        if best.as_ref().is_none_or(|(_, off)| r.offset() > *off) {
            best = Some((n.id.clone(), r.offset()));
        }
    }
    best
}

/// Makes `new` the primary of `shard` in `topo` and every other node of the shard a replica.
/// Returns the old primary.
pub fn promote(topo: &mut Topology, shard: &ShardId, new: &NodeId) -> Result<NodeId, FailoverError> {
    let s = topo
        .shards
        .iter_mut()
        .find(|s| &s.id == shard)
        .ok_or_else(|| FailoverError::NoShard(shard.clone()))?;
    let old = s.primary().map(|p| p.id.clone()).ok_or_else(|| FailoverError::NoPrimary(shard.clone()))?;
    if !s.nodes.iter().any(|n| &n.id == new && n.role == Role::Replica) {
        return Err(FailoverError::NotAReplica(new.clone(), shard.clone()));
    }
    for n in &mut s.nodes {
        if &n.id == new {
            n.role = Role::Primary;
            n.fail = false;
        } else {
            n.role = Role::Replica;
        }
    }
    // The new primary first: CLUSTER SHARDS lists it first, as Valkey does.
    s.nodes.sort_by_key(|n| n.role != Role::Primary);
    Ok(old)
}

/// A promotion the topology needs now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub shard: ShardId,
    pub old: NodeId,
    pub new: NodeId,
    pub offset: u64,
    pub cause: Cause,
}

/// The promotions `topo` needs now, one per shard at most (pure). A shard needs one when its
/// primary is marked `fail`, says it is fenced, is in `replaced` (a newcomer with no data just
/// took the primary's entry), or when one of its replicas asks for `CLUSTER FAILOVER FORCE` or
/// `TAKEOVER`. Shards with no usable replica are left alone (and stay unserved).
pub fn automatic(topo: &Topology, observed: &[ObservedNode], replaced: &HashSet<NodeId>) -> Vec<Decision> {
    let mut out = Vec::new();
    for s in &topo.shards {
        let Some(p) = s.primary() else { continue };
        let seen = observed.iter().find(|o| o.reachable() && o.id.as_ref() == Some(&p.id));
        let cause = if p.fail {
            Some(Cause::PrimaryFailed)
        } else if seen.is_some_and(ObservedNode::fenced) {
            Some(Cause::PrimaryFenced)
        } else if replaced.contains(&p.id) {
            Some(Cause::PrimaryReplaced)
        } else {
            None
        };
        let exclude: HashSet<NodeId> = [p.id.clone()].into();
        if let Some(cause) = cause {
            if let Some((new, offset)) = candidate(s, observed, &exclude) {
                out.push(Decision { shard: s.id.clone(), old: p.id.clone(), new, offset, cause });
            }
            continue;
        }
        // FORCE / TAKEOVER requests: promote the asking replica at once.
        for r in s.replicas().filter(|n| !n.fail) {
            let Some(info) = replication_of(observed, &r.id) else { continue };
            let Some(kind @ (FailoverKind::Force | FailoverKind::Takeover)) = info.failover_requested else {
                continue;
            };
            if info.fenced || info.sync_in_progress {
                continue;
            }
            out.push(Decision {
                shard: s.id.clone(),
                old: p.id.clone(),
                new: r.id.clone(),
                offset: info.offset(),
                cause: Cause::Requested(kind),
            });
            break;
        }
    }
    out
}

/// Replicas that asked for a planned `CLUSTER FAILOVER` (no option): `(shard, replica)`.
pub fn planned_requests(topo: &Topology, observed: &[ObservedNode]) -> Vec<(ShardId, NodeId)> {
    topo.shards
        .iter()
        .flat_map(|s| s.replicas().map(move |r| (s, r)))
        .filter(|(_, r)| {
            replication_of(observed, &r.id)
                .is_some_and(|i| i.failover_requested == Some(FailoverKind::Default))
        })
        .map(|(s, r)| (s.id.clone(), r.id.clone()))
        .collect()
}

fn replication_of<'a>(observed: &'a [ObservedNode], id: &NodeId) -> Option<&'a ReplicationInfo> {
    observed.iter().find(|o| o.reachable() && o.id.as_ref() == Some(id)).and_then(|o| o.replication.as_ref())
}

/// One replica's distance behind its primary.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaLag {
    pub shard: ShardId,
    pub node: NodeId,
    pub addr: NodeAddr,
    /// Primary offset minus replica offset, bytes (0 when ahead, which only a stale read shows).
    pub lag_bytes: u64,
    pub link_up: bool,
    pub sync_in_progress: bool,
}

/// The lag of every answering replica whose primary answers too (pure).
pub fn replica_lags(topo: &Topology, observed: &[ObservedNode]) -> Vec<ReplicaLag> {
    let mut out = Vec::new();
    for s in &topo.shards {
        let Some(p) = s.primary().and_then(|p| replication_of(observed, &p.id)) else { continue };
        for r in s.replicas() {
            let Some(info) = replication_of(observed, &r.id) else { continue };
            out.push(ReplicaLag {
                shard: s.id.clone(),
                node: r.id.clone(),
                addr: r.addr(),
                lag_bytes: p.master_repl_offset.saturating_sub(info.offset()),
                link_up: info.link_up,
                sync_in_progress: info.sync_in_progress,
            });
        }
    }
    out
}

/// How far a replica may trail its primary, in bytes, and still count as in sync for a
/// rollout (the planned failover itself waits for an exact match).
pub const IN_SYNC_LAG: u64 = 1 << 20;

/// True when `node` is a replica whose link is up, not loading a full sync, and within
/// [`IN_SYNC_LAG`] of its shard's primary.
pub fn in_sync(topo: &Topology, observed: &[ObservedNode], node: &NodeId) -> bool {
    replica_lags(topo, observed)
        .iter()
        .any(|l| &l.node == node && l.link_up && !l.sync_in_progress && l.lag_bytes <= IN_SYNC_LAG)
}

/// Bounds of a planned failover.
#[derive(Clone, Debug)]
pub struct PlannedOptions {
    /// How long the replica may take to reach the primary's offset once writes are paused.
    pub catch_up: Duration,
    /// Added to `catch_up` for the `CLIENT PAUSE` timeout, so a control plane that dies
    /// mid-failover leaves the primary paused for a bounded time only.
    pub pause_margin: Duration,
    /// Tests: stop sending commands at this stage, as if the control plane had died there.
    pub abandon_at: Option<Stage>,
}

impl Default for PlannedOptions {
    fn default() -> Self {
        PlannedOptions {
            catch_up: Duration::from_secs(5),
            pause_margin: Duration::from_secs(5),
            abandon_at: None,
        }
    }
}

impl PlannedOptions {
    /// The `CLIENT PAUSE` timeout, milliseconds.
    pub fn pause_ms(&self) -> u64 {
        (self.catch_up + self.pause_margin).as_millis() as u64
    }
}

/// The stages of a planned failover, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Stage {
    Pause,
    ReadPrimaryOffset,
    PollReplica,
    PushNewPrimary,
    PushOldPrimary,
    PushRest,
    Unpause,
}

/// What the runner must do next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Send the command of this stage.
    Run(Stage),
    /// Finished: promoted, or aborted with nothing changed (the reason), or stopped with the
    /// outcome left to the next observation (the reason): the primary's pause lapses by itself.
    Promoted,
    Aborted(String),
    Unsettled(String),
}

/// What the last command gave.
#[derive(Clone, Debug)]
pub enum Event {
    Start,
    Done,
    PrimaryOffset(u64),
    Replica(ReplicationInfo),
    /// A node answered with an error: the command did nothing.
    Refused(String),
    /// The connection failed: the command may or may not have been applied.
    Lost(String),
}

/// The planned-failover state machine (pure; time is an argument).
#[derive(Clone, Debug)]
pub struct Planned {
    stage: Option<Stage>,
    target: u64,
    catch_up: Duration,
    /// When the catch-up wait began.
    waiting_since: Option<Duration>,
    abort: Option<String>,
    unsettled: Option<String>,
}

impl Planned {
    pub fn new(catch_up: Duration) -> Planned {
        Planned { stage: None, target: 0, catch_up, waiting_since: None, abort: None, unsettled: None }
    }

    /// The offset the replica must reach (P's `master_repl_offset` once paused).
    pub fn target(&self) -> u64 {
        self.target
    }

    /// The next command after `ev`; `now` is any monotonic clock reading.
    pub fn next(&mut self, ev: Event, now: Duration) -> Command {
        use Stage::*;
        let go = |s: &mut Planned, st: Stage| {
            s.stage = Some(st);
            Command::Run(st)
        };
        match (self.stage, ev) {
            (None, _) => go(self, Pause),
            // Pausing refused or lost: nothing changed (a lost pause lapses by itself).
            (Some(Pause), Event::Refused(e) | Event::Lost(e)) => {
                Command::Aborted(format!("pausing writes: {e}"))
            }
            (Some(Pause), _) => go(self, ReadPrimaryOffset),
            (Some(ReadPrimaryOffset), Event::PrimaryOffset(o)) => {
                self.target = o;
                self.waiting_since = Some(now);
                go(self, PollReplica)
            }
            (Some(PollReplica), Event::Replica(r)) => {
                if r.link_up && !r.sync_in_progress && r.offset() >= self.target {
                    return go(self, PushNewPrimary);
                }
                let waited = now.saturating_sub(self.waiting_since.unwrap_or(now));
                if waited >= self.catch_up {
                    self.abort = Some(format!(
                        "the replica reached offset {} of {} in {:.1}s (link {})",
                        r.offset(),
                        self.target,
                        waited.as_secs_f64(),
                        if r.link_up { "up" } else { "down" }
                    ));
                    return go(self, Unpause);
                }
                go(self, PollReplica)
            }
            // The replica refused the topology: nothing changed.
            (Some(PushNewPrimary), Event::Refused(e)) => {
                self.abort = Some(format!("the replica refused the promotion: {e}"));
                go(self, Unpause)
            }
            // It may hold the new topology: the old primary stays paused (its pause lapses) and
            // the next observation settles it (the newest epoch wins, laggards are pushed).
            (Some(PushNewPrimary), Event::Lost(e)) => {
                Command::Unsettled(format!("promotion push lost: {e}; the next step settles it"))
            }
            (Some(PushNewPrimary), _) => go(self, PushOldPrimary),
            // The old primary must know it is a replica before it may take writes again.
            (Some(PushOldPrimary), Event::Refused(e) | Event::Lost(e)) => {
                self.unsettled = Some(format!("the old primary did not take the new topology: {e}"));
                go(self, PushRest)
            }
            (Some(PushOldPrimary), _) => go(self, PushRest),
            (Some(PushRest), _) => match self.unsettled.take() {
                // Left paused: unpausing would give it writes as a primary of the old epoch.
                Some(why) => Command::Unsettled(why),
                None => go(self, Unpause),
            },
            (Some(Unpause), _) => match self.abort.take() {
                Some(why) => Command::Aborted(why),
                None => Command::Promoted,
            },
            // Any other failure before the promotion push: unpause, nothing changed.
            (Some(ReadPrimaryOffset | PollReplica), Event::Refused(e) | Event::Lost(e)) => {
                self.abort = Some(e);
                go(self, Unpause)
            }
            (Some(s), ev) => {
                self.abort = Some(format!("unexpected {ev:?} at {s:?}"));
                go(self, Unpause)
            }
        }
    }
}

#[cfg(test)]
#[path = "failover_tests.rs"]
mod tests;
