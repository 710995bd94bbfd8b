//! The directive table: every name `CONFIG GET/SET` and the config file know, with its kind,
//! default and whether it can change at run time. Names follow valkey.conf. Tuning knobs that
//! have no effect in Shoal (encoding thresholds and the like) are accepted and stored because
//! clients and test suites set them.

/// How a directive's value is parsed and shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Bool,
    /// Integer with inclusive bounds.
    Int(i64, i64),
    /// Byte count accepting `k`, `kb`, `m`, `mb`, `g`, `gb` suffixes, with bounds.
    Memory(u64, u64),
    Enum(&'static [&'static str]),
    /// Free text (may be several words, e.g. `bind`).
    Str,
}

/// One directive.
#[derive(Debug)]
pub struct Directive {
    pub name: &'static str,
    pub kind: Kind,
    pub default: &'static str,
    pub mutable: bool,
    /// Older names accepted as synonyms (e.g. `hash-max-ziplist-entries`).
    pub alias: Option<&'static str>,
}

const fn d(name: &'static str, kind: Kind, default: &'static str, mutable: bool) -> Directive {
    Directive { name, kind, default, mutable, alias: None }
}

const fn a(name: &'static str, alias: &'static str, kind: Kind, default: &'static str) -> Directive {
    Directive { name, kind, default, mutable: true, alias: Some(alias) }
}

const LOGLEVELS: &[&str] = &["debug", "verbose", "notice", "warning", "nothing"];
const POLICIES: &[&str] = &[
    "volatile-lru",
    "volatile-lfu",
    "volatile-random",
    "volatile-ttl",
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
    "noeviction",
];
const FSYNC: &[&str] = &["always", "everysec", "no"];
const SUPERVISED: &[&str] = &["upstart", "systemd", "auto", "no"];
const TLS_AUTH: &[&str] = &["yes", "no", "optional"];
const ENDPOINT: &[&str] = &["ip", "hostname", "unknown-endpoint"];
const MAXI: i64 = i32::MAX as i64;
const MB: u64 = 1024 * 1024;

use Kind::*;

