//! Online slot migration, atomic from the clients' side (Valkey 9 style), executor half.
//!
//! Export (on the source), one job per `CLUSTER MIGRATESLOTS` range group:
//! ```text
//!  syncing ──(snapshot walked, backlog small)──▶ handoff ──(target took over)──▶ success
//!     │ target error / cancel / FLUSHALL            │ target error or timeout
//!     ▼                                             ▼
//!  failed | cancelled                            failed            (source keeps the slots)
//! ```
//! While *syncing* the source serves the slots as usual; each tick walks a bounded part of the
//! keyspace and queues the slots' keys, and every write to those slots queues the written keys'
//! new state (or a delete), all in execution order, so the target converges to the source.
//! In *handoff* writes to the slots are deferred (clients wait, they see no error) while the
//! worker sends the rest and `FINISH`; then an override gives the slots to the target, the
//! deferred writes get MOVED, and the keys are freed a bounded step per tick.
//!
//! Import (on the target): `importing` from `START` until `FINISH` (`success`); the slots stay
//! owned by the source meanwhile, so clients are still sent there. If the source's connection
//! closes first, or it sends `ABORT`, the partial import is discarded.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::mpsc::TrySendError;
use std::time::{Duration, Instant};

use bytes::Bytes;
use slab::Slab;

use super::serialize::{self, KeyImage};
use super::topology::NodeInfo;
use super::worker::{self, Handle, ToWorker};
use super::{ClusterState, SlotSet};
use crate::command::keys_of::command_keys;
use crate::command::meta::CommandMeta;
use crate::exec::{Client, Server};
use crate::keyspace::slot::key_slot;

/// Keyspace positions a tick may walk for one export.
const SCAN_STEP: usize = 2048;
/// Time a tick may spend on migration work.
const TICK_BUDGET: Duration = Duration::from_millis(2);
/// Keys per DATA command.
const BATCH_KEYS: usize = 256;
const BATCH_BYTES: usize = 512 * 1024;
/// Handoff starts when at most this many shipped keys are unacknowledged.
const HANDOFF_BACKLOG: u64 = 1024;
/// A migration whose queued data exceeds this fails rather than eat the node's memory.
const MAX_PENDING_BYTES: usize = 256 * 1024 * 1024;
/// Terminal jobs remembered for GETSLOTMIGRATIONS.
const HISTORY: usize = 32;

/// Where a job stands; the names are what GETSLOTMIGRATIONS shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Syncing,
    Handoff,
    Importing,
    Success,
    Failed,
    Cancelled,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Syncing => "syncing",
            State::Handoff => "handoff",
            State::Importing => "importing",
            State::Success => "success",
            State::Failed => "failed",
            State::Cancelled => "cancelled",
        }
    }

    pub fn active(self) -> bool {
        matches!(self, State::Syncing | State::Handoff | State::Importing)
    }
}

/// One migration job, exporting or importing.
pub struct Job {
    pub name: String,
    pub export: bool,
    pub slots: SlotSet,
    pub source: String,
    pub target: String,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub state: State,
    pub message: String,
    /// Keys shipped (export) or installed (import).
    pub keys: u64,
    // Export only.
    walk: Walk,
    scan_done: bool,
    pending: VecDeque<KeyImage>,
    pending_bytes: usize,
    queued: u64,
    finish_sent: bool,
    worker: Option<Handle>,
    handoff_at: Option<Instant>,
    /// How long writes to the slots were held back for the hand-off, once it ended (µs).
    pub handoff_us: Option<u64>,
    // Import only: the source's connection (slab index, client id).
    conn: Option<(usize, u64)>,
}

impl Job {
    fn new(name: String, export: bool, slots: SlotSet, source: String, target: String) -> Job {
        let now = crate::util::now_ms();
        Job {
            name,
            export,
            slots,
            source,
            target,
            created_ms: now,
            updated_ms: now,
            state: if export { State::Syncing } else { State::Importing },
            message: String::new(),
            keys: 0,
            walk: Walk::default(),
            scan_done: false,
            pending: VecDeque::new(),
            pending_bytes: 0,
            queued: 0,
            finish_sent: false,
            worker: None,
            handoff_at: None,
            handoff_us: None,
            conn: None,
        }
    }

