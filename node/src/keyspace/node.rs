//! A key and its value in one heap allocation.
//!
//! Memory per key is what a cache is sold on: Redis 7 spends ~130 bytes on a 16-byte key with
//! a 16-byte value (dict entry, key sds, robj, value sds, expires entry). Shoal keeps the key,
//! its metadata and a small value in a single block with variable-length fields:
//!
//! ```text
//! meta u32 | key len (varint) | key | [expire i64] | payload
//!            payload: Str = len (varint) + bytes · Int = i64 · Boxed = pointer to a Value
//! meta: bits 0..24 LRU clock · 24..26 kind · 27 has-expire · 28 raw encoding
//! ```
//!
//! A 16-byte key with a 16-byte value takes 38 bytes, a 48-byte size class in glibc and
//! mimalloc alike. Strings longer than [`INLINE_MAX`] and (later) collections live in a boxed
//! [`Value`] so that APPEND and friends grow them in place instead of copying the node.
//!
//! Nodes are immutable in size: a change of value or TTL builds a new node (the table swaps
//! the pointer); only the LRU clock and an integer of the same kind are written in place.

use std::alloc::{alloc, dealloc, handle_alloc_error, Layout};
use std::ptr::NonNull;

use bytes::Bytes;

use super::types::{HashValue, ListValue, SetValue, StreamValue, ZSetValue};
use super::value::{StrRef, Value, EMBSTR_MAX};

/// Strings up to this length are stored inside the node.
pub const INLINE_MAX: usize = 512;

const KIND_STR: u32 = 0;
const KIND_INT: u32 = 1;
const KIND_BOXED: u32 = 2;
const KIND_SHIFT: u32 = 24;
const KIND_MASK: u32 = 0b11 << KIND_SHIFT;
const HAS_EXPIRE: u32 = 1 << 27;
const RAW: u32 = 1 << 28;
const LRU_MASK: u32 = (1 << 24) - 1;

/// Nodes are 8-byte aligned so the table can pack a tag above the pointer bits.
const ALIGN: usize = 8;

/// A borrowed view of a stored value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ValueRef<'a> {
    Str(&'a [u8]),
    Int(i64),
    Hash(&'a HashValue),
    List(&'a ListValue),
    Set(&'a SetValue),
    ZSet(&'a ZSetValue),
    Stream(&'a StreamValue),
}

impl<'a> ValueRef<'a> {
    /// `TYPE` name.
    pub fn type_name(&self) -> &'static str {
        match self {
            ValueRef::Str(_) | ValueRef::Int(_) => "string",
            ValueRef::Hash(_) => "hash",
            ValueRef::List(_) => "list",
            ValueRef::Set(_) => "set",
            ValueRef::ZSet(_) => "zset",
            ValueRef::Stream(_) => "stream",
        }
    }

    /// The string contents, if this is a string; integers are formatted by the caller.
    pub fn as_string(&self) -> Option<StrRef<'a>> {
        match *self {
            ValueRef::Str(s) => Some(StrRef::Bytes(s)),
            ValueRef::Int(n) => Some(StrRef::Int(n)),
            _ => None,
        }
    }

    /// An owned copy.
    pub fn to_owned(&self) -> Value {
        match *self {
            ValueRef::Str(s) => Value::Str(Bytes::copy_from_slice(s)),
            ValueRef::Int(n) => Value::Int(n),
            ValueRef::Hash(h) => Value::Hash(Box::new(h.clone())),
            ValueRef::List(l) => Value::List(Box::new(l.clone())),
            ValueRef::Set(s) => Value::Set(Box::new(s.clone())),
            ValueRef::ZSet(z) => Value::ZSet(Box::new(z.clone())),
            ValueRef::Stream(x) => Value::Stream(Box::new(x.clone())),
        }
    }

    /// Approximate heap bytes held by the value.
    pub fn heap_size(&self) -> usize {
        match self {
            ValueRef::Str(s) => s.len(),
            ValueRef::Int(_) => 0,
            ValueRef::Hash(h) => h.heap_size(),
            ValueRef::List(l) => l.heap_size(),
            ValueRef::Set(s) => s.heap_size(),
            ValueRef::ZSet(z) => z.heap_size(),
            ValueRef::Stream(x) => x.heap_size(),
        }
    }
}

fn varint_len(mut n: usize) -> usize {
    let mut len = 1;
    while n >= 0x80 {
        n >>= 7;
        len += 1;
    }
    len
}

/// Writes `n` as LEB128 at `p`, returning the bytes written.
///
/// # Safety
/// `p` must be valid for `varint_len(n)` bytes of writes.
unsafe fn put_varint(p: *mut u8, mut n: usize) -> usize {
    let mut i = 0;
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        let more = n != 0;
        // SAFETY: the caller sized the block with `varint_len`, so byte `i` is in bounds.
        unsafe { p.add(i).write(byte | if more { 0x80 } else { 0 }) };
        i += 1;
        if !more {
            return i;
        }
    }
}

/// Reads a LEB128 number at `p`, returning it and its length.
///
/// # Safety
/// `p` must point at a varint written by `put_varint` inside a live node.
unsafe fn get_varint(p: *const u8) -> (usize, usize) {
    let mut n = 0usize;
    let mut shift = 0;
    let mut i = 0;
    loop {
        // SAFETY: a varint written by `put_varint` ends with a byte without the high bit.
        let b = unsafe { *p.add(i) };
        n |= ((b & 0x7f) as usize) << shift;
        i += 1;
        if b & 0x80 == 0 {
            return (n, i);
        }
        shift += 7;
    }
}

/// How a value is laid out in a node.
enum Payload<'a> {
    Str(&'a [u8]),
    Int(i64),
    Boxed(Box<Value>),
}

impl Payload<'_> {
    fn kind(&self) -> u32 {
        match self {
            Payload::Str(_) => KIND_STR,
            Payload::Int(_) => KIND_INT,
            Payload::Boxed(_) => KIND_BOXED,
        }
    }

    fn size(&self) -> usize {
        match self {
            Payload::Str(s) => varint_len(s.len()) + s.len(),
            Payload::Int(_) | Payload::Boxed(_) => 8,
        }
    }
}

fn payload_of(value: &Value) -> Option<Payload<'_>> {
    match value {
        Value::Int(n) => Some(Payload::Int(*n)),
        Value::Str(s) if s.len() <= INLINE_MAX => Some(Payload::Str(s)),
        _ => None,
    }
}

