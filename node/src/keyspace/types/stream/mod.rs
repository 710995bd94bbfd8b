//! The stream type (Valkey's `t_stream.c` data, not its commands): entries with 128-bit IDs
//! in a `BTreeMap` from each block's first ID to a packed [`Block`] of up to
//! `stream-node-max-entries` entries (the shape of Valkey's rax of listpacks, so `~` trimming,
//! which only drops whole nodes, removes what Valkey removes), plus the stream's counters and
//! its consumer groups.
//!
//! Deleting an entry flags it in its block; a block with no live entry left is dropped. The
//! counters follow Valkey: `last_id` never goes down except through XSETID, `entries_added`
//! counts every XADD, `max_deleted_id` is the largest ID removed by XDEL, `first_id` is the
//! first live entry (0-0 when empty).

mod block;
pub mod group;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;

use bytes::Bytes;

pub use block::{Block, BlockIter, BlockRevIter, Entry};
pub use group::{Consumer, Group, Pending, INVALID_ENTRIES_READ};

/// A stream entry ID: milliseconds and a sequence number, ordered as a 128-bit number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct StreamId {
    pub ms: u64,
    pub seq: u64,
}

impl StreamId {
    pub const MIN: StreamId = StreamId { ms: 0, seq: 0 };
    pub const MAX: StreamId = StreamId { ms: u64::MAX, seq: u64::MAX };

    pub const fn new(ms: u64, seq: u64) -> StreamId {
        StreamId { ms, seq }
    }

    /// The next ID, or None at the maximum (Valkey's `streamIncrID` failing).
    pub fn next(self) -> Option<StreamId> {
        if self.seq < u64::MAX {
            Some(StreamId { ms: self.ms, seq: self.seq + 1 })
        } else if self.ms < u64::MAX {
            Some(StreamId { ms: self.ms + 1, seq: 0 })
        } else {
            None
        }
    }

    /// The previous ID, or None at 0-0 (`streamDecrID`).
    pub fn prev(self) -> Option<StreamId> {
        if self.seq > 0 {
            Some(StreamId { ms: self.ms, seq: self.seq - 1 })
        } else if self.ms > 0 {
            Some(StreamId { ms: self.ms - 1, seq: u64::MAX })
        } else {
            None
        }
    }

    pub fn is_zero(self) -> bool {
        self == StreamId::MIN
    }

    /// The 16-byte big-endian form Valkey keys its rax and PELs with (and RDB stores).
    pub fn to_be_bytes(self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.ms.to_be_bytes());
        b[8..].copy_from_slice(&self.seq.to_be_bytes());
        b
    }

    pub fn from_be_bytes(b: &[u8]) -> Option<StreamId> {
        let ms = u64::from_be_bytes(b.get(..8)?.try_into().ok()?);
        let seq = u64::from_be_bytes(b.get(8..16)?.try_into().ok()?);
        Some(StreamId { ms, seq })
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// One entry of a node being rebuilt: its ID, whether it is deleted, its field/value pairs.
pub type NodeEntry<'a> = (StreamId, bool, Vec<(&'a [u8], &'a [u8])>);

/// How XADD/XTRIM trim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trim {
    MaxLen(u64),
    MinId(StreamId),
}

/// Node limits (`stream-node-max-bytes`, `stream-node-max-entries`; 0 is "no limit").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeLimits {
    pub max_bytes: usize,
    pub max_entries: u32,
}

impl Default for NodeLimits {
    fn default() -> Self {
        NodeLimits { max_bytes: 4096, max_entries: 100 }
    }
}

/// A stream value.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StreamValue {
    blocks: BTreeMap<StreamId, Block>,
    length: u64,
    pub last_id: StreamId,
    pub first_id: StreamId,
    pub max_deleted_id: StreamId,
    pub entries_added: u64,
    /// By name (XINFO GROUPS lists them in name order, as Valkey's rax).
    pub groups: BTreeMap<Bytes, Group>,
}

impl StreamValue {
    /// Live entries.
    pub fn len(&self) -> u64 {
        self.length
    }

    pub fn is_empty(&self) -> bool {
        self.length == 0
    }

    /// Number of nodes (XINFO's `radix-tree-keys`).
    pub fn node_count(&self) -> usize {
        self.blocks.len()
    }

    /// The nodes in ID order (for the RDB writer).
    pub fn blocks(&self) -> impl Iterator<Item = &Block> {
        self.blocks.values()
    }

