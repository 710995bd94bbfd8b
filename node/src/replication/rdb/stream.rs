//! Streams in RDB (types 15, 19 and 21, Valkey's `rdbSaveObject`/`rdbLoadObject` for
//! `OBJ_STREAM`): each node as its 16-byte big-endian master ID and a listpack laid out as
//! `t_stream.c` lays it out, then the stream's counters and its consumer groups. Writing emits
//! exactly Valkey's listpack encodings (integers for canonical integer strings), so a payload
//! loads into Redis 7.0 (type 19, RDB 10) and Valkey 8 (type 21, RDB 11).
//!
//! ```text
//! master entry: count deleted nfields field... 0
//! entry:        flags ms-diff seq-diff [nfields field value ... | value ...] lp-count
//! ```

use bytes::Bytes;

use super::compact::{self, Entry as LpEntry};
use super::cursor::{corrupt, Cursor, Fail};
use super::types::{STREAM_LISTPACKS, STREAM_LISTPACKS_2, STREAM_LISTPACKS_3};
use super::value::{put_len, put_str};
use super::RdbError;
use crate::keyspace::types::stream::{Block, Group, NodeEntry, StreamId, StreamValue};

const FLAG_DELETED: i64 = 1;
const FLAG_SAME: i64 = 2;

/// The RDB type for a stream at `version` (Redis 7.0 writes 19 at RDB 10; 7.2/Valkey 8, 21).
pub fn rdb_type(version: u16) -> u8 {
    match version {
        11.. => STREAM_LISTPACKS_3,
        10 => STREAM_LISTPACKS_2,
        _ => STREAM_LISTPACKS,
    }
}

/// A listpack under construction.
struct Lp {
    body: Vec<u8>,
    count: usize,
}

impl Lp {
    fn new() -> Lp {
        Lp { body: Vec::new(), count: 0 }
    }

    fn backlen(&mut self, l: usize) {
        let l = l as u64;
        let groups: usize = match l {
            0..=127 => 1,
            128..=16382 => 2,
            16383..=2097150 => 3,
            2097151..=268435454 => 4,
            _ => 5,
        };
        for i in (0..groups).rev() {
            let b = ((l >> (7 * i)) & 127) as u8;
            self.body.push(if i == groups - 1 { b } else { b | 128 });
        }
    }

    fn int(&mut self, v: i64) {
        let start = self.body.len();
        if (0..=127).contains(&v) {
            self.body.push(v as u8);
        } else if (-4096..=4095).contains(&v) {
            let u = (v as u64 & 0x1fff) as u16;
            self.body.push(0xc0 | (u >> 8) as u8);
            self.body.push(u as u8);
        } else if (-32768..=32767).contains(&v) {
            self.body.push(0xf1);
            self.body.extend_from_slice(&(v as i16).to_le_bytes());
        } else if (-8388608..=8388607).contains(&v) {
            self.body.push(0xf2);
            self.body.extend_from_slice(&(v as i32).to_le_bytes()[..3]);
        } else if let Ok(v) = i32::try_from(v) {
            self.body.push(0xf3);
            self.body.extend_from_slice(&v.to_le_bytes());
        } else {
            self.body.push(0xf4);
            self.body.extend_from_slice(&v.to_le_bytes());
        }
        let len = self.body.len() - start;
        self.backlen(len);
        self.count += 1;
    }

    /// A string element; canonical integers are stored as integers (`lpAppend`).
    fn str(&mut self, s: &[u8]) {
        if let Some(v) = crate::util::parse_i64(s) {
            return self.int(v);
        }
        let start = self.body.len();
        let n = s.len();
        if n < 64 {
            self.body.push(0x80 | n as u8);
        } else if n < 4096 {
            self.body.push(0xe0 | (n >> 8) as u8);
            self.body.push(n as u8);
        } else {
            self.body.push(0xf0);
            self.body.extend_from_slice(&(n as u32).to_le_bytes());
        }
        self.body.extend_from_slice(s);
        let len = self.body.len() - start;
        self.backlen(len);
        self.count += 1;
    }

    fn finish(self) -> Vec<u8> {
        let total = 6 + self.body.len() + 1;
        let mut out = Vec::with_capacity(total);
        out.extend_from_slice(&(total as u32).to_le_bytes());
        out.extend_from_slice(&(self.count.min(u16::MAX as usize) as u16).to_le_bytes());
        out.extend_from_slice(&self.body);
        out.push(0xff);
        out
    }
}

