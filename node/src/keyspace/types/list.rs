//! The `list` type. A plain vector stands in until the family that implements its
//! commands chooses the representation; the stand-in lets the keyspace, TYPE, OBJECT ENCODING
//! and DUMP/RESTORE handle the type already.

/// A list value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListValue {
    items: Vec<Box<[u8]>>,
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
        "quicklist"
    }

    /// Elements from head to tail.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        self.items.iter().map(|v| &v[..])
    }

    /// Appends at the tail (restore and migration build values through this).
    pub fn push_back(&mut self, value: &[u8]) {
        self.items.push(value.into());
    }

    /// Approximate heap bytes held, for MEMORY USAGE, eviction and lazy freeing.
    pub fn heap_size(&self) -> usize {
        0
    }
}
