//! The `zset` type: a member -> score hash map for O(1) score lookups plus a skiplist with
//! spans (see `skiplist.rs`) for O(log n) rank and range queries, as Valkey's `skiplist`
//! encoding. Small sets use the same structure but report `listpack` while they stay within
//! `zset-max-listpack-entries` / `zset-max-listpack-value`, as Valkey would encode them; the
//! conversion is one-way, as in Valkey (a set that grew never reports `listpack` again).

mod skiplist;

use std::collections::HashMap;

use skiplist::SkipList;
pub use skiplist::{LexBound, LexRange, ScoreRange, NIL};

type Members = HashMap<Box<[u8]>, f64, foldhash::fast::RandomState>;

/// The listpack thresholds (`zset-max-listpack-entries`, `zset-max-listpack-value`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub entries: usize,
    pub value: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { entries: 128, value: 64 }
    }
}

/// A sorted set value.
#[derive(Debug, Clone, Default)]
pub struct ZSetValue {
    dict: Members,
    list: SkipList,
    /// Valkey would hold this set as a skiplist (it outgrew the listpack limits once).
    big: bool,
}

impl PartialEq for ZSetValue {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().zip(other.iter()).all(|(a, b)| a.0 == b.0 && a.1 == b.1)
    }
}

/// What `add` did (Valkey's `ZADD_OUT_*` flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    New,
    Updated,
    Unchanged,
}

impl ZSetValue {
    /// An empty set that reports the encoding Valkey's `zsetTypeCreate(size_hint,
    /// value_len_hint)` would pick.
    pub fn with_hint(size: usize, max_member: usize, limits: Limits) -> Self {
        ZSetValue { big: size > limits.entries || max_member > limits.value, ..Default::default() }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `OBJECT ENCODING` name.
    pub fn encoding(&self) -> &'static str {
        if self.big {
            "skiplist"
        } else {
            "listpack"
        }
    }

    /// Re-evaluates the encoding of a freshly built set (store commands, restore), as
    /// Valkey's `zsetConvertToListpackIfNeeded` does.
    pub fn fit_encoding(&mut self, limits: Limits) {
        let max = self.dict.keys().map(|m| m.len()).max().unwrap_or(0);
        self.big = self.len() > limits.entries || max > limits.value;
    }

    /// Reports `skiplist` from now on, as Valkey's `zsetConvert(zobj, OBJ_ENCODING_SKIPLIST)`
    /// (SORT converts every sorted set it reads).
    pub fn convert_to_skiplist(&mut self) {
        self.big = true;
    }

