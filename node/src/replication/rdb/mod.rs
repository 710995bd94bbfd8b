//! The RDB format, both ways: what a full sync ships, what `SAVE` writes and what `DUMP`
//! payloads hold. Redis 7.0, Valkey 8 and Valkey 9 must load what Shoal writes, and Shoal must
//! load what they write, so this follows their `rdb.c` byte for byte where it matters.
//!
//! - [`cursor`]: lengths, the string encodings (integers, LZF), CRC-64/Jones.
//! - [`compact`]: the packed forms servers write for small collections (listpack, ziplist,
//!   intset, zipmap), decoded with every offset checked.
//! - [`value`]: one value, in every type form a loader meets; the decoder is resumable so a
//!   large collection arriving over a socket is built element by element, never re-parsed.
//! - [`writer`] / [`reader`]: whole files, incrementally in both directions.
//!
//! Shoal writes values only in the plain forms (string, list 1, set 2, hash 4, zset-2 5),
//! which every Redis since 5 and every Valkey loads, converting them to their own compact
//! encodings as they go. It reads every form but streams, module values and hashes whose
//! fields carry TTLs (Valkey 9): Shoal has no such values, so a file loader skips those keys
//! and counts them ([`RdbStats`]), and `RESTORE` refuses them with an error that says so.
//!
//! Versions: Redis 7.0 writes and reads RDB 10, Redis 7.2 and Valkey 7.2-8.1 RDB 11, Valkey
//! 9.0/9.1 RDB 80 under a `VALKEY` magic (`VALKEY080`). Redis 7.0 refuses anything newer than
//! 10, so [`DEFAULT_VERSION`] is 10: the newest every one of them loads. Versions 12-79 are
//! Redis's post-7.2 formats, which Valkey refuses too; so does Shoal.

pub mod compact;
pub mod cursor;
pub mod reader;
pub mod stream;
pub mod value;
pub mod writer;

#[cfg(test)]
mod tests;

pub use cursor::crc64;
pub use reader::{RdbEvent, RdbKey, RdbReader, RdbStats};
pub use value::{decode_payload, Skip};
pub use writer::{save_dbs, RdbOptions, RdbWriter, ReplInfo};

/// The version Shoal writes unless told otherwise: Redis 7.0's, the newest that Redis 7.0,
/// Valkey 8 and Valkey 9 all load.
pub const DEFAULT_VERSION: u16 = 10;
/// The newest `REDIS`-magic version (Redis 7.2, Valkey 8).
pub const REDIS_MAGIC_MAX: u16 = 11;
/// Versions Valkey 9 writes under the `VALKEY` magic (9.0/9.1: 80; 9.2: 81).
pub const VALKEY_VERSIONS: std::ops::RangeInclusive<u16> = 80..=81;

/// Value types (`RDB_TYPE_*`).
pub mod types {
    pub const STRING: u8 = 0;
    pub const LIST: u8 = 1;
    pub const SET: u8 = 2;
    pub const ZSET: u8 = 3;
    pub const HASH: u8 = 4;
    pub const ZSET_2: u8 = 5;
    pub const MODULE_PRE_GA: u8 = 6;
    pub const MODULE_2: u8 = 7;
    pub const HASH_ZIPMAP: u8 = 9;
    pub const LIST_ZIPLIST: u8 = 10;
    pub const SET_INTSET: u8 = 11;
    pub const ZSET_ZIPLIST: u8 = 12;
    pub const HASH_ZIPLIST: u8 = 13;
    pub const LIST_QUICKLIST: u8 = 14;
    pub const STREAM_LISTPACKS: u8 = 15;
    pub const HASH_LISTPACK: u8 = 16;
    pub const ZSET_LISTPACK: u8 = 17;
    pub const LIST_QUICKLIST_2: u8 = 18;
    pub const STREAM_LISTPACKS_2: u8 = 19;
    pub const SET_LISTPACK: u8 = 20;
    pub const STREAM_LISTPACKS_3: u8 = 21;
    /// Valkey 9 (RDB 80): a hash whose fields may carry TTLs. Redis 7.4 gave 22-25 other
    /// meanings, which is why Valkey refuses types past 21 under the `REDIS` magic.
    pub const HASH_2: u8 = 22;
    /// First type number whose meaning differs between Redis and Valkey.
    pub const FOREIGN_MIN: u8 = 22;
}

/// Opcodes (`RDB_OPCODE_*`): special "types" that count down from 255.
pub mod opcodes {
    /// Valkey 9.2: an inline replication command during a forkless save.
    pub const UPDATE: u8 = 242;
    /// Valkey 9: the state of a slot import (atomic slot migration).
    pub const SLOT_IMPORT: u8 = 243;
    pub const SLOT_INFO: u8 = 244;
    pub const FUNCTION2: u8 = 245;
    pub const FUNCTION_PRE_GA: u8 = 246;
    pub const MODULE_AUX: u8 = 247;
    pub const IDLE: u8 = 248;
    pub const FREQ: u8 = 249;
    pub const AUX: u8 = 250;
    pub const RESIZEDB: u8 = 251;
    pub const EXPIRETIME_MS: u8 = 252;
    pub const EXPIRETIME: u8 = 253;
    pub const SELECTDB: u8 = 254;
    pub const EOF: u8 = 255;
}

/// Why RDB data could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RdbError {
    #[error("not an RDB stream: the header is {0:?}")]
    BadMagic(String),
    #[error("RDB format version {0} is not supported")]
    Version(u32),
    #[error("corrupt RDB data: {0}")]
    Corrupt(&'static str),
    #[error("RDB checksum mismatch: the file says {expected:#018x}, the data gives {actual:#018x}")]
    Checksum { expected: u64, actual: u64 },
    #[error("RDB type or opcode {0} is not known")]
    UnknownType(u8),
    #[error("unsupported RDB content: {0}")]
    Unsupported(&'static str),
    #[error("the RDB stream ended before its EOF marker and checksum")]
    Truncated,
}

/// Whether `version` with this magic is one Shoal reads (Valkey's `rdbIsVersionAccepted` in
/// strict mode, plus the Valkey 9 versions).
pub fn version_accepted(version: u32, valkey_magic: bool) -> bool {
    if valkey_magic {
        VALKEY_VERSIONS.contains(&(version.min(u16::MAX as u32) as u16))
    } else {
        (1..=REDIS_MAGIC_MAX as u32).contains(&version)
    }
}