fn put_ms(out: &mut Vec<u8>, ms: i64) {
    out.extend_from_slice(&ms.to_le_bytes());
}

/// One node as Valkey's listpack (master entry, then each entry, deleted ones flagged).
pub fn node_listpack(b: &Block) -> Vec<u8> {
    let entries = b.entries();
    let master = b.master;
    let master_fields: Vec<&[u8]> =
        entries.first().map(|e| e.fields.iter().map(|f| f.0).collect()).unwrap_or_default();
    let mut lp = Lp::new();
    lp.int(b.live as i64);
    lp.int(b.deleted as i64);
    lp.int(master_fields.len() as i64);
    for f in &master_fields {
        lp.str(f);
    }
    lp.int(0);
    for e in &entries {
        let same = e.fields.len() == master_fields.len()
            && e.fields.iter().zip(&master_fields).all(|(a, m)| a.0 == *m);
        let mut flags = if e.deleted { FLAG_DELETED } else { 0 };
        if same {
            flags |= FLAG_SAME;
        }
        lp.int(flags);
        lp.int(e.id.ms.wrapping_sub(master.ms) as i64);
        lp.int(e.id.seq.wrapping_sub(master.seq) as i64);
        if same {
            for (_, v) in &e.fields {
                lp.str(v);
            }
            lp.int(e.fields.len() as i64 + 3);
        } else {
            lp.int(e.fields.len() as i64);
            for (f, v) in &e.fields {
                lp.str(f);
                lp.str(v);
            }
            lp.int(e.fields.len() as i64 * 2 + 4);
        }
    }
    lp.finish()
}

/// The value body of a stream for RDB type `rtype`.
pub fn put_stream(out: &mut Vec<u8>, s: &StreamValue, rtype: u8, compress: bool) {
    let blocks: Vec<_> = s.blocks().filter(|b| b.live > 0).collect();
    put_len(out, blocks.len() as u64);
    for b in blocks {
        put_str(out, &b.master.to_be_bytes(), false);
        put_str(out, &node_listpack(b), compress);
    }
    put_len(out, s.len());
    put_len(out, s.last_id.ms);
    put_len(out, s.last_id.seq);
    if rtype >= STREAM_LISTPACKS_2 {
        put_len(out, s.first_id.ms);
        put_len(out, s.first_id.seq);
        put_len(out, s.max_deleted_id.ms);
        put_len(out, s.max_deleted_id.seq);
        put_len(out, s.entries_added);
    }
    put_len(out, s.groups.len() as u64);
    for (name, g) in &s.groups {
        put_str(out, name, false);
        put_len(out, g.last_id.ms);
        put_len(out, g.last_id.seq);
        if rtype >= STREAM_LISTPACKS_2 {
            put_len(out, g.entries_read as u64);
        }
        put_len(out, g.pel.len() as u64);
        for (id, p) in &g.pel {
            out.extend_from_slice(&id.to_be_bytes());
            put_ms(out, p.delivery_time);
            put_len(out, p.delivery_count);
        }
        put_len(out, g.consumers.len() as u64);
        for (cname, c) in &g.consumers {
            put_str(out, cname, false);
            put_ms(out, c.seen_time);
            if rtype >= STREAM_LISTPACKS_3 {
                put_ms(out, c.active_time);
            }
            put_len(out, c.pel.len() as u64);
            for id in &c.pel {
                out.extend_from_slice(&id.to_be_bytes());
            }
        }
    }
}

fn bad<T>(what: &'static str) -> Result<T, RdbError> {
    Err(RdbError::Corrupt(what))
}

fn lp_int(e: Option<&LpEntry<'_>>) -> Result<i64, RdbError> {
    match e {
        Some(LpEntry::Int(n)) => Ok(*n),
        Some(LpEntry::Str(s)) => crate::util::parse_i64(s).map_or(bad("stream listpack integer"), Ok),
        None => bad("stream listpack ends early"),
    }
}

fn lp_bytes(e: Option<&LpEntry<'_>>) -> Result<Vec<u8>, RdbError> {
    e.map(|e| e.to_vec()).map_or(bad("stream listpack ends early"), Ok)
}

