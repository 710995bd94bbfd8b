//! Prometheus text exposition format 0.0.4 from a [`Snapshot`]: a pure function, so the format
//! is unit-tested without a node. Names are `shoal_` plus the INFO field they come from, with
//! units in the name (`_bytes`, `_seconds`) and counters ending in `_total`; every family has
//! `# HELP` and `# TYPE`. `docs/metrics.md` lists them all.

use std::fmt::Write;

use super::snapshot::{Process, Snapshot};

/// `Content-Type` of the output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Quantiles of keys per owned slot.
const SLOT_QUANTILES: [(f64, &str); 5] = [(0.0, "0"), (0.5, "0.5"), (0.9, "0.9"), (0.99, "0.99"), (1.0, "1")];

/// A metric family's type.
#[derive(Clone, Copy)]
enum Type {
    Counter,
    Gauge,
    Summary,
}

/// A number as Prometheus writes it.
trait Value {
    fn write(&self, out: &mut String);
}

impl Value for u64 {
    fn write(&self, out: &mut String) {
        let _ = write!(out, "{self}");
    }
}

impl Value for f64 {
    fn write(&self, out: &mut String) {
        if self.is_nan() {
            out.push_str("NaN");
        } else if self.is_infinite() {
            out.push_str(if *self > 0.0 { "+Inf" } else { "-Inf" });
        } else {
            let _ = write!(out, "{self}");
        }
    }
}

struct Out {
    text: String,
}

impl Out {
    fn family(&mut self, name: &str, kind: Type, help: &str) {
        debug_assert_eq!(matches!(kind, Type::Counter), name.ends_with("_total"), "{name}");
        let kind = match kind {
            Type::Counter => "counter",
            Type::Gauge => "gauge",
            Type::Summary => "summary",
        };
        let _ = writeln!(self.text, "# HELP {name} {help}");
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Value) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                self.text.push_str(k);
                self.text.push_str("=\"");
                escape_label(v, &mut self.text);
                self.text.push('"');
            }
            self.text.push('}');
        }
        self.text.push(' ');
        value.write(&mut self.text);
        self.text.push('\n');
    }

    fn gauge(&mut self, name: &str, help: &str, value: impl Value) {
        self.family(name, Type::Gauge, help);
        self.sample(name, &[], value);
    }

    fn counter(&mut self, name: &str, help: &str, value: impl Value) {
        self.family(name, Type::Counter, help);
        self.sample(name, &[], value);
    }
}

/// Label values escape `\`, `"` and newlines.
fn escape_label(v: &str, out: &mut String) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// The `q` quantile of sorted `values` by nearest rank (0 is the minimum, 1 the maximum).
pub fn quantile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.saturating_sub(1).min(sorted.len() - 1)]
}

