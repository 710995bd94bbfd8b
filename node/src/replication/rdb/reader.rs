//! A whole RDB stream, read incrementally: bytes are fed as they arrive from a socket (any
//! split point) and keys come out one by one, so a replica can load a full sync without
//! holding the file and a primary's snapshot never has to be re-parsed from the start.
//!
//! Opcodes follow Valkey 9's loader: AUX fields are reported, RESIZEDB hints too, IDLE/FREQ
//! and SLOT_INFO are read and ignored, functions (FUNCTION2) and module aux data are skipped
//! and counted, and the pre-release function format, slot-import state and forkless-save
//! updates are refused with an error that names them. The CRC-64 trailer is verified (0
//! means the writer had checksums off). Nothing after the trailer is consumed: in a
//! replication stream the command stream follows, see [`RdbReader::take_remaining`].

use bytes::Bytes;

use super::cursor::{atomic, corrupt, crc64_update, Cursor, Fail};
use super::value::{skip_module_aux, Decoded, Skip, ValueDecoder};
use super::{opcodes::*, types, version_accepted, RdbError};
use crate::keyspace::Value;

/// A key read from the stream.
#[derive(Debug, Clone, PartialEq)]
pub struct RdbKey {
    pub db: u32,
    pub key: Bytes,
    pub value: Value,
    /// Absolute expiry, Unix milliseconds.
    pub expire_ms: Option<i64>,
}

/// What the reader found next.
#[derive(Debug, Clone, PartialEq)]
pub enum RdbEvent {
    /// An AUX field (`redis-ver`, `repl-id`, `repl-offset`, ...), values as text.
    Aux {
        key: Bytes,
        value: Bytes,
    },
    /// A RESIZEDB hint for the database that follows.
    ResizeDb {
        db: u32,
        keys: u64,
        expires: u64,
    },
    Key(RdbKey),
    /// A key that was read but cannot be loaded (see [`Skip`]); also counted in the stats.
    Skipped {
        db: u32,
        key: Bytes,
        reason: Skip,
    },
    /// A function library's code (FUNCTION2), as FUNCTION LOAD takes it.
    Function(Bytes),
    /// The EOF marker and a valid checksum: the stream is complete.
    End,
}

/// Counts of what was read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RdbStats {
    pub keys: u64,
    pub skipped_empty: u64,
    pub skipped_modules: u64,
    /// FUNCTION2 libraries read (handed on as [`RdbEvent::Function`]; a file loader that
    /// has no use for them skips them).
    pub functions_skipped: u64,
    pub module_aux_skipped: u64,
    /// Bytes consumed, header to trailer.
    pub bytes: u64,
}

/// What one body unit asks the reader to do.
enum Op {
    Next,
    Event(RdbEvent),
    /// The EOF opcode: end the round so the checksum covers it, then read the trailer.
    Eof,
}

#[derive(Debug)]
enum State {
    Header,
    Body,
    Value { key: Bytes, dec: Box<ValueDecoder> },
    Checksum,
    Done,
}

/// The incremental reader. Feed bytes with [`feed`](Self::feed), then call
/// [`next_event`](Self::next_event) until it returns `Ok(None)` (more input needed) or
/// [`RdbEvent::End`].
#[derive(Debug)]
pub struct RdbReader {
    buf: Vec<u8>,
    pos: usize,
    /// Do not retry before the buffer holds this many bytes (what the last attempt lacked).
    need: usize,
    state: State,
    crc: u64,
    version: u32,
    valkey: bool,
    db: u32,
    expire: Option<i64>,
    stats: RdbStats,
    failed: Option<RdbError>,
}

impl Default for RdbReader {
    fn default() -> Self {
        RdbReader::new()
    }
}

impl RdbReader {
    pub fn new() -> Self {
        RdbReader {
            buf: Vec::new(),
            pos: 0,
            need: 0,
            state: State::Header,
            crc: 0,
            version: 0,
            valkey: false,
            db: 0,
            expire: None,
            stats: RdbStats::default(),
            failed: None,
        }
    }

