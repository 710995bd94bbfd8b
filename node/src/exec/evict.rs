//! `maxmemory`: before every command, when the memory in use is over the limit, evict keys by
//! the configured policy (Valkey's `performEvictions`), and refuse commands flagged `denyoom`
//! when nothing more can be evicted.
//!
//! The figure compared with `maxmemory` is the live allocator count (`crate::memory`), which
//! every thread keeps up to date, so the check before a command is a handful of relaxed loads.
//! The policies are Valkey's sampled approximations: `maxmemory-samples` random keys per
//! database feed a pool of the 16 best candidates kept across calls (LRU: longest idle; LFU:
//! lowest decayed counter; volatile-ttl: nearest deadline), and the best live candidate goes.
//! The random policies pick one random key per round, visiting the databases in turn.
//!
//! One eviction round spends at most the time `maxmemory-eviction-tenacity` allows (500 µs by
//! default); a command that finds memory still over the limit after that runs anyway (Valkey's
//! `EVICT_RUNNING`), and the executor keeps evicting between loop iterations until memory is
//! under the limit or nothing is left to evict (Valkey's `evictionTimeProc`).

use std::time::Instant;

use super::notify::class;
use super::server::Server;
use super::Ctx;
use crate::config::Config;
use crate::keyspace::evict::{lfu_minutes, lfu_new_field, Lfu, Pool, Score};

/// `-OOM` as Valkey words it.
pub const OOM: &str = "OOM command not allowed when used memory > 'maxmemory'.";

/// Evicted values at least this big (heap bytes) are freed off the executor when
/// `lazyfree-lazy-eviction` is on (Valkey's `LAZYFREE_THRESHOLD` is 64 elements; bytes are
/// what Shoal's values report).
pub const LAZYFREE_BYTES: usize = 64 * 1024;

/// `maxmemory-policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    NoEviction,
    AllKeysLru,
    AllKeysLfu,
    AllKeysRandom,
    VolatileLru,
    VolatileLfu,
    VolatileRandom,
    VolatileTtl,
}

impl Policy {
    pub fn parse(name: &str) -> Policy {
        match name {
            "allkeys-lru" => Policy::AllKeysLru,
            "allkeys-lfu" => Policy::AllKeysLfu,
            "allkeys-random" => Policy::AllKeysRandom,
            "volatile-lru" => Policy::VolatileLru,
            "volatile-lfu" => Policy::VolatileLfu,
            "volatile-random" => Policy::VolatileRandom,
            "volatile-ttl" => Policy::VolatileTtl,
            _ => Policy::NoEviction,
        }
    }

    pub fn is_lfu(self) -> bool {
        matches!(self, Policy::AllKeysLfu | Policy::VolatileLfu)
    }

    pub fn is_lru(self) -> bool {
        matches!(self, Policy::AllKeysLru | Policy::VolatileLru)
    }

    /// Only keys with a TTL are candidates.
    pub fn volatile_only(self) -> bool {
        matches!(
            self,
            Policy::VolatileLru | Policy::VolatileLfu | Policy::VolatileRandom | Policy::VolatileTtl
        )
    }
}

/// What one eviction attempt achieved (`EVICT_OK` / `EVICT_RUNNING` / `EVICT_FAIL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Under the limit (or no limit).
    Ok,
    /// Still over the limit when the time budget ran out; commands go on.
    Running,
    /// Over the limit with nothing (more) to evict: `denyoom` commands are refused.
    Fail,
}

/// The eviction settings as the executor uses them, and the candidate pool.
#[derive(Debug)]
pub struct Eviction {
    pub maxmemory: u64,
    pub policy: Policy,
    pub samples: usize,
    pub lfu: Lfu,
    /// Time budget of one round, in microseconds (`None`: unlimited).
    pub time_limit_us: Option<u64>,
    pub lazy: bool,
    pub pool: Pool,
    next_db: usize,
    /// When the memory went over the limit and stayed there (INFO eviction exceeded times).
    pub exceeded_since: Option<Instant>,
    pub exceeded_total_us: u64,
    /// Where the memory figure comes from (the allocator count; tests substitute their own).
    pub used: fn(&Server) -> u64,
    /// The last round ran out of time while still over the limit: the executor keeps
    /// evicting between commands (Valkey's `evictionTimeProc`).
    pub running: bool,
    /// Keys evicted whose `evicted` notification is not sent yet.
    pub evicted_keys: Vec<(usize, Vec<u8>)>,
}

/// Notifications held back at most (beyond that, evictions go unannounced rather than grow
/// memory while freeing it).
const MAX_PENDING_NOTIFY: usize = 4096;

