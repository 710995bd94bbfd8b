//! The primary side of Valkey's replication protocol, on the executor thread.
//!
//! A replica connects as a client and says `REPLCONF listening-port/capa`, then `PSYNC
//! <replid> <offset>`. When the backlog still holds that offset the primary answers
//! `+CONTINUE` and sends the missing bytes; otherwise `+FULLRESYNC <replid> <offset>`, a
//! snapshot in RDB form, then the stream from that offset on.
//!
//! **The snapshot without fork.** The executor walks the keyspace a bounded step per loop in
//! SCAN order (a position in hash space that resizes do not reorder, see `keyspace/table.rs`)
//! and writes each key into an [`RdbWriter`]. The RDB must show the dataset as it was at the
//! offset announced in `+FULLRESYNC`, because the replica applies the stream from that offset
//! on top of it. So before a write command runs, each of its keys that the walk has not reached
//! yet is written *first*, with its value from before the command (or remembered as absent),
//! and the walk skips it later. Keys removed without a command (expiry, eviction, FLUSHALL)
//! need nothing: their removal is in the stream after the snapshot's offset. Commands that move
//! keys between databases (MOVE, COPY ... DB, SWAPDB) finish the walk at once first.
//!
//! **The stream** is the write commands that changed the dataset (a database's mutation count
//! moved, Valkey's `server.dirty`), as executed, with `SELECT` when the database changes, and
//! `DEL` for keys expired or evicted. Replica output is queued on the replica's client and
//! written by the normal write path (an I/O thread when one runs).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use bytes::Bytes;
use slab::Slab;

pub use super::propagate::{exec_begin, exec_end, propagate};

use super::backlog::Backlog;
use super::rdb::writer::{RdbOptions, RdbWriter, ReplInfo};
use crate::command::keys_of::command_keys;
use crate::command::meta::CommandMeta;
use crate::exec::{Client, Server};
use crate::protocol::Reply;

/// Keys a loop iteration may write into a snapshot.
const SNAPSHOT_STEP: usize = 1024;
/// A replica's unsent output above which the snapshot waits for it to drain.
const SNAPSHOT_OUTPUT_HIGH: usize = 8 << 20;
/// Bytes of snapshot taken out of the writer per chunk.
const CHUNK: usize = 256 << 10;

/// Where a replica stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// Receiving the snapshot; the stream is held back until it ends.
    Syncing,
    /// The snapshot went out with `$EOF:` framing: the stream waits for the replica's first
    /// `REPLCONF ACK`, as Valkey's `repl_start_cmd_stream_on_ack` (a replica detects the end
    /// mark only as the last bytes of a read, so stream bytes right behind it would hide it).
    WaitAck,
    Online,
}

/// A connected replica (a client that sent PSYNC or SYNC).
#[derive(Debug)]
pub struct ReplicaLink {
    pub idx: usize,
    pub client_id: u64,
    pub state: LinkState,
    /// The offset acknowledged with `REPLCONF ACK`.
    pub ack: u64,
    pub ack_at: Instant,
    pub listening_port: u16,
    pub addr: String,
    /// Stream bytes held while the snapshot is being sent, and their total.
    held: Vec<Bytes>,
    pub held_bytes: usize,
    /// Since when its unsent output has been over the replica class's soft limit.
    pub obuf_soft_since: Option<Instant>,
}

/// A snapshot being written for the replicas in `targets`.
struct Snapshot {
    writer: RdbWriter,
    /// Database being walked and the SCAN cursor in it (0 at its start).
    db: usize,
    cursor: u64,
    /// The database the writer's last SELECTDB named.
    selected: Option<usize>,
    /// Keys written (or found absent) ahead of the walk: (db, key).
    ahead: HashSet<(usize, Box<[u8]>)>,
    /// `$EOF:<mark>` framing (the replica said `capa eof`); otherwise the whole file is kept
    /// until its length is known.
    eof_mark: Option<[u8; 40]>,
    header_sent: bool,
    target: usize,
    target_id: u64,
    walked: bool,
}