    fn end(&mut self, state: State, message: impl Into<String>) {
        if let Some(at) = self.handoff_at.take() {
            self.handoff_us = Some(at.elapsed().as_micros() as u64);
        }
        self.state = state;
        self.message = message.into();
        self.updated_ms = crate::util::now_ms();
        self.pending.clear();
        self.pending_bytes = 0;
        // Dropping the sender stops the worker (it sends ABORT if still connected).
        self.worker = None;
        log::info!(
            "Slot migration {} ({}) {}: {}{}",
            self.name,
            self.slots.describe(),
            state.name(),
            self.message,
            self.handoff_us
                .map(|us| format!(" (writes paused {:.1} ms)", us as f64 / 1000.0))
                .unwrap_or_default()
        );
    }

    /// Unix ms of the target's last acknowledgement (exports), or of the last update.
    pub fn last_ack_ms(&self) -> i64 {
        self.worker.as_ref().map_or(self.updated_ms, |w| w.shared.last_ack_ms.load(Ordering::Relaxed))
    }

    fn push(&mut self, img: KeyImage) {
        self.pending_bytes += img.size();
        self.pending.push_back(img);
    }
}

/// Where a walk over the keys of some slots stands: a database (with Valkey 9's
/// `cluster-databases` a slot has keys in each), and the SCAN cursor inside it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Walk {
    db: usize,
    cursor: u64,
}

impl Walk {
    /// After a step that returned `next`: true when the last database is done.
    fn advance(&mut self, next: u64, dbs: usize) -> bool {
        self.cursor = next;
        if next != 0 {
            return false;
        }
        self.db += 1;
        self.db >= dbs
    }
}

/// Every migration this node takes part in, and slots whose keys are being freed.
#[derive(Default)]
pub struct Migrations {
    pub jobs: Vec<Job>,
    /// Slots to empty, with the walk's position.
    cleanup: Vec<(SlotSet, Walk)>,
    /// Exports that just handed their slots over, (slots, target id), for the other nodes to
    /// hear about (`cluster::bus::announce_handoffs`).
    pub announce: Vec<(SlotSet, String)>,
}

impl Migrations {
    /// A write to `slot` must wait: its export is handing over.
    pub fn write_paused(&self, slot: u16) -> bool {
        self.jobs.iter().any(|j| j.state == State::Handoff && j.slots.contains(slot))
    }

    /// Work that needs frequent ticks (the executor polls with a short timeout meanwhile).
    pub fn busy(&self) -> bool {
        !self.cleanup.is_empty() || self.jobs.iter().any(|j| j.export && j.state.active())
    }

    fn exporting(&self) -> bool {
        self.jobs.iter().any(|j| j.export && j.state == State::Syncing)
    }

    /// Slots of active jobs or still being freed.
    pub fn busy_slots(&self) -> SlotSet {
        let mut s = SlotSet::default();
        let sets = self
            .jobs
            .iter()
            .filter(|j| j.state.active())
            .map(|j| &j.slots)
            .chain(self.cleanup.iter().map(|(s, _)| s));
        for set in sets {
            for (a, b) in set.ranges() {
                for slot in a..=b {
                    s.insert(slot);
                }
            }
        }
        s
    }

    fn trim_history(&mut self) {
        let done = self.jobs.iter().filter(|j| !j.state.active()).count();
        if done > HISTORY {
            let mut drop = done - HISTORY;
            self.jobs.retain(|j| {
                if drop > 0 && !j.state.active() {
                    drop -= 1;
                    return false;
                }
                true
            });
        }
    }

    /// CLUSTER CANCELSLOTMIGRATIONS: every job not yet handing over. Returns how many.
    pub fn cancel_all(&mut self) -> usize {
        let mut n = 0;
        let mut freed = Vec::new();
        for j in &mut self.jobs {
            if matches!(j.state, State::Syncing | State::Importing) {
                if !j.export {
                    freed.push(j.slots.clone());
                }
                j.end(State::Cancelled, "cancelled by CLUSTER CANCELSLOTMIGRATIONS");
                n += 1;
            }
        }
        self.cleanup.extend(freed.into_iter().map(|s| (s, Walk::default())));
        n
    }
}

