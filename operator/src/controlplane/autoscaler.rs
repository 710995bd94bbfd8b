//! The autoscaler: pure decision functions over metric samples, so every rule is unit tested
//! and the same code decides in local mode and in Kubernetes.
//!
//! **Shards** follow ElastiCache's target tracking, and go further:
//! - each configured metric (executor busy ratio, memory used vs `maxmemory`, both averaged over
//!   the primaries) has a target; **either** may drive a scale-out, a scale-in needs **all** of
//!   them to allow it;
//! - a breach must be **sustained**: every sample of the evaluation window (short for scale-out,
//!   long for scale-in) must breach, so one noisy sample never resizes the cluster;
//! - **hysteresis**: scale in only when the metric is below `scaleInThreshold` (75%) of target,
//!   and only to a shard count at which the window's peak stays at or below 90% of target, so a
//!   scale-in never triggers the next scale-out by itself (no flapping);
//! - the **step** is proportional to the deviation (`ceil(shards × value / target)`), at least one
//!   shard, within `minShards..=maxShards` (bounds are enforced at once, ignoring cooldowns);
//! - separate **cooldowns**: a scale-out waits `scaleOutCooldownSecs` after the last scale-out; a
//!   scale-in waits `scaleInCooldownSecs` after the last resize of either kind;
//! - `disableScaleIn`, and nothing is decided while a resize is in progress.
//!
//! **Per-node I/O threads**: raise a node's `io-threads` when every thread it may use is active
//! and its executor is busy (the node itself wants more offload), lower it when threads sit idle
//! for the whole (longer) window, within `min..=max`. An executor saturated with spare I/O threads
//! is CPU-bound: that is the shard autoscaler's signal, not this one's.
//!
//! Every decision carries the figures that caused it, for the log and for status.

use serde::{Deserialize, Serialize};

use super::model::ObservedState;

/// A scale-in goes only to a shard count at which the window's peak would sit at or below this
/// fraction of the target: a signal with ±5% noise cannot then bounce back over the target.
pub const SCALE_IN_HEADROOM: f64 = 0.9;

/// How the number of shards follows the metrics.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AutoscalePolicy {
    /// Whether the control loop resizes the cluster at all.
    pub enabled: bool,
    /// Report decisions without acting on them.
    pub recommend_only: bool,
    pub min_shards: u32,
    pub max_shards: u32,
    /// Target executor busy ratio of a primary, in percent. `None`: not a scaling signal.
    pub cpu_target_percent: Option<f64>,
    /// Target `used_memory / maxmemory` of a primary, in percent. `None`: not a scaling signal.
    pub memory_target_percent: Option<f64>,
    /// Scale in only when every metric is below this fraction of its target (ElastiCache: 0.75).
    pub scale_in_threshold: f64,
    /// Seconds after a scale-out before the next scale-out.
    pub scale_out_cooldown_secs: u64,
    /// Seconds after any resize before a scale-in.
    pub scale_in_cooldown_secs: u64,
    /// Only ever scale out.
    pub disable_scale_in: bool,
    /// Consecutive samples that must all be above target to scale out.
    pub scale_out_samples: usize,
    /// Consecutive samples that must all be below the scale-in threshold to scale in.
    pub scale_in_samples: usize,
    /// Per-node I/O-thread tuning; `None`: leave `io-threads` alone.
    pub io_threads: Option<IoThreadsPolicy>,
}

impl Default for AutoscalePolicy {
    fn default() -> Self {
        AutoscalePolicy {
            enabled: false,
            recommend_only: false,
            min_shards: 1,
            max_shards: 8,
            cpu_target_percent: Some(60.0),
            memory_target_percent: None,
            scale_in_threshold: 0.75,
            scale_out_cooldown_secs: 300,
            scale_in_cooldown_secs: 600,
            disable_scale_in: false,
            scale_out_samples: 3,
            scale_in_samples: 15,
            io_threads: None,
        }
    }
}

