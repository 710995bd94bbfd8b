//! The executor's periodic work, run between event-loop iterations: the cron at `hz`
//! (active expiry, idle-client timeouts, shard-channel and subscriber housekeeping, the ops/sec
//! sample), the 10 ms scaler sample that activates and parks I/O threads, a changed
//! `io-threads` limit, and the metrics hand-off. Split from `executor.rs` so the event loop
//! reads on its own; it is the same `Executor`, reaching its private state as a child module.

use std::time::{Duration, Instant};

use super::Executor;

impl Executor {
    /// Copies the figures for the metrics endpoint and hands them over (see `metrics`).
    pub(super) fn publish_metrics(&mut self) {
        let snap = crate::metrics::collect(&self.srv, &self.clients, self.io_threads_limit as usize);
        if let Some(m) = &self.metrics {
            m.publish(snap);
        }
    }

    /// Closes a 10 ms sample: lets the scaler activate or park I/O threads.
    pub(super) fn scale(&mut self, now: Instant) {
        let forced = self.srv.config.get_i64("events-per-io-thread") == 0;
        let max = self.lp.io.max_active();
        let cpu = crate::util::thread_cpu_time();
        let commands = self.srv.stats.total_commands;
        let target = if forced {
            // Every allowed thread runs regardless: the scaler only keeps the busy ratio, and
            // a cap at the active count keeps it from opening trials nobody will act on.
            let active = self.lp.io.active();
            self.scaler.tick(now, cpu, active, active, 0, commands);
            Some(max)
        } else {
            self.scaler.tick(now, cpu, self.lp.io.active(), max, self.lp.io.queued(), commands)
        };
        if let Some(n) = target {
            if n != self.lp.io.active() {
                log::debug!("I/O threads active: {} -> {}", self.lp.io.active(), n);
                self.lp.io.set_active(n);
            }
        }
        self.srv.active_io_threads = self.lp.io.active();
        self.srv.busy_ratio = self.scaler.busy_ratio();
        self.srv.io_thread_trials = (self.scaler.trials, self.scaler.trials_failed);
    }

    /// Applies a changed `io-threads` limit (CONFIG SET io-threads) on the running node.
    pub(super) fn apply_io_threads_limit(&mut self) {
        let want = self.srv.config.get_i64("io-threads").clamp(1, 128);
        if want == self.io_threads_limit {
            return;
        }
        let workers = (want - 1) as usize;
        let forced = self.srv.config.get_i64("events-per-io-thread") == 0;
        let res = if forced {
            self.lp.io.set_cap(workers).and_then(|()| self.lp.io.set_limit(workers))
        } else {
            self.lp.io.set_limit(workers)
        };
        match res {
            Ok(()) => {
                if forced {
                    self.lp.io.set_active(workers);
                }
                log::info!("io-threads limit changed: {} -> {}", self.io_threads_limit, want);
                self.io_threads_limit = want;
            }
            Err(e) => log::warn!("Could not start I/O threads: {e}"),
        }
        self.srv.active_io_threads = self.lp.io.active();
    }

