//! The executor thread: owns the keyspace and every client's exec state, runs the event loop,
//! executes every command, and hands socket work to the I/O threads.
//!
//! One loop iteration: poll for events (blocking only when nothing is in flight) → note which
//! clients became readable/writable and accept new ones → collect I/O jobs that came home →
//! service each ready client (execute what it parsed, queue replies, send it out again for the
//! next write + read) → cron at `hz`.
//!
//! The sockets side (poller, listeners, I/O threads, ready list) is the [`Loop`], apart from the
//! server state and clients, so a busy script can lend it for a turn (`busy`).

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mio::net::{TcpListener, UnixStream};
use mio::{Events, Interest, Poll, Registry, Token, Waker};
use slab::Slab;

use super::client::Client;
use super::scaler::Scaler;
use super::server::Server;
use crate::config::Config;
use crate::keyspace::KeyHint;
use crate::net::io_thread::ExecWake;
use crate::net::{IoPool, Job, PollJob, Request};
use crate::protocol::Reply;

mod busy;
pub use busy::serve_while_busy;
mod cron;
mod deferred;
mod events;
mod primary_link;

const WAKER: Token = Token(usize::MAX - 1);
const SIGNALS: Token = Token(usize::MAX - 2);
const LISTENER_BASE: usize = usize::MAX - 64;
/// Service a client at most this many times per loop iteration, so one pipelining client
/// cannot starve others.
const SERVICE_ROUNDS: usize = 4;
/// How long the executor keeps polling without blocking while I/O jobs are in flight.
const EXEC_SPIN: Duration = Duration::from_micros(100);
/// Longest poll while a slot migration is running (it advances once per loop iteration).
const CLUSTER_TICK: Duration = Duration::from_millis(1);