/// Replication state of this node as a primary.
pub struct Replication {
    pub replid: String,
    /// The previous replication id and the last offset it covers (PSYNC2 after a promotion).
    pub replid2: String,
    pub second_offset: i64,
    /// Offset of the last byte of the stream (INFO `master_repl_offset`).
    pub offset: u64,
    pub backlog: Option<Backlog>,
    pub replicas: Vec<ReplicaLink>,
    snapshot: Option<Snapshot>,
    /// Full syncs waiting for the running snapshot to end: (client idx, id, capa eof).
    queued: Vec<(usize, u64, bool)>,
    /// The database the stream last SELECTed.
    stream_db: Option<usize>,
    /// Stream bytes produced since replicas were last fed.
    pub(super) out: Vec<u8>,
    /// Inside EXEC: `Some(true)` once MULTI went to the stream.
    pub(super) exec_open: Option<bool>,
    /// WAIT callers: (client idx, client id, offset, replicas needed, deadline).
    waiters: Vec<(usize, u64, u64, usize, Option<Instant>)>,
    /// What replicas said in REPLCONF before PSYNC, by client id: listening port, `capa eof`.
    pub handshakes: std::collections::HashMap<u64, (u16, bool)>,
    /// `min-replicas-to-write` and `min-replicas-max-lag` as of the last cron, and the
    /// replicas online whose last ACK is within that lag (Valkey's `repl_good_slaves_count`).
    pub min_replicas: usize,
    pub min_replicas_lag: u64,
    pub good_replicas: usize,
    pub full_syncs: u64,
    pub partial_ok: u64,
    pub partial_err: u64,
    last_ping: Instant,
}

// Replication ids have the form of node ids.
use crate::cluster::persist::random_id;

impl Default for Replication {
    fn default() -> Self {
        Replication {
            replid: random_id(),
            replid2: "0".repeat(40),
            second_offset: -1,
            offset: 0,
            backlog: None,
            replicas: Vec::new(),
            snapshot: None,
            queued: Vec::new(),
            stream_db: None,
            out: Vec::new(),
            exec_open: None,
            waiters: Vec::new(),
            handshakes: Default::default(),
            min_replicas: 0,
            min_replicas_lag: 10,
            good_replicas: 0,
            full_syncs: 0,
            partial_ok: 0,
            partial_err: 0,
            last_ping: Instant::now(),
        }
    }
}

impl Replication {
    /// True once a replica has attached: from then on writes are recorded in the backlog.
    #[inline]
    pub fn active(&self) -> bool {
        self.backlog.is_some()
    }

    /// True while a snapshot walk is running (write commands then go through `before_write`).
    #[inline]
    pub fn snapshotting(&self) -> bool {
        self.snapshot.as_ref().is_some_and(|s| !s.walked)
    }

    /// Work is waiting for the next loop iteration: a snapshot being written, or stream bytes
    /// for the replicas.
    pub fn busy(&self) -> bool {
        self.snapshot.is_some() || !self.out.is_empty()
    }

    /// The replica link of client `idx`.
    pub fn link(&mut self, idx: usize, id: u64) -> Option<&mut ReplicaLink> {
        self.replicas.iter_mut().find(|r| r.idx == idx && r.client_id == id)
    }

    /// Replicas online whose acknowledged offset is at least `offset`.
    pub fn acked(&self, offset: u64) -> usize {
        self.replicas.iter().filter(|r| r.state == LinkState::Online && r.ack >= offset).count()
    }

    /// True while an EXEC's (or a script's) writes are being wrapped in MULTI/EXEC.
    pub fn in_exec(&self) -> bool {
        self.exec_open.is_some()
    }

    /// Where the stream not yet fed to replicas ends now (see [`ReplState::rewind`]).
    pub fn mark(&self) -> StreamMark {
        StreamMark { len: self.out.len(), exec_open: self.exec_open }
    }

    /// Drops what was produced since `mark`, while it has not reached the backlog (nothing feeds
    /// replicas while a command runs): the effects of a script a shutdown cut short.
    pub fn rewind(&mut self, mark: StreamMark) {
        self.out.truncate(mark.len);
        self.exec_open = mark.exec_open;
    }

