//! The key table: open addressing over cache-line buckets, built for prefetching and for a
//! small footprint.
//!
//! A bucket is one 64-byte line: a presence byte, seven one-byte hash tags and seven node
//! pointers. A lookup reads the home bucket, compares tags, and dereferences only the nodes
//! whose tag matches — two cache misses for a hit, which the executor hides by prefetching
//! the bucket and then the node for a whole batch of commands before running it. When a
//! bucket is full, inserts move on to the next bucket and mark the full one *everfull*, so
//! lookups know to continue (the bit is cleared when the table is rebuilt).
//!
//! The home bucket is `(hash_hi32 * buckets) >> 32` (fastrange) rather than a mask, so the
//! bucket count need not be a power of two: the table grows by ~1.4x and keeps 60–85% of
//! its slots in use, about 11–15 bytes per key. Fastrange is monotonic in the hash, which
//! gives SCAN its cursor: a position in hash space. A scan step returns every key whose hash
//! lies in `[cursor, next)`, so a key present for the whole scan is returned exactly once,
//! whatever resizes happen in between.
//!
//! The table stores raw node pointers and frees nothing: `Db` owns the nodes.

use super::hash::hash_key;
use super::node::Node;

const WIDTH: usize = 7;
const PRESENT: u8 = 0x7f;
const EVERFULL: u8 = 0x80;
/// Grow above this fill (per mille of slots), shrink below `MIN_FILL`.
const MAX_FILL: usize = 850;
const MIN_FILL: usize = 125;
/// Fill a rebuilt table is sized for.
const TARGET_FILL: usize = 600;
/// A SCAN position past every hash: the table is done.
pub const SCAN_DONE: u64 = 1 << 32;

#[repr(C, align(64))]
#[derive(Clone, Copy)]
struct Bucket {
    meta: u8,
    tags: [u8; WIDTH],
    ptrs: [*mut u8; WIDTH],
}

const EMPTY: Bucket = Bucket { meta: 0, tags: [0; WIDTH], ptrs: [std::ptr::null_mut(); WIDTH] };

/// Where an entry sits: bucket and slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    bucket: u32,
    slot: u8,
}

#[derive(Default)]
pub struct Table {
    buckets: Vec<Bucket>,
    len: usize,
}

// SAFETY: the table holds pointers to nodes it is handed by `Db`, which owns them and moves
// them together with the table (a cleared database is dropped on an I/O thread).
unsafe impl Send for Table {}

fn tag(h: u64) -> u8 {
    h as u8
}

/// The key of a stored node.
///
/// # Safety
/// `p` must be a live node pointer from the table.
unsafe fn key_of<'a>(p: *mut u8) -> &'a [u8] {
    // SAFETY: the table only stores pointers from `Node::into_raw` of live nodes; the
    // `ManuallyDrop` keeps this borrow from freeing the node.
    let node = std::mem::ManuallyDrop::new(unsafe { Node::from_raw(p) });
    let key = node.key();
    // SAFETY: the key lives in the node's block, which outlives this call.
    unsafe { std::slice::from_raw_parts(key.as_ptr(), key.len()) }
}

impl Table {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes of bucket memory (for MEMORY STATS).
    pub fn overhead(&self) -> usize {
        self.buckets.len() * std::mem::size_of::<Bucket>()
    }

    fn home(&self, h: u64) -> usize {
        (((h >> 32) * self.buckets.len() as u64) >> 32) as usize
    }

    fn next(&self, b: usize) -> usize {
        if b + 1 == self.buckets.len() {
            0
        } else {
            b + 1
        }
    }

    /// Finds `key` (whose hash is `h`).
    pub fn find(&self, key: &[u8], h: u64) -> Option<Pos> {
        let n = self.buckets.len();
        if n == 0 {
            return None;
        }
        let t = tag(h);
        let mut b = self.home(h);
        for _ in 0..n {
            let bk = &self.buckets[b];
            let mut m = bk.meta & PRESENT;
            while m != 0 {
                let i = m.trailing_zeros() as usize;
                m &= m - 1;
                // SAFETY: present slots hold live node pointers.
                if bk.tags[i] == t && unsafe { key_of(bk.ptrs[i]) } == key {
                    return Some(Pos { bucket: b as u32, slot: i as u8 });
                }
            }
            if bk.meta & EVERFULL == 0 {
                return None;
            }
            b = self.next(b);
        }
        None
    }

