//! The replica side, on the executor thread: REPLICAOF's state, loading a full sync, and
//! applying the primary's stream.
//!
//! ```text
//!  connect ──▶ linking (worker thread: handshake, PSYNC, payload) ──▶ connected
//!     ▲             │ failed / cancelled                                 │ link closed,
//!     └─────────────┴──────────── retry after RETRY ◀────────────────────┘ repl-timeout
//! ```
//!
//! A full sync replaces the dataset: the databases are emptied when `+FULLRESYNC` arrives and
//! filled batch by batch as the worker decodes the payload; meanwhile commands without the
//! `loading` flag answer `-LOADING`. Until the payload has been loaded whole the node carries
//! a fresh replication id, so a link that fails half-way can never `+CONTINUE` on top of a
//! partial dataset. Once loaded, the primary's socket becomes a client flagged `master`:
//! the I/O threads read and parse it like any other, the executor runs its commands with the
//! replies dropped, and each command's bytes advance the offset and are passed on verbatim to
//! this node's own backlog and replicas (so a sub-replica or a promoted replica continues
//! the same history, Valkey's PSYNC2).
//!
//! Expiry on a replica belongs to the primary ([`Expiry`]): the primary's stream sees keys as
//! they are, other clients see expired keys as absent, and nothing is deleted until the
//! primary's `DEL` arrives.

use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use slab::Slab;

use super::backlog::Backlog;
use super::link::{self, Event, LinkConfig};
use crate::exec::{Client, Server};
use crate::keyspace::Expiry;

/// Wait between link attempts after a failure.
const RETRY: Duration = Duration::from_secs(1);
/// How often the replica acknowledges its offset.
const ACK_PERIOD: Duration = Duration::from_secs(1);
/// Batches of keys applied per executor loop iteration while loading (the rest waits, so
/// clients keep getting answers, if only `-LOADING`).
const LOAD_BATCHES: usize = 8;

/// Where the link to the primary stands (ROLE's words).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// Waiting to (re)connect.
    Connect,
    /// The worker is connecting, in the handshake or transferring the payload.
    Linking,
    /// The stream is flowing through the primary's client.
    Connected,
}

/// A socket that carries the primary's stream, for the executor to register as a client.
pub struct Attach {
    /// Plain, or TLS when `tls-replication` is on (see `net::dial`).
    pub socket: crate::net::dial::Dialed,
    pub leftover: Vec<u8>,
}

/// This node's primary (REPLICAOF host port).
pub struct Master {
    pub host: String,
    pub port: u16,
    pub state: LinkState,
    retry_at: Instant,
    shared: Option<Arc<link::Shared>>,
    rx: Option<Receiver<Event>>,
    /// The primary's client, once connected: (slab index, client id).
    pub client: Option<(usize, u64)>,
    /// Last time anything came from the primary.
    pub last_io: Instant,
    /// Since when the link is down (None while connected).
    pub down_since: Option<Instant>,
    last_ack: Instant,
    /// A full sync being loaded: the primary's id and offset, keys so far, start time.
    loading: Option<(String, u64, u64, Instant)>,
    /// Full syncs loaded, keys of the last one, and how long it took.
    pub syncs: u64,
    pub last_sync_keys: u64,
    pub last_sync_time: Duration,
}

impl Master {
    fn new(host: String, port: u16, now: Instant) -> Master {
        Master {
            host,
            port,
            state: LinkState::Connect,
            retry_at: now,
            shared: None,
            rx: None,
            client: None,
            last_io: now,
            down_since: Some(now),
            last_ack: now,
            loading: None,
            syncs: 0,
            last_sync_keys: 0,
            last_sync_time: Duration::ZERO,
        }
    }

