//! The `hash` type. A plain vector stands in until the family that implements its
//! commands chooses the representation; the stand-in lets the keyspace, TYPE, OBJECT ENCODING
//! and DUMP/RESTORE handle the type already.

/// A field and its value.
type Pair = (Box<[u8]>, Box<[u8]>);

/// A hash value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HashValue {
    pairs: Vec<Pair>,
}

impl HashValue {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `OBJECT ENCODING` name.
    pub fn encoding(&self) -> &'static str {
        "listpack"
    }

    /// Fields and values, in the type's own order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.pairs.iter().map(|(f, v)| (&f[..], &v[..]))
    }

    /// Sets a field (restore and migration build values through this); true if it was new.
    pub fn insert_pair(&mut self, field: &[u8], value: &[u8]) -> bool {
        if let Some(slot) = self.pairs.iter_mut().find(|(f, _)| &f[..] == field) {
            slot.1 = value.into();
            return false;
        }
        self.pairs.push((field.into(), value.into()));
        true
    }

    /// Approximate heap bytes held, for MEMORY USAGE, eviction and lazy freeing.
    pub fn heap_size(&self) -> usize {
        0
    }
}
