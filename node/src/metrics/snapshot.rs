//! The figures a scrape shows, as plain data. [`collect`] runs on the executor (the only
//! thread that may read its state) and only copies: counters, per-database sizes, one key count
//! per owned slot (O(1) each: cluster mode keeps a table per slot). [`Process`] holds what any
//! thread can read about the process; the HTTP thread fills it so the executor never pays.

use std::sync::atomic::Ordering;

use slab::Slab;

use crate::exec::{Client, Server};
use crate::keyspace::slot::SLOTS;

/// One database's sizes (only non-empty databases are listed, as INFO keyspace does).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DbFigures {
    pub index: usize,
    pub keys: u64,
    pub expires: u64,
}

/// One command's figures (commands never called are left out).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CommandFigures {
    /// `get`, `config|get`.
    pub name: String,
    pub calls: u64,
    pub duration_seconds: f64,
    pub rejected: u64,
    pub failed: u64,
}

/// Cluster mode figures.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClusterFigures {
    pub state_ok: bool,
    pub epoch: u64,
    /// Slots some shard serves.
    pub slots_assigned: u64,
    /// Slots this node serves as primary.
    pub slots_owned: u64,
    /// Slot migrations this node takes part in that are still running, exporting and importing.
    pub migrations_exporting: u64,
    pub migrations_importing: u64,
    /// Keys in each owned slot, sorted ascending (one entry per owned slot).
    pub slot_keys: Vec<u64>,
    /// PUBLISH messages the cluster bus wrote to a peer, and those it dropped (INFO stats
    /// `cluster_publish_forwarded` / `cluster_publish_dropped`; 0 before the first PUBLISH).
    pub publish_forwarded: u64,
    pub publish_dropped: u64,
}

/// Everything the executor hands to a scrape.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    pub version: String,
    pub uptime_seconds: f64,
    pub connected_clients: u64,
    pub blocked_clients: u64,
    pub maxclients: u64,
    pub connections_received: u64,
    pub rejected_connections: u64,
    /// TLS handshakes completed, failed and timed out (`tls-handshake-timeout`).
    pub tls_handshakes: u64,
    pub tls_handshake_failures: u64,
    pub tls_handshake_timeouts: u64,
    pub commands_processed: u64,
    pub ops_per_sec: u64,
    pub net_input_bytes: u64,
    pub net_output_bytes: u64,
    pub keyspace_hits: u64,
    pub keyspace_misses: u64,
    pub expired_keys: u64,
    pub evicted_keys: u64,
    pub error_replies: u64,
    pub maxmemory_bytes: u64,
    pub dbs: Vec<DbFigures>,
    pub executor_busy_ratio: f64,
    /// CPU time of the executor thread (user, system).
    pub executor_cpu_seconds: (f64, f64),
    pub io_threads_active: u64,
    /// The `io-threads` limit (the executor counts as one, as in Valkey).
    pub io_threads_limit: u64,
    pub io_reads: u64,
    pub io_writes: u64,
    pub io_freed: u64,
    pub io_polls: u64,
    /// I/O threads added on trial, and those taken back (see `exec::scaler`).
    pub io_thread_trials: (u64, u64),
    pub commands: Vec<CommandFigures>,
    pub cluster: Option<ClusterFigures>,
}

/// Process-wide figures, readable from any thread.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Process {
    pub used_memory_bytes: u64,
    pub used_memory_rss_bytes: u64,
    pub used_memory_peak_bytes: u64,
    /// Process CPU time (user, system).
    pub cpu_seconds: (f64, f64),
}

impl Process {
    /// Reads the process figures now (the same sources as INFO memory and cpu).
    pub fn read() -> Process {
        use crate::command::info;
        let (sys, user) = info::rusage(libc::RUSAGE_SELF);
        Process {
            used_memory_bytes: info::used_memory(),
            used_memory_rss_bytes: info::rss_bytes(),
            used_memory_peak_bytes: info::used_memory_peak(),
            cpu_seconds: (user, sys),
        }
    }
}

