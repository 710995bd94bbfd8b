//! Consumer groups (Valkey's `streamCG`, `streamConsumer`, `streamNACK`): the group's last
//! delivered ID and logical read counter, its pending entries list (PEL) and its consumers.
//!
//! Invariant: an ID is in `Group::pel` iff it is in the `pel` of exactly the consumer named
//! by its `Pending::consumer`. Every change goes through the methods here to keep it.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

use super::StreamId;

/// `SCG_INVALID_ENTRIES_READ`: the group's read counter is unknown.
pub const INVALID_ENTRIES_READ: i64 = -1;

/// A pending (delivered, not acknowledged) entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub consumer: Bytes,
    /// Last delivery, Unix ms.
    pub delivery_time: i64,
    pub delivery_count: u64,
}

/// A consumer of a group.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Consumer {
    /// Last time it was seen by any command (Unix ms).
    pub seen_time: i64,
    /// Last time it read or claimed something (Unix ms), -1 if never.
    pub active_time: i64,
    pub pel: BTreeSet<StreamId>,
}

/// A consumer group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub last_id: StreamId,
    pub entries_read: i64,
    pub pel: BTreeMap<StreamId, Pending>,
    /// By name: XINFO lists consumers in name order, as Valkey's rax does.
    pub consumers: BTreeMap<Bytes, Consumer>,
}

impl Group {
    pub fn new(last_id: StreamId, entries_read: i64) -> Group {
        Group { last_id, entries_read, pel: BTreeMap::new(), consumers: BTreeMap::new() }
    }

    /// Creates the consumer if missing; returns true if it was created.
    pub fn create_consumer(&mut self, name: &[u8], now: i64) -> bool {
        if self.consumers.contains_key(name) {
            return false;
        }
        self.consumers.insert(
            Bytes::copy_from_slice(name),
            Consumer { seen_time: now, active_time: -1, pel: BTreeSet::new() },
        );
        true
    }

    /// Looks a consumer up, creating it if missing, and marks it seen. The flag says whether
    /// it was created.
    pub fn touch_consumer(&mut self, name: &[u8], now: i64) -> bool {
        let created = self.create_consumer(name, now);
        if let Some(c) = self.consumers.get_mut(name) {
            c.seen_time = now;
        }
        created
    }

    /// Deletes a consumer and its pending entries; returns how many were pending, or None if
    /// there was no such consumer.
    pub fn delete_consumer(&mut self, name: &[u8]) -> Option<usize> {
        let c = self.consumers.remove(name)?;
        for id in &c.pel {
            self.pel.remove(id);
        }
        Some(c.pel.len())
    }

    /// Delivers `id` to `consumer` (which exists): a new pending entry, or a pending one
    /// reassigned with its count reset to 1 (Valkey's XREADGROUP).
    pub fn deliver(&mut self, id: StreamId, consumer: &[u8], now: i64) {
        let Some((name, _)) = self.consumers.get_key_value(consumer) else { return };
        let name = name.clone();
        if let Some(old) = self.pel.get(&id).map(|p| p.consumer.clone()) {
            if let Some(c) = self.consumers.get_mut(&old) {
                c.pel.remove(&id);
            }
        }
        self.pel.insert(id, Pending { consumer: name.clone(), delivery_time: now, delivery_count: 1 });
        if let Some(c) = self.consumers.get_mut(&name) {
            c.pel.insert(id);
        }
    }

    /// Moves a pending entry to another consumer (XCLAIM): the entry must be pending.
    pub fn reassign(&mut self, id: StreamId, consumer: &[u8]) {
        let Some((name, _)) = self.consumers.get_key_value(consumer) else { return };
        let name = name.clone();
        let Some(p) = self.pel.get_mut(&id) else { return };
        let old = std::mem::replace(&mut p.consumer, name.clone());
        if let Some(c) = self.consumers.get_mut(&old) {
            c.pel.remove(&id);
        }
        if let Some(c) = self.consumers.get_mut(&name) {
            c.pel.insert(id);
        }
    }

    /// Acknowledges `id`; true if it was pending.
    pub fn ack(&mut self, id: StreamId) -> bool {
        let Some(p) = self.pel.remove(&id) else { return false };
        if let Some(c) = self.consumers.get_mut(&p.consumer) {
            c.pel.remove(&id);
        }
        true
    }

    /// Approximate heap bytes.
    pub fn heap_size(&self) -> usize {
        let pel = self.pel.len() * 64;
        let consumers: usize = self.consumers.iter().map(|(n, c)| 64 + n.len() + c.pel.len() * 24).sum();
        pel + consumers
    }
}
