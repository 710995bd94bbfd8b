//! Metric history for the autoscaler loop: bounded windows of cluster samples and per-node I/O
//! samples, plus when the last resizes completed. It turns successive observations into the
//! inputs of the pure decision functions; the Kubernetes layer and local mode both use it.

use std::collections::{HashMap, VecDeque};

use serde::{Deserialize, Serialize};

use super::autoscaler::{
    decide_io_threads, decide_shards, AutoscaleInput, AutoscalePolicy, IoDecision, IoSample, Sample,
    ScaleDecision,
};
use super::model::{NodeAddr, NodeId, ObservedState};

/// Samples kept per window: enough for any sensible evaluation window.
const KEEP: usize = 256;

/// What the autoscaler remembers between decisions.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AutoscaleHistory {
    pub samples: VecDeque<Sample>,
    pub io: HashMap<NodeId, VecDeque<IoSample>>,
    pub last_scale_out_secs: Option<u64>,
    pub last_scale_in_secs: Option<u64>,
}

impl AutoscaleHistory {
    /// Records the figures of an observation taken at `now_secs`.
    pub fn record(&mut self, obs: &ObservedState, now_secs: u64) {
        if let Some(s) = Sample::from_observed(obs, now_secs) {
            push(&mut self.samples, s);
        }
        for n in &obs.nodes {
            let (Some(id), Some(m)) = (&n.id, &n.metrics) else { continue };
            let s = IoSample {
                at_secs: now_secs,
                io_threads: m.io_threads,
                active: m.io_threads_active,
                busy_percent: m.executor_busy_ratio * 100.0,
            };
            push(self.io.entry(id.clone()).or_default(), s);
        }
        self.io.retain(|id, _| obs.node(id).is_some());
    }

    /// Notes that a resize from `from` to `to` shards completed at `now_secs`.
    pub fn resized(&mut self, from: u32, to: u32, now_secs: u64) {
        if to > from {
            self.last_scale_out_secs = Some(now_secs);
        } else if to < from {
            self.last_scale_in_secs = Some(now_secs);
        }
    }

    /// The shard decision now.
    pub fn decide(
        &self,
        policy: &AutoscalePolicy,
        current: u32,
        in_progress: bool,
        now_secs: u64,
    ) -> ScaleDecision {
        decide_shards(
            policy,
            &AutoscaleInput {
                now_secs,
                current_shards: current,
                samples: self.samples.iter().cloned().collect(),
                last_scale_out_secs: self.last_scale_out_secs,
                last_scale_in_secs: self.last_scale_in_secs,
                in_progress,
            },
        )
    }

    /// The `io-threads` decisions that change something, per reachable node.
    pub fn decide_io(
        &self,
        policy: &AutoscalePolicy,
        obs: &ObservedState,
    ) -> Vec<(NodeAddr, NodeId, IoDecision)> {
        let Some(p) = &policy.io_threads else { return Vec::new() };
        obs.nodes
            .iter()
            .filter_map(|n| {
                let id = n.id.as_ref()?;
                let samples: Vec<IoSample> = self.io.get(id)?.iter().cloned().collect();
                let d = decide_io_threads(p, &samples);
                d.set_to.is_some().then(|| (n.addr.clone(), id.clone(), d))
            })
            .collect()
    }
}

fn push<T>(q: &mut VecDeque<T>, v: T) {
    if q.len() == KEEP {
        q.pop_front();
    }
    q.push_back(v);
}
