//! C `strtod` over a byte string, as SORT's numeric mode uses it (Valkey's `sortCommandGeneric`
//! parses every weight with `strtod(ptr, &eptr)` and accepts it when `*eptr == '\0'`). That is
//! looser than the score parsing of the zset family: leading whitespace, hexadecimal floats,
//! `inf`/`nan` spellings and the empty string (no conversion, 0) are all accepted, and a NUL
//! byte ends the number as it ends a C string.

/// What `strtod` did: the value, how many bytes it consumed (0: no conversion) and whether it
/// would have set `errno = ERANGE` (overflow, or underflow to zero or a subnormal).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Parsed {
    pub value: f64,
    pub used: usize,
    pub erange: bool,
}

/// `isspace` in the C locale.
fn c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// True if `s` starts with `w`, ignoring ASCII case.
fn word(s: &[u8], w: &[u8]) -> bool {
    s.len() >= w.len() && s[..w.len()].eq_ignore_ascii_case(w)
}

/// C `strtod` on `s`.
pub fn strtod(s: &[u8]) -> Parsed {
    let none = Parsed { value: 0.0, used: 0, erange: false };
    let mut i = s.iter().position(|&b| !c_space(b)).unwrap_or(s.len());
    let neg = match s.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let sign = |v: f64| if neg { -v } else { v };
    let rest = &s[i..];
    if word(rest, b"infinity") {
        return Parsed { value: sign(f64::INFINITY), used: i + 8, erange: false };
    }
    if word(rest, b"inf") {
        return Parsed { value: sign(f64::INFINITY), used: i + 3, erange: false };
    }
    if word(rest, b"nan") {
        let mut used = i + 3;
        // An optional "(n-char-sequence)".
        if s.get(used) == Some(&b'(') {
            let body = s[used + 1..].iter().take_while(|b| b.is_ascii_alphanumeric() || **b == b'_').count();
            if s.get(used + 1 + body) == Some(&b')') {
                used += body + 2;
            }
        }
        return Parsed { value: f64::NAN, used, erange: false };
    }
    if rest.len() >= 2 && rest[0] == b'0' && (rest[1] | 0x20) == b'x' {
        if let Some((v, n, erange)) = hex(&rest[2..]) {
            return Parsed { value: sign(v), used: i + 2 + n, erange };
        }
        // "0x" without hex digits: only the "0" converts.
        return Parsed { value: sign(0.0), used: i + 1, erange: false };
    }
    let Some((v, n, erange)) = decimal(rest) else { return none };
    Parsed { value: sign(v), used: i + n, erange }
}

/// Valkey's `string2d` (what `getDoubleFromObject` accepts): the whole string is one `strtod`
/// number with no leading space, neither NaN nor an overflow or an underflow to zero.
pub fn string2d(s: &[u8]) -> Option<f64> {
    if s.first().is_none_or(|&b| c_space(b)) {
        return None;
    }
    let p = strtod(s);
    let range = p.erange && (p.value.is_infinite() || p.value == 0.0);
    (p.used == s.len() && !range && !p.value.is_nan()).then_some(p.value)
}

fn digits(s: &[u8], hexa: bool) -> usize {
    s.iter().take_while(|b| if hexa { b.is_ascii_hexdigit() } else { b.is_ascii_digit() }).count()
}

/// A decimal mantissa with an optional exponent: (value, bytes used, ERANGE).
fn decimal(s: &[u8]) -> Option<(f64, usize, bool)> {
    let int = digits(s, false);
    let mut n = int;
    let mut frac = 0;
    if s.get(n) == Some(&b'.') {
        frac = digits(&s[n + 1..], false);
        if int + frac > 0 {
            n += 1 + frac;
        }
    }
    if int + frac == 0 {
        return None;
    }
    let mantissa = n;
    if matches!(s.get(n), Some(b'e' | b'E')) {
        let mut e = n + 1;
        if matches!(s.get(e), Some(b'+' | b'-')) {
            e += 1;
        }
        let d = digits(&s[e..], false);
        if d > 0 {
            n = e + d;
        }
    }
    let text = std::str::from_utf8(&s[..n]).ok()?;
    let v: f64 = text.parse().ok()?;
    let nonzero = s[..mantissa].iter().any(|b| (b'1'..=b'9').contains(b));
    let erange = v.is_infinite() || (nonzero && v.abs() < f64::MIN_POSITIVE);
    Some((v, n, erange))
}

