//! The hash table behind the `hashtable` encoding of hashes and sets: separate chaining over
//! a dense entry array, so a lookup is O(1) on average, a random element is one index (SPOP,
//! SRANDMEMBER, HRANDFIELD) and iteration walks contiguous memory.
//!
//! Buckets are chosen by the *top* bits of the hash, so bucket order is hash order. That gives
//! HSCAN/SSCAN their cursor: a position in hash space. A step returns every element whose hash
//! lies in `[cursor, next)`, so an element present for the whole scan is returned exactly once,
//! whatever resizes happen in between (the guarantee SCAN gives, without Valkey's
//! reverse-binary trick).
//!
//! Removal swaps the last entry into the hole and relinks it, so the array stays dense.

use super::super::hash::hash_key;

const NIL: u32 = u32::MAX;

/// An element stored in a [`Dict`], looked up by its key bytes.
pub trait Keyed {
    fn key(&self) -> &[u8];
}

impl Keyed for Box<[u8]> {
    fn key(&self) -> &[u8] {
        self
    }
}

impl Keyed for (Box<[u8]>, Box<[u8]>) {
    fn key(&self) -> &[u8] {
        &self.0
    }
}

#[derive(Debug, Clone)]
struct Slot<E> {
    hash: u64,
    next: u32,
    e: E,
}

/// A chained hash table over a dense array of entries.
#[derive(Debug, Clone)]
pub struct Dict<E> {
    heads: Vec<u32>,
    bits: u32,
    entries: Vec<Slot<E>>,
}

impl<E: Keyed> Default for Dict<E> {
    fn default() -> Self {
        Dict::with_capacity(0)
    }
}

