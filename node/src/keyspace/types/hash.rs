//! The `hash` type, with Valkey's two encodings: `listpack` — a small vector of pairs in
//! insertion order, searched linearly, for hashes within `hash-max-listpack-entries` and
//! `hash-max-listpack-value` — and `hashtable` (a [`Dict`]) past either threshold. As in
//! Valkey a hash converts once and never back, so `OBJECT ENCODING` reports what Valkey 8
//! would for the same history of writes.

use super::dict::Dict;

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
    Pack(Vec<Pair>),
    Table(Dict<Pair>),
}

/// A hash value.
#[derive(Debug, Clone)]
pub struct HashValue {
    repr: Repr,
    /// Bytes of every field and value, kept up to date so `heap_size` is O(1).
    data: usize,
}

impl Default for HashValue {
    fn default() -> Self {
        HashValue { repr: Repr::Pack(Vec::new()), data: 0 }
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
            Repr::Pack(v) => v.len(),
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
            Repr::Pack(v) => (v.iter(), None),
            Repr::Table(d) => ([].iter(), Some(d.iter())),
        };
        a.chain(b.into_iter().flatten()).map(|(f, v)| (&f[..], &v[..]))
    }

    /// The value of a field.
    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        match &self.repr {
            Repr::Pack(v) => v.iter().find(|(f, _)| &f[..] == field).map(|(_, v)| &v[..]),
            Repr::Table(d) => d.get(field).map(|(_, v)| &v[..]),
        }
    }

    /// The pair at index `i` (`0..len`) in the type's order, for random picks.
    pub fn at(&self, i: usize) -> (&[u8], &[u8]) {
        let (f, v) = match &self.repr {
            Repr::Pack(p) => &p[i],
            Repr::Table(d) => d.at(i),
        };
        (f, v)
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
    pub fn set(&mut self, field: &[u8], value: &[u8], limits: &HashLimits) -> bool {
        if matches!(self.repr, Repr::Pack(_))
            && (field.len() > limits.max_value || value.len() > limits.max_value)
        {
            self.convert(0);
        }
        let fresh = match &mut self.repr {
            Repr::Pack(v) => match v.iter_mut().find(|(f, _)| &f[..] == field) {
                Some(slot) => {
                    self.data = self.data + value.len() - slot.1.len();
                    slot.1 = value.into();
                    false
                }
                None => {
                    self.data += field.len() + value.len();
                    v.push((field.into(), value.into()));
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

    /// Removes a field; true if it was there.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        let gone = match &mut self.repr {
            Repr::Pack(v) => v.iter().position(|(f, _)| &f[..] == field).map(|i| v.remove(i)),
            Repr::Table(d) => d.remove(field),
        };
        match gone {
            Some((f, v)) => {
                self.data -= f.len() + v.len();
                true
            }
            None => false,
        }
    }

    fn convert(&mut self, extra: usize) {
        if let Repr::Pack(v) = &mut self.repr {
            let mut d = Dict::with_capacity(v.len() + extra);
            for p in v.drain(..) {
                d.insert_new(p);
            }
            self.repr = Repr::Table(d);
        }
    }

    /// One HSCAN step: a listpack is returned whole (cursor 0 next), as Valkey does; a table
    /// is walked by its hash-space cursor (see `dict.rs`).
    pub fn scan<'s>(&'s self, cursor: u64, count: usize, mut f: impl FnMut(&'s [u8], &'s [u8])) -> u64 {
        match &self.repr {
            Repr::Pack(v) => {
                v.iter().for_each(|(k, val)| f(k, val));
                0
            }
            Repr::Table(d) => d.scan(cursor, count, |(k, val)| f(k, val)),
        }
    }

    /// Approximate heap bytes held, for MEMORY USAGE, eviction and lazy freeing: the bytes
    /// of every field and value (two allocations per pair) plus the container. O(1).
    pub fn heap_size(&self) -> usize {
        const PER_ALLOC: usize = 8;
        self.data
            + self.len() * 2 * PER_ALLOC
            + match &self.repr {
                Repr::Pack(v) => v.capacity() * std::mem::size_of::<Pair>(),
                Repr::Table(d) => d.overhead(),
            }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