/// Renders every family.
pub fn render(s: &Snapshot, p: &Process) -> String {
    let mut o = Out { text: String::with_capacity(8192) };
    o.family(
        "shoal_build_info",
        Type::Gauge,
        "Always 1; labels carry the Shoal and the emulated Redis versions.",
    );
    o.sample("shoal_build_info", &[("version", &s.version), ("redis_version", crate::REDIS_VERSION)], 1u64);
    o.gauge("shoal_uptime_seconds", "Seconds since the node started.", s.uptime_seconds);

    o.gauge("shoal_connected_clients", "Client connections open.", s.connected_clients);
    o.gauge("shoal_blocked_clients", "Clients waiting in a blocking command.", s.blocked_clients);
    o.gauge("shoal_maxclients", "The maxclients limit.", s.maxclients);
    o.counter("shoal_connections_received_total", "Connections accepted.", s.connections_received);
    o.counter(
        "shoal_rejected_connections_total",
        "Connections refused (maxclients, protected mode).",
        s.rejected_connections,
    );
    o.counter("shoal_tls_handshakes_total", "TLS handshakes completed.", s.tls_handshakes);
    o.counter(
        "shoal_tls_handshake_failures_total",
        "TLS handshakes refused: bad or missing client certificate, not TLS, protocol error.",
        s.tls_handshake_failures,
    );
    o.counter(
        "shoal_tls_handshake_timeouts_total",
        "TLS connections closed for stalling in the handshake past tls-handshake-timeout.",
        s.tls_handshake_timeouts,
    );

    o.counter("shoal_commands_processed_total", "Commands run, all kinds.", s.commands_processed);
    o.gauge(
        "shoal_instantaneous_ops_per_second",
        "Commands per second, averaged over the last 1.6 s.",
        s.ops_per_sec,
    );
    o.counter("shoal_net_input_bytes_total", "Bytes of requests received.", s.net_input_bytes);
    o.counter("shoal_net_output_bytes_total", "Bytes of replies sent.", s.net_output_bytes);
    o.counter("shoal_keyspace_hits_total", "Key lookups that found the key.", s.keyspace_hits);
    o.counter("shoal_keyspace_misses_total", "Key lookups that did not find the key.", s.keyspace_misses);
    o.counter("shoal_expired_keys_total", "Keys removed because their TTL passed.", s.expired_keys);
    o.counter("shoal_evicted_keys_total", "Keys evicted to stay under maxmemory.", s.evicted_keys);
    o.counter("shoal_error_replies_total", "Error replies sent.", s.error_replies);

    o.gauge(
        "shoal_memory_used_bytes",
        "Bytes allocated by the process (INFO used_memory).",
        p.used_memory_bytes,
    );
    o.gauge("shoal_memory_rss_bytes", "Resident set size (INFO used_memory_rss).", p.used_memory_rss_bytes);
    o.gauge("shoal_memory_used_peak_bytes", "Highest used_memory seen.", p.used_memory_peak_bytes);
    o.gauge("shoal_memory_max_bytes", "The maxmemory limit (0: none).", s.maxmemory_bytes);
    o.counter("shoal_cpu_user_seconds_total", "User CPU time of the process.", p.cpu_seconds.0);
    o.counter("shoal_cpu_system_seconds_total", "System CPU time of the process.", p.cpu_seconds.1);

    o.family("shoal_db_keys", Type::Gauge, "Keys per database (non-empty databases only).");
    for db in &s.dbs {
        o.sample("shoal_db_keys", &[("db", &db.index.to_string())], db.keys);
    }
    o.family("shoal_db_keys_expiring", Type::Gauge, "Keys with a TTL per database (INFO expires).");
    for db in &s.dbs {
        o.sample("shoal_db_keys_expiring", &[("db", &db.index.to_string())], db.expires);
    }

    o.gauge(
        "shoal_executor_busy_ratio",
        "Share of the last second the executor thread spent working (0..1).",
        s.executor_busy_ratio,
    );
    o.family("shoal_executor_cpu_seconds_total", Type::Counter, "CPU time of the executor thread.");
    o.sample("shoal_executor_cpu_seconds_total", &[("mode", "user")], s.executor_cpu_seconds.0);
    o.sample("shoal_executor_cpu_seconds_total", &[("mode", "system")], s.executor_cpu_seconds.1);
    o.gauge(
        "shoal_io_threads_active",
        "I/O threads receiving jobs (0: the executor does its own I/O).",
        s.io_threads_active,
    );
    o.gauge(
        "shoal_io_threads_limit",
        "The io-threads limit (the executor counts as one).",
        s.io_threads_limit,
    );
    o.counter("shoal_io_threaded_reads_total", "Reads done by I/O threads.", s.io_reads);
    o.counter("shoal_io_threaded_writes_total", "Writes done by I/O threads.", s.io_writes);
    o.counter("shoal_io_threaded_freed_objects_total", "Objects freed by I/O threads.", s.io_freed);
    o.counter(
        "shoal_io_threaded_polls_total",
        "Event polls run by I/O threads for the executor.",
        s.io_polls,
    );

    o.counter(
        "shoal_io_thread_trials_total",
        "I/O threads added on trial (kept only if the command rate rose).",
        s.io_thread_trials.0,
    );
    o.counter(
        "shoal_io_thread_trials_failed_total",
        "I/O threads taken back because the command rate did not rise.",
        s.io_thread_trials.1,
    );

    commands(&mut o, s);
    cluster(&mut o, s);
    o.text
}

fn commands(o: &mut Out, s: &Snapshot) {
    o.family("shoal_commands_total", Type::Counter, "Calls per command (subcommands as `config|get`).");
    for c in &s.commands {
        o.sample("shoal_commands_total", &[("cmd", &c.name)], c.calls);
    }
    o.family(
        "shoal_commands_duration_seconds_total",
        Type::Counter,
        "Time spent running each command (0 while latency-tracking is off).",
    );
    for c in &s.commands {
        o.sample("shoal_commands_duration_seconds_total", &[("cmd", &c.name)], c.duration_seconds);
    }
    o.family(
        "shoal_commands_rejected_calls_total",
        Type::Counter,
        "Calls refused before running (arity, authentication, cluster redirection).",
    );
    for c in &s.commands {
        o.sample("shoal_commands_rejected_calls_total", &[("cmd", &c.name)], c.rejected);
    }
    o.family("shoal_commands_failed_calls_total", Type::Counter, "Calls that ran and replied with an error.");
    for c in &s.commands {
        o.sample("shoal_commands_failed_calls_total", &[("cmd", &c.name)], c.failed);
    }
}