    /// The offset including stream bytes not yet moved to the backlog.
    pub fn offset_now(&self) -> u64 {
        self.offset + self.out.len() as u64
    }

    /// The next command fed starts with a SELECT (a new history, or a primary's stream
    /// that this node only passed on).
    pub fn stream_db_reset(&mut self) {
        self.stream_db = None;
    }

    /// A new replication id; the old one stays valid up to the current offset (`replid2`),
    /// for replicas that followed the same history (PSYNC2).
    pub fn shift_replid(&mut self, new: String) {
        self.replid2 = std::mem::replace(&mut self.replid, new);
        self.second_offset = self.offset_now() as i64 + 1;
    }

    /// Moves stream bytes not yet sent into the backlog and the offset, sending them nowhere
    /// (the node is becoming a replica and its own replicas are being dropped).
    pub fn settle(&mut self) {
        let data = std::mem::take(&mut self.out);
        self.offset += data.len() as u64;
        if let Some(b) = self.backlog.as_mut() {
            b.append(&data);
        }
    }

    /// A replica passes its primary's commands on as they came (no SELECT of its own: the
    /// primary's are in the stream).
    pub fn feed_raw(&mut self, args: &[&[u8]]) {
        encode(&mut self.out, args);
    }

    /// As `feed`, from a request's arguments.
    pub fn feed_args(&mut self, db: usize, args: &[Bytes]) {
        if self.stream_db != Some(db) {
            let n = db.to_string();
            encode(&mut self.out, &[b"SELECT", n.as_bytes()]);
            self.stream_db = Some(db);
        }
        self.feed_raw_args(args);
    }

