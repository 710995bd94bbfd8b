//! INCRBYFLOAT arithmetic, bit-exact with Valkey on x86-64: Valkey parses both operands with
//! `strtold`, adds them as x87 80-bit `long double`s (64-bit significand) and prints the sum
//! with `%.17Lf`. Plain `f64` gives different digits (`0.1 + 0.2`), and decimal arithmetic
//! differs for large magnitudes (`10000000000 + 0.1` is `10000000000.09999999962747097` in
//! Valkey), so this module emulates the 80-bit format in software: correctly rounded parsing
//! (decimal and hex), one correctly rounded addition, and an exact `%.17Lf` rendering.
//! Common operands take `u128` fast paths; a small bignum handles the rest.

use std::cmp::Ordering;

/// Exponent of the least significant significand bit of the smallest (subnormal) value.
const EMIN: i32 = -16445;
/// Highest position the leading significand bit may have (largest finite value < 2^16384).
const TOP_MAX: i32 = 16383;
/// Valkey refuses float strings this long (`MAX_LONG_DOUBLE_CHARS`).
const MAX_CHARS: usize = 5 * 1024;
/// Fractional digits printed by `%.17Lf`.
const FRAC_DIGITS: u32 = 17;

/// A finite or infinite 80-bit extended value: `mant * 2^exp`, `mant` normalised (top bit set)
/// unless the value is zero or subnormal.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ld {
    neg: bool,
    inf: bool,
    mant: u64,
    exp: i32,
}

impl Ld {
    pub const ZERO: Ld = Ld { neg: false, inf: false, mant: 0, exp: 0 };

    /// An integer, exactly (every i64 fits in 64 significand bits).
    pub fn from_i64(n: i64) -> Ld {
        if n == 0 {
            return Ld::ZERO;
        }
        let m = n.unsigned_abs();
        let z = m.leading_zeros();
        Ld { neg: n < 0, inf: false, mant: m << z, exp: -(z as i32) }
    }

    pub fn is_finite(&self) -> bool {
        !self.inf
    }

    /// `string2ld`: the whole string must be a number `strtold` accepts (no leading space,
    /// overflow and underflow-to-zero refused, NaN refused). A NUL byte is never part of a
    /// number, so it is refused like any other trailing byte.
    pub fn parse(s: &[u8]) -> Option<Ld> {
        if s.is_empty() || s.len() >= MAX_CHARS {
            return None;
        }
        let (neg, body) = match s[0] {
            b'-' => (true, &s[1..]),
            b'+' => (false, &s[1..]),
            _ => (false, s),
        };
        let lower = |i: usize| body.get(i).map(u8::to_ascii_lowercase);
        let mut v = if lower(0) == Some(b'i') {
            if !(body.eq_ignore_ascii_case(b"inf") || body.eq_ignore_ascii_case(b"infinity")) {
                return None;
            }
            Ld { neg: false, inf: true, mant: 0, exp: 0 }
        } else if lower(0) == Some(b'0') && lower(1) == Some(b'x') {
            parse_hex(&body[2..])?
        } else {
            parse_dec(body)?
        };
        v.neg = neg;
        Some(v)
    }

    /// `a + b` rounded to nearest-even, as the FPU does.
    pub fn add(self, b: Ld) -> Ld {
        let a = self;
        if a.inf || b.inf {
            if a.inf && b.inf && a.neg != b.neg {
                // NaN; callers only ask whether the result is finite.
                return Ld { inf: true, ..a };
            }
            return if a.inf { a } else { b };
        }
        if b.mant == 0 {
            return if a.mant == 0 { Ld { neg: a.neg && b.neg, ..Ld::ZERO } } else { a };
        }
        if a.mant == 0 {
            return b;
        }
        // Align on the larger exponent with 62 guard bits; bits shifted out of the smaller
        // operand are jammed into its lowest bit, which keeps rounding exact.
        let (hi, lo) = if a.exp >= b.exp { (a, b) } else { (b, a) };
        const GUARD: u32 = 62;
        let mh = (hi.mant as u128) << GUARD;
        let d = (hi.exp - lo.exp) as u32;
        let full = (lo.mant as u128) << GUARD;
        let ml = if d == 0 {
            full
        } else if d >= 128 {
            1
        } else {
            let kept = full >> d;
            kept | u128::from(kept << d != full)
        };
        let e = hi.exp - GUARD as i32;
        if hi.neg == lo.neg {
            round(hi.neg, mh + ml, e, false)
        } else {
            match mh.cmp(&ml) {
                Ordering::Equal => Ld::ZERO,
                Ordering::Greater => round(hi.neg, mh - ml, e, false),
                Ordering::Less => round(lo.neg, ml - mh, e, false),
            }
        }
    }