    /// Members with their scores, in rank order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], f64)> {
        self.iter_from(self.list.first())
    }

    /// Members from node `x` on, in rank order.
    pub fn iter_from(&self, mut x: u32) -> impl Iterator<Item = (&[u8], f64)> {
        std::iter::from_fn(move || {
            if x == NIL {
                return None;
            }
            let item = self.list.get(x);
            x = self.list.succ(x);
            Some(item)
        })
    }

    /// Members from node `x` backwards, in reverse rank order.
    pub fn iter_rev_from(&self, mut x: u32) -> impl Iterator<Item = (&[u8], f64)> {
        std::iter::from_fn(move || {
            if x == NIL {
                return None;
            }
            let item = self.list.get(x);
            x = self.list.pred(x);
            Some(item)
        })
    }

    /// Sets a member's score (restore and migration build values through this); true if new.
    pub fn insert_scored(&mut self, member: &[u8], score: f64) -> bool {
        self.add(member, score, Limits::default()) == Added::New
    }

    /// Sets a member's score, converting the encoding per `limits` as Valkey's `zsetAdd`.
    pub fn add(&mut self, member: &[u8], score: f64, limits: Limits) -> Added {
        // A listpack stores "-0" as the integer 0, so a small set loses the zero's sign.
        let small = |big: bool, s: f64| if s == 0.0 && !big { 0.0 } else { s };
        if let Some(cur) = self.dict.get_mut(member) {
            let score = small(self.big, score);
            if *cur == score {
                return Added::Unchanged;
            }
            let old = std::mem::replace(cur, score);
            let m = self.list.remove(old, member).unwrap_or_else(|| member.into());
            self.list.insert(score, m);
            return Added::Updated;
        }
        if self.len() + 1 > limits.entries || member.len() > limits.value {
            self.big = true;
        }
        let score = small(self.big, score);
        self.dict.insert(member.into(), score);
        self.list.insert(score, member.into());
        Added::New
    }

    /// A member's score.
    pub fn score(&self, member: &[u8]) -> Option<f64> {
        self.dict.get(member).copied()
    }

    /// Removes a member; true if it was there.
    pub fn remove(&mut self, member: &[u8]) -> bool {
        match self.dict.remove(member) {
            Some(s) => {
                self.list.remove(s, member);
                true
            }
            None => false,
        }
    }

    /// 0-based rank of a member (ascending) and its score.
    pub fn rank(&self, member: &[u8]) -> Option<(usize, f64)> {
        let s = self.score(member)?;
        Some((self.list.rank(s, member) - 1, s))
    }

    /// The node at 0-based rank, or NIL.
    pub fn at(&self, rank: usize) -> u32 {
        self.list.at_rank(rank + 1)
    }

    /// Member and score of a node from `at`, `first_in_*` or `last_in_*`.
    pub fn get(&self, x: u32) -> (&[u8], f64) {
        self.list.get(x)
    }

    /// 0-based rank of a node.
    pub fn rank_of(&self, x: u32) -> usize {
        self.list.rank_of(x) - 1
    }

    pub fn first_in_score(&self, r: &ScoreRange) -> u32 {
        self.list.first_in_score(r)
    }

    pub fn last_in_score(&self, r: &ScoreRange) -> u32 {
        self.list.last_in_score(r)
    }

    pub fn first_in_lex(&self, r: &LexRange) -> u32 {
        self.list.first_in_lex(r)
    }

    pub fn last_in_lex(&self, r: &LexRange) -> u32 {
        self.list.last_in_lex(r)
    }

    /// Number of members with a score in range.
    pub fn count_in_score(&self, r: &ScoreRange) -> usize {
        match (self.first_in_score(r), self.last_in_score(r)) {
            (NIL, _) | (_, NIL) => 0,
            (a, b) => self.rank_of(b) + 1 - self.rank_of(a),
        }
    }

    /// Number of members in a lexicographic range.
    pub fn count_in_lex(&self, r: &LexRange) -> usize {
        match (self.first_in_lex(r), self.last_in_lex(r)) {
            (NIL, _) | (_, NIL) => 0,
            (a, b) => self.rank_of(b) + 1 - self.rank_of(a),
        }
    }

    /// Removes and returns up to `count` members from the low end (or the high end with
    /// `max`), in pop order: the logic of ZPOPMIN/ZPOPMAX/ZMPOP, shared with the blocking forms.
    pub fn pop(&mut self, max: bool, count: usize) -> Vec<(Box<[u8]>, f64)> {
        let mut out = Vec::with_capacity(count.min(self.len()));
        while out.len() < count {
            let x = if max { self.list.last() } else { self.list.first() };
            if x == NIL {
                break;
            }
            let (m, s) = self.list.get(x);
            let m: Box<[u8]> = m.into();
            self.remove(&m);
            out.push((m, s));
        }
        out
    }

    /// Removes the members at 0-based ranks `start..=end` (clamped); returns how many.
    pub fn remove_rank_range(&mut self, start: usize, end: usize) -> usize {
        let victims: Vec<Box<[u8]>> =
            self.iter_from(self.at(start)).take(end + 1 - start).map(|(m, _)| m.into()).collect();
        for m in &victims {
            self.remove(m);
        }
        victims.len()
    }

    /// Approximate heap bytes held, for MEMORY USAGE, eviction and lazy freeing. O(1): the
    /// hash holds a second copy of every member.
    pub fn heap_size(&self) -> usize {
        let dict = self.dict.capacity() * (std::mem::size_of::<(Box<[u8]>, f64)>() + 1);
        dict + self.list.member_bytes() + self.list.heap_size()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_follows_the_listpack_limits_one_way() {
        let lim = Limits { entries: 2, value: 4 };
        let mut z = ZSetValue::with_hint(1, 1, lim);
        z.add(b"a", 1.0, lim);
        z.add(b"b", 2.0, lim);
        assert_eq!(z.encoding(), "listpack");
        z.add(b"c", 3.0, lim);
        assert_eq!(z.encoding(), "skiplist");
        z.remove(b"c");
        assert_eq!(z.encoding(), "skiplist", "no conversion back, as Valkey");
        let mut y = ZSetValue::with_hint(1, 1, lim);
        y.add(b"longer", 1.0, lim);
        assert_eq!(y.encoding(), "skiplist");
        y.fit_encoding(Limits::default());
        assert_eq!(y.encoding(), "listpack");
    }

    #[test]
    fn updates_move_members_and_pop_takes_from_either_end() {
        let mut z = ZSetValue::default();
        for (m, s) in [("a", 3.0), ("b", 1.0), ("c", 2.0)] {
            assert!(z.insert_scored(m.as_bytes(), s));
        }
        assert!(!z.insert_scored(b"b", 5.0));
        let order: Vec<_> = z.iter().map(|(m, _)| m.to_vec()).collect();
        assert_eq!(order, [b"c".to_vec(), b"a".to_vec(), b"b".to_vec()]);
        assert_eq!(z.rank(b"b"), Some((2, 5.0)));
        let r = ScoreRange { min: 2.0, max: 3.0, minex: false, maxex: false };
        assert_eq!(z.count_in_score(&r), 2);
        let popped = z.pop(true, 2);
        assert_eq!(popped, vec![(b"b"[..].into(), 5.0), (b"a"[..].into(), 3.0)]);
        assert_eq!(z.len(), 1);
        assert_eq!(z.score(b"b"), None);
    }
}
