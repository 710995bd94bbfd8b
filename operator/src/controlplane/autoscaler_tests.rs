//! Autoscaler tests: bounds, sustained breaches, hysteresis, cooldowns, disable-scale-in, the
//! all-metrics rule for scale-in, no flapping on a noisy signal, and I/O-thread tuning.

use proptest::prelude::*;

use super::*;

fn policy() -> AutoscalePolicy {
    AutoscalePolicy {
        enabled: true,
        min_shards: 1,
        max_shards: 10,
        cpu_target_percent: Some(60.0),
        memory_target_percent: None,
        scale_out_cooldown_secs: 100,
        scale_in_cooldown_secs: 300,
        scale_out_samples: 3,
        scale_in_samples: 5,
        ..AutoscalePolicy::default()
    }
}

fn samples(shards: u32, cpu: &[f64]) -> Vec<Sample> {
    cpu.iter()
        .enumerate()
        .map(|(i, &c)| Sample {
            at_secs: 1000 + i as u64,
            shards,
            cpu_percent: Some(c),
            memory_percent: None,
        })
        .collect()
}

fn input(shards: u32, cpu: &[f64]) -> AutoscaleInput {
    AutoscaleInput {
        now_secs: 1000 + cpu.len() as u64,
        current_shards: shards,
        samples: samples(shards, cpu),
        last_scale_out_secs: None,
        last_scale_in_secs: None,
        in_progress: false,
    }
}

#[test]
fn bounds_apply_first() {
    let p = AutoscalePolicy { min_shards: 3, max_shards: 5, ..policy() };
    assert_eq!(decide_shards(&p, &input(1, &[])).action, ScaleAction::ScaleOut { to: 3 });
    assert_eq!(decide_shards(&p, &input(7, &[99.0; 5])).action, ScaleAction::ScaleIn { to: 5 });
}

#[test]
fn sustained_breach_scales_out_proportionally() {
    let p = policy();
    // One spike: no.
    assert_eq!(decide_shards(&p, &input(2, &[50.0, 95.0, 50.0])).action, ScaleAction::Hold);
    // Three samples at 90 (1.5× target) with 2 shards: 3 shards.
    let d = decide_shards(&p, &input(2, &[90.0, 90.0, 90.0]));
    assert_eq!(d.action, ScaleAction::ScaleOut { to: 3 });
    assert!(d.reason.contains("Cpu 90.0%"), "{}", d.reason);
    // Barely over: still at least one shard.
    assert_eq!(decide_shards(&p, &input(4, &[61.0; 3])).action, ScaleAction::ScaleOut { to: 5 });
    // Capped at max.
    assert_eq!(decide_shards(&p, &input(4, &[600.0; 3])).action, ScaleAction::ScaleOut { to: 10 });
    let at_max = decide_shards(&p, &input(10, &[90.0; 3]));
    assert_eq!(at_max.action, ScaleAction::Hold);
    assert!(at_max.reason.contains("maxShards"));
}

#[test]
fn hysteresis_scale_in_only_below_75_percent() {
    let p = policy();
    // 50 is below target but above 45 (75% of 60): hold.
    assert_eq!(decide_shards(&p, &input(4, &[50.0; 5])).action, ScaleAction::Hold);
    // 20 with 4 shards: 4×20/(60×0.9) = 1.48 -> 2 shards.
    assert_eq!(decide_shards(&p, &input(4, &[20.0; 5])).action, ScaleAction::ScaleIn { to: 2 });
    // 40 with 2 shards: one shard would sit at 80 > target: hold.
    let d = decide_shards(&p, &input(2, &[40.0; 5]));
    assert_eq!(d.action, ScaleAction::Hold);
    assert!(d.reason.contains("fewer shards would exceed"), "{}", d.reason);
    // The window must be all below: one sample at 50 holds.
    assert_eq!(decide_shards(&p, &input(4, &[20.0, 20.0, 50.0, 20.0, 20.0])).action, ScaleAction::Hold);
    // Never below min.
    let p2 = AutoscalePolicy { min_shards: 3, ..policy() };
    assert_eq!(decide_shards(&p2, &input(4, &[1.0; 5])).action, ScaleAction::ScaleIn { to: 3 });
}

