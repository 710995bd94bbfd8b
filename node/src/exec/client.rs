//! Executor-side client state. The I/O half (`ConnIo`) lives in `io` while it is home and is
//! `None` while an I/O thread holds it; the executor never touches a client's socket or
//! buffers while they are away.

use std::time::Instant;

use bytes::Bytes;

use crate::net::ConnIo;

/// CLIENT REPLY modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyMode {
    On,
    Off,
    /// Skip the reply of the next command (set by CLIENT REPLY SKIP, applied after it).
    SkipNext,
    /// Skipping the current command's reply.
    Skip,
}

/// What the executor knows about a client besides its I/O.
#[derive(Debug, Clone)]
pub struct ClientState {
    pub id: u64,
    pub db: usize,
    pub name: Option<Bytes>,
    pub lib_name: Option<Bytes>,
    pub lib_ver: Option<Bytes>,
    pub resp3: bool,
    /// Valkey's `c->authenticated`: set when the connection opened while the default user
    /// needed no password, or by a successful AUTH/HELLO. A client that is not authenticated
    /// may still run commands if the default user became `nopass` since (`Acl::auth_required`).
    pub authenticated: bool,
    /// The ACL user the client runs as (`acl::UserId`; `default` until AUTH).
    pub user: crate::acl::UserId,
    /// That user's name (CLIENT LIST `user=`, ACL WHOAMI); user names never change.
    pub user_name: Bytes,
    pub created: Instant,
    pub last_interaction: Instant,
    /// Last command run, as CLIENT LIST's `cmd=` shows it (`client|list`).
    pub last_cmd: String,
    pub reply_mode: ReplyMode,
    pub no_evict: bool,
    pub no_touch: bool,
    /// Flush pending replies, then close (QUIT, protocol errors).
    pub close_after_reply: bool,
    /// Close as soon as the I/O half is home (CLIENT KILL, EOF, limits).
    pub close_asap: bool,
    pub addr: String,
    pub laddr: String,
    pub fd: i32,
    pub tot_cmds: u64,
    /// Cluster: ASKING was sent (cleared after the next command).
    pub asking: bool,
    /// Cluster: READONLY (replicas serve reads for their primary's slots).
    pub readonly: bool,
    /// Cluster: the last request was deferred (its slot's migration is handing over); the
    /// executor keeps it and retries when the hand-off ends.
    pub deferred: bool,
    /// Pub/sub subscriptions; `Some` exactly while the client is in pub/sub mode (Valkey's
    /// `CLIENT_PUBSUB`), boxed so other clients pay one pointer.
    pub subs: Option<Box<super::pubsub::Subs>>,
    /// Since when the pending output has been over the pubsub class's soft limit.
    pub obuf_soft_since: Option<Instant>,
    /// Blocked on keys (BLPOP & co, see `blocking`): no further request runs until served.
    pub blocked: bool,
    /// MULTI was called: the commands queued since (see `command/txn.rs`).
    pub multi: Option<MultiState>,
    /// WATCHed keys, in the order they were watched.
    pub watched: Vec<WatchedKey>,
    /// A watched key changed: the next EXEC fails (Valkey's `CLIENT_DIRTY_CAS`).
    pub dirty_cas: bool,
    /// EXEC is running this client's queued commands: blocking commands must answer at once
    /// instead of blocking (Valkey's `CLIENT_DENY_BLOCKING`).
    pub deny_blocking: bool,
    /// This is the connection to our primary (Valkey's `CLIENT_MASTER`): its commands apply
    /// the replication stream, bypass the replica's checks, and get no replies.
    pub master: bool,
    /// This client is one of our replicas (it sent PSYNC or SYNC; Valkey's `CLIENT_SLAVE`).
    pub replica: bool,
    /// In MONITOR mode (CLIENT LIST flag `O`).
    pub monitor: bool,
    /// CLIENT CAPA redirect: a standalone replica answers `-REDIRECT primary` (see `gate`).
    pub capa_redirect: bool,
    /// CLIENT TRACKING settings, `Some` exactly while tracking is on (see `tracking`), boxed
    /// so other clients pay one pointer.
    pub tracking: Option<Box<super::tracking::ClientTracking>>,
}

