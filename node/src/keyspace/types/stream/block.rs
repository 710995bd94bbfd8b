//! One node of a stream: up to `stream-node-max-entries` entries packed in one byte block,
//! as Valkey's listpack nodes, so an entry of a few small fields costs a few bytes and not a
//! heap allocation per field.
//!
//! ```text
//! block  = master-fields entry*
//! master-fields = nfields (varint) (len (varint) bytes)*     the first entry's field names
//! entry  = flags (u8) ms-delta (varint) seq (varint) [nfields (varint) (field)*] (value)*
//!          flags: bit 0 deleted, bit 1 same fields as the master (field names omitted)
//!          seq is relative to the master's when ms-delta is 0, absolute otherwise
//! ```
//!
//! Entries are only ever appended (IDs grow) or flagged deleted in place; a block whose
//! entries are all deleted is dropped by the stream. Reading decodes forward; reverse reads
//! decode the block's offsets first (a block is small).

use super::StreamId;

const DELETED: u8 = 1;
const SAME_FIELDS: u8 = 2;

/// An encoded block and its counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub master: StreamId,
    data: Vec<u8>,
    /// Offset of the first entry (after the master fields).
    body: u32,
    /// Live and deleted entries.
    pub live: u32,
    pub deleted: u32,
}

/// One decoded entry, borrowing the block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry<'a> {
    pub id: StreamId,
    pub deleted: bool,
    /// Field/value pairs in insertion order.
    pub fields: Vec<(&'a [u8], &'a [u8])>,
    /// Offset of the entry's flags byte in its block.
    pub(super) at: usize,
}

pub(super) fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Reads a varint at `*at`, advancing it. Blocks are only built by this module, so a short
/// read means a bug; it yields 0 rather than a panic.
fn get_varint(data: &[u8], at: &mut usize) -> u64 {
    let mut n = 0u64;
    let mut shift = 0;
    while let Some(&b) = data.get(*at) {
        *at += 1;
        if shift < 64 {
            n |= ((b & 0x7f) as u64) << shift;
        }
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    n
}

fn get_bytes<'a>(data: &'a [u8], at: &mut usize) -> &'a [u8] {
    let len = get_varint(data, at) as usize;
    let start = (*at).min(data.len());
    let end = start.saturating_add(len).min(data.len());
    *at = end;
    &data[start..end]
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

impl Block {
    /// A block whose first entry will be `master` with these field names.
    pub fn new<'f>(master: StreamId, fields: impl Iterator<Item = &'f [u8]> + Clone) -> Block {
        let mut data = Vec::new();
        put_varint(&mut data, fields.clone().count() as u64);
        for f in fields {
            put_bytes(&mut data, f);
        }
        let body = data.len() as u32;
        Block { master, data, body, live: 0, deleted: 0 }
    }

    /// Bytes of the encoded block.
    pub fn bytes(&self) -> usize {
        self.data.len()
    }

    /// Heap bytes held.
    pub fn heap_size(&self) -> usize {
        self.data.capacity()
    }

    /// Entries ever appended, deleted ones included (Valkey's node fill rule).
    pub fn count(&self) -> u32 {
        self.live + self.deleted
    }

    /// Releases spare capacity (the block is full and will not grow again).
    pub fn seal(&mut self) {
        self.data.shrink_to_fit();
    }

    fn master_fields(&self) -> Vec<&[u8]> {
        let mut at = 0;
        let n = get_varint(&self.data, &mut at);
        (0..n).map(|_| get_bytes(&self.data, &mut at)).collect()
    }

    /// Appends an entry (its ID is above every ID in the block).
    pub fn push(&mut self, id: StreamId, pairs: &[(&[u8], &[u8])]) {
        let master = self.master_fields();
        let same = master.len() == pairs.len() && master.iter().zip(pairs).all(|(m, (f, _))| *m == *f);
        // IDs in a block never precede its master (the stream checks); wrapping keeps even a
        // broken caller panic-free, and decoding wraps back the same way.
        let ms_delta = id.ms.wrapping_sub(self.master.ms);
        let mut e = Vec::with_capacity(16);
        e.push(if same { SAME_FIELDS } else { 0 });
        put_varint(&mut e, ms_delta);
        put_varint(&mut e, if ms_delta == 0 { id.seq.wrapping_sub(self.master.seq) } else { id.seq });
        if !same {
            put_varint(&mut e, pairs.len() as u64);
            for (f, _) in pairs {
                put_bytes(&mut e, f);
            }
        }
        for (_, v) in pairs {
            put_bytes(&mut e, v);
        }
        self.data.extend_from_slice(&e);
        self.live += 1;
    }

    /// Decodes the entry at `at`, returning it and the offset of the next one.
    fn decode_at<'a>(&'a self, master: &[&'a [u8]], at: usize) -> (Entry<'a>, usize) {
        let d = &self.data;
        let mut p = at;
        let flags = d.get(p).copied().unwrap_or(0);
        p += 1;
        let ms_delta = get_varint(d, &mut p);
        let seq = get_varint(d, &mut p);
        let ms = self.master.ms.wrapping_add(ms_delta);
        let seq = if ms_delta == 0 { self.master.seq.wrapping_add(seq) } else { seq };
        let mut fields = Vec::new();
        if flags & SAME_FIELDS != 0 {
            for f in master {
                fields.push((*f, &[][..]));
            }
        } else {
            let n = get_varint(d, &mut p);
            for _ in 0..n {
                fields.push((get_bytes(d, &mut p), &[][..]));
            }
        }
        for pair in fields.iter_mut() {
            pair.1 = get_bytes(d, &mut p);
        }
        (Entry { id: StreamId { ms, seq }, deleted: flags & DELETED != 0, fields, at }, p)
    }

    /// Every entry, deleted ones included, in ID order.
    pub fn entries(&self) -> Vec<Entry<'_>> {
        let master = self.master_fields();
        let mut out = Vec::with_capacity(self.count() as usize);
        let mut at = self.body as usize;
        while at < self.data.len() {
            let (e, next) = self.decode_at(&master, at);
            out.push(e);
            at = next;
        }
        out
    }

    /// IDs of every entry with their offsets and deleted flags (no field decoding).
    pub fn ids(&self) -> Vec<(StreamId, usize, bool)> {
        self.entries().into_iter().map(|e| (e.id, e.at, e.deleted)).collect()
    }

    /// Flags the entry at `at` deleted.
    pub fn mark_deleted(&mut self, at: usize) {
        if let Some(f) = self.data.get_mut(at) {
            if *f & DELETED == 0 {
                *f |= DELETED;
                self.live -= 1;
                self.deleted += 1;
            }
        }
    }

    /// The highest ID in the block (deleted entries included), if any.
    pub fn last_id(&self) -> Option<StreamId> {
        self.ids().last().map(|e| e.0)
    }
}