    /// ROLE's state word.
    pub fn role_state(&self) -> &'static str {
        match self.state {
            LinkState::Connect => "connect",
            LinkState::Connected => "connected",
            LinkState::Linking => match self.shared.as_ref().map(|s| s.phase.load(Ordering::Relaxed)) {
                Some(link::phase::TRANSFER) => "sync",
                Some(link::phase::HANDSHAKE) => "handshake",
                _ => "connecting",
            },
        }
    }

    /// True while a full sync is being received or loaded.
    pub fn syncing(&self) -> bool {
        self.loading.is_some()
            || self.shared.as_ref().is_some_and(|s| s.phase.load(Ordering::Relaxed) == link::phase::TRANSFER)
    }

    /// Payload bytes read and announced (0: EOF-framed, size unknown) of the running sync.
    pub fn transfer(&self) -> (u64, u64) {
        self.shared
            .as_ref()
            .map_or((0, 0), |s| (s.read_bytes.load(Ordering::Relaxed), s.total_bytes.load(Ordering::Relaxed)))
    }

    fn stop_worker(&mut self) {
        if let Some(s) = self.shared.take() {
            s.cancel.store(true, Ordering::Relaxed);
        }
        // Dropping the receiver unblocks a worker waiting to send.
        self.rx = None;
    }
}

// Replication ids have the form of node ids.
use crate::cluster::persist::random_id;

fn set_expiry(srv: &mut Server, mode: Expiry) {
    for db in &mut srv.dbs {
        db.expiry = mode;
    }
}

/// Closes every replica of this node (they resync: the history they follow changed).
fn drop_replicas(srv: &mut Server, clients: &mut Slab<Client>) {
    for r in std::mem::take(&mut srv.repl.replicas) {
        if let Some(c) = clients.get_mut(r.idx).filter(|c| c.st.id == r.client_id) {
            c.st.close_asap = true;
            srv.kill_pending = true;
        }
    }
}

/// Closes the primary's client, if any.
fn drop_master_client(srv: &mut Server, clients: &mut Slab<Client>) {
    if let Some((idx, id)) = srv.master.as_mut().and_then(|m| m.client.take()) {
        if let Some(c) = clients.get_mut(idx).filter(|c| c.st.id == id) {
            c.st.master = false;
            c.st.close_asap = true;
            srv.kill_pending = true;
        }
    }
}

/// REPLICAOF host port: follow that primary (from the next loop iteration on).
pub fn set_primary(srv: &mut Server, clients: &mut Slab<Client>, host: &str, port: u16) {
    if let Some(m) = srv.master.as_mut() {
        m.stop_worker();
    }
    drop_master_client(srv, clients);
    drop_replicas(srv, clients);
    // Our history up to now is what we offer the new primary (PSYNC with our id and offset:
    // a former replica of ours that was promoted continues it).
    srv.repl.settle();
    srv.loading = false;
    set_expiry(srv, Expiry::Hide);
    srv.repl.stream_db_reset();
    log::info!("Connecting to PRIMARY {host}:{port}");
    srv.master = Some(Box::new(Master::new(host.to_string(), port, srv.now)));
}

/// REPLICAOF NO ONE: become a primary. The history so far stays valid under the old id up to
/// the current offset (`replid2`), so this node's former siblings can `+CONTINUE` from it.
pub fn unset_primary(srv: &mut Server, clients: &mut Slab<Client>) {
    let Some(m) = srv.master.as_mut() else { return };
    m.stop_worker();
    drop_master_client(srv, clients);
    srv.master = None;
    drop_replicas(srv, clients);
    let was_loading = std::mem::take(&mut srv.loading);
    if was_loading {
        // A half-loaded dataset is no history at all, and no consistent data either.
        srv.repl.replid = random_id();
        srv.repl.offset = 0;
        for i in 0..srv.dbs.len() {
            let old = srv.dbs[i].clear();
            srv.free_later(old);
        }
    } else {
        srv.repl.shift_replid(random_id());
    }
    srv.repl.stream_db_reset();
    set_expiry(srv, Expiry::Delete);
    // From now on this node's own expiries become DELs for its replicas.
    let logging = srv.repl.active();
    for db in &mut srv.dbs {
        db.log_for_replication(logging);
    }
    log::info!("PRIMARY MODE enabled, new replication id {}", srv.repl.replid);
}