    /// Finds the slot holding exactly the node pointer `p` (for the volatile index).
    pub fn find_ptr(&self, p: *mut u8, h: u64) -> Option<Pos> {
        let n = self.buckets.len();
        if n == 0 {
            return None;
        }
        let mut b = self.home(h);
        for _ in 0..n {
            let bk = &self.buckets[b];
            let mut m = bk.meta & PRESENT;
            while m != 0 {
                let i = m.trailing_zeros() as usize;
                m &= m - 1;
                if bk.ptrs[i] == p {
                    return Some(Pos { bucket: b as u32, slot: i as u8 });
                }
            }
            if bk.meta & EVERFULL == 0 {
                return None;
            }
            b = self.next(b);
        }
        None
    }

    pub fn get(&self, pos: Pos) -> *mut u8 {
        self.buckets[pos.bucket as usize].ptrs[pos.slot as usize]
    }

    pub fn slot_ref(&self, pos: Pos) -> &*mut u8 {
        &self.buckets[pos.bucket as usize].ptrs[pos.slot as usize]
    }

    pub fn slot_mut(&mut self, pos: Pos) -> &mut *mut u8 {
        &mut self.buckets[pos.bucket as usize].ptrs[pos.slot as usize]
    }

    /// Every occupied slot, in bucket order.
    pub fn iter_slots(&self) -> impl Iterator<Item = &*mut u8> + '_ {
        self.buckets
            .iter()
            .flat_map(|bk| (0..WIDTH).filter(move |&i| bk.meta & (1 << i) != 0).map(move |i| &bk.ptrs[i]))
    }

    /// Replaces the node pointer at `pos`, returning the old one.
    pub fn replace(&mut self, pos: Pos, p: *mut u8) -> *mut u8 {
        std::mem::replace(&mut self.buckets[pos.bucket as usize].ptrs[pos.slot as usize], p)
    }

    /// Inserts a node whose key is not in the table.
    pub fn insert(&mut self, p: *mut u8, h: u64) {
        if (self.len + 1) * 1000 > self.buckets.len() * WIDTH * MAX_FILL {
            self.resize(self.len + 1);
        }
        self.place(p, h);
        self.len += 1;
    }

    fn place(&mut self, p: *mut u8, h: u64) {
        let mut b = self.home(h);
        loop {
            let bk = &mut self.buckets[b];
            let free = !bk.meta & PRESENT;
            if free != 0 {
                let i = free.trailing_zeros() as usize;
                bk.meta |= 1 << i;
                bk.tags[i] = tag(h);
                bk.ptrs[i] = p;
                return;
            }
            bk.meta |= EVERFULL;
            b = self.next(b);
        }
    }

    /// Removes the entry at `pos`, returning its node pointer.
    pub fn remove(&mut self, pos: Pos) -> *mut u8 {
        let bk = &mut self.buckets[pos.bucket as usize];
        bk.meta &= !(1 << pos.slot);
        let p = std::mem::replace(&mut bk.ptrs[pos.slot as usize], std::ptr::null_mut());
        self.len -= 1;
        if self.len * 1000 < self.buckets.len() * WIDTH * MIN_FILL && self.buckets.len() > 1 {
            self.resize(self.len);
        }
        p
    }

    /// Rebuilds the table for `want` entries at the target fill, rehashing every key.
    fn resize(&mut self, want: usize) {
        let n = if want == 0 { 0 } else { (want * 1000).div_ceil(WIDTH * TARGET_FILL).max(1) };
        let old = std::mem::replace(&mut self.buckets, vec![EMPTY; n]);
        for bk in &old {
            let mut m = bk.meta & PRESENT;
            while m != 0 {
                let i = m.trailing_zeros() as usize;
                m &= m - 1;
                // SAFETY: present slots hold live node pointers.
                let h = hash_key(unsafe { key_of(bk.ptrs[i]) });
                self.place(bk.ptrs[i], h);
            }
        }
    }

    /// Every node pointer, in bucket order.
    pub fn iter(&self) -> impl Iterator<Item = *mut u8> + '_ {
        self.buckets
            .iter()
            .flat_map(|bk| (0..WIDTH).filter(move |&i| bk.meta & (1 << i) != 0).map(move |i| bk.ptrs[i]))
    }

    /// Takes every node pointer out, leaving the table empty.
    pub fn drain(&mut self) -> Vec<*mut u8> {
        let v: Vec<*mut u8> = self.iter().collect();
        self.buckets = Vec::new();
        self.len = 0;
        v
    }

    /// A uniformly chosen bucket's first non-empty successor, then a random entry in it.
    pub fn random(&self) -> Option<Pos> {
        let n = self.buckets.len();
        if self.len == 0 {
            return None;
        }
        let mut b = fastrand::usize(..n);
        for _ in 0..n {
            let m = self.buckets[b].meta & PRESENT;
            if m != 0 {
                let count = m.count_ones() as usize;
                let mut pick = fastrand::usize(..count);
                let mut mm = m;
                loop {
                    let i = mm.trailing_zeros() as usize;
                    if pick == 0 {
                        return Some(Pos { bucket: b as u32, slot: i as u8 });
                    }
                    pick -= 1;
                    mm &= mm - 1;
                }
            }
            b = self.next(b);
        }
        None
    }

    /// Lowest 32-bit hash position whose home is bucket `b`.
    fn bucket_start(&self, b: usize) -> u64 {
        ((b as u64) << 32).div_ceil(self.buckets.len() as u64)
    }

    /// One SCAN step from hash position `from` (0..2^32): calls `f` for every node whose hash
    /// position lies in `[from, next)` and returns `next` ([`SCAN_DONE`] at the end). About
    /// `count` entries are looked at.
    pub fn scan(&self, from: u64, count: usize, mut f: impl FnMut(*mut u8)) -> u64 {
        let n = self.buckets.len();
        if n == 0 || from >= SCAN_DONE {
            return SCAN_DONE;
        }
        let b0 = self.home(from << 32);
        let mut end = b0;
        let mut seen = 0;
        while end < n && (seen < count.max(1) || end == b0) {
            seen += (self.buckets[end].meta & PRESENT).count_ones() as usize;
            end += 1;
        }
        let next = if end == n { SCAN_DONE } else { self.bucket_start(end).max(from + 1) };
        // Entries homed in b0..end may sit further on, past buckets marked everfull.
        let mut b = b0;
        let mut steps = 0;
        while steps < n {
            let bk = &self.buckets[b];
            let mut m = bk.meta & PRESENT;
            while m != 0 {
                let i = m.trailing_zeros() as usize;
                m &= m - 1;
                // SAFETY: present slots hold live node pointers.
                let pos = hash_key(unsafe { key_of(bk.ptrs[i]) }) >> 32;
                if pos >= from && pos < next {
                    f(bk.ptrs[i]);
                }
            }
            steps += 1;
            let in_range = steps < end - b0;
            if !in_range && bk.meta & EVERFULL == 0 {
                break;
            }
            b = self.next(b);
        }
        next
    }

    /// Hints the CPU to load the home bucket of hash `h`.
    pub fn prefetch_bucket(&self, h: u64) {
        if !self.buckets.is_empty() {
            prefetch(&self.buckets[self.home(h)] as *const Bucket as *const u8);
        }
    }

    /// Hints the CPU to load the nodes in the home bucket whose tag matches `h` (call after
    /// `prefetch_bucket`, once the bucket had time to arrive).
    pub fn prefetch_nodes(&self, h: u64) {
        if self.buckets.is_empty() {
            return;
        }
        let bk = &self.buckets[self.home(h)];
        let t = tag(h);
        let mut m = bk.meta & PRESENT;
        while m != 0 {
            let i = m.trailing_zeros() as usize;
            m &= m - 1;
            if bk.tags[i] == t {
                prefetch(bk.ptrs[i]);
            }
        }
    }
}

