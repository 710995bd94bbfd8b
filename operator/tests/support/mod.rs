//! Shared pieces of the local-mode end-to-end tests: per-test directories, a fast-ticking
//! configuration, a bounded tick loop, and a cluster writer that speaks raw RESP so it can
//! tell exactly which redirections the cluster sends while it resizes.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