    /// `OBJECT ENCODING`.
    pub fn encoding(&self) -> &'static str {
        "stream"
    }

    /// Approximate heap bytes: blocks, the map's nodes, groups.
    pub fn heap_size(&self) -> usize {
        let blocks: usize = self.blocks.values().map(|b| b.heap_size() + 64).sum();
        let groups: usize = self.groups.iter().map(|(n, g)| n.len() + 96 + g.heap_size()).sum();
        blocks + groups
    }

    /// Appends an entry whose ID is above `last_id` (the caller checked), as XADD does:
    /// into the last node unless it is full.
    pub fn append(&mut self, id: StreamId, pairs: &[(&[u8], &[u8])], limits: NodeLimits) {
        let payload: usize = pairs.iter().map(|(f, v)| f.len() + v.len()).sum();
        let max_bytes =
            if limits.max_bytes == 0 || limits.max_bytes > 1 << 30 { 1 << 30 } else { limits.max_bytes };
        let fits = self.blocks.last_key_value().is_some_and(|(_, b)| {
            b.listpack_bytes() + payload < max_bytes
                && (limits.max_entries == 0 || b.count() < limits.max_entries)
        });
        if !fits {
            if let Some(mut last) = self.blocks.last_entry() {
                last.get_mut().seal();
            }
            self.blocks.insert(id, Block::new(id, pairs.iter().map(|p| p.0)));
        }
        if let Some(mut last) = self.blocks.last_entry() {
            last.get_mut().push(id, pairs);
        }
        if self.length == 0 {
            self.first_id = id;
        }
        self.length += 1;
        self.entries_added += 1;
        self.last_id = id;
    }

    /// Live entries with `start <= id <= end`, forward or backward.
    pub fn range(
        &self,
        start: StreamId,
        end: StreamId,
        rev: bool,
    ) -> Box<dyn Iterator<Item = Entry<'_>> + '_> {
        if start > end {
            return Box::new(std::iter::empty());
        }
        let from = self.blocks.range(..=start).next_back().map_or(start, |(k, _)| *k);
        let blocks = self.blocks.range(from..=end);
        let keep = move |e: &Entry<'_>| !e.deleted && e.id >= start && e.id <= end;
        if rev {
            Box::new(blocks.rev().flat_map(|(_, b)| b.iter_rev()).filter(keep))
        } else {
            Box::new(blocks.flat_map(|(_, b)| b.iter()).filter(keep))
        }
    }

    /// The live entry with this ID.
    pub fn get(&self, id: StreamId) -> Option<Entry<'_>> {
        self.range(id, id, false).next()
    }

    /// The first or last live ID (`streamGetEdgeID`).
    pub fn edge_id(&self, first: bool) -> Option<StreamId> {
        if first {
            self.range(StreamId::MIN, StreamId::MAX, false).next().map(|e| e.id)
        } else {
            self.range(StreamId::MIN, StreamId::MAX, true).next().map(|e| e.id)
        }
    }

    /// Deletes one live entry; true if it was there. Counters other than the length are the
    /// caller's (see [`StreamValue::delete_ids`]).
    fn delete(&mut self, id: StreamId) -> bool {
        let Some((&key, block)) = self.blocks.range_mut(..=id).next_back() else { return false };
        let Some(&(_, at, _)) = block.ids().iter().find(|(i, _, d)| *i == id && !d) else { return false };
        block.mark_deleted(at);
        if block.live == 0 {
            self.blocks.remove(&key);
        }
        self.length -= 1;
        true
    }

    /// XDEL: deletes the IDs, updating `max_deleted_id` and `first_id`; returns how many
    /// were deleted.
    pub fn delete_ids(&mut self, ids: &[StreamId]) -> u64 {
        let mut deleted = 0;
        let mut first = false;
        for &id in ids {
            if id == self.first_id {
                first = true;
            }
            if self.delete(id) {
                if id > self.max_deleted_id {
                    self.max_deleted_id = id;
                }
                deleted += 1;
            }
        }
        if deleted > 0 {
            if self.length == 0 {
                self.first_id = StreamId::MIN;
            } else if first {
                self.first_id = self.edge_id(true).unwrap_or_default();
            }
        }
        deleted
    }

    /// Valkey's `streamTrim`: drops whole nodes while they are entirely beyond the
    /// threshold, then (exact trimming only) entries of the next node. `limit` (0: none)
    /// caps the entries removed by approximate trimming. Returns the entries removed.
    pub fn trim(&mut self, trim: Trim, approx: bool, limit: u64) -> u64 {
        let mut deleted = 0u64;
        let keys: Vec<StreamId> = self.blocks.keys().copied().collect();
        for key in keys {
            if let Trim::MaxLen(max) = trim {
                if self.length <= max {
                    break;
                }
            }
            let Some(block) = self.blocks.get_mut(&key) else { break };
            let entries = block.live as u64;
            if limit > 0 && deleted + entries > limit {
                break;
            }
            let remove = match trim {
                Trim::MaxLen(max) => self.length - entries >= max,
                Trim::MinId(min) => block.last_id().is_some_and(|last| last < min),
            };
            if remove {
                self.blocks.remove(&key);
                self.length -= entries;
                deleted += entries;
                continue;
            }
            if approx {
                break;
            }
            for (id, at, dead) in block.ids() {
                if dead {
                    continue;
                }
                let stop = match trim {
                    Trim::MaxLen(max) => self.length <= max,
                    Trim::MinId(min) => id >= min,
                };
                if stop {
                    break;
                }
                block.mark_deleted(at);
                self.length -= 1;
                deleted += 1;
            }
            if block.live == 0 {
                self.blocks.remove(&key);
            }
            break;
        }
        if deleted > 0 {
            self.first_id =
                if self.length == 0 { StreamId::MIN } else { self.edge_id(true).unwrap_or_default() };
        }
        deleted
    }

    /// Valkey's `streamEstimateDistanceFromFirstEverEntry`: the logical read counter of
    /// `id`, or `INVALID_ENTRIES_READ` when it cannot be known.
    pub fn estimate_entries_read(&self, id: StreamId) -> i64 {
        if self.entries_added == 0 {
            return 0;
        }
        let added = self.entries_added as i64;
        if self.length == 0 && id <= self.last_id {
            return added;
        }
        if !id.is_zero() && id < self.max_deleted_id {
            return INVALID_ENTRIES_READ;
        }
        if id == self.last_id {
            return added;
        } else if id > self.last_id {
            return INVALID_ENTRIES_READ;
        }
        if self.max_deleted_id.is_zero() || self.max_deleted_id < self.first_id {
            if id < self.first_id {
                return added - self.length as i64;
            } else if id == self.first_id {
                return added - self.length as i64 + 1;
            }
        }
        INVALID_ENTRIES_READ
    }

    /// Valkey's `streamRangeHasTombstones` from `start` to the end.
    pub fn has_tombstones_from(&self, start: StreamId) -> bool {
        if self.length == 0 || self.max_deleted_id.is_zero() {
            return false;
        }
        if self.first_id > self.max_deleted_id {
            return false;
        }
        start <= self.max_deleted_id
    }

    /// A group's lag (XINFO GROUPS), None when it cannot be known.
    pub fn group_lag(&self, g: &Group) -> Option<i64> {
        let added = self.entries_added as i64;
        if self.entries_added == 0 {
            return Some(0);
        }
        if g.entries_read != INVALID_ENTRIES_READ && !self.has_tombstones_from(g.last_id) {
            return Some(added - g.entries_read);
        }
        let read = self.estimate_entries_read(g.last_id);
        (read != INVALID_ENTRIES_READ).then_some(added - read)
    }

    /// A group read up to `id` (XREADGROUP `>`): moves its last delivered ID and its read
    /// counter as Valkey's `streamReplyWithRange` does. False if `id` is not past it.
    pub fn group_read(&mut self, group: &[u8], id: StreamId) -> bool {
        let Some(last) = self.groups.get(group).map(|g| g.last_id) else { return false };
        let countable = last >= self.first_id && !self.has_tombstones_from(last);
        let estimate = self.estimate_entries_read(id);
        let added = self.entries_added;
        let Some(g) = self.groups.get_mut(group) else { return false };
        if id <= g.last_id {
            return false;
        }
        if g.entries_read != INVALID_ENTRIES_READ && countable {
            g.entries_read += 1;
        } else if added > 0 {
            g.entries_read = estimate;
        }
        g.last_id = id;
        true
    }

    /// Rebuilds a stream from decoded nodes (RDB, RESTORE): each node's entries in order,
    /// deleted ones flagged, so node boundaries survive a round trip.
    pub fn push_node(&mut self, master: StreamId, entries: &[NodeEntry<'_>]) {
        let Some(first) = entries.first() else { return };
        let mut block = Block::new(master, first.2.iter().map(|p| p.0));
        for (id, dead, pairs) in entries {
            block.push(*id, pairs);
            if *dead {
                let at = block.ids().last().map(|e| e.1);
                if let Some(at) = at {
                    block.mark_deleted(at);
                }
            } else {
                self.length += 1;
            }
        }
        block.seal();
        if block.live > 0 {
            self.blocks.insert(master, block);
        }
    }
}
