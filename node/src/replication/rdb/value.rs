//! One value: written in the plain RDB forms, read in every form a loader meets.
//!
//! The decoder is a small state machine fed through a [`Cursor`]: each *unit* (a string, a
//! blob, one collection element, one quicklist node) is read whole or not at all, so when the
//! input ends mid-value the file reader keeps the collection built so far and resumes at the
//! unit that did not fit. A `DUMP` payload goes through the same code with all of its input.

use super::compact::{self, Entry};
use super::cursor::{atomic, corrupt, crc64, lzf_compress, Cursor, Fail, RStr};
use super::types::*;
use super::RdbError;
use crate::keyspace::node::ValueRef;
use crate::keyspace::types::{HashValue, ListValue, SetValue, ZSetValue};
use crate::keyspace::Value;

/// Why a key was read but not loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Skip {
    /// An empty collection (old servers could save them; Valkey skips them too).
    Empty,
    /// A module value.
    Module,
}

impl Skip {
    pub fn what(self) -> &'static str {
        match self {
            Skip::Empty => "empty collection",
            Skip::Module => "module values are not supported",
        }
    }
}

/// What reading one value produced.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    Value(Value),
    Skipped(Skip),
}

// ---------------------------------------------------------------------------------------
// Writing

/// Strings at least this long are tried with LZF when compression is on (Valkey's rule).
const COMPRESS_MIN: usize = 21;

pub fn put_len(out: &mut Vec<u8>, len: u64) {
    if len < 1 << 6 {
        out.push(len as u8);
    } else if len < 1 << 14 {
        out.push(0x40 | (len >> 8) as u8);
        out.push(len as u8);
    } else if len <= u32::MAX as u64 {
        out.push(0x80);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&len.to_be_bytes());
    }
}

/// A string, LZF-compressed when `compress` and it pays, as `rdbSaveRawString`.
pub fn put_str(out: &mut Vec<u8>, s: &[u8], compress: bool) {
    if compress && s.len() >= COMPRESS_MIN {
        if let Some(c) = lzf_compress(s) {
            out.push(0xc0 | super::cursor::ENC_LZF);
            put_len(out, c.len() as u64);
            put_len(out, s.len() as u64);
            out.extend_from_slice(&c);
            return;
        }
    }
    put_len(out, s.len() as u64);
    out.extend_from_slice(s);
}

/// An integer string in the smallest RDB integer encoding, or as text past 32 bits.
pub fn put_int(out: &mut Vec<u8>, n: i64) {
    if let Ok(n) = i8::try_from(n) {
        out.extend_from_slice(&[0xc0, n as u8]);
    } else if let Ok(n) = i16::try_from(n) {
        out.push(0xc1);
        out.extend_from_slice(&n.to_le_bytes());
    } else if let Ok(n) = i32::try_from(n) {
        out.push(0xc2);
        out.extend_from_slice(&n.to_le_bytes());
    } else {
        put_str(out, itoa::Buffer::new().format(n).as_bytes(), false);
    }
}

/// The RDB type byte `put_value` writes for `v`. Versions before 8 have no binary scores,
/// so sorted sets go out as `ZSET` (3) there.
pub fn value_type(v: ValueRef<'_>, version: u16) -> u8 {
    match v {
        ValueRef::Str(_) | ValueRef::Int(_) => STRING,
        ValueRef::List(_) => LIST,
        ValueRef::Set(_) => SET,
        // Field TTLs exist only in Valkey 9's format; older versions get the plain hash.
        ValueRef::Hash(h) if h.has_field_ttls() && super::VALKEY_VERSIONS.contains(&version) => HASH_2,
        ValueRef::Hash(_) => HASH,
        ValueRef::ZSet(_) if version < 8 => ZSET,
        ValueRef::ZSet(_) => ZSET_2,
        ValueRef::Stream(_) => super::stream::rdb_type(version),
    }
}