/// Errors that stop the node from starting.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("could not bind {addr}: {source}")]
    Bind { addr: String, source: io::Error },
    #[error("no address to listen on (bind {0:?})")]
    NoListener(String),
    #[error("I/O error during start: {0}")]
    Io(#[from] io::Error),
    #[error("{0}")]
    Cluster(#[from] crate::cluster::ClusterError),
    #[error("{0}")]
    Metrics(#[from] crate::metrics::MetricsError),
    #[error("{0}")]
    Acl(#[from] crate::acl::AclError),
    #[error("{0}")]
    Tls(#[from] crate::net::tls::TlsError),
}

/// The sockets side of the loop: the poller, listeners, I/O threads and the ready list. Kept
/// apart from the server state and the clients so that a script running past
/// `busy-reply-threshold` can serve other clients from inside its command (see `busy`).
pub(super) struct Loop {
    /// The poller, home unless an I/O thread is running `epoll_wait` with it.
    poller: Option<Box<PollJob>>,
    /// Registers sockets while the poller may be away (`epoll_ctl` is thread-safe).
    registry: Registry,
    listeners: Vec<TcpListener>,
    /// `listeners[..plain_listeners]` are plain, the rest TLS.
    plain_listeners: usize,
    /// TLS connections still handshaking: (slab index, client id, deadline). Checked by cron,
    /// so a peer that stalls mid-handshake is closed after `tls-handshake-timeout`.
    handshaking: std::collections::VecDeque<(usize, u64, Instant)>,
    signals: UnixStream,
    io: IoPool,
    ready: Vec<usize>,
    /// Replies of the clients served while a script is busy (the executor's own buffer holds
    /// the script caller's).
    busy_reply: Reply,
}

/// The node: event loop, listeners, clients, server state and I/O threads.
pub struct Executor {
    lp: Loop,
    pub srv: Server,
    clients: Slab<Client>,
    reply: Reply,
    last_cron: Instant,
    spin_until: Option<Instant>,
    scaler: Scaler,
    /// `io-threads` as last applied, to notice CONFIG SET.
    io_threads_limit: i64,
    /// `1 / hz`, refreshed by cron.
    cron_period: Duration,
    /// Since when the poller has been with an I/O thread (stall diagnostics).
    poller_away: Option<Instant>,
    /// `prefetch-batch-max-size`, refreshed by cron.
    prefetch_max: usize,
    /// Scratch space for the keys of a prefetch batch: (database, hint).
    prefetch_keys: Vec<(usize, KeyHint)>,
    /// Snapshot requests from the metrics endpoint (`metrics-port`), if enabled.
    metrics: Option<Arc<crate::metrics::Hub>>,
}

impl Executor {
    /// Binds the listeners and starts the I/O threads.
    pub fn build(config: Config) -> Result<Executor, StartError> {
        let poll = Poll::new()?;
        let wake =
            Arc::new(ExecWake { sleeping: Default::default(), waker: Waker::new(poll.registry(), WAKER)? });
        let (sig_read, sig_write) = std::os::unix::net::UnixStream::pair()?;
        for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
            signal_hook::low_level::pipe::register(sig, sig_write.try_clone()?)?;
        }
        sig_read.set_nonblocking(true)?;
        let mut signals = UnixStream::from_std(sig_read);
        poll.registry().register(&mut signals, SIGNALS, Interest::READABLE)?;

        // The per-command clock (commandstats); measures the TSC rate once.
        crate::util::tsc::calibrate();
        let threads = config.get_i64("io-threads").clamp(1, 128) as usize;
        let metrics_wake = wake.clone();
        let repl_wake = wake.clone();
        let mut io = IoPool::new(threads - 1, wake)?;
        let force_threads = config.get_i64("events-per-io-thread") == 0;
        if force_threads {
            // Valkey's test knob: offload everything, whatever the load or core count.
            io.set_cap(threads - 1)?;
            io.set_active(threads - 1);
        }
        let mut srv = Server::new(config, crate::command::registry(), io.stats.clone());
        crate::acl::file::load_at_startup(&mut srv.acl, srv.registry, &srv.config)?;
        if srv.config.get_bool("cluster-enabled") {
            srv.cluster = Some(crate::cluster::ClusterState::load(&srv.config)?);
            srv.time_commands |= srv.config.get_bool("cluster-slot-stats-enabled");
        }
        super::tls_config::install(&mut srv)?;
        let (mut listeners, plain_listeners) = super::listen::bind_all(&mut srv)?;
        for (i, l) in listeners.iter_mut().enumerate() {
            poll.registry().register(l, Token(LISTENER_BASE + i), Interest::READABLE)?;
        }
        // The metrics endpoint wakes the poll to ask for a snapshot (see `metrics`).
        let metrics = crate::metrics::start(&srv.config, move || {
            let _ = metrics_wake.waker.wake();
        })?;
        srv.active_io_threads = io.active();
        srv.wake = Some(Arc::new(move || {
            let _ = repl_wake.waker.wake();
        }));
        crate::replication::replica::from_config(&mut srv);
        crate::replication::primary::refresh_good(&mut srv);
        // A node restarted in cluster mode follows the role its saved topology gives it.
        crate::replication::follow::follow_topology(&mut srv, &mut Slab::new());
        let registry = poll.registry().try_clone()?;
        let prefetch_max = srv.config.get_i64("prefetch-batch-max-size").clamp(0, 128) as usize;
        Ok(Executor {
            lp: Loop {
                poller: Some(Box::new(PollJob { poll, events: Events::with_capacity(1024) })),
                registry,
                listeners,
                plain_listeners,
                handshaking: Default::default(),
                signals,
                io,
                ready: Vec::new(),
                busy_reply: Reply::new(false),
            },
            srv,
            clients: Slab::new(),
            reply: Reply::new(false),
            last_cron: Instant::now(),
            spin_until: None,
            scaler: Scaler::new(Instant::now()),
            io_threads_limit: threads as i64,
            prefetch_max,
            poller_away: None,
            cron_period: Duration::from_millis(100),
            prefetch_keys: Vec::with_capacity(128),
            metrics,
        })
    }

    /// The TCP port actually bound (useful with `port 0`).
    pub fn port(&self) -> u16 {
        self.srv.port
    }

    /// The TLS port bound, 0 without `tls-port`.
    pub fn tls_port(&self) -> u16 {
        self.srv.tls_port
    }

    /// Runs until SIGTERM/SIGINT or SHUTDOWN.
    pub fn run(mut self) -> io::Result<()> {
        while self.srv.shutdown.is_none() {
            if let Some(poller) = self.lp.poller.take() {
                // Poll offload: under load an I/O thread runs the non-blocking epoll_wait while
                // the executor keeps collecting and executing; idle, the executor blocks itself.
                if self.lp.io.active() > 0 && self.lp.io.inflight > 0 {
                    if let Err(back) = self.lp.io.submit_poll(poller) {
                        self.lp.poller = Some(back);
                        self.poll_inline(Some(Duration::ZERO))?;
                    }
                } else {
                    self.lp.poller = Some(poller);
                    let timeout = self.poll_timeout();
                    if timeout != Some(Duration::ZERO) && self.lp.io.prepare_sleep() {
                        self.poll_inline(timeout)?;
                        self.lp.io.awake();
                    } else {
                        self.poll_inline(Some(Duration::ZERO))?;
                    }
                }
            }
            if self.lp.poller.is_none() {
                let away = *self.poller_away.get_or_insert_with(Instant::now);
                if away.elapsed() > Duration::from_secs(2) {
                    log::warn!("I/O threads stalled: poller away for 2s; {}", self.lp.io.describe());
                    self.poller_away = Some(Instant::now());
                }
            } else {
                self.poller_away = None;
            }
            self.srv.tick();
            let started = self.srv.now;
            self.collect_io();
            self.service_ready();
            if self.srv.master.is_some() {
                if let Some(attach) = crate::replication::replica::tick(&mut self.srv, &mut self.clients) {
                    self.attach_master(attach);
                }
            }
            crate::replication::primary::tick(&mut self.srv, &mut self.clients);
            self.requeue_woken();
            self.queue_subscribers();
            // Blocked clients whose timeout passed (see `exec::blocking`).
            if self.srv.blocking.next_deadline().is_some_and(|d| d <= Instant::now()) {
                super::blocking::expire(&mut self.srv, &mut self.clients, Instant::now());
                self.requeue_woken();
            }
            if std::mem::take(&mut self.srv.kill_pending) {
                self.reap_marked();
            }
            self.cluster_tick();
            if self.srv.pause.is_some() || self.srv.pause_ended {
                self.pause_tick();
            }
            if self.srv.evict.running {
                // Over maxmemory after a time-limited round: keep evicting between commands.
                super::evict::perform(&mut self.srv);
            }
            self.flush_garbage();
            let now = Instant::now();
            self.scaler.record_busy(now.duration_since(started));
            if self.scaler.due(now) {
                self.scale(now);
            }
            if now.duration_since(self.last_cron) >= self.cron_period() {
                self.cron();
            }
            // Metrics: a scrape asked for a snapshot (one relaxed load when nobody scrapes).
            if self.metrics.as_ref().is_some_and(|m| m.take_request()) {
                self.publish_metrics();
            }
            // Client-side caching (Valkey's `beforeSleep`): invalidations for keys changed
            // outside commands, the table bound, BCAST broadcasts.
            if self.srv.tracking.active {
                super::tracking::before_sleep(&mut self.srv, &mut self.clients);
                self.queue_subscribers();
            }
        }
        self.shutdown();
        Ok(())
    }

    /// The cron tick, from `hz` as of the last tick (read once per tick, not per loop).
    fn cron_period(&self) -> Duration {
        self.cron_period
    }

    fn poll_timeout(&mut self) -> Option<Duration> {
        if !self.lp.ready.is_empty() || self.srv.evict.running {
            return Some(Duration::ZERO);
        }
        if self.srv.repl.busy() {
            // A snapshot for a replica advances a bounded step per iteration.
            return Some(CLUSTER_TICK);
        }
        if self.srv.cluster.as_ref().is_some_and(|c| c.migrations.busy()) {
            // A slot migration advances a bounded step per iteration.
            return Some(CLUSTER_TICK);
        }
        if self.lp.io.inflight > 0 {
            let now = Instant::now();
            let until = *self.spin_until.get_or_insert(now + EXEC_SPIN);
            if now < until {
                return Some(Duration::ZERO);
            }
        } else {
            self.spin_until = None;
        }
        let cron = self.cron_period().saturating_sub(self.last_cron.elapsed());
        // Wake up for the earliest blocked client's deadline.
        let deadline = [
            self.srv.blocking.next_deadline(),
            crate::replication::primary::next_deadline(&self.srv),
            crate::replication::replica::next_deadline(&self.srv),
            self.srv.pause.map(|p| p.until),
        ]
        .into_iter()
        .flatten()
        .min();
        match deadline {
            Some(d) => Some(cron.min(d.saturating_duration_since(Instant::now()))),
            None => Some(cron),
        }
    }

    fn poll_inline(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        let Some(mut poller) = self.lp.poller.take() else { return Ok(()) };
        let PollJob { poll, events } = &mut *poller;
        let res = match poll.poll(events, timeout) {
            Err(e) if e.kind() != io::ErrorKind::Interrupted => Err(e),
            _ => Ok(()),
        };
        let started = Instant::now();
        self.lp.handle_events(&poller.events, &mut self.srv, &mut self.clients);
        self.scaler.record_busy(started.elapsed());
        self.lp.poller = Some(poller);
        res
    }

    fn collect_io(&mut self) {
        self.lp.collect(&mut self.srv, &mut self.clients);
    }

    /// Valkey 8's batch prefetch: before running a batch of commands, ask the CPU for the
    /// table buckets of all their keys, then for the entries those buckets point at, so the
    /// cache misses overlap instead of stalling one command after another. Two batches are
    /// formed: the first request of every ready client (many clients, one command each), and
    /// a client's own pipeline when it has several requests parsed (see `run_parsed`).
    fn prefetch_ready(&mut self) {
        if self.prefetch_max < 2 || self.lp.ready.len() < 2 {
            return;
        }
        let mut keys = std::mem::take(&mut self.prefetch_keys);
        keys.clear();
        for &idx in &self.lp.ready {
            if keys.len() >= self.prefetch_max {
                break;
            }
            let Some(c) = self.clients.get(idx) else { continue };
            if let Some((_, hint)) = c.io.as_ref().and_then(|io| io.parsed.front()).and_then(|r| r.key) {
                keys.push((c.st.db, hint));
            }
        }
        self.prefetch_keys = keys;
        self.prefetch_batch();
    }

    /// Prefetches the keys of the next requests of one client's pipeline.
    fn prefetch_pipeline(&mut self, idx: usize) {
        if self.prefetch_max < 2 {
            return;
        }
        let Some(c) = self.clients.get(idx) else { return };
        let Some(io) = c.io.as_ref() else { return };
        if io.parsed.len() < 2 {
            return;
        }
        let mut keys = std::mem::take(&mut self.prefetch_keys);
        keys.clear();
        let db = c.st.db;
        keys.extend(io.parsed.iter().take(self.prefetch_max).filter_map(|r| r.key).map(|(_, h)| (db, h)));
        self.prefetch_keys = keys;
        self.prefetch_batch();
    }

    fn prefetch_batch(&mut self) {
        let keys = &self.prefetch_keys;
        if keys.len() < 2 {
            return;
        }
        for &(db, hint) in keys {
            self.srv.dbs[db].prefetch_bucket(hint);
        }
        for &(db, hint) in keys {
            self.srv.dbs[db].prefetch_nodes(hint);
        }
        self.srv.stats.prefetch_batches += 1;
        self.srv.stats.prefetch_entries += keys.len() as u64;
    }

    fn service_ready(&mut self) {
        self.prefetch_ready();
        let ready = std::mem::take(&mut self.lp.ready);
        for &idx in &ready {
            if let Some(c) = self.clients.get_mut(idx) {
                c.queued = false;
            }
        }
        for idx in ready {
            self.service(idx);
            if self.srv.shutdown.is_some() {
                break;
            }
        }
    }

    /// Executes what a client has parsed and sends its I/O half out for the next write/read,
    /// or does that I/O inline when no I/O thread is active.
    fn service(&mut self, idx: usize) {
        for _ in 0..SERVICE_ROUNDS {
            let Some(c) = self.clients.get_mut(idx) else {
                return;
            };
            if c.io.is_none() {
                return;
            }
            c.flush_pending();
            self.run_parsed(idx);
            let Some(c) = self.clients.get_mut(idx) else {
                return;
            };
            let Some(io) = c.io.as_mut() else { return };
            if io.tls.is_some() {
                tls_events(&mut self.srv, io, &c.st.addr);
            }
            if io.parsed.is_empty() {
                if let Some(e) = io.proto_error.take() {
                    let msg = e.to_string();
                    log::info!("{} from client: {}", msg, c.st.addr);
                    let mut r = Reply::new(false);
                    r.error(&format!("ERR {msg}"));
                    self.srv.stats.total_error_replies += 1;
                    self.srv.observe.errors.record(&r.buf);
                    io.queue(r.buf.freeze());
                    c.st.close_after_reply = true;
                    c.readable = false;
                }
                if io.qbuf_exceeded && !c.st.close_asap {
                    log::warn!(
                        "Closing client that reached max query buffer length: id={} addr={} qbuf={} (qbuf initial bytes: {:?})",
                        c.st.id,
                        c.st.addr,
                        io.query_buffer_len(),
                        "",
                    );
                    self.srv.stats.client_qbuf_limit_disconnections += 1;
                    c.st.close_asap = true;
                }
                if io.eof {
                    // The peer may have half-closed after its last request: deliver what is
                    // pending (best effort), then close.
                    if !io.has_output() {
                        c.st.close_asap = true;
                    } else {
                        c.st.close_after_reply = true;
                    }
                }
            }
            if c.st.close_asap {
                self.close(idx);
                return;
            }
            let want_write = io.has_output() && (!io.write_blocked || c.writable);
            let want_read =
                c.readable && !io.read_closed() && !c.st.close_after_reply && io.parsed.is_empty();
            if !want_write && !want_read {
                if c.st.close_after_reply && !io.has_output() {
                    self.close(idx);
                }
                return;
            }
            if want_read {
                c.readable = false;
                io.drain = c.peer_hup;
            }
            if want_write {
                c.writable = false;
            }
            if self.lp.io.active() > 0 {
                let Some(io) = c.io.take() else { return };
                let job = Job::Io { token: idx, io, write: want_write, read: want_read };
                match self.lp.io.submit_io(c.st.id, job) {
                    Ok(()) => return,
                    Err(Job::Io { io, .. }) => c.io = Some(io),
                    Err(_) => return,
                }
            }
            let Some(io) = c.io.as_mut() else { return };
            if want_write {
                io.write();
            }
            if want_read {
                io.read_and_parse();
                if io.more_to_read {
                    c.readable = true;
                }
            }
            if c.st.deferred
                // Blocked: nothing to run until served, but an EOF must still be handled.
                || (c.st.blocked && !io.read_closed())
                || (io.parsed.is_empty()
                    && !io.read_closed()
                    && (!c.st.close_after_reply || io.has_output()))
            {
                return;
            }
        }
        // Still busy after several rounds: come back next iteration.
        if let Some(c) = self.clients.get_mut(idx) {
            if !c.queued {
                c.queued = true;
                self.lp.ready.push(idx);
            }
        }
    }

    /// Runs every parsed request of a client, in order, and queues the replies.
    fn run_parsed(&mut self, idx: usize) {
        let resp3 = self.clients[idx].st.resp3;
        self.reply.resp3 = resp3;
        let mut until_prefetch = 0usize;
        loop {
            if until_prefetch == 0 {
                self.prefetch_pipeline(idx);
                until_prefetch = self.prefetch_max.max(1);
            }
            until_prefetch -= 1;
            let c = &mut self.clients[idx];
            if c.st.close_asap || c.st.close_after_reply || c.st.blocked || self.srv.shutdown.is_some() {
                break;
            }
            let Some(io) = c.io.as_mut() else { break };
            let Some(req) = io.parsed.pop_front() else {
                break;
            };
            let auth_before = c.st.authenticated;
            if let Some(req) = self.execute(idx, req) {
                // Deferred by a slot hand-off: keep it first in line and retry later.
                if let Some(io) = self.clients[idx].io.as_mut() {
                    io.parsed.push_front(req);
                }
                break;
            }
            // Serve clients blocked on keys this command (or EXEC) made ready.
            if self.srv.blocking.has_ready() {
                super::blocking::serve(&mut self.srv, &mut self.clients);
            }
            if !self.srv.blocking.woken.is_empty() {
                self.requeue_woken();
            }
            let authed = self.clients[idx].st.authenticated;
            if authed != auth_before {
                // AUTH/HELLO changed the limits the parser applies to what is still buffered.
                let gate = events::read_gate(&self.srv, !authed);
                if let Some(io) = self.clients[idx].io.as_mut() {
                    io.gate = gate;
                    io.parse();
                }
            } else if !authed {
                // Unauthenticated requests are parsed one at a time (see `ConnIo::parse`).
                if let Some(io) = self.clients[idx].io.as_mut() {
                    io.parse();
                }
            }
        }
        if !self.reply.is_empty() {
            let chunk = self.reply.buf.split().freeze();
            self.srv.stats.net_output_bytes += chunk.len() as u64;
            if let Some(io) = self.clients[idx].io.as_mut() {
                io.queue(chunk);
            }
        }
    }

    /// Looks a request up, checks it and runs it (see `dispatch`). Returns the request when
    /// it was deferred (cluster slot hand-off) and must run again later.
    fn execute(&mut self, idx: usize, req: Request) -> Option<Request> {
        let Request { args, cmd, key } = req;
        self.clients[idx].st.deferred = false;
        if self.clients[idx].st.master {
            // The primary's stream: applied as it came, counted into the offset.
            crate::replication::replica::before_apply(&mut self.srv);
            super::dispatch::dispatch_parsed(
                &mut self.srv,
                &mut self.clients,
                &mut self.reply,
                idx,
                &args,
                cmd,
                key,
            );
            crate::replication::replica::after_apply(&mut self.srv, &args);
            self.free_args(args);
            return None;
        }
        // A script that runs long serves other clients meanwhile (see `busy`).
        self.lend_loop();
        super::dispatch::dispatch_parsed(
            &mut self.srv,
            &mut self.clients,
            &mut self.reply,
            idx,
            &args,
            cmd,
            key,
        );
        self.take_loop_back();
        if self.clients.get(idx).is_some_and(|c| c.st.deferred) {
            return Some(Request { args, cmd, key });
        }
        self.free_args(args);
        None
    }

    /// Puts clients that `blocking` unblocked (served, timed out, CLIENT UNBLOCK) in the ready
    /// list, so their replies are written and their pipelined requests run.
    fn requeue_woken(&mut self) {
        for idx in std::mem::take(&mut self.srv.blocking.woken) {
            if let Some(c) = self.clients.get_mut(idx) {
                if !c.queued {
                    c.queued = true;
                    self.lp.ready.push(idx);
                }
            }
        }
    }

    /// Argument buffers of big requests are dropped on an I/O thread.
    fn free_args(&mut self, args: Vec<Bytes>) {
        let size: usize = args.iter().map(Bytes::len).sum();
        if size >= 64 * 1024 {
            self.srv.free_later(args);
        }
    }

    fn flush_garbage(&mut self) {
        if self.srv.garbage.is_empty() {
            return;
        }
        let garbage = std::mem::take(&mut self.srv.garbage);
        for (i, g) in garbage.into_iter().enumerate() {
            if let Err(Job::Free(g)) = self.lp.io.submit_free(i, Job::Free(g)) {
                drop(g);
            }
        }
    }

    /// Closes a client whose I/O half is home; if it is away, marks it to close on return.
    fn close(&mut self, idx: usize) {
        let Some(c) = self.clients.get_mut(idx) else {
            return;
        };
        let Some(mut io) = c.io.take() else {
            c.st.close_asap = true;
            return;
        };
        let _ = self.lp.registry.deregister(&mut io.stream);
        // Leave every pub/sub registry before the slab slot can be reused.
        self.srv.pubsub.drop_client(&mut c.st, idx);
        self.srv.blocking.remove_client(idx);
        self.srv.monitors.remove(idx);
        crate::replication::primary::on_close(&mut self.srv, idx, c.st.id);
        crate::replication::replica::on_close(&mut self.srv, idx, c.st.id);
        crate::command::txn::on_close(&mut self.srv, &mut c.st, idx);
        super::tracking::disable(&mut self.srv, &mut c.st, idx);
        log::debug!("Client closed connection id={} addr={}", c.st.id, c.st.addr);
        self.clients.remove(idx);
        drop(io);
    }

    /// Pub/sub fan-out gave output to clients other than the one running: queue them so the
    /// normal write path (an I/O thread when one is active) sends it.
    fn queue_subscribers(&mut self) {
        if self.srv.pubsub.dirty.is_empty() {
            return;
        }
        let dirty = std::mem::take(&mut self.srv.pubsub.dirty);
        for &idx in &dirty {
            if let Some(c) = self.clients.get_mut(idx) {
                if !c.queued {
                    c.queued = true;
                    self.lp.ready.push(idx);
                }
            }
        }
        self.srv.pubsub.dirty = dirty;
        self.srv.pubsub.dirty.clear();
    }

    /// Closes clients marked by other clients' commands (CLIENT KILL) that are now idle.
    fn reap_marked(&mut self) {
        let marked: Vec<usize> =
            self.clients.iter().filter(|(_, c)| c.st.close_asap && c.io.is_some()).map(|(i, _)| i).collect();
        for idx in marked {
            self.close(idx);
        }
    }

    /// Stops accepting, flushes pending replies (bounded), and returns.
    fn shutdown(&mut self) {
        for l in &mut self.lp.listeners {
            let _ = self.lp.registry.deregister(l);
        }
        self.lp.listeners.clear();
        let deadline = Instant::now() + Duration::from_secs(2);
        while self.lp.io.inflight > 0 && Instant::now() < deadline {
            self.collect_io();
            std::thread::yield_now();
        }
        self.collect_io();
        for (_, c) in self.clients.iter_mut() {
            c.flush_pending();
            if let Some(io) = c.io.as_mut() {
                while io.has_output() && Instant::now() < deadline {
                    io.write();
                    if io.write_blocked {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    if io.eof {
                        break;
                    }
                }
            }
        }
        log::warn!("Shoal is now ready to exit, bye bye...");
    }
}

/// Counts what a TLS connection's last I/O job found: a finished handshake, or a failure
/// (logged at `verbose`, once per connection: the session is closed right after).
fn tls_events(srv: &mut Server, io: &mut crate::net::ConnIo, addr: &str) {
    let Some(tls) = io.tls.as_mut() else { return };
    if !tls.established && !tls.is_handshaking() {
        tls.established = true;
        srv.stats.tls_handshakes += 1;
    }
    if let Some(reason) = tls.failure.take() {
        if tls.established {
            log::debug!("TLS error on connection from {addr}: {reason}");
        } else {
            srv.stats.tls_handshake_failures += 1;
            if tls.not_tls {
                log::debug!("Error accepting a client connection: {addr} did not speak TLS ({reason})");
            } else {
                log::debug!("Error accepting a client connection: TLS handshake with {addr}: {reason}");
            }
        }
    }
}

const PROTECTED_MODE_MSG: &str = "-DENIED Running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers, you may adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting from the same host the server is running, however MAKE SURE it's not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by editing the configuration file, and setting the protected mode option to 'no', and then restarting the server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Set up an authentication password for the default user. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.\r\n";
