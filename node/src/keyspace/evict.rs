//! What the keyspace keeps for eviction: the per-key access field under an LFU policy
//! (Valkey's logarithmic counter with decay) and the eviction pool that sampled candidates go
//! through (`evictionPoolPopulate`). The decision of *when* to evict, and the deleting, live in
//! `exec::evict`; this module does no I/O and reads no clock.
//!
//! The 24-bit access field of every node (`Node::lru`) holds, as in Valkey, either the LRU
//! clock in seconds or, under an LFU policy, 16 bits of minutes of the last decrement and an
//! 8-bit logarithmic access counter:
//!
//! ```text
//!       16 bits        8 bits
//! +----------------+--------+
//! | minutes (ldt)  | LOG_C  |
//! +----------------+--------+
//! ```

use super::node::Node;

/// The counter a new key starts with, so it can collect a few accesses before it becomes the
/// first candidate for eviction (`LFU_INIT_VAL`).
pub const LFU_INIT_VAL: u32 = 5;

/// How many candidates the pool keeps across eviction rounds (`EVPOOL_SIZE`).
pub const POOL_SIZE: usize = 16;

/// LFU parameters (`lfu-log-factor`, `lfu-decay-time`), copied into each database so that a
/// key access can update its counter without reaching for the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lfu {
    pub log_factor: u32,
    /// Minutes per decrement of the counter (0: never decays).
    pub decay_time: u32,
}

/// 16 bits of the Unix time in minutes (`LFUGetTimeInMinutes`).
pub fn lfu_minutes(now_ms: i64) -> u32 {
    ((now_ms.max(0) / 60_000) as u32) & 0xffff
}

/// The access field of a key created now under an LFU policy.
pub fn lfu_new_field(now_ms: i64) -> u32 {
    (lfu_minutes(now_ms) << 8) | LFU_INIT_VAL
}

/// Minutes since `ldt`, the 16-bit clock wrapping at most once (`LFUTimeElapsed`).
fn lfu_elapsed(ldt: u32, now_min: u32) -> u32 {
    if now_min >= ldt {
        now_min - ldt
    } else {
        65535 - ldt + now_min
    }
}

impl Lfu {
    /// The counter after decay for the minutes elapsed (`LFUDecrAndReturn`); the field itself
    /// is left alone.
    pub fn decayed(&self, field: u32, now_min: u32) -> u32 {
        let ldt = (field >> 8) & 0xffff;
        let counter = field & 0xff;
        let periods = lfu_elapsed(ldt, now_min).checked_div(self.decay_time).unwrap_or(0);
        counter.saturating_sub(periods)
    }

    /// Logarithmic increment (`LFULogIncr`): the higher the counter, the less likely it grows.
    pub fn log_incr(&self, counter: u32) -> u32 {
        if counter >= 255 {
            return 255;
        }
        let r = fastrand::f64();
        let base = counter.saturating_sub(LFU_INIT_VAL) as f64;
        let p = 1.0 / (base * self.log_factor as f64 + 1.0);
        if r < p {
            counter + 1
        } else {
            counter
        }
    }

    /// The field after an access now (`updateLFU`): decay, then increment.
    pub fn touch(&self, field: u32, now_min: u32) -> u32 {
        let counter = self.log_incr(self.decayed(field, now_min));
        ((now_min & 0xffff) << 8) | counter
    }
}

/// Seconds since the last access on the wrapping 24-bit LRU clock (`estimateObjectIdleTime`,
/// in seconds).
pub fn lru_idle(field: u32, clock: u32) -> u32 {
    if clock >= field {
        clock - field
    } else {
        0x00ff_ffff - field + clock
    }
}

/// What makes a sampled key a good candidate: higher is evicted first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Score {
    /// Idle seconds on the LRU clock.
    Lru { clock: u32 },
    /// 255 minus the decayed LFU counter.
    Lfu { lfu: Lfu, now_min: u32 },
    /// The sooner the deadline, the better (`volatile-ttl`).
    Ttl,
}

impl Score {
    /// The score of a node (Valkey's `idle` in the pool).
    pub fn of(&self, node: &Node) -> u64 {
        match *self {
            Score::Lru { clock } => u64::from(lru_idle(node.lru(), clock)),
            Score::Lfu { lfu, now_min } => u64::from(255 - lfu.decayed(node.lru(), now_min).min(255)),
            Score::Ttl => match node.expire_at() {
                // Shifted so that any deadline, past ones included, orders below u64::MAX.
                Some(at) => u64::MAX - (at as u64 ^ (1 << 63)),
                None => 0,
            },
        }
    }
}

/// One candidate: the key is copied because the pool outlives the commands that may delete
/// or replace it; a candidate whose key is gone is a ghost and is skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub score: u64,
    pub db: usize,
    pub key: Vec<u8>,
}