/// An owned node. Moving it moves the key and value; dropping it frees them. The table holds
/// nodes as raw pointers (`into_raw` / `from_raw`); `repr(transparent)` lets it borrow a table
/// slot as a `&Node`.
#[repr(transparent)]
pub struct Node(NonNull<u8>);

// SAFETY: a node exclusively owns its block and its boxed value, which hold only `Send` data
// (bytes, integers, `Bytes`); nothing else points into it once it is out of the table.
unsafe impl Send for Node {}

impl Node {
    fn build(key: &[u8], payload: Payload<'_>, expire_at: Option<i64>, lru: u32, raw: bool) -> Node {
        let size =
            4 + varint_len(key.len()) + key.len() + if expire_at.is_some() { 8 } else { 0 } + payload.size();
        let layout = Layout::from_size_align(size, ALIGN).expect("node size overflows");
        // SAFETY: `layout` has a non-zero size (at least the meta word).
        let p = unsafe { alloc(layout) };
        let Some(nn) = NonNull::new(p) else { handle_alloc_error(layout) };
        let mut meta = (lru & LRU_MASK) | (payload.kind() << KIND_SHIFT);
        if expire_at.is_some() {
            meta |= HAS_EXPIRE;
        }
        if raw {
            meta |= RAW;
        }
        // SAFETY: every write below stays inside the `size` bytes computed above, field by
        // field in the same order; unaligned writes are used for the multi-byte fields.
        unsafe {
            (p as *mut u32).write(meta);
            let mut off = 4;
            off += put_varint(p.add(off), key.len());
            std::ptr::copy_nonoverlapping(key.as_ptr(), p.add(off), key.len());
            off += key.len();
            if let Some(at) = expire_at {
                (p.add(off) as *mut i64).write_unaligned(at);
                off += 8;
            }
            match payload {
                Payload::Str(s) => {
                    off += put_varint(p.add(off), s.len());
                    std::ptr::copy_nonoverlapping(s.as_ptr(), p.add(off), s.len());
                }
                Payload::Int(n) => (p.add(off) as *mut i64).write_unaligned(n),
                Payload::Boxed(b) => (p.add(off) as *mut *mut Value).write_unaligned(Box::into_raw(b)),
            }
        }
        Node(nn)
    }

    /// Builds a node that takes `value` without copying a large string.
    pub fn from_value(key: &[u8], value: Value, expire_at: Option<i64>, lru: u32, raw: bool) -> Node {
        match payload_of(&value) {
            Some(p) => Self::build(key, p, expire_at, lru, raw),
            None => Self::build(key, Payload::Boxed(Box::new(value)), expire_at, lru, raw),
        }
    }

