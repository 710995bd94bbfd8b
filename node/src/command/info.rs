//! INFO: Valkey 8's sections and field names in Valkey's order, so that monitoring tools and
//! client libraries that parse INFO work unchanged. Fields for features Shoal does not have
//! (persistence, replication, scripting, pub/sub) keep their idle values. Shoal presents itself
//! as Redis `REDIS_VERSION` plus a `shoal_version` field; it does not claim to be Valkey.
//!
//! `used_memory` is the counting allocator's live figure (`crate::memory`, the same number
//! `maxmemory` is checked against), and `used_memory_rss` is read from `/proc/self/statm`.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use bytes::Bytes;

use super::Handler;
use crate::exec::Ctx;

pub fn handler(name: &str) -> Option<Handler> {
    match name {
        "info" => Some(info),
        _ => None,
    }
}

type Section = fn(&mut Ctx, &mut String);

/// Every section, in output order, and whether plain `INFO` includes it.
const SECTIONS: &[(&str, bool, Section)] = &[
    ("server", true, server),
    ("clients", true, clients),
    ("memory", true, memory),
    ("persistence", true, persistence),
    ("stats", true, stats),
    ("replication", true, replication),
    ("cpu", true, cpu),
    ("modules", true, modules),
    ("commandstats", false, commandstats),
    ("errorstats", true, errorstats),
    ("latencystats", false, latencystats),
    ("cluster", true, cluster),
    ("keyspace", true, keyspace),
];

fn info(ctx: &mut Ctx, args: &[Bytes]) {
    let mut want = [false; SECTIONS.len()];
    if args.len() == 1 {
        for (w, s) in want.iter_mut().zip(SECTIONS) {
            *w = s.1;
        }
    }
    for a in &args[1..] {
        if a.eq_ignore_ascii_case(b"all") || a.eq_ignore_ascii_case(b"everything") {
            want = [true; SECTIONS.len()];
        } else if a.eq_ignore_ascii_case(b"default") {
            for (w, s) in want.iter_mut().zip(SECTIONS) {
                *w |= s.1;
            }
        } else if let Some(i) = SECTIONS.iter().position(|s| a.eq_ignore_ascii_case(s.0.as_bytes())) {
            want[i] = true;
        }
    }
    let mut text = String::with_capacity(4096);
    for (i, s) in SECTIONS.iter().enumerate() {
        if want[i] {
            if !text.is_empty() {
                text.push_str("\r\n");
            }
            (s.2)(ctx, &mut text);
        }
    }
    ctx.out.verbatim(text.as_bytes(), "txt");
}

/// Appends `name:value\r\n`.
macro_rules! field {
    ($out:expr, $name:literal, $($v:tt)+) => {{
        let _ = write!($out, concat!($name, ":"));
        let _ = write!($out, $($v)+);
        $out.push_str("\r\n");
    }};
}

/// Appends `name:0\r\n` for each idle counter.
fn zeros(out: &mut String, names: &[&str]) {
    for n in names {
        out.push_str(n);
        out.push_str(":0\r\n");
    }
}

fn server(ctx: &mut Ctx, out: &mut String) {
    let srv = &*ctx.srv;
    let uptime = srv.started.elapsed().as_secs();
    let hz = srv.config.get_i64("hz");
    out.push_str("# Server\r\n");
    field!(out, "redis_version", "{}", crate::REDIS_VERSION);
    field!(out, "shoal_version", "{}", crate::VERSION);
    field!(out, "redis_git_sha1", "00000000");
    field!(out, "redis_git_dirty", "0");
    field!(out, "redis_build_id", "0");
    field!(out, "redis_mode", "standalone");
    field!(out, "os", "{}", os_name());
    field!(out, "arch_bits", "{}", usize::BITS);
    field!(out, "monotonic_clock", "POSIX clock_gettime");
    field!(out, "multiplexing_api", "{}", if cfg!(target_os = "linux") { "epoll" } else { "kqueue" });
    field!(out, "gcc_version", "0.0.0");
    field!(out, "process_id", "{}", std::process::id());
    let supervised =
        srv.config.get("supervised").filter(|s| matches!(*s, "upstart" | "systemd")).unwrap_or("no");
    field!(out, "process_supervised", "{supervised}");
    field!(out, "run_id", "{}", srv.run_id);
    field!(out, "tcp_port", "{}", srv.port);
    field!(out, "server_time_usec", "{}", crate::util::now_us());
    field!(out, "uptime_in_seconds", "{uptime}");
    field!(out, "uptime_in_days", "{}", uptime / 86400);
    field!(out, "hz", "{hz}");
    field!(out, "configured_hz", "{hz}");
    field!(out, "lru_clock", "{}", srv.raw_lru_clock());
    field!(out, "executable", "{}", srv.executable);
    let file = srv.config.file.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
    field!(out, "config_file", "{file}");
    field!(out, "io_threads_active", "{}", (srv.active_io_threads > 0) as u8);
    // Shoal's own: what the autoscaler reads.
    field!(out, "io_threads_active_count", "{}", srv.active_io_threads);
    field!(out, "executor_busy_ratio", "{:.3}", srv.busy_ratio);
    field!(out, "io_threads_trials", "{}", srv.io_thread_trials.0);
    field!(out, "io_threads_trials_failed", "{}", srv.io_thread_trials.1);
    out.push_str("listener0:name=tcp");
    for b in srv.config.get("bind").unwrap_or("").split_whitespace() {
        let _ = write!(out, ",bind={b}");
    }
    let _ = write!(out, ",port={}\r\n", srv.port);
}

