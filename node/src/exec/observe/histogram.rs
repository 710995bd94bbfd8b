//! Per-command latency histograms (INFO latencystats, LATENCY HISTOGRAM). Valkey keeps an
//! HdrHistogram per command; this is a log-linear histogram of the same idea: each power of two
//! of nanoseconds split into 16 linear buckets, so a percentile is within about 6% of the true
//! value, in 4.8 KiB per command, allocated at the command's first call.

/// Sub-buckets per power of two (a power of two itself).
const SUB: usize = 16;
const SUB_BITS: u32 = SUB.trailing_zeros();
/// Durations past 2^40 ns (18 minutes) land in the last bucket.
const MAX_EXP: u32 = 40;
const BUCKETS: usize = (MAX_EXP as usize - SUB_BITS as usize + 1) * SUB + SUB;

/// Counts of durations in nanoseconds.
pub struct Histogram {
    counts: Box<[u64; BUCKETS]>,
    pub total: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram { counts: Box::new([0; BUCKETS]), total: 0 }
    }
}

fn index(v: u64) -> usize {
    if v < SUB as u64 {
        return v as usize;
    }
    let e = (63 - v.leading_zeros()).min(MAX_EXP);
    let v = v.min((1u64 << (MAX_EXP + 1)) - 1);
    let sub = ((v >> (e - SUB_BITS)) as usize) & (SUB - 1);
    (e - SUB_BITS + 1) as usize * SUB + sub
}

/// The highest value bucket `i` holds.
fn upper(i: usize) -> u64 {
    if i < SUB {
        return i as u64;
    }
    let e = (i / SUB) as u32 + SUB_BITS - 1;
    let sub = (i % SUB) as u64;
    let width = 1u64 << (e - SUB_BITS);
    ((SUB as u64 + sub) << (e - SUB_BITS)) + width - 1
}

impl Histogram {
    pub fn record(&mut self, nanos: u64) {
        self.counts[index(nanos)] += 1;
        self.total += 1;
    }

    /// The duration (ns) below which `p` percent of the samples fall.
    pub fn percentile(&self, p: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let target = ((p / 100.0) * self.total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= target {
                return upper(i);
            }
        }
        upper(BUCKETS - 1)
    }

    /// Samples at or below `nanos`.
    fn count_upto(&self, nanos: u64) -> u64 {
        self.counts.iter().enumerate().take_while(|(i, _)| upper(*i) <= nanos).map(|(_, &c)| c).sum()
    }

    /// LATENCY HISTOGRAM's buckets: (µs, cumulative count) at powers of two from 1 µs, as
    /// Valkey's log iterator reports them (its bucket tops, e.g. 33 µs for 32768 ns), while the
    /// count grows, up to the largest sample.
    pub fn cumulative_usec(&self) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        let mut previous = 0;
        let mut step = 1024u64;
        while previous < self.total && step < (1u64 << (MAX_EXP + 2)) {
            // HdrHistogram (2 significant digits) rounds a power of two up to its bucket's top.
            let top = step + step / 128 - 1;
            let count = if step >= 1u64 << (MAX_EXP + 1) { self.total } else { self.count_upto(top) };
            if count > previous {
                out.push((top / 1000, count));
            }
            previous = count;
            step *= 2;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_hold_their_values() {
        for v in [0u64, 1, 15, 16, 17, 31, 32, 1000, 1023, 1024, 65_535, 1 << 30, (1 << 41) - 1] {
            let i = index(v);
            assert!(upper(i) >= v, "{v} in bucket {i} up to {}", upper(i));
            assert!(i == 0 || upper(i - 1) < v, "{v}: bucket {i} too high");
        }
        assert_eq!(index(u64::MAX), index((1 << 41) - 1));
    }

    #[test]
    fn percentiles_are_within_the_bucket_width() {
        let mut h = Histogram::default();
        for v in 1..=1000u64 {
            h.record(v * 1000);
        }
        let p50 = h.percentile(50.0) as f64;
        assert!((p50 - 500_000.0).abs() / 500_000.0 < 0.07, "{p50}");
        let p99 = h.percentile(99.0) as f64;
        assert!((p99 - 990_000.0).abs() / 990_000.0 < 0.07, "{p99}");
        assert_eq!(Histogram::default().percentile(50.0), 0);
    }

    #[test]
    fn cumulative_buckets_follow_valkey_tops() {
        let mut h = Histogram::default();
        h.record(500);
        h.record(1500);
        h.record(40_000);
        let b = h.cumulative_usec();
        assert_eq!(b, vec![(1, 1), (2, 2), (66, 3)]);
    }
}
