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
    /// Bytes the master fields and the entries would take in Valkey's listpack (see
    /// [`Block::listpack_bytes`]): node fill follows `stream-node-max-bytes` as Valkey does.
    lp_fields: u32,
    lp_entries: u32,
}

/// Bytes of a listpack element holding an integer (encoding, data, back-length).
fn lp_int_size(v: i64) -> u32 {
    let l = match v {
        0..=127 => 1,
        -4096..=4095 => 2,
        -32768..=32767 => 3,
        -8388608..=8388607 => 4,
        -2147483648..=2147483647 => 5,
        _ => 9,
    };
    l + lp_backlen(l)
}

/// Bytes of a listpack element holding `s` (an integer if it is canonical, as `lpAppend`).
fn lp_str_size(s: &[u8]) -> u32 {
    if let Some(v) = crate::util::parse_i64(s) {
        return lp_int_size(v);
    }
    let n = s.len().min(u32::MAX as usize / 2) as u32;
    let l = match n {
        0..=63 => 1 + n,
        64..=4095 => 2 + n,
        _ => 5 + n,
    };
    l.saturating_add(lp_backlen(l))
}

fn lp_backlen(l: u32) -> u32 {
    match l {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2097150 => 3,
        2097151..=268435454 => 4,
        _ => 5,
    }
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
        let n = fields.clone().count();
        put_varint(&mut data, n as u64);
        let mut lp_fields = lp_int_size(n as i64) + lp_int_size(0);
        for f in fields {
            put_bytes(&mut data, f);
            lp_fields = lp_fields.saturating_add(lp_str_size(f));
        }
        let body = data.len() as u32;
        Block { master, data, body, live: 0, deleted: 0, lp_fields, lp_entries: 0 }
    }

    /// The size of this node as Valkey's listpack: header and end byte, the master entry
    /// (count, deleted, fields, terminator) and every entry.
    pub fn listpack_bytes(&self) -> usize {
        let counts = lp_int_size(self.live as i64) + lp_int_size(self.deleted as i64);
        7 + counts as usize + self.lp_fields as usize + self.lp_entries as usize
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

    /// True if the entry's field names are the master fields, in order (compared in place).
    fn same_as_master(&self, pairs: &[(&[u8], &[u8])]) -> bool {
        let mut at = 0;
        if get_varint(&self.data, &mut at) != pairs.len() as u64 {
            return false;
        }
        pairs.iter().all(|(f, _)| get_bytes(&self.data, &mut at) == *f)
    }

    /// Appends an entry (its ID is above every ID in the block).
    pub fn push(&mut self, id: StreamId, pairs: &[(&[u8], &[u8])]) {
        let same = self.same_as_master(pairs);
        // IDs in a block never precede its master (the stream checks); wrapping keeps even a
        // broken caller panic-free, and decoding wraps back the same way.
        let ms_delta = id.ms.wrapping_sub(self.master.ms);
        let e = &mut self.data;
        e.push(if same { SAME_FIELDS } else { 0 });
        put_varint(e, ms_delta);
        put_varint(e, if ms_delta == 0 { id.seq.wrapping_sub(self.master.seq) } else { id.seq });
        if !same {
            put_varint(e, pairs.len() as u64);
            for (f, _) in pairs {
                put_bytes(e, f);
            }
        }
        for (_, v) in pairs {
            put_bytes(e, v);
        }
        self.live += 1;
        let mut lp = lp_int_size(if same { SAME_FIELDS } else { 0 } as i64)
            + lp_int_size(id.ms.wrapping_sub(self.master.ms) as i64)
            + lp_int_size(id.seq.wrapping_sub(self.master.seq) as i64);
        let mut elements = 3 + pairs.len() as i64;
        if !same {
            lp += lp_int_size(pairs.len() as i64);
            elements += 1 + pairs.len() as i64;
        }
        for (f, v) in pairs {
            if !same {
                lp = lp.saturating_add(lp_str_size(f));
            }
            lp = lp.saturating_add(lp_str_size(v));
        }
        lp += lp_int_size(elements);
        self.lp_entries = self.lp_entries.saturating_add(lp);
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
        self.iter().collect()
    }

    /// Entries one by one, deleted ones included, in ID order (decoded as they are taken).
    pub fn iter(&self) -> BlockIter<'_> {
        BlockIter { block: self, master: self.master_fields(), at: self.body as usize }
    }

    /// Entries from the last to the first, decoded as they are taken.
    pub fn iter_rev(&self) -> BlockRevIter<'_> {
        let master = self.master_fields();
        let offsets = self.heads(master.len()).into_iter().map(|h| h.1).collect();
        BlockRevIter { block: self, master, offsets }
    }

    /// (ID, offset, deleted) of every entry, without decoding fields.
    fn heads(&self, master_len: usize) -> Vec<(StreamId, usize, bool)> {
        let d = &self.data;
        let mut out = Vec::with_capacity(self.count() as usize);
        let mut at = self.body as usize;
        while at < d.len() {
            let flags = d[at];
            let mut p = at + 1;
            let ms_delta = get_varint(d, &mut p);
            let seq = get_varint(d, &mut p);
            let ms = self.master.ms.wrapping_add(ms_delta);
            let seq = if ms_delta == 0 { self.master.seq.wrapping_add(seq) } else { seq };
            let n = if flags & SAME_FIELDS != 0 {
                master_len
            } else {
                let n = get_varint(d, &mut p) as usize;
                for _ in 0..n {
                    get_bytes(d, &mut p);
                }
                n
            };
            for _ in 0..n {
                get_bytes(d, &mut p);
            }
            out.push((StreamId { ms, seq }, at, flags & DELETED != 0));
            at = p;
        }
        out
    }

    /// IDs of every entry with their offsets and deleted flags (no field decoding).
    pub fn ids(&self) -> Vec<(StreamId, usize, bool)> {
        let mut at = 0;
        let n = get_varint(&self.data, &mut at) as usize;
        self.heads(n)
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

/// Forward iterator over a block's entries.
pub struct BlockIter<'a> {
    block: &'a Block,
    master: Vec<&'a [u8]>,
    at: usize,
}

impl<'a> Iterator for BlockIter<'a> {
    type Item = Entry<'a>;

    fn next(&mut self) -> Option<Entry<'a>> {
        if self.at >= self.block.data.len() {
            return None;
        }
        let (e, next) = self.block.decode_at(&self.master, self.at);
        self.at = next;
        Some(e)
    }
}

/// Backward iterator over a block's entries.
pub struct BlockRevIter<'a> {
    block: &'a Block,
    master: Vec<&'a [u8]>,
    offsets: Vec<usize>,
}

impl<'a> Iterator for BlockRevIter<'a> {
    type Item = Entry<'a>;

    fn next(&mut self) -> Option<Entry<'a>> {
        let at = self.offsets.pop()?;
        Some(self.block.decode_at(&self.master, at).0)
    }
}
