//! Argument parsing with Valkey's acceptance rules: scores (`string2d`: whole string, no
//! leading space, no NaN, no overflow to infinity or underflow to zero), range ends
//! (`zslParseRange`: `(` for exclusive, then plain `strtod`), lexicographic ends
//! (`zslParseLexRange`: `[x`, `(x`, `-`, `+`).

use crate::keyspace::types::zset::{LexBound, LexRange, ScoreRange};

/// `isspace` in the C locale.
fn c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Parses a complete float as `strtod` would (decimal forms and inf/infinity/nan in any case).
fn strtod_all(s: &[u8]) -> Option<f64> {
    let t = std::str::from_utf8(s).ok()?;
    if t.is_empty() {
        return None;
    }
    let body = t.trim_start_matches(['+', '-']);
    if body.is_empty()
        || !body.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'+' || b == b'-')
    {
        return None;
    }
    t.parse::<f64>().ok()
}

/// A score argument (`getDoubleFromObject`): `None` for anything Valkey refuses.
pub fn score(s: &[u8]) -> Option<f64> {
    if s.first().is_none_or(|&b| c_space(b)) {
        return None;
    }
    let v = strtod_all(s)?;
    if v.is_nan() {
        return None;
    }
    let lower = s.to_ascii_lowercase();
    let body = lower.strip_prefix(b"-").or_else(|| lower.strip_prefix(b"+")).unwrap_or(&lower);
    if v.is_infinite() && !body.starts_with(b"inf") {
        return None; // ERANGE overflow
    }
    if v == 0.0 {
        let mantissa = body.split(|&b| b == b'e').next().unwrap_or(&[]);
        if mantissa.iter().any(|b| (b'1'..=b'9').contains(b)) {
            return None; // ERANGE underflow to zero
        }
    }
    Some(v)
}

/// One end of a score range: `strtod` over the rest after an optional `(`, which must
/// consume it all (an empty rest reads as 0, as `strtod` leaves it).
fn range_end(s: &[u8]) -> Option<(f64, bool)> {
    let (ex, rest) = match s.first() {
        Some(b'(') => (true, &s[1..]),
        _ => (false, s),
    };
    if rest.is_empty() {
        return Some((0.0, ex));
    }
    let start = rest.iter().position(|&b| !c_space(b))?;
    let v = strtod_all(&rest[start..])?;
    if v.is_nan() {
        return None;
    }
    Some((v, ex))
}

/// `min max` of a score range; `None` means "min or max is not a float".
pub fn score_range(min: &[u8], max: &[u8]) -> Option<ScoreRange> {
    let (min, minex) = range_end(min)?;
    let (max, maxex) = range_end(max)?;
    Some(ScoreRange { min, max, minex, maxex })
}

fn lex_end(s: &[u8]) -> Option<LexBound> {
    match s.first()? {
        b'+' if s.len() == 1 => Some(LexBound::Max),
        b'-' if s.len() == 1 => Some(LexBound::Min),
        b'(' => Some(LexBound::Excl(s[1..].into())),
        b'[' => Some(LexBound::Incl(s[1..].into())),
        _ => None,
    }
}

/// `min max` of a lexicographic range; `None` means "min or max not valid string range item".
pub fn lex_range(min: &[u8], max: &[u8]) -> Option<LexRange> {
    Some(LexRange { min: lex_end(min)?, max: lex_end(max)? })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_follow_string2d() {
        assert_eq!(score(b"1.5"), Some(1.5));
        assert_eq!(score(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(score(b"+Infinity"), Some(f64::INFINITY));
        assert_eq!(score(b"1e3"), Some(1000.0));
        assert_eq!(score(b".5"), Some(0.5));
        assert_eq!(score(b"0"), Some(0.0));
        assert_eq!(score(b"0e10"), Some(0.0));
        for bad in [&b""[..], b" 1", b"1 ", b"nan", b"abc", b"1e400", b"1e-400", b"1,5", b"0x"] {
            assert_eq!(score(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn range_ends_follow_strtod() {
        let r = score_range(b"(1", b"+inf").expect("valid");
        assert!(r.minex && !r.maxex && r.min == 1.0 && r.max == f64::INFINITY);
        let r = score_range(b"(", b" 2").expect("strtod of nothing is 0; spaces lead");
        assert!(r.min == 0.0 && r.max == 2.0);
        assert!(score_range(b"1e400", b"2").is_some_and(|r| r.min.is_infinite()));
        assert!(score_range(b"nan", b"1").is_none());
        assert!(score_range(b"[1", b"2").is_none());
        assert!(lex_range(b"[a", b"(b").is_some());
        assert!(lex_range(b"-", b"+").is_some());
        assert!(lex_range(b"a", b"+").is_none());
        assert!(lex_range(b"+x", b"+").is_none());
    }
}