/// The value body (no type byte) in the plain form of [`value_type`].
pub fn put_value(out: &mut Vec<u8>, v: ValueRef<'_>, version: u16, compress: bool) {
    match v {
        ValueRef::Int(n) => put_int(out, n),
        ValueRef::Str(s) => put_str(out, s, compress),
        ValueRef::Hash(h) => {
            let with_ttls = value_type(v, version) == HASH_2;
            put_len(out, h.len() as u64);
            for (f, v) in h.iter() {
                put_str(out, f, compress);
                put_str(out, v, compress);
                if with_ttls {
                    // Each field's deadline in unix ms, -1 for none (Valkey 9's `HASH_2`).
                    out.extend_from_slice(&h.field_expiry(f).unwrap_or(-1).to_le_bytes());
                }
            }
        }
        ValueRef::List(l) => {
            put_len(out, l.len() as u64);
            for v in l.iter() {
                put_str(out, v, compress);
            }
        }
        ValueRef::Set(set) => {
            put_len(out, set.len() as u64);
            for m in set.iter() {
                put_str(out, m, compress);
            }
        }
        ValueRef::ZSet(z) => {
            put_len(out, z.len() as u64);
            for (m, score) in z.iter() {
                put_str(out, m, compress);
                if version < 8 {
                    put_old_score(out, score);
                } else {
                    out.extend_from_slice(&score.to_le_bytes());
                }
            }
        }
        ValueRef::Stream(x) => super::stream::put_stream(out, x, super::stream::rdb_type(version), compress),
    }
}

/// A `ZSET` (3) score: a length byte with 253/254/255 for NaN/+inf/-inf, else text.
fn put_old_score(out: &mut Vec<u8>, score: f64) {
    if score.is_infinite() {
        out.push(if score > 0.0 { 254 } else { 255 });
    } else {
        // `{:?}` prints the shortest text that reads back as the same double ("%.17g" would
        // too); it is always under 253 bytes.
        let s = format!("{score:?}");
        out.push(s.len() as u8);
        out.extend_from_slice(s.as_bytes());
    }
}

// ---------------------------------------------------------------------------------------
// Reading

/// A collection being filled by plain-form elements.
#[derive(Debug)]
enum Acc {
    List(ListValue),
    Set(SetValue),
    Hash { h: HashValue, volatile: bool },
    ZSet(ZSetValue),
}

#[derive(Debug)]
enum Phase {
    Start,
    /// Plain elements left to read into the collection.
    Elements {
        left: u64,
        acc: Acc,
    },
    /// Quicklist nodes left.
    Nodes {
        left: u64,
        list: ListValue,
    },
    /// Stream listpacks left, then the stream's metadata and consumer groups.
    Stream {
        left: u64,
        acc: Box<crate::keyspace::types::StreamValue>,
    },
    Finished,
}

/// Reads one value of RDB type `rtype`, resumably.
#[derive(Debug)]
pub struct ValueDecoder {
    rtype: u8,
    phase: Phase,
}

impl ValueDecoder {
    /// A decoder for a value of type `rtype`; `valkey` says whether the stream is Valkey's
    /// (types past 21 mean different things to Redis).
    pub fn new(rtype: u8, valkey: bool) -> Result<ValueDecoder, RdbError> {
        match rtype {
            STRING..=ZSET_2 | MODULE_2 | HASH_ZIPMAP..=STREAM_LISTPACKS_3 => {}
            HASH_2 if valkey => {}
            MODULE_PRE_GA => return Err(RdbError::Unsupported("pre-release module values (RDB type 6)")),
            _ => return Err(RdbError::UnknownType(rtype)),
        }
        Ok(ValueDecoder { rtype, phase: Phase::Start })
    }