fn cluster(o: &mut Out, s: &Snapshot) {
    o.gauge("shoal_cluster_enabled", "1 in cluster mode.", u64::from(s.cluster.is_some()));
    let Some(c) = &s.cluster else {
        return;
    };
    o.gauge(
        "shoal_cluster_state_ok",
        "1 when the cluster serves every slot (INFO cluster_state).",
        u64::from(c.state_ok),
    );
    o.gauge("shoal_cluster_epoch", "Epoch of the topology installed (0: none).", c.epoch);
    o.gauge("shoal_cluster_slots_assigned", "Slots served by some shard of the cluster.", c.slots_assigned);
    o.gauge("shoal_cluster_slots_owned", "Slots this node serves as primary.", c.slots_owned);
    o.family("shoal_cluster_migrations_active", Type::Gauge, "Slot migrations running on this node.");
    o.sample("shoal_cluster_migrations_active", &[("direction", "export")], c.migrations_exporting);
    o.sample("shoal_cluster_migrations_active", &[("direction", "import")], c.migrations_importing);
    o.family(
        "shoal_cluster_slot_keys",
        Type::Summary,
        "Keys per owned slot: quantiles over owned slots; _sum is the keys, _count the slots.",
    );
    for (q, label) in SLOT_QUANTILES {
        o.sample("shoal_cluster_slot_keys", &[("quantile", label)], quantile(&c.slot_keys, q));
    }
    o.sample("shoal_cluster_slot_keys_sum", &[], c.slot_keys.iter().sum::<u64>());
    o.sample("shoal_cluster_slot_keys_count", &[], c.slot_keys.len() as u64);
    o.counter(
        "shoal_cluster_publish_forwarded_total",
        "PUBLISH/SPUBLISH messages forwarded to a peer node, one per peer (cluster bus).",
        c.publish_forwarded,
    );
    o.counter(
        "shoal_cluster_publish_dropped_total",
        "Messages for a peer node the cluster bus dropped: link down, slow, or queue full.",
        c.publish_dropped,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::snapshot::{ClusterFigures, CommandFigures, DbFigures};
    use std::collections::{HashMap, HashSet};

    /// A parsed exposition: series (name + labels) to value, and each family's type.
    struct Parsed {
        series: HashMap<String, f64>,
        types: HashMap<String, String>,
    }

    /// A strict reader of the text format: every line is a HELP, a TYPE or a sample
    /// `name{k="v",...} value`; every sample's family has HELP and TYPE before it; families
    /// are contiguous; no series appears twice; counters end in `_total`.
    fn check(text: &str) -> Result<Parsed, String> {
        let mut helps = HashSet::new();
        let mut types: HashMap<String, String> = HashMap::new();
        let mut series = HashMap::new();
        let mut finished: HashSet<String> = HashSet::new();
        let mut current: Option<String> = None;
        if !text.ends_with('\n') {
            return Err("no final newline".into());
        }
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, help) = rest.split_once(' ').ok_or(format!("bad HELP: {line}"))?;
                if help.is_empty() || !helps.insert(name.to_string()) {
                    return Err(format!("empty or repeated HELP: {line}"));
                }
                continue;
            }
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').ok_or(format!("bad TYPE: {line}"))?;
                if !["counter", "gauge", "summary", "histogram", "untyped"].contains(&kind) {
                    return Err(format!("unknown type: {line}"));
                }
                if kind == "counter" && !name.ends_with("_total") {
                    return Err(format!("counter without _total: {line}"));
                }
                if types.insert(name.to_string(), kind.to_string()).is_some() || finished.contains(name) {
                    return Err(format!("repeated TYPE: {line}"));
                }
                if let Some(prev) = current.replace(name.to_string()) {
                    finished.insert(prev);
                }
                continue;
            }
            if line.starts_with('#') || line.is_empty() {
                return Err(format!("unexpected line: {line:?}"));
            }
            let (key, value) = line.rsplit_once(' ').ok_or(format!("no value: {line}"))?;
            let value: f64 = match value {
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                v => v.parse().map_err(|_| format!("bad value: {line}"))?,
            };
            let name = key.split('{').next().unwrap_or("");
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
                return Err(format!("bad name: {line}"));
            }
            if let Some(labels) = key.strip_prefix(name) {
                if !labels.is_empty() {
                    check_labels(labels).map_err(|e| format!("{e}: {line}"))?;
                }
            }
            let family = match types.get(name).map(String::as_str) {
                Some(_) => name,
                None => ["_sum", "_count", "_bucket"]
                    .iter()
                    .find_map(|s| name.strip_suffix(s))
                    .filter(|f| types.get(*f).is_some_and(|t| t == "summary" || t == "histogram"))
                    .ok_or(format!("sample without TYPE: {line}"))?,
            };
            if !helps.contains(family) {
                return Err(format!("sample without HELP: {line}"));
            }
            if current.as_deref() != Some(family) {
                return Err(format!("family not contiguous: {line}"));
            }
            if series.insert(key.to_string(), value).is_some() {
                return Err(format!("duplicate series: {line}"));
            }
        }
        Ok(Parsed { series, types })
    }

    /// `{k="v",k2="v2"}` with escapes.
    fn check_labels(s: &str) -> Result<(), String> {
        let inner = s.strip_prefix('{').and_then(|s| s.strip_suffix('}')).ok_or("unbalanced braces")?;
        let mut chars = inner.chars().peekable();
        let mut names = HashSet::new();
        while chars.peek().is_some() {
            let name: String = chars.by_ref().take_while(|&c| c != '=').collect();
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!("bad label name {name:?}"));
            }
            if !names.insert(name) {
                return Err("repeated label".into());
            }
            if chars.next() != Some('"') {
                return Err("label value not quoted".into());
            }
            loop {
                match chars.next() {
                    Some('\\') => match chars.next() {
                        Some('\\' | '"' | 'n') => {}
                        _ => return Err("bad escape".into()),
                    },
                    Some('"') => break,
                    Some('\n') | None => return Err("unterminated label value".into()),
                    Some(_) => {}
                }
            }
            match chars.next() {
                Some(',') | None => {}
                Some(c) => return Err(format!("unexpected {c:?} after label")),
            }
        }
        Ok(())
    }

    fn sample_snapshot() -> Snapshot {
        Snapshot {
            version: "0.1.0".into(),
            uptime_seconds: 12.5,
            connected_clients: 3,
            commands_processed: 1234,
            net_input_bytes: 99,
            keyspace_hits: 7,
            maxmemory_bytes: 1 << 30,
            dbs: vec![
                DbFigures { index: 0, keys: 10, expires: 2 },
                DbFigures { index: 3, keys: 1, expires: 1 },
            ],
            executor_busy_ratio: 0.25,
            io_threads_limit: 4,
            io_thread_trials: (5, 3),
            commands: vec![
                CommandFigures {
                    name: "get".into(),
                    calls: 5,
                    duration_seconds: 0.000_012,
                    rejected: 1,
                    failed: 0,
                },
                CommandFigures {
                    name: "config|get".into(),
                    calls: 2,
                    duration_seconds: 0.5,
                    rejected: 0,
                    failed: 1,
                },
                CommandFigures { name: "we\"ird\\\n".into(), calls: 1, ..CommandFigures::default() },
            ],
            cluster: Some(ClusterFigures {
                state_ok: true,
                epoch: 7,
                slots_assigned: 16384,
                slots_owned: 4,
                migrations_exporting: 1,
                migrations_importing: 0,
                slot_keys: vec![0, 2, 3, 10],
                publish_forwarded: 6,
                publish_dropped: 2,
            }),
            ..Snapshot::default()
        }
    }

    #[test]
    fn output_is_valid_exposition_format() {
        let p = Process { used_memory_bytes: 1000, used_memory_rss_bytes: 4096, ..Process::default() };
        let parsed = check(&render(&sample_snapshot(), &p)).unwrap();
        let v = |k: &str| parsed.series.get(k).copied().unwrap_or_else(|| panic!("missing {k}"));
        assert_eq!(v("shoal_commands_processed_total"), 1234.0);
        assert_eq!(v("shoal_uptime_seconds"), 12.5);
        assert_eq!(v("shoal_memory_used_bytes"), 1000.0);
        assert_eq!(v("shoal_memory_max_bytes"), (1u64 << 30) as f64);
        assert_eq!(v(r#"shoal_db_keys{db="3"}"#), 1.0);
        assert_eq!(v(r#"shoal_db_keys_expiring{db="0"}"#), 2.0);
        assert_eq!(v(r#"shoal_commands_total{cmd="config|get"}"#), 2.0);
        assert_eq!(v(r#"shoal_commands_duration_seconds_total{cmd="get"}"#), 0.000_012);
        assert_eq!(v(r#"shoal_commands_rejected_calls_total{cmd="get"}"#), 1.0);
        assert_eq!(v(r#"shoal_commands_failed_calls_total{cmd="config|get"}"#), 1.0);
        assert_eq!(v(r#"shoal_commands_total{cmd="we\"ird\\\n"}"#), 1.0);
        assert_eq!(v("shoal_executor_busy_ratio"), 0.25);
        assert_eq!(v("shoal_io_thread_trials_total"), 5.0);
        assert_eq!(v("shoal_io_thread_trials_failed_total"), 3.0);
        assert_eq!(v("shoal_cluster_enabled"), 1.0);
        assert_eq!(v("shoal_cluster_epoch"), 7.0);
        assert_eq!(v("shoal_cluster_slots_owned"), 4.0);
        assert_eq!(v(r#"shoal_cluster_migrations_active{direction="export"}"#), 1.0);
        assert_eq!(v(r#"shoal_cluster_slot_keys{quantile="0"}"#), 0.0);
        assert_eq!(v(r#"shoal_cluster_slot_keys{quantile="0.5"}"#), 2.0);
        assert_eq!(v(r#"shoal_cluster_slot_keys{quantile="1"}"#), 10.0);
        assert_eq!(v("shoal_cluster_slot_keys_sum"), 15.0);
        assert_eq!(v("shoal_cluster_slot_keys_count"), 4.0);
        assert_eq!(parsed.types["shoal_cluster_slot_keys"], "summary");
        assert_eq!(v("shoal_cluster_publish_forwarded_total"), 6.0);
        assert_eq!(v("shoal_cluster_publish_dropped_total"), 2.0);
        assert_eq!(parsed.types["shoal_cluster_publish_dropped_total"], "counter");
        for (name, kind) in &parsed.types {
            assert!(name.starts_with("shoal_"), "{name}");
            assert_eq!(kind == "counter", name.ends_with("_total"), "{name}");
        }
    }

    #[test]
    fn empty_snapshot_is_valid_and_has_no_cluster_families() {
        let parsed = check(&render(&Snapshot::default(), &Process::default())).unwrap();
        assert_eq!(parsed.series["shoal_cluster_enabled"], 0.0);
        assert!(!parsed.types.contains_key("shoal_cluster_slots_owned"));
        // Families without series still declare themselves.
        assert_eq!(parsed.types["shoal_commands_total"], "counter");
    }

    #[test]
    fn every_family_is_documented() {
        let doc = include_str!("../../../docs/metrics.md");
        let parsed = check(&render(&sample_snapshot(), &Process::default())).unwrap();
        for name in parsed.types.keys() {
            assert!(doc.contains(&format!("`{name}`")), "docs/metrics.md lacks {name}");
        }
    }

    #[test]
    fn checker_rejects_bad_output() {
        let ok = "# HELP a_total x\n# TYPE a_total counter\na_total 1\n";
        assert!(check(ok).is_ok());
        for bad in [
            "a_total 1\n",
            "# HELP a_total x\n# TYPE a_total counter\na_total 1\na_total 2\n",
            "# HELP a x\n# TYPE a counter\na 1\n",
            "# HELP a x\n# TYPE a gauge\na{b=\"1} 1\n",
            "# HELP a x\n# TYPE a gauge\na one\n",
            "# HELP a x\n# TYPE a gauge\n# HELP b x\n# TYPE b gauge\nb 1\na 1\n",
            "# HELP a x\n# TYPE a gauge\na 1",
        ] {
            assert!(check(bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn quantiles_by_nearest_rank() {
        assert_eq!(quantile(&[], 0.5), 0);
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(quantile(&v, 0.0), 1);
        assert_eq!(quantile(&v, 0.5), 50);
        assert_eq!(quantile(&v, 0.99), 99);
        assert_eq!(quantile(&v, 1.0), 100);
        assert_eq!(quantile(&[4], 0.9), 4);
    }
}
