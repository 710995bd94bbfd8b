//! One logical database: key tables (one, or one per hash slot in cluster mode, so a slot's
//! keys can be counted, listed and moved without touching the rest), an index of the keys
//! with a TTL for active expiry, and lazy expiry on access.
//!
//! The database owns every node; the tables hold raw pointers (see `table.rs`). The volatile
//! index holds the same pointers as the main table for keys with a TTL, so any operation that
//! replaces a node updates both.

use bytes::Bytes;

use super::evict::Lfu;
use super::hash::hash_key;
use super::node::{Node, ValueRef};
use super::slot::{key_slot, SLOTS};
use super::table::{Pos, Table, SCAN_DONE};
use super::value::Value;
use super::watch::WatchSet;

/// What the I/O thread computed for a request's first key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyHint {
    pub hash: u64,
    pub slot: u16,
}

/// One database.
pub struct Db {
    tables: Vec<Table>,
    volatile: Vec<Table>,
    len: usize,
    volatile_len: usize,
    /// Keys removed because their TTL passed (lazily or by the active cycle).
    pub expired: u64,
    /// Names of keys expired since the executor last looked, kept only while `expired`
    /// keyspace notifications are on (the executor publishes them).
    pub expired_log: Option<Vec<Bytes>>,
    /// Names of keys expired since replication last looked, kept only while replicas may
    /// need the `DEL`s (see `replication::primary`); separate from `expired_log` because
    /// each has its own reader.
    pub repl_log: Option<Vec<Bytes>>,
    /// Under an LFU policy, how an access updates a key's counter (`None`: the access field
    /// is the LRU clock). Kept in step with the configuration by the executor.
    pub lfu: Option<Lfu>,
    /// WATCHed keys of this database and which of them changed (see `watch.rs`). Every
    /// mutation below marks its key here.
    pub watch: WatchSet,
    /// What a passed TTL means here: deletion on a primary; on a replica the key only looks
    /// absent (its primary sends the DEL) or, for the primary's own stream, still exists.
    pub expiry: Expiry,
    /// Keys that may hold hashes with field TTLs (Valkey 9 hash field expiry), for the
    /// active cycle; a key that no longer has any is dropped when the cycle meets it.
    pub hfe_keys: std::collections::HashSet<Bytes>,
    /// Where the next active field-expiry pass starts in `hfe_keys`.
    hfe_cursor: usize,
    /// Keys whose fields expired since the executor last looked (`hexpired` events), and
    /// whether that left the hash empty (then deleted: a `del` event too).
    pub hexpired_log: Vec<(Bytes, bool)>,
    /// Fields expired since replication last looked, kept while `repl_log` is: each becomes
    /// an `HDEL` in the stream.
    pub hfe_repl_log: Vec<(Bytes, Vec<Box<[u8]>>)>,
}

/// How a database treats keys whose TTL has passed (Valkey's `expireIfNeeded` by role).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Expiry {
    /// A primary: expired keys are deleted when met and by the active cycle.
    #[default]
    Delete,
    /// A replica serving its clients: expired keys look absent but stay until the primary's
    /// DEL arrives, so the replica never diverges from its primary.
    Hide,
    /// Keys exist until deleted, whatever their TTL (kept for completeness; a replica applying
    /// its primary's stream gets this behaviour from `Hide` through `applying_primary`).
    Keep,
}

std::thread_local! {
    /// The hash of the key the running command is about to use, computed by an I/O thread:
    /// (address and length of the argument, hint). Checked by address, so any other key is
    /// hashed on the spot. Thread-local because only the executor runs commands.
    static HINT: std::cell::Cell<Option<(usize, usize, KeyHint)>> = const { std::cell::Cell::new(None) };
}

std::thread_local! {
    /// The executor is running a command of this replica's primary (see `Expiry::Hide`).
    static APPLYING_PRIMARY: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Marks the start and end of a primary's command on a replica: meanwhile keys past their
/// TTL still exist in every `Hide` database (one flag, not a pass over the databases).
pub fn applying_primary(on: bool) {
    APPLYING_PRIMARY.set(on);
}

/// Records the I/O thread's hash of a key argument for the command about to run; `None`
/// clears it (the argument buffer may be reused by the next request).
pub fn set_hint(key: &[u8], hint: Option<KeyHint>) {
    HINT.set(hint.map(|h| (key.as_ptr() as usize, key.len(), h)));
}

impl Default for Db {
    fn default() -> Self {
        Db::with_tables(1)
    }
}

/// Outcome of one active-expiry pass over a database.
#[derive(Debug, Default, Clone, Copy)]
pub struct ExpireRound {
    pub sampled: usize,
    pub expired: usize,
}

/// A live entry, borrowed from the database for reading and in-place changes.
pub struct EntryMut<'a> {
    db: &'a mut Db,
    t: usize,
    pos: Pos,
    h: u64,
}