    /// Reads as many units as `cur` holds. `Ok` once the value is complete;
    /// `Err(Fail::Incomplete)` with `cur` at the first unit that did not fit.
    pub fn step(&mut self, cur: &mut Cursor<'_>) -> Result<Decoded, Fail> {
        loop {
            match &mut self.phase {
                Phase::Start => {
                    if let Some(done) = atomic(cur, |c| self.start(c))? {
                        self.phase = Phase::Finished;
                        return Ok(done);
                    }
                }
                Phase::Elements { left, acc } => {
                    if *left == 0 {
                        let acc = std::mem::replace(&mut self.phase, Phase::Finished);
                        return Ok(match acc {
                            Phase::Elements { acc, .. } => finish(acc),
                            _ => Decoded::Skipped(Skip::Empty),
                        });
                    }
                    atomic(cur, |c| element(self.rtype, acc, c))?;
                    *left -= 1;
                }
                Phase::Nodes { left, list } => {
                    if *left == 0 {
                        let list = std::mem::take(list);
                        self.phase = Phase::Finished;
                        return Ok(if list.is_empty() {
                            Decoded::Skipped(Skip::Empty)
                        } else {
                            Decoded::Value(Value::List(Box::new(list)))
                        });
                    }
                    let v2 = self.rtype == LIST_QUICKLIST_2;
                    atomic(cur, |c| node(v2, list, c))?;
                    *left -= 1;
                }
                Phase::Stream { left, acc } => {
                    if *left == 0 {
                        let rtype = self.rtype;
                        atomic(cur, |c| super::stream::read_rest(rtype, c, acc))?;
                        let acc = std::mem::take(acc);
                        self.phase = Phase::Finished;
                        return Ok(Decoded::Value(Value::Stream(acc)));
                    }
                    atomic(cur, |c| {
                        let key = c.bytes()?;
                        let blob = c.bytes()?;
                        super::stream::read_node(acc, &key, &blob).map_err(Fail::Error)
                    })?;
                    *left -= 1;
                }
                Phase::Finished => return corrupt("value read twice"),
            }
        }
    }

    /// The first unit: a whole value for strings and packed forms, else the count.
    fn start(&mut self, c: &mut Cursor<'_>) -> Result<Option<Decoded>, Fail> {
        let rtype = self.rtype;
        let value = match rtype {
            STRING => match c.string()? {
                RStr::Int(n) => Value::Int(n),
                RStr::Bytes(b) => Value::from_bytes(&b),
            },
            LIST | SET | ZSET | HASH | ZSET_2 | HASH_2 => {
                let left = c.plain_len()?;
                let acc = match rtype {
                    LIST => Acc::List(ListValue::default()),
                    SET => Acc::Set(SetValue::default()),
                    HASH | HASH_2 => Acc::Hash { h: HashValue::default(), volatile: false },
                    _ => Acc::ZSet(ZSetValue::default()),
                };
                self.phase = Phase::Elements { left, acc };
                return Ok(None);
            }
            LIST_QUICKLIST | LIST_QUICKLIST_2 => {
                let left = c.plain_len()?;
                self.phase = Phase::Nodes { left, list: ListValue::default() };
                return Ok(None);
            }
            STREAM_LISTPACKS | STREAM_LISTPACKS_2 | STREAM_LISTPACKS_3 => {
                let left = c.plain_len()?;
                self.phase = Phase::Stream { left, acc: Box::default() };
                return Ok(None);
            }
            MODULE_2 => {
                c.plain_len()?; // module id
                skip_module_body(c)?;
                return Ok(Some(Decoded::Skipped(Skip::Module)));
            }
            _ => {
                let blob = c.bytes()?;
                return Ok(Some(packed(rtype, &blob)?));
            }
        };
        Ok(Some(Decoded::Value(value)))
    }
}

fn finish(acc: Acc) -> Decoded {
    let value = match acc {
        Acc::List(l) if !l.is_empty() => Value::List(Box::new(l)),
        Acc::Set(s) if !s.is_empty() => Value::Set(Box::new(s)),
        Acc::Hash { h, .. } if !h.is_empty() => Value::Hash(Box::new(h)),
        Acc::ZSet(z) if !z.is_empty() => Value::ZSet(Box::new(z)),
        _ => return Decoded::Skipped(Skip::Empty),
    };
    Decoded::Value(value)
}