/// The eviction pool: up to [`POOL_SIZE`] candidates in ascending score order, kept across
/// calls so the best keys of many samples compete (`EvictionPoolLRU`).
#[derive(Debug, Default)]
pub struct Pool {
    entries: Vec<Candidate>,
    /// Key buffers of removed entries, reused so sampling does not allocate per key.
    spare: Vec<Vec<u8>>,
}

impl Pool {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Offers a sampled key. It enters if there is room or it beats the worst candidate. A key
    /// sampled twice may hold two entries, as in Valkey: the second one pops as a ghost.
    pub fn offer(&mut self, score: u64, db: usize, key: &[u8]) {
        let k = self.entries.partition_point(|c| c.score < score);
        if k == 0 && self.entries.len() >= POOL_SIZE {
            return;
        }
        let mut buf = self.spare.pop().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(key);
        let c = Candidate { score, db, key: buf };
        if self.entries.len() >= POOL_SIZE {
            // Full: drop the worst (leftmost) to make room; the insert point moves with it.
            let worst = self.entries.remove(0);
            self.spare.push(worst.key);
            self.entries.insert(k - 1, c);
        } else {
            self.entries.insert(k, c);
        }
    }

    /// Takes the best candidate out.
    pub fn pop_best(&mut self) -> Option<Candidate> {
        self.entries.pop()
    }

    /// Gives a popped candidate's buffer back for reuse.
    pub fn recycle(&mut self, c: Candidate) {
        if self.spare.len() < POOL_SIZE {
            self.spare.push(c.key);
        }
    }

    /// Forgets every candidate (FLUSHALL, a policy change).
    pub fn clear(&mut self) {
        for c in self.entries.drain(..) {
            self.spare.push(c.key);
        }
        self.spare.truncate(POOL_SIZE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyspace::Value;

    #[test]
    fn pool_keeps_the_sixteen_best_in_order() {
        let mut p = Pool::default();
        for i in 0..100u64 {
            p.offer((i * 37) % 101, 0, format!("k{i}").as_bytes());
        }
        assert_eq!(p.len(), POOL_SIZE);
        let mut got = Vec::new();
        while let Some(c) = p.pop_best() {
            got.push(c.score);
        }
        let mut want: Vec<u64> = (0..100u64).map(|i| (i * 37) % 101).collect();
        want.sort_unstable_by(|a, b| b.cmp(a));
        want.truncate(POOL_SIZE);
        assert_eq!(got, want);
    }

    #[test]
    fn lfu_counter_grows_logarithmically_and_decays() {
        let lfu = Lfu { log_factor: 10, decay_time: 1 };
        let mut field = lfu_new_field(0);
        assert_eq!(field & 0xff, LFU_INIT_VAL);
        for _ in 0..1000 {
            field = lfu.touch(field, 0);
        }
        let c = field & 0xff;
        // Reaching base b above LFU_INIT_VAL takes about 5·b² hits at factor 10: ~19 after
        // 1000 hits (valkey.conf's table says 18), with a wide spread.
        assert!((12..=35).contains(&c), "counter after 1000 hits: {c}");
        assert_eq!(lfu.decayed(field, 10), c - 10);
        assert_eq!(lfu.decayed(field, 65535), 0, "decays to zero, never wraps");
        let never = Lfu { log_factor: 10, decay_time: 0 };
        assert_eq!(never.decayed(field, 100), c);
        let fast = Lfu { log_factor: 0, decay_time: 1 };
        let mut f = lfu_new_field(0);
        for _ in 0..300 {
            f = fast.touch(f, 0);
        }
        assert_eq!(f & 0xff, 255, "factor 0 counts every hit and saturates");
    }

    #[test]
    fn scores_order_candidates_as_valkey() {
        let old = Node::from_value(b"o", Value::Int(1), None, 100, false);
        let new = Node::from_value(b"n", Value::Int(1), None, 190, false);
        let lru = Score::Lru { clock: 200 };
        assert!(lru.of(&old) > lru.of(&new));
        assert_eq!(lru_idle(0x00ff_fff0, 5), 20, "the clock wraps");
        let soon = Node::from_value(b"s", Value::Int(1), Some(1_000), 0, false);
        let late = Node::from_value(b"l", Value::Int(1), Some(9_000), 0, false);
        let past = Node::from_value(b"p", Value::Int(1), Some(-5), 0, false);
        assert!(Score::Ttl.of(&soon) > Score::Ttl.of(&late));
        assert!(Score::Ttl.of(&past) > Score::Ttl.of(&soon));
        let lfu = Score::Lfu { lfu: Lfu { log_factor: 10, decay_time: 1 }, now_min: 0 };
        let cold = Node::from_value(b"c", Value::Int(1), None, 1, false);
        let hot = Node::from_value(b"h", Value::Int(1), None, 200, false);
        assert!(lfu.of(&cold) > lfu.of(&hot));
    }
}
