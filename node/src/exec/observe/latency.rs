//! The latency monitor (LATENCY LATEST/HISTORY/RESET/DOCTOR/GRAPH): with
//! `latency-monitor-threshold` above 0, every event that took at least that many milliseconds
//! is sampled, one sample per event per second (the worst), the last 160 kept, as Valkey's
//! `latency.c`. Events: `command` (slow commands) and `fast-command` (commands flagged fast).

use std::collections::{BTreeMap, VecDeque};

/// Samples kept per event.
const HISTORY: usize = 160;

#[derive(Default)]
pub struct Series {
    /// (unix seconds, milliseconds), oldest first.
    pub samples: VecDeque<(i64, u64)>,
    /// All-time worst (ms).
    pub max: u64,
}

#[derive(Default)]
pub struct LatencyMonitor {
    pub events: BTreeMap<&'static str, Series>,
}

impl LatencyMonitor {
    pub fn add(&mut self, event: &'static str, time: i64, ms: u64) {
        let s = self.events.entry(event).or_default();
        s.max = s.max.max(ms);
        match s.samples.back_mut() {
            Some(last) if last.0 == time => last.1 = last.1.max(ms),
            _ => {
                s.samples.push_back((time, ms));
                if s.samples.len() > HISTORY {
                    s.samples.pop_front();
                }
            }
        }
    }

    /// LATENCY RESET: the named events (all without names); returns how many were reset.
    pub fn reset(&mut self, names: &[&[u8]]) -> usize {
        if names.is_empty() {
            let n = self.events.len();
            self.events.clear();
            return n;
        }
        let before = self.events.len();
        self.events.retain(|k, _| !names.iter().any(|n| n.eq_ignore_ascii_case(k.as_bytes())));
        before - self.events.len()
    }

    /// LATENCY GRAPH's picture of one event: a header, then one column per sample, scaled to
    /// the event's range, with the age of each sample under it.
    pub fn graph(&self, name: &str, s: &Series, now: i64) -> String {
        let (lo, hi) = s.samples.iter().fold((u64::MAX, 0), |(lo, hi), &(_, v)| (lo.min(v), hi.max(v)));
        let mut out = format!("{name} - high {hi} ms, low {lo} ms (all time high {} ms)\n", s.max);
        out.push_str(&"-".repeat(80));
        out.push('\n');
        const ROWS: u64 = 4;
        for row in (0..ROWS).rev() {
            let line: String = s
                .samples
                .iter()
                .map(|&(_, v)| {
                    let level = if hi == lo { ROWS } else { 1 + (v - lo) * (ROWS - 1) / (hi - lo) };
                    if level > row {
                        '#'
                    } else {
                        ' '
                    }
                })
                .collect();
            out.push_str(line.trim_end());
            out.push('\n');
        }
        let ages: String = s.samples.iter().map(|&(t, _)| age_char(now - t)).collect();
        out.push_str(&ages);
        out.push('\n');
        out
    }
}

/// A sample's age in one character: seconds 0-9, then m (minutes), h (hours), d.
fn age_char(secs: i64) -> char {
    match secs {
        s if s < 10 => char::from(b'0' + s.max(0) as u8),
        s if s < 3600 => 'm',
        s if s < 86_400 => 'h',
        _ => 'd',
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_sample_per_second_and_bounded() {
        let mut m = LatencyMonitor::default();
        m.add("command", 10, 5);
        m.add("command", 10, 7);
        m.add("command", 10, 3);
        let s = &m.events["command"];
        assert_eq!(s.samples, VecDeque::from([(10, 7)]));
        for t in 11..400 {
            m.add("command", t, 1);
        }
        assert_eq!(m.events["command"].samples.len(), HISTORY);
        assert_eq!(m.events["command"].max, 7);
        m.add("fast-command", 1, 1);
        assert_eq!(m.reset(&[b"COMMAND"]), 1);
        assert_eq!(m.reset(&[]), 1);
        assert!(m.events.is_empty());
    }
}