/// A transaction being queued.
#[derive(Debug, Clone, Default)]
pub struct MultiState {
    /// Queued requests, arguments as received.
    pub commands: Vec<Vec<Bytes>>,
    /// A command was rejected while queueing: EXEC answers EXECABORT (`CLIENT_DIRTY_EXEC`).
    pub dirty: bool,
    /// Bytes of queued arguments (CLIENT LIST `multi-mem`).
    pub mem: usize,
    /// A queued command may use more memory (`denyoom`): over `maxmemory`, EXEC is refused
    /// (Valkey's `mstate.cmd_flags & CMD_DENYOOM`).
    pub denyoom: bool,
}

/// One WATCHed key.
#[derive(Debug, Clone)]
pub struct WatchedKey {
    pub db: usize,
    pub key: Box<[u8]>,
    /// The key had already expired when it was watched: its deletion is no change.
    pub expired: bool,
}

impl ClientState {
    pub fn new(id: u64, addr: String, laddr: String, fd: i32, authenticated: bool) -> Self {
        let now = Instant::now();
        ClientState {
            id,
            db: 0,
            name: None,
            lib_name: None,
            lib_ver: None,
            resp3: false,
            authenticated,
            user: crate::acl::DEFAULT_USER,
            user_name: Bytes::from_static(b"default"),
            created: now,
            last_interaction: now,
            last_cmd: "NULL".into(),
            reply_mode: ReplyMode::On,
            no_evict: false,
            no_touch: false,
            close_after_reply: false,
            close_asap: false,
            addr,
            laddr,
            fd,
            tot_cmds: 0,
            asking: false,
            readonly: false,
            deferred: false,
            subs: None,
            obuf_soft_since: None,
            blocked: false,
            multi: None,
            watched: Vec::new(),
            dirty_cas: false,
            deny_blocking: false,
            master: false,
            replica: false,
            monitor: false,
            capa_redirect: false,
            tracking: None,
        }
    }
}

impl ClientState {
    /// Runs the client as another user.
    pub fn set_user(&mut self, id: crate::acl::UserId, name: &[u8]) {
        self.user = id;
        if self.user_name != name {
            self.user_name = Bytes::copy_from_slice(name);
        }
    }
}

/// A connected client.
pub struct Client {
    pub st: ClientState,
    /// The I/O half, when it is home.
    pub io: Option<Box<ConnIo>>,
    /// An edge said the socket is readable and we have not read to `WouldBlock` since.
    pub readable: bool,
    /// An edge said the socket is writable since the last blocked write.
    pub writable: bool,
    /// An event reported the peer's hang-up or a socket error: reads go on to `WouldBlock`
    /// or EOF instead of stopping at a short read.
    pub peer_hup: bool,
    /// Already in the executor's ready list.
    pub queued: bool,
    /// Replies produced while the I/O half was away (e.g. for other clients' commands).
    pub pending_out: Vec<Bytes>,
    /// Bytes in `pending_out` (pub/sub output limits read it on every delivery).
    pending_bytes: usize,
}

impl Client {
    pub fn new(st: ClientState, io: Box<ConnIo>) -> Self {
        Client {
            st,
            io: Some(io),
            readable: true,
            writable: true,
            peer_hup: false,
            queued: false,
            pending_out: Vec::new(),
            pending_bytes: 0,
        }
    }

    /// A client without a connection (the in-process test harness).
    pub fn detached(st: ClientState) -> Self {
        Client {
            st,
            io: None,
            readable: false,
            writable: false,
            peer_hup: false,
            queued: false,
            pending_out: Vec::new(),
            pending_bytes: 0,
        }
    }

    /// Queues reply bytes whether or not the I/O half is home.
    pub fn send(&mut self, chunk: Bytes) {
        match self.io.as_mut() {
            Some(io) => io.queue(chunk),
            None => {
                self.pending_bytes += chunk.len();
                self.pending_out.push(chunk);
            }
        }
    }

    /// Moves output queued while the I/O half was away into it, once it is home.
    pub fn flush_pending(&mut self) {
        if let Some(io) = self.io.as_mut() {
            for chunk in self.pending_out.drain(..) {
                io.queue(chunk);
            }
            self.pending_bytes = 0;
        }
    }

    /// Reply bytes not yet written, as far as the executor can see: those queued while the
    /// I/O half is away, plus its own queue when it is home.
    pub fn pending_out_bytes(&self) -> usize {
        self.pending_bytes + self.io.as_ref().map_or(0, |io| io.pending_out())
    }

    /// Drops output that will never be sent (the client is being closed).
    pub fn discard_pending(&mut self) {
        self.pending_out.clear();
        self.pending_bytes = 0;
    }
}
