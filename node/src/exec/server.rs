//! State the executor owns besides clients: databases, configuration, statistics, and the
//! node's identity. Only the executor thread ever touches it.

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::evict::Eviction;
use crate::cluster::ClusterState;
use crate::command::Registry;
use crate::config::Config;
use crate::keyspace::Db;
use crate::net::io_thread::IoStats;

/// Counters reported by INFO stats and reset by CONFIG RESETSTAT.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub total_connections: u64,
    pub total_commands: u64,
    pub rejected_connections: u64,
    pub keyspace_hits: u64,
    pub keyspace_misses: u64,
    pub expired_keys: u64,
    pub evicted_keys: u64,
    pub net_input_bytes: u64,
    pub net_output_bytes: u64,
    pub total_error_replies: u64,
    pub unexpected_error_replies: u64,
    pub client_qbuf_limit_disconnections: u64,
    pub expire_cycle_cpu_ms: u64,
    /// Batches prefetched before execution, and the keys they covered.
    pub prefetch_batches: u64,
    pub prefetch_entries: u64,
    /// TLS handshakes that completed, failed (bad certificate, not TLS at all, protocol
    /// error) or were cut off by `tls-handshake-timeout`.
    pub tls_handshakes: u64,
    pub tls_handshake_failures: u64,
    pub tls_handshake_timeouts: u64,
    /// Certificate reloads by `tls-auto-reload-interval`.
    pub tls_reloads: u64,
}

/// One command's figures (Valkey's `cmdstat_*`), indexed by `command::Entry::id`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CmdStat {
    /// Times the handler ran.
    pub calls: u64,
    /// Time spent in the handler, in nanoseconds (0 while `latency-tracking` is off).
    pub nanos: u64,
    /// Refused before running: arity, authentication, cluster redirection.
    pub rejected: u64,
    /// Ran and replied with an error.
    pub failed: u64,
}

/// Why the node is stopping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    Signal(&'static str),
    Command,
}