#[inline(always)]
fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetching is a hint and never faults, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch(p as *const i8, std::arch::x86_64::_MM_HINT_T0);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyspace::value::Value;

    fn node(k: &str) -> *mut u8 {
        Node::from_value(k.as_bytes(), Value::Int(1), None, 0, false).into_raw()
    }

    fn free(p: *mut u8) {
        // SAFETY: test pointers come from `node`.
        drop(unsafe { Node::from_raw(p) });
    }

    #[test]
    fn insert_find_remove_through_growth_and_shrink() {
        let mut t = Table::default();
        let keys: Vec<String> = (0..20_000).map(|i| format!("key:{i}")).collect();
        for k in &keys {
            t.insert(node(k), hash_key(k.as_bytes()));
        }
        assert_eq!(t.len(), keys.len());
        for k in &keys {
            assert!(t.find(k.as_bytes(), hash_key(k.as_bytes())).is_some(), "{k}");
        }
        assert!(t.find(b"nope", hash_key(b"nope")).is_none());
        // Fill stays within bounds: at most ~15 bytes of bucket per key after growth.
        assert!(t.overhead() / t.len() <= 16, "{} bytes per key", t.overhead() / t.len());
        for k in &keys[..19_000] {
            let pos = t.find(k.as_bytes(), hash_key(k.as_bytes())).expect("present");
            free(t.remove(pos));
        }
        assert_eq!(t.len(), 1000);
        for k in &keys[19_000..] {
            assert!(t.find(k.as_bytes(), hash_key(k.as_bytes())).is_some());
        }
        for p in t.drain() {
            free(p);
        }
    }

    #[test]
    fn scan_returns_each_stable_key_once_across_resizes() {
        let mut t = Table::default();
        for i in 0..3000 {
            let k = format!("s{i}");
            t.insert(node(&k), hash_key(k.as_bytes()));
        }
        let mut seen = std::collections::HashMap::<Vec<u8>, usize>::new();
        let mut cur = 0;
        let mut step = 0;
        while cur != SCAN_DONE {
            cur = t.scan(cur, 10, |p| {
                // SAFETY: pointers handed to the callback are live.
                *seen.entry(unsafe { key_of(p) }.to_vec()).or_default() += 1;
            });
            step += 1;
            // Churn: grow with new keys, then shrink by removing them, mid-scan.
            if step % 7 == 0 {
                for j in 0..500 {
                    let k = format!("tmp{step}:{j}");
                    t.insert(node(&k), hash_key(k.as_bytes()));
                }
            }
            if step % 11 == 0 {
                let tmp: Vec<*mut u8> =
                    // SAFETY: live pointers of the table.
                    t.iter().filter(|&p| unsafe { key_of(p) }.starts_with(b"tmp")).collect();
                for p in tmp {
                    // SAFETY: `p` is live until freed below.
                    let k = unsafe { key_of(p) }.to_vec();
                    let pos = t.find(&k, hash_key(&k)).expect("present");
                    free(t.remove(pos));
                }
            }
        }
        for i in 0..3000 {
            assert_eq!(seen.get(format!("s{i}").as_bytes()), Some(&1), "s{i}");
        }
        for p in t.drain() {
            free(p);
        }
    }

    #[test]
    fn random_finds_entries() {
        let mut t = Table::default();
        assert!(t.random().is_none());
        for i in 0..50 {
            let k = format!("r{i}");
            t.insert(node(&k), hash_key(k.as_bytes()));
        }
        let mut hits = std::collections::HashSet::new();
        for _ in 0..2000 {
            let pos = t.random().expect("non-empty");
            // SAFETY: live pointer.
            hits.insert(unsafe { key_of(t.get(pos)) }.to_vec());
        }
        assert!(hits.len() > 40, "only {} distinct keys", hits.len());
        for p in t.drain() {
            free(p);
        }
    }
}