    /// Appends input.
    pub fn feed(&mut self, data: &[u8]) {
        if self.pos > 0 && !matches!(self.state, State::Done) {
            // Drop what was consumed; what stays is at most the unit in progress.
            self.buf.drain(..self.pos);
            self.need = self.need.saturating_sub(self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// The RDB version from the header (0 before it was read).
    pub fn version(&self) -> u32 {
        self.version
    }

    pub fn stats(&self) -> &RdbStats {
        &self.stats
    }

    /// True once the trailer was read and verified.
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// Errors with [`RdbError::Truncated`] unless the whole stream was read (call at end of
    /// input).
    pub fn finish(&self) -> Result<(), RdbError> {
        match (&self.failed, self.is_done()) {
            (Some(e), _) => Err(e.clone()),
            (None, true) => Ok(()),
            (None, false) => Err(RdbError::Truncated),
        }
    }

    /// Bytes fed after the end of the RDB stream (the replication stream that follows it).
    pub fn take_remaining(&mut self) -> Vec<u8> {
        if !self.is_done() {
            return Vec::new();
        }
        let rest = self.buf.split_off(self.pos.min(self.buf.len()));
        self.buf.clear();
        self.pos = 0;
        rest
    }

    /// The next event, `Ok(None)` when more input is needed (or after [`RdbEvent::End`]).
    /// After an error the reader stays failed.
    pub fn next_event(&mut self) -> Result<Option<RdbEvent>, RdbError> {
        loop {
            if let Some(e) = &self.failed {
                return Err(e.clone());
            }
            if self.buf.len() < self.need || self.is_done() {
                return Ok(None);
            }
            let buf = std::mem::take(&mut self.buf);
            let mut cur = Cursor::new(&buf[self.pos..]);
            let trailer = matches!(self.state, State::Checksum);
            let result = self.advance(&mut cur);
            let (used, short) = (cur.pos, cur.short);
            if !trailer {
                // The checksum covers every byte before it, EOF opcode included.
                self.crc = crc64_update(self.crc, &buf[self.pos..self.pos + used]);
            }
            self.stats.bytes += used as u64;
            let base = self.pos;
            self.pos += used;
            self.buf = buf;
            match result {
                Ok(Some(ev)) => return Ok(Some(ev)),
                // The EOF opcode: the CRC is now complete, read the trailer.
                Ok(None) => continue,
                Err(Fail::Incomplete) => {
                    self.need = base + short;
                    return Ok(None);
                }
                Err(Fail::Error(e)) => {
                    self.failed = Some(e.clone());
                    return Err(e);
                }
            }
        }
    }

    /// Reads units until one yields an event. The CRC is updated by the caller over exactly
    /// the bytes consumed, so every state transition here happens only for complete units.
    fn advance(&mut self, cur: &mut Cursor<'_>) -> Result<Option<RdbEvent>, Fail> {
        loop {
            match &mut self.state {
                State::Header => {
                    let head = cur.take(9)?;
                    let (valkey, digits) = if head.starts_with(b"REDIS") {
                        (false, &head[5..])
                    } else if head.starts_with(b"VALKEY") {
                        (true, &head[6..])
                    } else {
                        return Err(RdbError::BadMagic(String::from_utf8_lossy(head).into_owned()).into());
                    };
                    let version = std::str::from_utf8(digits).ok().and_then(|d| d.parse::<u32>().ok());
                    let version =
                        version.ok_or(RdbError::BadMagic(String::from_utf8_lossy(head).into_owned()))?;
                    if !version_accepted(version, valkey) {
                        return Err(RdbError::Version(version).into());
                    }
                    self.version = version;
                    self.valkey = valkey;
                    self.state = State::Body;
                }
                State::Body => match atomic(cur, |c| self.opcode(c))? {
                    Op::Next => {}
                    Op::Event(ev) => return Ok(Some(ev)),
                    Op::Eof => return Ok(None),
                },
                State::Value { dec, .. } => {
                    let decoded = dec.step(cur)?;
                    let State::Value { key, .. } = std::mem::replace(&mut self.state, State::Body) else {
                        return corrupt("reader state");
                    };
                    let expire_ms = self.expire.take();
                    let db = self.db;
                    return Ok(Some(match decoded {
                        Decoded::Value(value) => {
                            self.stats.keys += 1;
                            RdbEvent::Key(RdbKey { db, key, value, expire_ms })
                        }
                        Decoded::Skipped(reason) => {
                            *match reason {
                                Skip::Empty => &mut self.stats.skipped_empty,
                                Skip::Module => &mut self.stats.skipped_modules,
                            } += 1;
                            RdbEvent::Skipped { db, key, reason }
                        }
                    }));
                }
                State::Checksum => {
                    let expected = cur.i64_le()? as u64;
                    if expected != 0 && expected != self.crc {
                        return Err(RdbError::Checksum { expected, actual: self.crc }.into());
                    }
                    self.state = State::Done;
                    return Ok(Some(RdbEvent::End));
                }
                State::Done => return Ok(None),
            }
        }
    }

    /// One opcode with its arguments, or a key's type and name (the value follows).
    fn opcode(&mut self, c: &mut Cursor<'_>) -> Result<Op, Fail> {
        let op = c.byte()?;
        match op {
            EOF => {
                if self.version >= 5 {
                    // Returning ends the round, so the caller hashes the EOF byte before the
                    // trailer is read.
                    self.state = State::Checksum;
                    return Ok(Op::Eof);
                }
                self.state = State::Done;
                return Ok(Op::Event(RdbEvent::End));
            }
            SELECTDB => {
                self.db = u32::try_from(c.plain_len()?).map_err(|_| RdbError::Corrupt("database index"))?;
            }
            RESIZEDB => {
                let keys = c.plain_len()?;
                let expires = c.plain_len()?;
                return Ok(Op::Event(RdbEvent::ResizeDb { db: self.db, keys, expires }));
            }
            EXPIRETIME_MS => self.expire = Some(c.i64_le()?),
            EXPIRETIME => self.expire = Some(c.u32_le()? as i32 as i64 * 1000),
            IDLE => drop(c.plain_len()?),
            FREQ => drop(c.byte()?),
            SLOT_INFO => {
                for _ in 0..3 {
                    c.plain_len()?;
                }
            }
            AUX => {
                let key = Bytes::from(c.bytes()?.into_owned());
                let value = Bytes::from(c.bytes()?.into_owned());
                return Ok(Op::Event(RdbEvent::Aux { key, value }));
            }
            MODULE_AUX => {
                skip_module_aux(c)?;
                self.stats.module_aux_skipped += 1;
            }
            FUNCTION2 => {
                let code = Bytes::from(c.bytes()?.into_owned());
                self.stats.functions_skipped += 1;
                return Ok(Op::Event(RdbEvent::Function(code)));
            }
            FUNCTION_PRE_GA => return Err(RdbError::Unsupported("pre-release (7.0 RC) function data").into()),
            SLOT_IMPORT => return Err(RdbError::Unsupported("Valkey slot-import state (opcode 243)").into()),
            UPDATE => return Err(RdbError::Unsupported("Valkey forkless-save updates (opcode 242)").into()),
            t if !self.valkey && (types::FOREIGN_MIN..UPDATE).contains(&t) => {
                // Redis 7.4+ types under a REDIS magic: another format's meaning (as Valkey).
                return Err(RdbError::UnknownType(t).into());
            }
            t => {
                let dec = ValueDecoder::new(t, self.valkey)?;
                let key = Bytes::from(c.bytes()?.into_owned());
                self.state = State::Value { key, dec: Box::new(dec) };
            }
        }
        Ok(Op::Next)
    }
}
