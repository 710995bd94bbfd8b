//! A whole RDB stream, written incrementally: the caller adds keys one at a time and takes
//! the bytes out in chunks whenever it likes, so the executor can ship a snapshot to a
//! replica in small steps between commands instead of building the whole file first.
//!
//! Layout (as `rdbSaveRio`): magic and version, AUX fields, then per database SELECTDB and
//! RESIZEDB followed by its keys (`[EXPIRETIME_MS] <type> <key> <value>`), then the EOF
//! opcode and the CRC-64 of everything before it (0 when checksums are off, which loaders
//! accept as "not checked").

use bytes::Bytes;

use super::cursor::crc64_update;
use super::opcodes::*;
use super::value::{put_int, put_len, put_str, put_value, value_type};
use super::{RdbError, DEFAULT_VERSION, REDIS_MAGIC_MAX, VALKEY_VERSIONS};
use crate::keyspace::node::ValueRef;
use crate::keyspace::Db;

/// The replication state a full sync announces (`repl-stream-db`, `repl-id`, `repl-offset`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplInfo {
    pub stream_db: u32,
    /// The 40-character replication id.
    pub id: String,
    pub offset: i64,
}

/// How to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RdbOptions {
    /// RDB version: 7-11 (`REDIS` magic) or 80/81 (`VALKEY` magic). Default
    /// [`DEFAULT_VERSION`], the newest Redis 7.0 loads.
    pub version: u16,
    /// LZF-compress strings of 21 bytes or more when it pays (`rdbcompression yes`).
    pub compress: bool,
    /// Write a real checksum (`rdbchecksum yes`); otherwise 0.
    pub checksum: bool,
    pub repl: Option<ReplInfo>,
    /// Extra AUX fields, written after the standard ones.
    pub aux: Vec<(String, String)>,
    /// `ctime` AUX field, Unix seconds.
    pub ctime: i64,
}

impl Default for RdbOptions {
    fn default() -> Self {
        RdbOptions {
            version: DEFAULT_VERSION,
            compress: true,
            checksum: true,
            repl: None,
            aux: Vec::new(),
            ctime: 0,
        }
    }
}

/// The incremental writer.
#[derive(Debug)]
pub struct RdbWriter {
    out: Vec<u8>,
    /// `out[..hashed]` is already in `crc`.
    hashed: usize,
    crc: u64,
    version: u16,
    compress: bool,
    checksum: bool,
    finished: bool,
    keys: u64,
}

impl RdbWriter {
    /// Starts a stream: header and AUX fields. Fails on a version Shoal cannot write.
    pub fn new(opts: &RdbOptions) -> Result<RdbWriter, RdbError> {
        let v = opts.version;
        let valkey = VALKEY_VERSIONS.contains(&v);
        if !(valkey || (7..=REDIS_MAGIC_MAX).contains(&v)) {
            return Err(RdbError::Version(v as u32));
        }
        let mut w = RdbWriter {
            out: Vec::with_capacity(256),
            hashed: 0,
            crc: 0,
            version: v,
            compress: opts.compress,
            checksum: opts.checksum,
            finished: false,
            keys: 0,
        };
        let magic = if valkey { format!("VALKEY{v:03}") } else { format!("REDIS{v:04}") };
        w.out.extend_from_slice(magic.as_bytes());
        if valkey {
            w.aux(b"valkey-ver", crate::VALKEY_VERSION.as_bytes());
        }
        w.aux(b"redis-ver", crate::REDIS_VERSION.as_bytes());
        w.aux_int(b"redis-bits", 64);
        w.aux_int(b"ctime", opts.ctime);
        w.aux_int(b"used-mem", 0);
        if let Some(r) = &opts.repl {
            w.aux_int(b"repl-stream-db", r.stream_db as i64);
            w.aux(b"repl-id", r.id.as_bytes());
            w.aux_int(b"repl-offset", r.offset);
        }
        w.aux_int(b"aof-base", 0);
        for (k, v) in &opts.aux {
            w.aux(k.as_bytes(), v.as_bytes());
        }
        Ok(w)
    }

    fn aux(&mut self, key: &[u8], value: &[u8]) {
        self.out.push(AUX);
        put_str(&mut self.out, key, false);
        put_str(&mut self.out, value, false);
    }

    fn aux_int(&mut self, key: &[u8], value: i64) {
        self.out.push(AUX);
        put_str(&mut self.out, key, false);
        put_int(&mut self.out, value);
    }