#[test]
fn cooldowns_are_separate() {
    let p = policy();
    let mut i = input(2, &[90.0; 3]);
    i.last_scale_out_secs = Some(i.now_secs - 50);
    // The samples must postdate the resize to count: move the resize before them.
    i.last_scale_out_secs = Some(990);
    i.now_secs = 1050;
    let d = decide_shards(&p, &i);
    assert_eq!(d.action, ScaleAction::Hold);
    assert!(d.reason.contains("cooldown"), "{}", d.reason);
    i.now_secs = 1090;
    assert_eq!(decide_shards(&p, &i).action, ScaleAction::ScaleOut { to: 3 });

    // A recent scale-out blocks scale-in for the scale-in cooldown.
    let mut i = input(4, &[10.0; 5]);
    i.last_scale_out_secs = Some(990);
    i.now_secs = 1200;
    assert!(decide_shards(&p, &i).reason.contains("scale-in cooldown"));
    i.now_secs = 1290;
    assert!(matches!(decide_shards(&p, &i).action, ScaleAction::ScaleIn { .. }));
    // A recent scale-in does not block a scale-out.
    let mut i = input(2, &[90.0; 3]);
    i.last_scale_in_secs = Some(990);
    assert_eq!(decide_shards(&p, &i).action, ScaleAction::ScaleOut { to: 3 });
}

#[test]
fn samples_from_before_a_resize_do_not_count() {
    let p = policy();
    let mut i = input(2, &[90.0; 3]);
    i.last_scale_out_secs = Some(1001);
    assert_eq!(decide_shards(&p, &i).action, ScaleAction::Hold);
    // Samples taken at another shard count do not count either.
    let mut i = input(3, &[90.0; 3]);
    i.samples[0].shards = 2;
    assert_eq!(decide_shards(&p, &i).action, ScaleAction::Hold);
}

#[test]
fn disable_scale_in_and_in_progress() {
    let p = AutoscalePolicy { disable_scale_in: true, ..policy() };
    let d = decide_shards(&p, &input(4, &[10.0; 5]));
    assert_eq!(d.action, ScaleAction::Hold);
    assert!(d.reason.contains("disabled"));
    assert_eq!(decide_shards(&p, &input(2, &[90.0; 3])).action, ScaleAction::ScaleOut { to: 3 });
    let mut i = input(2, &[90.0; 3]);
    i.in_progress = true;
    assert_eq!(decide_shards(&policy(), &i).action, ScaleAction::Hold);
}

#[test]
fn either_metric_scales_out_all_must_allow_scale_in() {
    let p = AutoscalePolicy { memory_target_percent: Some(70.0), ..policy() };
    let mut i = input(2, &[10.0; 5]);
    for s in &mut i.samples {
        s.memory_percent = Some(95.0);
    }
    // Memory drives a scale-out although CPU is idle: 2 × 95/70 = 2.7 -> 3.
    assert_eq!(decide_shards(&p, &i).action, ScaleAction::ScaleOut { to: 3 });
    for s in &mut i.samples {
        s.memory_percent = Some(60.0);
    }
    // CPU would allow scale-in but memory (60 > 52.5) does not.
    assert_eq!(decide_shards(&p, &i).action, ScaleAction::Hold);
    for s in &mut i.samples {
        s.memory_percent = Some(10.0);
    }
    assert_eq!(decide_shards(&p, &i).action, ScaleAction::ScaleIn { to: 1 });
    // Missing memory data blocks scale-in.
    for s in &mut i.samples {
        s.memory_percent = None;
    }
    assert!(decide_shards(&p, &i).reason.contains("no Memory data"));
}

#[test]
fn no_target_no_action() {
    let p = AutoscalePolicy { cpu_target_percent: None, ..policy() };
    assert_eq!(decide_shards(&p, &input(2, &[99.0; 5])).action, ScaleAction::Hold);
}