impl<E: Keyed> Dict<E> {
    /// An empty table sized for `n` elements.
    pub fn with_capacity(n: usize) -> Self {
        let bits = bits_for(n);
        Dict { heads: vec![NIL; 1 << bits], bits, entries: Vec::with_capacity(n) }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn bucket(&self, h: u64) -> usize {
        if self.bits == 0 {
            0
        } else {
            (h >> (64 - self.bits)) as usize
        }
    }

    fn find_hashed(&self, key: &[u8], h: u64) -> Option<usize> {
        let mut i = self.heads[self.bucket(h)];
        while i != NIL {
            let s = &self.entries[i as usize];
            if s.hash == h && s.e.key() == key {
                return Some(i as usize);
            }
            i = s.next;
        }
        None
    }

    /// The index of the element with this key.
    pub fn find(&self, key: &[u8]) -> Option<usize> {
        self.find_hashed(key, hash_key(key))
    }

    pub fn get(&self, key: &[u8]) -> Option<&E> {
        self.find(key).map(|i| &self.entries[i].e)
    }

    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut E> {
        self.find(key).map(|i| &mut self.entries[i].e)
    }

    /// The element at a dense index (`0..len`).
    pub fn at(&self, i: usize) -> &E {
        &self.entries[i].e
    }

    /// The index of the element with this key, or the key's hash to insert it with
    /// (`insert_hashed`), so a miss followed by an insert hashes once.
    pub fn find_or_hash(&self, key: &[u8]) -> Result<usize, u64> {
        let h = hash_key(key);
        self.find_hashed(key, h).ok_or(h)
    }

    /// Mutable access by index (`0..len`).
    pub fn at_mut(&mut self, i: usize) -> &mut E {
        &mut self.entries[i].e
    }

    /// Inserts an element whose key is known to be absent.
    pub fn insert_new(&mut self, e: E) {
        let h = hash_key(e.key());
        self.insert_hashed(e, h);
    }

    /// Inserts an absent element whose key hashes to `h` (from `find_or_hash`).
    pub fn insert_hashed(&mut self, e: E, h: u64) {
        if self.entries.len() >= self.heads.len() {
            self.rehash(bits_for(self.entries.len() + 1));
        }
        let b = self.bucket(h);
        let idx = self.entries.len() as u32;
        self.entries.push(Slot { hash: h, next: self.heads[b], e });
        self.heads[b] = idx;
    }

    /// Inserts or replaces by key; returns the replaced element.
    pub fn insert(&mut self, e: E) -> Option<E> {
        match self.find(e.key()) {
            Some(i) => Some(std::mem::replace(&mut self.entries[i].e, e)),
            None => {
                self.insert_new(e);
                None
            }
        }
    }

    /// Removes the element with this key.
    pub fn remove(&mut self, key: &[u8]) -> Option<E> {
        let i = self.find(key)?;
        Some(self.remove_at(i))
    }

    /// Removes the element at a dense index; the last element takes its place.
    pub fn remove_at(&mut self, i: usize) -> E {
        self.unlink(i);
        let last = self.entries.len() - 1;
        if i != last {
            // Whoever pointed at `last` now points at `i`, where swap_remove puts it.
            let b = self.bucket(self.entries[last].hash);
            if self.heads[b] == last as u32 {
                self.heads[b] = i as u32;
            } else {
                let mut p = self.heads[b];
                while self.entries[p as usize].next != last as u32 {
                    p = self.entries[p as usize].next;
                }
                self.entries[p as usize].next = i as u32;
            }
        }
        let e = self.entries.swap_remove(i).e;
        if self.bits > 2 && self.entries.len() * 8 < self.heads.len() {
            self.rehash(bits_for(self.entries.len()));
            self.entries.shrink_to(self.entries.len() * 2);
        }
        e
    }

    /// Takes entry `i` out of its bucket's chain.
    fn unlink(&mut self, i: usize) {
        let b = self.bucket(self.entries[i].hash);
        let next = self.entries[i].next;
        if self.heads[b] == i as u32 {
            self.heads[b] = next;
            return;
        }
        let mut p = self.heads[b];
        while self.entries[p as usize].next != i as u32 {
            p = self.entries[p as usize].next;
        }
        self.entries[p as usize].next = next;
    }

    fn rehash(&mut self, bits: u32) {
        self.bits = bits;
        self.heads = vec![NIL; 1 << bits];
        for i in 0..self.entries.len() {
            let b = self.bucket(self.entries[i].hash);
            self.entries[i].next = self.heads[b];
            self.heads[b] = i as u32;
        }
    }

    /// Every element, in table order.
    pub fn iter(&self) -> impl Iterator<Item = &E> {
        self.entries.iter().map(|s| &s.e)
    }

    /// A uniformly random element's index.
    pub fn random_index(&self) -> Option<usize> {
        (!self.entries.is_empty()).then(|| fastrand::usize(..self.entries.len()))
    }

    /// One SCAN step from `cursor` (a position in hash space): calls `f` for every element
    /// with a hash in `[cursor, next)` over at least `count` elements (whole buckets), and
    /// returns `next`, or 0 when the table is done.
    pub fn scan<'s>(&'s self, cursor: u64, count: usize, mut f: impl FnMut(&'s E)) -> u64 {
        let mut b = self.bucket(cursor);
        let mut seen = 0;
        loop {
            let mut i = self.heads[b];
            while i != NIL {
                let s = &self.entries[i as usize];
                // Elements below the cursor were returned by an earlier step, before a resize
                // moved them into this bucket.
                if s.hash >= cursor {
                    f(&s.e);
                    seen += 1;
                }
                i = s.next;
            }
            b += 1;
            if b >= self.heads.len() {
                return 0;
            }
            if seen >= count {
                return (b as u64) << (64 - self.bits);
            }
        }
    }

    /// Approximate heap bytes of the table itself (not of what its elements point to).
    pub fn overhead(&self) -> usize {
        self.heads.capacity() * 4 + self.entries.capacity() * std::mem::size_of::<Slot<E>>()
    }
}

/// Bucket bits for `n` elements at a load factor of at most one (at least 4 buckets).
fn bits_for(n: usize) -> u32 {
    n.max(4).next_power_of_two().trailing_zeros()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(i: usize) -> Box<[u8]> {
        format!("m{i}").into_bytes().into()
    }

    #[test]
    fn insert_find_remove_through_growth_and_shrink() {
        let mut d = Dict::<Box<[u8]>>::default();
        for i in 0..5000 {
            d.insert_new(k(i));
        }
        assert_eq!(d.len(), 5000);
        for i in (0..5000).step_by(2) {
            assert!(d.remove(&k(i)).is_some());
        }
        for i in 0..5000 {
            assert_eq!(d.get(&k(i)).is_some(), i % 2 == 1, "{i}");
        }
        for i in (1..5000).step_by(2) {
            assert!(d.remove(&k(i)).is_some());
        }
        assert!(d.is_empty());
        assert!(d.heads.len() <= 8);
    }

    #[test]
    fn scan_returns_each_stable_element_once_across_resizes() {
        let mut d = Dict::<Box<[u8]>>::default();
        for i in 0..1000 {
            d.insert_new(k(i));
        }
        let mut seen = std::collections::HashMap::<Vec<u8>, usize>::new();
        let (mut cursor, mut step) = (0, 0);
        loop {
            cursor = d.scan(cursor, 10, |e| *seen.entry(e.to_vec()).or_default() += 1);
            step += 1;
            // Grow hard, then shrink, while the scan runs.
            if step < 20 {
                for j in 0..500 {
                    d.insert_new(format!("x{step}-{j}").into_bytes().into());
                }
            } else if step == 40 {
                for s in 1..20 {
                    for j in 0..500 {
                        d.remove(format!("x{s}-{j}").as_bytes());
                    }
                }
            }
            if cursor == 0 {
                break;
            }
        }
        for i in 0..1000 {
            assert_eq!(seen.get(&k(i)[..]), Some(&1), "m{i}");
        }
    }
}
