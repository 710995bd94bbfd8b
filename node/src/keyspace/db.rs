//! One logical database: the key table, the set of keys with a TTL, and lazy/active expiry.
//!
//! The table is an insertion-ordered index map so that a random key is O(1) (RANDOMKEY,
//! expiry sampling, eviction) and SCAN can walk positions from the top down: deletion moves
//! only the *last* entry into the hole, so a key present for a whole scan is always returned,
//! however the table grows or shrinks in between.

use bytes::Bytes;
use indexmap::{IndexMap, IndexSet};

use super::value::Value;

type Hasher = foldhash::fast::RandomState;

/// A key's value and metadata.
#[derive(Debug, Clone)]
pub struct Entry {
    pub value: Value,
    /// Absolute expiry in Unix milliseconds, if the key is volatile.
    pub expire_at: Option<i64>,
    /// Last access, in seconds of the node's LRU clock (for OBJECT IDLETIME).
    pub lru: u32,
}

/// One database.
#[derive(Default)]
pub struct Db {
    map: IndexMap<Bytes, Entry, Hasher>,
    volatile: IndexSet<Bytes, Hasher>,
    /// Keys removed because their TTL passed (lazily or by the active cycle).
    pub expired: u64,
}

/// Outcome of one active-expiry pass over a database.
#[derive(Debug, Default, Clone, Copy)]
pub struct ExpireRound {
    pub sampled: usize,
    pub expired: usize,
}

impl Db {
    pub fn new() -> Self {
        Db::default()
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn volatile_len(&self) -> usize {
        self.volatile.len()
    }

    /// Looks a key up, deleting it first if its TTL has passed. Updates the access clock unless
    /// `touch` is false (OBJECT, NO-TOUCH clients, TTL queries).
    pub fn get(&mut self, key: &[u8], now_ms: i64, clock: u32, touch: bool) -> Option<&mut Entry> {
        let idx = self.map.get_index_of(key)?;
        if let Some(at) = self.map[idx].expire_at {
            if at <= now_ms {
                self.remove_index(idx);
                self.expired += 1;
                return None;
            }
        }
        let e = &mut self.map[idx];
        if touch {
            e.lru = clock;
        }
        Some(e)
    }

    /// True if the key exists and is not expired (expires it lazily otherwise).
    pub fn contains(&mut self, key: &[u8], now_ms: i64) -> bool {
        self.get(key, now_ms, 0, false).is_some()
    }

    /// Inserts or replaces a key. `expire_at` replaces any previous TTL. Returns the old entry.
    pub fn set(&mut self, key: &[u8], value: Value, expire_at: Option<i64>, clock: u32) -> Option<Entry> {
        let entry = Entry { value, expire_at, lru: clock };
        let old = match self.map.get_full_mut(key) {
            Some((_, _, slot)) => Some(std::mem::replace(slot, entry)),
            None => {
                self.map.insert(Bytes::copy_from_slice(key), entry);
                None
            }
        };
        let was_volatile = old.as_ref().is_some_and(|o| o.expire_at.is_some());
        match (was_volatile, expire_at.is_some()) {
            (false, true) => {
                let k = self.map.get_key_value(key).map(|(k, _)| k.clone());
                if let Some(k) = k {
                    self.volatile.insert(k);
                }
            }
            (true, false) => {
                self.volatile.swap_remove(key);
            }
            _ => {}
        }
        old
    }

    /// Replaces only the value of an existing key, keeping its TTL.
    pub fn set_value_keep_ttl(&mut self, key: &[u8], value: Value, clock: u32) -> Option<Entry> {
        match self.map.get_mut(key) {
            Some(e) => {
                let expire_at = e.expire_at;
                Some(std::mem::replace(e, Entry { value, expire_at, lru: clock }))
            }
            None => self.set(key, value, None, clock),
        }
    }

    /// Sets or clears the TTL of an existing key. Returns false if the key does not exist.
    pub fn set_expire(&mut self, key: &[u8], expire_at: Option<i64>) -> bool {
        let Some((_, k, e)) = self.map.get_full_mut(key) else {
            return false;
        };
        let was = e.expire_at.is_some();
        e.expire_at = expire_at;
        match (was, expire_at.is_some()) {
            (false, true) => {
                let k = k.clone();
                self.volatile.insert(k);
            }
            (true, false) => {
                self.volatile.swap_remove(key);
            }
            _ => {}
        }
        true
    }

    /// Removes a key (expired or not) and returns its entry.
    pub fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        let idx = self.map.get_index_of(key)?;
        Some(self.remove_index(idx))
    }

    fn remove_index(&mut self, idx: usize) -> Entry {
        let (k, e) = self.map.swap_remove_index(idx).expect("index from lookup");
        if e.expire_at.is_some() {
            self.volatile.swap_remove(&k);
        }
        e
    }

    /// Removes every key, returning the old table so the caller can drop it elsewhere.
    pub fn clear(&mut self) -> Db {
        std::mem::take(self)
    }

