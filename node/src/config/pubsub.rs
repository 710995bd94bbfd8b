//! The two directives pub/sub reads, parsed exactly as Valkey's `config.c` does so that
//! `CONFIG SET` accepts and rejects the same values and `CONFIG GET` shows the same canonical
//! text: `notify-keyspace-events` (event class letters, shown normalised: `KEA` reads back as
//! `AKE`) and `client-output-buffer-limit` (`<class> <hard> <soft> <seconds>` groups; a value
//! naming some classes leaves the others as they were).

/// `notify-keyspace-events` flag bits, Valkey's `NOTIFY_*` values.
pub mod flag {
    pub const KEYSPACE: u32 = 1 << 0; // K
    pub const KEYEVENT: u32 = 1 << 1; // E
    pub const GENERIC: u32 = 1 << 2; // g
    pub const STRING: u32 = 1 << 3; // $
    pub const LIST: u32 = 1 << 4; // l
    pub const SET: u32 = 1 << 5; // s
    pub const HASH: u32 = 1 << 6; // h
    pub const ZSET: u32 = 1 << 7; // z
    pub const EXPIRED: u32 = 1 << 8; // x
    pub const EVICTED: u32 = 1 << 9; // e
    pub const STREAM: u32 = 1 << 10; // t
    pub const KEY_MISS: u32 = 1 << 11; // m (not part of A, on purpose)
    pub const MODULE: u32 = 1 << 13; // d
    pub const NEW: u32 = 1 << 14; // n (not part of A)
    /// `A`: every class but `m` and `n`.
    pub const ALL: u32 = GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;
}

/// The flag of one class letter (`K`, `E`, `g`, `$`, ...), or `None` for an unknown letter.
pub fn class_flag(c: char) -> Option<u32> {
    use flag::*;
    Some(match c {
        'A' => ALL,
        'g' => GENERIC,
        '$' => STRING,
        'l' => LIST,
        's' => SET,
        'h' => HASH,
        'z' => ZSET,
        'x' => EXPIRED,
        'e' => EVICTED,
        'K' => KEYSPACE,
        'E' => KEYEVENT,
        't' => STREAM,
        'm' => KEY_MISS,
        'd' => MODULE,
        'n' => NEW,
        _ => return None,
    })
}

/// Valkey's `keyspaceEventsStringToFlags`.
pub fn notify_flags(s: &str) -> Option<u32> {
    s.chars().try_fold(0, |acc, c| class_flag(c).map(|f| acc | f))
}

/// Valkey's `keyspaceEventsFlagsToString`.
pub fn notify_string(flags: u32) -> String {
    use flag::*;
    let mut s = String::new();
    if flags & ALL == ALL {
        s.push('A');
    } else {
        for (f, c) in [
            (GENERIC, 'g'),
            (STRING, '$'),
            (LIST, 'l'),
            (SET, 's'),
            (HASH, 'h'),
            (ZSET, 'z'),
            (EXPIRED, 'x'),
            (EVICTED, 'e'),
            (STREAM, 't'),
            (MODULE, 'd'),
            (NEW, 'n'),
        ] {
            if flags & f != 0 {
                s.push(c);
            }
        }
    }
    for (f, c) in [(KEYSPACE, 'K'), (KEYEVENT, 'E'), (KEY_MISS, 'm')] {
        if flags & f != 0 {
            s.push(c);
        }
    }
    s
}

/// Validates and normalises a `notify-keyspace-events` value.
pub fn normalize_notify(raw: &str) -> Result<String, String> {
    notify_flags(raw)
        .map(notify_string)
        .ok_or_else(|| "Invalid event class character. Use 'Ag$lshzxeKEtmdn'.".to_string())
}

/// One class's output buffer limits, in bytes and seconds (0: no limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ObufLimit {
    pub hard: u64,
    pub soft: u64,
    pub soft_seconds: u64,
}