fn clients(ctx: &mut Ctx, out: &mut String) {
    out.push_str("# Clients\r\n");
    field!(out, "connected_clients", "{}", ctx.clients.len());
    field!(out, "cluster_connections", "0");
    field!(out, "maxclients", "{}", ctx.srv.config.get_i64("maxclients"));
    zeros(out, &["client_recent_max_input_buffer", "client_recent_max_output_buffer"]);
    field!(out, "blocked_clients", "{}", ctx.srv.blocking.blocked_clients());
    field!(out, "tracking_clients", "{}", ctx.srv.tracking.clients);
    field!(out, "pubsub_clients", "{}", ctx.srv.pubsub.clients);
    let watching = ctx.clients.iter().filter(|(_, c)| !c.st.watched.is_empty()).count();
    field!(out, "watching_clients", "{watching}");
    field!(out, "clients_in_timeout_table", "0");
    let watched_keys: usize = ctx.srv.dbs.iter().map(|d| d.watch.len()).sum();
    field!(out, "total_watched_keys", "{watched_keys}");
    field!(out, "total_blocking_keys", "{}", ctx.srv.blocking.blocking_keys());
    field!(out, "total_blocking_keys_on_nokey", "0");
}

/// Highest `used_memory` seen, for `used_memory_peak` (reset by CONFIG RESETSTAT).
static PEAK: AtomicU64 = AtomicU64::new(0);

/// `used_memory` when the server had started, before any client or key.
static STARTUP: AtomicU64 = AtomicU64::new(0);

/// Records the memory in use once the server is set up (`used_memory_startup`).
pub fn record_startup_memory() {
    STARTUP.store(used_memory(), Ordering::Relaxed);
}

/// `used_memory_startup`.
pub fn startup_memory() -> u64 {
    STARTUP.load(Ordering::Relaxed)
}

/// The highest `used_memory` seen so far, this reading included.
pub fn used_memory_peak() -> u64 {
    let used = used_memory();
    PEAK.fetch_max(used, Ordering::Relaxed).max(used)
}

/// Forgets the memory peak, as CONFIG RESETSTAT does in Valkey.
pub fn reset_peak() {
    PEAK.store(0, Ordering::Relaxed);
}

/// Bytes the process has allocated (see `crate::memory`).
pub fn used_memory() -> u64 {
    crate::memory::used()
}

/// Resident set size from `/proc/self/statm` (0 where unavailable).
pub fn rss_bytes() -> u64 {
    crate::memory::rss_bytes()
}

fn total_system_memory() -> u64 {
    static TOTAL: OnceLock<u64> = OnceLock::new();
    *TOTAL.get_or_init(|| {
        std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|s| {
                let line = s.lines().find(|l| l.starts_with("MemTotal:"))?;
                line.split_whitespace().nth(1)?.parse::<u64>().ok()
            })
            .map_or(0, |kb| kb * 1024)
    })
}

/// Valkey's `bytesToHuman`: `512B`, `1.50K`, `2.00M`, ...
pub fn bytes_to_human(n: u64) -> String {
    const UNITS: [(u64, &str); 5] =
        [(1 << 50, "P"), (1 << 40, "T"), (1 << 30, "G"), (1 << 20, "M"), (1 << 10, "K")];
    if !(1024..1 << 60).contains(&n) {
        return format!("{n}B");
    }
    for (size, unit) in UNITS {
        if n >= size {
            return format!("{:.2}{unit}", n as f64 / size as f64);
        }
    }
    format!("{n}B")
}

