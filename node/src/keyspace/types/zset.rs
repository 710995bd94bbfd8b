//! The `zset` type. Representation to be chosen by the family that implements its commands;
//! this placeholder lets the keyspace, TYPE and OBJECT ENCODING know the type exists.

/// A zset value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ZSetValue {}

impl ZSetValue {
    /// Number of elements.
    pub fn len(&self) -> usize {
        0
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `OBJECT ENCODING` name.
    pub fn encoding(&self) -> &'static str {
        "skiplist"
    }

    /// Approximate heap bytes held, for MEMORY USAGE, eviction and lazy freeing.
    pub fn heap_size(&self) -> usize {
        0
    }
}
