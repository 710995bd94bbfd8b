//! The `hash` type, with Valkey's two encodings: `listpack` — fields and values packed in
//! one buffer (see `packed.rs`) in insertion order, searched linearly, for hashes within `hash-max-listpack-entries` and
//! `hash-max-listpack-value` — and `hashtable` (a [`Dict`]) past either threshold. As in
//! Valkey a hash converts once and never back, so `OBJECT ENCODING` reports what Valkey 8
//! would for the same history of writes.

use std::collections::HashMap;

use super::dict::Dict;
use super::packed::Packed;

/// A field and its value.
type Pair = (Box<[u8]>, Box<[u8]>);

/// The conversion thresholds (`hash-max-listpack-entries`, `hash-max-listpack-value`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashLimits {
    pub max_entries: usize,
    pub max_value: usize,
}

impl Default for HashLimits {
    /// Valkey's defaults, used where no configuration is at hand (RESTORE, migration).
    fn default() -> Self {
        HashLimits { max_entries: 128, max_value: 64 }
    }
}

#[derive(Debug, Clone)]
enum Repr {
    /// Field, value, field, value, ...
    Pack(Packed),
    Table(Dict<Pair>),
}

/// A hash value.
#[derive(Debug, Clone)]
pub struct HashValue {
    repr: Repr,
    /// Bytes of every field and value, kept up to date so `heap_size` is O(1).
    data: usize,
    /// Field deadlines (unix ms) of the fields with a TTL (Valkey 9 hash field expiry):
    /// allocated only once a field gets one, dropped when the last one goes, so a hash
    /// without field TTLs costs one null pointer more than before.
    // Boxed on purpose: one pointer in every hash instead of a 48-byte map.
    #[allow(clippy::box_collection)]
    ttl: Option<Box<HashMap<Box<[u8]>, i64>>>,
}

impl Default for HashValue {
    fn default() -> Self {
        HashValue { repr: Repr::Pack(Packed::default()), data: 0, ttl: None }
    }
}

impl PartialEq for HashValue {
    /// Same fields with the same values, whatever the order or encoding.
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().all(|(f, v)| other.get(f) == Some(v))
    }
}

