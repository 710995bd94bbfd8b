//! The `list` type: a `VecDeque` of owned elements, so pushes and pops at both ends are O(1)
//! and LINDEX/LSET are O(1) too (Valkey's quicklist makes those O(n); being faster is fine).
//!
//! `OBJECT ENCODING` must say what Valkey 8 would say for the same contents, so the value keeps
//! the byte size the elements would take in one listpack (`lp_bytes`, computed with listpack's
//! entry encoding) and a `quicklist` flag that follows Valkey's conversion rules
//! (`listTypeTryConvertListpack` / `listTypeTryConvertQuicklist` with `list-max-listpack-size`):
//! a list grows out of `listpack` when the elements about to be added would push it over the
//! limit, and shrinks back only below half the limit. Valkey additionally requires the quicklist
//! to be down to one node; Shoal does not model node boundaries, so after removals from the
//! middle of a large list it may report `listpack` where Valkey still says `quicklist`
//! (documented in docs/compat.md).

use std::collections::VecDeque;

/// `list-max-listpack-size` default: 8 KiB per node.
pub const DEFAULT_FILL: i64 = -2;

/// Listpack header (total bytes + element count) and end marker.
const LP_OVERHEAD: usize = 6 + 1;

/// Which end of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Head,
    Tail,
}

/// A list value.
#[derive(Debug, Clone, Default)]
pub struct ListValue {
    items: VecDeque<Box<[u8]>>,
    /// Sum of the listpack entry sizes of `items`.
    entry_bytes: usize,
    /// Sum of element lengths (for `heap_size`).
    data_bytes: usize,
    /// Valkey would hold this list as a quicklist.
    quicklist: bool,
}

impl PartialEq for ListValue {
    fn eq(&self, other: &Self) -> bool {
        self.items == other.items
    }
}

/// Size limits of one quicklist node for a `list-max-listpack-size` value, as Valkey's
/// `quicklistNodeLimit`: a byte limit for negative values, an element count otherwise.
fn node_limit(fill: i64) -> (usize, usize) {
    const LEVELS: [usize; 5] = [4096, 8192, 16384, 32768, 65536];
    if fill >= 0 {
        (usize::MAX, if fill == 0 { 1 } else { fill as usize })
    } else {
        let i = ((-fill - 1) as usize).min(LEVELS.len() - 1);
        (LEVELS[i], usize::MAX)
    }
}

/// Valkey's `quicklistNodeExceedsLimit`.
fn exceeds_limit(fill: i64, bytes: usize, count: usize) -> bool {
    const SIZE_SAFETY_LIMIT: usize = 8192;
    let (sz, cnt) = node_limit(fill);
    if sz != usize::MAX {
        bytes > sz
    } else {
        bytes > SIZE_SAFETY_LIMIT || count > cnt
    }
}

/// Bytes a listpack entry for `v` takes: encoding header, data and back-length.
pub fn lp_entry_size(v: &[u8]) -> usize {
    let enc = match crate::util::parse_i64(v) {
        Some(n) if (0..=127).contains(&n) => 1,
        Some(n) if (-4096..4096).contains(&n) => 2,
        Some(n) if i16::try_from(n).is_ok() => 3,
        Some(n) if (-(1 << 23)..(1 << 23)).contains(&n) => 4,
        Some(n) if i32::try_from(n).is_ok() => 5,
        Some(_) => 9,
        None if v.len() < 64 => 1 + v.len(),
        None if v.len() < 4096 => 2 + v.len(),
        None => 5 + v.len(),
    };
    let back = match enc {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2097150 => 3,
        2097151..=268435454 => 4,
        _ => 5,
    };
    enc + back
}