    /// A copy of this node with another key, TTL or value (the old node is left untouched).
    pub fn rebuild(&self, key: &[u8], value: Option<Value>, expire_at: Option<i64>, lru: u32) -> Node {
        let raw = self.is_raw();
        match value {
            Some(v) => Self::from_value(key, v, expire_at, lru, raw),
            None => match self.value() {
                ValueRef::Str(s) if self.kind() == KIND_STR => {
                    Self::build(key, Payload::Str(s), expire_at, lru, raw)
                }
                ValueRef::Int(n) => Self::build(key, Payload::Int(n), expire_at, lru, raw),
                v => Self::from_value(key, v.to_owned(), expire_at, lru, raw),
            },
        }
    }

    pub fn into_raw(self) -> *mut u8 {
        let p = self.0.as_ptr();
        std::mem::forget(self);
        p
    }

    /// # Safety
    /// `p` must come from `into_raw` and not be owned by anything else.
    pub unsafe fn from_raw(p: *mut u8) -> Node {
        // SAFETY: the caller passes a pointer from `into_raw`, which is never null.
        Node(unsafe { NonNull::new_unchecked(p) })
    }

    pub fn as_ptr(&self) -> *mut u8 {
        self.0.as_ptr()
    }

    fn meta(&self) -> u32 {
        // SAFETY: a live node starts with its meta word (8-byte aligned block).
        unsafe { (self.0.as_ptr() as *const u32).read() }
    }

    fn kind(&self) -> u32 {
        (self.meta() & KIND_MASK) >> KIND_SHIFT
    }

    pub fn is_raw(&self) -> bool {
        self.meta() & RAW != 0
    }

    pub fn lru(&self) -> u32 {
        self.meta() & LRU_MASK
    }

    pub fn set_lru(&mut self, clock: u32) {
        let meta = (self.meta() & !LRU_MASK) | (clock & LRU_MASK);
        // SAFETY: the meta word is inside the block and we own the node mutably.
        unsafe { (self.0.as_ptr() as *mut u32).write(meta) };
    }

    /// Offsets of the key and of what follows it.
    fn key_span(&self) -> (usize, usize) {
        // SAFETY: the key length varint follows the meta word.
        let (len, n) = unsafe { get_varint(self.0.as_ptr().add(4)) };
        (4 + n, len)
    }

    pub fn key(&self) -> &[u8] {
        let (off, len) = self.key_span();
        // SAFETY: `len` key bytes follow their length in the block.
        unsafe { std::slice::from_raw_parts(self.0.as_ptr().add(off), len) }
    }

    pub fn expire_at(&self) -> Option<i64> {
        if self.meta() & HAS_EXPIRE == 0 {
            return None;
        }
        let (off, len) = self.key_span();
        // SAFETY: HAS_EXPIRE means 8 bytes of expiry follow the key.
        Some(unsafe { (self.0.as_ptr().add(off + len) as *const i64).read_unaligned() })
    }

    fn payload_off(&self) -> usize {
        let (off, len) = self.key_span();
        off + len + if self.meta() & HAS_EXPIRE != 0 { 8 } else { 0 }
    }

    fn boxed(&self) -> *mut Value {
        // SAFETY: a boxed payload is a pointer from `Box::into_raw`.
        unsafe { (self.0.as_ptr().add(self.payload_off()) as *const *mut Value).read_unaligned() }
    }

