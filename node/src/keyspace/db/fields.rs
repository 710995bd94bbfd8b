//! Valkey 9's hash field expiry on the database side: the lazy check every hash command makes
//! and the active pass the cron runs over `hfe_keys`. Apart from `db.rs` because it is its own
//! mechanism, with its own bookkeeping (`hfe_keys`, `hexpired_log`, `hfe_repl_log`).

use bytes::Bytes;

use super::{Db, Expiry};
use crate::keyspace::node::ValueRef;
use crate::keyspace::value::Value;

impl Db {
    /// Lazy hash field expiry: removes the fields of the hash at `key` whose TTL has passed
    /// (deleting the key when none is left), recording them for `hexpired` events and for
    /// replicas (as `HDEL`). Only a primary expires fields; replicas wait for the `HDEL`.
    /// Returns how many fields went.
    pub fn expire_fields(&mut self, key: &[u8], now_ms: i64) -> usize {
        // Every key whose hash has field TTLs is in `hfe_keys` (HEXPIRE and HSETEX add it, and
        // so does `set`, which RENAME, MOVE, COPY, RESTORE and loads go through), so a
        // database without any skips the lookup: hash commands cost nothing extra then.
        if self.expiry != Expiry::Delete || self.hfe_keys.is_empty() {
            return 0;
        }
        let Some(mut e) = self.get(key, now_ms, 0, false) else { return 0 };
        let Some(Value::Hash(h)) = e.value_mut_untracked() else { return 0 };
        if !h.has_field_ttls() {
            return 0;
        }
        let gone = h.remove_expired_fields(now_ms);
        if gone.is_empty() {
            return 0;
        }
        let emptied = h.is_empty();
        if emptied {
            self.remove(key);
        } else {
            self.signal_modified(key);
        }
        let n = gone.len();
        let key = Bytes::copy_from_slice(key);
        self.hexpired_log.push((key.clone(), emptied));
        if self.repl_log.is_some() {
            self.hfe_repl_log.push((key, gone));
        }
        n
    }

    /// The active part of hash field expiry: goes over up to `max` keys of `hfe_keys`,
    /// expiring their due fields and forgetting keys without field TTLs. Returns the number
    /// of fields expired.
    pub fn expire_fields_active(&mut self, max: usize, now_ms: i64) -> usize {
        if self.expiry != Expiry::Delete || self.hfe_keys.is_empty() {
            return 0;
        }
        // Resume where the last pass stopped, so keys with far deadlines do not hide the rest.
        let start = self.hfe_cursor % self.hfe_keys.len();
        let keys: Vec<Bytes> =
            self.hfe_keys.iter().cycle().skip(start).take(max.min(self.hfe_keys.len())).cloned().collect();
        self.hfe_cursor = start + keys.len();
        let mut n = 0;
        for k in keys {
            n += self.expire_fields(&k, now_ms);
            let keep = matches!(self.peek(&k), Some(ValueRef::Hash(h)) if h.has_field_ttls());
            if !keep {
                self.hfe_keys.remove(&k);
            }
        }
        n
    }
}