/// Adds one node (`key` is its 16-byte master ID, `blob` its listpack) to `s`, checking that
/// IDs grow across nodes.
pub fn read_node(s: &mut StreamValue, key: &[u8], blob: &[u8]) -> Result<(), RdbError> {
    if key.len() != 16 {
        return bad("stream node key is not 128 bits");
    }
    let master = StreamId::from_be_bytes(key).map_or(bad("stream node key"), Ok)?;
    let items = compact::listpack(blob)?;
    if items.is_empty() {
        return bad("empty listpack inside a stream");
    }
    let mut it = items.iter();
    let count = lp_int(it.next())?;
    let deleted = lp_int(it.next())?;
    let nmaster = usize::try_from(lp_int(it.next())?).map_or(bad("stream master fields"), Ok)?;
    if nmaster > items.len() {
        return bad("stream master fields");
    }
    let mut master_fields = Vec::with_capacity(nmaster);
    for _ in 0..nmaster {
        master_fields.push(lp_bytes(it.next())?);
    }
    if lp_int(it.next())? != 0 {
        return bad("stream master entry terminator");
    }
    type Owned = (StreamId, bool, Vec<(Vec<u8>, Vec<u8>)>);
    let mut owned: Vec<Owned> = Vec::new();
    while it.len() > 0 {
        let flags = lp_int(it.next())?;
        let ms = master.ms.wrapping_add(lp_int(it.next())? as u64);
        let seq = master.seq.wrapping_add(lp_int(it.next())? as u64);
        let id = StreamId::new(ms, seq);
        // An entry never precedes its node's master ID, and nodes come in master ID order.
        // Within a node a later entry may have a lower ID than a deleted one before it (XSETID
        // below a deleted entry, then XADD into the same node), as in Valkey's listpacks.
        if id < master || s.blocks().last().is_some_and(|b| master <= b.master) {
            return bad("stream IDs out of order");
        }
        let mut pairs = Vec::new();
        if flags & FLAG_SAME != 0 {
            for f in &master_fields {
                pairs.push((f.clone(), lp_bytes(it.next())?));
            }
        } else {
            let n = usize::try_from(lp_int(it.next())?).map_or(bad("stream entry fields"), Ok)?;
            if n > items.len() {
                return bad("stream entry fields");
            }
            for _ in 0..n {
                let f = lp_bytes(it.next())?;
                pairs.push((f, lp_bytes(it.next())?));
            }
        }
        // lp-count: the entry's elements, as Valkey's integrity check wants them.
        let extra = if flags & FLAG_SAME != 0 { 3 } else { 4 + pairs.len() as i64 };
        if lp_int(it.next())? != pairs.len() as i64 + extra {
            return bad("stream entry element count");
        }
        owned.push((id, flags & FLAG_DELETED != 0, pairs));
    }
    let dead = owned.iter().filter(|e| e.1).count() as i64;
    if owned.len() as i64 != count.saturating_add(deleted) || dead != deleted {
        return bad("stream node entry counts");
    }
    let view: Vec<NodeEntry<'_>> =
        owned.iter().map(|(id, d, p)| (*id, *d, p.iter().map(|(f, v)| (&f[..], &v[..])).collect())).collect();
    s.push_node(master, &view);
    Ok(())
}

fn len(c: &mut Cursor<'_>) -> Result<u64, Fail> {
    c.plain_len()
}

fn id(c: &mut Cursor<'_>) -> Result<StreamId, Fail> {
    Ok(StreamId::new(len(c)?, len(c)?))
}

fn raw_id(c: &mut Cursor<'_>) -> Result<StreamId, Fail> {
    let b = c.take(16)?;
    StreamId::from_be_bytes(b).map_or(corrupt("stream ID"), Ok)
}