fn is_expired(node: &Node, now_ms: i64) -> bool {
    // Valkey's `keyIsExpired`: a key expires once the clock is past its deadline.
    node.expire_at().is_some_and(|at| now_ms > at)
}

/// Borrows the node behind a table pointer.
///
/// # Safety
/// `p` must be a live node pointer owned by a table of a database that outlives `'a`, and
/// no mutable borrow of that node may exist during `'a`.
unsafe fn node_ref(p: &*mut u8) -> &Node {
    // SAFETY: `Node` is a transparent non-null pointer, the same layout as the table slot.
    unsafe { &*(p as *const *mut u8 as *const Node) }
}

impl Db {
    pub fn new() -> Self {
        Db::default()
    }

    /// A database whose keys are kept per hash slot (cluster mode).
    pub fn new_cluster() -> Self {
        Db::with_tables(SLOTS)
    }

    fn with_tables(n: usize) -> Self {
        Db {
            tables: (0..n).map(|_| Table::default()).collect(),
            volatile: (0..n).map(|_| Table::default()).collect(),
            len: 0,
            volatile_len: 0,
            expired: 0,
            expired_log: None,
            repl_log: None,
            lfu: None,
            watch: WatchSet::default(),
            expiry: Expiry::Delete,
            hfe_keys: Default::default(),
            hfe_cursor: 0,
            hexpired_log: Vec::new(),
            hfe_repl_log: Vec::new(),
        }
    }

    /// Whether `node` counts as expired under this database's [`Expiry`].
    #[inline]
    fn gone(&self, node: &Node, now_ms: i64) -> bool {
        !self.keeps_expired() && is_expired(node, now_ms)
    }

    /// Keys past their TTL still exist: `Keep`, or a replica applying its primary's stream.
    #[inline]
    pub fn keeps_expired(&self) -> bool {
        match self.expiry {
            Expiry::Delete => false,
            Expiry::Hide => APPLYING_PRIMARY.get(),
            Expiry::Keep => true,
        }
    }

    /// Starts or stops recording the names of expired keys (see `expired_log`).
    pub fn log_expired(&mut self, on: bool) {
        if on != self.expired_log.is_some() {
            self.expired_log = on.then(Vec::new);
        }
    }

    /// Starts or stops recording expired keys for replication (see `repl_log`).
    pub fn log_for_replication(&mut self, on: bool) {
        if on != self.repl_log.is_some() {
            self.repl_log = on.then(Vec::new);
        }
    }

    /// Counts an expired key and records its name when asked to.
    pub fn note_expired(&mut self, key: &[u8]) {
        self.expired += 1;
        if let Some(log) = self.expired_log.as_mut() {
            log.push(Bytes::copy_from_slice(key));
        }
        if let Some(log) = self.repl_log.as_mut() {
            log.push(Bytes::copy_from_slice(key));
        }
    }

    /// Where `key` sits in SCAN order: the cursor value at which a scan reaches it. A scan
    /// whose cursor has passed this position has already visited the key (the order does not
    /// change when tables resize; see `table.rs`).
    pub fn scan_position(&self, key: &[u8]) -> u64 {
        let (t, h) = self.locate(key);
        ((t as u64) << 32) | (h >> 32)
    }

    /// Mutations so far (inserts, replacements, removals, TTL and in-place changes): a
    /// command changed the database when this moved (Valkey's `server.dirty`).
    pub fn changes(&self) -> u64 {
        self.watch.changes
    }