/// Every directive Shoal accepts.
pub static DIRECTIVES: &[Directive] = &[
    d("bind", Str, "127.0.0.1 -::1", false),
    d("port", Int(0, 65535), "6379", false),
    d("unixsocket", Str, "", false),
    d("unixsocketperm", Int(0, 0o777), "0", false),
    d("tcp-backlog", Int(0, MAXI), "511", false),
    d("tcp-keepalive", Int(0, MAXI), "300", true),
    d("protected-mode", Bool, "yes", true),
    d("io-threads", Int(1, 128), "1", true),
    d("io-threads-do-reads", Bool, "yes", false),
    d("events-per-io-thread", Int(0, MAXI), "2", true),
    d("prefetch-batch-max-size", Int(0, 128), "16", true),
    d("maxclients", Int(1, u32::MAX as i64), "10000", true),
    d("timeout", Int(0, MAXI), "0", true),
    d("requirepass", Str, "", true),
    // ACL users (see docs/acl.md); `user` lines are collected apart (`Config::users`).
    d("aclfile", Str, "", false),
    d("acllog-max-len", Int(0, i64::MAX), "128", true),
    d("acl-pubsub-default", Enum(&["allchannels", "resetchannels"]), "resetchannels", true),
    d("databases", Int(1, MAXI), "16", false),
    d("dir", Str, "", true),
    d("dbfilename", Str, "dump.rdb", true),
    d("loglevel", Enum(LOGLEVELS), "notice", true),
    d("logfile", Str, "", false),
    d("pidfile", Str, "", false),
    d("daemonize", Bool, "no", false),
    d("supervised", Enum(SUPERVISED), "no", false),
    d("always-show-logo", Bool, "no", false),
    d("set-proc-title", Bool, "yes", false),
    d("maxmemory", Memory(0, u64::MAX), "0", true),
    d("maxmemory-policy", Enum(POLICIES), "noeviction", true),
    d("maxmemory-samples", Int(1, 64), "5", true),
    d("tracking-table-max-keys", Int(0, i64::MAX), "1000000", true),
    d("maxmemory-eviction-tenacity", Int(0, 100), "10", true),
    d("lfu-log-factor", Int(0, MAXI), "10", true),
    d("lfu-decay-time", Int(0, MAXI), "1", true),
    d("hz", Int(0, MAXI), "10", true),
    d("dynamic-hz", Bool, "yes", true),
    d("active-expire-effort", Int(1, 10), "1", true),
    d("proto-max-bulk-len", Memory(MB, i64::MAX as u64), "536870912", true),
    d("client-query-buffer-limit", Memory(MB, i64::MAX as u64), "1073741824", true),
    d(
        "client-output-buffer-limit",
        Str,
        "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60",
        true,
    ),
    d("save", Str, "", true),
    d("appendonly", Bool, "no", true),
    d("appendfilename", Str, "appendonly.aof", false),
    d("appendfsync", Enum(FSYNC), "everysec", true),
    d("lazyfree-lazy-eviction", Bool, "no", true),
    d("lazyfree-lazy-expire", Bool, "no", true),
    d("lazyfree-lazy-server-del", Bool, "no", true),
    d("lazyfree-lazy-user-del", Bool, "no", true),
    d("lazyfree-lazy-user-flush", Bool, "no", true),
    d("notify-keyspace-events", Str, "", true),
    d("slowlog-log-slower-than", Int(-1, i64::MAX), "10000", true),
    d("slowlog-max-len", Int(0, i64::MAX), "128", true),
    d("latency-monitor-threshold", Int(0, i64::MAX), "0", true),
    d("latency-tracking", Bool, "yes", true),
    d("latency-tracking-info-percentiles", Str, "50 99 99.9", true),
    a("busy-reply-threshold", "lua-time-limit", Int(0, i64::MAX), "5000"),
    d("activerehashing", Bool, "yes", true),
    d("activedefrag", Bool, "no", true),
    d("enable-debug-command", Enum(&["no", "yes", "local"]), "no", false),
    d("enable-protected-configs", Enum(&["no", "yes", "local"]), "no", false),
    // A byte count or a percentage of maxmemory; stored, client eviction is not implemented.
    d("maxmemory-clients", Str, "0", true),
    a("replica-read-only", "slave-read-only", Bool, "yes"),
    a("replica-serve-stale-data", "slave-serve-stale-data", Bool, "yes"),
    a("replica-priority", "slave-priority", Int(0, MAXI), "100"),
    a("replica-ignore-maxmemory", "slave-ignore-maxmemory", Bool, "yes"),
    a("repl-ping-replica-period", "repl-ping-slave-period", Int(1, MAXI), "10"),
    // `replicaof <host> <port>` at start; at run time REPLICAOF changes the role.
    Directive { name: "replicaof", kind: Str, default: "", mutable: false, alias: Some("slaveof") },
    d("masterauth", Str, "", true),
    d("masteruser", Str, "", true),
    d("repl-backlog-size", Memory(16 * 1024, i64::MAX as u64), "10485760", true),
    d("repl-backlog-ttl", Int(0, i64::MAX), "3600", true),
    d("repl-timeout", Int(1, i64::MAX), "60", true),
    d("repl-diskless-sync", Bool, "yes", true),
    d("repl-diskless-sync-delay", Int(0, i64::MAX), "5", true),
    d("min-replicas-to-write", Int(0, i64::MAX), "0", true),
    d("min-replicas-max-lag", Int(0, i64::MAX), "10", true),
    // TLS (see docs/tls.md). The files are re-read whenever a tls-* directive is set.
    d("tls-port", Int(0, 65535), "0", false),
    d("tls-cert-file", Str, "", true),
    d("tls-key-file", Str, "", true),
    d("tls-client-cert-file", Str, "", true),
    d("tls-client-key-file", Str, "", true),
    d("tls-ca-cert-file", Str, "", true),
    d("tls-ca-cert-dir", Str, "", true),
    d("tls-auth-clients", Enum(TLS_AUTH), "yes", true),
    d("tls-protocols", Str, "", true),
    d("tls-ciphers", Str, "", true),
    d("tls-ciphersuites", Str, "", true),
    d("tls-prefer-server-ciphers", Bool, "no", true),
    d("tls-session-caching", Bool, "yes", true),
    d("tls-session-cache-size", Int(1, MAXI), "20480", true),
    d("tls-session-cache-timeout", Int(1, MAXI), "300", true),
    d("tls-cluster", Bool, "no", true),
    d("tls-replication", Bool, "no", true),
    d("tls-handshake-timeout", Int(1, MAXI), "10000", true),
    d("tls-auto-reload-interval", Int(0, MAXI), "0", true),
    d("cluster-enabled", Bool, "no", false),
    d("cluster-databases", Int(1, MAXI), "1", false),
    d("cluster-slot-stats-enabled", Bool, "no", true),
    d("cluster-config-file", Str, "nodes.conf", false),
    d("cluster-node-timeout", Int(0, i64::MAX), "15000", true),
    d("cluster-announce-ip", Str, "", true),
    d("cluster-announce-port", Int(0, 65535), "0", true),
    d("cluster-announce-tls-port", Int(0, 65535), "0", true),
    d("cluster-announce-hostname", Str, "", true),
    d("cluster-preferred-endpoint-type", Enum(ENDPOINT), "ip", true),
    d("cluster-require-full-coverage", Bool, "yes", true),
    d("cluster-allow-reads-when-down", Bool, "no", true),
    d("metrics-port", Int(0, 65535), "0", false),
    // Empty: the first `bind` address.
    d("metrics-bind", Str, "", false),
    a("hash-max-listpack-entries", "hash-max-ziplist-entries", Int(0, i64::MAX), "128"),
    a("hash-max-listpack-value", "hash-max-ziplist-value", Int(0, i64::MAX), "64"),
    a("list-max-listpack-size", "list-max-ziplist-size", Int(i32::MIN as i64, MAXI), "-2"),
    d("list-compress-depth", Int(0, MAXI), "0", true),
    d("set-max-intset-entries", Int(0, i64::MAX), "512", true),
    d("set-max-listpack-entries", Int(0, i64::MAX), "128", true),
    d("set-max-listpack-value", Int(0, i64::MAX), "64", true),
    a("zset-max-listpack-entries", "zset-max-ziplist-entries", Int(0, i64::MAX), "128"),
    a("zset-max-listpack-value", "zset-max-ziplist-value", Int(0, i64::MAX), "64"),
    d("hll-sparse-max-bytes", Memory(0, i64::MAX as u64), "3000", true),
    d("stream-node-max-bytes", Memory(0, i64::MAX as u64), "4096", true),
    d("stream-node-max-entries", Int(0, i64::MAX), "100", true),
];