fn live_used(_srv: &Server) -> u64 {
    crate::memory::used()
}

/// `evictionTimeLimitUs`: linear up to 500 µs at tenacity 10, then 15% more per step.
pub fn time_limit_us(tenacity: i64) -> Option<u64> {
    match tenacity {
        t if t <= 10 => Some(50 * t.max(0) as u64),
        t if t < 100 => Some((500.0 * 1.15f64.powi(t as i32 - 10)) as u64),
        _ => None,
    }
}

impl Eviction {
    pub fn from_config(config: &Config) -> Eviction {
        let mut e = Eviction {
            maxmemory: 0,
            policy: Policy::NoEviction,
            samples: 5,
            lfu: Lfu { log_factor: 10, decay_time: 1 },
            time_limit_us: Some(500),
            lazy: false,
            pool: Pool::default(),
            next_db: 0,
            exceeded_since: None,
            exceeded_total_us: 0,
            used: live_used,
            running: false,
            evicted_keys: Vec::new(),
        };
        e.refresh(config);
        e
    }

    /// Re-reads the settings (after CONFIG SET).
    pub fn refresh(&mut self, config: &Config) {
        let policy = Policy::parse(config.get("maxmemory-policy").unwrap_or("noeviction"));
        if policy != self.policy {
            self.pool.clear();
        }
        self.policy = policy;
        self.maxmemory = config.get_i64("maxmemory").max(0) as u64;
        self.samples = config.get_i64("maxmemory-samples").clamp(1, 64) as usize;
        self.lfu = Lfu {
            log_factor: config.get_i64("lfu-log-factor").clamp(0, i64::from(u32::MAX)) as u32,
            decay_time: config.get_i64("lfu-decay-time").clamp(0, i64::from(u32::MAX)) as u32,
        };
        self.time_limit_us = time_limit_us(config.get_i64("maxmemory-eviction-tenacity"));
        self.lazy = config.get_bool("lazyfree-lazy-eviction");
    }

    /// INFO `total_eviction_exceeded_time` (ms), the current period included.
    pub fn exceeded_total_ms(&self) -> u64 {
        (self.exceeded_total_us + self.exceeded_current_us()) / 1000
    }

    /// INFO `current_eviction_exceeded_time` in microseconds.
    pub fn exceeded_current_us(&self) -> u64 {
        self.exceeded_since.map_or(0, |t| t.elapsed().as_micros() as u64)
    }

    fn record(&mut self, outcome: Outcome) {
        self.running = outcome == Outcome::Running;
        match outcome {
            Outcome::Ok => {
                if let Some(t) = self.exceeded_since.take() {
                    self.exceeded_total_us += t.elapsed().as_micros() as u64;
                }
            }
            _ => {
                self.exceeded_since.get_or_insert_with(Instant::now);
            }
        }
    }
}

/// Copies the policy into the places that act on it: each database's access-field mode.
/// Called at start and after CONFIG SET of any eviction setting.
pub fn apply_config(srv: &mut Server) {
    srv.evict.refresh(&srv.config);
    // A limit lowered below the memory in use starts evicting right away, as Valkey's
    // `updateMaxmemory` does, instead of waiting for the next command.
    let max = srv.evict.maxmemory;
    if max != 0 && (srv.evict.used)(srv) > max && srv.evict.policy != Policy::NoEviction {
        srv.evict.running = true;
    }
    let lfu = srv.evict.policy.is_lfu().then_some(srv.evict.lfu);
    for db in &mut srv.dbs {
        db.lfu = lfu;
    }
}

/// The access field a key created now gets: the LRU clock, or under LFU the minutes and the
/// initial counter.
pub fn new_key_field(srv: &Server, lru_clock: u32) -> u32 {
    if srv.evict.policy.is_lfu() {
        lfu_new_field(srv.now_ms)
    } else {
        lru_clock
    }
}

/// Runs before a command: evicts if over the limit and reports whether a `denyoom` command
/// may run. False means the caller replies [`OOM`].
pub fn admit(ctx: &mut Ctx, denyoom: bool) -> bool {
    if ctx.srv.evict.maxmemory == 0 {
        return true;
    }
    let outcome = perform(ctx.srv);
    notify_pending(ctx);
    !(denyoom && outcome == Outcome::Fail)
}

