//! SORT's BY and GET patterns (Valkey's `lookupKeyByPattern`): `#` is the element itself;
//! otherwise the first `*` is replaced by the element and the resulting key is read, as a
//! string, or with `key->field` as a hash field. Patterns are searched as C strings (a NUL
//! byte ends the search for `*` and `->`) but copied with their full length, as Valkey does.
//!
//! Also [`pattern_slot`] (Valkey's `patternHashSlot`), which cluster mode uses to allow only
//! patterns whose keys all hash to the sorted key's slot.

use bytes::Bytes;

use crate::exec::Ctx;
use crate::keyspace::node::ValueRef;
use crate::keyspace::slot::{crc16, SLOTS};

/// The part of `s` a C function sees: up to the first NUL byte.
pub fn cstr(s: &[u8]) -> &[u8] {
    s.iter().position(|&b| b == 0).map_or(s, |n| &s[..n])
}

/// True for the `#` pattern (compared as a C string).
pub fn is_self(pattern: &[u8]) -> bool {
    cstr(pattern) == b"#"
}

/// Where `needle` first occurs in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The value `pattern` names for element `subst`, or `None` (no `*`, missing key, wrong type,
/// missing hash field). Lookups count as reads (statistics, lazy expiry).
pub fn lookup(ctx: &mut Ctx, pattern: &[u8], subst: &Bytes) -> Option<Bytes> {
    let c = cstr(pattern);
    if c == b"#" {
        return Some(subst.clone());
    }
    let star = c.iter().position(|&b| b == b'*')?;
    // `->` after the `*` introduces a hash field, unless nothing follows it.
    let field = find(&c[star + 1..], b"->").map(|f| star + 1 + f).filter(|&f| f + 2 < c.len());
    let key_end = field.unwrap_or(pattern.len());
    let mut key = Vec::with_capacity(pattern.len() + subst.len());
    key.extend_from_slice(&pattern[..star]);
    key.extend_from_slice(subst);
    key.extend_from_slice(&pattern[star + 1..key_end]);
    let e = ctx.lookup_read(&key)?;
    match (e.value(), field) {
        (ValueRef::Hash(h), Some(f)) => h.get(&pattern[f + 2..]).map(Bytes::copy_from_slice),
        (ValueRef::Str(s), None) => Some(Bytes::copy_from_slice(s)),
        (ValueRef::Int(n), None) => Some(Bytes::from(n.to_string())),
        _ => None,
    }
}

/// The one slot every key `pattern` can form hashes to, if that can be known (Valkey's
/// `patternHashSlot`): a `{tag}` closed before any wildcard or escape, or no wildcard at all.
pub fn pattern_slot(pattern: &[u8]) -> Option<u16> {
    let mask = SLOTS as u16 - 1;
    let mut open: Option<usize> = None;
    let mut empty_tag = false;
    for (i, &b) in pattern.iter().enumerate() {
        match b {
            b'*' | b'?' | b'[' | b'\\' => return None,
            b'{' if open.is_none() && !empty_tag => open = Some(i),
            b'}' => match open {
                Some(s) if i == s + 1 => {
                    open = None;
                    empty_tag = true;
                }
                Some(s) => return Some(crc16(&pattern[s + 1..i]) & mask),
                None => {}
            },
            _ => {}
        }
    }
    Some(crc16(pattern) & mask)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyspace::slot::key_slot;

    #[test]
    fn pattern_slots_follow_valkey() {
        assert_eq!(pattern_slot(b"w_{tag}_*"), Some(key_slot(b"tag")));
        assert_eq!(pattern_slot(b"{tag}*->f"), Some(key_slot(b"tag")));
        assert_eq!(pattern_slot(b"*{tag}"), None);
        assert_eq!(pattern_slot(b"w_*"), None);
        assert_eq!(pattern_slot(b"a\\{b}*"), None);
        assert_eq!(pattern_slot(b"nosort"), Some(key_slot(b"nosort")));
        // An empty tag: braces are ignored and a later `{` opens nothing.
        assert_eq!(pattern_slot(b"{}{x}"), Some(crc16(b"{}{x}") & 16383));
    }
}
