//! Rolling a configuration change (local mode: new node arguments; Kubernetes: a new pod
//! template revision, or a pod on a Node being removed) through a cluster without losing a
//! key: one shard at a time, drain its slots to the others (a normal scale-in of that one shard), restart its node
//! with the new configuration, give the slots back, and go on to the next.
//!
//! Why drain rather than restart in place: a shard without replicas is one node holding the
//! only copy of its slots (no persistence), so a restart in place loses them. Draining costs
//! two migrations of 1/n of the keys per shard, and clients see only `MOVED`.
//!
//! A shard with replicas is rolled in place instead ([`next_replicated`]): its replicas are
//! restarted one at a time, each waited for until it is back in sync; then the primary hands
//! over to an updated replica with a planned failover (no acknowledged write lost, writes wait
//! for milliseconds), and the old primary, now a replica, is restarted last. No slot moves.
//!
//! The state machine is pure (`next`), driven by what the last control-plane step reported,
//! so it is unit-tested without processes. A step that takes longer than its bound pauses the
//! rollout with a reason; it resumes by itself when the step completes.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Where the shard being rolled is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Step {
    /// Its slots are moving to the other shards; it is left out of the desired shards.
    Draining,
    /// It owns nothing and has left the topology: restart it now.
    Restart,
    /// Restarted with the new configuration; desired again, taking slots back.
    Returning,
    /// A shard with replicas, rolled in place ([`next_replicated`]).
    InPlace,
}

/// The rollout in progress.
#[derive(Clone, Debug)]
pub struct Rollout {
    pub ordinal: u32,
    pub step: Step,
    /// When the current step began.
    pub since: Instant,
}

/// What the rollout reports (status line, tests, the Kubernetes status has the same counts).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutStatus {
    pub updated: u32,
    pub outdated: u32,
    /// `shard 2: draining`, while a shard is being rolled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<String>,
    /// Why the rollout does not proceed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<String>,
}

/// Facts the state machine decides on, from the last step.
#[derive(Clone, Copy, Debug)]
pub struct Seen {
    /// The driver found the cluster converged on the desired shards.
    pub converged: bool,
    /// The rolled shard is named in the topology.
    pub in_topology: bool,
    /// The rolled shard owns slots.
    pub owns_slots: bool,
}

/// Decides the next step of `r`; `None` when the shard is done.
pub fn next(r: &Rollout, seen: Seen) -> Option<Step> {
    match r.step {
        Step::Draining if seen.converged && !seen.in_topology => Some(Step::Restart),
        Step::Returning if seen.converged && seen.owns_slots => None,
        s => Some(s),
    }
}

/// How long one step may take before the rollout reports itself paused.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(300);

/// The pause reason when `r` has been in its step for longer than `limit`.
pub fn overdue(r: &Rollout, now: Instant, limit: Duration) -> Option<String> {
    let waited = now.duration_since(r.since);
    (waited > limit).then(|| {
        let what = match r.step {
            Step::Draining => "draining its slots to the other shards",
            Step::Restart => "restarting its node",
            Step::Returning => "taking its slots back",
            Step::InPlace => "restarting its nodes replica first",
        };
        format!("shard {} has been {what} for {}s (limit {}s)", r.ordinal, waited.as_secs(), limit.as_secs())
    })
}

/// One member of a shard with replicas, as the last step saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemberView {
    pub member: u32,
    /// Runs an older configuration.
    pub outdated: bool,
    /// The topology's primary of the shard.
    pub primary: bool,
    pub reachable: bool,
    /// A replica with its link up, not loading, close to the primary's offset.
    pub in_sync: bool,
}

/// The next safe action on a shard with replicas.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InPlace {
    /// Restart this (replica) member.
    Restart(u32),
    /// Planned failover of the primary to this member.
    Failover(u32),
    /// Not now: why.
    Wait(String),
    /// Every member runs the new configuration.
    Done,
}