fn memory(ctx: &mut Ctx, out: &mut String) {
    let used = used_memory();
    let peak = PEAK.fetch_max(used, Ordering::Relaxed).max(used);
    let rss = rss_bytes();
    let total = total_system_memory();
    let maxmemory = ctx.srv.config.get_i64("maxmemory").max(0) as u64;
    out.push_str("# Memory\r\n");
    field!(out, "used_memory", "{used}");
    field!(out, "used_memory_human", "{}", bytes_to_human(used));
    field!(out, "used_memory_rss", "{rss}");
    field!(out, "used_memory_rss_human", "{}", bytes_to_human(rss));
    field!(out, "used_memory_peak", "{peak}");
    field!(out, "used_memory_peak_human", "{}", bytes_to_human(peak));
    let perc = if peak > 0 { used as f64 * 100.0 / peak as f64 } else { 0.0 };
    field!(out, "used_memory_peak_perc", "{perc:.2}%");
    let startup = startup_memory().min(used);
    field!(out, "used_memory_startup", "{startup}");
    field!(out, "used_memory_dataset", "{}", used - startup);
    let dperc = if used > 0 { (used - startup) as f64 * 100.0 / used as f64 } else { 0.0 };
    field!(out, "used_memory_dataset_perc", "{dperc:.2}%");
    field!(out, "total_system_memory", "{total}");
    field!(out, "total_system_memory_human", "{}", bytes_to_human(total));
    // Lua: the interpreter's heap, the cached scripts' sources (Valkey's field set).
    let (vm, sources, cached) =
        ctx.srv.scripting.as_ref().map_or((0, 0, 0), |s| (s.lua.used_memory(), s.source_bytes, s.len()));
    field!(out, "used_memory_lua", "{vm}");
    field!(out, "used_memory_vm_eval", "{vm}");
    field!(out, "used_memory_lua_human", "{}", bytes_to_human(vm as u64));
    field!(out, "used_memory_scripts_eval", "{sources}");
    field!(out, "number_of_cached_scripts", "{cached}");
    zeros(out, &["number_of_functions", "number_of_libraries", "used_memory_vm_functions"]);
    field!(out, "used_memory_vm_total", "{vm}");
    field!(out, "used_memory_vm_total_human", "{}", bytes_to_human(vm as u64));
    field!(out, "used_memory_functions", "0");
    field!(out, "used_memory_scripts", "{sources}");
    field!(out, "used_memory_scripts_human", "{}", bytes_to_human(sources as u64));
    field!(out, "maxmemory", "{maxmemory}");
    field!(out, "maxmemory_human", "{}", bytes_to_human(maxmemory));
    field!(out, "maxmemory_policy", "{}", ctx.srv.config.get("maxmemory-policy").unwrap_or("noeviction"));
    let frag = if used > 0 { rss as f64 / used as f64 } else { 0.0 };
    field!(out, "mem_fragmentation_ratio", "{frag:.2}");
    field!(out, "mem_fragmentation_bytes", "{}", rss as i64 - used as i64);
    zeros(
        out,
        &[
            "mem_not_counted_for_evict",
            "mem_replication_backlog",
            "mem_total_replication_buffers",
            "mem_clients_slaves",
            "mem_clients_normal",
            "mem_cluster_links",
            "mem_aof_buffer",
        ],
    );
    field!(out, "mem_allocator", "libc");
    zeros(
        out,
        &[
            "mem_overhead_db_hashtable_rehashing",
            "active_defrag_running",
            "lazyfree_pending_objects",
            "lazyfreed_objects",
        ],
    );
}