    pub fn is_cluster(&self) -> bool {
        self.tables.len() > 1
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn volatile_len(&self) -> usize {
        self.volatile_len
    }

    /// Bytes of table memory (for MEMORY STATS).
    pub fn overhead(&self) -> (usize, usize) {
        (self.tables.iter().map(Table::overhead).sum(), self.volatile.iter().map(Table::overhead).sum())
    }

    /// The table index and hash of a key.
    fn locate(&self, key: &[u8]) -> (usize, u64) {
        if let Some((p, l, h)) = HINT.get() {
            if p == key.as_ptr() as usize && l == key.len() {
                return (if self.is_cluster() { h.slot as usize } else { 0 }, h.hash);
            }
        }
        let t = if self.is_cluster() { key_slot(key) as usize } else { 0 };
        (t, hash_key(key))
    }

    fn node(&self, t: usize, pos: Pos) -> &Node {
        // SAFETY: positions come from a lookup in this table; `&self` bars mutation.
        unsafe { node_ref(self.tables[t].slot_ref(pos)) }
    }

    /// Hints the CPU to load the table bucket of a key (first prefetch stage).
    pub fn prefetch_bucket(&self, hint: KeyHint) {
        let t = if self.is_cluster() { hint.slot as usize } else { 0 };
        self.tables[t].prefetch_bucket(hint.hash);
    }

    /// Hints the CPU to load the nodes a key may be in (second prefetch stage).
    pub fn prefetch_nodes(&self, hint: KeyHint) {
        let t = if self.is_cluster() { hint.slot as usize } else { 0 };
        self.tables[t].prefetch_nodes(hint.hash);
    }

    /// Looks a key up, deleting it first if its TTL has passed. Updates the access clock unless
    /// `touch` is false (OBJECT, NO-TOUCH clients, TTL queries).
    pub fn get(&mut self, key: &[u8], now_ms: i64, clock: u32, touch: bool) -> Option<EntryMut<'_>> {
        let (t, h) = self.locate(key);
        let pos = self.tables[t].find(key, h)?;
        if self.gone(self.node(t, pos), now_ms) {
            if self.expiry == Expiry::Hide {
                return None;
            }
            let node = self.remove_at(t, pos, h);
            self.note_expired(node.key());
            drop(node);
            return None;
        }
        let lfu = self.lfu;
        let mut e = EntryMut { db: self, t, pos, h };
        if touch {
            let node = e.node_mut();
            match lfu {
                // Under LFU the clock is a new key's field: minutes above the initial counter.
                Some(l) => node.set_lru(l.touch(node.lru(), clock >> 8)),
                None => node.set_lru(clock),
            }
        }
        Some(e)
    }

