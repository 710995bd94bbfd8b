//! Stored values. One enum for every data type so a key's type is a match, not a lookup;
//! strings that are canonical integers are kept as `Int`, as Valkey's `int` encoding does.

use bytes::Bytes;

use super::types::{HashValue, ListValue, SetValue, StreamValue, ZSetValue};

/// A value in the keyspace.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A string that is not a canonical 64-bit integer.
    Str(Bytes),
    /// A string that is a canonical 64-bit integer (`OBJECT ENCODING` says `int`).
    Int(i64),
    Hash(Box<HashValue>),
    List(Box<ListValue>),
    Set(Box<SetValue>),
    ZSet(Box<ZSetValue>),
    Stream(Box<StreamValue>),
}

/// Strings up to this length report `embstr` encoding, as in Valkey.
pub const EMBSTR_MAX: usize = 44;

impl Value {
    /// Builds a string value, choosing the integer encoding when the bytes are canonical.
    /// A borrowed view, the form the keyspace hands out.
    pub fn view(&self) -> crate::keyspace::node::ValueRef<'_> {
        use crate::keyspace::node::ValueRef;
        match self {
            Value::Str(s) => ValueRef::Str(s),
            Value::Int(n) => ValueRef::Int(*n),
            Value::Hash(h) => ValueRef::Hash(h),
            Value::List(l) => ValueRef::List(l),
            Value::Set(s) => ValueRef::Set(s),
            Value::ZSet(z) => ValueRef::ZSet(z),
            Value::Stream(x) => ValueRef::Stream(x),
        }
    }

    pub fn from_bytes(b: &[u8]) -> Value {
        if b.len() <= 20 {
            if let Some(n) = crate::util::parse_i64(b) {
                return Value::Int(n);
            }
        }
        Value::Str(Bytes::copy_from_slice(b))
    }

    /// `TYPE` name.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) | Value::Int(_) => "string",
            Value::Hash(_) => "hash",
            Value::List(_) => "list",
            Value::Set(_) => "set",
            Value::ZSet(_) => "zset",
            Value::Stream(_) => "stream",
        }
    }

    /// `OBJECT ENCODING` name.
    pub fn encoding(&self) -> &'static str {
        match self {
            Value::Int(_) => "int",
            Value::Str(s) if s.len() <= EMBSTR_MAX => "embstr",
            Value::Str(_) => "raw",
            Value::Hash(h) => h.encoding(),
            Value::List(l) => l.encoding(),
            Value::Set(s) => s.encoding(),
            Value::ZSet(z) => z.encoding(),
            Value::Stream(x) => x.encoding(),
        }
    }

    /// The string contents, if this is a string; integers are formatted.
    pub fn as_string(&self) -> Option<StrRef<'_>> {
        match self {
            Value::Str(s) => Some(StrRef::Bytes(s.as_ref())),
            Value::Int(n) => Some(StrRef::Int(*n)),
            _ => None,
        }
    }

    /// Approximate heap bytes held by the value, for `MEMORY USAGE` and eviction accounting.
    pub fn heap_size(&self) -> usize {
        match self {
            Value::Str(s) => s.len(),
            Value::Int(_) => 0,
            Value::Hash(h) => h.heap_size(),
            Value::List(l) => l.heap_size(),
            Value::Set(s) => s.heap_size(),
            Value::ZSet(z) => z.heap_size(),
            Value::Stream(x) => x.heap_size(),
        }
    }
}

/// A borrowed view of a string value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StrRef<'a> {
    Bytes(&'a [u8]),
    Int(i64),
}

impl StrRef<'_> {
    /// The bytes, formatting an integer into `buf` when needed.
    pub fn to_vec(&self) -> Vec<u8> {
        match self {
            StrRef::Bytes(b) => b.to_vec(),
            StrRef::Int(n) => itoa::Buffer::new().format(*n).as_bytes().to_vec(),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            StrRef::Bytes(b) => b.len(),
            StrRef::Int(n) => itoa::Buffer::new().format(*n).len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