fn persistence(ctx: &mut Ctx, out: &mut String) {
    out.push_str("# Persistence\r\n");
    zeros(out, &["loading", "async_loading", "current_cow_peak", "current_cow_size", "current_cow_size_age"]);
    field!(out, "current_fork_perc", "0.00");
    zeros(
        out,
        &[
            "current_save_keys_processed",
            "current_save_keys_total",
            "rdb_changes_since_last_save",
            "rdb_bgsave_in_progress",
        ],
    );
    field!(out, "rdb_last_save_time", "{}", ctx.srv.started_unix);
    field!(out, "rdb_last_bgsave_status", "ok");
    field!(out, "rdb_last_bgsave_time_sec", "-1");
    field!(out, "rdb_current_bgsave_time_sec", "-1");
    zeros(
        out,
        &[
            "rdb_saves",
            "rdb_last_cow_size",
            "rdb_last_load_keys_expired",
            "rdb_last_load_keys_loaded",
            "aof_enabled",
            "aof_rewrite_in_progress",
            "aof_rewrite_scheduled",
        ],
    );
    field!(out, "aof_last_rewrite_time_sec", "-1");
    field!(out, "aof_current_rewrite_time_sec", "-1");
    field!(out, "aof_last_bgrewrite_status", "ok");
    zeros(out, &["aof_rewrites", "aof_rewrites_consecutive_failures"]);
    field!(out, "aof_last_write_status", "ok");
    zeros(out, &["aof_last_cow_size", "module_fork_in_progress", "module_fork_last_cow_size"]);
}

fn stats(ctx: &mut Ctx, out: &mut String) {
    let srv = &*ctx.srv;
    let st = &srv.stats;
    let io = &srv.io_stats;
    out.push_str("# Stats\r\n");
    field!(out, "total_connections_received", "{}", st.total_connections);
    field!(out, "total_commands_processed", "{}", st.total_commands);
    field!(out, "instantaneous_ops_per_sec", "{}", srv.instantaneous_ops());
    field!(out, "total_net_input_bytes", "{}", st.net_input_bytes);
    field!(out, "total_net_output_bytes", "{}", st.net_output_bytes);
    zeros(out, &["total_net_repl_input_bytes", "total_net_repl_output_bytes"]);
    for k in [
        "instantaneous_input_kbps",
        "instantaneous_output_kbps",
        "instantaneous_input_repl_kbps",
        "instantaneous_output_repl_kbps",
    ] {
        let _ = write!(out, "{k}:0.00\r\n");
    }
    field!(out, "rejected_connections", "{}", st.rejected_connections);
    field!(out, "sync_full", "{}", srv.repl.full_syncs);
    field!(out, "sync_partial_ok", "{}", srv.repl.partial_ok);
    field!(out, "sync_partial_err", "{}", srv.repl.partial_err);
    field!(out, "expired_keys", "{}", srv.expired_keys());
    field!(out, "expired_stale_perc", "0.00");
    field!(out, "expired_time_cap_reached_count", "0");
    field!(out, "expire_cycle_cpu_milliseconds", "{}", st.expire_cycle_cpu_ms);
    field!(out, "evicted_keys", "{}", st.evicted_keys);
    zeros(out, &["evicted_clients", "evicted_scripts"]);
    field!(out, "total_eviction_exceeded_time", "{}", srv.evict.exceeded_total_ms());
    field!(out, "current_eviction_exceeded_time", "{}", srv.evict.exceeded_current_us() / 1000);
    field!(out, "keyspace_hits", "{}", st.keyspace_hits);
    field!(out, "keyspace_misses", "{}", st.keyspace_misses);
    let ps = &srv.pubsub;
    field!(out, "pubsub_channels", "{}", ps.channel_count(crate::exec::pubsub::Kind::Channel));
    field!(out, "pubsub_patterns", "{}", ps.channel_count(crate::exec::pubsub::Kind::Pattern));
    field!(out, "pubsubshard_channels", "{}", ps.channel_count(crate::exec::pubsub::Kind::Shard));
    zeros(
        out,
        &[
            "latest_fork_usec",
            "total_forks",
            "migrate_cached_sockets",
            "slave_expires_tracked_keys",
            "active_defrag_hits",
            "active_defrag_misses",
            "active_defrag_key_hits",
            "active_defrag_key_misses",
            "total_active_defrag_time",
            "current_active_defrag_time",
        ],
    );
    let tr = &srv.tracking;
    field!(out, "tracking_total_keys", "{}", tr.total_keys());
    field!(out, "tracking_total_items", "{}", tr.total_items());
    field!(out, "tracking_total_prefixes", "{}", tr.total_prefixes());
    field!(out, "unexpected_error_replies", "{}", st.unexpected_error_replies);
    field!(out, "total_error_replies", "{}", st.total_error_replies);
    if let Some(bus) = ctx.srv.bus.as_ref() {
        // Shoal's: PUBLISH forwarded to other nodes (cluster::bus).
        field!(
            out,
            "cluster_publish_forwarded",
            "{}",
            bus.stats.forwarded.load(std::sync::atomic::Ordering::Relaxed)
        );
        field!(
            out,
            "cluster_publish_dropped",
            "{}",
            bus.stats.dropped.load(std::sync::atomic::Ordering::Relaxed)
        );
    }
    field!(out, "dump_payload_sanitizations", "0");
    let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
    field!(out, "io_threaded_reads_processed", "{}", load(&io.reads));
    field!(out, "io_threaded_writes_processed", "{}", load(&io.writes));
    field!(out, "io_threaded_freed_objects", "{}", load(&io.freed));
    field!(out, "io_threaded_poll_processed", "{}", load(&io.polls));
    field!(out, "io_threaded_total_prefetch_batches", "{}", st.prefetch_batches);
    field!(out, "io_threaded_total_prefetch_entries", "{}", st.prefetch_entries);
    field!(out, "client_query_buffer_limit_disconnections", "{}", st.client_qbuf_limit_disconnections);
    field!(out, "client_output_buffer_limit_disconnections", "{}", srv.pubsub.limit_disconnections);
    zeros(out, &["reply_buffer_shrinks", "reply_buffer_expands"]);
    let acl = srv.acl.stats;
    field!(out, "acl_access_denied_auth", "{}", acl[0]);
    field!(out, "acl_access_denied_cmd", "{}", acl[1]);
    field!(out, "acl_access_denied_key", "{}", acl[2]);
    field!(out, "acl_access_denied_channel", "{}", acl[3]);
    // Shoal's own (Valkey has no TLS counters); shown only when TLS is configured.
    if srv.tls.is_some() {
        field!(out, "tls_handshakes", "{}", st.tls_handshakes);
        field!(out, "tls_handshake_failures", "{}", st.tls_handshake_failures);
        field!(out, "tls_handshake_timeouts", "{}", st.tls_handshake_timeouts);
        field!(out, "tls_reloads", "{}", st.tls_reloads);
    }
}