    /// `%.17Lf` with trailing zeros (and a trailing dot) removed and `-0` printed as `0`: what
    /// Valkey's `ld2string(..., LD_STR_HUMAN)` stores. Infinite values are never formatted.
    pub fn to_human(self) -> String {
        let mut digits = if self.mant == 0 {
            String::from("0")
        } else if self.exp >= 0 {
            let mut s = if self.exp <= 64 {
                ((self.mant as u128) << self.exp).to_string()
            } else {
                let mut b = Big::from_u128(self.mant as u128);
                b.shl(self.exp as u32);
                b.to_decimal()
            };
            s.push_str(&"0".repeat(FRAC_DIGITS as usize));
            s
        } else {
            scaled_fraction(self.mant, (-self.exp) as u32)
        };
        // `digits` is the value times 10^17, rounded; put the point back in.
        if digits.len() <= FRAC_DIGITS as usize {
            let pad = FRAC_DIGITS as usize + 1 - digits.len();
            digits.insert_str(0, &"0".repeat(pad));
        }
        let point = digits.len() - FRAC_DIGITS as usize;
        let frac = digits[point..].trim_end_matches('0');
        let mut out = String::with_capacity(digits.len() + 2);
        if self.neg {
            out.push('-');
        }
        out.push_str(&digits[..point]);
        if !frac.is_empty() {
            out.push('.');
            out.push_str(frac);
        }
        if out == "-0" {
            out.truncate(0);
            out.push('0');
        }
        out
    }
}

/// `round_half_even(mant * 10^17 / 2^shift)` in decimal.
fn scaled_fraction(mant: u64, shift: u32) -> String {
    const TEN17: u128 = 100_000_000_000_000_000;
    // mant < 2^64 and 10^17 < 2^57, so the product fits in a u128.
    let s = mant as u128 * TEN17;
    if shift < 128 {
        let q = s >> shift;
        let rem = s - (q << shift);
        let half = 1u128 << (shift - 1);
        let up = rem > half || (rem == half && q & 1 == 1);
        return (q + u128::from(up)).to_string();
    }
    // value * 10^17 < 2^121 / 2^128 < 1/2: rounds to zero.
    String::from("0")
}

/// Rounds `(m + tail) * 2^e` (with `tail` in (0, 1) when `sticky`) to the 80-bit format.
fn round(neg: bool, m: u128, e: i32, sticky: bool) -> Ld {
    if m == 0 {
        return Ld { neg, ..Ld::ZERO };
    }
    let bits = 128 - m.leading_zeros() as i32;
    let te = (e + bits - 64).max(EMIN);
    let shift = te - e;
    let mut mant = if shift <= 0 {
        m << (-shift) as u32
    } else if shift > 128 {
        0
    } else {
        let shift = shift as u32;
        let q = m.checked_shr(shift).unwrap_or(0);
        let rem = m - q.checked_shl(shift).unwrap_or(0);
        let half = 1u128 << (shift - 1);
        let up = rem > half || (rem == half && (sticky || q & 1 == 1));
        q + u128::from(up)
    };
    let mut te = te;
    if mant == 1u128 << 64 {
        mant >>= 1;
        te += 1;
    }
    if te + 63 > TOP_MAX {
        return Ld { neg, inf: true, mant: 0, exp: 0 };
    }
    Ld { neg, inf: false, mant: mant as u64, exp: if mant == 0 { 0 } else { te } }
}

