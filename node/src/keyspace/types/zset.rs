//! The `zset` type. A plain vector stands in until the family that implements its
//! commands chooses the representation; the stand-in lets the keyspace, TYPE, OBJECT ENCODING
//! and DUMP/RESTORE handle the type already.

/// A zset value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ZSetValue {
    members: Vec<(Box<[u8]>, f64)>,
}

impl ZSetValue {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `OBJECT ENCODING` name.
    pub fn encoding(&self) -> &'static str {
        "skiplist"
    }

    /// Members with their scores, in rank order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], f64)> {
        self.members.iter().map(|(m, s)| (&m[..], *s))
    }

    /// Sets a member's score (restore and migration build values through this); true if new.
    pub fn insert_scored(&mut self, member: &[u8], score: f64) -> bool {
        let fresh = match self.members.iter().position(|(m, _)| &m[..] == member) {
            Some(i) => {
                self.members.remove(i);
                false
            }
            None => true,
        };
        let at = self.members.partition_point(|(m, s)| (*s, &m[..]) < (score, member));
        self.members.insert(at, (member.into(), score));
        fresh
    }

    /// Approximate heap bytes held, for MEMORY USAGE, eviction and lazy freeing.
    pub fn heap_size(&self) -> usize {
        0
    }
}