/// The configured `masterauth` / `masteruser`, when set.
fn credentials(srv: &Server) -> (Option<String>, Option<String>) {
    let get = |k: &str| srv.config.get(k).filter(|v| !v.is_empty()).map(str::to_string);
    (get("masteruser"), get("masterauth"))
}

/// Once per executor loop: start link attempts, take the worker's events, ACK, time out.
/// Returns a socket to attach as the primary's client.
pub fn tick(srv: &mut Server, clients: &mut Slab<Client>) -> Option<Attach> {
    let m = srv.master.as_mut()?;
    let now = srv.now;
    match m.state {
        LinkState::Connect if now >= m.retry_at => {
            let (user, password) = credentials(srv);
            let wake = srv.wake.clone()?;
            let timeout = Duration::from_secs(srv.config.get_i64("repl-timeout").clamp(1, 3600) as u64);
            let m = srv.master.as_mut()?;
            let cfg = LinkConfig {
                host: m.host.clone(),
                port: m.port,
                user,
                password,
                // Valkey announces the TLS port when replication runs over TLS.
                listening_port: if srv.config.get_bool("tls-replication") && srv.tls_port != 0 {
                    srv.tls_port
                } else {
                    srv.port
                },
                replid: srv.repl.replid.clone(),
                offset: srv.repl.offset as i64 + 1,
                timeout,
            };
            let shared = Arc::new(link::Shared::default());
            let (tx, rx) = std::sync::mpsc::sync_channel(link::CHANNEL_DEPTH);
            match link::spawn(cfg, shared.clone(), tx, wake) {
                Ok(()) => {
                    m.shared = Some(shared);
                    m.rx = Some(rx);
                    m.state = LinkState::Linking;
                }
                Err(e) => {
                    log::warn!("Cannot start the replication link thread: {e}");
                    m.retry_at = now + RETRY;
                }
            }
            None
        }
        LinkState::Linking => take_events(srv, clients),
        LinkState::Connected => {
            let timeout = Duration::from_secs(srv.config.get_i64("repl-timeout").clamp(1, i64::MAX) as u64);
            let m = srv.master.as_mut()?;
            let (idx, id) = m.client?;
            if now.duration_since(m.last_io) > timeout {
                log::warn!("PRIMARY timeout: no data nor PING received...");
                drop_master_client(srv, clients);
                link_lost(srv);
            } else if now.duration_since(m.last_ack) >= ACK_PERIOD {
                m.last_ack = now;
                send_ack(srv, clients, idx, id);
            }
            None
        }
        LinkState::Connect => None,
    }
}