fn replication(ctx: &mut Ctx, out: &mut String) {
    crate::replication::commands::info(ctx, out);
}

/// System and user CPU seconds of `who`, in that order (0 if the call fails).
pub(crate) fn rusage(who: libc::c_int) -> (f64, f64) {
    // SAFETY: rusage is plain old data, valid when zeroed.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid, writable rusage for the duration of the call.
    if unsafe { libc::getrusage(who, &mut ru) } != 0 {
        return (0.0, 0.0);
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (secs(ru.ru_stime), secs(ru.ru_utime))
}

fn cpu(_ctx: &mut Ctx, out: &mut String) {
    // INFO runs on the executor thread, which is Valkey's "main thread".
    #[cfg(target_os = "linux")]
    const THREAD: libc::c_int = libc::RUSAGE_THREAD;
    #[cfg(not(target_os = "linux"))]
    const THREAD: libc::c_int = libc::RUSAGE_SELF;
    let (sys, user) = rusage(libc::RUSAGE_SELF);
    let (csys, cuser) = rusage(libc::RUSAGE_CHILDREN);
    let (tsys, tuser) = rusage(THREAD);
    out.push_str("# CPU\r\n");
    field!(out, "used_cpu_sys", "{sys:.6}");
    field!(out, "used_cpu_user", "{user:.6}");
    field!(out, "used_cpu_sys_children", "{csys:.6}");
    field!(out, "used_cpu_user_children", "{cuser:.6}");
    field!(out, "used_cpu_sys_main_thread", "{tsys:.6}");
    field!(out, "used_cpu_user_main_thread", "{tuser:.6}");
}

fn modules(_ctx: &mut Ctx, out: &mut String) {
    out.push_str("# Modules\r\n");
}

fn cluster(ctx: &mut Ctx, out: &mut String) {
    out.push_str("# Cluster\r\n");
    field!(out, "cluster_enabled", "{}", u8::from(ctx.srv.cluster.is_some()));
}

fn keyspace(ctx: &mut Ctx, out: &mut String) {
    out.push_str("# Keyspace\r\n");
    let now = ctx.now_ms;
    for (i, db) in ctx.srv.dbs.iter().enumerate() {
        if !db.is_empty() {
            let _ = write!(
                out,
                "db{i}:keys={},expires={},avg_ttl={}\r\n",
                db.len(),
                db.volatile_len(),
                db.avg_ttl(now)
            );
        }
    }
}

/// `uname` as Valkey prints it: system, release, machine.
fn os_name() -> &'static str {
    static OS: OnceLock<String> = OnceLock::new();
    OS.get_or_init(|| {
        let read = |p: &str| std::fs::read_to_string(p).map(|s| s.trim().to_string()).unwrap_or_default();
        let sys = read("/proc/sys/kernel/ostype");
        let sys = if sys.is_empty() { std::env::consts::OS.to_string() } else { sys };
        format!("{sys} {} {}", read("/proc/sys/kernel/osrelease"), std::env::consts::ARCH)
    })
}