/// Copies the executor's figures. Runs on the executor thread, only when a scrape asked.
pub fn collect(srv: &Server, clients: &Slab<Client>, io_threads_limit: usize) -> Snapshot {
    let st = &srv.stats;
    let io = &srv.io_stats;
    let load = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    let dbs = srv
        .dbs
        .iter()
        .enumerate()
        .filter(|(_, db)| !db.is_empty())
        .map(|(index, db)| DbFigures { index, keys: db.len() as u64, expires: db.volatile_len() as u64 })
        .collect();
    let mut commands: Vec<CommandFigures> = srv
        .registry
        .entries()
        .filter_map(|e| {
            let c = srv.cmd_stats.get(e.id)?;
            (c.calls + c.rejected > 0).then(|| CommandFigures {
                name: e.full_name.clone(),
                calls: c.calls,
                duration_seconds: c.nanos as f64 / 1e9,
                rejected: c.rejected,
                failed: c.failed,
            })
        })
        .collect();
    commands.sort_by(|a, b| a.name.cmp(&b.name));
    #[cfg(target_os = "linux")]
    let (tsys, tuser) = crate::command::info::rusage(libc::RUSAGE_THREAD);
    #[cfg(not(target_os = "linux"))]
    let (tsys, tuser) = (0.0, 0.0);
    Snapshot {
        version: crate::VERSION.to_string(),
        uptime_seconds: srv.started.elapsed().as_secs_f64(),
        connected_clients: clients.len() as u64,
        blocked_clients: srv.blocking.blocked_clients() as u64,
        maxclients: srv.config.get_i64("maxclients").max(0) as u64,
        connections_received: st.total_connections,
        rejected_connections: st.rejected_connections,
        tls_handshakes: st.tls_handshakes,
        tls_handshake_failures: st.tls_handshake_failures,
        tls_handshake_timeouts: st.tls_handshake_timeouts,
        commands_processed: st.total_commands,
        ops_per_sec: srv.instantaneous_ops(),
        net_input_bytes: st.net_input_bytes,
        net_output_bytes: st.net_output_bytes,
        keyspace_hits: st.keyspace_hits,
        keyspace_misses: st.keyspace_misses,
        expired_keys: srv.expired_keys(),
        evicted_keys: st.evicted_keys,
        error_replies: st.total_error_replies,
        maxmemory_bytes: srv.config.get_i64("maxmemory").max(0) as u64,
        dbs,
        executor_busy_ratio: srv.busy_ratio,
        executor_cpu_seconds: (tuser, tsys),
        io_threads_active: srv.active_io_threads as u64,
        io_threads_limit: io_threads_limit as u64,
        io_reads: load(&io.reads),
        io_writes: load(&io.writes),
        io_freed: load(&io.freed),
        io_polls: load(&io.polls),
        io_thread_trials: srv.io_thread_trials,
        commands,
        cluster: cluster_figures(srv),
    }
}

