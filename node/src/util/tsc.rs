//! A cheap clock for per-command timing (`cmdstat_*` usec, the metrics endpoint).
//!
//! Timing every command with `clock_gettime` cost 6% of the executor at pipeline 16 (two vDSO
//! calls per command). Like Valkey's `monotonic.c`, Shoal reads the CPU's time-stamp counter
//! instead when the kernel reports it constant and non-stop (`constant_tsc` and `nonstop_tsc`
//! in /proc/cpuinfo), converting with a rate measured once at start-up against the monotonic
//! clock. Elsewhere, or when the check fails, it falls back to `Instant`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Picoseconds per tick (fixed point, so converting is one multiply); 0 = use `Instant`.
static PS_PER_TICK: AtomicU64 = AtomicU64::new(0);
/// The fallback's epoch.
static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Decides once between the TSC and `Instant`; spends about 5 ms measuring the TSC rate.
/// Safe to call more than once; `now`/`nanos_since` work (via `Instant`) before it runs.
pub fn calibrate() {
    EPOCH.get_or_init(Instant::now);
    if PS_PER_TICK.load(Ordering::Relaxed) != 0 || !tsc_is_usable() {
        return;
    }
    let (t0, c0) = (Instant::now(), read_tsc());
    while t0.elapsed() < Duration::from_millis(5) {
        std::hint::spin_loop();
    }
    let (dt, dc) = (t0.elapsed(), read_tsc().wrapping_sub(c0));
    if dc == 0 {
        return;
    }
    let ps = (dt.as_nanos() as u64).saturating_mul(1000) / dc;
    // A rate outside 0.1–100 GHz means the measurement is not to be trusted.
    if (10..=10_000).contains(&ps) {
        PS_PER_TICK.store(ps, Ordering::Relaxed);
    }
}

/// A timestamp for [`nanos_since`].
#[inline]
pub fn now() -> u64 {
    if PS_PER_TICK.load(Ordering::Relaxed) != 0 {
        read_tsc()
    } else {
        EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
    }
}

/// Nanoseconds since `start` (a value of [`now`]).
#[inline]
pub fn nanos_since(start: u64) -> u64 {
    let ps = PS_PER_TICK.load(Ordering::Relaxed);
    if ps != 0 {
        read_tsc().wrapping_sub(start).saturating_mul(ps) / 1000
    } else {
        now().saturating_sub(start)
    }
}

#[cfg(target_arch = "x86_64")]
#[inline]
fn read_tsc() -> u64 {
    // SAFETY: RDTSC has no preconditions and is present on every x86-64 CPU.
    unsafe { core::arch::x86_64::_rdtsc() }
}

#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn read_tsc() -> u64 {
    0
}

fn tsc_is_usable() -> bool {
    if !cfg!(target_arch = "x86_64") {
        return false;
    }
    let Ok(info) = std::fs::read_to_string("/proc/cpuinfo") else { return false };
    let flags = info.lines().find(|l| l.starts_with("flags")).unwrap_or("");
    let has = |f: &str| flags.split_whitespace().any(|w| w == f);
    has("constant_tsc") && has("nonstop_tsc")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_elapsed_time_in_nanoseconds() {
        calibrate();
        let (t, c) = (Instant::now(), now());
        std::thread::sleep(Duration::from_millis(20));
        let (real, measured) = (t.elapsed().as_nanos() as u64, nanos_since(c));
        // Within 10% of the monotonic clock (the sleep itself sets no upper bound).
        assert!(measured * 10 >= real * 9 && measured * 10 <= real * 11, "{measured} ns vs {real} ns");
    }
}
