//! The `set` type. A plain vector stands in until the family that implements its
//! commands chooses the representation; the stand-in lets the keyspace, TYPE, OBJECT ENCODING
//! and DUMP/RESTORE handle the type already.

/// A set value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SetValue {
    members: Vec<Box<[u8]>>,
}

impl SetValue {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `OBJECT ENCODING` name.
    pub fn encoding(&self) -> &'static str {
        "hashtable"
    }

    /// Members, in the type's own order.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        self.members.iter().map(|v| &v[..])
    }

    /// Adds a member (restore and migration build values through this); true if it was new.
    pub fn insert_member(&mut self, member: &[u8]) -> bool {
        if self.members.iter().any(|m| &m[..] == member) {
            return false;
        }
        self.members.push(member.into());
        true
    }

    /// Approximate heap bytes held, for MEMORY USAGE, eviction and lazy freeing.
    pub fn heap_size(&self) -> usize {
        0
    }
}
