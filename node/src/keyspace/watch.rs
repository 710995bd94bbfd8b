//! WATCH support inside a database: which keys some client watches, and which of them were
//! changed since the executor last looked.
//!
//! Valkey calls `signalModifiedKey` from every command that changes a key and from expiry,
//! eviction and flushes. Shoal marks keys where they actually change instead: every mutation of
//! a `Db` (insert, replace, remove for any reason, TTL change, in-place change of a value) goes
//! through [`WatchSet::mark`], so a new command family gets WATCH right without doing anything.
//! While nobody watches a key of this database the cost is one `is_empty` check per mutation.
//!
//! The set only records keys; which clients watch them (and what to do about it) is the
//! transaction family's business (`command/txn.rs`), run by the executor after each command.
//!
//! The same hook feeds client-side caching: while some client tracks keys, `modified` logs
//! every changed key and `exec::tracking` turns the log into invalidations.

use std::collections::HashMap;

/// A watching client: its slab index and id (the id guards against a reused index).
pub type Watcher = (usize, u64);

/// The watched keys of one database and the changes not yet processed.
#[derive(Debug, Default)]
pub struct WatchSet {
    keys: HashMap<Box<[u8]>, Vec<Watcher>>,
    touched: Vec<Box<[u8]>>,
    /// Every mutation of the database, watched or not (see `Db::changes`).
    pub changes: u64,
    /// Every changed key, logged only while client tracking is active (see
    /// `exec::tracking`); `None` otherwise, so the write path pays one branch.
    pub modified: Option<KeyLog>,
}

/// Key names in one buffer (no allocation per key once the buffers have grown).
#[derive(Debug, Default)]
pub struct KeyLog {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl KeyLog {
    /// Out of line: the write path's `mark` stays small while tracking is off.
    #[inline(never)]
    pub fn push(&mut self, key: &[u8]) {
        self.bytes.extend_from_slice(key);
        self.ends.push(self.bytes.len());
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Empties the log, keeping its buffers.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
    }

    /// The `i`th key logged.
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        let end = *self.ends.get(i)?;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        self.bytes.get(start..end)
    }
}

impl WatchSet {
    /// True when no client watches any key of this database.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// True when a change must be recorded: someone watches a key here, or tracking is on.
    #[inline]
    pub fn wants_marks(&self) -> bool {
        !self.keys.is_empty() || self.modified.is_some()
    }

    /// How many distinct keys are watched (INFO `total_watched_keys`).
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Records that `key` changed, if someone watches it.
    #[inline]
    pub fn mark(&mut self, key: &[u8]) {
        self.changes += 1;
        if !self.keys.is_empty() && self.keys.contains_key(key) {
            self.touched.push(key.into());
        }
        if let Some(log) = self.modified.as_mut() {
            log.push(key);
        }
    }

    /// Adds a watcher of `key`; false if it already watched it.
    pub fn add(&mut self, key: &[u8], w: Watcher) -> bool {
        let list = self.keys.entry(key.into()).or_default();
        if list.contains(&w) {
            return false;
        }
        list.push(w);
        true
    }

    /// Removes a watcher of `key`.
    pub fn remove(&mut self, key: &[u8], w: Watcher) {
        if let Some(list) = self.keys.get_mut(key) {
            list.retain(|x| *x != w);
            if list.is_empty() {
                self.keys.remove(key);
            }
        }
    }

    /// Who watches `key`.
    pub fn watchers(&self, key: &[u8]) -> &[Watcher] {
        self.keys.get(key).map_or(&[], Vec::as_slice)
    }

    /// Every watched key.
    pub fn keys(&self) -> impl Iterator<Item = &[u8]> {
        self.keys.keys().map(|k| &**k)
    }

    /// True if changes are waiting to be processed.
    #[inline]
    pub fn has_touched(&self) -> bool {
        !self.touched.is_empty()
    }

    /// Takes the changed keys recorded so far.
    pub fn take_touched(&mut self) -> Vec<Box<[u8]>> {
        std::mem::take(&mut self.touched)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_only_watched_keys() {
        let mut w = WatchSet::default();
        w.mark(b"a");
        assert!(!w.has_touched());
        assert!(w.add(b"a", (1, 7)));
        assert!(!w.add(b"a", (1, 7)));
        w.mark(b"b");
        assert!(!w.has_touched());
        w.mark(b"a");
        assert_eq!(w.take_touched(), vec![Box::<[u8]>::from(&b"a"[..])]);
        w.remove(b"a", (1, 7));
        assert!(w.is_empty());
        assert!(w.watchers(b"a").is_empty());
    }
}