    /// A function library (FUNCTION2: its code, as FUNCTION LOAD takes it), before the data.
    pub fn function(&mut self, code: &[u8]) {
        self.out.push(FUNCTION2);
        put_str(&mut self.out, code, false);
    }

    /// Starts database `db`, with the RESIZEDB hint (keys, keys with a TTL).
    pub fn select_db(&mut self, db: u32, keys: u64, expires: u64) {
        self.out.push(SELECTDB);
        put_len(&mut self.out, db as u64);
        self.out.push(RESIZEDB);
        put_len(&mut self.out, keys);
        put_len(&mut self.out, expires);
    }

    /// Adds a key with its absolute expiry (Unix ms), in the current database.
    pub fn write_key(&mut self, key: &[u8], value: ValueRef<'_>, expire_ms: Option<i64>) {
        if let Some(t) = expire_ms {
            self.out.push(EXPIRETIME_MS);
            self.out.extend_from_slice(&t.to_le_bytes());
        }
        self.out.push(value_type(value, self.version));
        put_str(&mut self.out, key, false);
        put_value(&mut self.out, value, self.version, self.compress);
        self.keys += 1;
    }

    /// Keys written so far.
    pub fn keys(&self) -> u64 {
        self.keys
    }

    /// Bytes produced and not taken yet.
    pub fn pending(&self) -> usize {
        self.out.len()
    }

    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Writes the EOF opcode and the checksum. Further keys would corrupt the stream, so
    /// calling [`write_key`](Self::write_key) after this is a caller bug (the bytes are
    /// still produced).
    pub fn finish(&mut self) {
        if self.finished {
            return;
        }
        self.out.push(EOF);
        self.hash();
        let crc = if self.checksum { self.crc } else { 0 };
        self.out.extend_from_slice(&crc.to_le_bytes());
        self.hashed = self.out.len();
        self.finished = true;
    }

    fn hash(&mut self) {
        if self.checksum && !self.finished {
            self.crc = crc64_update(self.crc, &self.out[self.hashed..]);
        }
        self.hashed = self.out.len();
    }

    /// Up to `max` bytes of output, `None` when nothing is pending.
    pub fn take_chunk(&mut self, max: usize) -> Option<Bytes> {
        if self.out.is_empty() || max == 0 {
            return None;
        }
        self.hash();
        let n = max.min(self.out.len());
        let rest = self.out.split_off(n);
        let chunk = std::mem::replace(&mut self.out, rest);
        self.hashed = self.out.len();
        Some(Bytes::from(chunk))
    }

    /// Everything pending.
    pub fn take_all(&mut self) -> Bytes {
        self.hash();
        self.hashed = 0;
        Bytes::from(std::mem::take(&mut self.out))
    }
}

/// One bounded step of writing `db`'s keys: visits about `budget` keys from `cursor` (0
/// starts), skips keys expired at `now_ms`, and returns the next cursor (0 when done). Each
/// key present for the whole walk is written exactly once (the table's SCAN guarantee);
/// keys written to in between are the caller's to forward.
pub fn write_db_step(w: &mut RdbWriter, db: &mut Db, cursor: u64, budget: usize, now_ms: i64) -> u64 {
    // `i64::MIN`: the scan itself expires nothing, so the table does not change under it.
    db.scan(cursor, budget, i64::MIN, |k, node| {
        let expire = node.expire_at();
        if expire.is_none_or(|t| t > now_ms) {
            w.write_key(k, node.value(), expire);
        }
    })
}

/// A whole file of the given databases (index = position), as `SAVE` would write it.
pub fn save_dbs(dbs: &mut [Db], opts: &RdbOptions, now_ms: i64) -> Result<Vec<u8>, RdbError> {
    let mut w = RdbWriter::new(opts)?;
    let mut out = Vec::new();
    for (i, db) in dbs.iter_mut().enumerate() {
        if db.is_empty() {
            continue;
        }
        w.select_db(i as u32, db.len() as u64, db.volatile_len() as u64);
        let mut cursor = 0;
        loop {
            cursor = write_db_step(&mut w, db, cursor, 1024, now_ms);
            out.extend_from_slice(&w.take_all());
            if cursor == 0 {
                break;
            }
        }
    }
    w.finish();
    out.extend_from_slice(&w.take_all());
    Ok(out)
}
