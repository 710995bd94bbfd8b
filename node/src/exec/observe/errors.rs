//! INFO errorstats: error replies counted by their code (the first word, `ERR`, `WRONGTYPE`,
//! ...), as Valkey does. Like Valkey, at most 128 codes are tracked: past that the table is
//! cleared and a single `ERRORSTATS_DISABLED` entry counts on, until CONFIG RESETSTAT, so a
//! client that invents error codes (scripts can) cannot grow it without bound.

use std::collections::BTreeMap;

const MAX_CODES: usize = 128;
const DISABLED: &str = "ERRORSTATS_DISABLED";

#[derive(Default)]
pub struct ErrorStats {
    /// Code → count, in the order INFO lists them.
    pub counts: BTreeMap<String, u64>,
    disabled: bool,
}

impl ErrorStats {
    /// Counts the error reply `reply` (starting at its `-`).
    pub fn record(&mut self, reply: &[u8]) {
        let body = reply.strip_prefix(b"-").unwrap_or(reply);
        let end = body.iter().position(|&b| b == b' ' || b == b'\r' || b == b'\n').unwrap_or(body.len());
        let code = &body[..end];
        if self.disabled {
            *self.counts.entry(DISABLED.to_string()).or_default() += 1;
            return;
        }
        let code = String::from_utf8_lossy(code);
        if let Some(n) = self.counts.get_mut(code.as_ref()) {
            *n += 1;
            return;
        }
        if self.counts.len() >= MAX_CODES {
            log::warn!(
                "Errorstats stopped adding new errors because the number of different errors reached {MAX_CODES}; all new errors will be tracked as '{DISABLED}'"
            );
            self.counts.clear();
            self.disabled = true;
            self.counts.insert(DISABLED.to_string(), 1);
            return;
        }
        self.counts.insert(code.into_owned(), 1);
    }

    pub fn reset(&mut self) {
        *self = ErrorStats::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_code_and_caps_the_table() {
        let mut e = ErrorStats::default();
        e.record(b"-ERR syntax error\r\n");
        e.record(b"-ERR other\r\n");
        e.record(b"-WRONGTYPE Operation\r\n");
        e.record(b"-NOSCRIPT\r\n");
        assert_eq!(e.counts.get("ERR"), Some(&2));
        assert_eq!(e.counts.get("WRONGTYPE"), Some(&1));
        assert_eq!(e.counts.get("NOSCRIPT"), Some(&1));
        for i in 0..200 {
            e.record(format!("-CODE{i} x\r\n").as_bytes());
        }
        assert_eq!(e.counts.len(), 1);
        assert!(e.counts.get(DISABLED).is_some_and(|&n| n > 1));
        e.reset();
        e.record(b"-ERR x\r\n");
        assert_eq!(e.counts.get("ERR"), Some(&1));
    }
}
