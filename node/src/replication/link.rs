//! The replica's link to its primary, on its own thread: connect, the handshake, and the
//! RDB transfer of a full sync, so the executor never waits on the primary's socket.
//!
//! ```text
//! PING ─▶ [AUTH] ─▶ REPLCONF listening-port ─▶ REPLCONF capa eof capa psync2 ─▶ PSYNC id off
//!   +CONTINUE [id]       ─▶ Continue: the socket carries the stream from `off` on
//!   +FULLRESYNC id off   ─▶ FullSync, then $EOF:<mark> | $<len>, keys in batches, Loaded
//! ```
//!
//! The RDB is decoded here as it arrives ([`RdbReader`]) and handed to the executor in
//! batches of keys through a bounded channel, so a slow executor slows the transfer rather
//! than filling memory. When the payload ends, the socket itself (and any stream bytes read
//! past the payload) goes to the executor, which serves it as the primary's client: from then
//! on the I/O threads read and parse the stream like any other connection.

use std::io::{Read, Write};
use std::net::ToSocketAddrs;

use crate::net::dial::{self, Dialed as TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::time::Duration;

use super::rdb::{RdbEvent, RdbKey, RdbReader, RdbStats};

/// Keys per batch sent to the executor.
const BATCH_KEYS: usize = 512;
/// Batches the worker may run ahead of the executor.
pub const CHANNEL_DEPTH: usize = 16;
/// Socket read size.
const READ_SIZE: usize = 64 * 1024;

/// Where the handshake is, for ROLE and INFO (`connecting`, `handshake`, `sync`).
pub mod phase {
    pub const CONNECTING: u8 = 0;
    pub const HANDSHAKE: u8 = 1;
    pub const TRANSFER: u8 = 2;
}

/// What the worker reports.
pub enum Event {
    /// `+FULLRESYNC`: the dataset is replaced by what follows.
    FullSync {
        replid: String,
        offset: u64,
    },
    Keys(Vec<RdbKey>),
    /// A function library from the payload.
    Function(bytes::Bytes),
    /// The payload was read whole; `socket` now carries the stream from the announced offset.
    Loaded {
        socket: TcpStream,
        leftover: Vec<u8>,
        stats: RdbStats,
    },
    /// `+CONTINUE`: the data stays; the stream resumes at the offset asked for, under a new
    /// replication id when the primary names one.
    Continue {
        replid: Option<String>,
        socket: TcpStream,
        leftover: Vec<u8>,
    },
    Failed(String),
}

/// What the worker needs to know.
pub struct LinkConfig {
    pub host: String,
    pub port: u16,
    pub user: Option<String>,
    pub password: Option<String>,
    /// The port this node listens on (REPLCONF listening-port).
    pub listening_port: u16,
    /// PSYNC arguments: the replication id and the next offset wanted (`?`/-1: full sync).
    pub replid: String,
    pub offset: i64,
    pub timeout: Duration,
}

/// State shared with the executor.
#[derive(Default)]
pub struct Shared {
    /// Set by the executor to stop the worker (REPLICAOF elsewhere, NO ONE).
    pub cancel: AtomicBool,
    pub phase: AtomicU8,
    /// Payload bytes read so far, and the payload's size when it was announced (0: EOF mark).
    pub read_bytes: AtomicU64,
    pub total_bytes: AtomicU64,
}

/// Errors of one link attempt.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("Error condition on socket for SYNC: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Primary(String),
    #[error("{0}")]
    Rdb(#[from] super::rdb::RdbError),
    #[error("cancelled")]
    Cancelled,
}

/// Starts a link attempt; events go to `tx`, and `wake` rouses the executor after each.
pub fn spawn(
    cfg: LinkConfig,
    shared: Arc<Shared>,
    tx: SyncSender<Event>,
    wake: Arc<dyn Fn() + Send + Sync>,
) -> std::io::Result<()> {
    std::thread::Builder::new().name("shoal-replica".into()).spawn(move || {
        let mut link = Link { cfg, shared, tx, wake, buf: Vec::new() };
        if let Err(e) = link.run() {
            if !matches!(e, LinkError::Cancelled) {
                link.send(Event::Failed(e.to_string()));
            }
        }
    })?;
    Ok(())
}

struct Link {
    cfg: LinkConfig,
    shared: Arc<Shared>,
    tx: SyncSender<Event>,
    wake: Arc<dyn Fn() + Send + Sync>,
    /// Bytes read from the socket and not consumed yet.
    buf: Vec<u8>,
}

impl Link {
    fn send(&self, ev: Event) -> bool {
        let ok = self.tx.send(ev).is_ok();
        (self.wake)();
        ok
    }

    fn check_cancel(&self) -> Result<(), LinkError> {
        if self.shared.cancel.load(Ordering::Relaxed) {
            return Err(LinkError::Cancelled);
        }
        Ok(())
    }

    fn run(&mut self) -> Result<(), LinkError> {
        self.shared.phase.store(phase::CONNECTING, Ordering::Relaxed);
        let addr = (self.cfg.host.as_str(), self.cfg.port)
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| LinkError::Primary(format!("cannot resolve {}", self.cfg.host)))?;
        let mut sock = dial::connect(&addr, &self.cfg.host, self.cfg.timeout, dial::Link::Replication)?;
        sock.set_nodelay(true)?;
        sock.set_read_timeout(Some(self.cfg.timeout))?;
        sock.set_write_timeout(Some(self.cfg.timeout))?;
        self.check_cancel()?;
        self.shared.phase.store(phase::HANDSHAKE, Ordering::Relaxed);

        // PING: any answer but an error other than "authentication needed" goes on.
        let pong = self.command(&mut sock, &[b"PING"])?;
        if pong.starts_with('-')
            && !(pong.starts_with("-NOAUTH")
                || pong.starts_with("-NOPERM")
                || pong.starts_with("-ERR operation not permitted"))
        {
            return Err(LinkError::Primary(format!("Error reply to PING from primary: '{pong}'")));
        }
        if let Some(pass) = self.cfg.password.clone() {
            let reply = match self.cfg.user.clone() {
                Some(user) => self.command(&mut sock, &[b"AUTH", user.as_bytes(), pass.as_bytes()])?,
                None => self.command(&mut sock, &[b"AUTH", pass.as_bytes()])?,
            };
            if reply.starts_with('-') {
                return Err(LinkError::Primary(format!("Unable to AUTH to PRIMARY: {reply}")));
            }
        }
        let port = self.cfg.listening_port.to_string();
        let reply = self.command(&mut sock, &[b"REPLCONF", b"listening-port", port.as_bytes()])?;
        if reply.starts_with('-') {
            log::info!("(Non critical) Primary does not understand REPLCONF listening-port: {reply}");
        }
        let reply = self.command(&mut sock, &[b"REPLCONF", b"capa", b"eof", b"capa", b"psync2"])?;
        if reply.starts_with('-') {
            log::info!("(Non critical) Primary does not understand REPLCONF capa: {reply}");
        }
        self.check_cancel()?;
        let offset = self.cfg.offset.to_string();
        let reply =
            self.command(&mut sock, &[b"PSYNC", self.cfg.replid.clone().as_bytes(), offset.as_bytes()])?;
        if let Some(rest) = reply.strip_prefix("+CONTINUE") {
            let replid = rest.trim();
            let replid = (replid.len() == 40).then(|| replid.to_string());
            let leftover = std::mem::take(&mut self.buf);
            self.hand_over(&sock)?;
            self.send(Event::Continue { replid, socket: sock, leftover });
            return Ok(());
        }
        let Some(rest) = reply.strip_prefix("+FULLRESYNC ") else {
            return Err(LinkError::Primary(format!("Unexpected reply to PSYNC from primary: {reply}")));
        };
        let mut parts = rest.split_whitespace();
        let (Some(replid), Some(off)) = (parts.next(), parts.next().and_then(|o| o.parse::<u64>().ok()))
        else {
            return Err(LinkError::Primary(format!("Bad FULLRESYNC reply from primary: {reply}")));
        };
        log::info!("Full resync from primary: {replid}:{off}");
        if !self.send(Event::FullSync { replid: replid.to_string(), offset: off }) {
            return Err(LinkError::Cancelled);
        }
        self.transfer(sock)
    }

    /// Receives the payload, decoding it into batches of keys.
    fn transfer(&mut self, mut sock: TcpStream) -> Result<(), LinkError> {
        self.shared.phase.store(phase::TRANSFER, Ordering::Relaxed);
        let head = self.line(&mut sock)?;
        let (mark, mut left): (Option<Vec<u8>>, Option<u64>) = if let Some(m) = head.strip_prefix("$EOF:") {
            if m.len() != 40 {
                return Err(LinkError::Primary(format!("Bad EOF mark from primary: {head}")));
            }
            (Some(m.as_bytes().to_vec()), None)
        } else if let Some(n) = head.strip_prefix('$').and_then(|n| n.parse::<u64>().ok()) {
            self.shared.total_bytes.store(n, Ordering::Relaxed);
            (None, Some(n))
        } else if head.starts_with('-') {
            return Err(LinkError::Primary(format!("Primary aborted replication with an error: {head}")));
        } else {
            return Err(LinkError::Primary(format!(
                "Bad protocol from PRIMARY, the first byte is not '$': {head}"
            )));
        };
        let mut reader = RdbReader::new();
        let mut batch = Vec::with_capacity(BATCH_KEYS);
        let mut pending = std::mem::take(&mut self.buf);
        let mut chunk = vec![0u8; READ_SIZE];
        let mut after = Vec::new();
        loop {
            // Feed what we have (up to the announced length), then decode.
            if !pending.is_empty() {
                let take = match left {
                    Some(n) => (n as usize).min(pending.len()),
                    None => pending.len(),
                };
                reader.feed(&pending[..take]);
                after.extend_from_slice(&pending[take..]);
                if let Some(n) = left.as_mut() {
                    *n -= take as u64;
                }
                self.shared.read_bytes.fetch_add(take as u64, Ordering::Relaxed);
                pending.clear();
            }
            while let Some(ev) = reader.next_event()? {
                match ev {
                    RdbEvent::Key(k) => {
                        batch.push(k);
                        if batch.len() >= BATCH_KEYS {
                            let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH_KEYS));
                            if !self.send(Event::Keys(full)) {
                                return Err(LinkError::Cancelled);
                            }
                        }
                    }
                    RdbEvent::Skipped { key, reason, .. } => {
                        log::warn!(
                            "Skipping key {:?} from the primary: {}",
                            String::from_utf8_lossy(&key),
                            reason.what()
                        );
                    }
                    RdbEvent::Function(code) => {
                        if !self.send(Event::Function(code)) {
                            return Err(LinkError::Cancelled);
                        }
                    }
                    RdbEvent::End => break,
                    RdbEvent::Aux { .. } | RdbEvent::ResizeDb { .. } => {}
                }
            }
            if reader.is_done() {
                break;
            }
            if left == Some(0) {
                return Err(reader.finish().err().unwrap_or(super::rdb::RdbError::Truncated).into());
            }
            self.check_cancel()?;
            let n = sock.read(&mut chunk)?;
            if n == 0 {
                return Err(LinkError::Primary("Primary closed the connection during the transfer".into()));
            }
            pending.extend_from_slice(&chunk[..n]);
        }
        if !batch.is_empty() && !self.send(Event::Keys(batch)) {
            return Err(LinkError::Cancelled);
        }
        // What followed the RDB: with EOF framing the mark first, then the stream.
        let mut rest = reader.take_remaining();
        rest.extend_from_slice(&after);
        if let Some(mark) = mark {
            while rest.len() < mark.len() {
                let n = sock.read(&mut chunk)?;
                if n == 0 {
                    return Err(LinkError::Primary(
                        "Primary closed the connection before the EOF mark".into(),
                    ));
                }
                rest.extend_from_slice(&chunk[..n]);
            }
            if rest[..mark.len()] != mark[..] {
                return Err(LinkError::Primary("The payload did not end with the announced EOF mark".into()));
            }
            rest.drain(..mark.len());
        } else if left != Some(0) {
            return Err(LinkError::Primary("The RDB ended before the announced payload length".into()));
        }
        let stats = reader.stats().clone();
        self.hand_over(&sock)?;
        self.send(Event::Loaded { socket: sock, leftover: rest, stats });
        Ok(())
    }

    /// The executor serves the socket from here on (non-blocking, no timeouts).
    fn hand_over(&self, sock: &TcpStream) -> Result<(), LinkError> {
        self.check_cancel()?;
        sock.set_read_timeout(None)?;
        sock.set_write_timeout(None)?;
        sock.set_nonblocking(true)?;
        Ok(())
    }

    /// Sends a command and reads its one-line reply.
    fn command(&mut self, sock: &mut TcpStream, args: &[&[u8]]) -> Result<String, LinkError> {
        let mut out = Vec::new();
        super::primary::encode(&mut out, args);
        sock.write_all(&out)?;
        self.line(sock)
    }

    /// The next non-empty line (primaries send bare newlines as keep-alives while they
    /// prepare a full sync).
    fn line(&mut self, sock: &mut TcpStream) -> Result<String, LinkError> {
        let mut chunk = [0u8; 4096];
        loop {
            while let Some(end) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=end).collect();
                let text = String::from_utf8_lossy(&line).trim_end_matches(['\r', '\n']).to_string();
                if !text.is_empty() {
                    return Ok(text);
                }
            }
            if self.buf.len() > 64 * 1024 {
                return Err(LinkError::Primary("Protocol error: the primary sent an overlong line".into()));
            }
            self.check_cancel()?;
            let n = sock.read(&mut chunk)?;
            if n == 0 {
                return Err(LinkError::Primary("Primary closed the connection".into()));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}