/// Valkey's `performEvictions`. Evicted keys wait in `Eviction::evicted_keys` for their
/// keyspace notification (sent by the next command's [`admit`], which has a client context).
pub fn perform(srv: &mut Server) -> Outcome {
    let ev = &srv.evict;
    let max = ev.maxmemory;
    if max == 0 {
        srv.evict.running = false;
        return Outcome::Ok;
    }
    let used = (ev.used)(srv);
    if used <= max {
        srv.evict.record(Outcome::Ok);
        return Outcome::Ok;
    }
    if ev.policy == Policy::NoEviction {
        srv.evict.record(Outcome::Fail);
        return Outcome::Fail;
    }
    let to_free = used - max;
    let started = Instant::now();
    let limit = ev.time_limit_us;
    let mut freed: u64 = 0;
    let mut evicted = 0u64;
    let mut outcome = Outcome::Ok;
    while freed < to_free {
        let Some((db, key)) = pick(srv) else {
            outcome = Outcome::Fail;
            break;
        };
        let before = (srv.evict.used)(srv);
        let node = srv.dbs[db].remove(&key);
        if srv.repl.active() {
            // Replicas never evict by themselves: they get the deletion.
            srv.repl.feed(db, &[b"DEL", &key]);
        }
        let mut lazily = 0;
        if let Some(node) = node {
            let heap = node.value().heap_size();
            if srv.evict.lazy && heap >= LAZYFREE_BYTES {
                // Counted as freed now: an I/O thread drops it at the end of this iteration.
                lazily = (heap + node.size()) as u64;
                srv.free_later(node);
            } else {
                drop(node);
            }
        }
        let after = (srv.evict.used)(srv);
        freed += before.saturating_sub(after) + lazily;
        srv.stats.evicted_keys += 1;
        evicted += 1;
        if srv.notify_flags != 0 && srv.evict.evicted_keys.len() < MAX_PENDING_NOTIFY {
            srv.evict.evicted_keys.push((db, key));
        }
        if evicted.is_multiple_of(16) && limit.is_some_and(|l| started.elapsed().as_micros() as u64 > l) {
            outcome = Outcome::Running;
            break;
        }
    }
    // Memory may have gone down on its own meanwhile (I/O threads free buffers): what counts
    // is the figure now.
    if outcome != Outcome::Ok && (srv.evict.used)(srv) <= max {
        outcome = Outcome::Ok;
    }
    srv.evict.record(outcome);
    outcome
}

/// Publishes `evicted` for every key evicted since the last call, each as seen from the
/// database it was in.
fn notify_pending(ctx: &mut Ctx) {
    if ctx.srv.evict.evicted_keys.is_empty() {
        return;
    }
    let keys = std::mem::take(&mut ctx.srv.evict.evicted_keys);
    let mine = ctx.client().db;
    for (db, key) in &keys {
        ctx.client().db = *db;
        ctx.notify(class::EVICTED, "evicted", key);
    }
    ctx.client().db = mine;
}

/// Chooses the next key to evict: `(database, key)`, or `None` when no key qualifies.
fn pick(srv: &mut Server) -> Option<(usize, Vec<u8>)> {
    let policy = srv.evict.policy;
    let volatile = policy.volatile_only();
    match policy {
        Policy::NoEviction => None,
        Policy::AllKeysRandom | Policy::VolatileRandom => {
            let n = srv.dbs.len();
            for _ in 0..n {
                srv.evict.next_db = (srv.evict.next_db + 1) % n;
                let db = srv.evict.next_db;
                let mut key = None;
                srv.dbs[db].sample(volatile, 1, |node| key = Some(node.key().to_vec()));
                if let Some(k) = key {
                    return Some((db, k));
                }
            }
            None
        }
        _ => {
            let score = match policy {
                Policy::AllKeysLfu | Policy::VolatileLfu => {
                    Score::Lfu { lfu: srv.evict.lfu, now_min: lfu_minutes(srv.now_ms) }
                }
                Policy::VolatileTtl => Score::Ttl,
                _ => Score::Lru { clock: srv.lru_clock() },
            };
            let samples = srv.evict.samples;
            loop {
                let Server { dbs, evict, .. } = &mut *srv;
                let mut total = 0;
                for (i, db) in dbs.iter().enumerate() {
                    let keys = if volatile { db.volatile_len() } else { db.len() };
                    if keys == 0 {
                        continue;
                    }
                    total += keys;
                    let pool = &mut evict.pool;
                    db.sample(volatile, samples, |node| pool.offer(score.of(node), i, node.key()));
                }
                if total == 0 {
                    return None;
                }
                // Best first; candidates deleted or changed since they were sampled are ghosts.
                while let Some(c) = evict.pool.pop_best() {
                    let live = dbs.get_mut(c.db).is_some_and(|db| {
                        db.get(&c.key, i64::MIN, 0, false)
                            .is_some_and(|e| !volatile || e.expire_at().is_some())
                    });
                    if live {
                        return Some((c.db, c.key));
                    }
                    evict.pool.recycle(c);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
