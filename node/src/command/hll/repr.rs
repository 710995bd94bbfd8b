//! Valkey's HyperLogLog string format, byte for byte, so a value written by Valkey or Redis
//! counts the same here and the other way round (`hyperloglog.c`):
//!
//! ```text
//! "HYLL" | encoding (0 dense, 1 sparse) | 3 unused | cached cardinality (8 bytes LE, MSB of
//! the last byte set = stale) | registers
//! ```
//!
//! 16384 six-bit registers (P = 14, Q = 50), elements hashed with MurmurHash64A and seed
//! `0xadc83b19`. Dense: registers packed LSB first, 12288 bytes. Sparse: run-length opcodes
//! ZERO `00xxxxxx` (1..64 zero registers), XZERO `01xxxxxx yyyyyyyy` (1..16384 zero
//! registers), VAL `1vvvvvxx` (1..4 registers of value 1..32). Every algorithm here mirrors
//! the C one step by step (including where opcodes are split and merged), so the bytes stored
//! after the same commands are the same.

pub const HDR: usize = 16;
pub const REGISTERS: usize = 1 << P;
const P: u32 = 14;
const Q: usize = 50;
const BITS: usize = 6;
const REG_MAX: u8 = (1 << BITS) - 1;
pub const DENSE_SIZE: usize = HDR + (REGISTERS * BITS).div_ceil(8);
const DENSE: u8 = 0;
const SPARSE: u8 = 1;
const VAL_MAX_VALUE: u8 = 32;
const VAL_MAX_LEN: usize = 4;
const ZERO_MAX_LEN: usize = 64;
const ALPHA_INF: f64 = 0.721_347_520_444_481_7;

/// The stored string is not a well-formed HLL of a known encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("Corrupted HLL object detected")]
pub struct Corrupt;

/// Valkey's `isHLLObjectOrReply` checks (magic, encoding, dense length).
pub fn is_valid(s: &[u8]) -> bool {
    s.len() >= HDR && &s[..4] == b"HYLL" && s[4] <= SPARSE && (s[4] != DENSE || s.len() == DENSE_SIZE)
}

/// A new, empty HLL: sparse, one XZERO covering every register, cached cardinality 0.
pub fn new_sparse() -> Vec<u8> {
    let mut v = vec![0u8; HDR + 2];
    v[..4].copy_from_slice(b"HYLL");
    v[4] = SPARSE;
    xzero_set(&mut v[HDR..], REGISTERS);
    v
}

pub fn is_dense(s: &[u8]) -> bool {
    s[4] == DENSE
}

/// The cached cardinality, if it is valid.
pub fn cached(s: &[u8]) -> Option<u64> {
    if s[15] & 0x80 != 0 {
        return None;
    }
    let mut b = [0u8; 8];
    b.copy_from_slice(&s[8..16]);
    Some(u64::from_le_bytes(b))
}

pub fn set_cache(s: &mut [u8], card: u64) {
    s[8..16].copy_from_slice(&card.to_le_bytes());
}

pub fn invalidate_cache(s: &mut [u8]) {
    s[15] |= 0x80;
}