/// Bounds and thresholds for a node's `io-threads` setting (which counts the executor: at most
/// `io-threads - 1` I/O threads are active).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct IoThreadsPolicy {
    pub min: u32,
    pub max: u32,
    /// Raise only while the executor is at least this busy, in percent.
    pub raise_busy_percent: f64,
    /// Consecutive samples with every allowed thread active (and a busy executor) to raise.
    pub raise_samples: usize,
    /// Consecutive samples with idle allowed threads to lower.
    pub lower_samples: usize,
}

impl Default for IoThreadsPolicy {
    fn default() -> Self {
        IoThreadsPolicy { min: 1, max: 4, raise_busy_percent: 50.0, raise_samples: 3, lower_samples: 10 }
    }
}

/// The metrics that drive shard scaling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    /// Executor busy ratio, percent.
    Cpu,
    /// Used memory vs `maxmemory`, percent.
    Memory,
}

/// The cluster-wide figures at one instant: averages over the primaries that own slots.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sample {
    pub at_secs: u64,
    pub shards: u32,
    pub cpu_percent: Option<f64>,
    pub memory_percent: Option<f64>,
}

impl Sample {
    /// Averages the primaries' metrics. `None` when no primary reported any.
    pub fn from_observed(state: &ObservedState, at_secs: u64) -> Option<Sample> {
        let m = state.primary_metrics();
        if m.is_empty() {
            return None;
        }
        let shards =
            state.topology.as_ref().map_or(0, |t| t.shards.iter().filter(|s| !s.slots.is_empty()).count());
        let cpu = m.iter().map(|x| x.executor_busy_ratio * 100.0).sum::<f64>() / m.len() as f64;
        let mem: Vec<f64> = m.iter().filter_map(|x| x.memory_ratio()).map(|r| r * 100.0).collect();
        Some(Sample {
            at_secs,
            shards: shards as u32,
            cpu_percent: Some(cpu),
            memory_percent: (mem.len() == m.len()).then(|| mem.iter().sum::<f64>() / mem.len() as f64),
        })
    }

    fn value(&self, m: Metric) -> Option<f64> {
        match m {
            Metric::Cpu => self.cpu_percent,
            Metric::Memory => self.memory_percent,
        }
    }
}

/// What the shard autoscaler decides from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AutoscaleInput {
    pub now_secs: u64,
    /// Shards that own slots now.
    pub current_shards: u32,
    /// Recent samples, oldest first.
    pub samples: Vec<Sample>,
    /// When the last scale-out completed.
    pub last_scale_out_secs: Option<u64>,
    /// When the last scale-in completed.
    pub last_scale_in_secs: Option<u64>,
    /// A resize (migrations) is under way.
    pub in_progress: bool,
}

/// What to do with the shard count.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "camelCase")]
pub enum ScaleAction {
    Hold,
    ScaleOut { to: u32 },
    ScaleIn { to: u32 },
}

/// One metric's part in a decision.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Figure {
    pub metric: Metric,
    /// Mean over the window used (`None`: no data).
    pub value: Option<f64>,
    pub target: f64,
    /// Shards this metric alone asks for.
    pub wants: Option<u32>,
}

/// A decision and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScaleDecision {
    pub action: ScaleAction,
    pub reason: String,
    pub figures: Vec<Figure>,
}

impl ScaleDecision {
    fn hold(reason: impl Into<String>, figures: Vec<Figure>) -> ScaleDecision {
        ScaleDecision { action: ScaleAction::Hold, reason: reason.into(), figures }
    }

    /// The shard count to reach, if the decision changes it.
    pub fn target(&self) -> Option<u32> {
        match self.action {
            ScaleAction::Hold => None,
            ScaleAction::ScaleOut { to } | ScaleAction::ScaleIn { to } => Some(to),
        }
    }
}

/// The last `n` samples taken at the current shard count and after the last resize, if there
/// are `n` of them: older ones describe a different cluster.
fn window(input: &AutoscaleInput, n: usize) -> Option<&[Sample]> {
    let since = input.last_scale_out_secs.max(input.last_scale_in_secs).unwrap_or(0);
    let fresh =
        input.samples.iter().rev().take_while(|s| s.shards == input.current_shards && s.at_secs >= since);
    let len = fresh.count();
    (n > 0 && len >= n).then(|| &input.samples[input.samples.len() - n..])
}

