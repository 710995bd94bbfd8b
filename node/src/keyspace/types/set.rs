//! The `set` type, with Valkey 8's three encodings: `intset` (sorted integers, while every
//! member is a canonical integer and there are at most `set-max-intset-entries`), `listpack`
//! (members packed in one buffer in insertion order, see `packed.rs`, within `set-max-listpack-entries` and
//! `set-max-listpack-value`) and `hashtable` (a [`Dict`]). The rules for creating and
//! converting follow `setTypeCreate` and `setTypeAddAux`, and a set never converts back, so
//! `OBJECT ENCODING` matches Valkey for the same history of writes.

use super::dict::Dict;
use super::packed::Packed;
use crate::util::parse_i64;

/// Valkey caps `set-max-intset-entries` at this (`intsetMaxEntries`).
const INTSET_HARD_MAX: usize = 1 << 30;

/// The conversion thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SetLimits {
    /// `set-max-intset-entries`
    pub max_intset: usize,
    /// `set-max-listpack-entries`
    pub max_listpack: usize,
    /// `set-max-listpack-value`
    pub max_value: usize,
}

impl Default for SetLimits {
    /// Valkey's defaults, used where no configuration is at hand (RESTORE, migration).
    fn default() -> Self {
        SetLimits { max_intset: 512, max_listpack: 128, max_value: 64 }
    }
}

/// An intset member: the integer and its canonical text, so iteration can lend bytes.
#[derive(Debug, Clone, Copy)]
struct IntMember {
    v: i64,
    len: u8,
    text: [u8; 20],
}

impl IntMember {
    fn new(v: i64) -> Self {
        let mut text = [0u8; 20];
        let mut b = itoa::Buffer::new();
        let s = b.format(v).as_bytes();
        text[..s.len()].copy_from_slice(s);
        IntMember { v, len: s.len() as u8, text }
    }

    fn bytes(&self) -> &[u8] {
        &self.text[..self.len as usize]
    }
}

#[derive(Debug, Clone)]
enum Repr {
    Ints(Vec<IntMember>),
    Pack(Packed),
    Table(Dict<Box<[u8]>>),
}

/// A set value.
#[derive(Debug, Clone)]
pub struct SetValue {
    repr: Repr,
    /// Bytes of every member as text, kept up to date so `heap_size` is O(1).
    data: usize,
}

impl Default for SetValue {
    fn default() -> Self {
        SetValue { repr: Repr::Ints(Vec::new()), data: 0 }
    }
}

impl PartialEq for SetValue {
    /// Same members, whatever the order or encoding.
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().all(|m| other.contains(m))
    }
}

impl SetValue {
    /// Valkey's `setTypeCreate`: the encoding a new set starts with, from its first member
    /// and the number of members about to be added.
    pub fn create(first: &[u8], size_hint: usize, limits: &SetLimits) -> SetValue {
        let repr = if parse_i64(first).is_some() && size_hint <= limits.max_intset {
            Repr::Ints(Vec::new())
        } else if size_hint <= limits.max_listpack {
            Repr::Pack(Packed::default())
        } else {
            Repr::Table(Dict::with_capacity(size_hint))
        };
        SetValue { repr, data: 0 }
    }

    /// An empty set in the `listpack` encoding (results built by SINTERSTORE and SPOP).
    pub fn new_listpack() -> SetValue {
        SetValue { repr: Repr::Pack(Packed::default()), data: 0 }
    }

    /// An empty set in this set's compact encoding: `intset` if this is one, else `listpack`
    /// (the set SPOP rebuilds when it keeps only a few members).
    pub fn empty_compact(&self) -> SetValue {
        match self.repr {
            Repr::Ints(_) => SetValue::default(),
            _ => SetValue::new_listpack(),
        }
    }

    /// Valkey's `setTypeMaybeConvert`: before adding `size_hint` members, converts to
    /// `hashtable` if they could not fit the current compact encoding.
    pub fn maybe_convert(&mut self, size_hint: usize, limits: &SetLimits) {
        let over = match self.repr {
            Repr::Pack(_) => size_hint > limits.max_listpack,
            Repr::Ints(_) => size_hint > limits.max_intset,
            Repr::Table(_) => false,
        };
        if over {
            self.convert_to_table(size_hint);
        }
    }

    /// Valkey's `maybeConvertToIntset`: a set known to hold only integers becomes an
    /// `intset` again if it is small enough (SINTERSTORE's result).
    pub fn maybe_to_intset(&mut self, limits: &SetLimits) {
        if matches!(self.repr, Repr::Ints(_)) || self.len() > limits.max_intset.min(INTSET_HARD_MAX) {
            return;
        }
        let Some(mut v) = self.iter().map(|m| parse_i64(m).map(IntMember::new)).collect::<Option<Vec<_>>>()
        else {
            return;
        };
        v.sort_unstable_by_key(|m| m.v);
        self.repr = Repr::Ints(v);
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Ints(v) => v.len(),
            Repr::Pack(p) => p.len(),
            Repr::Table(d) => d.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `OBJECT ENCODING` name.
    pub fn encoding(&self) -> &'static str {
        match self.repr {
            Repr::Ints(_) => "intset",
            Repr::Pack(_) => "listpack",
            Repr::Table(_) => "hashtable",
        }
    }