/// The worker's news since last time.
fn take_events(srv: &mut Server, clients: &mut Slab<Client>) -> Option<Attach> {
    let mut batches = 0;
    loop {
        let m = srv.master.as_mut()?;
        let rx = m.rx.as_ref()?;
        let ev = match rx.try_recv() {
            Ok(ev) => ev,
            Err(TryRecvError::Empty) => return None,
            Err(TryRecvError::Disconnected) => {
                // The worker ended without a word (it cannot: it always reports).
                m.stop_worker();
                m.state = LinkState::Connect;
                m.retry_at = srv.now + RETRY;
                return None;
            }
        };
        m.last_io = srv.now;
        match ev {
            Event::FullSync { replid, offset } => {
                log::info!("PRIMARY <-> REPLICA sync: Flushing old data");
                drop_replicas(srv, clients);
                for i in 0..srv.dbs.len() {
                    let old = srv.dbs[i].clear();
                    srv.free_later(old);
                }
                // Client-side caching: everything cached from this replica is invalid.
                crate::exec::tracking::flushed(srv, clients);
                // Until the payload is loaded whole this node has no history.
                srv.repl.replid = random_id();
                srv.repl.offset = 0;
                srv.repl.replid2 = "0".repeat(40);
                srv.repl.second_offset = -1;
                srv.repl.backlog = None;
                srv.loading = true;
                // The primary's functions come with its data.
                if let Some(sc) = srv.scripting.as_mut() {
                    sc.flush_functions();
                }
                let m = srv.master.as_mut()?;
                m.loading = Some((replid, offset, 0, Instant::now()));
            }
            Event::Keys(keys) => {
                let clock = srv.lru_clock();
                let n = keys.len() as u64;
                for k in keys {
                    let db = k.db as usize;
                    if db >= srv.dbs.len() {
                        log::warn!("Key from the primary in DB {db}, which this node does not have: skipped");
                        continue;
                    }
                    let old = srv.dbs[db].set(&k.key, k.value, k.expire_ms, clock);
                    if let Some(old) = old {
                        srv.free_later(old);
                    }
                }
                if let Some(l) = srv.master.as_mut().and_then(|m| m.loading.as_mut()) {
                    l.2 += n;
                }
                batches += 1;
                if batches >= LOAD_BATCHES {
                    // More next iteration; make sure the executor does not sleep meanwhile.
                    if let Some(w) = srv.wake.as_ref() {
                        w();
                    }
                    return None;
                }
            }
            Event::Function(code) => {
                let Some(mut sc) =
                    srv.scripting.take().or_else(|| crate::scripting::Scripting::new().ok().map(Box::new))
                else {
                    continue;
                };
                if let Err(e) = sc.load_library(&code, true) {
                    log::warn!("Function library from the primary not loaded: {e}");
                }
                srv.scripting = Some(sc);
            }
            Event::Loaded { socket, leftover, stats } => {
                let m = srv.master.as_mut()?;
                let Some((replid, offset, keys, started)) = m.loading.take() else { continue };
                m.syncs += 1;
                m.last_sync_keys = keys;
                m.last_sync_time = started.elapsed();
                log::info!(
                    "PRIMARY <-> REPLICA sync: Finished with success ({keys} keys in {:?}, {} skipped)",
                    m.last_sync_time,
                    stats.skipped_modules
                );
                srv.loading = false;
                crate::exec::tracking::discard_changes(srv);
                start_history(srv, replid, offset);
                return Some(Attach { socket, leftover });
            }
            Event::Continue { replid, socket, leftover } => {
                log::info!("Successful partial resynchronization with primary.");
                if let Some(new) = replid.filter(|r| *r != srv.repl.replid) {
                    log::info!("Primary replication ID changed to {new}");
                    srv.repl.shift_replid(new);
                    drop_replicas(srv, clients);
                }
                if srv.repl.backlog.is_none() {
                    let offset = srv.repl.offset;
                    start_backlog(srv, offset);
                }
                return Some(Attach { socket, leftover });
            }
            Event::Failed(msg) => {
                log::warn!("Replication link to {}:{} failed: {msg}", m.host, m.port);
                let partial = m.loading.take().is_some();
                m.stop_worker();
                m.state = LinkState::Connect;
                m.retry_at = srv.now + RETRY;
                if partial {
                    // A partial dataset is not served: empty again, as Valkey after a failed load.
                    for i in 0..srv.dbs.len() {
                        let old = srv.dbs[i].clear();
                        srv.free_later(old);
                    }
                }
                srv.loading = false;
                return None;
            }
        }
    }
}

/// The dataset now matches the primary's at `offset` under `replid`.
fn start_history(srv: &mut Server, replid: String, offset: u64) {
    srv.repl.replid = replid;
    srv.repl.offset = offset;
    srv.repl.replid2 = "0".repeat(40);
    srv.repl.second_offset = -1;
    start_backlog(srv, offset);
}