/// Decides the shard count. Pure: time comes from `input.now_secs`.
pub fn decide_shards(policy: &AutoscalePolicy, input: &AutoscaleInput) -> ScaleDecision {
    let cur = input.current_shards;
    let (min, max) = (policy.min_shards.max(1), policy.max_shards.max(policy.min_shards.max(1)));
    if cur < min {
        return ScaleDecision {
            action: ScaleAction::ScaleOut { to: min },
            reason: format!("{cur} shards is below minShards {min}"),
            figures: vec![],
        };
    }
    if cur > max {
        return ScaleDecision {
            action: ScaleAction::ScaleIn { to: max },
            reason: format!("{cur} shards is above maxShards {max}"),
            figures: vec![],
        };
    }
    if input.in_progress {
        return ScaleDecision::hold("a resize is in progress", vec![]);
    }
    let targets: Vec<(Metric, f64)> =
        [(Metric::Cpu, policy.cpu_target_percent), (Metric::Memory, policy.memory_target_percent)]
            .into_iter()
            .filter_map(|(m, t)| t.filter(|t| *t > 0.0).map(|t| (m, t)))
            .collect();
    if targets.is_empty() {
        return ScaleDecision::hold("no target metric configured", vec![]);
    }

    // Scale-out: any metric above target on every sample of the short window.
    let mut figures = Vec::new();
    let mut out_to: Option<u32> = None;
    let out_win = window(input, policy.scale_out_samples);
    for &(m, target) in &targets {
        let vals: Option<Vec<f64>> = out_win.and_then(|w| w.iter().map(|s| s.value(m)).collect());
        let mean = vals.as_ref().map(|v| v.iter().sum::<f64>() / v.len() as f64);
        let mut wants = None;
        if let Some(v) = &vals {
            if v.iter().all(|x| *x > target) {
                let mean = mean.unwrap_or(target);
                let w = ((f64::from(cur) * mean / target).ceil() as u32).max(cur + 1);
                wants = Some(w);
                out_to = Some(out_to.map_or(w, |o: u32| o.max(w)));
            }
        }
        figures.push(Figure { metric: m, value: mean, target, wants });
    }
    if let Some(to) = out_to {
        let to = to.min(max);
        if to <= cur {
            return ScaleDecision::hold(format!("above target but already at maxShards {max}"), figures);
        }
        if let Some(last) = input.last_scale_out_secs {
            let ready = last + policy.scale_out_cooldown_secs;
            if input.now_secs < ready {
                return ScaleDecision::hold(
                    format!("above target; scale-out cooldown for {} more s", ready - input.now_secs),
                    figures,
                );
            }
        }
        return ScaleDecision {
            action: ScaleAction::ScaleOut { to },
            reason: format!("above target: {cur} -> {to} shards ({})", describe(&figures)),
            figures,
        };
    }

    // Scale-in: every metric below threshold × target on every sample of the long window, to
    // the largest count any metric needs to stay at or below its target.
    let Some(in_win) = window(input, policy.scale_in_samples) else {
        return ScaleDecision::hold(format!("within target ({})", describe(&figures)), figures);
    };
    let mut in_to: u32 = 1;
    let mut in_figures = Vec::new();
    for &(m, target) in &targets {
        let vals: Option<Vec<f64>> = in_win.iter().map(|s| s.value(m)).collect();
        let Some(vals) = vals else {
            in_figures.push(Figure { metric: m, value: None, target, wants: None });
            return ScaleDecision::hold(format!("no {m:?} data: scale-in needs every metric"), in_figures);
        };
        let mean = vals.iter().sum::<f64>() / vals.len() as f64;
        let peak = vals.iter().copied().fold(0.0, f64::max);
        let below = vals.iter().all(|x| *x < target * policy.scale_in_threshold);
        let wants = ((f64::from(cur) * peak / (target * SCALE_IN_HEADROOM)).ceil() as u32).max(1);
        in_figures.push(Figure { metric: m, value: Some(mean), target, wants: Some(wants) });
        if !below {
            return ScaleDecision::hold(format!("within target ({})", describe(&in_figures)), in_figures);
        }
        in_to = in_to.max(wants);
    }
    let to = in_to.max(min);
    if to >= cur {
        return ScaleDecision::hold(
            format!("below target, but fewer shards would exceed it ({})", describe(&in_figures)),
            in_figures,
        );
    }
    if policy.disable_scale_in {
        return ScaleDecision::hold(
            format!("below target; scale-in disabled ({})", describe(&in_figures)),
            in_figures,
        );
    }
    let last = input.last_scale_out_secs.max(input.last_scale_in_secs);
    if let Some(last) = last {
        let ready = last + policy.scale_in_cooldown_secs;
        if input.now_secs < ready {
            return ScaleDecision::hold(
                format!("below target; scale-in cooldown for {} more s", ready - input.now_secs),
                in_figures,
            );
        }
    }
    ScaleDecision {
        action: ScaleAction::ScaleIn { to },
        reason: format!(
            "below {:.0}% of target: {cur} -> {to} shards ({})",
            policy.scale_in_threshold * 100.0,
            describe(&in_figures)
        ),
        figures: in_figures,
    }
}

