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
//!
//! Busy ratios say a thread *might* help, not that it does: when the cores are taken (by the
//! clients on the same machine, by other processes, by more threads than cores), a thread only
//! adds cross-core wake-ups and steals CPU from the executor. So every added thread is a
//! **trial**: the scaler compares the command rate over the 200 ms before the change with the
//! rate 100–400 ms after it, keeps the thread only if the rate rose by 5%, and otherwise takes
//! it back and does not try that step again for a backoff (5 s, doubling to 80 s on each failed
//! trial, reset by a successful one). "More threads never hurt" is then measured, not assumed.

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
/// Samples of the command counter kept for a trial's baseline (200 ms).
const BASELINE: usize = 20;
/// A trial ignores the first 100 ms after the change (threads start, clients move), then
/// measures for 300 ms.
const TRIAL_SETTLE: Duration = Duration::from_millis(100);
const TRIAL_MEASURE: Duration = Duration::from_millis(300);
/// The rate a trial must reach, relative to its baseline, to keep the thread.
const TRIAL_GAIN: f64 = 1.05;
const BACKOFF_MIN: Duration = Duration::from_secs(5);
const BACKOFF_MAX: Duration = Duration::from_secs(80);

/// A thread added on probation.
#[derive(Debug)]
struct Trial {
    /// The active count before the change (restored if the trial fails).
    from: usize,
    /// Commands per second before the change.
    baseline: f64,
    started: Instant,
    /// Command counter and time when the measurement window opened.
    mark: Option<(Instant, u64)>,
}

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
    /// The command counter at the end of each recent sample.
    rates: VecDeque<(Instant, u64)>,
    /// Consecutive samples at least `IGNITE_BUSY` busy.
    hot_run: usize,
    trial: Option<Trial>,
    /// After a failed trial: no step above `blocked.0` threads before `blocked.1`.
    blocked: Option<(usize, Instant)>,
    backoff: Duration,
    /// Trials run and failed (for INFO and tests).
    pub trials: u64,
    pub trials_failed: u64,
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
            rates: VecDeque::with_capacity(BASELINE + 1),
            hot_run: 0,
            trial: None,
            blocked: None,
            backoff: BACKOFF_MIN,
            trials: 0,
            trials_failed: 0,
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
    /// executor thread's CPU time now, when known; `commands` the executor's command counter
    /// (cumulative), which judges trials.
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
        commands: u64,
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
        self.hot_run = if busy >= IGNITE_BUSY { self.hot_run + 1 } else { 0 };
        if self.rates.len() > BASELINE {
            self.rates.pop_front();
        }
        self.rates.push_back((now, commands));
        if let Some(to) = self.judge_trial(now, active, commands) {
            return Some(to);
        }
        let to = self.decide(now, busy, active, max_active, queued)?;
        if to > active {
            // One step at a time: no new thread until the last one has proved itself.
            if self.trial.is_some() || self.blocked.is_some_and(|(level, until)| to > level && now < until) {
                return None;
            }
            self.trials += 1;
            self.trial = Some(Trial { from: active, baseline: self.rate(), started: now, mark: None });
        } else {
            self.trial = None;
        }
        Some(to)
    }

    /// Commands per second over the baseline window: the last 200 ms, or the samples since the
    /// load began if that is shorter (a ramp from idle would flatter any change).
    fn rate(&self) -> f64 {
        let n = self.hot_run.clamp(1, BASELINE);
        let first = self.rates.len().saturating_sub(n + 1);
        match (self.rates.get(first), self.rates.back()) {
            (Some(&(t0, c0)), Some(&(t1, c1))) if t1 > t0 => {
                c1.saturating_sub(c0) as f64 / t1.duration_since(t0).as_secs_f64()
            }
            _ => 0.0,
        }
    }

    /// Advances the trial in progress; returns the active count to fall back to when it failed.
    fn judge_trial(&mut self, now: Instant, active: usize, commands: u64) -> Option<usize> {
        let trial = self.trial.as_mut()?;
        if active <= trial.from {
            // Something else (a lowered limit, a removal) undid the step: nothing to judge.
            self.trial = None;
            return None;
        }
        let since = now.duration_since(trial.started);
        if since < TRIAL_SETTLE {
            return None;
        }
        let Some((t0, c0)) = trial.mark else {
            trial.mark = Some((now, commands));
            return None;
        };
        if since < TRIAL_SETTLE + TRIAL_MEASURE {
            return None;
        }
        let rate = commands.saturating_sub(c0) as f64 / now.duration_since(t0).as_secs_f64().max(1e-9);
        let (from, baseline) = (trial.from, trial.baseline);
        self.trial = None;
        if rate >= baseline * TRIAL_GAIN {
            self.backoff = BACKOFF_MIN;
            return None;
        }
        log::debug!(
            "I/O thread trial {from} -> {active}: {rate:.0} commands/s against {baseline:.0} before; back to {from} for {:?}",
            self.backoff
        );
        self.trials_failed += 1;
        self.blocked = Some((from, now + self.backoff));
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
        self.change(now, from)
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

    std::thread_local! {
        /// The simulated executor's command counter.
        static COMMANDS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    }

    /// Feeds samples with the given busy ratios, each thread adding to the command rate (so
    /// trials succeed); returns the active count after each.
    fn drive(
        s: &mut Scaler,
        t: &mut Instant,
        active: &mut usize,
        max: usize,
        busy: &[f64],
        queued: usize,
    ) -> Vec<usize> {
        drive_rate(s, t, active, max, busy, queued, |a, b| ((a + 1) as f64 * 1000.0 * b) as u64)
    }

    /// As `drive`, with `rate(active, busy)` commands per sample.
    fn drive_rate(
        s: &mut Scaler,
        t: &mut Instant,
        active: &mut usize,
        max: usize,
        busy: &[f64],
        queued: usize,
        rate: impl Fn(usize, f64) -> u64,
    ) -> Vec<usize> {
        busy.iter()
            .map(|&b| {
                *t += SAMPLE;
                s.record_busy(SAMPLE.mul_f64(b));
                let commands = COMMANDS.with(|c| {
                    c.set(c.get() + rate(*active, b));
                    c.get()
                });
                if let Some(n) = s.tick(*t, None, *active, max, queued, commands) {
                    *active = n;
                }
                *active
            })
            .collect()
    }

    /// Samples in `d`.
    fn samples(d: Duration) -> usize {
        (d.as_millis() / SAMPLE.as_millis()) as usize
    }

    #[test]
    fn a_thread_that_does_not_raise_the_rate_is_taken_back_and_retried_after_a_backoff() {
        let mut t = Instant::now();
        let mut s = Scaler::new(t);
        let mut active = 0;
        // Busy enough to ignite, but the rate is the same with or without a thread (the cores
        // are taken).
        let flat = |_: usize, _: f64| 1000;
        let trial = samples(TRIAL_SETTLE + TRIAL_MEASURE) + 2;
        let trace = drive_rate(&mut s, &mut t, &mut active, 3, &vec![0.9; IGNITE_SAMPLES + trial], 10, flat);
        assert!(trace.contains(&1), "ignited: {trace:?}");
        assert_eq!(active, 0, "taken back: {trace:?}");
        assert_eq!((s.trials, s.trials_failed), (1, 1));
        // No new trial of that step during the backoff, however busy the executor is.
        let trace =
            drive_rate(&mut s, &mut t, &mut active, 3, &vec![0.9; samples(BACKOFF_MIN) - 5], 10, flat);
        assert!(trace.iter().all(|&a| a == 0), "retried early: {trace:?}");
        // After it, one more trial, which fails again and doubles the backoff.
        drive_rate(&mut s, &mut t, &mut active, 3, &vec![0.9; 10 + trial], 10, flat);
        assert_eq!((s.trials, s.trials_failed, active), (2, 2, 0));
        assert_eq!(s.backoff, BACKOFF_MIN * 4);
        // A thread that helps is kept, and resets the backoff.
        let helps = |a: usize, _: f64| 1000 * (a as u64 + 1);
        drive_rate(&mut s, &mut t, &mut active, 3, &vec![0.9; samples(BACKOFF_MIN * 2) + trial], 0, helps);
        assert_eq!((active, s.trials_failed), (1, 2));
        assert_eq!(s.backoff, BACKOFF_MIN);
    }

    #[test]
    fn the_baseline_ignores_the_idle_time_before_the_load() {
        let mut t = Instant::now();
        let mut s = Scaler::new(t);
        let mut active = 0;
        // Idle (no commands) for a second, then a load whose rate a thread does not change: the
        // idle samples must not count in the baseline, or the trial would look like a gain.
        drive_rate(&mut s, &mut t, &mut active, 1, &[0.0; 100], 0, |_, _| 0);
        let trial = samples(TRIAL_SETTLE + TRIAL_MEASURE) + 2;
        drive_rate(&mut s, &mut t, &mut active, 1, &vec![0.9; IGNITE_SAMPLES + trial], 0, |_, _| 1000);
        assert_eq!((active, s.trials, s.trials_failed), (0, 1, 1));
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
        let trial = samples(TRIAL_SETTLE + TRIAL_MEASURE) + 2;
        let trace = drive(&mut s, &mut t, &mut active, 3, &vec![0.95; 2 * trial + 5], 10);
        assert_eq!(active, 3, "{trace:?}");
        // Each addition waits for the previous one's trial (which is longer than ADD_GAP).
        let first = trace.iter().position(|&a| a == 2).unwrap_or(0);
        let second = trace.iter().position(|&a| a == 3).unwrap_or(0);
        assert!(second - first >= samples(TRIAL_SETTLE + TRIAL_MEASURE).max(samples(ADD_GAP)));
        assert_eq!((s.trials, s.trials_failed), (2, 0));
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
        s.tick(t0 + SAMPLE, Some(Duration::from_millis(100)), 1, 1, 0, 0);
        assert!((s.busy_ratio() - 1.0).abs() < 1e-9);
        // Wall clock says busy the whole sample, but the thread ran for a tenth of it (it was
        // descheduled): the sample counts 10%.
        s.record_busy(SAMPLE);
        s.tick(t0 + SAMPLE * 2, Some(Duration::from_millis(100) + SAMPLE / 10), 1, 1, 0, 0);
        assert!((s.history[1] - 0.1).abs() < 1e-6, "{:?}", s.history);
        // CPU time above the wall-clock busy time (spinning) does not raise the sample.
        s.record_busy(SAMPLE / 4);
        s.tick(t0 + SAMPLE * 3, Some(Duration::from_millis(100) + SAMPLE), 1, 1, 0, 0);
        assert!((s.history[2] - 0.25).abs() < 1e-6, "{:?}", s.history);
    }
}