/// The executor's state.
pub struct Server {
    pub dbs: Vec<Db>,
    pub config: Config,
    pub stats: Stats,
    pub registry: &'static Registry,
    pub io_stats: Arc<IoStats>,
    /// The time of the batch being run (see `tick`).
    pub now: Instant,
    pub now_ms: i64,
    pub started: Instant,
    pub started_unix: u64,
    pub run_id: String,
    pub port: u16,
    /// The TLS port bound (`tls-port`), 0 when TLS is not served.
    pub tls_port: u16,
    /// The config new TLS connections handshake with; replaced on CONFIG SET of a `tls-*`
    /// directive, while established sessions keep the one they started with.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// What `tls-auto-reload-interval` last saw of the TLS files.
    pub tls_reload: super::tls_config::AutoReload,
    pub shutdown: Option<Shutdown>,
    pub next_client_id: u64,
    /// Values to drop off the executor (on an I/O thread when one is running).
    pub garbage: Vec<Box<dyn Send>>,
    /// Ops/sec samples for INFO `instantaneous_ops_per_sec`.
    pub ops_samples: [u64; 16],
    pub ops_sample_idx: usize,
    pub last_sample: (Instant, u64),
    /// I/O threads currently receiving jobs (0: the executor does its own I/O).
    pub active_io_threads: usize,
    /// The executor's busy ratio over the last second (0..=1), for INFO and the autoscaler.
    pub busy_ratio: f64,
    /// I/O threads added on trial, and those taken back because the command rate did not rise
    /// (see `exec::scaler`).
    pub io_thread_trials: (u64, u64),
    /// `notify-keyspace-events` as flags (0: off), kept in step by CONFIG SET.
    pub notify_flags: u32,
    /// CLIENT KILL marked other clients: close them after this batch.
    pub kill_pending: bool,
    pub executable: String,
    /// Cluster mode state (`cluster-enabled yes`), installed by the executor at start.
    pub cluster: Option<ClusterState>,
    /// WATCH entries over every client (0: no database tracks changes, see `command/txn.rs`).
    pub watching: usize,
    /// Per-command figures by `Entry::id`, grown on demand; reset by CONFIG RESETSTAT.
    pub cmd_stats: Vec<CmdStat>,
    /// `latency-tracking`: time each command (two clock reads). Refreshed by cron.
    pub time_commands: bool,
    /// Pub/sub subscriptions and fan-out bookkeeping.
    pub pubsub: super::pubsub::PubSub,
    /// Clients blocked on keys (BLPOP & co).
    pub blocking: super::blocking::Blocking,
    /// `maxmemory` settings and the eviction pool.
    pub evict: Eviction,
    /// Replication as a primary: backlog, replicas, snapshot (see `replication::primary`).
    pub repl: crate::replication::primary::Replication,
    /// This node's primary, while it is a replica (see `replication::replica`).
    pub master: Option<Box<crate::replication::replica::Master>>,
    /// A full sync is being loaded: commands without the `loading` flag answer `-LOADING`.
    pub loading: bool,
    /// Rouses the executor from its poll (threads that hand it work: the replication link).
    pub wake: Option<Arc<dyn Fn() + Send + Sync>>,
    /// CLIENT PAUSE in force (see `exec::pause`).
    pub pause: Option<super::pause::Pause>,
    /// A pause just ended: the executor runs the requests it held.
    pub pause_ended: bool,
    /// CLUSTER FAILOVER was asked of this replica (`default`, `force`, `takeover`): the
    /// control plane performs it and its next push clears this.
    pub failover_requested: Option<&'static str>,
    /// The Lua state and cached scripts, created by the first script (see `scripting`).
    pub scripting: Option<Box<crate::scripting::Scripting>>,
    /// A script past `busy-reply-threshold`: other clients get `-BUSY` (see `scripting::busy`).
    pub script_busy: Option<Box<crate::scripting::busy::BusyScript>>,
    /// DEBUG SET-ACTIVE-EXPIRE: the cron's expiry cycle runs.
    pub active_expire_enabled: bool,
    /// The thread that forwards PUBLISH to the other nodes (cluster mode, started at the first).
    pub bus: Option<crate::cluster::bus::Bus>,
    /// MONITOR clients.
    pub monitors: super::monitor::Monitors,
    /// Error codes, latency histograms, slow log, latency monitor (see `observe`).
    pub observe: super::observe::Observe,
    /// `busy-reply-threshold` in ms (read once per script; CONFIG SET updates it).
    pub busy_reply_ms: i64,
    /// Client-side caching: tracking clients, the key table, BCAST prefixes (see `tracking`).
    pub tracking: super::tracking::Tracking,
    /// ACL users and the ACL log (see `acl`).
    pub acl: crate::acl::Acl,
}

impl Server {
    pub fn new(config: Config, registry: &'static Registry, io_stats: Arc<IoStats>) -> Server {
        let databases = config.get_i64("databases").max(1) as usize;
        crate::command::info::record_startup_memory();
        let started_unix = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let run_id: String =
            (0..40).map(|_| char::from_digit(fastrand::u32(..16), 16).unwrap_or('0')).collect();
        let pubsub = super::pubsub::PubSub::new(config.get("client-output-buffer-limit").unwrap_or(""));
        let notify = crate::config::pubsub::notify_flags(config.get("notify-keyspace-events").unwrap_or(""));
        let executable = std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_default();
        let config_time_commands = config.get_bool("latency-tracking");
        let observe_timing =
            config.get_i64("slowlog-log-slower-than") >= 0 || config.get_i64("latency-monitor-threshold") > 0;
        let busy_reply_ms = config.get_i64("busy-reply-threshold");
        let mut observe = super::observe::Observe::default();
        observe.configure(&config);
        let evict = Eviction::from_config(&config);
        let mut acl = crate::acl::Acl::new(registry);
        acl.set_requirepass(registry, config.get("requirepass").unwrap_or(""));
        let mut srv = Server {
            // Cluster mode keeps `cluster-databases` databases (Valkey 9; one by default), their
            // keys in one table per hash slot so slot counts, listings and migrations touch
            // only that slot's keys.
            dbs: if config.get_bool("cluster-enabled") {
                (0..config.get_i64("cluster-databases").max(1)).map(|_| Db::new_cluster()).collect()
            } else {
                (0..databases).map(|_| Db::new()).collect()
            },
            config,
            stats: Stats::default(),
            registry,
            io_stats,
            started: Instant::now(),
            now: Instant::now(),
            now_ms: crate::util::now_ms(),
            started_unix,
            run_id,
            port: 0,
            tls_port: 0,
            tls: None,
            tls_reload: Default::default(),
            shutdown: None,
            next_client_id: 1,
            garbage: Vec::new(),
            ops_samples: [0; 16],
            ops_sample_idx: 0,
            last_sample: (Instant::now(), 0),
            active_io_threads: 0,
            io_thread_trials: (0, 0),
            busy_ratio: 0.0,
            kill_pending: false,
            notify_flags: 0,
            executable,
            cluster: None,
            watching: 0,
            cmd_stats: vec![CmdStat::default(); registry.len],
            time_commands: config_time_commands || observe_timing,
            pubsub,
            blocking: Default::default(),
            evict,
            repl: Default::default(),
            master: None,
            loading: false,
            wake: None,
            pause: None,
            pause_ended: false,
            failover_requested: None,
            scripting: None,
            script_busy: None,
            busy_reply_ms,
            observe,
            monitors: Default::default(),
            bus: None,
            active_expire_enabled: true,
            tracking: Default::default(),
            acl,
        };
        srv.set_notify_flags(notify.unwrap_or(0));
        super::evict::apply_config(&mut srv);
        srv
    }