/// Why a migration could not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StartError {
    #[error("No pushed topology is installed")]
    NoTopology,
    #[error("Unknown node {0}")]
    UnknownNode(String),
    #[error("Node {0} is not a primary")]
    NotPrimary(String),
    #[error("Can not migrate slots to myself")]
    ToMyself,
    #[error("I'm not the owner of hash slot {0}")]
    NotOwner(u16),
    #[error("I already own hash slot {0}")]
    AlreadyOwner(u16),
    #[error("Slots {0} are already part of a slot migration or being freed")]
    Busy(String),
    #[error("Unknown slot migration {0}")]
    UnknownJob(String),
    #[error("Can not start the migration thread: {0}")]
    Thread(String),
}

/// Whether `slots` may migrate from this node to `target_id`; returns the target.
pub fn check_export(cl: &ClusterState, slots: &SlotSet, target_id: &str) -> Result<NodeInfo, StartError> {
    if cl.topology.is_none() || cl.local {
        return Err(StartError::NoTopology);
    }
    let target = cl.node(target_id).ok_or_else(|| StartError::UnknownNode(target_id.into()))?.clone();
    if target.role != super::topology::Role::Primary {
        return Err(StartError::NotPrimary(target.id));
    }
    if target.id == cl.myid {
        return Err(StartError::ToMyself);
    }
    if let Some(s) = slots.ranges().iter().flat_map(|&(a, b)| a..=b).find(|&s| !cl.owns(s)) {
        return Err(StartError::NotOwner(s));
    }
    if cl.migrations.busy_slots().intersects(slots) {
        return Err(StartError::Busy(slots.describe()));
    }
    Ok(target)
}

/// CLUSTER MIGRATESLOTS, one job: starts the worker and returns the job's name.
pub fn start_export(
    cl: &mut ClusterState,
    slots: SlotSet,
    target_id: &str,
    auth: Option<(Option<String>, String)>,
) -> Result<String, StartError> {
    let target = check_export(cl, &slots, target_id)?;
    let name = super::persist::random_id();
    let host =
        if target.ip.is_empty() { target.hostname.clone().unwrap_or_default() } else { target.ip.clone() };
    let handle = worker::spawn(
        name.clone(),
        cl.myid.clone(),
        slots.ranges(),
        worker::Target { host, port: crate::net::dial::cluster_port(target.port, target.tls_port), auth },
    )
    .map_err(|e| StartError::Thread(e.to_string()))?;
    let mut job = Job::new(name.clone(), true, slots, cl.myid.clone(), target.id.clone());
    job.worker = Some(handle);
    log::info!("Slot migration {name} of {} to {} started", job.slots.describe(), target.id);
    cl.migrations.jobs.push(job);
    cl.migrations.trim_history();
    Ok(name)
}

/// After a command ran in database `db`: ship the new state of keys written in exporting
/// slots; FLUSHALL and FLUSHDB fail every migration (the snapshot no longer means anything).
pub fn after_command(srv: &mut Server, db: usize, meta: &CommandMeta, args: &[Bytes]) {
    let Server { cluster, dbs, .. } = srv;
    let Some(cl) = cluster.as_mut() else { return };
    if cl.migrations.jobs.is_empty() || !meta.has_flag("write") {
        return;
    }
    if meta.name == "flushall" || meta.name == "flushdb" {
        let mut freed = Vec::new();
        for j in cl.migrations.jobs.iter_mut().filter(|j| j.state.active()) {
            if !j.export {
                freed.push(j.slots.clone());
            }
            j.end(State::Failed, format!("{} during the migration", meta.name.to_ascii_uppercase()));
        }
        cl.migrations.cleanup.extend(freed.into_iter().map(|s| (s, Walk::default())));
        return;
    }
    if !cl.migrations.exporting() {
        return;
    }
    let now = crate::util::now_ms();
    let other = other_db(meta, args).filter(|&(_, d)| d < dbs.len());
    let written = command_keys(meta, args).into_iter().map(|k| (k.pos, db)).chain(other);
    for (pos, db) in written {
        let key = &args[pos];
        let slot = key_slot(key);
        for j in cl.migrations.jobs.iter_mut() {
            if j.export && j.state == State::Syncing && j.slots.contains(slot) {
                j.push(serialize::snapshot(&mut dbs[db], db, key, now));
            }
        }
    }
}