    /// A random live key (expired ones met on the way are removed), as RANDOMKEY.
    pub fn random_key(&mut self, now_ms: i64) -> Option<Bytes> {
        // Bounded retries, like Valkey's dbRandomKey: if every key sampled is expired we give
        // up rather than loop forever.
        for _ in 0..100 {
            if self.map.is_empty() {
                return None;
            }
            let idx = fastrand::usize(..self.map.len());
            let (k, e) = self.map.get_index(idx)?;
            match e.expire_at {
                Some(at) if at <= now_ms => {
                    self.remove_index(idx);
                    self.expired += 1;
                }
                _ => return Some(k.clone()),
            }
        }
        None
    }

    /// One SCAN step. `cursor` 0 starts; positions are walked from the top down, see the module
    /// docs for why. Returns the next cursor (0 when done). `f` sees each live key.
    pub fn scan(&self, cursor: u64, count: usize, now_ms: i64, mut f: impl FnMut(&Bytes, &Entry)) -> u64 {
        let len = self.map.len() as u64;
        let mut pos = if cursor == 0 || cursor > len { len } else { cursor };
        let mut visited = 0;
        while pos > 0 && visited < count.max(1) {
            pos -= 1;
            visited += 1;
            if let Some((k, e)) = self.map.get_index(pos as usize) {
                if e.expire_at.is_none_or(|at| at > now_ms) {
                    f(k, e);
                }
            }
        }
        pos
    }

    /// Every live key, in table order.
    pub fn iter(&self, now_ms: i64) -> impl Iterator<Item = (&Bytes, &Entry)> {
        self.map.iter().filter(move |(_, e)| e.expire_at.is_none_or(|at| at > now_ms))
    }

    /// Samples up to `n` volatile keys and removes those that have expired (Valkey's
    /// `activeExpireCycle` inner step).
    pub fn expire_sample(&mut self, n: usize, now_ms: i64) -> ExpireRound {
        let mut round = ExpireRound::default();
        for _ in 0..n {
            if self.volatile.is_empty() {
                break;
            }
            let i = fastrand::usize(..self.volatile.len());
            let Some(key) = self.volatile.get_index(i).cloned() else {
                break;
            };
            round.sampled += 1;
            let expired = self.map.get(&key).and_then(|e| e.expire_at).is_some_and(|at| at <= now_ms);
            if expired {
                self.remove(&key);
                self.expired += 1;
                round.expired += 1;
            }
        }
        round
    }

    /// Number of live keys hashing to a cluster slot.
    pub fn count_in_slot(&self, slot: u16, now_ms: i64) -> usize {
        self.iter(now_ms).filter(|(k, _)| super::slot::key_slot(k) == slot).count()
    }

    /// Up to `count` live keys of a cluster slot.
    pub fn keys_in_slot(&self, slot: u16, count: usize, now_ms: i64) -> Vec<Bytes> {
        self.iter(now_ms)
            .filter(|(k, _)| super::slot::key_slot(k) == slot)
            .take(count)
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Sum of remaining TTLs over a sample, for INFO keyspace `avg_ttl` (0 when none).
    pub fn avg_ttl(&self, now_ms: i64) -> i64 {
        let n = self.volatile.len().min(32);
        if n == 0 {
            return 0;
        }
        let mut sum = 0i64;
        for k in self.volatile.iter().take(n) {
            if let Some(at) = self.map.get(k).and_then(|e| e.expire_at) {
                sum += (at - now_ms).max(0);
            }
        }
        sum / n as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lazy_expiry_removes_and_counts() {
        let mut db = Db::new();
        db.set(b"a", Value::Int(1), Some(100), 0);
        assert!(db.get(b"a", 99, 0, true).is_some());
        assert!(db.get(b"a", 100, 0, true).is_none());
        assert_eq!(db.len(), 0);
        assert_eq!(db.volatile_len(), 0);
        assert_eq!(db.expired, 1);
    }

    #[test]
    fn scan_returns_every_stable_key_despite_deletes_and_growth() {
        let mut db = Db::new();
        for i in 0..1000 {
            db.set(format!("k{i}").as_bytes(), Value::Int(i), None, 0);
        }
        let mut seen = std::collections::HashSet::new();
        let mut cursor = 0;
        let mut step = 0;
        loop {
            cursor = db.scan(cursor, 10, 0, |k, _| {
                seen.insert(k.clone());
            });
            step += 1;
            // Churn: delete some keys that are not in the stable set, add new ones.
            db.remove(format!("k{}", 900 + step % 100).as_bytes());
            db.set(format!("new{step}").as_bytes(), Value::Int(0), None, 0);
            if cursor == 0 {
                break;
            }
        }
        for i in 0..900 {
            assert!(seen.contains(format!("k{i}").as_bytes()), "missing k{i}");
        }
    }

    #[test]
    fn active_expiry_samples_volatile_keys() {
        let mut db = Db::new();
        for i in 0..100 {
            db.set(format!("k{i}").as_bytes(), Value::Int(i), Some(10), 0);
        }
        db.set(b"keep", Value::Int(1), None, 0);
        let mut total = 0;
        while db.volatile_len() > 0 {
            total += db.expire_sample(20, 11).expired;
        }
        assert_eq!(total, 100);
        assert_eq!(db.len(), 1);
    }
}
