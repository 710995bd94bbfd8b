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

use crate::net::dial::{self, Dialed};
use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

/// Messages the executor may queue ahead of the bus thread.
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
    Publish { channel: Bytes, message: Bytes, shard: bool },
}

/// Counters the executor reports.
#[derive(Default)]
pub struct BusStats {
    /// Messages written to a peer (one per peer).
    pub forwarded: AtomicU64,
    /// Messages not delivered to a peer: its link down, slow, or the queue full.
    pub dropped: AtomicU64,
}

/// The executor's handle on the bus thread.
pub struct Bus {
    tx: SyncSender<Msg>,
    pub stats: Arc<BusStats>,
    /// The topology epoch the thread's peer list comes from.
    epoch: Option<u64>,
}

impl Bus {
    /// Starts the thread; `auth` is the password peers expect (`masterauth` / `requirepass`).
    pub fn start(auth: Option<String>) -> std::io::Result<Bus> {
        let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE);
        let stats = Arc::new(BusStats::default());
        let s = stats.clone();
        std::thread::Builder::new().name("cluster-bus".into()).spawn(move || run(rx, s, auth))?;
        Ok(Bus { tx, stats, epoch: None })
    }

    /// Whether the peer list needs refreshing for topology `epoch`.
    pub fn stale(&self, epoch: u64) -> bool {
        self.epoch != Some(epoch)
    }

    pub fn set_peers(&mut self, epoch: u64, peers: Vec<Peer>) {
        self.epoch = Some(epoch);
        // The peer list must not be lost: wait for room (the thread drains quickly).
        let _ = self.tx.send(Msg::Peers(peers));
    }

    /// Queues one message for the peers; never blocks.
    pub fn publish(&self, channel: &Bytes, message: &Bytes, shard: bool) {
        let msg = Msg::Publish { channel: channel.clone(), message: message.clone(), shard };
        match self.tx.try_send(msg) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.stats.dropped.fetch_add(1, Relaxed);
            }
        }
    }
}

/// One peer's link.
struct Link {
    peer: Peer,
    stream: Option<Dialed>,
    last_attempt: Option<Instant>,
}

fn run(rx: Receiver<Msg>, stats: Arc<BusStats>, auth: Option<String>) {
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
        let mut out: HashMap<String, (Vec<u8>, u64)> = HashMap::new();
        for msg in batch {
            match msg {
                Msg::Peers(peers) => {
                    flush(&mut links, &mut out, &stats, auth.as_deref());
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
            }
        }
        flush(&mut links, &mut out, &stats, auth.as_deref());
    }
}

/// Writes every peer's pending commands; a peer that fails loses them (counted).
fn flush(
    links: &mut HashMap<String, Link>,
    out: &mut HashMap<String, (Vec<u8>, u64)>,
    stats: &BusStats,
    auth: Option<&str>,
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

fn connect(addr: &str, auth: Option<&str>) -> Option<Dialed> {
    let mut s = dial::connect_addr(addr, IO_TIMEOUT, dial::Link::Cluster).ok()?;
    s.set_write_timeout(Some(IO_TIMEOUT)).ok()?;
    let _ = s.set_nodelay(true);
    let mut hello = Vec::new();
    if let Some(pass) = auth.filter(|p| !p.is_empty()) {
        encode(&mut hello, &[b"AUTH", pass.as_bytes()]);
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