/// Finds a directive by name or alias, case-insensitively.
pub fn find(name: &str) -> Option<&'static Directive> {
    DIRECTIVES
        .iter()
        .find(|d| d.name.eq_ignore_ascii_case(name) || d.alias.is_some_and(|a| a.eq_ignore_ascii_case(name)))
}

/// Parses `memtoull` style sizes: `100`, `1k`(1000), `1kb`(1024), `5mb`, `2gb`.
pub fn parse_memory(s: &str) -> Option<u64> {
    let lower = s.to_ascii_lowercase();
    let split = lower.find(|c: char| !c.is_ascii_digit()).unwrap_or(lower.len());
    let (num, unit) = lower.split_at(split);
    if num.is_empty() {
        return None;
    }
    let mul: u64 = match unit {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    num.parse::<u64>().ok()?.checked_mul(mul)
}

/// Validates `raw` for `dir` and returns the canonical stored form, or Valkey's error text.
pub fn normalize(dir: &Directive, raw: &str) -> Result<String, String> {
    match dir.kind {
        Bool => match raw.to_ascii_lowercase().as_str() {
            "yes" => Ok("yes".into()),
            "no" => Ok("no".into()),
            _ => Err("argument must be 'yes' or 'no'".into()),
        },
        Int(lo, hi) => {
            // Plain integers only: unit suffixes are for memory directives, as in Valkey.
            let v: i64 =
                raw.parse().map_err(|_| "argument couldn't be parsed into an integer".to_string())?;
            if dir.name == "hz" && v >= 0 {
                // Valkey accepts any non-negative hz and clamps it to 1..=500 (`updateHZ`).
                return Ok(v.clamp(1, 500).to_string());
            }
            if v < lo || v > hi {
                return Err(format!("argument must be between {lo} and {hi} inclusive"));
            }
            Ok(v.to_string())
        }
        Memory(lo, hi) => {
            // An empty value means 0, as Valkey's `memtoull` reads it.
            let v = if raw.is_empty() { Some(0) } else { parse_memory(raw) };
            let v = v.ok_or_else(|| "argument must be a memory value".to_string())?;
            if v < lo || v > hi {
                return Err(format!("argument must be between {lo} and {hi} inclusive"));
            }
            Ok(v.to_string())
        }
        Enum(opts) => {
            let lower = raw.to_ascii_lowercase();
            if opts.contains(&lower.as_str()) {
                Ok(lower)
            } else {
                Err(format!("argument(s) must be one of the following: {}", opts.join(", ")))
            }
        }
        // Pub/sub's two structured strings are parsed and shown as Valkey does.
        Str if dir.name == "notify-keyspace-events" => super::pubsub::normalize_notify(raw),
        Str if dir.name == "client-output-buffer-limit" => super::pubsub::merge_obuf(dir.default, raw),
        Str => Ok(raw.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        for d in DIRECTIVES {
            assert_eq!(normalize(d, d.default).as_deref(), Ok(d.default), "{}", d.name);
        }
    }

    #[test]
    fn memory_units() {
        assert_eq!(parse_memory("1kb"), Some(1024));
        assert_eq!(parse_memory("1k"), Some(1000));
        assert_eq!(parse_memory("2GB"), Some(2 << 30));
        assert_eq!(parse_memory("x"), None);
        assert_eq!(parse_memory("-1"), None);
    }

    #[test]
    fn aliases_resolve() {
        assert_eq!(find("hash-max-ziplist-entries").map(|d| d.name), Some("hash-max-listpack-entries"));
        assert!(find("no-such-thing").is_none());
    }
}

#[cfg(test)]
mod doc_tests {
    #[test]
    fn every_directive_is_documented() {
        let doc = include_str!("../../../docs/config.md");
        for d in super::DIRECTIVES {
            assert!(doc.contains(&format!("| `{}` |", d.name)), "docs/config.md lacks {}", d.name);
        }
    }
}