/// Client classes of `client-output-buffer-limit`, in the order CONFIG GET shows them.
pub const OBUF_CLASSES: [&str; 3] = ["normal", "slave", "pubsub"];

/// The limits of every class, indexed as [`OBUF_CLASSES`].
pub type ObufLimits = [ObufLimit; 3];

fn obuf_class(name: &str) -> Option<usize> {
    match name.to_ascii_lowercase().as_str() {
        "normal" => Some(0),
        "slave" | "replica" => Some(1),
        "pubsub" => Some(2),
        _ => None,
    }
}

/// Parses the canonical (or any valid) form into the three classes' limits, starting from
/// `base` for classes the text does not name.
pub fn parse_obuf(raw: &str, base: ObufLimits) -> Result<ObufLimits, String> {
    let words: Vec<&str> = raw.split_whitespace().collect();
    if !words.len().is_multiple_of(4) {
        return Err("Wrong number of arguments in buffer limit configuration.".into());
    }
    let mut out = base;
    // Valkey validates every group before applying any.
    for g in words.chunks(4) {
        let class = obuf_class(g[0])
            .ok_or_else(|| "Invalid client class specified in buffer limit configuration.".to_string())?;
        let bad = || "Error in hard, soft or soft_seconds setting in buffer limit configuration.".to_string();
        let hard = super::table::parse_memory(g[1]).ok_or_else(bad)?;
        let soft = super::table::parse_memory(g[2]).ok_or_else(bad)?;
        let soft_seconds: u64 =
            g[3].parse::<i64>().ok().and_then(|v| u64::try_from(v).ok()).ok_or_else(bad)?;
        out[class] = ObufLimit { hard, soft, soft_seconds };
    }
    Ok(out)
}

/// The canonical text CONFIG GET shows.
pub fn obuf_string(l: &ObufLimits) -> String {
    OBUF_CLASSES
        .iter()
        .zip(l)
        .map(|(c, l)| format!("{c} {} {} {}", l.hard, l.soft, l.soft_seconds))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Validates a `client-output-buffer-limit` value and merges it over `old` (the current
/// canonical value): only the classes it names change.
pub fn merge_obuf(old: &str, raw: &str) -> Result<String, String> {
    let base = parse_obuf(old, ObufLimits::default()).unwrap_or_default();
    parse_obuf(raw, base).map(|l| obuf_string(&l))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_round_trips_as_valkey_prints() {
        assert_eq!(normalize_notify("KEA").as_deref(), Ok("AKE"));
        assert_eq!(normalize_notify("Kgxn").as_deref(), Ok("gxnK"));
        assert_eq!(normalize_notify("gKE$lshzxetdm").as_deref(), Ok("AKEm"));
        assert_eq!(normalize_notify("").as_deref(), Ok(""));
        assert!(normalize_notify("Kq").is_err());
        assert_eq!(notify_flags("A").map(|f| f & flag::KEY_MISS), Some(0));
    }

    #[test]
    fn obuf_merges_named_classes_only() {
        let def = "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60";
        assert_eq!(
            merge_obuf(def, "pubsub 1mb 0 0").as_deref(),
            Ok("normal 0 0 0 slave 268435456 67108864 60 pubsub 1048576 0 0")
        );
        assert_eq!(
            merge_obuf(def, "replica 1kb 2k 3 normal 1 1 1").as_deref(),
            Ok("normal 1 1 1 slave 1024 2000 3 pubsub 33554432 8388608 60")
        );
        assert_eq!(merge_obuf(def, "").as_deref(), Ok(def));
        assert!(merge_obuf(def, "pubsub 1mb 0").unwrap_err().starts_with("Wrong number"));
        assert!(merge_obuf(def, "pubs 1 0 0").unwrap_err().starts_with("Invalid client class"));
        assert!(merge_obuf(def, "pubsub -1 0 0").unwrap_err().starts_with("Error in hard"));
        assert!(merge_obuf(def, "pubsub 1 0 -3").unwrap_err().starts_with("Error in hard"));
    }
}