/// Reads the counters and groups that follow the nodes.
/// Restartable: the decoder runs it again from the start when the input ended inside it.
pub fn read_rest(rtype: u8, c: &mut Cursor<'_>, s: &mut StreamValue) -> Result<(), Fail> {
    s.groups.clear();
    let length = len(c)?;
    s.last_id = id(c)?;
    if rtype >= STREAM_LISTPACKS_2 {
        s.first_id = id(c)?;
        s.max_deleted_id = id(c)?;
        s.entries_added = len(c)?;
    } else {
        s.first_id = s.edge_id(true).unwrap_or_default();
        s.entries_added = length;
    }
    if length != s.len() {
        return corrupt("stream length does not match its entries");
    }
    if s.edge_id(false).is_some_and(|last| last > s.last_id) {
        return corrupt("stream last ID below its entries");
    }
    let groups = len(c)?;
    for _ in 0..groups {
        let name = Bytes::from(c.bytes()?.into_owned());
        let last = id(c)?;
        let entries_read =
            if rtype >= STREAM_LISTPACKS_2 { len(c)? as i64 } else { s.estimate_entries_read(last) };
        let mut g = Group::new(last, entries_read);
        let pel = len(c)?;
        for _ in 0..pel {
            let pid = raw_id(c)?;
            let time = c.i64_le()?;
            let count = len(c)?;
            g.pel.insert(
                pid,
                crate::keyspace::types::stream::Pending {
                    consumer: Bytes::new(),
                    delivery_time: time,
                    delivery_count: count,
                },
            );
        }
        let consumers = len(c)?;
        let mut assigned = std::collections::BTreeSet::new();
        for _ in 0..consumers {
            let cname = Bytes::from(c.bytes()?.into_owned());
            let seen = c.i64_le()?;
            let active = if rtype >= STREAM_LISTPACKS_3 { c.i64_le()? } else { seen };
            let n = len(c)?;
            let mut cpel = std::collections::BTreeSet::new();
            for _ in 0..n {
                let pid = raw_id(c)?;
                match g.pel.get_mut(&pid) {
                    Some(p) if assigned.insert(pid) => p.consumer = cname.clone(),
                    _ => return corrupt("consumer pending entry not in the group's PEL"),
                }
                cpel.insert(pid);
            }
            let consumer =
                crate::keyspace::types::stream::Consumer { seen_time: seen, active_time: active, pel: cpel };
            if g.consumers.insert(cname, consumer).is_some() {
                return corrupt("duplicate stream consumer");
            }
        }
        if assigned.len() != g.pel.len() {
            return corrupt("group pending entry without a consumer");
        }
        if s.groups.insert(name, g).is_some() {
            return corrupt("duplicate stream group");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::value::{decode_payload, value_type};
    use super::*;
    use crate::keyspace::node::ValueRef;
    use crate::keyspace::types::stream::NodeLimits;
    use crate::keyspace::Value;

    fn sample() -> StreamValue {
        let mut s = StreamValue::default();
        for i in 1..=130u64 {
            let v = i.to_string();
            let pairs: Vec<(&[u8], &[u8])> = if i % 7 == 0 {
                vec![(b"other", b"x"), (b"n", v.as_bytes())]
            } else {
                vec![(b"n", v.as_bytes())]
            };
            s.append(StreamId::new(1000 + i, i % 3), &pairs, NodeLimits::default());
        }
        s.delete_ids(&[StreamId::new(1001, 1), StreamId::new(1050, 2)]);
        let mut g = Group::new(StreamId::new(1003, 0), 3);
        g.create_consumer(b"alice", 5);
        g.create_consumer(b"", 6);
        g.deliver(StreamId::new(1002, 2), b"alice", 7);
        g.deliver(StreamId::new(1003, 0), b"", 8);
        s.groups.insert(Bytes::from("g"), g);
        s
    }

    #[test]
    fn round_trips_at_rdb_10_and_11() {
        let s = sample();
        for version in [9u16, 10, 11] {
            let v = ValueRef::Stream(&s);
            let mut body = vec![value_type(v, version)];
            super::super::value::put_value(&mut body, v, version, version == 11);
            let Ok(Value::Stream(back)) = decode_payload(&body, version) else {
                panic!("v{version} decodes")
            };
            let all = |x: &StreamValue| {
                x.range(StreamId::MIN, StreamId::MAX, false)
                    .map(|e| (e.id, e.fields.len()))
                    .collect::<Vec<_>>()
            };
            assert_eq!(all(&back), all(&s));
            assert_eq!(back.node_count(), s.node_count());
            assert_eq!(back.last_id, s.last_id);
            let (g, h) = (&s.groups[&b"g"[..]], &back.groups[&b"g"[..]]);
            assert_eq!(g.pel, h.pel);
            assert_eq!(g.consumers.keys().collect::<Vec<_>>(), h.consumers.keys().collect::<Vec<_>>());
            // Before RDB 11 a consumer's active time is not stored.
            if version >= 11 {
                assert_eq!(*back, s);
            }
        }
    }

    #[test]
    fn node_fill_counts_bytes_as_valkeys_listpacks() {
        let mut s = sample();
        let big = "v".repeat(300);
        for i in 0..40u64 {
            let n = (i * 1_000_003).to_string();
            s.append(
                StreamId::new(5000 + i, 0),
                &[(b"n", n.as_bytes()), (b"big", big.as_bytes())],
                NodeLimits::default(),
            );
        }
        for b in s.blocks() {
            assert_eq!(b.listpack_bytes(), node_listpack(b).len(), "node {}", b.master);
        }
        // 300-byte values fill a 4096-byte node after a dozen entries, as in Valkey.
        assert!(s.node_count() >= 5, "{} nodes", s.node_count());
    }
}