fn describe(figures: &[Figure]) -> String {
    figures
        .iter()
        .map(|f| match f.value {
            Some(v) => format!("{:?} {v:.1}% vs target {:.1}%", f.metric, f.target),
            None => format!("{:?} no data", f.metric),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// One node's I/O figures at one instant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IoSample {
    pub at_secs: u64,
    /// The node's `io-threads` setting when sampled.
    pub io_threads: u32,
    pub active: u32,
    pub busy_percent: f64,
}

/// What to do with one node's `io-threads`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IoDecision {
    /// The new setting, if it changes.
    pub set_to: Option<u32>,
    pub reason: String,
}

/// Decides one node's `io-threads` from its recent samples (oldest first). Only samples taken
/// at the current setting count, so a change waits a full window before the next one.
pub fn decide_io_threads(policy: &IoThreadsPolicy, samples: &[IoSample]) -> IoDecision {
    let hold = |reason: String| IoDecision { set_to: None, reason };
    let Some(last) = samples.last() else { return hold("no samples".into()) };
    let cur = last.io_threads;
    let (min, max) = (policy.min.max(1), policy.max.max(policy.min.max(1)));
    if cur < min || cur > max {
        let to = cur.clamp(min, max);
        return IoDecision { set_to: Some(to), reason: format!("io-threads {cur} outside {min}..={max}") };
    }
    let fresh: Vec<&IoSample> = samples.iter().rev().take_while(|s| s.io_threads == cur).collect();
    let win = |n: usize| (n > 0 && fresh.len() >= n).then(|| &fresh[..n]);
    if let Some(w) = win(policy.raise_samples) {
        let saturated = w.iter().all(|s| s.active + 1 >= cur && s.busy_percent >= policy.raise_busy_percent);
        if saturated && cur < max {
            let busy = w.iter().map(|s| s.busy_percent).sum::<f64>() / w.len() as f64;
            return IoDecision {
                set_to: Some(cur + 1),
                reason: format!(
                    "all {} allowed I/O threads active, executor {busy:.0}% busy: io-threads {cur} -> {}",
                    cur - 1,
                    cur + 1
                ),
            };
        }
    }
    if let Some(w) = win(policy.lower_samples) {
        let peak = w.iter().map(|s| s.active).max().unwrap_or(0);
        let to = (peak + 1).max(min);
        if to < cur {
            return IoDecision {
                set_to: Some(to),
                reason: format!("at most {peak} of {} I/O threads active: io-threads {cur} -> {to}", cur - 1),
            };
        }
    }
    hold(format!("io-threads {cur} fits the load"))
}

#[cfg(test)]
#[path = "autoscaler_tests.rs"]
mod tests;