    /// Applies `notify-keyspace-events` flags. Databases record the keys they expire only
    /// while `expired` events would be published.
    pub fn set_notify_flags(&mut self, flags: u32) {
        use crate::config::pubsub::flag;
        self.notify_flags = flags;
        let log = flags & flag::EXPIRED != 0 && flags & (flag::KEYSPACE | flag::KEYEVENT) != 0;
        for db in &mut self.dbs {
            db.log_expired(log);
        }
    }

    /// Seconds of the LRU clock (wraps after ~136 years; only differences matter).
    /// Reads the clock once for the batch of commands about to run (a clock read per
    /// command showed up at 5% of the executor's time).
    pub fn tick(&mut self) {
        self.now = Instant::now();
        self.now_ms = crate::util::now_ms();
    }

    /// The access field a key gets when created or read now: the LRU clock, or under an LFU
    /// policy the minutes and initial counter (see `keyspace::evict`).
    pub fn lru_clock(&self) -> u32 {
        super::evict::new_key_field(self, self.raw_lru_clock())
    }

    /// The LRU clock: 24 bits of seconds, as Valkey's (it wraps after ~194 days). Read from
    /// the batch's clock (`tick`), not the system's: a clock read per lookup cost 2%.
    pub fn raw_lru_clock(&self) -> u32 {
        (self.now.saturating_duration_since(self.started).as_secs() as u32) & 0x00ff_ffff
    }

    /// Keys removed because their TTL passed, over every database.
    pub fn expired_keys(&self) -> u64 {
        self.stats.expired_keys + self.dbs.iter().map(|d| d.expired).sum::<u64>()
    }

    /// CONFIG RESETSTAT.
    pub fn reset_stats(&mut self) {
        self.stats = Stats::default();
        // The ops/sec sampler measures from a base count: restart it at zero with the counter,
        // as Valkey resets its instantaneous metrics (a base above the count underflowed).
        self.ops_samples = [0; 16];
        self.last_sample = (Instant::now(), 0);
        self.cmd_stats.iter_mut().for_each(|c| *c = CmdStat::default());
        self.observe.reset();
        self.pubsub.limit_disconnections = 0;
        self.evict.exceeded_total_us = 0;
        for db in &mut self.dbs {
            db.expired = 0;
        }
    }

    /// INFO `instantaneous_ops_per_sec`.
    pub fn instantaneous_ops(&self) -> u64 {
        self.ops_samples.iter().sum::<u64>() / self.ops_samples.len() as u64
    }

    /// The figures of command `id`, growing the table if a test registry is larger.
    pub fn cmd_stat(&mut self, id: usize) -> &mut CmdStat {
        if id >= self.cmd_stats.len() {
            self.cmd_stats.resize(id + 1, CmdStat::default());
        }
        &mut self.cmd_stats[id]
    }

    /// Hands a value to the garbage list to be dropped off the executor.
    pub fn free_later<T: Send + 'static>(&mut self, value: T) {
        self.garbage.push(Box::new(value));
    }
}