impl HashValue {
    /// Number of fields.
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Pack(p) => p.len() / 2,
            Repr::Table(d) => d.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `OBJECT ENCODING` name.
    pub fn encoding(&self) -> &'static str {
        match self.repr {
            Repr::Pack(_) => "listpack",
            Repr::Table(_) => "hashtable",
        }
    }

    /// Fields and values, in the type's own order (insertion order while `listpack`).
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        let (a, b) = match &self.repr {
            Repr::Pack(p) => (Some(pairs(p)), None),
            Repr::Table(d) => (None, Some(d.iter().map(|(f, v)| (&f[..], &v[..])))),
        };
        a.into_iter().flatten().chain(b.into_iter().flatten())
    }

    /// The value of a field.
    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        match &self.repr {
            Repr::Pack(p) => pairs(p).find(|(f, _)| *f == field).map(|(_, v)| v),
            Repr::Table(d) => d.get(field).map(|(_, v)| &v[..]),
        }
    }

    /// The pair at index `i` (`0..len`) in the type's order, for random picks.
    pub fn at(&self, i: usize) -> (&[u8], &[u8]) {
        match &self.repr {
            Repr::Pack(p) => pairs(p).nth(i).unwrap_or((&[], &[])),
            Repr::Table(d) => {
                let (f, v) = d.at(i);
                (f, v)
            }
        }
    }

    /// Sets a field (restore and migration build values through this, with the default
    /// thresholds); true if it was new.
    pub fn insert_pair(&mut self, field: &[u8], value: &[u8]) -> bool {
        self.set(field, value, &HashLimits::default())
    }

    /// Valkey's `hashTypeTryConversion`: before writing `new_fields` pairs whose longest
    /// argument is `longest` bytes, converts to `hashtable` if they could not stay a listpack.
    pub fn prepare(&mut self, new_fields: usize, longest: usize, limits: &HashLimits) {
        if let Repr::Pack(_) = self.repr {
            if new_fields > limits.max_entries || longest > limits.max_value {
                self.convert(new_fields);
            }
        }
    }

    /// Valkey's `hashTypeSet`: sets a field, converting past the thresholds; true if new.
    /// A new value drops the field's TTL, as in Valkey 9.
    pub fn set(&mut self, field: &[u8], value: &[u8], limits: &HashLimits) -> bool {
        if self.ttl.is_some() {
            self.persist_field(field);
        }
        if matches!(self.repr, Repr::Pack(_))
            && (field.len() > limits.max_value || value.len() > limits.max_value)
        {
            self.convert(0);
        }
        let fresh = match &mut self.repr {
            Repr::Pack(p) => match locate(p, field) {
                Some((_, at, old)) => {
                    self.data = self.data + value.len() - old;
                    p.replace_at(at, value);
                    false
                }
                None => {
                    self.data += field.len() + value.len();
                    p.push(field);
                    p.push(value);
                    true
                }
            },
            Repr::Table(d) => match d.find_or_hash(field) {
                Ok(i) => {
                    let slot = d.at_mut(i);
                    self.data = self.data + value.len() - slot.1.len();
                    slot.1 = value.into();
                    false
                }
                Err(h) => {
                    self.data += field.len() + value.len();
                    d.insert_hashed((field.into(), value.into()), h);
                    true
                }
            },
        };
        if matches!(self.repr, Repr::Pack(_)) && self.len() > limits.max_entries {
            self.convert(0);
        }
        fresh
    }

    /// As [`HashValue::set`], keeping the field's TTL (HINCRBY, HINCRBYFLOAT, as Valkey 9).
    pub fn set_keep_ttl(&mut self, field: &[u8], value: &[u8], limits: &HashLimits) -> bool {
        let old = self.field_expiry(field);
        let fresh = self.set(field, value, limits);
        if let Some(at) = old {
            self.set_field_expiry(field, at);
        }
        fresh
    }

    /// True if some field has a TTL.
    pub fn has_field_ttls(&self) -> bool {
        self.ttl.is_some()
    }

    /// The deadline (unix ms) of a field, if it has one.
    pub fn field_expiry(&self, field: &[u8]) -> Option<i64> {
        self.ttl.as_ref()?.get(field).copied()
    }

    /// Gives an existing field a deadline (unix ms). As in Valkey 9, a hash with volatile
    /// fields is a `hashtable`.
    pub fn set_field_expiry(&mut self, field: &[u8], at: i64) {
        self.to_table();
        self.ttl.get_or_insert_with(Default::default).insert(field.into(), at);
    }

    /// Removes a field's TTL; true if it had one.
    pub fn persist_field(&mut self, field: &[u8]) -> bool {
        let Some(m) = self.ttl.as_mut() else { return false };
        let had = m.remove(field).is_some();
        if m.is_empty() {
            self.ttl = None;
        }
        had
    }

    /// Every field with a deadline, and the deadline.
    pub fn field_expiries(&self) -> impl Iterator<Item = (&[u8], i64)> {
        self.ttl.iter().flat_map(|m| m.iter().map(|(f, &at)| (&f[..], at)))
    }

    /// Removes the fields whose deadline has passed (`now_ms > deadline`, as keys expire)
    /// and returns their names.
    pub fn remove_expired_fields(&mut self, now_ms: i64) -> Vec<Box<[u8]>> {
        let Some(m) = self.ttl.as_ref() else { return Vec::new() };
        let gone: Vec<Box<[u8]>> = m.iter().filter(|(_, &at)| now_ms > at).map(|(f, _)| f.clone()).collect();
        for f in &gone {
            self.remove(f);
        }
        gone
    }

    /// True if the field is there but its deadline has passed.
    pub fn field_expired(&self, field: &[u8], now_ms: i64) -> bool {
        self.field_expiry(field).is_some_and(|at| now_ms > at)
    }

    /// Removes a field; true if it was there.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        self.persist_field(field);
        let gone = match &mut self.repr {
            Repr::Pack(p) => locate(p, field).map(|(at, _, old)| {
                p.remove_at(at, 2);
                field.len() + old
            }),
            Repr::Table(d) => d.remove(field).map(|(f, v)| f.len() + v.len()),
        };
        match gone {
            Some(n) => {
                self.data -= n;
                true
            }
            None => false,
        }
    }

    /// Converts to `hashtable` (Valkey 9 does before giving fields TTLs).
    pub fn to_table(&mut self) {
        self.convert(0);
    }

    fn convert(&mut self, extra: usize) {
        if let Repr::Pack(p) = &self.repr {
            let mut d = Dict::with_capacity(p.len() / 2 + extra);
            for (f, v) in pairs(p) {
                d.insert_new((f.into(), v.into()));
            }
            self.repr = Repr::Table(d);
        }
    }

    /// One HSCAN step: a listpack is returned whole (cursor 0 next), as Valkey does; a table
    /// is walked by its hash-space cursor (see `dict.rs`).
    pub fn scan<'s>(&'s self, cursor: u64, count: usize, mut f: impl FnMut(&'s [u8], &'s [u8])) -> u64 {
        match &self.repr {
            Repr::Pack(p) => {
                pairs(p).for_each(|(k, val)| f(k, val));
                0
            }
            Repr::Table(d) => d.scan(cursor, count, |(k, val)| f(k, val)),
        }
    }

    /// Approximate heap bytes held, for MEMORY USAGE, eviction and lazy freeing: the packed
    /// buffer, or the bytes of every field and value (two allocations per pair) plus the
    /// table. O(1).
    pub fn heap_size(&self) -> usize {
        const PER_ALLOC: usize = 8;
        let ttl = self.ttl.as_ref().map_or(0, |m| m.keys().map(|f| f.len() + 32).sum::<usize>());
        ttl + match &self.repr {
            Repr::Pack(p) => p.heap_size(),
            Repr::Table(d) => self.data + self.len() * 2 * PER_ALLOC + d.overhead(),
        }
    }
}

