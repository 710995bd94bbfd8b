//! Cluster-wide PUBLISH. In Valkey a PUBLISH reaches the subscribers of every node, carried by
//! the cluster bus, and cluster clients rely on it: they subscribe on one node and publish on
//! whichever node a key or a random pick sends them to. Shoal's nodes have no bus (the control
//! plane pushes the topology), so a node forwards each PUBLISH to every other node of the
//! pushed topology, and each SPUBLISH to the other nodes of its own shard (Valkey's sharded
//! channels stay within the shard), as
//!
//! ```text
//! CLUSTER PUBLISHLOCAL <channel> <message>          (or PUBLISHLOCAL SHARD <channel> <message>)
//! ```
//!
//! which delivers to that node's subscribers only, so nothing loops. One thread owns the
//! connections to the peers: the executor hands it messages through a bounded channel and
//! never waits on a peer. The links are ordinary client connections with `CLIENT REPLY OFF`,
//! opened at the first message, reopened after an error (at most once a second per peer), and
//! written with a timeout; messages for a peer that cannot take them are dropped and counted
//! (INFO stats `cluster_publish_forwarded`, `cluster_publish_dropped`), as Valkey drops bus
//! messages to a node whose link is down.
//!
//! The same links carry `CLUSTER SLOTSMOVED` from the source of a finished slot migration to
//! every other node ([`announce_handoffs`]), the part of Valkey's bus traffic that tells nodes
//! outside a migration who owns the slot now.

use crate::net::dial::{self, Dialed};
use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

/// Messages the executor may queue ahead of the bus thread. Counted, not preallocated: a
/// bounded std channel of this size would reserve ~5.8 MB (65,536 slots of a `Msg`) on every
/// node the moment the bus starts, whether or not anything is ever queued.
const QUEUE: usize = 65_536;
/// How long a connect or a write to a peer may take.
const IO_TIMEOUT: Duration = Duration::from_secs(1);
/// Least time between two connection attempts to one peer.
const RETRY: Duration = Duration::from_secs(1);

/// A peer: node id and address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    pub id: String,
    pub addr: String,
    /// In this node's shard (receives SPUBLISH too).
    pub same_shard: bool,
}

enum Msg {
    Peers(Vec<Peer>),
    Publish {
        channel: Bytes,
        message: Bytes,
        shard: bool,
    },
    /// A command for every peer (not counted in the PUBLISH stats).
    Command(Vec<Bytes>),
}

/// Counters the executor reports.
#[derive(Default)]
pub struct BusStats {
    /// Messages written to a peer (one per peer).
    pub forwarded: AtomicU64,
    /// Messages not delivered to a peer: its link down, slow, or the queue full.
    pub dropped: AtomicU64,
}

/// How links authenticate: `AUTH user pass` with a user (`masteruser`), else `AUTH pass`.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub user: Option<String>,
    pub pass: String,
}

/// The executor's handle on the bus thread.
pub struct Bus {
    tx: Sender<Msg>,
    /// Messages sent and not yet taken by the thread (bounded by [`QUEUE`]).
    queued: Arc<AtomicUsize>,
    pub stats: Arc<BusStats>,
    /// The topology epoch the thread's peer list comes from.
    epoch: Option<u64>,
}

impl Bus {
    /// Starts the thread; `auth` is what peers expect (`masteruser` + `masterauth`, or a
    /// password alone: `masterauth` / `requirepass`).
    pub fn start(auth: Option<Credentials>) -> std::io::Result<Bus> {
        let (tx, rx) = std::sync::mpsc::channel();
        let stats = Arc::new(BusStats::default());
        let queued = Arc::new(AtomicUsize::new(0));
        let (s, q) = (stats.clone(), queued.clone());
        std::thread::Builder::new().name("cluster-bus".into()).spawn(move || run(rx, s, q, auth))?;
        Ok(Bus { tx, queued, stats, epoch: None })
    }

    /// Whether the peer list needs refreshing for topology `epoch`.
    pub fn stale(&self, epoch: u64) -> bool {
        self.epoch != Some(epoch)
    }

    pub fn set_peers(&mut self, epoch: u64, peers: Vec<Peer>) {
        self.epoch = Some(epoch);
        // The peer list must not be lost: queued whatever the count.
        self.queued.fetch_add(1, Relaxed);
        let _ = self.tx.send(Msg::Peers(peers));
    }