    /// Members, in the type's own order (ascending while `intset`, insertion order while
    /// `listpack`).
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        let (a, b, c) = match &self.repr {
            Repr::Ints(v) => (v.iter(), None, None),
            Repr::Pack(p) => ([].iter(), Some(p.iter()), None),
            Repr::Table(d) => ([].iter(), None, Some(d.iter().map(|m| &m[..]))),
        };
        a.map(IntMember::bytes).chain(b.into_iter().flatten()).chain(c.into_iter().flatten())
    }

    /// The member at index `i` (`0..len`), for random picks.
    pub fn at(&self, i: usize) -> &[u8] {
        match &self.repr {
            Repr::Ints(v) => v[i].bytes(),
            Repr::Pack(p) => p.iter().nth(i).unwrap_or(&[]),
            Repr::Table(d) => d.at(i),
        }
    }

    /// True if `member` is in the set.
    pub fn contains(&self, member: &[u8]) -> bool {
        match &self.repr {
            Repr::Ints(v) => parse_i64(member).is_some_and(|n| v.binary_search_by_key(&n, |m| m.v).is_ok()),
            Repr::Pack(p) => p.iter().any(|m| m == member),
            Repr::Table(d) => d.find(member).is_some(),
        }
    }

    /// Adds a member (restore and migration build values through this, with the default
    /// thresholds); true if it was new.
    pub fn insert_member(&mut self, member: &[u8]) -> bool {
        self.add(member, &SetLimits::default())
    }

    /// Valkey's `setTypeAdd`: adds a member, converting past the thresholds; true if new.
    pub fn add(&mut self, member: &[u8], limits: &SetLimits) -> bool {
        let fresh = self.add_inner(member, limits);
        if fresh {
            self.data += member.len();
        }
        fresh
    }

    fn add_inner(&mut self, member: &[u8], limits: &SetLimits) -> bool {
        match &mut self.repr {
            Repr::Ints(v) => {
                if let Some(n) = parse_i64(member) {
                    let Err(at) = v.binary_search_by_key(&n, |m| m.v) else { return false };
                    v.insert(at, IntMember::new(n));
                    if v.len() > limits.max_intset.min(INTSET_HARD_MAX) {
                        self.convert_to_table(0);
                    }
                    return true;
                }
                // A non-integer: a listpack if everything would fit one, else a table.
                let longest = match (v.first(), v.last()) {
                    (Some(a), Some(b)) => a.len.max(b.len) as usize,
                    _ => 0,
                };
                if v.len() < limits.max_listpack
                    && member.len() <= limits.max_value
                    && longest <= limits.max_value
                {
                    let mut p = Packed::default();
                    v.iter().for_each(|m| p.push(m.bytes()));
                    p.push(member);
                    self.repr = Repr::Pack(p);
                } else {
                    self.convert_to_table(1);
                    self.table_add(member);
                }
                true
            }
            Repr::Pack(p) => {
                if p.iter().any(|m| m == member) {
                    return false;
                }
                if p.len() < limits.max_listpack && member.len() <= limits.max_value {
                    p.push(member);
                } else {
                    self.convert_to_table(1);
                    self.table_add(member);
                }
                true
            }
            Repr::Table(_) => self.table_add(member),
        }
    }

    fn table_add(&mut self, member: &[u8]) -> bool {
        let Repr::Table(d) = &mut self.repr else { return false };
        match d.find_or_hash(member) {
            Ok(_) => false,
            Err(h) => {
                d.insert_hashed(member.into(), h);
                true
            }
        }
    }

    fn convert_to_table(&mut self, extra: usize) {
        let d = {
            let mut d = Dict::with_capacity(self.len() + extra);
            for m in self.iter() {
                d.insert_new(m.into());
            }
            d
        };
        self.repr = Repr::Table(d);
    }

    /// Removes a member; true if it was there.
    pub fn remove(&mut self, member: &[u8]) -> bool {
        let gone = self.remove_inner(member);
        if gone {
            self.data -= member.len();
        }
        gone
    }

    fn remove_inner(&mut self, member: &[u8]) -> bool {
        match &mut self.repr {
            Repr::Ints(v) => {
                let Some(n) = parse_i64(member) else { return false };
                match v.binary_search_by_key(&n, |m| m.v) {
                    Ok(i) => {
                        v.remove(i);
                        true
                    }
                    Err(_) => false,
                }
            }
            Repr::Pack(p) => match p.entries().find(|(_, m)| *m == member) {
                Some((at, _)) => {
                    p.remove_at(at, 1);
                    true
                }
                None => false,
            },
            Repr::Table(d) => d.remove(member).is_some(),
        }
    }

    /// Removes and returns the member at index `i` (`0..len`), for SPOP.
    pub fn remove_at(&mut self, i: usize) -> Vec<u8> {
        let m = match &mut self.repr {
            Repr::Ints(v) => v.remove(i).bytes().to_vec(),
            Repr::Pack(p) => match p.entries().nth(i).map(|(at, m)| (at, m.to_vec())) {
                Some((at, m)) => {
                    p.remove_at(at, 1);
                    m
                }
                None => Vec::new(),
            },
            Repr::Table(d) => d.remove_at(i).into_vec(),
        };
        self.data -= m.len();
        m
    }

    /// One SSCAN step: an intset or listpack is returned whole (cursor 0 next), as Valkey
    /// does; a table is walked by its hash-space cursor (see `dict.rs`).
    pub fn scan<'s>(&'s self, cursor: u64, count: usize, mut f: impl FnMut(&'s [u8])) -> u64 {
        match &self.repr {
            Repr::Table(d) => d.scan(cursor, count, |m| f(m)),
            _ => {
                self.iter().for_each(f);
                0
            }
        }
    }

    /// Approximate heap bytes held, for MEMORY USAGE, eviction and lazy freeing: the member
    /// bytes (one allocation each) plus the container. O(1).
    pub fn heap_size(&self) -> usize {
        const PER_ALLOC: usize = 8;
        match &self.repr {
            Repr::Ints(v) => v.capacity() * std::mem::size_of::<IntMember>(),
            Repr::Pack(p) => p.heap_size(),
            Repr::Table(d) => d.overhead() + self.data + d.len() * PER_ALLOC,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add_all(s: &mut SetValue, members: &[&str], lim: &SetLimits) {
        for m in members {
            s.add(m.as_bytes(), lim);
        }
    }

    #[test]
    fn encodings_follow_valkey_rules() {
        let lim = SetLimits { max_intset: 3, max_listpack: 4, max_value: 5 };
        let mut s = SetValue::create(b"1", 1, &lim);
        add_all(&mut s, &["3", "1", "-2"], &lim);
        assert_eq!(s.encoding(), "intset");
        assert_eq!(s.iter().collect::<Vec<_>>(), [&b"-2"[..], b"1", b"3"]);
        assert!(s.contains(b"3") && !s.contains(b"03") && !s.contains(b"x"));
        s.add(b"4", &lim);
        assert_eq!(s.encoding(), "hashtable", "past set-max-intset-entries");

        let mut s = SetValue::create(b"1", 1, &lim);
        add_all(&mut s, &["1", "2", "a"], &lim);
        assert_eq!(s.encoding(), "listpack");
        assert_eq!(s.iter().collect::<Vec<_>>(), [&b"1"[..], b"2", b"a"]);
        add_all(&mut s, &["b"], &lim);
        assert_eq!(s.encoding(), "listpack");
        add_all(&mut s, &["c"], &lim);
        assert_eq!(s.encoding(), "hashtable", "past set-max-listpack-entries");
        assert!(s.remove(b"c") && s.remove(b"a") && !s.remove(b"a"));
        assert_eq!(s.encoding(), "hashtable");
        assert_eq!(s.len(), 3);

        let mut s = SetValue::create(b"a", 1, &lim);
        assert_eq!(s.encoding(), "listpack");
        s.add(b"toolong", &lim);
        assert_eq!(s.encoding(), "hashtable", "past set-max-listpack-value");
        assert_eq!(SetValue::create(b"1", 4, &lim).encoding(), "listpack");
        assert_eq!(SetValue::create(b"a", 5, &lim).encoding(), "hashtable");
        // An intset whose integers are too long for a listpack goes straight to a table.
        let mut s = SetValue::create(b"1", 1, &lim);
        add_all(&mut s, &["123456", "x"], &lim);
        assert_eq!(s.encoding(), "hashtable");
    }

    #[test]
    fn remove_at_and_equality() {
        let mut a = SetValue::default();
        for m in ["5", "x", "7"] {
            a.insert_member(m.as_bytes());
        }
        let mut b = SetValue::create(b"x", 1000, &SetLimits::default());
        for m in ["7", "x", "5"] {
            b.insert_member(m.as_bytes());
        }
        assert_eq!(b.encoding(), "hashtable");
        assert_eq!(a, b);
        let m = b.remove_at(1);
        assert!(!b.contains(&m) && b.len() == 2);
        assert_eq!(b.data, 3 - m.len());
        assert_eq!(a.data, 3);
        assert_ne!(a, b);
    }
}