impl ListValue {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `OBJECT ENCODING` name.
    pub fn encoding(&self) -> &'static str {
        if self.quicklist {
            "quicklist"
        } else {
            "listpack"
        }
    }

    /// Elements from head to tail.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &[u8]> + ExactSizeIterator {
        self.items.iter().map(|v| &v[..])
    }

    /// Appends at the tail (restore and migration build values through this).
    pub fn push_back(&mut self, value: &[u8]) {
        self.push(End::Tail, value, DEFAULT_FILL);
    }

    /// Valkey's `listTypeTryConvertListpack`: before adding elements of `add_bytes` total
    /// length (`add_count` of them), switch to quicklist if they would not fit one node.
    pub fn grow_check<'a>(&mut self, fill: i64, adding: impl Iterator<Item = &'a [u8]>) {
        if self.quicklist {
            return;
        }
        let (mut bytes, mut count) = (0, 0);
        for a in adding {
            // Valkey sums the raw lengths of the arguments here, not their entry sizes.
            bytes += a.len();
            count += 1;
        }
        if exceeds_limit(fill, LP_OVERHEAD + self.entry_bytes + bytes, self.len() + count) {
            self.quicklist = true;
        }
    }

    /// Valkey's `listTypeTryConvertQuicklist(shrinking = 1)`, called after removals.
    pub fn shrink_check(&mut self, fill: i64) {
        if !self.quicklist {
            return;
        }
        let (sz, cnt) = node_limit(fill);
        let bytes = LP_OVERHEAD + self.entry_bytes;
        // A quicklist of one node holds at most one node's worth.
        if exceeds_limit(fill, bytes, self.len()) {
            return;
        }
        if bytes <= sz / 2 && self.len() <= cnt / 2 {
            self.quicklist = false;
        }
    }

    fn account_add(&mut self, v: &[u8]) {
        self.entry_bytes += lp_entry_size(v);
        self.data_bytes += v.len();
    }

    fn account_remove(&mut self, v: &[u8]) {
        self.entry_bytes -= lp_entry_size(v);
        self.data_bytes -= v.len();
    }

    /// Pushes one element at `end` (the caller ran `grow_check` for the whole batch).
    pub fn push_raw(&mut self, end: End, value: &[u8]) {
        self.account_add(value);
        match end {
            End::Head => self.items.push_front(value.into()),
            End::Tail => self.items.push_back(value.into()),
        }
    }

    /// Pushes one element with the encoding check.
    pub fn push(&mut self, end: End, value: &[u8], fill: i64) {
        self.grow_check(fill, std::iter::once(value));
        self.push_raw(end, value);
    }

    /// Pops one element (no encoding check: call `shrink_check` after a batch).
    pub fn pop(&mut self, end: End) -> Option<Box<[u8]>> {
        let v = match end {
            End::Head => self.items.pop_front(),
            End::Tail => self.items.pop_back(),
        }?;
        self.account_remove(&v);
        Some(v)
    }

    /// The element at `index` from the head.
    pub fn get(&self, index: usize) -> Option<&[u8]> {
        self.items.get(index).map(|v| &v[..])
    }

    /// Replaces the element at `index` (LSET), with Valkey's encoding checks around it.
    /// The growth check runs even when the index is out of range, as in Valkey.
    pub fn set(&mut self, index: usize, value: &[u8], fill: i64) -> bool {
        self.grow_check(fill, std::iter::once(value));
        if index >= self.items.len() {
            return false;
        }
        let new: Box<[u8]> = value.into();
        let old = std::mem::replace(&mut self.items[index], new);
        self.account_remove(&old);
        self.account_add(value);
        self.shrink_check(fill);
        true
    }

    /// Inserts `value` before position `index` (LINSERT).
    pub fn insert(&mut self, index: usize, value: &[u8], fill: i64) {
        self.grow_check(fill, std::iter::once(value));
        self.account_add(value);
        self.items.insert(index.min(self.items.len()), value.into());
    }

    /// Keeps only `start..=end` (LTRIM; an empty range empties the list).
    pub fn retain_range(&mut self, start: usize, end: usize, fill: i64) {
        let len = self.items.len();
        if start > end || start >= len {
            self.items.clear();
            self.entry_bytes = 0;
            self.data_bytes = 0;
        } else {
            let end = end.min(len - 1);
            for v in self.items.drain(end + 1..) {
                self.entry_bytes -= lp_entry_size(&v);
                self.data_bytes -= v.len();
            }
            for v in self.items.drain(..start) {
                self.entry_bytes -= lp_entry_size(&v);
                self.data_bytes -= v.len();
            }
        }
        self.shrink_check(fill);
    }

    /// Removes up to `count` elements equal to `value` (0: all), from the head when
    /// `from_head`, else from the tail (LREM). Returns how many were removed.
    pub fn remove_eq(&mut self, value: &[u8], count: usize, from_head: bool, fill: i64) -> usize {
        let mut removed = 0;
        let limit = if count == 0 { usize::MAX } else { count };
        let mut kept = VecDeque::with_capacity(self.items.len());
        let items = std::mem::take(&mut self.items);
        if from_head {
            for v in items {
                if removed < limit && &v[..] == value {
                    removed += 1;
                } else {
                    kept.push_back(v);
                }
            }
        } else {
            for v in items.into_iter().rev() {
                if removed < limit && &v[..] == value {
                    removed += 1;
                } else {
                    kept.push_front(v);
                }
            }
        }
        self.items = kept;
        for _ in 0..removed {
            self.entry_bytes -= lp_entry_size(value);
            self.data_bytes -= value.len();
        }
        self.shrink_check(fill);
        removed
    }

    /// Approximate heap bytes held, for MEMORY USAGE, eviction and lazy freeing.
    pub fn heap_size(&self) -> usize {
        if self.quicklist {
            self.data_bytes + self.items.len() * 16 + self.items.capacity() * 16
        } else {
            LP_OVERHEAD + self.entry_bytes
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_sizes_follow_listpack() {
        assert_eq!(lp_entry_size(b"1"), 2);
        assert_eq!(lp_entry_size(b"1000"), 3);
        assert_eq!(lp_entry_size(b"100000"), 5);
        assert_eq!(lp_entry_size(b"abc"), 5);
        assert_eq!(lp_entry_size(&[b'x'; 100]), 103);
        assert_eq!(lp_entry_size(&[b'x'; 200]), 204);
        assert_eq!(lp_entry_size(b"01"), 4, "not canonical: a string");
    }

    #[test]
    fn converts_on_growth_and_back_below_half() {
        let mut l = ListValue::default();
        let big = [b'a'; 1000];
        for _ in 0..8 {
            l.push(End::Tail, &big, DEFAULT_FILL);
        }
        assert_eq!(l.encoding(), "listpack");
        l.push(End::Tail, &big, DEFAULT_FILL);
        assert_eq!(l.encoding(), "quicklist");
        for _ in 0..4 {
            l.pop(End::Head);
        }
        l.shrink_check(DEFAULT_FILL);
        assert_eq!(l.encoding(), "quicklist", "5 KiB is not below half of 8 KiB");
        l.pop(End::Head);
        l.shrink_check(DEFAULT_FILL);
        assert_eq!(l.encoding(), "listpack");
        assert_eq!(l.len(), 4);
    }

    #[test]
    fn count_fill_limits_elements() {
        let mut l = ListValue::default();
        for i in 0..5 {
            l.push(End::Head, i.to_string().as_bytes(), 4);
        }
        assert_eq!(l.encoding(), "quicklist");
        assert_eq!(l.iter().collect::<Vec<_>>(), [&b"4"[..], b"3", b"2", b"1", b"0"]);
    }

    #[test]
    fn remove_and_trim_keep_accounting() {
        let mut l = ListValue::default();
        for v in ["a", "b", "a", "c", "a"] {
            l.push_back(v.as_bytes());
        }
        assert_eq!(l.remove_eq(b"a", 2, false, DEFAULT_FILL), 2);
        assert_eq!(l.iter().collect::<Vec<_>>(), [&b"a"[..], b"b", b"c"]);
        l.retain_range(1, 5, DEFAULT_FILL);
        assert_eq!(l.iter().collect::<Vec<_>>(), [&b"b"[..], b"c"]);
        assert_eq!(l.entry_bytes, 6);
        l.retain_range(3, 1, DEFAULT_FILL);
        assert!(l.is_empty());
        assert_eq!((l.entry_bytes, l.data_bytes), (0, 0));
    }
}