    pub(super) fn cron(&mut self) {
        self.last_cron = Instant::now();
        self.cron_period = Duration::from_millis((1000 / self.srv.config.get_i64("hz").clamp(1, 500)) as u64);
        self.prefetch_max = self.srv.config.get_i64("prefetch-batch-max-size").clamp(0, 128) as usize;
        self.srv.observe.configure(&self.srv.config);
        // Per-slot CPU time (CLUSTER SLOT-STATS) needs each command timed too.
        let slot_stats = self.srv.cluster.as_ref().is_some_and(|c| c.slot_stats.enabled());
        self.srv.time_commands = self.srv.observe.timing() || slot_stats;
        crate::exec::tls_config::auto_reload(&mut self.srv);
        self.apply_io_threads_limit();
        self.reap_marked();
        self.active_expire();
        crate::replication::primary::refresh_good(&mut self.srv);
        if self.srv.notify_flags != 0 {
            crate::exec::notify::flush_expired(&mut self.srv, &mut self.clients, None);
        } else {
            for db in &mut self.srv.dbs {
                db.hexpired_log.clear();
            }
        }
        crate::exec::pubsub::drop_unowned_shard_channels(&mut self.srv, &mut self.clients);
        self.queue_subscribers();
        self.client_timeouts();
        self.handshake_timeouts();
        // Cluster: clients blocked on keys of slots that moved away get the redirect.
        crate::exec::blocking::redirect_moved(&mut self.srv, &mut self.clients);
        self.requeue_woken();
        let now = Instant::now();
        let (t0, n0) = self.srv.last_sample;
        let dt = now.duration_since(t0).as_secs_f64();
        if dt >= 0.1 {
            let ops = (self.srv.stats.total_commands.saturating_sub(n0) as f64 / dt) as u64;
            let i = self.srv.ops_sample_idx % self.srv.ops_samples.len();
            self.srv.ops_samples[i] = ops;
            self.srv.ops_sample_idx += 1;
            self.srv.last_sample = (now, self.srv.stats.total_commands);
        }
    }

    /// Valkey's slow active-expire cycle: sample volatile keys per database, repeat while more
    /// than a quarter of the sample was expired, within a CPU budget of 25% of the tick.
    pub(super) fn active_expire(&mut self) {
        if !self.srv.active_expire_enabled {
            return;
        }
        let start = Instant::now();
        let effort = self.srv.config.get_i64("active-expire-effort").clamp(1, 10) as usize;
        let per_loop = 20 + 5 * (effort - 1);
        let budget = self.cron_period().mul_f64(0.25 + 0.02 * (effort - 1) as f64);
        let now_ms = crate::util::now_ms();
        for db in &mut self.srv.dbs {
            // Hash field expiry: the keys known to hold field TTLs, a bounded number a tick.
            db.expire_fields_active(per_loop * 16, now_ms);
            loop {
                let round = db.expire_sample(per_loop, now_ms);
                if round.sampled == 0 || round.expired * 4 <= round.sampled || start.elapsed() >= budget {
                    break;
                }
            }
            if start.elapsed() >= budget {
                break;
            }
        }
        self.srv.stats.expire_cycle_cpu_ms += start.elapsed().as_millis() as u64;
    }

    pub(super) fn client_timeouts(&mut self) {
        let timeout = self.srv.config.get_i64("timeout");
        if timeout <= 0 {
            return;
        }
        let limit = Duration::from_secs(timeout as u64);
        let idle: Vec<usize> = self
            .clients
            .iter()
            .filter(|(_, c)| c.io.is_some() && c.st.last_interaction.elapsed() > limit)
            // Subscribers wait for messages, not commands: Valkey never times them out.
            .filter(|(_, c)| c.st.subs.is_none())
            // Nor replication links (they have `repl-timeout`), nor blocked clients.
            .filter(|(_, c)| !c.st.master && !c.st.replica && !c.st.blocked)
            .map(|(i, _)| i)
            .collect();
        for idx in idle {
            log::debug!("Closing idle client");
            self.close(idx);
        }
    }

    /// Closes TLS connections still handshaking past `tls-handshake-timeout`, so a peer that
    /// stalls mid-handshake (or opens sockets and says nothing) cannot hold a slot forever.
    fn handshake_timeouts(&mut self) {
        let now = Instant::now();
        while let Some(&(idx, id, deadline)) = self.lp.handshaking.front() {
            if deadline > now {
                break;
            }
            self.lp.handshaking.pop_front();
            let Some(c) = self.clients.get_mut(idx) else { continue };
            if c.st.id != id {
                continue;
            }
            match c.io.as_ref() {
                Some(io) if io.tls.as_ref().is_some_and(|t| t.is_handshaking()) => {
                    log::debug!("TLS handshake timeout, closing connection from {}", c.st.addr);
                    self.srv.stats.tls_handshake_timeouts += 1;
                    self.close(idx);
                }
                Some(_) => {}
                // Away in an I/O job: look again at the next tick.
                None => self.lp.handshaking.push_back((idx, id, now + self.cron_period)),
            }
        }
    }
}