/// Replica first, one at a time, each back in sync before the next; the primary last, after a
/// planned failover to an updated in-sync replica. Pure.
pub fn next_replicated(members: &[MemberView]) -> InPlace {
    if let Some(m) = members.iter().find(|m| !m.reachable) {
        return InPlace::Wait(format!("member {} does not answer", m.member));
    }
    if !members.iter().any(|m| m.primary) {
        return InPlace::Wait("the shard has no primary".into());
    }
    if let Some(m) = members.iter().find(|m| !m.primary && !m.in_sync) {
        return InPlace::Wait(format!("member {} is not in sync yet", m.member));
    }
    if let Some(m) = members.iter().find(|m| !m.primary && m.outdated) {
        return InPlace::Restart(m.member);
    }
    if members.iter().any(|m| m.primary && m.outdated) {
        return match members.iter().find(|m| !m.primary && !m.outdated && m.in_sync) {
            Some(to) => InPlace::Failover(to.member),
            None => InPlace::Wait("no updated in-sync replica to hand over to".into()),
        };
    }
    InPlace::Done
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(step: Step) -> Rollout {
        Rollout { ordinal: 1, step, since: Instant::now() }
    }

    #[test]
    fn drain_then_restart_then_return() {
        let s = |converged, in_topology, owns_slots| Seen { converged, in_topology, owns_slots };
        assert_eq!(next(&at(Step::Draining), s(false, true, true)), Some(Step::Draining));
        // Converged with the shard still named (its removal is the next push): keep draining.
        assert_eq!(next(&at(Step::Draining), s(true, true, false)), Some(Step::Draining));
        assert_eq!(next(&at(Step::Draining), s(true, false, false)), Some(Step::Restart));
        assert_eq!(next(&at(Step::Returning), s(false, true, false)), Some(Step::Returning));
        assert_eq!(next(&at(Step::Returning), s(true, true, true)), None);
    }

    #[test]
    fn in_place_goes_replica_first_then_fails_over_then_restarts_the_old_primary() {
        let m = |member, outdated, primary, in_sync| MemberView {
            member,
            outdated,
            primary,
            reachable: true,
            in_sync,
        };
        // Both outdated: the replica first.
        assert_eq!(next_replicated(&[m(0, true, true, false), m(1, true, false, true)]), InPlace::Restart(1));
        // Restarted, syncing: wait.
        assert!(matches!(
            next_replicated(&[m(0, true, true, false), m(1, false, false, false)]),
            InPlace::Wait(_)
        ));
        let mut down = m(1, false, false, false);
        down.reachable = false;
        assert!(matches!(next_replicated(&[m(0, true, true, false), down]), InPlace::Wait(_)));
        // In sync: hand the primary over to it.
        assert_eq!(
            next_replicated(&[m(0, true, true, false), m(1, false, false, true)]),
            InPlace::Failover(1)
        );
        // The old primary is now an outdated replica: restart it.
        assert_eq!(
            next_replicated(&[m(0, true, false, true), m(1, false, true, false)]),
            InPlace::Restart(0)
        );
        assert_eq!(next_replicated(&[m(0, false, false, true), m(1, false, true, false)]), InPlace::Done);
        // Never hand over to an outdated replica while the primary is outdated.
        assert!(matches!(
            next_replicated(&[m(0, true, true, false), m(1, false, false, true), m(2, true, false, true)]),
            InPlace::Restart(2)
        ));
    }

    #[test]
    fn a_slow_step_pauses_with_a_reason() {
        let r = at(Step::Draining);
        assert_eq!(overdue(&r, r.since + Duration::from_secs(10), Duration::from_secs(60)), None);
        let why = overdue(&r, r.since + Duration::from_secs(61), Duration::from_secs(60)).expect("overdue");
        assert!(why.contains("shard 1") && why.contains("draining"), "{why}");
    }
}
