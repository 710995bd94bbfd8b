//! The thread that carries one slot migration to its target node, so the executor never waits
//! on another node's socket. It speaks plain RESP on an ordinary client connection:
//!
//! ```text
//! [AUTH [<masteruser>] <masterauth|requirepass>]
//! CLUSTER SYNCSLOTS START <name> <source-id> <start> <end> [<start> <end> ...]
//! CLUSTER SYNCSLOTS DATA <name> <key> <expire-ms|-1|-2> <payload> [...]   (-2: delete)
//! CLUSTER SYNCSLOTS DATADB <name> <db> <key> <expire-ms|-1|-2> <payload> [...]  (db > 0)
//! CLUSTER SYNCSLOTS FINISH <name>                                       (target takes over)
//! CLUSTER SYNCSLOTS ABORT <name>                                        (best effort)
//! ```
//!
//! The executor feeds it batches of key images through a bounded channel (in the order the
//! source applied them); the worker pipelines a few DATA commands, counts acknowledged keys,
//! and reports how the migration ended. Dropping the channel's sender cancels it.

use std::io::{BufRead, BufReader, Write};
use std::net::ToSocketAddrs;

use crate::net::dial::{self, Dialed};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::serialize::KeyImage;

/// How long a connect, a write or a reply may take before the migration fails.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// DATA commands in flight before the worker waits for a reply.
const WINDOW: usize = 8;
/// Batches the executor may queue ahead of the worker.
pub const CHANNEL_DEPTH: usize = 16;

/// What the executor sends.
pub enum ToWorker {
    Batch(Vec<KeyImage>),
    /// Everything is sent: hand the slots over.
    Finish,
}

/// Progress the worker reports.
#[derive(Default)]
pub struct Shared {
    /// Key images the target acknowledged.
    pub acked: AtomicU64,
    /// Unix ms of the last acknowledgement.
    pub last_ack_ms: AtomicI64,
    /// Set once: `Ok` when the target took the slots over.
    pub outcome: Mutex<Option<Result<(), String>>>,
}

impl Shared {
    pub fn outcome(&self) -> Option<Result<(), String>> {
        self.outcome.lock().ok().and_then(|o| o.clone())
    }
}

/// The executor's handle on a running worker.
pub struct Handle {
    pub tx: SyncSender<ToWorker>,
    pub shared: Arc<Shared>,
}

/// Where and how to reach the target.
pub struct Target {
    pub host: String,
    pub port: u16,
    /// `AUTH` on connect: a user (`masteruser`) and a password, or a password alone.
    pub auth: Option<(Option<String>, String)>,
}

/// Starts a worker for migration `name` of `ranges` from `source_id`.
pub fn spawn(
    name: String,
    source_id: String,
    ranges: Vec<(u16, u16)>,
    target: Target,
) -> std::io::Result<Handle> {
    let (tx, rx) = std::sync::mpsc::sync_channel(CHANNEL_DEPTH);
    let shared = Arc::new(Shared::default());
    let sh = shared.clone();
    std::thread::Builder::new().name("shoal-migrate".into()).spawn(move || {
        let res = run(&name, &source_id, &ranges, &target, &rx, &sh);
        if let Err(e) = &res {
            log::warn!("Slot migration {name} failed: {e}");
        }
        if let Ok(mut o) = sh.outcome.lock() {
            *o = Some(res);
        }
    })?;
    Ok(Handle { tx, shared })
}

struct Conn {
    r: BufReader<Dialed>,
    inflight: usize,
}

impl Conn {
    fn send(&mut self, args: &[&[u8]]) -> Result<(), String> {
        let mut buf = Vec::with_capacity(64 + args.iter().map(|a| a.len() + 16).sum::<usize>());
        buf.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
        for a in args {
            buf.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            buf.extend_from_slice(a);
            buf.extend_from_slice(b"\r\n");
        }
        self.r.get_mut().write_all(&buf).map_err(|e| format!("writing to target: {e}"))?;
        self.inflight += 1;
        Ok(())
    }

    /// Reads one reply; the commands used here only answer `+...` or `-...`.
    fn reply(&mut self) -> Result<(), String> {
        let mut line = String::new();
        match self.r.read_line(&mut line) {
            Ok(0) => return Err("target closed the connection".into()),
            Ok(_) => {}
            Err(e) => return Err(format!("reading from target: {e}")),
        }
        self.inflight -= 1;
        let line = line.trim_end();
        match line.as_bytes().first() {
            Some(b'+') => Ok(()),
            Some(b'-') => Err(format!("target replied: {}", &line[1..])),
            _ => Err(format!("unexpected reply from target: {line:?}")),
        }
    }