fn cluster_figures(srv: &Server) -> Option<ClusterFigures> {
    let cl = srv.cluster.as_ref()?;
    let mut slot_keys = Vec::new();
    for slot in 0..SLOTS as u16 {
        if cl.owns(slot) {
            slot_keys.push(srv.dbs.iter().map(|db| db.count_in_slot(slot, srv.now_ms) as u64).sum());
        }
    }
    slot_keys.sort_unstable();
    let active = cl.migrations.jobs.iter().filter(|j| j.state.active());
    let (exporting, importing) =
        active.fold((0, 0), |(e, i), j| if j.export { (e + 1, i) } else { (e, i + 1) });
    Some(ClusterFigures {
        state_ok: cl.healthy(&srv.config),
        epoch: cl.epoch(),
        slots_assigned: cl.assigned() as u64,
        slots_owned: slot_keys.len() as u64,
        migrations_exporting: exporting,
        migrations_importing: importing,
        slot_keys,
        publish_forwarded: srv.bus.as_ref().map_or(0, |b| b.stats.forwarded.load(Ordering::Relaxed)),
        publish_dropped: srv.bus.as_ref().map_or(0, |b| b.stats.dropped.load(Ordering::Relaxed)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::testing::Harness;

    #[test]
    fn collects_counters_dbs_and_commands() {
        let mut h = Harness::default();
        h.run("SET a 1");
        h.run("SET b 2");
        h.run("GET a");
        h.run("GET missing");
        h.run("INCR a x");
        h.run("SELECT 2");
        h.run("SET c 3");
        let s = collect(&h.srv, &h.clients, 1);
        assert_eq!(s.connected_clients, 1);
        assert_eq!(s.keyspace_hits, 1);
        assert_eq!(s.keyspace_misses, 1);
        assert_eq!(
            s.dbs,
            vec![DbFigures { index: 0, keys: 2, expires: 0 }, DbFigures { index: 2, keys: 1, expires: 0 }]
        );
        let set = s.commands.iter().find(|c| c.name == "set").expect("set");
        assert_eq!((set.calls, set.rejected, set.failed), (3, 0, 0));
        let incr = s.commands.iter().find(|c| c.name == "incr").expect("incr");
        assert_eq!((incr.calls, incr.rejected), (0, 1), "wrong arity is a rejected call");
        assert!(s.commands.iter().all(|c| c.name != "del"), "commands never called are left out");
        assert!(s.cluster.is_none());
        h.run("CONFIG RESETSTAT");
        let s = collect(&h.srv, &h.clients, 1);
        assert_eq!(s.commands.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["config|resetstat"]);
    }

    #[test]
    fn cluster_slots_owned_and_keys_per_slot() {
        let mut config = crate::config::Config::default();
        config.load_str("cluster-enabled yes").expect("config");
        let mut h = Harness::new(config);
        let me = "1".repeat(40);
        h.srv.cluster = Some(crate::cluster::ClusterState::ephemeral(me.clone()));
        let before = collect(&h.srv, &h.clients, 1).cluster.expect("cluster figures");
        assert_eq!((before.slots_owned, before.epoch, before.state_ok), (0, 0, false));
        let json = format!(
            r#"{{"epoch":5,"shards":[{{"id":"{a}","slots":[[0,99]],"nodes":[{{"id":"{me}","ip":"127.0.0.1","port":7001,"role":"primary"}}]}},{{"id":"{b}","slots":[[100,16383]],"nodes":[{{"id":"{two}","ip":"127.0.0.1","port":7002,"role":"primary"}}]}}]}}"#,
            a = "a".repeat(40),
            b = "b".repeat(40),
            two = "2".repeat(40),
        );
        let reply = h.run_as(0, &[b"CLUSTER", b"SETTOPOLOGY", json.as_bytes()]);
        assert_eq!(reply, b"+OK\r\n");
        // `{48756}` hashes to slot 2, `{355}` to slot 99 (CLUSTER KEYSLOT agrees, below).
        assert_eq!(h.run("CLUSTER KEYSLOT {48756}"), ":2\r\n");
        assert_eq!(h.run("CLUSTER KEYSLOT {355}"), ":99\r\n");
        for k in ["{48756}a", "{48756}b", "{48756}c", "{355}a"] {
            assert_eq!(h.run(&format!("SET {k} v")), "+OK\r\n");
        }
        let c = collect(&h.srv, &h.clients, 1).cluster.expect("cluster figures");
        assert_eq!((c.epoch, c.slots_owned, c.slots_assigned, c.state_ok), (5, 100, 16384, true));
        assert_eq!(c.slot_keys.len(), 100);
        assert_eq!(c.slot_keys.iter().sum::<u64>(), 4);
        assert_eq!(&c.slot_keys[98..], &[1, 3], "sorted ascending");
        assert_eq!((c.migrations_exporting, c.migrations_importing), (0, 0));
    }

    #[test]
    fn failed_calls_are_counted() {
        let mut h = Harness::default();
        h.run("SET s notanumber");
        h.run("INCR s");
        let s = collect(&h.srv, &h.clients, 1);
        let incr = s.commands.iter().find(|c| c.name == "incr").expect("incr");
        assert_eq!((incr.calls, incr.failed), (1, 1));
    }
}