/// The key a command writes in another database (MOVE's key, COPY ... DB's destination):
/// its argument position and that database.
fn other_db(meta: &CommandMeta, args: &[Bytes]) -> Option<(usize, usize)> {
    let index = |a: &Bytes| crate::util::parse_i64(a).and_then(|d| usize::try_from(d).ok());
    match meta.name {
        "move" => Some((1, index(args.get(2)?)?)),
        "copy" => {
            let at = args.iter().skip(3).position(|a| a.eq_ignore_ascii_case(b"db"))? + 3;
            Some((2, index(args.get(at + 1)?)?))
        }
        _ => None,
    }
}

/// The executor's per-iteration migration work. Returns true when deferred writes must be
/// retried (a hand-off ended).
pub fn tick(srv: &mut Server, clients: &Slab<Client>) -> bool {
    // Keys freed here reach this node's replicas as DELs (they never run migrations).
    let replicating = srv.repl.active() && srv.master.is_none();
    let Server { cluster, dbs, garbage: trash, repl, .. } = srv;
    let Some(cl) = cluster.as_mut() else { return false };
    if cl.migrations.jobs.is_empty() && cl.migrations.cleanup.is_empty() {
        return false;
    }
    let started = Instant::now();
    let now = crate::util::now_ms();
    let mut unpause = false;
    let mut won: Vec<(SlotSet, String)> = Vec::new();
    let mut freed: Vec<SlotSet> = Vec::new();
    for j in cl.migrations.jobs.iter_mut().filter(|j| j.state.active()) {
        if !j.export {
            let alive = j
                .conn
                .is_some_and(|(idx, id)| clients.get(idx).is_some_and(|c| c.st.id == id && !c.st.close_asap));
            if !alive {
                j.end(State::Failed, "connection to the source lost");
                freed.push(j.slots.clone());
            }
            continue;
        }
        let outcome = j.worker.as_ref().and_then(|w| w.shared.outcome());
        match outcome {
            Some(Err(e)) => {
                unpause |= j.state == State::Handoff;
                j.end(State::Failed, e);
                continue;
            }
            Some(Ok(())) => {
                j.keys = j.queued;
                j.end(State::Success, "slots handed over");
                won.push((j.slots.clone(), j.target.clone()));
                unpause = true;
                continue;
            }
            None => {}
        }
        if j.state == State::Syncing && !j.scan_done {
            while started.elapsed() < TICK_BUDGET && j.pending_bytes < BATCH_BYTES * worker::CHANNEL_DEPTH {
                let mut found = Vec::new();
                let db = j.walk.db;
                let next =
                    serialize::scan_slots(&mut dbs[db], &j.slots, j.walk.cursor, SCAN_STEP, now, |k| {
                        found.push(k.clone())
                    });
                for k in found {
                    j.push(serialize::snapshot(&mut dbs[db], db, &k, now));
                }
                if j.walk.advance(next, dbs.len()) {
                    j.scan_done = true;
                    break;
                }
            }
        }
        if j.pending_bytes > MAX_PENDING_BYTES {
            j.end(State::Failed, "the target does not keep up: too much data queued");
            continue;
        }
        flush(j);
        let acked = j.worker.as_ref().map_or(0, |w| w.shared.acked.load(Ordering::Relaxed));
        if j.state == State::Syncing
            && j.scan_done
            && j.pending.is_empty()
            && j.queued - acked <= HANDOFF_BACKLOG
        {
            j.state = State::Handoff;
            j.updated_ms = now;
            j.handoff_at = Some(Instant::now());
        }
        if j.state == State::Handoff && !j.finish_sent && j.pending.is_empty() {
            if let Some(w) = &j.worker {
                j.finish_sent = w.tx.try_send(ToWorker::Finish).is_ok();
            }
        }
    }
    for (slots, target) in won {
        for (a, b) in slots.ranges() {
            for slot in a..=b {
                cl.overrides.insert(slot, target.clone());
            }
        }
        cl.migrations.announce.push((slots.clone(), target));
        cl.migrations.cleanup.push((slots, Walk::default()));
    }
    if unpause {
        cl.rebuild();
        cl.save_or_warn();
    }
    cl.migrations.cleanup.extend(freed.into_iter().map(|s| (s, Walk::default())));
    cl.migrations.trim_history();
    // Free the keys of slots that left (or imports that failed), a bounded step at a time.
    let mut garbage = Vec::new();
    while let Some((slots, walk)) = cl.migrations.cleanup.first_mut() {
        if started.elapsed() >= TICK_BUDGET {
            break;
        }
        let (next, keys, values) =
            serialize::remove_slots_step(&mut dbs[walk.db], slots, walk.cursor, SCAN_STEP);
        if replicating {
            for k in &keys {
                repl.feed(walk.db, &[b"DEL", k]);
            }
        }
        garbage.extend(values);
        if walk.advance(next, dbs.len()) {
            cl.migrations.cleanup.remove(0);
        }
    }
    if !garbage.is_empty() {
        trash.push(Box::new(garbage));
    }
    unpause
}