    /// As `feed_raw`, from a request's arguments (no temporary slice of slices).
    pub fn feed_raw_args(&mut self, args: &[Bytes]) {
        let mut n = itoa::Buffer::new();
        let out = &mut self.out;
        out.push(b'*');
        out.extend_from_slice(n.format(args.len()).as_bytes());
        out.extend_from_slice(b"\r\n");
        for a in args {
            out.push(b'$');
            out.extend_from_slice(n.format(a.len()).as_bytes());
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
    }

    /// Appends a command to the stream (RESP array), preceded by SELECT when needed.
    pub fn feed(&mut self, db: usize, args: &[&[u8]]) {
        if self.stream_db != Some(db) {
            let n = db.to_string();
            encode(&mut self.out, &[b"SELECT", n.as_bytes()]);
            self.stream_db = Some(db);
        }
        encode(&mut self.out, args);
    }
}

/// RESP array of bulk strings.
pub fn encode(out: &mut Vec<u8>, args: &[&[u8]]) {
    let mut n = itoa::Buffer::new();
    out.push(b'*');
    out.extend_from_slice(n.format(args.len()).as_bytes());
    out.extend_from_slice(b"\r\n");
    for a in args {
        out.push(b'$');
        out.extend_from_slice(n.format(a.len()).as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// Total mutations over every database (compared before and after a command).
pub fn changes(srv: &Server) -> u64 {
    srv.dbs.iter().map(|d| d.changes()).sum()
}

/// Before a write command runs during a snapshot walk: writes each of its keys the walk has
/// not reached yet with its current value (see the module docs).
pub fn before_write(srv: &mut Server, db: usize, meta: &CommandMeta, args: &[Bytes]) {
    if matches!(meta.name, "move" | "copy" | "swapdb") {
        finish_walk(srv);
        return;
    }
    let now = srv.now_ms;
    let Server { dbs, repl, .. } = srv;
    let Some(snap) = repl.snapshot.as_mut().filter(|s| !s.walked) else { return };
    for i in command_keys(meta, args) {
        let key = &args[i.pos];
        let reached =
            db < snap.db || (db == snap.db && snap.cursor != 0 && dbs[db].scan_position(key) < snap.cursor);
        if reached || snap.ahead.contains(&(db, Box::<[u8]>::from(&key[..]))) {
            continue;
        }
        if let Some(node) = dbs[db].peek_node(key).filter(|n| n.expire_at().is_none_or(|t| t >= now)) {
            if snap.selected != Some(db) {
                snap.writer.select_db(db as u32, 0, 0);
                snap.selected = Some(db);
            }
            snap.writer.write_key(key, node.value(), node.expire_at());
        }
        snap.ahead.insert((db, key[..].into()));
    }
}

/// Walks the rest of the keyspace into the snapshot now.
fn finish_walk(srv: &mut Server) {
    while srv.repl.snapshotting() {
        walk_step(srv, usize::MAX);
    }
}

/// Writes up to `budget` keys of the walk.
fn walk_step(srv: &mut Server, budget: usize) {
    let now = srv.now_ms;
    let Server { dbs, repl, .. } = srv;
    let Some(snap) = repl.snapshot.as_mut().filter(|s| !s.walked) else { return };
    let mut left = budget;
    while left > 0 && snap.db < dbs.len() {
        let db = snap.db;
        if dbs[db].is_empty() && snap.cursor == 0 {
            snap.db += 1;
            continue;
        }
        if snap.selected != Some(db) {
            let (keys, vol) = (dbs[db].len() as u64, dbs[db].volatile_len() as u64);
            snap.writer.select_db(db as u32, keys, vol);
            snap.selected = Some(db);
        }
        let (writer, ahead) = (&mut snap.writer, &snap.ahead);
        let mut seen = 0;
        // `i64::MIN`: the walk itself expires nothing (the table does not change under it);
        // keys already past their TTL are left out, their DEL comes with the stream.
        let next = dbs[db].scan(snap.cursor, left.min(SNAPSHOT_STEP), i64::MIN, |key, node| {
            seen += 1;
            let live = node.expire_at().is_none_or(|t| t >= now);
            if live && (ahead.is_empty() || !ahead.contains(&(db, Box::<[u8]>::from(key)))) {
                writer.write_key(key, node.value(), node.expire_at());
            }
        });
        left = left.saturating_sub(seen.max(1));
        if next == 0 {
            snap.db += 1;
            snap.cursor = 0;
        } else {
            snap.cursor = next;
        }
    }
    if snap.db >= dbs.len() {
        snap.walked = true;
        snap.writer.finish();
        snap.ahead = HashSet::new();
    }
}

/// PSYNC / SYNC from client `idx`: continue from the backlog, or start a full sync. The
/// answer line (and a continuation's bytes) go into `out`, the client's reply, so they reach
/// the replica after its earlier replies and before the snapshot.
pub fn psync(
    srv: &mut Server,
    clients: &mut Slab<Client>,
    idx: usize,
    replid: &[u8],
    offset: Option<i64>,
    out: &mut Reply,
) {
    let (id, addr) = match clients.get(idx) {
        Some(c) => (c.st.id, c.st.addr.clone()),
        None => return,
    };
    // Stream bytes of commands that already ran are not this replica's: they reach the
    // backlog and the other replicas first, and the offset announced below is after them.
    feed_replicas(srv, clients);
    clients[idx].st.replica = true;
    let repl = &mut srv.repl;
    let (port, capa_eof) = repl.handshakes.remove(&id).unwrap_or((0, false));
    let cap = srv.config.get_i64("repl-backlog-size").max(16 * 1024) as usize;
    if repl.backlog.is_none() {
        repl.backlog = Some(Backlog::new(cap, repl.offset + 1));
        // The first replica: every database's expiries from now on become DELs.
        for db in &mut srv.dbs {
            db.log_for_replication(true);
        }
    }
    let link = ReplicaLink {
        idx,
        client_id: id,
        state: LinkState::Syncing,
        ack: 0,
        ack_at: Instant::now(),
        listening_port: port,
        addr,
        held: Vec::new(),
        held_bytes: 0,
        obuf_soft_since: None,
    };
    repl.replicas.retain(|r| r.client_id != id);
    // Partial resync: our id (or the one before a promotion, up to where it ended) and an
    // offset the backlog still holds.
    if let Some(off) = offset.filter(|&o| o > 0).map(|o| o as u64) {
        let ours = replid == repl.replid.as_bytes()
            || (replid == repl.replid2.as_bytes() && off as i64 <= repl.second_offset);
        let data = repl.backlog.as_ref().and_then(|b| b.since(off));
        if let (true, Some(data)) = (ours, data) {
            let line = format!("+CONTINUE {}\r\n", repl.replid);
            repl.partial_ok += 1;
            repl.replicas.push(ReplicaLink { state: LinkState::Online, ack: off - 1, ..link });
            out.raw(line.as_bytes());
            out.raw(&data);
            log::info!(
                "Partial resynchronization request from {} accepted, offset {off}",
                clients[idx].st.addr
            );
            return;
        }
        if replid != b"?" {
            repl.partial_err += 1;
        }
    }
    repl.full_syncs += 1;
    repl.replicas.push(link);
    if replid != b"?" || offset.is_some() {
        out.raw(format!("+FULLRESYNC {} {}\r\n", repl.replid, repl.offset).as_bytes());
    }
    log::info!("Full resync requested by replica {}: starting a snapshot", clients[idx].st.addr);
    repl.queued.push((idx, id, capa_eof));
    start_next_snapshot(srv);
}

fn start_next_snapshot(srv: &mut Server) {
    if srv.repl.snapshot.is_some() || srv.repl.queued.is_empty() {
        return;
    }
    let (idx, id, eof) = srv.repl.queued.remove(0);
    // Hashes with field TTLs need Valkey 9's format (`VALKEY080`); without them the default
    // version keeps Redis 7.0 and Valkey 8 replicas loading the snapshot.
    let field_ttls = srv.dbs.iter().any(|d| !d.hfe_keys.is_empty());
    let opts = RdbOptions {
        version: if field_ttls { *super::rdb::VALKEY_VERSIONS.start() } else { super::rdb::DEFAULT_VERSION },
        repl: Some(ReplInfo { stream_db: 0, id: srv.repl.replid.clone(), offset: srv.repl.offset as i64 }),
        ..RdbOptions::default()
    };
    let mut writer = match RdbWriter::new(&opts) {
        Ok(w) => w,
        Err(e) => {
            log::warn!("Cannot start a snapshot: {e}");
            return;
        }
    };
    // Function libraries travel with the data, as Valkey's FUNCTION2 records.
    if let Some(sc) = srv.scripting.as_ref() {
        for lib in sc.functions.libraries.values() {
            writer.function(&lib.code);
        }
    }
    let eof_mark = eof.then(|| {
        let mut m = [0u8; 40];
        for b in &mut m {
            *b = b"0123456789abcdef"[fastrand::usize(..16)];
        }
        m
    });
    // The stream after the snapshot starts with a SELECT whatever the last one was.
    srv.repl.stream_db = None;
    srv.repl.snapshot = Some(Snapshot {
        writer,
        db: 0,
        cursor: 0,
        selected: None,
        ahead: HashSet::new(),
        eof_mark,
        header_sent: false,
        target: idx,
        target_id: id,
        walked: false,
    });
}

/// A position in the stream not yet fed to replicas.
#[derive(Clone, Copy, Debug)]
pub struct StreamMark {
    len: usize,
    exec_open: Option<bool>,
}

/// Once per executor loop: stream bytes to the backlog and replicas, snapshot steps, WAIT.
pub fn tick(srv: &mut Server, clients: &mut Slab<Client>) {
    if !srv.repl.active() {
        return;
    }
    drain_expired(srv);
    feed_replicas(srv, clients);
    super::limits::enforce(srv, clients);
    if srv.repl.snapshot.is_some() {
        snapshot_step(srv, clients);
    }
    // A replica passes its primary's PINGs on instead of sending its own.
    if srv.now.duration_since(srv.repl.last_ping) >= Duration::from_secs(10)
        && !srv.repl.replicas.is_empty()
        && srv.master.is_none()
        // Paused (a planned failover waits for the offset to stand still): no PING either.
        && srv.pause.is_none()
    {
        srv.repl.last_ping = srv.now;
        let mut ping = Vec::new();
        encode(&mut ping, &[b"PING"]);
        srv.repl.out.extend_from_slice(&ping);
        feed_replicas(srv, clients);
    }
    if !srv.repl.waiters.is_empty() {
        serve_waiters(srv, clients);
    }
}

/// From the cron: the `min-replicas-*` settings and how many replicas are good now.
pub fn refresh_good(srv: &mut Server) {
    let repl = &mut srv.repl;
    repl.min_replicas = srv.config.get_i64("min-replicas-to-write").max(0) as usize;
    repl.min_replicas_lag = srv.config.get_i64("min-replicas-max-lag").max(0) as u64;
    let now = srv.now;
    let lag = Duration::from_secs(repl.min_replicas_lag);
    repl.good_replicas = repl
        .replicas
        .iter()
        .filter(|r| r.state == LinkState::Online && now.saturating_duration_since(r.ack_at) <= lag)
        .count();
}

/// Keys the databases expired since last time become `DEL`s in the stream.
pub fn drain_expired(srv: &mut Server) {
    if srv.master.is_some() {
        // A replica passes on its primary's DELs; it expires nothing itself.
        return;
    }
    for db in 0..srv.dbs.len() {
        let keys = match srv.dbs[db].repl_log.as_mut() {
            Some(log) if !log.is_empty() => std::mem::take(log),
            _ => continue,
        };
        for k in keys {
            srv.repl.feed(db, &[b"DEL", &k]);
        }
    }
    for db in 0..srv.dbs.len() {
        if srv.dbs[db].hfe_repl_log.is_empty() {
            continue;
        }
        for (k, fields) in std::mem::take(&mut srv.dbs[db].hfe_repl_log) {
            let mut cmd: Vec<&[u8]> = vec![b"HDEL", &k];
            cmd.extend(fields.iter().map(|f| &f[..]));
            srv.repl.feed(db, &cmd);
        }
    }
}

/// Moves the stream produced so far into the backlog and to every replica.
fn feed_replicas(srv: &mut Server, clients: &mut Slab<Client>) {
    if srv.repl.out.is_empty() {
        return;
    }
    let data = Bytes::from(std::mem::take(&mut srv.repl.out));
    srv.repl.offset += data.len() as u64;
    if let Some(b) = srv.repl.backlog.as_mut() {
        b.append(&data);
    }
    let mut gone = Vec::new();
    for r in &mut srv.repl.replicas {
        match r.state {
            LinkState::Syncing | LinkState::WaitAck => {
                r.held_bytes += data.len();
                r.held.push(data.clone());
            }
            LinkState::Online => match clients.get_mut(r.idx).filter(|c| c.st.id == r.client_id) {
                Some(c) => {
                    c.send(data.clone());
                    srv.pubsub.dirty.push(r.idx);
                }
                None => gone.push(r.client_id),
            },
        }
    }
    if !gone.is_empty() {
        srv.repl.replicas.retain(|r| !gone.contains(&r.client_id));
    }
}

/// Advances the snapshot: walk a step, ship what the writer produced, and when it is done,
/// the held stream.
fn snapshot_step(srv: &mut Server, clients: &mut Slab<Client>) {
    let Some(snap) = srv.repl.snapshot.as_ref() else { return };
    let (idx, id) = (snap.target, snap.target_id);
    let Some(c) = clients.get_mut(idx).filter(|c| c.st.id == id) else {
        // The replica went away: drop its snapshot.
        srv.repl.snapshot = None;
        srv.repl.replicas.retain(|r| r.client_id != id);
        start_next_snapshot(srv);
        return;
    };
    if c.pending_out_bytes() > SNAPSHOT_OUTPUT_HIGH {
        return;
    }
    walk_step(srv, SNAPSHOT_STEP);
    let Some(snap) = srv.repl.snapshot.as_mut() else { return };
    let c = &mut clients[idx];
    if let Some(mark) = snap.eof_mark {
        if !snap.header_sent {
            // `$EOF:<mark>\r\n` once, before the first byte of the file.
            let mut head = b"$EOF:".to_vec();
            head.extend_from_slice(&mark);
            head.extend_from_slice(b"\r\n");
            c.send(Bytes::from(head));
            snap.header_sent = true;
        }
        while let Some(chunk) = snap.writer.take_chunk(CHUNK) {
            c.send(chunk);
        }
        if !snap.walked {
            srv.pubsub.dirty.push(idx);
            return;
        }
        c.send(Bytes::copy_from_slice(&mark));
    } else if snap.walked {
        let all = snap.writer.take_all();
        c.send(Bytes::from(format!("${}\r\n", all.len())));
        c.send(all);
    } else {
        return;
    }
    // Done: the replica goes online with the stream held since the snapshot's offset (after
    // its first ACK when the end was an EOF mark).
    srv.pubsub.dirty.push(idx);
    let eof = srv.repl.snapshot.take().is_some_and(|s| s.eof_mark.is_some());
    if let Some(r) = srv.repl.replicas.iter_mut().find(|r| r.client_id == id) {
        r.ack_at = Instant::now();
        if eof {
            r.state = LinkState::WaitAck;
        } else {
            r.state = LinkState::Online;
            r.held_bytes = 0;
            for chunk in r.held.drain(..) {
                clients[idx].send(chunk);
            }
        }
    }
    log::info!("Synchronization with replica {} succeeded", clients[idx].st.addr);
    start_next_snapshot(srv);
}

/// REPLCONF ACK from a replica; the first one after an EOF-framed snapshot starts its stream.
pub fn ack(srv: &mut Server, clients: &mut Slab<Client>, idx: usize, id: u64, offset: u64) {
    let now = srv.now;
    let Some(r) = srv.repl.link(idx, id) else { return };
    r.ack = r.ack.max(offset);
    r.ack_at = now;
    if r.state == LinkState::WaitAck {
        r.state = LinkState::Online;
        r.held_bytes = 0;
        for chunk in r.held.drain(..) {
            clients[idx].send(chunk);
        }
        srv.pubsub.dirty.push(idx);
    }
}

/// WAIT numreplicas timeout: answers at once when enough replicas acknowledged the stream up
/// to now, else blocks the client until they do or the timeout passes.
pub fn wait(
    srv: &mut Server,
    clients: &mut Slab<Client>,
    idx: usize,
    needed: usize,
    timeout_ms: i64,
) -> Option<i64> {
    let offset = srv.repl.offset + srv.repl.out.len() as u64;
    let have = srv.repl.acked(offset);
    if have >= needed || !srv.repl.active() {
        return Some(have as i64);
    }
    let id = clients[idx].st.id;
    let deadline = (timeout_ms > 0).then(|| srv.now + Duration::from_millis(timeout_ms as u64));
    srv.repl.waiters.push((idx, id, offset, needed, deadline));
    clients[idx].st.blocked = true;
    // Ask every replica for its offset now rather than at its next periodic ACK.
    encode(&mut srv.repl.out, &[b"REPLCONF", b"GETACK", b"*"]);
    None
}

fn serve_waiters(srv: &mut Server, clients: &mut Slab<Client>) {
    let now = Instant::now();
    let waiters = std::mem::take(&mut srv.repl.waiters);
    for w @ (idx, id, offset, needed, deadline) in waiters {
        let have = srv.repl.acked(offset);
        let Some(c) = clients.get_mut(idx).filter(|c| c.st.id == id) else { continue };
        if have >= needed || deadline.is_some_and(|d| now >= d) {
            c.st.blocked = false;
            let chunk = Bytes::from(format!(":{have}\r\n"));
            srv.stats.net_output_bytes += chunk.len() as u64;
            c.send(chunk);
            srv.blocking.woken.push(idx);
        } else {
            srv.repl.waiters.push(w);
        }
    }
}

/// The nearest WAIT deadline (the executor must not sleep past it).
pub fn next_deadline(srv: &Server) -> Option<Instant> {
    srv.repl.waiters.iter().filter_map(|w| w.4).min()
}

/// A client closed: forget it as a replica or a WAIT caller.
pub fn on_close(srv: &mut Server, idx: usize, id: u64) {
    let r = &mut srv.repl;
    if r.replicas.iter().any(|l| l.client_id == id) {
        log::info!("Connection with replica client id #{id} lost.");
        r.replicas.retain(|l| l.client_id != id);
    }
    r.waiters.retain(|w| !(w.0 == idx && w.1 == id));
    r.queued.retain(|q| q.1 != id);
    r.handshakes.remove(&id);
}