/// A hexadecimal mantissa (after "0x") with an optional binary exponent.
fn hex(s: &[u8]) -> Option<(f64, usize, bool)> {
    let int = digits(s, true);
    let mut n = int;
    let mut frac = 0;
    if s.get(n) == Some(&b'.') {
        frac = digits(&s[n + 1..], true);
        if int + frac > 0 {
            n += 1 + frac;
        }
    }
    if int + frac == 0 {
        return None;
    }
    // Up to 15 significant hex digits exactly; later ones only as a sticky bit.
    let (mut m, mut exp, mut sticky, mut sig) = (0u64, 0i64, false, 0);
    let frac_start = int + 1;
    for (k, &b) in s[..n].iter().enumerate() {
        if b == b'.' {
            continue;
        }
        let d = (b as char).to_digit(16).unwrap_or(0) as u64;
        let in_frac = frac > 0 && k >= frac_start;
        if m == 0 && d == 0 {
            if in_frac {
                exp -= 4;
            }
            continue;
        }
        if sig < 15 {
            m = m * 16 + d;
            sig += 1;
            if in_frac {
                exp -= 4;
            }
        } else {
            sticky |= d != 0;
            if !in_frac {
                exp += 4;
            }
        }
    }
    if matches!(s.get(n), Some(b'p' | b'P')) {
        let mut e = n + 1;
        let neg = s.get(e) == Some(&b'-');
        if matches!(s.get(e), Some(b'+' | b'-')) {
            e += 1;
        }
        let d = digits(&s[e..], false);
        if d > 0 {
            let mut x: i64 = 0;
            for &b in &s[e..e + d] {
                x = (x * 10 + i64::from(b - b'0')).min(1 << 20);
            }
            exp += if neg { -x } else { x };
            n = e + d;
        }
    }
    if m == 0 {
        return Some((0.0, n, false));
    }
    let mant = ((m << 1) | u64::from(sticky)) as f64;
    let v = mant * 2f64.powi((exp - 1).clamp(-1100, 1100) as i32);
    let erange = v.is_infinite() || v.abs() < f64::MIN_POSITIVE;
    Some((v, n, erange))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Option<f64> {
        let p = strtod(s.as_bytes());
        let end = s.as_bytes().get(p.used).is_none_or(|&b| b == 0);
        (end && !p.erange && !p.value.is_nan()).then_some(p.value)
    }

    #[test]
    fn accepts_what_strtod_accepts() {
        assert_eq!(ok("1.5"), Some(1.5));
        assert_eq!(ok("  -2"), Some(-2.0));
        assert_eq!(ok(""), Some(0.0));
        assert_eq!(ok("0x10"), Some(16.0));
        assert_eq!(ok("0x1p-2"), Some(0.25));
        assert_eq!(ok("-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(ok("1e3"), Some(1000.0));
        assert_eq!(ok("5."), Some(5.0));
        assert_eq!(ok(".5"), Some(0.5));
        assert_eq!(ok("1\0zz"), Some(1.0));
        for bad in ["abc", "1 ", " ", "nan", "1e400", "1e-400", "0x", "1e", "--1"] {
            assert_eq!(ok(bad), None, "{bad:?}");
        }
        assert_eq!(strtod(b"1e").used, 1);
        assert_eq!(strtod(b"0xg").used, 1);
    }

    #[test]
    fn string2d_is_strict() {
        assert_eq!(string2d(b"0x10"), Some(16.0));
        assert_eq!(string2d(b"-1.5e1"), Some(-15.0));
        assert_eq!(string2d(b"inf"), Some(f64::INFINITY));
        assert_eq!(string2d(b"1e-310"), Some(1e-310));
        for bad in [&b""[..], b" 1", b"1 ", b"1\0", b"nan", b"1e400", b"1e-400", b"x"] {
            assert_eq!(string2d(bad), None);
        }
    }
}
