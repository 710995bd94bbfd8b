//! When to activate and park I/O threads. A pure policy over samples of the executor's busy
//! ratio and the I/O rings' depth, so it can be tested without threads.
//!
//! Valkey 8 decides per loop iteration from the number of fired events, which flaps; Valkey's
//! post-9.0 policy samples every 10 ms. We follow the latter, with hysteresis:
//! - **ignite** the first thread when the executor, doing its own I/O, is ≥ 30% busy for three
//!   consecutive 10 ms samples;
//! - **add** a thread (100 ms apart) while the executor is ≥ 80% busy and the rings hold more
//!   than one job per active thread on average;
//! - **remove** a thread only after two seconds in which the executor stayed under 10% busy and
//!   the rings were empty. Offloading lowers the executor's busy ratio, so the lower threshold
//!   sits well below what the same load costs the executor inline: no flapping.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Sampling period.
pub const SAMPLE: Duration = Duration::from_millis(10);
const IGNITE_BUSY: f64 = 0.30;
const IGNITE_SAMPLES: usize = 3;
const ADD_BUSY: f64 = 0.80;
const ADD_GAP: Duration = Duration::from_millis(100);
const REMOVE_BUSY: f64 = 0.10;
const REMOVE_AFTER: Duration = Duration::from_secs(2);
/// Samples kept for the one-second busy ratio.
const HISTORY: usize = 100;

/// Scaling state.
#[derive(Debug)]
pub struct Scaler {
    window_start: Instant,
    busy: Duration,
    history: VecDeque<f64>,
    hot_samples: usize,
    low_since: Option<Instant>,
    last_change: Instant,
    /// The executor thread's CPU time when the current sample started.
    cpu_mark: Option<Duration>,
}

impl Scaler {
    pub fn new(now: Instant) -> Scaler {
        Scaler {
            window_start: now,
            busy: Duration::ZERO,
            history: VecDeque::with_capacity(HISTORY),
            hot_samples: 0,
            low_since: None,
            last_change: now,
            cpu_mark: None,
        }
    }

    /// Time the executor spent working (handling events, executing, collecting I/O).
    pub fn record_busy(&mut self, d: Duration) {
        self.busy += d;
    }

    /// True when a sample period has passed.
    pub fn due(&self, now: Instant) -> bool {
        now.duration_since(self.window_start) >= SAMPLE
    }

    /// The executor's busy ratio over the last second (0..=1).
    pub fn busy_ratio(&self) -> f64 {
        if self.history.is_empty() {
            return 0.0;
        }
        self.history.iter().sum::<f64>() / self.history.len() as f64
    }

    /// Closes a sample and returns the new number of active threads, if it should change.
    /// `queued` is the number of jobs waiting in the active threads' rings; `cpu` is the
    /// executor thread's CPU time now, when known.
    ///
    /// Busy time is measured in wall-clock time around the executor's work, which overstates
    /// it when the machine is oversubscribed and the thread is descheduled mid-work; the
    /// thread's CPU time bounds it from above (it also counts spinning, which wall-clock busy
    /// time does not), so the sample uses the smaller of the two.
    pub fn tick(
        &mut self,
        now: Instant,
        cpu: Option<Duration>,
        active: usize,
        max_active: usize,
        queued: usize,
    ) -> Option<usize> {
        let elapsed = now.duration_since(self.window_start);
        let mut busy_time = self.busy;
        if let (Some(cpu), Some(mark)) = (cpu, self.cpu_mark) {
            busy_time = busy_time.min(cpu.saturating_sub(mark));
        }
        self.cpu_mark = cpu;
        let busy =
            if elapsed.is_zero() { 0.0 } else { (busy_time.as_secs_f64() / elapsed.as_secs_f64()).min(1.0) };
        self.window_start = now;
        self.busy = Duration::ZERO;
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(busy);
        self.decide(now, busy, active, max_active, queued)
    }

    fn decide(
        &mut self,
        now: Instant,
        busy: f64,
        active: usize,
        max_active: usize,
        queued: usize,
    ) -> Option<usize> {
        if active > max_active {
            return Some(max_active);
        }
        if active == 0 {
            self.hot_samples = if busy >= IGNITE_BUSY { self.hot_samples + 1 } else { 0 };
            if self.hot_samples >= IGNITE_SAMPLES && max_active > 0 {
                return self.change(now, 1);
            }
            return None;
        }
        if busy < REMOVE_BUSY && queued == 0 {
            let since = *self.low_since.get_or_insert(now);
            if now.duration_since(since) >= REMOVE_AFTER {
                return self.change(now, active - 1);
            }
        } else {
            self.low_since = None;
        }
        if busy >= ADD_BUSY
            && queued > active
            && active < max_active
            && now.duration_since(self.last_change) >= ADD_GAP
        {
            return self.change(now, active + 1);
        }
        None
    }