/// Moves queued key images into the worker's channel, a batch at a time, as space allows.
fn flush(j: &mut Job) {
    let Some(w) = &j.worker else { return };
    while !j.pending.is_empty() {
        let mut batch = Vec::new();
        let mut bytes = 0;
        while let Some(img) = j.pending.pop_front() {
            bytes += img.size();
            batch.push(img);
            if batch.len() >= BATCH_KEYS || bytes >= BATCH_BYTES {
                break;
            }
        }
        let n = batch.len() as u64;
        match w.tx.try_send(ToWorker::Batch(batch)) {
            Ok(()) => {
                j.pending_bytes -= bytes;
                j.queued += n;
                j.keys = j.queued;
            }
            Err(TrySendError::Full(ToWorker::Batch(back)))
            | Err(TrySendError::Disconnected(ToWorker::Batch(back))) => {
                for img in back.into_iter().rev() {
                    j.pending.push_front(img);
                }
                return;
            }
            Err(_) => return,
        }
    }
}

/// `SYNCSLOTS START` on the target.
pub fn start_import(
    cl: &mut ClusterState,
    name: &str,
    source: &str,
    slots: SlotSet,
    conn: (usize, u64),
) -> Result<(), StartError> {
    if cl.topology.is_none() {
        return Err(StartError::NoTopology);
    }
    let src = cl.node(source).ok_or_else(|| StartError::UnknownNode(source.into()))?;
    if src.role != super::topology::Role::Primary {
        return Err(StartError::NotPrimary(source.into()));
    }
    if !matches!(cl.me(), Some((_, super::topology::Role::Primary))) {
        return Err(StartError::NotPrimary(cl.myid.clone()));
    }
    if let Some(s) = slots.ranges().iter().flat_map(|&(a, b)| a..=b).find(|&s| cl.owns(s)) {
        return Err(StartError::AlreadyOwner(s));
    }
    if cl.migrations.busy_slots().intersects(&slots) {
        return Err(StartError::Busy(slots.describe()));
    }
    let mut job = Job::new(name.into(), false, slots, source.into(), cl.myid.clone());
    job.conn = Some(conn);
    log::info!("Slot import {name} of {} from {source} started", job.slots.describe());
    cl.migrations.jobs.push(job);
    cl.migrations.trim_history();
    Ok(())
}

/// The active import `name`, if it belongs to connection `conn`.
pub fn import_job<'a>(
    cl: &'a mut ClusterState,
    name: &[u8],
    conn: (usize, u64),
) -> Result<&'a mut Job, StartError> {
    cl.migrations
        .jobs
        .iter_mut()
        .find(|j| {
            !j.export && j.state == State::Importing && j.name.as_bytes() == name && j.conn == Some(conn)
        })
        .ok_or_else(|| StartError::UnknownJob(String::from_utf8_lossy(name).into_owned()))
}

/// `SYNCSLOTS FINISH`: the target now owns the slots.
pub fn finish_import(cl: &mut ClusterState, name: &[u8], conn: (usize, u64)) -> Result<(), StartError> {
    let myid = cl.myid.clone();
    let job = import_job(cl, name, conn)?;
    job.end(State::Success, "slots taken over");
    let slots = job.slots.clone();
    for (a, b) in slots.ranges() {
        for slot in a..=b {
            cl.overrides.insert(slot, myid.clone());
        }
    }
    cl.rebuild();
    cl.save_or_warn();
    Ok(())
}

/// `SYNCSLOTS ABORT`: discard the partial import.
pub fn abort_import(cl: &mut ClusterState, name: &[u8], conn: (usize, u64)) -> Result<(), StartError> {
    let job = import_job(cl, name, conn)?;
    job.end(State::Cancelled, "aborted by the source");
    let slots = job.slots.clone();
    cl.migrations.cleanup.push((slots, Walk::default()));
    Ok(())
}