    /// A key's value with no side effects (no expiry, access time or statistics), for
    /// commands that read several keys at once after looking each one up (SINTER, SUNION).
    pub fn peek(&self, key: &[u8]) -> Option<ValueRef<'_>> {
        let (t, h) = self.locate(key);
        let pos = self.tables[t].find(key, h)?;
        Some(self.node(t, pos).value())
    }

    /// The stored node of `key`, expired or not, without touching anything.
    pub fn peek_node(&self, key: &[u8]) -> Option<&Node> {
        let (t, h) = self.locate(key);
        let pos = self.tables[t].find(key, h)?;
        Some(self.node(t, pos))
    }

    /// True if the key exists and is not expired (expires it lazily otherwise).
    pub fn contains(&mut self, key: &[u8], now_ms: i64) -> bool {
        self.get(key, now_ms, 0, false).is_some()
    }

    /// Inserts or replaces a key. `expire_at` replaces any previous TTL. Returns the old node.
    pub fn set(&mut self, key: &[u8], value: Value, expire_at: Option<i64>, clock: u32) -> Option<Node> {
        if matches!(&value, Value::Hash(h) if h.has_field_ttls()) {
            // RESTORE, a replica's load, COPY: the active field-expiry pass must know it.
            self.hfe_keys.insert(Bytes::copy_from_slice(key));
        }
        self.set_node(key, value, expire_at, clock, false)
    }

    /// As `set`, with the value's encoding reported as `raw` (APPEND, SETRANGE).
    pub fn set_raw(&mut self, key: &[u8], value: Value, expire_at: Option<i64>, clock: u32) -> Option<Node> {
        self.set_node(key, value, expire_at, clock, true)
    }

    fn set_node(&mut self, key: &[u8], value: Value, at: Option<i64>, clock: u32, raw: bool) -> Option<Node> {
        let (t, h) = self.locate(key);
        match self.tables[t].find(key, h) {
            Some(pos) => {
                // Under LFU an overwritten key keeps its access counter (Valkey's
                // `dbSetValue`): a key rewritten often is a key used often.
                let clock = if self.lfu.is_some() { self.node(t, pos).lru() } else { clock };
                let node = Node::from_value(key, value, at, clock, raw);
                Some(self.replace_at(t, pos, h, node))
            }
            None => {
                self.insert_new(t, h, Node::from_value(key, value, at, clock, raw));
                None
            }
        }
    }

    fn insert_new(&mut self, t: usize, h: u64, node: Node) {
        self.watch.mark(node.key());
        let volatile = node.expire_at().is_some();
        let p = node.into_raw();
        self.tables[t].insert(p, h);
        self.len += 1;
        if volatile {
            self.volatile[t].insert(p, h);
            self.volatile_len += 1;
        }
    }

    /// Puts `node` (same key) where the node at `pos` was, keeping the volatile index right.
    fn replace_at(&mut self, t: usize, pos: Pos, h: u64, node: Node) -> Node {
        self.watch.mark(node.key());
        let now_volatile = node.expire_at().is_some();
        let p = node.into_raw();
        let old_p = self.tables[t].replace(pos, p);
        // SAFETY: `old_p` was owned by the table and is no longer referenced by it.
        let old = unsafe { Node::from_raw(old_p) };
        match (old.expire_at().is_some(), now_volatile) {
            (true, true) => {
                if let Some(vp) = self.volatile[t].find_ptr(old_p, h) {
                    self.volatile[t].replace(vp, p);
                }
            }
            (true, false) => {
                if let Some(vp) = self.volatile[t].find_ptr(old_p, h) {
                    self.volatile[t].remove(vp);
                    self.volatile_len -= 1;
                }
            }
            (false, true) => {
                self.volatile[t].insert(p, h);
                self.volatile_len += 1;
            }
            (false, false) => {}
        }
        old
    }

    fn remove_at(&mut self, t: usize, pos: Pos, h: u64) -> Node {
        let p = self.tables[t].remove(pos);
        // SAFETY: the table gave up its only reference to `p`.
        let node = unsafe { Node::from_raw(p) };
        self.watch.mark(node.key());
        self.len -= 1;
        if node.expire_at().is_some() {
            if let Some(vp) = self.volatile[t].find_ptr(p, h) {
                self.volatile[t].remove(vp);
                self.volatile_len -= 1;
            }
        }
        node
    }

    /// Replaces only the value of an existing key, keeping its TTL (or sets it, without a
    /// TTL, when absent).
    pub fn set_value_keep_ttl(&mut self, key: &[u8], value: Value, clock: u32) -> Option<Node> {
        let (t, h) = self.locate(key);
        match self.tables[t].find(key, h) {
            Some(pos) => {
                let at = self.node(t, pos).expire_at();
                let node = Node::from_value(key, value, at, clock, false);
                Some(self.replace_at(t, pos, h, node))
            }
            None => self.set(key, value, None, clock),
        }
    }

    /// Sets or clears the TTL of an existing key. Returns false if the key does not exist.
    pub fn set_expire(&mut self, key: &[u8], expire_at: Option<i64>) -> bool {
        let (t, h) = self.locate(key);
        let Some(pos) = self.tables[t].find(key, h) else {
            return false;
        };
        if self.node(t, pos).expire_at() == expire_at {
            return true;
        }
        let p = self.tables[t].get(pos);
        // SAFETY: the node stays owned by the table; we only move its value out before the
        // node is replaced (and then freed) just below.
        let mut cur = std::mem::ManuallyDrop::new(unsafe { Node::from_raw(p) });
        let (lru, raw) = (cur.lru(), cur.is_raw());
        let node = Node::from_value(key, cur.take_value(), expire_at, lru, raw);
        drop(self.replace_at(t, pos, h, node));
        true
    }

    /// Removes a key (expired or not) and returns its node.
    pub fn remove(&mut self, key: &[u8]) -> Option<Node> {
        let (t, h) = self.locate(key);
        let pos = self.tables[t].find(key, h)?;
        Some(self.remove_at(t, pos, h))
    }

    /// Removes every key, returning the old database so the caller can drop it elsewhere.
    /// Watched keys stay watched; those that existed (expired or not, as Valkey's
    /// `touchAllWatchedKeysInDb`) count as changed.
    pub fn clear(&mut self) -> Db {
        let mut fresh = Db::with_tables(self.tables.len());
        fresh.log_expired(self.expired_log.is_some());
        fresh.log_for_replication(self.repl_log.is_some());
        fresh.lfu = self.lfu;
        fresh.expiry = self.expiry;
        let mut watch = std::mem::take(&mut self.watch);
        let existing: Vec<Box<[u8]>> = watch.keys().filter(|k| self.exists_raw(k)).map(Box::from).collect();
        for k in existing {
            watch.mark(&k);
        }
        watch.changes += self.len as u64;
        fresh.watch = watch;
        std::mem::replace(self, fresh)
    }

    /// Records that `key` was modified in place (WATCH), after `value_mut_untracked`.
    pub fn signal_modified(&mut self, key: &[u8]) {
        self.watch.mark(key);
    }

    /// True if the key is stored, even if its TTL has passed (Valkey's `dbFind`).
    pub fn exists_raw(&self, key: &[u8]) -> bool {
        let (t, h) = self.locate(key);
        self.tables[t].find(key, h).is_some()
    }

    /// True if the key is stored and its TTL has passed, without removing it (Valkey's
    /// `keyIsExpired`).
    pub fn is_expired_key(&self, key: &[u8], now_ms: i64) -> bool {
        let (t, h) = self.locate(key);
        self.tables[t].find(key, h).is_some_and(|pos| self.gone(self.node(t, pos), now_ms))
    }

    /// Picks a table with probability proportional to its size (for one table: that one).
    fn random_table(&self, volatile: bool) -> Option<usize> {
        let (tables, total) =
            if volatile { (&self.volatile, self.volatile_len) } else { (&self.tables, self.len) };
        if total == 0 {
            return None;
        }
        if tables.len() == 1 {
            return Some(0);
        }
        let mut pick = fastrand::usize(..total);
        for (i, t) in tables.iter().enumerate() {
            if pick < t.len() {
                return Some(i);
            }
            pick -= t.len();
        }
        None
    }

    /// A random live key (expired ones met on the way are removed), as RANDOMKEY.
    pub fn random_key(&mut self, now_ms: i64) -> Option<Bytes> {
        let mut tries = 0;
        loop {
            let t = self.random_table(false)?;
            let pos = self.tables[t].random()?;
            let node = self.node(t, pos);
            tries += 1;
            // A replica cannot delete: after 100 expired picks it answers one of them, as
            // Valkey does when every key may be logically expired.
            if !self.gone(node, now_ms) || (self.expiry != Expiry::Delete && tries > 100) {
                return Some(Bytes::copy_from_slice(node.key()));
            }
            if self.expiry != Expiry::Delete {
                continue;
            }
            // Every round either answers or deletes a key, so this ends.
            let h = hash_key(node.key());
            let node = self.remove_at(t, pos, h);
            self.note_expired(node.key());
            drop(node);
        }
    }

    /// One SCAN step. The cursor is the table index (high bits) and a position in that
    /// table's hash space (low 32 bits); 0 starts and ends. `f` sees each live key.
    pub fn scan(&mut self, cursor: u64, count: usize, now_ms: i64, mut f: impl FnMut(&[u8], &Node)) -> u64 {
        let mut t = (cursor >> 32) as usize;
        let from = cursor & 0xffff_ffff;
        if t >= self.tables.len() {
            return 0;
        }
        let mut expired = Vec::new();
        let (keep, delete) = (self.keeps_expired(), self.expiry == Expiry::Delete);
        let next = self.tables[t].scan(from, count, |p| {
            // SAFETY: the callback receives live pointers and the table is not mutated
            // during the scan.
            let node = unsafe { node_ref(&p) };
            if !keep && is_expired(node, now_ms) {
                if delete {
                    expired.push(Bytes::copy_from_slice(node.key()));
                }
            } else {
                f(node.key(), node);
            }
        });
        for k in expired {
            if self.remove(&k).is_some() {
                self.note_expired(&k);
            }
        }
        if next != SCAN_DONE {
            return ((t as u64) << 32) | next;
        }
        t += 1;
        while t < self.tables.len() && self.tables[t].is_empty() {
            t += 1;
        }
        if t >= self.tables.len() {
            0
        } else {
            (t as u64) << 32
        }
    }

    /// Every live key, in table order.
    pub fn iter(&self, now_ms: i64) -> impl Iterator<Item = (&[u8], &Node)> {
        self.tables.iter().flat_map(move |t| {
            t.iter_slots().filter_map(move |p| {
                // SAFETY: live pointers of a table borrowed immutably for the iteration.
                let node = unsafe { node_ref(p) };
                (!self.gone(node, now_ms)).then(|| (node.key(), node))
            })
        })
    }

    /// Samples up to `n` volatile keys and removes those that have expired (Valkey's
    /// `activeExpireCycle` inner step).
    pub fn expire_sample(&mut self, n: usize, now_ms: i64) -> ExpireRound {
        let mut round = ExpireRound::default();
        if self.expiry != Expiry::Delete {
            // Replicas leave expiry to their primary.
            return round;
        }
        for _ in 0..n {
            let Some(t) = self.random_table(true) else { break };
            let Some(vpos) = self.volatile[t].random() else { break };
            let p = self.volatile[t].get(vpos);
            // SAFETY: volatile pointers are live nodes of the main table.
            let node = unsafe { node_ref(&p) };
            round.sampled += 1;
            if is_expired(node, now_ms) {
                let key = Bytes::copy_from_slice(node.key());
                if self.remove(&key).is_some() {
                    self.note_expired(&key);
                    round.expired += 1;
                }
            }
        }
        round
    }

    /// Calls `f` with up to `n` keys of all keys or only of those with a TTL, from consecutive
    /// buckets at a random place of one table picked by size (as Valkey samples one slot's
    /// dictionary with `dictGetSomeKeys`), for eviction.
    /// Expired keys are offered too: evicting them is as good as expiring them. Returns how
    /// many were sampled.
    pub fn sample(&self, volatile: bool, n: usize, mut f: impl FnMut(&Node)) -> usize {
        let Some(t) = self.random_table(volatile) else { return 0 };
        let table = if volatile { &self.volatile[t] } else { &self.tables[t] };
        if table.len() <= n {
            // A small table is looked at whole: no candidate is missed by chance.
            let mut sampled = 0;
            for p in table.iter_slots() {
                // SAFETY: live nodes of this database, not mutated while borrowed.
                f(unsafe { node_ref(p) });
                sampled += 1;
            }
            return sampled;
        }
        // SAFETY: the table hands out live node pointers of this database; `&self` bars any
        // mutation while `f` looks at them.
        table.sample_run(n, |p| f(unsafe { node_ref(&p) }))
    }

    /// Average remaining TTL over a sample, for INFO keyspace `avg_ttl` (0 when none).
    pub fn avg_ttl(&self, now_ms: i64) -> i64 {
        // Deadlines may sit near i64::MAX (EXPIREAT/PXAT far in the future): sum wide.
        let mut sum = 0i128;
        let mut n = 0i128;
        for _ in 0..32 {
            let Some(t) = self.random_table(true) else { break };
            let Some(vpos) = self.volatile[t].random() else { break };
            let p = self.volatile[t].get(vpos);
            // SAFETY: volatile pointers are live nodes of the main table.
            if let Some(at) = unsafe { node_ref(&p) }.expire_at() {
                sum += (i128::from(at) - i128::from(now_ms)).max(0);
                n += 1;
            }
        }
        if n == 0 {
            0
        } else {
            (sum / n).min(i128::from(i64::MAX)) as i64
        }
    }

    /// Number of keys hashing to a cluster slot (expired ones not yet deleted included, as
    /// Valkey counts them).
    pub fn count_in_slot(&self, slot: u16, now_ms: i64) -> usize {
        if self.is_cluster() {
            return self.tables.get(slot as usize).map_or(0, Table::len);
        }
        self.iter(now_ms).filter(|(k, _)| key_slot(k) == slot).count()
    }

    /// Up to `count` live keys of a cluster slot.
    pub fn keys_in_slot(&self, slot: u16, count: usize, now_ms: i64) -> Vec<Bytes> {
        if self.is_cluster() {
            let Some(t) = self.tables.get(slot as usize) else { return Vec::new() };
            return t
                .iter_slots()
                .filter_map(|p| {
                    // SAFETY: live pointers of a table borrowed immutably.
                    let node = unsafe { node_ref(p) };
                    (!self.gone(node, now_ms)).then(|| Bytes::copy_from_slice(node.key()))
                })
                .take(count)
                .collect();
        }
        self.iter(now_ms)
            .filter(|(k, _)| key_slot(k) == slot)
            .take(count)
            .map(|(k, _)| Bytes::copy_from_slice(k))
            .collect()
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        for t in &mut self.tables {
            for p in t.drain() {
                // SAFETY: the main tables own their nodes; each pointer is freed once.
                drop(unsafe { Node::from_raw(p) });
            }
        }
    }
}