/// Rounds a non-negative big integer times `2^e`, refusing what `strtold` reports as a range
/// error (overflow, or a non-zero value that underflows to zero).
fn round_big(b: &Big, e: i64, sticky: bool) -> Option<Ld> {
    let bits = b.bit_len();
    let cut = bits.saturating_sub(128);
    let (m, lost) = b.top_u128(cut);
    let e = e + cut as i64;
    // Far outside the range: decide without risking i32 overflow.
    if e + (bits - cut) as i64 > TOP_MAX as i64 + 2 {
        return None;
    }
    if e < EMIN as i64 - 200 {
        return None;
    }
    let v = round(false, m, e as i32, sticky || lost);
    (v.is_finite() && v.mant != 0).then_some(v)
}

/// Decimal mantissa digits (with at most one point) and an optional `e` exponent.
fn parse_dec(s: &[u8]) -> Option<Ld> {
    let mut i = 0;
    let mut digits = Vec::with_capacity(s.len());
    let mut frac = 0i64;
    let mut seen_point = false;
    let mut any = false;
    while i < s.len() {
        match s[i] {
            c @ b'0'..=b'9' => {
                any = true;
                if !(digits.is_empty() && c == b'0') {
                    digits.push(c - b'0');
                }
                if seen_point {
                    frac += 1;
                }
            }
            b'.' if !seen_point => seen_point = true,
            _ => break,
        }
        i += 1;
    }
    if !any {
        return None;
    }
    let exp = parse_exp(&s[i..], b'e')?;
    if digits.is_empty() {
        return Some(Ld::ZERO);
    }
    // Trailing zeros only scale; dropping them keeps the big integer small.
    let mut e10 = exp.saturating_sub(frac);
    while digits.last() == Some(&0) {
        digits.pop();
        e10 = e10.saturating_add(1);
    }
    let magnitude = digits.len() as i64 + e10;
    if !(-4955..=4935).contains(&magnitude) {
        return None;
    }
    if e10 >= 0 && digits.len() <= 19 && e10 <= 19 {
        let d = digits.iter().fold(0u128, |a, &c| a * 10 + c as u128);
        let v = d * 10u128.pow(e10 as u32);
        return Some(round(false, v, 0, false));
    }
    let mut d = Big::from_digits(&digits);
    if e10 >= 0 {
        d.mul_pow5(e10 as u32);
        return round_big(&d, e10, false);
    }
    // d / 10^k = d / (5^k * 2^k): divide by 5^k to 66..68 quotient bits, remainder is sticky.
    let k = (-e10) as u32;
    let mut div = Big::from_u128(1);
    div.mul_pow5(k);
    let t = 67 + div.bit_len() as i64 - d.bit_len() as i64;
    if t >= 0 {
        d.shl(t as u32);
    } else {
        div.shl((-t) as u32);
    }
    let (q, rest) = d.div_bounded(&div, 68);
    round_big(&Big::from_u128(q), -t - k as i64, rest)
}

/// Hex mantissa (after `0x`) and an optional binary `p` exponent.
fn parse_hex(s: &[u8]) -> Option<Ld> {
    let mut i = 0;
    let mut m = Big::from_u128(0);
    let mut frac = 0i64;
    let mut seen_point = false;
    let mut any = false;
    while i < s.len() {
        let c = s[i];
        if let Some(v) = (c as char).to_digit(16) {
            any = true;
            if !m.is_zero() || v != 0 {
                m.mul_small(16);
                m.add_small(v);
            }
            if seen_point {
                frac += 4;
            }
        } else if c == b'.' && !seen_point {
            seen_point = true;
        } else {
            break;
        }
        i += 1;
    }
    if !any {
        // strtold reads "0" and stops at the "x": trailing garbage.
        return None;
    }
    let exp = parse_exp(&s[i..], b'p')?;
    if m.is_zero() {
        return Some(Ld::ZERO);
    }
    let e2 = exp.saturating_sub(frac);
    if e2.saturating_add(m.bit_len() as i64) > TOP_MAX as i64 + 2 || e2 < -40000 {
        return None;
    }
    round_big(&m, e2, false)
}

