//! SLOWLOG: the commands that ran longer than `slowlog-log-slower-than` microseconds, newest
//! first, at most `slowlog-max-len` of them, each with Valkey's truncation (32 arguments, 128
//! bytes per argument) and secrets redacted.

use std::collections::VecDeque;

use bytes::Bytes;

/// Arguments kept per entry (the last says how many more there were).
const MAX_ARGS: usize = 32;
/// Bytes kept per argument.
const MAX_STRING: usize = 128;

pub struct Entry {
    pub id: u64,
    /// Unix time in seconds.
    pub time: i64,
    pub micros: u64,
    pub args: Vec<Bytes>,
    pub addr: String,
    pub name: Bytes,
}

#[derive(Default)]
pub struct SlowLog {
    /// Newest first.
    pub entries: VecDeque<Entry>,
    next_id: u64,
}

/// Arguments that are never logged (user names and passwords): their positions, as Valkey's
/// AUTH, HELLO and ACL SETUSER redact them.
pub fn redacted(args: &[Bytes]) -> std::ops::Range<usize> {
    let Some(name) = args.first() else { return 0..0 };
    if name.eq_ignore_ascii_case(b"auth") {
        return 1..args.len();
    }
    if name.eq_ignore_ascii_case(b"acl") && args.get(1).is_some_and(|s| s.eq_ignore_ascii_case(b"setuser")) {
        // ACL SETUSER: the user name and every rule (passwords among them), as Valkey.
        return 2..args.len();
    }
    if name.eq_ignore_ascii_case(b"hello") {
        // HELLO protover AUTH user pass [SETNAME name]: the two after AUTH.
        if let Some(i) = args.iter().skip(2).position(|a| a.eq_ignore_ascii_case(b"auth")) {
            return i + 3..i + 5;
        }
    }
    0..0
}

impl SlowLog {
    pub fn push(
        &mut self,
        args: &[Bytes],
        micros: u64,
        time: i64,
        addr: &str,
        name: Option<&Bytes>,
        max_len: usize,
    ) {
        if max_len == 0 {
            self.entries.clear();
            return;
        }
        let secret = redacted(args);
        let shown = args.len().min(MAX_ARGS);
        let mut kept = Vec::with_capacity(shown);
        for (i, a) in args.iter().enumerate().take(shown) {
            if i == MAX_ARGS - 1 && args.len() > MAX_ARGS {
                kept.push(Bytes::from(format!("... ({} more arguments)", args.len() - MAX_ARGS + 1)));
            } else if secret.contains(&i) {
                kept.push(Bytes::from_static(b"(redacted)"));
            } else if a.len() > MAX_STRING {
                let mut s = a[..MAX_STRING].to_vec();
                s.extend_from_slice(format!("... ({} more bytes)", a.len() - MAX_STRING).as_bytes());
                kept.push(Bytes::from(s));
            } else {
                kept.push(a.clone());
            }
        }
        self.entries.push_front(Entry {
            id: self.next_id,
            time,
            micros,
            args: kept,
            addr: addr.to_string(),
            name: name.cloned().unwrap_or_default(),
        });
        self.next_id += 1;
        self.entries.truncate(max_len);
    }

    pub fn reset(&mut self) {
        self.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<Bytes> {
        v.iter().map(|s| Bytes::copy_from_slice(s.as_bytes())).collect()
    }

    #[test]
    fn truncates_redacts_and_bounds() {
        let mut log = SlowLog::default();
        let many: Vec<String> = (0..40).map(|i| i.to_string()).collect();
        let many: Vec<&str> = std::iter::once("rpush").chain(many.iter().map(String::as_str)).collect();
        log.push(&args(&many), 20_000, 1, "127.0.0.1:1", None, 2);
        let e = &log.entries[0];
        assert_eq!(e.args.len(), 32);
        assert_eq!(e.args[31], Bytes::from("... (10 more arguments)"));
        let long = "x".repeat(200);
        log.push(&args(&["set", "k", &long]), 20_000, 1, "a", None, 2);
        assert_eq!(log.entries[0].args[2].len(), 128 + "... (72 more bytes)".len());
        log.push(&args(&["auth", "user", "secret"]), 20_000, 1, "a", None, 2);
        assert_eq!(log.entries[0].args, args(&["auth", "(redacted)", "(redacted)"]));
        assert_eq!(redacted(&args(&["ACL", "SETUSER", "u", ">pw"])), 2..4);
        assert_eq!(log.entries.len(), 2, "bounded by slowlog-max-len");
        assert_eq!(log.entries[0].id, 2);
    }
}