impl<'a> EntryMut<'a> {
    fn node(&self) -> &Node {
        self.db.node(self.t, self.pos)
    }

    fn node_mut(&mut self) -> &mut Node {
        let slot = self.db.tables[self.t].slot_mut(self.pos);
        // SAFETY: `Node` is a transparent non-null pointer with the slot's layout; the
        // entry holds the database mutably, so this is the only reference.
        unsafe { &mut *(slot as *mut *mut u8 as *mut Node) }
    }

    pub fn key(&self) -> &[u8] {
        self.node().key()
    }

    pub fn value(&self) -> ValueRef<'_> {
        self.node().value()
    }

    pub fn expire_at(&self) -> Option<i64> {
        self.node().expire_at()
    }

    pub fn lru(&self) -> u32 {
        self.node().lru()
    }

    /// `OBJECT ENCODING`.
    pub fn encoding(&self) -> &'static str {
        self.node().encoding()
    }

    /// The stored node (for size estimates).
    pub fn as_node(&self) -> &Node {
        self.node()
    }

    /// Replaces the value, keeping the key's TTL. An integer over an integer is written in
    /// place; anything else builds a new node. Returns the old node when there was one to
    /// free.
    pub fn set_value(&mut self, value: Value) -> Option<Node> {
        self.replace_value(value, false)
    }

    /// As `set_value`, with the value reported as `raw` encoded (APPEND, SETRANGE).
    pub fn set_value_raw(&mut self, value: Value) -> Option<Node> {
        self.replace_value(value, true)
    }

    fn replace_value(&mut self, value: Value, raw: bool) -> Option<Node> {
        if let Value::Int(n) = value {
            if !raw && self.node_mut().set_int(n) {
                self.mark();
                return None;
            }
        }
        let (at, lru) = (self.expire_at(), self.lru());
        let node = Node::from_value(self.key(), value, at, lru, raw);
        Some(self.db.replace_at(self.t, self.pos, self.h, node))
    }

    /// The stored collection (or large string) for in-place changes; `None` for small strings
    /// and integers, which `set_value` replaces. Any call counts as a modification of the key.
    pub fn value_mut(&mut self) -> Option<&mut Value> {
        self.mark();
        self.node_mut().value_mut()
    }

    /// As `value_mut`, without counting as a modification: for writes that may turn out to
    /// change nothing (SADD of a member, HDEL of a missing field), which then call
    /// [`Db::signal_modified`] only when they did change the value, as Valkey calls
    /// `signalModifiedKey` (so a WATCH survives a no-op write).
    pub fn value_mut_untracked(&mut self) -> Option<&mut Value> {
        self.node_mut().value_mut()
    }

    /// As `value_mut_untracked`, consuming the entry so the value keeps the database's borrow
    /// (stream commands hold it while they write their reply).
    pub fn into_value_mut_untracked(self) -> Option<&'a mut Value> {
        let slot = self.db.tables[self.t].slot_mut(self.pos);
        // SAFETY: as in `node_mut`: the entry held the database mutably and is consumed, so
        // the returned borrow is the only reference to the node.
        let node = unsafe { &mut *(slot as *mut *mut u8 as *mut Node) };
        node.value_mut()
    }

    /// Records an in-place change for WATCH.
    fn mark(&mut self) {
        if self.db.watch.wants_marks() {
            let key: Box<[u8]> = self.key().into();
            self.db.watch.mark(&key);
        } else {
            self.db.watch.changes += 1;
        }
    }

    /// Moves the value out (large strings without a copy), leaving an empty string; the
    /// caller sets a new value next.
    pub fn take_value(&mut self) -> Value {
        self.mark();
        self.node_mut().take_value()
    }
}

mod fields;
#[cfg(test)]
mod tests;