/// MurmurHash64A as Valkey ships it (little-endian reads).
pub fn murmur64a(key: &[u8], seed: u32) -> u64 {
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    const R: u32 = 47;
    let mut h = (seed as u64) ^ (key.len() as u64).wrapping_mul(M);
    let mut chunks = key.chunks_exact(8);
    for c in &mut chunks {
        let mut k = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        for (i, &b) in rest.iter().enumerate().rev() {
            h ^= (b as u64) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

/// Valkey's `hllPatLen`: the register an element goes to and the run length it counts.
pub fn pat_len(ele: &[u8]) -> (usize, u8) {
    let hash = murmur64a(ele, 0xadc8_3b19);
    let index = (hash & (REGISTERS as u64 - 1)) as usize;
    let rest = (hash >> P) | (1u64 << Q);
    (index, rest.trailing_zeros() as u8 + 1)
}

// ---- dense registers -------------------------------------------------------------------

fn dense_get(regs: &[u8], i: usize) -> u8 {
    let byte = i * BITS / 8;
    let fb = (i * BITS) & 7;
    let b0 = regs[byte] as u16;
    let b1 = regs.get(byte + 1).copied().unwrap_or(0) as u16;
    (((b0 >> fb) | (b1 << (8 - fb))) & REG_MAX as u16) as u8
}

fn dense_set(regs: &mut [u8], i: usize, val: u8) {
    let byte = i * BITS / 8;
    let fb = (i * BITS) & 7;
    let v = val as u16;
    regs[byte] &= !((REG_MAX as u16) << fb) as u8;
    regs[byte] |= (v << fb) as u8;
    if let Some(b) = regs.get_mut(byte + 1) {
        *b &= !((REG_MAX as u16) >> (8 - fb)) as u8;
        *b |= (v >> (8 - fb)) as u8;
    }
}

/// `hllDenseSet`: raises a register; true if it changed.
fn dense_raise(regs: &mut [u8], i: usize, count: u8) -> bool {
    if count > dense_get(regs, i) {
        dense_set(regs, i, count);
        true
    } else {
        false
    }
}

// ---- sparse opcodes --------------------------------------------------------------------

fn is_zero(b: u8) -> bool {
    b & 0xc0 == 0
}
fn is_xzero(b: u8) -> bool {
    b & 0xc0 == 0x40
}
fn is_val(b: u8) -> bool {
    b & 0x80 != 0
}
fn zero_len(b: u8) -> usize {
    (b & 0x3f) as usize + 1
}
fn xzero_len(b0: u8, b1: u8) -> usize {
    ((((b0 & 0x3f) as usize) << 8) | b1 as usize) + 1
}
fn val_value(b: u8) -> u8 {
    ((b >> 2) & 0x1f) + 1
}
fn val_len(b: u8) -> usize {
    (b & 0x3) as usize + 1
}
fn val_op(val: u8, len: usize) -> u8 {
    ((val - 1) << 2) | (len as u8 - 1) | 0x80
}
fn xzero_set(p: &mut [u8], len: usize) {
    let l = len - 1;
    p[0] = (l >> 8) as u8 | 0x40;
    p[1] = (l & 0xff) as u8;
}

/// Calls `f(value, run)` for every run of the sparse registers; `Err` unless the runs cover
/// exactly the 16384 registers (a VAL past the end stops the walk, as in Valkey).
fn sparse_runs(ops: &[u8], mut f: impl FnMut(usize, u8, usize)) -> Result<(), Corrupt> {
    let (mut i, mut idx) = (0, 0usize);
    while i < ops.len() {
        let b = ops[i];
        if is_zero(b) {
            idx += zero_len(b);
            i += 1;
        } else if is_xzero(b) {
            idx += xzero_len(b, ops.get(i + 1).copied().unwrap_or(0));
            i += 2;
        } else {
            let (len, v) = (val_len(b), val_value(b));
            if idx + len > REGISTERS {
                break;
            }
            f(idx, v, len);
            idx += len;
            i += 1;
        }
    }
    if idx == REGISTERS {
        Ok(())
    } else {
        Err(Corrupt)
    }
}

/// `hllSparseToDense` (a dense HLL is returned unchanged).
pub fn to_dense(s: &[u8]) -> Result<Vec<u8>, Corrupt> {
    if is_dense(s) {
        return Ok(s.to_vec());
    }
    let mut d = vec![0u8; DENSE_SIZE];
    d[..HDR].copy_from_slice(&s[..HDR]);
    d[4] = DENSE;
    let regs = &mut d[HDR..];
    sparse_runs(&s[HDR..], |idx, v, len| {
        for r in idx..idx + len {
            dense_set(regs, r, v);
        }
    })?;
    Ok(d)
}

/// `hllSparseSet`: raises register `index` to `count` in a sparse HLL, splitting and merging
/// opcodes as Valkey does, or converting to dense when the value or the size (`max_bytes`,
/// `hll-sparse-max-bytes`) no longer fits. Returns whether a register changed.
fn sparse_set(s: &mut Vec<u8>, index: usize, count: u8, max_bytes: usize) -> Result<bool, Corrupt> {
    if count > VAL_MAX_VALUE {
        return promote(s, index, count);
    }
    // Step 1: find the opcode covering the register.
    let end = s.len();
    let (mut p, mut first, mut span) = (HDR, 0usize, 0usize);
    let mut prev = None;
    while p < end {
        let b = s[p];
        let oplen;
        if is_zero(b) {
            span = zero_len(b);
            oplen = 1;
        } else if is_val(b) {
            span = val_len(b);
            oplen = 1;
        } else {
            span = xzero_len(b, s.get(p + 1).copied().unwrap_or(0));
            oplen = 2;
        }
        if index < first + span {
            break;
        }
        prev = Some(p);
        p += oplen;
        first += span;
    }
    if span == 0 || p >= end {
        return Err(Corrupt);
    }
    let b = s[p];
    let (zero, xzero, val) = (is_zero(b), is_xzero(b), is_val(b));
    let runlen = if zero {
        zero_len(b)
    } else if xzero {
        xzero_len(b, s.get(p + 1).copied().unwrap_or(0))
    } else {
        val_len(b)
    };
    // Step 2: the cheap cases.
    let mut end = end;
    let simple = if val {
        if val_value(b) >= count {
            return Ok(false);
        }
        runlen == 1
    } else {
        zero && runlen == 1
    };
    if simple {
        s[p] = val_op(count, 1);
    } else {
        // General case: split the opcode into up to three.
        let mut seq = Vec::with_capacity(5);
        let last = first + span - 1;
        let zeros = |seq: &mut Vec<u8>, len: usize| {
            if len > ZERO_MAX_LEN {
                let mut x = [0u8; 2];
                xzero_set(&mut x, len);
                seq.extend_from_slice(&x);
            } else {
                seq.push((len - 1) as u8);
            }
        };
        if zero || xzero {
            if index != first {
                zeros(&mut seq, index - first);
            }
            seq.push(val_op(count, 1));
            if index != last {
                zeros(&mut seq, last - index);
            }
        } else {
            let cur = val_value(b);
            if index != first {
                seq.push(val_op(cur, index - first));
            }
            seq.push(val_op(count, 1));
            if index != last {
                seq.push(val_op(cur, last - index));
            }
        }
        let oldlen = if xzero { 2 } else { 1 };
        // Step 3: replace the old opcode, or go dense when the string would grow too big.
        if seq.len() > oldlen && s.len() + seq.len() - oldlen > max_bytes {
            return promote(s, index, count);
        }
        // A malformed string may end inside the opcode (an XZERO missing its second byte,
        // which Valkey then reads from the string's NUL terminator); the new length is still
        // the old one plus the growth, as `sdsIncrLen` makes it.
        let new_len = s.len() + seq.len() - oldlen;
        if s.len() < p + oldlen {
            s.resize(p + oldlen, 0);
        }
        s.splice(p..p + oldlen, seq.iter().copied());
        s.truncate(new_len);
        end = s.len();
    }
    // Step 4: merge adjacent VAL opcodes of equal value, scanning up to 5 opcodes from prev.
    let mut p = prev.unwrap_or(HDR);
    let mut scan = 5;
    while p < end && scan > 0 {
        scan -= 1;
        let b = s[p];
        if is_xzero(b) {
            p += 2;
            continue;
        } else if is_zero(b) {
            p += 1;
            continue;
        }
        if p + 1 < end && is_val(s[p + 1]) {
            let (v1, v2) = (val_value(b), val_value(s[p + 1]));
            if v1 == v2 {
                let len = val_len(b) + val_len(s[p + 1]);
                if len <= VAL_MAX_LEN {
                    s[p + 1] = val_op(v1, len);
                    s.remove(p);
                    end -= 1;
                    continue;
                }
            }
        }
        p += 1;
    }
    invalidate_cache(s);
    Ok(true)
}

fn promote(s: &mut Vec<u8>, index: usize, count: u8) -> Result<bool, Corrupt> {
    *s = to_dense(s)?;
    Ok(dense_raise(&mut s[HDR..], index, count))
}

/// `hllAdd`: adds one element; true if a register changed.
pub fn add(s: &mut Vec<u8>, ele: &[u8], max_bytes: usize) -> Result<bool, Corrupt> {
    let (index, count) = pat_len(ele);
    match s[4] {
        DENSE => Ok(dense_raise(&mut s[HDR..], index, count)),
        SPARSE => sparse_set(s, index, count, max_bytes),
        _ => Err(Corrupt),
    }
}

/// Raises register `index` to at least `val` in either encoding (PFMERGE's write step).
pub fn raise(s: &mut Vec<u8>, index: usize, val: u8, max_bytes: usize) -> Result<bool, Corrupt> {
    if is_dense(s) {
        Ok(dense_raise(&mut s[HDR..], index, val))
    } else {
        sparse_set(s, index, val, max_bytes)
    }
}

/// `hllMerge`: `max[i] = max(max[i], register i)`.
pub fn merge_into(max: &mut [u8; REGISTERS], s: &[u8]) -> Result<(), Corrupt> {
    if is_dense(s) {
        for (i, m) in max.iter_mut().enumerate() {
            *m = (*m).max(dense_get(&s[HDR..], i));
        }
        return Ok(());
    }
    sparse_runs(&s[HDR..], |idx, v, len| {
        for m in &mut max[idx..idx + len] {
            *m = (*m).max(v);
        }
    })
}

/// The register histogram of an HLL string.
fn histogram(s: &[u8]) -> Result<[u32; 64], Corrupt> {
    let mut h = [0u32; 64];
    if is_dense(s) {
        for i in 0..REGISTERS {
            h[dense_get(&s[HDR..], i) as usize] += 1;
        }
    } else {
        // `hllSparseRegHisto` walks every opcode (no stop at an overflowing VAL) and then
        // requires exactly 16384 registers.
        let (ops, mut i, mut idx) = (&s[HDR..], 0, 0usize);
        while i < ops.len() {
            let b = ops[i];
            let (v, len, oplen) = if is_zero(b) {
                (0, zero_len(b), 1)
            } else if is_xzero(b) {
                (0, xzero_len(b, ops.get(i + 1).copied().unwrap_or(0)), 2)
            } else {
                (val_value(b), val_len(b), 1)
            };
            h[v as usize] += len as u32;
            idx += len;
            i += oplen;
        }
        if idx != REGISTERS {
            return Err(Corrupt);
        }
    }
    Ok(h)
}

/// Cardinality of an HLL string (`hllCount`).
pub fn count(s: &[u8]) -> Result<u64, Corrupt> {
    Ok(estimate(&histogram(s)?))
}

/// Cardinality of raw registers (PFCOUNT over several keys).
pub fn count_raw(regs: &[u8; REGISTERS]) -> u64 {
    let mut h = [0u32; 64];
    for &r in regs.iter() {
        h[r as usize] += 1;
    }
    estimate(&h)
}

fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let mut y = 1.0;
    let mut z = x;
    loop {
        x *= x;
        let prev = z;
        z += x * y;
        y += y;
        if prev == z {
            return z;
        }
    }
}

fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let mut y = 1.0;
    let mut z = 1.0 - x;
    loop {
        x = x.sqrt();
        let prev = z;
        y *= 0.5;
        z -= (1.0 - x).powi(2) * y;
        if prev == z {
            return z / 3.0;
        }
    }
}

/// Otmar Ertl's estimator, as `hllCount` computes it.
fn estimate(h: &[u32; 64]) -> u64 {
    let m = REGISTERS as f64;
    let mut z = m * tau((m - h[Q + 1] as f64) / m);
    for j in (1..=Q).rev() {
        z += h[j] as f64;
        z *= 0.5;
    }
    z += m * sigma(h[0] as f64 / m);
    (ALPHA_INF * m * m / z).round() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_hll_bytes_match_valkey() {
        let v = new_sparse();
        assert_eq!(v, b"HYLL\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x7f\xff");
        assert!(is_valid(&v));
        assert_eq!(count(&v), Ok(0));
    }

    #[test]
    fn sparse_and_dense_agree() {
        let mut s = new_sparse();
        for i in 0..2000 {
            add(&mut s, format!("e{i}").as_bytes(), 3000).expect("valid");
        }
        let n = count(&s).expect("valid");
        let d = to_dense(&s).expect("valid");
        assert_eq!(count(&d), Ok(n));
        assert!((n as i64 - 2000).abs() < 100, "{n}");
        let mut max = [0u8; REGISTERS];
        merge_into(&mut max, &s).expect("valid");
        assert_eq!(count_raw(&max), n);
    }

    #[test]
    fn corrupted_sparse_is_detected() {
        let mut s = new_sparse();
        s.truncate(HDR + 1);
        assert_eq!(count(&s), Err(Corrupt));
        assert_eq!(add(&mut s, b"x", 3000), Err(Corrupt));
    }
}