/// Simulates a steady cluster-wide load read through a ±5% noisy per-shard metric, applying
/// every decision at once with no cooldowns, and returns the shard counts over time.
fn simulate(load: f64, noise: &[f64], start: u32) -> Vec<u32> {
    let p = AutoscalePolicy { scale_out_cooldown_secs: 0, scale_in_cooldown_secs: 0, ..policy() };
    let mut shards = start;
    let mut hist: Vec<Sample> = Vec::new();
    let mut last = None;
    let mut out = vec![shards];
    for (t, e) in noise.iter().enumerate() {
        let t = t as u64 + 1;
        hist.push(Sample {
            at_secs: t,
            shards,
            cpu_percent: Some(load / f64::from(shards) * (1.0 + e)),
            memory_percent: None,
        });
        let d = decide_shards(
            &p,
            &AutoscaleInput {
                now_secs: t,
                current_shards: shards,
                samples: hist.clone(),
                last_scale_out_secs: last,
                last_scale_in_secs: None,
                in_progress: false,
            },
        );
        if let Some(to) = d.target() {
            shards = to;
            last = Some(t + 1);
            out.push(shards);
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Whatever the noise (even adversarial, within ±5%), the shard count never changes
    /// direction more than once: it settles instead of flapping.
    #[test]
    fn no_flapping_on_a_noisy_signal(
        load in 5.0f64..500.0,
        noise in prop::collection::vec(-0.05f64..0.05, 50..200),
        start in 1u32..10,
    ) {
        let counts = simulate(load, &noise, start);
        let dirs: Vec<bool> = counts.windows(2).map(|w| w[1] > w[0]).collect();
        let changes = dirs.windows(2).filter(|d| d[0] != d[1]).count();
        prop_assert!(changes <= 1, "flapping: {:?}", counts);
    }

    /// Every decision stays within bounds and moves at least one shard when it acts.
    #[test]
    fn decisions_respect_bounds(cur in 1u32..12, cpu in prop::collection::vec(0.0f64..300.0, 0..20)) {
        let p = AutoscalePolicy { min_shards: 2, max_shards: 8, ..policy() };
        let d = decide_shards(&p, &input(cur, &cpu));
        if let Some(to) = d.target() {
            prop_assert!((2..=8).contains(&to));
            prop_assert_ne!(to, cur);
        }
    }
}

fn io(threads: u32, active: u32, busy: f64, n: usize) -> Vec<IoSample> {
    (0..n).map(|i| IoSample { at_secs: i as u64, io_threads: threads, active, busy_percent: busy }).collect()
}

#[test]
fn io_threads_raise_when_saturated() {
    let p = IoThreadsPolicy { min: 1, max: 4, raise_busy_percent: 50.0, raise_samples: 3, lower_samples: 5 };
    // io-threads 1 (no I/O thread) and a busy executor: allow one.
    let d = decide_io_threads(&p, &io(1, 0, 80.0, 3));
    assert_eq!(d.set_to, Some(2), "{}", d.reason);
    // Every allowed thread active, busy: one more.
    assert_eq!(decide_io_threads(&p, &io(3, 2, 70.0, 3)).set_to, Some(4));
    // At max: hold.
    assert_eq!(decide_io_threads(&p, &io(4, 3, 90.0, 3)).set_to, None);
    // Not busy enough, or too few samples: hold.
    assert_eq!(decide_io_threads(&p, &io(2, 1, 20.0, 3)).set_to, None);
    assert_eq!(decide_io_threads(&p, &io(2, 1, 90.0, 2)).set_to, None);
    // Samples at an older setting do not count.
    let mut s = io(2, 1, 90.0, 3);
    s[0].io_threads = 1;
    assert_eq!(decide_io_threads(&p, &s).set_to, None);
}

#[test]
fn io_threads_lower_when_idle_and_clamp() {
    let p = IoThreadsPolicy { min: 1, max: 4, raise_busy_percent: 50.0, raise_samples: 3, lower_samples: 5 };
    assert_eq!(decide_io_threads(&p, &io(4, 0, 5.0, 5)).set_to, Some(1));
    let mut s = io(4, 0, 5.0, 5);
    s[2].active = 1;
    assert_eq!(decide_io_threads(&p, &s).set_to, Some(2));
    assert_eq!(decide_io_threads(&p, &io(4, 0, 5.0, 4)).set_to, None);
    assert_eq!(decide_io_threads(&p, &io(8, 0, 5.0, 1)).set_to, Some(4));
    let p2 = IoThreadsPolicy { min: 2, ..p };
    assert_eq!(decide_io_threads(&p2, &io(1, 0, 0.0, 1)).set_to, Some(2));
    assert_eq!(decide_io_threads(&p2, &io(3, 0, 0.0, 5)).set_to, Some(2));
}