fn dup() -> Fail {
    Fail::Error(RdbError::Corrupt("duplicate member or field"))
}

fn check_score(s: f64) -> Result<f64, Fail> {
    if s.is_nan() {
        return corrupt("NaN score");
    }
    Ok(s)
}

/// One plain element (a hash's field and value, a sorted set's member and score).
fn element(rtype: u8, acc: &mut Acc, c: &mut Cursor<'_>) -> Result<(), Fail> {
    match acc {
        Acc::List(l) => l.push_back(&c.bytes()?),
        Acc::Set(s) => {
            if !s.insert_member(&c.bytes()?) {
                return Err(dup());
            }
        }
        Acc::Hash { h, volatile } => {
            let f = c.bytes()?;
            let v = c.bytes()?;
            // Valkey 9's HASH_2: each field's deadline in unix ms, -1 for none.
            let at = if rtype == HASH_2 { c.i64_le()? } else { -1 };
            if !h.insert_pair(&f, &v) {
                return Err(dup());
            }
            if at != -1 {
                h.set_field_expiry(&f, at);
                *volatile = true;
            }
        }
        Acc::ZSet(z) => {
            let m = c.bytes()?;
            let score = if rtype == ZSET {
                match c.byte()? {
                    253 => return corrupt("NaN score"),
                    254 => f64::INFINITY,
                    255 => f64::NEG_INFINITY,
                    n => compact::parse_score(c.take(n as usize)?).ok_or(RdbError::Corrupt("bad score"))?,
                }
            } else {
                c.f64_le()?
            };
            if !z.insert_scored(&m, check_score(score)?) {
                return Err(dup());
            }
        }
    }
    Ok(())
}

/// One quicklist node: a ziplist (v1), or a container kind then a listpack or a single
/// plain element (v2).
fn node(v2: bool, list: &mut ListValue, c: &mut Cursor<'_>) -> Result<(), Fail> {
    let container = if v2 { c.plain_len()? } else { 2 };
    let blob = c.bytes()?;
    match (v2, container) {
        (_, 1) => list.push_back(&blob),
        (false, _) => compact::ziplist(&blob)?.into_iter().for_each(|e| list.push_back(&e.to_vec())),
        (true, 2) => compact::listpack(&blob)?.into_iter().for_each(|e| list.push_back(&e.to_vec())),
        _ => return corrupt("unknown quicklist container"),
    }
    Ok(())
}

/// A value held in one packed blob.
fn packed(rtype: u8, blob: &[u8]) -> Result<Decoded, Fail> {
    let entries = match rtype {
        SET_INTSET => {
            let mut s = SetValue::default();
            for n in compact::intset(blob)? {
                s.insert_member(itoa::Buffer::new().format(n).as_bytes());
            }
            return Ok(finish(Acc::Set(s)));
        }
        HASH_ZIPMAP => {
            let mut h = HashValue::default();
            for (f, v) in compact::zipmap(blob)? {
                if !h.insert_pair(f, v) {
                    return Err(dup());
                }
            }
            return Ok(finish(Acc::Hash { h, volatile: false }));
        }
        LIST_ZIPLIST | ZSET_ZIPLIST | HASH_ZIPLIST => compact::ziplist(blob)?,
        HASH_LISTPACK | ZSET_LISTPACK | SET_LISTPACK => compact::listpack(blob)?,
        _ => return Err(RdbError::UnknownType(rtype).into()),
    };
    let acc = match rtype {
        LIST_ZIPLIST => {
            let mut l = ListValue::default();
            entries.iter().for_each(|e| l.push_back(&e.to_vec()));
            Acc::List(l)
        }
        SET_LISTPACK => {
            let mut s = SetValue::default();
            for e in entries {
                if !s.insert_member(&e.to_vec()) {
                    return Err(dup());
                }
            }
            Acc::Set(s)
        }
        HASH_ZIPLIST | HASH_LISTPACK => {
            let mut h = HashValue::default();
            for pair in pairs(&entries)? {
                if !h.insert_pair(&pair.0.to_vec(), &pair.1.to_vec()) {
                    return Err(dup());
                }
            }
            Acc::Hash { h, volatile: false }
        }
        _ => {
            let mut z = ZSetValue::default();
            for (m, s) in pairs(&entries)? {
                if !z.insert_scored(&m.to_vec(), s.score()?) {
                    return Err(dup());
                }
            }
            Acc::ZSet(z)
        }
    };
    Ok(finish(acc))
}