/// An exponent suffix (`e`/`p`, optional sign, digits) that must end the string; saturates.
fn parse_exp(s: &[u8], marker: u8) -> Option<i64> {
    if s.is_empty() {
        return Some(0);
    }
    if s[0].to_ascii_lowercase() != marker {
        return None;
    }
    let (neg, digits) = match s.get(1) {
        Some(b'-') => (true, &s[2..]),
        Some(b'+') => (false, &s[2..]),
        _ => (false, &s[1..]),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let v = digits.iter().fold(0i64, |a, &c| (a * 10 + (c - b'0') as i64).min(1 << 40));
    Some(if neg { -v } else { v })
}

/// Minimal unsigned big integer: little-endian 32-bit limbs, no high zero limbs.
#[derive(Debug, Clone)]
struct Big(Vec<u32>);

impl Big {
    fn from_u128(mut v: u128) -> Big {
        let mut limbs = Vec::with_capacity(4);
        while v != 0 {
            limbs.push(v as u32);
            v >>= 32;
        }
        Big(limbs)
    }

    fn from_digits(d: &[u8]) -> Big {
        let mut b = Big(Vec::with_capacity(d.len() / 9 + 1));
        for chunk in d.chunks(9) {
            let v = chunk.iter().fold(0u32, |a, &c| a * 10 + c as u32);
            b.mul_small(10u32.pow(chunk.len() as u32));
            b.add_small(v);
        }
        b
    }

    fn is_zero(&self) -> bool {
        self.0.is_empty()
    }

    fn trim(&mut self) {
        while self.0.last() == Some(&0) {
            self.0.pop();
        }
    }

    fn bit_len(&self) -> u64 {
        match self.0.last() {
            None => 0,
            Some(&top) => self.0.len() as u64 * 32 - top.leading_zeros() as u64,
        }
    }

    fn mul_small(&mut self, m: u32) {
        let mut carry = 0u64;
        for l in &mut self.0 {
            let v = *l as u64 * m as u64 + carry;
            *l = v as u32;
            carry = v >> 32;
        }
        if carry != 0 {
            self.0.push(carry as u32);
        }
        self.trim();
    }

    fn add_small(&mut self, a: u32) {
        let mut carry = a as u64;
        for l in &mut self.0 {
            if carry == 0 {
                return;
            }
            let v = *l as u64 + carry;
            *l = v as u32;
            carry = v >> 32;
        }
        if carry != 0 {
            self.0.push(carry as u32);
        }
    }

    fn mul_pow5(&mut self, mut k: u32) {
        const FIVE13: u32 = 1_220_703_125;
        while k >= 13 {
            self.mul_small(FIVE13);
            k -= 13;
        }
        self.mul_small(5u32.pow(k));
    }

    fn shl(&mut self, bits: u32) {
        if self.is_zero() {
            return;
        }
        let (limbs, rem) = ((bits / 32) as usize, bits % 32);
        if rem != 0 {
            let mut carry = 0u32;
            for l in &mut self.0 {
                let v = (*l << rem) | carry;
                carry = *l >> (32 - rem);
                *l = v;
            }
            if carry != 0 {
                self.0.push(carry);
            }
        }
        self.0.splice(0..0, std::iter::repeat_n(0, limbs));
    }

    fn shr1(&mut self) {
        let mut carry = 0u32;
        for l in self.0.iter_mut().rev() {
            let v = (*l >> 1) | (carry << 31);
            carry = *l & 1;
            *l = v;
        }
        self.trim();
    }

    fn cmp(&self, o: &Big) -> Ordering {
        self.0.len().cmp(&o.0.len()).then_with(|| self.0.iter().rev().cmp(o.0.iter().rev()))
    }

    /// `self -= o`; requires `self >= o`.
    fn sub_assign(&mut self, o: &Big) {
        let mut borrow = 0i64;
        for (i, l) in self.0.iter_mut().enumerate() {
            let v = *l as i64 - o.0.get(i).copied().unwrap_or(0) as i64 - borrow;
            borrow = i64::from(v < 0);
            *l = v.rem_euclid(1 << 32) as u32;
        }
        self.trim();
    }

    /// `(self >> cut)` as a u128 (the caller ensures it fits) and whether any bit below `cut`
    /// is set.
    fn top_u128(&self, cut: u64) -> (u128, bool) {
        let (skip, rem) = ((cut / 32) as usize, (cut % 32) as u32);
        let mut lost = self.0.iter().take(skip).any(|&l| l != 0);
        let mut v = 0u128;
        for (i, &l) in self.0.iter().skip(skip).enumerate() {
            if i == 0 {
                lost |= rem != 0 && l & ((1u32 << rem) - 1) != 0;
                v |= (l >> rem) as u128;
            } else if let Some(part) = (l as u128).checked_shl(32 * i as u32 - rem) {
                v |= part;
            }
        }
        (v, lost)
    }

    /// `self / d` when the quotient is known to be below `2^bits`; returns the quotient and
    /// whether the remainder is non-zero.
    fn div_bounded(mut self, d: &Big, bits: u32) -> (u128, bool) {
        let mut step = d.clone();
        step.shl(bits - 1);
        let mut q = 0u128;
        for i in (0..bits).rev() {
            if self.cmp(&step) != Ordering::Less {
                self.sub_assign(&step);
                q |= 1 << i;
            }
            step.shr1();
        }
        (q, !self.is_zero())
    }

    fn div_small(&mut self, d: u32) -> u32 {
        let mut rem = 0u64;
        for l in self.0.iter_mut().rev() {
            let v = (rem << 32) | *l as u64;
            *l = (v / d as u64) as u32;
            rem = v % d as u64;
        }
        self.trim();
        rem as u32
    }

    fn to_decimal(&self) -> String {
        let mut b = self.clone();
        let mut chunks = Vec::new();
        while !b.is_zero() {
            chunks.push(b.div_small(1_000_000_000));
        }
        let mut s = match chunks.pop() {
            Some(top) => top.to_string(),
            None => return String::from("0"),
        };
        for c in chunks.iter().rev() {
            s.push_str(&format!("{c:09}"));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incr(a: &str, b: &str) -> Option<String> {
        let s = Ld::parse(a.as_bytes())?.add(Ld::parse(b.as_bytes())?);
        s.is_finite().then(|| s.to_human())
    }

    #[test]
    fn sums_print_like_valkey() {
        assert_eq!(incr("0.1", "0.2").as_deref(), Some("0.3"));
        assert_eq!(incr("10.50", "0.1").as_deref(), Some("10.6"));
        assert_eq!(incr("5.0e3", "2.0e2").as_deref(), Some("5200"));
        assert_eq!(incr("10000000000", "0.1").as_deref(), Some("10000000000.09999999962747097"));
        assert_eq!(incr("0", "3.0e-18").as_deref(), Some("0"));
        assert_eq!(incr("0", "-0.0").as_deref(), Some("0"));
        assert_eq!(incr("0", "-1e-30").as_deref(), Some("0"));
        assert_eq!(incr("0", "0x1p3").as_deref(), Some("8"));
        assert_eq!(incr("0", "+.5").as_deref(), Some("0.5"));
        assert_eq!(incr("0", "5.").as_deref(), Some("5"));
        assert_eq!(
            incr("0", "123456789012345678901234567890").as_deref(),
            Some("123456789012345678899921813504")
        );
        assert_eq!(incr("1e4932", "1e4932"), None);
        assert_eq!(incr("inf", "1"), None);
    }

    #[test]
    fn parse_refusals() {
        for bad in [
            "", " 1", "1 ", "abc", "nan", "1e", "1e+", ".", "-", "0x", "1e5000", "1e-5000", "infin", "--1",
            "1..2",
        ] {
            assert!(Ld::parse(bad.as_bytes()).is_none(), "{bad:?}");
        }
        assert!(Ld::parse(b"1e400").is_some());
        assert!(Ld::parse(b"1e-4940").is_some());
        assert!(Ld::parse(b"1\x00junk").is_none());
        assert!(Ld::parse(b"\x00").is_none());
    }

    #[test]
    fn integers_are_exact() {
        assert_eq!(Ld::from_i64(i64::MIN).to_human(), "-9223372036854775808");
        assert_eq!(Ld::from_i64(i64::MAX).to_human(), "9223372036854775807");
    }
}
