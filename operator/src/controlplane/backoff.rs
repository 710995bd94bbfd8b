//! Retry state for the control plane's actions (a migration between two shards, a topology push
//! to one node): exponential backoff with jitter, and the list of actions that keep failing.
//!
//! Why jitter: several operators (or one per cluster) retrying against the same nodes in
//! lockstep turn a transient failure into synchronized load; a random delay in
//! `[d/2, d]` ("equal jitter") spreads them while keeping the expected wait near `d`.
//! Why "stuck": a failing action that is retried forever with nobody told is how a cluster
//! stays half-served for hours. An action failing for longer than `stuck_after` is reported
//! (the Kubernetes layer turns it into an Event, a metric and a status condition).
//!
//! This is soft state: a restarted control plane starts with no backoff, which is safe (it
//! retries once sooner) and keeps the nodes the only source of truth.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Backoff knobs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackoffPolicy {
    pub base: Duration,
    pub max: Duration,
    /// An action failing continuously for this long is reported as stuck.
    pub stuck_after: Duration,
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        BackoffPolicy {
            base: Duration::from_millis(250),
            max: Duration::from_secs(30),
            stuck_after: Duration::from_secs(30),
        }
    }
}

#[derive(Clone, Debug)]
struct Entry {
    failures: u32,
    first_failure: Instant,
    until: Instant,
    last_error: String,
}

/// An action that keeps failing, as status and events show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StuckAction {
    /// What is being retried (`migrate 2048 slots from shard a to shard b`, `push to host:port`).
    pub action: String,
    pub failures: u32,
    /// Seconds since the first failure of the current streak.
    pub failing_for_secs: u64,
    pub last_error: String,
}

/// Backoff state per action key.
#[derive(Debug, Default)]
pub struct Backoffs {
    policy: BackoffPolicy,
    entries: HashMap<String, Entry>,
}

impl Backoffs {
    pub fn new(policy: BackoffPolicy) -> Backoffs {
        Backoffs { policy, entries: HashMap::new() }
    }

    /// True when `key` may be tried at `now` (never failed, or its backoff has passed).
    pub fn ready(&self, key: &str, now: Instant) -> bool {
        self.entries.get(key).is_none_or(|e| e.until <= now)
    }

    /// Records a failure of `key`; returns the delay before the next try.
    pub fn failed(&mut self, key: &str, error: impl Into<String>, now: Instant) -> Duration {
        let e = self.entries.entry(key.to_string()).or_insert(Entry {
            failures: 0,
            first_failure: now,
            until: now,
            last_error: String::new(),
        });
        e.failures += 1;
        e.last_error = error.into();
        let d = delay(&self.policy, e.failures, fastrand::f64());
        e.until = now + d;
        d
    }

    /// Holds `key` for its next backoff delay without counting a failure (an action started
    /// that must not be started again before its outcome is known).
    pub fn hold(&mut self, key: &str, now: Instant) {
        let failures = self.entries.get(key).map_or(0, |e| e.failures);
        let d = delay(&self.policy, failures.max(1), 1.0);
        match self.entries.get_mut(key) {
            Some(e) => e.until = now + d,
            None => {
                self.entries.insert(
                    key.to_string(),
                    Entry { failures: 0, first_failure: now, until: now + d, last_error: String::new() },
                );
            }
        }
    }

    /// Forgets `key`'s failures (it succeeded).
    pub fn succeeded(&mut self, key: &str) {
        self.entries.remove(key);
    }

    /// Failures of `key` in its current streak.
    pub fn failures(&self, key: &str) -> u32 {
        self.entries.get(key).map_or(0, |e| e.failures)
    }

    /// Actions failing for at least `stuck_after`, sorted by key.
    pub fn stuck(&self, now: Instant) -> Vec<StuckAction> {
        let mut v: Vec<StuckAction> = self
            .entries
            .iter()
            .filter(|(_, e)| e.failures > 0 && now.duration_since(e.first_failure) >= self.policy.stuck_after)
            .map(|(k, e)| StuckAction {
                action: k.clone(),
                failures: e.failures,
                failing_for_secs: now.duration_since(e.first_failure).as_secs(),
                last_error: e.last_error.clone(),
            })
            .collect();
        v.sort_by(|a, b| a.action.cmp(&b.action));
        v
    }
}

/// The delay after `failures` failures: `base * 2^(failures-1)` capped at `max`, scaled into
/// `[d/2, d]` by `unit` (uniform in `[0, 1]`).
pub fn delay(p: &BackoffPolicy, failures: u32, unit: f64) -> Duration {
    let exp = p.base.saturating_mul(1u32 << failures.saturating_sub(1).min(16));
    let d = exp.min(p.max);
    d.mul_f64(0.5 + 0.5 * unit.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_and_jitter_stays_in_the_upper_half() {
        let p = BackoffPolicy::default();
        assert_eq!(delay(&p, 1, 1.0), Duration::from_millis(250));
        assert_eq!(delay(&p, 3, 1.0), Duration::from_millis(1000));
        assert_eq!(delay(&p, 40, 1.0), Duration::from_secs(30));
        assert_eq!(delay(&p, 3, 0.0), Duration::from_millis(500));
        for _ in 0..100 {
            let d = delay(&p, 4, fastrand::f64());
            assert!(d >= Duration::from_millis(1000) && d <= Duration::from_millis(2000), "{d:?}");
        }
    }

    #[test]
    fn failures_back_off_and_a_long_streak_is_stuck() {
        let p = BackoffPolicy { stuck_after: Duration::from_secs(10), ..BackoffPolicy::default() };
        let mut b = Backoffs::new(p);
        let t0 = Instant::now();
        assert!(b.ready("push a", t0));
        let d = b.failed("push a", "connection refused", t0);
        assert!(!b.ready("push a", t0));
        assert!(b.ready("push a", t0 + d));
        assert!(b.stuck(t0 + Duration::from_secs(9)).is_empty());
        b.failed("push a", "connection refused again", t0 + Duration::from_secs(5));
        let s = b.stuck(t0 + Duration::from_secs(11));
        assert_eq!(s.len(), 1);
        assert_eq!((s[0].failures, s[0].failing_for_secs), (2, 11));
        assert_eq!(s[0].last_error, "connection refused again");
        b.succeeded("push a");
        assert!(b.stuck(t0 + Duration::from_secs(60)).is_empty());
        assert!(b.ready("push a", t0));
    }

    #[test]
    fn a_hold_delays_without_counting() {
        let mut b = Backoffs::new(BackoffPolicy::default());
        let t0 = Instant::now();
        b.hold("migrate", t0);
        assert!(!b.ready("migrate", t0));
        assert_eq!(b.failures("migrate"), 0);
        assert!(b.stuck(t0 + Duration::from_secs(3600)).is_empty());
    }
}