/// `cmdstat_<name>:calls=..,usec=..,usec_per_call=..,rejected_calls=..,failed_calls=..` for
/// every command (subcommands as `parent|sub`) that ran or was refused, sorted by name.
fn commandstats(ctx: &mut Ctx, out: &mut String) {
    out.push_str("# Commandstats\r\n");
    let srv = &*ctx.srv;
    // `entries` already includes the subcommands.
    let mut rows: Vec<(&str, crate::exec::CmdStat)> = srv
        .registry
        .entries()
        .filter_map(|e| {
            let st = srv.cmd_stats.get(e.id).filter(|s| s.calls + s.rejected + s.failed > 0)?;
            Some((e.full_name.as_str(), *st))
        })
        .collect();
    rows.sort_by(|a, b| a.0.cmp(b.0));
    for (name, st) in rows {
        let usec = st.nanos / 1000;
        let per_call = if st.calls == 0 { 0.0 } else { usec as f64 / st.calls as f64 };
        let _ = write!(
            out,
            "cmdstat_{name}:calls={},usec={usec},usec_per_call={per_call:.2},rejected_calls={},failed_calls={}\r\n",
            st.calls, st.rejected, st.failed
        );
    }
}

/// Error replies by code (`exec::observe::errors`).
fn errorstats(ctx: &mut Ctx, out: &mut String) {
    out.push_str("# Errorstats\r\n");
    for (code, n) in &ctx.srv.observe.errors.counts {
        let _ = write!(out, "errorstat_{code}:count={n}\r\n");
    }
}

/// Per-command latency percentiles (`latency-tracking-info-percentiles`), in microseconds.
fn latencystats(ctx: &mut Ctx, out: &mut String) {
    out.push_str("# Latencystats\r\n");
    let srv = &*ctx.srv;
    let percentiles: Vec<(String, f64)> = srv
        .config
        .get("latency-tracking-info-percentiles")
        .unwrap_or("")
        .split_whitespace()
        .filter_map(|p| p.parse::<f64>().ok().map(|v| (p.to_string(), v)))
        .collect();
    let mut rows: Vec<(&str, &crate::exec::observe::histogram::Histogram)> = srv
        .registry
        .entries()
        .filter_map(|e| Some((e.full_name.as_str(), srv.observe.histogram(e.id).filter(|h| h.total > 0)?)))
        .collect();
    rows.sort_by(|a, b| a.0.cmp(b.0));
    for (name, h) in rows {
        let _ = write!(out, "latency_percentiles_usec_{name}:");
        for (i, (label, p)) in percentiles.iter().enumerate() {
            let sep = if i == 0 { "" } else { "," };
            let _ = write!(out, "{sep}p{}={:.3}", trim_number(label), h.percentile(*p) as f64 / 1000.0);
        }
        out.push_str("\r\n");
    }
}