fn pairs<'a, 'b>(
    entries: &'b [Entry<'a>],
) -> Result<impl Iterator<Item = (Entry<'a>, Entry<'a>)> + 'b, Fail> {
    if !entries.len().is_multiple_of(2) {
        return corrupt("odd number of entries in a packed hash or sorted set");
    }
    Ok(entries.chunks_exact(2).map(|p| (p[0], p[1])))
}

/// A module value's body after its id: typed fields until the EOF opcode
/// (`rdbLoadCheckModuleValue`).
fn skip_module_body(c: &mut Cursor<'_>) -> Result<(), Fail> {
    loop {
        match c.plain_len()? {
            0 => return Ok(()),
            1 | 2 => drop(c.plain_len()?),
            3 => drop(c.take(4)?),
            4 => drop(c.take(8)?),
            5 => c.skip_string()?,
            _ => return corrupt("unknown module field opcode"),
        }
    }
}

/// `MODULE_AUX`'s body after the opcode: module id, `when` opcode and value, then fields.
pub fn skip_module_aux(c: &mut Cursor<'_>) -> Result<(), Fail> {
    c.plain_len()?;
    if c.plain_len()? != 2 {
        return corrupt("bad module aux when-opcode");
    }
    c.plain_len()?;
    skip_module_body(c)
}

/// Reads a whole `<type><value>` body (a DUMP payload without its footer) of RDB `version`.
pub fn decode_payload(body: &[u8], version: u16) -> Result<Value, RdbError> {
    let mut c = Cursor::new(body);
    let rtype = match c.byte() {
        Ok(t) => t,
        Err(_) => return Err(RdbError::Truncated),
    };
    let mut dec = ValueDecoder::new(rtype, version >= *super::VALKEY_VERSIONS.start())?;
    let decoded = match dec.step(&mut c) {
        Ok(d) => d,
        Err(Fail::Incomplete) => return Err(RdbError::Truncated),
        Err(Fail::Error(e)) => return Err(e),
    };
    if !c.is_empty() {
        return Err(RdbError::Corrupt("bytes after the value"));
    }
    match decoded {
        Decoded::Value(v) => Ok(v),
        Decoded::Skipped(Skip::Empty) => Err(RdbError::Corrupt("empty collection")),
        Decoded::Skipped(s) => Err(RdbError::Unsupported(s.what())),
    }
}

/// The RDB version a payload of `v` needs: `version`, unless `v` is a hash with field TTLs,
/// which only Valkey 9's version can carry (older servers could not load it anyway).
pub fn payload_version(v: ValueRef<'_>, version: u16) -> u16 {
    match v {
        ValueRef::Hash(h) if h.has_field_ttls() && !super::VALKEY_VERSIONS.contains(&version) => {
            *super::VALKEY_VERSIONS.start()
        }
        _ => version,
    }
}

/// A DUMP payload: `<type><value><version u16 LE><CRC-64 u64 LE>`. A hash with field TTLs
/// is written as Valkey 9 does (`HASH_2`, RDB 80) whatever `version` says.
pub fn encode_payload(v: ValueRef<'_>, version: u16) -> Vec<u8> {
    let version = payload_version(v, version);
    let mut out = vec![value_type(v, version)];
    put_value(&mut out, v, version, false);
    out.extend_from_slice(&version.to_le_bytes());
    let crc = crc64(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}