fn start_backlog(srv: &mut Server, offset: u64) {
    let cap = srv.config.get_i64("repl-backlog-size").max(16 * 1024) as usize;
    srv.repl.backlog = Some(Backlog::new(cap, offset + 1));
    // A replica's stream is its primary's: it records no expiries of its own.
    for db in &mut srv.dbs {
        db.log_for_replication(false);
    }
}

/// The executor registered the primary's socket as client `idx`.
pub fn attached(srv: &mut Server, clients: &mut Slab<Client>, idx: usize) {
    let Some(m) = srv.master.as_mut() else { return };
    let id = clients[idx].st.id;
    m.client = Some((idx, id));
    m.state = LinkState::Connected;
    m.down_since = None;
    m.last_io = srv.now;
    m.last_ack = srv.now;
    m.stop_worker();
    log::info!("PRIMARY <-> REPLICA sync: primary accepted, streaming from offset {}", srv.repl.offset);
    // The first ACK at once: a primary that framed the payload with an EOF mark starts the
    // stream only when it arrives.
    send_ack(srv, clients, idx, id);
}

fn send_ack(srv: &mut Server, clients: &mut Slab<Client>, idx: usize, id: u64) {
    let Some(c) = clients.get_mut(idx).filter(|c| c.st.id == id) else { return };
    let off = srv.repl.offset_now().to_string();
    let mut out = Vec::new();
    super::primary::encode(&mut out, &[b"REPLCONF", b"ACK", off.as_bytes()]);
    c.send(Bytes::from(out));
    srv.pubsub.dirty.push(idx);
}

/// REPLCONF GETACK from the primary: acknowledge now (the offset before this command).
pub fn getack(srv: &mut Server, clients: &mut Slab<Client>, idx: usize) {
    let id = clients[idx].st.id;
    if srv.master.as_ref().and_then(|m| m.client) == Some((idx, id)) {
        send_ack(srv, clients, idx, id);
    }
}

/// The primary's client is about to run a command: it sees keys as stored.
pub fn before_apply(_srv: &mut Server) {
    crate::keyspace::db::applying_primary(true);
}

/// The primary's client ran `args`: advance the offset and pass the bytes on.
pub fn after_apply(srv: &mut Server, args: &[Bytes]) {
    crate::keyspace::db::applying_primary(false);
    srv.repl.feed_raw_args(args);
    if let Some(m) = srv.master.as_mut() {
        m.last_io = srv.now;
    }
}

/// A client closed: if it was the primary's, the link is down and will be retried.
pub fn on_close(srv: &mut Server, idx: usize, id: u64) {
    if srv.master.as_ref().and_then(|m| m.client) == Some((idx, id)) {
        log::warn!("Connection with primary lost.");
        link_lost(srv);
    }
}

fn link_lost(srv: &mut Server) {
    if let Some(m) = srv.master.as_mut() {
        m.client = None;
        m.state = LinkState::Connect;
        m.down_since = Some(srv.now);
        // The first retry at once: a short disconnect usually resumes with +CONTINUE.
        m.retry_at = srv.now;
    }
}

/// When the replica side next has timed work: a retry, or an ACK (the link thread wakes
/// the executor itself when it has news).
pub fn next_deadline(srv: &Server) -> Option<Instant> {
    let m = srv.master.as_ref()?;
    match m.state {
        LinkState::Connect => Some(m.retry_at),
        LinkState::Connected => Some(m.last_ack + ACK_PERIOD),
        LinkState::Linking => None,
    }
}

/// Start the link named by the `replicaof` directive, if any.
pub fn from_config(srv: &mut Server) {
    let Some(spec) = srv.config.get("replicaof").map(str::to_string) else { return };
    let mut parts = spec.split_whitespace();
    if let (Some(host), Some(port)) = (parts.next(), parts.next().and_then(|p| p.parse::<u16>().ok())) {
        let now = srv.now;
        set_expiry(srv, Expiry::Hide);
        srv.master = Some(Box::new(Master::new(host.to_string(), port, now)));
    }
}