/// `99.90` as `99.9`, `50.0` as `50` (Valkey's trimDoubleString).
fn trim_number(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::testing::Harness;

    fn sections(reply: &str) -> Vec<String> {
        reply.split("\r\n").filter(|l| l.starts_with("# ")).map(|l| l[2..].to_string()).collect()
    }

    #[test]
    fn default_all_and_named_sections_in_order() {
        let mut h = Harness::default();
        let default = [
            "Server",
            "Clients",
            "Memory",
            "Persistence",
            "Stats",
            "Replication",
            "CPU",
            "Modules",
            "Errorstats",
            "Cluster",
            "Keyspace",
        ];
        // As Redis 7.0 / Valkey 8 order them.
        let mut all = default.to_vec();
        all.insert(8, "Commandstats");
        all.insert(10, "Latencystats");
        assert_eq!(sections(&h.run("INFO")), default);
        assert_eq!(sections(&h.run("INFO everything")), all);
        assert_eq!(sections(&h.run("INFO default")), default);
        assert_eq!(sections(&h.run("INFO keyspace CPU server KEYSPACE")), ["Server", "CPU", "Keyspace"]);
        assert_eq!(h.run("INFO nosuch"), "$0\r\n\r\n");
        assert_eq!(h.run("INFO cluster"), "$30\r\n# Cluster\r\ncluster_enabled:0\r\n\r\n");
    }

    #[test]
    fn commandstats_count_calls_rejections_and_failures_per_command() {
        let mut h = Harness::default();
        h.run("SET a 1");
        h.run("SET a 2");
        h.run("GET");
        h.run("LPUSH a x");
        h.run("CONFIG GET maxmemory");
        let r = h.run("INFO commandstats");
        let line = |name: &str| {
            r.split("\r\n").find(|l| l.starts_with(&format!("cmdstat_{name}:"))).map(str::to_string)
        };
        let set = line("set").expect("cmdstat_set");
        assert!(
            set.starts_with("cmdstat_set:calls=2,usec=") && set.ends_with(",rejected_calls=0,failed_calls=0"),
            "{set}"
        );
        let get = line("get").expect("cmdstat_get");
        assert!(
            get.starts_with("cmdstat_get:calls=0,") && get.ends_with("rejected_calls=1,failed_calls=0"),
            "{get}"
        );
        assert!(line("lpush").expect("lpush").ends_with("rejected_calls=0,failed_calls=1"));
        assert!(line("config|get").is_some(), "{r}");
        assert!(line("del").is_none(), "commands never called are not listed: {r}");
    }

    #[test]
    fn avg_ttl_of_far_deadlines_does_not_overflow() {
        let mut h = Harness::default();
        for k in ["a", "b", "c"] {
            assert_eq!(h.run(&format!("SET {k} v")), "+OK\r\n");
            assert_eq!(h.run(&format!("PEXPIREAT {k} 9223372036854775806")), ":1\r\n");
        }
        let r = h.run("INFO keyspace");
        let ttl: i64 =
            r.split("avg_ttl=").nth(1).and_then(|t| t.split("\r\n").next()?.parse().ok()).expect("avg_ttl");
        assert!(ttl > 9_000_000_000_000_000_000, "{r}");
    }

    #[test]
    fn keyspace_and_framing() {
        let mut h = Harness::default();
        h.srv.dbs[0].set(b"a", crate::keyspace::Value::Int(1), None, 0);
        let at = crate::util::now_ms() + 100_000_000;
        h.srv.dbs[3].set(b"x", crate::keyspace::Value::Int(1), Some(at), 0);
        let r = h.run("INFO keyspace cluster");
        let body = r.split_once("\r\n").map(|x| x.1).unwrap_or("");
        assert!(body.starts_with(
            "# Cluster\r\ncluster_enabled:0\r\n\r\n# Keyspace\r\ndb0:keys=1,expires=0,avg_ttl=0\r\ndb3:keys=1,expires=1,avg_ttl="
        ), "{r}");
        h.clients[0].st.resp3 = true;
        assert!(h.run("INFO cluster").starts_with("=34\r\ntxt:# Cluster\r\n"));
    }

    #[test]
    fn server_stats_memory_fields() {
        let mut h = Harness::default();
        h.srv.stats.keyspace_hits = 7;
        let r = h.run("INFO");
        for f in [
            "redis_version:7.2.4\r\n",
            "redis_mode:standalone\r\n",
            "connected_clients:1\r\n",
            "maxclients:10000\r\n",
            "keyspace_hits:7\r\n",
            "mem_allocator:libc\r\n",
            "role:master\r\n",
            "io_threaded_freed_objects:0\r\n",
            "maxmemory_policy:noeviction\r\n",
        ] {
            assert!(r.contains(f), "missing {f:?}");
        }
        assert!(used_memory() > 0);
        assert!(rss_bytes() > 0);
        for line in r.split("\r\n").skip(1) {
            assert!(line.is_empty() || line.starts_with('#') || line.contains(':'), "{line:?}");
        }
    }

    #[test]
    fn human_sizes() {
        assert_eq!(bytes_to_human(0), "0B");
        assert_eq!(bytes_to_human(1023), "1023B");
        assert_eq!(bytes_to_human(1536), "1.50K");
        assert_eq!(bytes_to_human(1 << 20), "1.00M");
        assert_eq!(bytes_to_human(3 << 30), "3.00G");
    }
}