    fn change(&mut self, now: Instant, to: usize) -> Option<usize> {
        self.last_change = now;
        self.low_since = None;
        self.hot_samples = 0;
        Some(to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds samples with the given busy ratios; returns the active count after each.
    fn drive(
        s: &mut Scaler,
        t: &mut Instant,
        active: &mut usize,
        max: usize,
        busy: &[f64],
        queued: usize,
    ) -> Vec<usize> {
        busy.iter()
            .map(|&b| {
                *t += SAMPLE;
                s.record_busy(SAMPLE.mul_f64(b));
                if let Some(n) = s.tick(*t, None, *active, max, queued) {
                    *active = n;
                }
                *active
            })
            .collect()
    }

    #[test]
    fn ignites_only_on_sustained_load() {
        let mut t = Instant::now();
        let mut s = Scaler::new(t);
        let mut active = 0;
        // Short spikes do not ignite.
        drive(&mut s, &mut t, &mut active, 1, &[0.9, 0.9, 0.1, 0.9, 0.9, 0.1], 0);
        assert_eq!(active, 0);
        drive(&mut s, &mut t, &mut active, 1, &[0.5, 0.5, 0.5], 0);
        assert_eq!(active, 1);
    }

    #[test]
    fn never_exceeds_max_and_honours_a_lowered_limit() {
        let mut t = Instant::now();
        let mut s = Scaler::new(t);
        let mut active = 0;
        drive(&mut s, &mut t, &mut active, 0, &[1.0; 50], 100);
        assert_eq!(active, 0, "no thread may start when none is allowed");
        let mut active = 3;
        drive(&mut s, &mut t, &mut active, 2, &[1.0], 100);
        assert_eq!(active, 2);
    }

    #[test]
    fn adds_threads_while_saturated_with_backlog() {
        let mut t = Instant::now();
        let mut s = Scaler::new(t);
        let mut active = 1;
        let trace = drive(&mut s, &mut t, &mut active, 3, &[0.95; 40], 10);
        assert_eq!(active, 3);
        // At least ADD_GAP between additions.
        let first = trace.iter().position(|&a| a == 2).unwrap_or(0);
        let second = trace.iter().position(|&a| a == 3).unwrap_or(0);
        assert!(second - first >= (ADD_GAP.as_millis() / SAMPLE.as_millis()) as usize);
    }

    #[test]
    fn removes_after_quiet_cooldown_and_does_not_flap_on_noise() {
        let mut t = Instant::now();
        let mut s = Scaler::new(t);
        let mut active = 1;
        // Noisy moderate load around 20-40% busy: keep the thread.
        let noisy: Vec<f64> =
            (0..500).map(|i| if i % 7 == 0 { 0.05 } else { 0.2 + 0.2 * ((i % 3) as f64 / 2.0) }).collect();
        let trace = drive(&mut s, &mut t, &mut active, 1, &noisy, 0);
        assert!(trace.iter().all(|&a| a == 1), "flapped: {:?}", trace);
        // Quiet for two seconds: park it.
        drive(&mut s, &mut t, &mut active, 1, &[0.01; 199], 0);
        assert_eq!(active, 1);
        drive(&mut s, &mut t, &mut active, 1, &[0.01; 2], 0);
        assert_eq!(active, 0);
    }

    #[test]
    fn busy_ratio_covers_the_last_second() {
        let mut t = Instant::now();
        let mut s = Scaler::new(t);
        let mut active = 0;
        drive(&mut s, &mut t, &mut active, 0, &[1.0; 100], 0);
        assert!((s.busy_ratio() - 1.0).abs() < 1e-9);
        drive(&mut s, &mut t, &mut active, 0, &[0.0; 50], 0);
        assert!((s.busy_ratio() - 0.5).abs() < 1e-9);
    }

    #[test]
    fn cpu_time_caps_wall_clock_busy_time() {
        let t0 = Instant::now();
        let mut s = Scaler::new(t0);
        // The first sample only sets the CPU mark.
        s.record_busy(SAMPLE);
        s.tick(t0 + SAMPLE, Some(Duration::from_millis(100)), 1, 1, 0);
        assert!((s.busy_ratio() - 1.0).abs() < 1e-9);
        // Wall clock says busy the whole sample, but the thread ran for a tenth of it (it was
        // descheduled): the sample counts 10%.
        s.record_busy(SAMPLE);
        s.tick(t0 + SAMPLE * 2, Some(Duration::from_millis(100) + SAMPLE / 10), 1, 1, 0);
        assert!((s.history[1] - 0.1).abs() < 1e-6, "{:?}", s.history);
        // CPU time above the wall-clock busy time (spinning) does not raise the sample.
        s.record_busy(SAMPLE / 4);
        s.tick(t0 + SAMPLE * 3, Some(Duration::from_millis(100) + SAMPLE), 1, 1, 0);
        assert!((s.history[2] - 0.25).abs() < 1e-6, "{:?}", s.history);
    }
}