    fn call(&mut self, args: &[&[u8]]) -> Result<(), String> {
        self.send(args)?;
        self.reply()
    }
}

fn connect(t: &Target) -> Result<Conn, String> {
    let addrs: Vec<_> = (t.host.as_str(), t.port)
        .to_socket_addrs()
        .map_err(|e| format!("resolving {}:{}: {e}", t.host, t.port))?
        .collect();
    let mut last = format!("no address for {}:{}", t.host, t.port);
    for a in addrs {
        match dial::connect(&a, &t.host, IO_TIMEOUT, dial::Link::Cluster) {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                s.set_read_timeout(Some(IO_TIMEOUT)).map_err(|e| e.to_string())?;
                s.set_write_timeout(Some(IO_TIMEOUT)).map_err(|e| e.to_string())?;
                return Ok(Conn { r: BufReader::new(s), inflight: 0 });
            }
            Err(e) => last = format!("connecting to {a}: {e}"),
        }
    }
    Err(last)
}

fn run(
    name: &str,
    source_id: &str,
    ranges: &[(u16, u16)],
    target: &Target,
    rx: &Receiver<ToWorker>,
    sh: &Shared,
) -> Result<(), String> {
    let mut conn = connect(target)?;
    match &target.auth {
        Some((Some(user), pw)) => conn.call(&[b"AUTH", user.as_bytes(), pw.as_bytes()])?,
        Some((None, pw)) => conn.call(&[b"AUTH", pw.as_bytes()])?,
        None => {}
    }
    let bounds: Vec<String> = ranges.iter().flat_map(|&(a, b)| [a.to_string(), b.to_string()]).collect();
    let mut start: Vec<&[u8]> =
        vec![b"CLUSTER", b"SYNCSLOTS", b"START", name.as_bytes(), source_id.as_bytes()];
    start.extend(bounds.iter().map(|s| s.as_bytes()));
    conn.call(&start)?;
    let mut window: std::collections::VecDeque<u64> = Default::default();
    loop {
        let msg = match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(m) => m,
            Err(RecvTimeoutError::Timeout) => {
                drain(&mut conn, &mut window, 0, sh)?;
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => {
                // Cancelled: tell the target to drop what it has (it also does on EOF).
                let _ = conn.send(&[b"CLUSTER", b"SYNCSLOTS", b"ABORT", name.as_bytes()]);
                return Err("cancelled".into());
            }
        };
        match msg {
            ToWorker::Batch(items) => {
                // One command per run of keys of the same database (database 0 keeps the
                // plain DATA form; other databases exist with `cluster-databases` > 1).
                for run in items.chunk_by(|a, b| a.db == b.db) {
                    let exps: Vec<String> = run
                        .iter()
                        .map(|i| match (&i.payload, i.expire_at) {
                            (None, _) => "-2".to_string(),
                            (Some(_), None) => "-1".to_string(),
                            (Some(_), Some(at)) => at.max(0).to_string(),
                        })
                        .collect();
                    let db = run[0].db.to_string();
                    let mut args: Vec<&[u8]> = if run[0].db == 0 {
                        vec![b"CLUSTER", b"SYNCSLOTS", b"DATA", name.as_bytes()]
                    } else {
                        vec![b"CLUSTER", b"SYNCSLOTS", b"DATADB", name.as_bytes(), db.as_bytes()]
                    };
                    for (i, e) in run.iter().zip(&exps) {
                        args.push(&i.key);
                        args.push(e.as_bytes());
                        args.push(i.payload.as_deref().unwrap_or(b""));
                    }
                    conn.send(&args)?;
                    window.push_back(run.len() as u64);
                    drain(&mut conn, &mut window, WINDOW, sh)?;
                }
            }
            ToWorker::Finish => {
                drain(&mut conn, &mut window, 0, sh)?;
                conn.call(&[b"CLUSTER", b"SYNCSLOTS", b"FINISH", name.as_bytes()])?;
                return Ok(());
            }
        }
    }
}

/// Reads replies until at most `keep` DATA commands are in flight.
fn drain(
    conn: &mut Conn,
    window: &mut std::collections::VecDeque<u64>,
    keep: usize,
    sh: &Shared,
) -> Result<(), String> {
    while window.len() > keep {
        conn.reply()?;
        let n = window.pop_front().unwrap_or(0);
        sh.acked.fetch_add(n, Ordering::Relaxed);
        sh.last_ack_ms.store(crate::util::now_ms(), Ordering::Relaxed);
    }
    Ok(())
}
