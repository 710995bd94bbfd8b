//! Shared pieces of the local-mode end-to-end tests: per-test directories, a fast-ticking
//! configuration, a bounded tick loop, and a cluster writer that speaks raw RESP so it can
//! tell exactly which redirections the cluster sends while it resizes.

#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use shoal_operator::controlplane::model::Topology;
use shoal_operator::controlplane::planner::PlanOptions;
use shoal_operator::local::{LocalCluster, LocalConfig};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

static DIRS: AtomicUsize = AtomicUsize::new(0);

pub fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "shoal-op-{tag}-{}-{}",
        std::process::id(),
        DIRS.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&d);
    d
}

pub fn config(tag: &str, shards: u32) -> LocalConfig {
    LocalConfig {
        shards,
        dir: temp_dir(tag),
        node_bin: Some(shoal_e2e::process::shoal_node_bin()),
        migration: PlanOptions { max_slots_per_move: 4096 },
        interval_ms: 100,
        ..LocalConfig::default()
    }
}

/// Ticks the control loop until `done` holds, at most `limit`.
pub async fn tick_until(
    c: &mut LocalCluster,
    limit: Duration,
    what: &str,
    done: impl Fn(&LocalCluster) -> bool,
) {
    let deadline = Instant::now() + limit;
    loop {
        c.tick().await.expect("tick");
        if done(c) {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}; status: {}", c.status_line());
        // The control loop's own pace (as `shoal-operator local` ticks), not a synchronisation.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn owning(c: &LocalCluster) -> u32 {
    c.shards_owning_slots()
}

/// What a [`RawWriter`] saw.
#[derive(Debug, Default)]
pub struct WriterReport {
    pub writes: usize,
    pub moved: usize,
    /// Every reply that was neither `+OK` nor `-MOVED` (ASK included: the cluster hands slots
    /// over atomically, so a client must never be asked to follow one).
    pub unexpected: Vec<String>,
    /// The last value written to each key.
    pub last: HashMap<String, usize>,
}

/// A single-connection-per-node writer that follows `-MOVED` itself, as a cluster client
/// does, and records every other non-OK reply.
pub struct RawWriter {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<WriterReport>,
}

impl RawWriter {
    /// Writes `prefix{n % keys}` = n in a loop, starting at `port`.
    pub fn start(port: u16, prefix: &str, keys: usize) -> RawWriter {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let prefix = prefix.to_string();
        let task = tokio::spawn(async move {
            let mut rep = WriterReport::default();
            let mut conns: HashMap<String, BufReader<TcpStream>> = HashMap::new();
            let mut at = format!("127.0.0.1:{port}");
            let mut n = 0usize;
            while !flag.load(Ordering::Relaxed) {
                let key = format!("{prefix}{}", n % keys);
                let val = n.to_string();
                let cmd =
                    format!("*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n${}\r\n{val}\r\n", key.len(), val.len());
                // Follow at most a few redirections for one write.
                let mut hops = 0;
                loop {
                    if !conns.contains_key(&at) {
                        let s = TcpStream::connect(&at).await.expect("connect to a node");
                        conns.insert(at.clone(), BufReader::new(s));
                    }
                    let conn = conns.get_mut(&at).expect("connection");
                    conn.get_mut().write_all(cmd.as_bytes()).await.expect("write");
                    let mut line = String::new();
                    let read = tokio::time::timeout(Duration::from_secs(20), conn.read_line(&mut line))
                        .await
                        .expect("a reply within 20 s")
                        .expect("read");
                    assert!(read > 0, "node {at} closed the connection");
                    let line = line.trim_end().to_string();
                    if line == "+OK" {
                        rep.writes += 1;
                        rep.last.insert(key.clone(), n);
                        break;
                    }
                    if let Some(rest) = line.strip_prefix("-MOVED ") {
                        rep.moved += 1;
                        hops += 1;
                        assert!(hops < 5, "redirection loop on {key}: {line}");
                        at = rest.split(' ').nth(1).expect("MOVED address").to_string();
                        continue;
                    }
                    rep.unexpected.push(format!("{key}: {line}"));
                    break;
                }
                n += 1;
            }
            rep
        });
        RawWriter { stop, task }
    }

    pub async fn finish(self) -> WriterReport {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.expect("writer task")
    }
}

/// What a [`ResilientWriter`] saw.
#[derive(Debug, Default)]
pub struct ResilientReport {
    /// Acknowledged writes.
    pub acked: usize,
    pub moved: usize,
    /// Connections lost or refused (the client reconnected, to another seed if needed).
    pub reconnects: usize,
    /// `-CLUSTERDOWN` / `-TRYAGAIN` / `-LOADING` / `-MASTERDOWN` replies (retried).
    pub down: usize,
    /// Any other reply, or a write given up after its bound.
    pub unexpected: Vec<String>,
    /// The last acknowledged value of each key and when it was acknowledged.
    pub last: HashMap<String, (usize, Instant)>,
    /// The longest time one write took from its first attempt to its acknowledgement: the
    /// unavailability a client retrying at once would have seen.
    pub max_write_wait: Duration,
    /// With `WAIT`: the last value of each key whose `WAIT 1` answered at least 1 (it had
    /// reached a replica).
    pub durable: HashMap<String, usize>,
    /// Every write's wait (first attempt to acknowledgement), in order.
    pub waits: Vec<Duration>,
}

/// A cluster writer that survives killed nodes as a cluster client does: it follows `-MOVED`,
/// reconnects (rotating through the seeds) after a lost connection, retries `CLUSTERDOWN` and
/// `TRYAGAIN` after a short pause, and records every acknowledged write.
pub struct ResilientWriter {
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicUsize>,
    /// The last acknowledged write to each slot: when it was first sent, when acknowledged.
    slot_acks: Arc<Mutex<HashMap<u16, (Instant, Instant)>>>,
    task: tokio::task::JoinHandle<ResilientReport>,
}

/// One RESP line from `conn` within `limit`, or why not.
async fn reply_line(conn: &mut BufReader<TcpStream>, limit: Duration) -> Result<String, String> {
    let mut line = String::new();
    match tokio::time::timeout(limit, conn.read_line(&mut line)).await {
        Err(_) => Err("timeout".into()),
        Ok(Err(e)) => Err(e.to_string()),
        Ok(Ok(0)) => Err("closed".into()),
        Ok(Ok(_)) => Ok(line.trim_end().to_string()),
    }
}

impl ResilientWriter {
    /// Writes `prefix{n % keys}` = n in a loop through the nodes at `seeds`.
    pub fn start(seeds: Vec<u16>, prefix: &str, keys: usize) -> ResilientWriter {
        Self::start_with(seeds, prefix, keys, None)
    }

    /// As [`ResilientWriter::start`]; with `wait_ms`, each acknowledged write is followed by
    /// `WAIT 1 wait_ms` on the same connection, and writes it confirms are recorded as durable.
    pub fn start_with(seeds: Vec<u16>, prefix: &str, keys: usize, wait_ms: Option<u64>) -> ResilientWriter {
        const WRITE_BOUND: Duration = Duration::from_secs(30);
        const RETRY_PAUSE: Duration = Duration::from_millis(20);
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let acked = Arc::new(AtomicUsize::new(0));
        let count = acked.clone();
        let slot_acks: Arc<Mutex<HashMap<u16, (Instant, Instant)>>> = Arc::default();
        let by_slot = slot_acks.clone();
        let prefix = prefix.to_string();
        let task = tokio::spawn(async move {
            let mut rep = ResilientReport::default();
            let mut conns: HashMap<String, BufReader<TcpStream>> = HashMap::new();
            let mut seed = 0usize;
            let mut at = format!("127.0.0.1:{}", seeds[0]);
            let mut n = 0usize;
            while !flag.load(Ordering::Relaxed) {
                let key = format!("{prefix}{}", n % keys);
                let val = n.to_string();
                let cmd =
                    format!("*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n${}\r\n{val}\r\n", key.len(), val.len());
                let began = Instant::now();
                loop {
                    if began.elapsed() > WRITE_BOUND {
                        rep.unexpected.push(format!("{key}: not acknowledged within {WRITE_BOUND:?}"));
                        break;
                    }
                    if !conns.contains_key(&at) {
                        match TcpStream::connect(&at).await {
                            Ok(s) => {
                                conns.insert(at.clone(), BufReader::new(s));
                            }
                            Err(_) => {
                                rep.reconnects += 1;
                                seed = (seed + 1) % seeds.len();
                                at = format!("127.0.0.1:{}", seeds[seed]);
                                tokio::time::sleep(RETRY_PAUSE).await;
                                continue;
                            }
                        }
                    }
                    let conn = conns.get_mut(&at).expect("connection");
                    let sent = conn.get_mut().write_all(cmd.as_bytes()).await;
                    let line = match sent {
                        Ok(()) => reply_line(conn, Duration::from_secs(10)).await,
                        Err(e) => Err(e.to_string()),
                    };
                    let line = match line {
                        Ok(l) => l,
                        Err(_) => {
                            conns.remove(&at);
                            rep.reconnects += 1;
                            seed = (seed + 1) % seeds.len();
                            at = format!("127.0.0.1:{}", seeds[seed]);
                            tokio::time::sleep(RETRY_PAUSE).await;
                            continue;
                        }
                    };
                    if line == "+OK" {
                        rep.acked += 1;
                        count.fetch_add(1, Ordering::Relaxed);
                        by_slot
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .insert(shoal_e2e::cluster::key_slot(key.as_bytes()), (began, Instant::now()));
                        rep.last.insert(key.clone(), (n, Instant::now()));
                        rep.max_write_wait = rep.max_write_wait.max(began.elapsed());
                        rep.waits.push(began.elapsed());
                        if let Some(ms) = wait_ms {
                            let ms = ms.to_string();
                            let wait = format!("*3\r\n$4\r\nWAIT\r\n$1\r\n1\r\n${}\r\n{ms}\r\n", ms.len());
                            if conn.get_mut().write_all(wait.as_bytes()).await.is_ok() {
                                match reply_line(conn, Duration::from_secs(10)).await {
                                    Ok(l)
                                        if l.strip_prefix(':')
                                            .and_then(|v| v.parse::<u64>().ok())
                                            .is_some_and(|v| v >= 1) =>
                                    {
                                        rep.durable.insert(key.clone(), n);
                                    }
                                    Ok(_) => {}
                                    Err(_) => {
                                        conns.remove(&at);
                                    }
                                }
                            }
                        }
                        break;
                    }
                    if let Some(rest) = line.strip_prefix("-MOVED ") {
                        rep.moved += 1;
                        at = rest.split(' ').nth(1).expect("MOVED address").to_string();
                        continue;
                    }
                    if ["-CLUSTERDOWN", "-TRYAGAIN", "-LOADING", "-MASTERDOWN"]
                        .iter()
                        .any(|p| line.starts_with(p))
                    {
                        rep.down += 1;
                        tokio::time::sleep(RETRY_PAUSE).await;
                        continue;
                    }
                    rep.unexpected.push(format!("{key}: {line}"));
                    break;
                }
                n += 1;
            }
            rep
        });
        ResilientWriter { stop, acked, slot_acks, task }
    }

    /// When a write to one of `slots` first sent after `t` was acknowledged, if one was. Only
    /// the last write of each slot is kept, so poll soon after it happens (a slot is written
    /// again only after the writer has gone through all its keys).
    pub fn acked_in_since(&self, slots: &HashSet<u16>, t: Instant) -> Option<Instant> {
        let m = self.slot_acks.lock().unwrap_or_else(|p| p.into_inner());
        m.iter().filter(|(s, (sent, _))| slots.contains(s) && *sent > t).map(|(_, (_, at))| *at).min()
    }

    /// Writes acknowledged so far.
    pub fn acked(&self) -> usize {
        self.acked.load(Ordering::Relaxed)
    }

    pub async fn finish(self) -> ResilientReport {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.expect("writer task")
    }
}

/// `GET key` through the cluster (following `-MOVED` from `seed`): the value, `None` if absent.
pub async fn cluster_get(seed: u16, key: &str) -> Option<String> {
    let mut at = format!("127.0.0.1:{seed}");
    for _ in 0..5 {
        let mut conn = BufReader::new(TcpStream::connect(&at).await.expect("connect"));
        let cmd = format!("*2\r\n$3\r\nGET\r\n${}\r\n{key}\r\n", key.len());
        conn.get_mut().write_all(cmd.as_bytes()).await.expect("write");
        let line = reply_line(&mut conn, Duration::from_secs(10)).await.expect("reply");
        if line == "$-1" {
            return None;
        }
        if line.starts_with('$') {
            return Some(reply_line(&mut conn, Duration::from_secs(10)).await.expect("value"));
        }
        match line.strip_prefix("-MOVED ") {
            Some(rest) => at = rest.split(' ').nth(1).expect("address").to_string(),
            None => panic!("GET {key}: {line}"),
        }
    }
    panic!("GET {key}: redirection loop");
}

/// The client ports of every node (seeds for a writer).
pub fn ports(c: &LocalCluster) -> Vec<u16> {
    c.sup.nodes().map(|p| p.addr.port).collect()
}

pub fn topology(c: &LocalCluster) -> Topology {
    c.last.as_ref().and_then(|r| r.observed.topology.clone()).expect("topology")
}

/// Converged, every replica in the topology and in sync (link up, caught up).
pub fn ready(c: &LocalCluster, shards: u32) -> bool {
    c.converged()
        && owning(c) == shards
        && c.last.as_ref().is_some_and(|r| {
            let lags = r.replica_lags();
            lags.len() == shards as usize && lags.iter().all(|l| l.link_up && !l.sync_in_progress)
        })
}

/// Keys whose final value is not the last acknowledged one.
pub async fn lost_keys(seed: u16, rep: &ResilientReport) -> Vec<String> {
    let mut lost = Vec::new();
    for (key, (val, _)) in &rep.last {
        if cluster_get(seed, key).await != Some(val.to_string()) {
            lost.push(key.clone());
        }
    }
    lost
}

pub fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v.get(((v.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or_default()
}