/// The pairs of a packed hash.
fn pairs(p: &Packed) -> impl Iterator<Item = (&[u8], &[u8])> {
    let mut it = p.iter();
    std::iter::from_fn(move || Some((it.next()?, it.next()?)))
}

/// Where the entries of `field` and of its value start in a packed hash, and the value's
/// length.
fn locate(p: &Packed, field: &[u8]) -> Option<(usize, usize, usize)> {
    let mut it = p.entries();
    while let (Some((fat, f)), Some((vat, v))) = (it.next(), it.next()) {
        if f == field {
            return Some((fat, vat, v.len()));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_ttls_live_in_a_side_map_only_while_needed() {
        let mut h = HashValue::default();
        h.insert_pair(b"a", b"1");
        h.insert_pair(b"b", b"2");
        assert!(!h.has_field_ttls());
        h.set_field_expiry(b"a", 100);
        assert_eq!(h.field_expiry(b"a"), Some(100));
        assert!(!h.field_expired(b"a", 100) && h.field_expired(b"a", 101));
        assert!(h.remove_expired_fields(100).is_empty());
        assert_eq!(h.remove_expired_fields(101), [Box::from(&b"a"[..])]);
        assert_eq!((h.len(), h.has_field_ttls()), (1, false));
        h.set_field_expiry(b"b", 5);
        h.insert_pair(b"b", b"3");
        assert!(!h.has_field_ttls(), "a new value drops the TTL");
        h.set_field_expiry(b"b", 5);
        assert!(h.persist_field(b"b") && !h.persist_field(b"b"));
        h.set_field_expiry(b"b", 5);
        assert!(h.remove(b"b"));
        assert!(!h.has_field_ttls());
    }

    #[test]
    fn converts_past_either_threshold_and_never_back() {
        let lim = HashLimits { max_entries: 3, max_value: 5 };
        let mut h = HashValue::default();
        for f in [&b"a"[..], b"b", b"c"] {
            assert!(h.set(f, b"v", &lim));
        }
        assert!(!h.set(b"a", b"w", &lim));
        assert_eq!(h.encoding(), "listpack");
        assert_eq!(h.iter().map(|(f, _)| f.to_vec()).collect::<Vec<_>>(), [b"a", b"b", b"c"]);
        assert!(h.set(b"d", b"v", &lim));
        assert_eq!(h.encoding(), "hashtable");
        assert!(h.remove(b"d") && h.remove(b"c"));
        assert_eq!(h.encoding(), "hashtable");
        assert_eq!(h.get(b"a"), Some(&b"w"[..]));
        assert_eq!(h.data, 4, "a=w b=v");
        assert!(h.heap_size() >= 4);

        let mut h = HashValue::default();
        h.set(b"f", b"123456", &lim);
        assert_eq!(h.encoding(), "hashtable");
        let mut h = HashValue::default();
        h.prepare(4, 1, &lim);
        assert_eq!(h.encoding(), "hashtable");
    }

    #[test]
    fn packed_updates_keep_order_and_sizes() {
        let lim = HashLimits::default();
        let mut h = HashValue::default();
        for (f, v) in [("a", "1"), ("b", "22"), ("c", "333")] {
            h.set(f.as_bytes(), v.as_bytes(), &lim);
        }
        h.set(b"b", b"x", &lim);
        assert!(h.remove(b"a") && !h.remove(b"a"));
        assert_eq!(h.iter().collect::<Vec<_>>(), [(&b"b"[..], &b"x"[..]), (b"c", b"333")]);
        assert_eq!((h.len(), h.data), (2, 6));
        assert_eq!(h.at(1), (&b"c"[..], &b"333"[..]));
        // One buffer: a small hash costs tens of bytes, not an allocation per string.
        assert!(h.heap_size() < 64, "{}", h.heap_size());
    }

    #[test]
    fn equality_ignores_order_and_encoding() {
        let mut a = HashValue::default();
        let mut b = HashValue::default();
        a.insert_pair(b"x", b"1");
        a.insert_pair(b"y", b"2");
        b.set(b"y", b"2", &HashLimits { max_entries: 0, max_value: 0 });
        b.insert_pair(b"x", b"1");
        assert_eq!(a, b);
        b.insert_pair(b"x", b"3");
        assert_ne!(a, b);
    }
}
