//! The TLS half of a connection's I/O: the rustls session that travels inside `ConnIo`, and
//! the read and write paths that go through it. These run wherever the connection's I/O runs
//! (an I/O thread, or the executor when none is active), so handshakes, decryption and
//! encryption never become extra executor work while I/O threads exist.
//!
//! Readiness with TLS differs from a plain socket in three ways, each handled here:
//! - rustls may hold decrypted plaintext that no new socket event will announce: a read job
//!   drains it before it reads the socket again, and reports `more_to_read` when a budget
//!   stops it first;
//! - encrypted records may wait in rustls after a socket write blocked: `has_output` counts
//!   them, so the executor schedules a write on the next writable edge;
//! - a handshake needs both directions: the read path flushes handshake records at once.

use std::io::{self, IoSlice, Read, Write};

use mio::net::TcpStream;
use rustls::Connection;

use super::conn::{ConnIo, MAX_PARSED, READ_BUDGET, READ_CHUNK, WRITE_BUDGET};

/// Encrypted bytes rustls may buffer for one connection before `write` stops feeding it
/// plaintext (rustls's own default, stated so the per-connection memory is visible here).
const TLS_BUFFER: usize = 64 * 1024;

/// A connection's TLS session.
pub struct TlsSession {
    conn: Connection,
    /// Why the session failed (handshake refused, bad record); the executor counts it once.
    pub failure: Option<String>,
    /// The peer spoke something that is not TLS (plaintext RESP to the TLS port).
    pub not_tls: bool,
    /// The handshake finished (counted once by the executor).
    pub established: bool,
}

impl TlsSession {
    pub fn new(mut conn: Connection) -> Box<TlsSession> {
        conn.set_buffer_limit(Some(TLS_BUFFER));
        Box::new(TlsSession { conn, failure: None, not_tls: false, established: false })
    }

    /// Encrypted records are waiting for the socket.
    pub fn wants_write(&self) -> bool {
        self.conn.wants_write()
    }

    pub fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// The peer's certificate subject was verified (mTLS), for diagnostics.
    pub fn peer_verified(&self) -> bool {
        self.conn.peer_certificates().is_some_and(|c| !c.is_empty())
    }
}

/// `&TcpStream` as `Read`/`Write` for rustls (mio implements both on the reference).
struct Sock<'a>(&'a TcpStream);

impl Read for Sock<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self.0).read(buf)
    }
}

impl Write for Sock<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self.0).write(buf)
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        (&*self.0).write_vectored(bufs)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// What flushing rustls's encrypted output found.
enum Flush {
    Done,
    Blocked,
    Failed,
}

fn flush(conn: &mut Connection, stream: &TcpStream) -> Flush {
    while conn.wants_write() {
        match conn.write_tls(&mut Sock(stream)) {
            Ok(0) => return Flush::Failed,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Flush::Blocked,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Flush::Failed,
        }
    }
    Flush::Done
}

impl ConnIo {
    /// Makes this connection TLS (accepted on the TLS port, or a replica's link to a TLS
    /// primary once the link thread handed it over).
    pub fn start_tls(&mut self, conn: Connection) {
        self.tls = Some(TlsSession::new(conn));
    }

    /// `read_and_parse` for a TLS connection: plaintext rustls already holds first, then
    /// records from the socket until it would block.
    pub(super) fn read_and_parse_tls(&mut self) {
        let Some(mut tls) = self.tls.take() else { return };
        self.more_to_read = false;
        let mut total = 0;
        while !self.read_closed() {
            if self.parsed.len() >= MAX_PARSED || total >= READ_BUDGET {
                self.more_to_read = true;
                break;
            }
            // 1. Plaintext already decrypted (rustls says how much, so the buffer grows by
            //    exactly that and nothing is read twice).
            let state = match tls.conn.process_new_packets() {
                Ok(state) => state,
                Err(e) => {
                    tls.not_tls = matches!(
                        e,
                        rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType)
                            | rustls::Error::InvalidMessage(rustls::InvalidMessage::UnknownProtocolVersion)
                    );
                    tls.failure = Some(e.to_string());
                    // Send the alert rustls queued, best effort, then close.
                    let _ = flush(&mut tls.conn, &self.stream);
                    self.eof = true;
                    break;
                }
            };
            // Handshake records (and key updates) go out at once: the peer is waiting.
            if tls.conn.wants_write() {
                match flush(&mut tls.conn, &self.stream) {
                    Flush::Done => {}
                    Flush::Blocked => self.write_blocked = true,
                    Flush::Failed => {
                        self.eof = true;
                        break;
                    }
                }
            }
            let avail = state.plaintext_bytes_to_read();
            if avail > 0 {
                let old = self.rbuf.len();
                let want = avail.min(READ_BUDGET);
                self.rbuf.resize(old + want, 0);
                let n = tls.conn.reader().read(&mut self.rbuf[old..]).unwrap_or(0);
                self.rbuf.truncate(old + n);
                if n == 0 {
                    break;
                }
                total += n;
                self.bytes_read += n as u64;
                self.parse();
                continue;
            }
            if state.peer_has_closed() {
                self.eof = true;
                break;
            }
            // 2. More records from the socket.
            match tls.conn.read_tls(&mut Sock(&self.stream)) {
                Ok(0) => self.eof = true,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => self.eof = true,
            }
        }
        if self.rbuf.is_empty() && self.rbuf.capacity() > 4 * READ_CHUNK {
            self.rbuf = bytes::BytesMut::new();
        }
        self.tls = Some(tls);
    }

    /// `write` for a TLS connection: encrypt queued replies into rustls (bounded by its
    /// buffer limit), push the records out, repeat until done, blocked or over budget.
    pub(super) fn write_tls(&mut self) {
        let Some(mut tls) = self.tls.take() else { return };
        self.write_blocked = false;
        let mut total = 0;
        loop {
            match flush(&mut tls.conn, &self.stream) {
                Flush::Done => {}
                Flush::Blocked => {
                    self.write_blocked = true;
                    break;
                }
                Flush::Failed => {
                    self.eof = true;
                    self.out.clear();
                    self.out_bytes = 0;
                    break;
                }
            }
            if self.out.is_empty() || total >= WRITE_BUDGET {
                break;
            }
            let mut slices = [IoSlice::new(&[]); 64];
            let n = self.out_slices(&mut slices);
            let w = tls.conn.writer().write_vectored(&slices[..n]).unwrap_or(0);
            if w == 0 {
                // Still handshaking with a full buffer: the records go out first.
                break;
            }
            total += w;
            self.consume_out(w);
        }
        self.tls = Some(tls);
    }
}