    /// Queues `msg` unless [`QUEUE`] messages already wait; false when it was not queued.
    fn try_send(&self, msg: Msg) -> bool {
        if self.queued.fetch_add(1, Relaxed) >= QUEUE {
            self.queued.fetch_sub(1, Relaxed);
            return false;
        }
        if self.tx.send(msg).is_err() {
            self.queued.fetch_sub(1, Relaxed);
            return false;
        }
        true
    }

    /// Queues a command for every peer; never blocks (lost if the queue is full, as a bus
    /// message to a node that cannot take it).
    pub fn broadcast(&self, args: Vec<Bytes>) {
        let _ = self.try_send(Msg::Command(args));
    }

    /// Queues one message for the peers; never blocks.
    pub fn publish(&self, channel: &Bytes, message: &Bytes, shard: bool) {
        let msg = Msg::Publish { channel: channel.clone(), message: message.clone(), shard };
        if !self.try_send(msg) {
            self.stats.dropped.fetch_add(1, Relaxed);
        }
    }
}

/// One peer's link.
struct Link {
    peer: Peer,
    stream: Option<Dialed>,
    last_attempt: Option<Instant>,
}

fn run(rx: Receiver<Msg>, stats: Arc<BusStats>, queued: Arc<AtomicUsize>, auth: Option<Credentials>) {
    let mut links: HashMap<String, Link> = HashMap::new();
    loop {
        let first = match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(m) => m,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        // Take what is queued, so the writes go out in batches.
        let mut batch = vec![first];
        while batch.len() < 1024 {
            match rx.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        queued.fetch_sub(batch.len(), Relaxed);
        let mut out: HashMap<String, (Vec<u8>, u64)> = HashMap::new();
        for msg in batch {
            match msg {
                Msg::Peers(peers) => {
                    flush(&mut links, &mut out, &stats, auth.as_ref());
                    links.retain(|id, _| peers.iter().any(|p| &p.id == id));
                    for p in peers {
                        match links.get_mut(&p.id) {
                            Some(l) if l.peer.addr == p.addr => l.peer = p,
                            _ => {
                                links
                                    .insert(p.id.clone(), Link { peer: p, stream: None, last_attempt: None });
                            }
                        }
                    }
                }
                Msg::Publish { channel, message, shard } => {
                    for l in links.values().filter(|l| !shard || l.peer.same_shard) {
                        let (buf, n) = out.entry(l.peer.id.clone()).or_default();
                        let mut args: Vec<&[u8]> = vec![b"CLUSTER", b"PUBLISHLOCAL"];
                        if shard {
                            args.push(b"SHARD");
                        }
                        args.push(&channel);
                        args.push(&message);
                        encode(buf, &args);
                        *n += 1;
                    }
                }
                Msg::Command(args) => {
                    let args: Vec<&[u8]> = args.iter().map(|a| &a[..]).collect();
                    for l in links.values() {
                        encode(&mut out.entry(l.peer.id.clone()).or_default().0, &args);
                    }
                }
            }
        }
        flush(&mut links, &mut out, &stats, auth.as_ref());
    }
}

/// Writes every peer's pending commands; a peer that fails loses them (counted).
fn flush(
    links: &mut HashMap<String, Link>,
    out: &mut HashMap<String, (Vec<u8>, u64)>,
    stats: &BusStats,
    auth: Option<&Credentials>,
) {
    for (id, (buf, n)) in out.drain() {
        let Some(link) = links.get_mut(&id) else { continue };
        if link.stream.is_none() {
            let due = link.last_attempt.is_none_or(|t| t.elapsed() >= RETRY);
            if due {
                link.last_attempt = Some(Instant::now());
                link.stream = connect(&link.peer.addr, auth);
            }
        }
        let written = link.stream.as_mut().is_some_and(|s| s.write_all(&buf).is_ok());
        if written {
            stats.forwarded.fetch_add(n, Relaxed);
        } else {
            if link.stream.take().is_some() {
                log::warn!("Cluster bus: lost the link to {} ({})", link.peer.id, link.peer.addr);
            }
            stats.dropped.fetch_add(n, Relaxed);
        }
    }
}

fn connect(addr: &str, auth: Option<&Credentials>) -> Option<Dialed> {
    let mut s = dial::connect_addr(addr, IO_TIMEOUT, dial::Link::Cluster).ok()?;
    s.set_write_timeout(Some(IO_TIMEOUT)).ok()?;
    let _ = s.set_nodelay(true);
    let mut hello = Vec::new();
    match auth {
        Some(Credentials { user: Some(user), pass }) => {
            encode(&mut hello, &[b"AUTH", user.as_bytes(), pass.as_bytes()])
        }
        Some(Credentials { user: None, pass }) if !pass.is_empty() => {
            encode(&mut hello, &[b"AUTH", pass.as_bytes()])
        }
        _ => {}
    }
    encode(&mut hello, &[b"CLIENT", b"SETNAME", b"cluster-bus"]);
    encode(&mut hello, &[b"CLIENT", b"REPLY", b"OFF"]);
    s.write_all(&hello).ok()?;
    Some(s)
}

fn encode(out: &mut Vec<u8>, args: &[&[u8]]) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// The peers a topology gives this node: every other node, with whether it shares my shard.
pub fn peers(topology: &super::topology::Topology, myid: &str) -> Vec<Peer> {
    let mine = topology.shards.iter().position(|s| s.nodes.iter().any(|n| n.id == myid));
    let mut out = Vec::new();
    for (i, shard) in topology.shards.iter().enumerate() {
        for n in shard.nodes.iter().filter(|n| n.id != myid) {
            let host = if n.ip.is_empty() { n.hostname.clone().unwrap_or_default() } else { n.ip.clone() };
            let port = dial::cluster_port(n.port, n.tls_port);
            let addr = if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
            out.push(Peer { id: n.id.clone(), addr, same_shard: Some(i) == mine });
        }
    }
    out
}

/// The executor's bus, started on first use, its peer list following the topology's epoch.
pub fn ensure(srv: &mut crate::exec::Server) -> Option<&mut Bus> {
    let cl = srv.cluster.as_ref()?;
    let topology = cl.topology.as_ref()?;
    if srv.bus.is_none() {
        let user = srv.config.get("masteruser").filter(|u| !u.is_empty()).map(str::to_string);
        let auth = match user {
            // A node-to-node user: AUTH masteruser masterauth, as the replica link.
            Some(user) => Some(Credentials {
                user: Some(user),
                pass: srv.config.get("masterauth").unwrap_or("").to_string(),
            }),
            None => [srv.config.get("masterauth"), srv.config.get("requirepass")]
                .into_iter()
                .flatten()
                .find(|p| !p.is_empty())
                .map(|p| Credentials { user: None, pass: p.to_string() }),
        };
        match Bus::start(auth) {
            Ok(b) => srv.bus = Some(b),
            Err(e) => {
                log::warn!("Cannot start the cluster bus thread: {e}");
                return None;
            }
        }
    }
    let bus = srv.bus.as_mut()?;
    if bus.stale(topology.epoch) {
        bus.set_peers(topology.epoch, peers(topology, &cl.myid));
    }
    Some(bus)
}

/// Tells every other node about the slots this node's exports just handed over, as
/// `CLUSTER SLOTSMOVED <target-id> <start> <end> ...`. Valkey's nodes learn a new owner from
/// the cluster bus within moments; without this, a node outside the migration would describe
/// the old owner until the control plane's next push, and a client refreshing its slot map
/// from it right after the hand-off (ioredis does, on the `sunsubscribe` of a moved shard
/// channel) would keep its subscriptions on the old owner.
pub fn announce_handoffs(srv: &mut crate::exec::Server) {
    let Some(cl) = srv.cluster.as_mut() else { return };
    if cl.migrations.announce.is_empty() {
        return;
    }
    let done = std::mem::take(&mut cl.migrations.announce);
    let Some(bus) = ensure(srv) else { return };
    for (slots, target) in done {
        let mut args =
            vec![Bytes::from_static(b"CLUSTER"), Bytes::from_static(b"SLOTSMOVED"), Bytes::from(target)];
        for (a, b) in slots.ranges() {
            args.push(Bytes::from(a.to_string()));
            args.push(Bytes::from(b.to_string()));
        }
        bus.broadcast(args);
    }
}