    pub fn value(&self) -> ValueRef<'_> {
        let off = self.payload_off();
        let p = self.0.as_ptr();
        match self.kind() {
            KIND_STR => {
                // SAFETY: an inline string is its length varint and that many bytes.
                unsafe {
                    let (len, n) = get_varint(p.add(off));
                    ValueRef::Str(std::slice::from_raw_parts(p.add(off + n), len))
                }
            }
            // SAFETY: an integer payload is 8 bytes.
            KIND_INT => ValueRef::Int(unsafe { (p.add(off) as *const i64).read_unaligned() }),
            _ => {
                // SAFETY: the box lives as long as the node.
                match unsafe { &*self.boxed() } {
                    Value::Str(s) => ValueRef::Str(s),
                    Value::Int(n) => ValueRef::Int(*n),
                    Value::Hash(h) => ValueRef::Hash(h),
                    Value::List(l) => ValueRef::List(l),
                    Value::Set(s) => ValueRef::Set(s),
                    Value::ZSet(z) => ValueRef::ZSet(z),
                    Value::Stream(x) => ValueRef::Stream(x),
                }
            }
        }
    }

    /// Overwrites an integer value in place; false if the value is not stored as an integer.
    pub fn set_int(&mut self, v: i64) -> bool {
        if self.kind() != KIND_INT {
            return false;
        }
        let off = self.payload_off();
        // SAFETY: an integer payload is 8 bytes inside the block.
        unsafe { (self.0.as_ptr().add(off) as *mut i64).write_unaligned(v) };
        true
    }

    /// The boxed value, for in-place changes to a collection (or a large string). `None` for
    /// values stored inline (small strings and integers), which are replaced instead.
    pub fn value_mut(&mut self) -> Option<&mut Value> {
        if self.kind() != KIND_BOXED {
            return None;
        }
        // SAFETY: the box is owned by this node, which we hold mutably.
        Some(unsafe { &mut *self.boxed() })
    }

    /// Takes the value out, leaving the node holding an empty string (the node is about to
    /// be replaced or dropped). Large strings move without a copy.
    pub fn take_value(&mut self) -> Value {
        if self.kind() == KIND_BOXED {
            // SAFETY: the boxed value is ours; we leave an empty string in its place.
            let b = unsafe { &mut *self.boxed() };
            return std::mem::replace(b, Value::Str(Bytes::new()));
        }
        self.value().to_owned()
    }

    /// The value, consuming the node (large strings move without a copy).
    pub fn into_value(mut self) -> Value {
        self.take_value()
    }

    /// `OBJECT ENCODING`.
    pub fn encoding(&self) -> &'static str {
        match self.value() {
            ValueRef::Int(_) => "int",
            ValueRef::Str(s) if s.len() <= EMBSTR_MAX && !self.is_raw() => "embstr",
            ValueRef::Str(_) => "raw",
            ValueRef::Hash(h) => h.encoding(),
            ValueRef::List(l) => l.encoding(),
            ValueRef::Set(s) => s.encoding(),
            ValueRef::ZSet(z) => z.encoding(),
            ValueRef::Stream(x) => x.encoding(),
        }
    }

    /// Bytes of the block (what the allocator was asked for).
    pub fn size(&self) -> usize {
        let off = self.payload_off();
        off + match self.kind() {
            KIND_STR => {
                // SAFETY: see `value`.
                let (len, n) = unsafe { get_varint(self.0.as_ptr().add(off)) };
                n + len
            }
            _ => 8,
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let size = self.size();
        if self.kind() == KIND_BOXED {
            // SAFETY: the pointer came from `Box::into_raw` and is dropped only here.
            drop(unsafe { Box::from_raw(self.boxed()) });
        }
        let layout = Layout::from_size_align(size, ALIGN).expect("node layout");
        // SAFETY: the block was allocated in `build` with this very layout.
        unsafe { dealloc(self.0.as_ptr(), layout) };
    }
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("key", &String::from_utf8_lossy(self.key()))
            .field("value", &self.value())
            .field("expire_at", &self.expire_at())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrips_every_layout() {
        let long = vec![b'x'; INLINE_MAX + 1];
        let values = [
            Value::Int(-42),
            Value::Int(i64::MAX),
            Value::Str(Bytes::from_static(b"")),
            Value::Str(Bytes::from_static(b"hello")),
            Value::Str(Bytes::from(vec![7u8; 200])),
            Value::Str(Bytes::from(long.clone())),
        ];
        let keys: [&[u8]; 3] = [b"", b"k", &[0xffu8; 300]];
        for key in keys {
            for v in &values {
                for exp in [None, Some(-1), Some(1_700_000_000_000)] {
                    let n = Node::from_value(key, v.clone(), exp, 12345, false);
                    assert_eq!(n.key(), key);
                    assert_eq!(n.expire_at(), exp);
                    assert_eq!(n.value().to_owned(), *v);
                    assert_eq!(n.lru(), 12345);
                }
            }
        }
    }

    #[test]
    fn small_string_fits_a_48_byte_class() {
        let n = Node::from_value(&[b'k'; 16], Value::Str(Bytes::from(vec![b'v'; 16])), None, 0, false);
        assert_eq!(n.size(), 38);
    }

    #[test]
    fn in_place_updates() {
        let mut n = Node::from_value(b"c", Value::Int(1), Some(5), 0, false);
        assert!(n.set_int(2));
        n.set_lru(99);
        assert_eq!(n.value(), ValueRef::Int(2));
        assert_eq!(n.expire_at(), Some(5));
        assert_eq!(n.lru(), 99);
        let mut s = Node::from_value(b"s", Value::Str(Bytes::from_static(b"ab")), None, 0, true);
        assert!(!s.set_int(1));
        assert_eq!(s.encoding(), "raw");
        assert_eq!(s.take_value(), Value::Str(Bytes::from_static(b"ab")));
    }

    #[test]
    fn rebuild_changes_key_and_ttl() {
        let big = Value::Str(Bytes::from(vec![1u8; 4096]));
        let n = Node::from_value(b"a", big.clone(), None, 3, false);
        let m = n.rebuild(b"b", None, Some(10), 4);
        assert_eq!(m.key(), b"b");
        assert_eq!(m.expire_at(), Some(10));
        assert_eq!(m.value().to_owned(), big);
        assert_eq!(n.value().to_owned(), big);
    }
}
