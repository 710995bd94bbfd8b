//! The I/O half of a connection: socket, read buffer, parser, parsed requests and pending
//! reply chunks. It is owned by exactly one thread at a time: the executor, or the I/O thread
//! it was moved to inside a job. Nothing here knows what a command means.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};
use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use mio::net::TcpStream;

use crate::command::Entry as CommandEntry;
use crate::keyspace::KeyHint;
use crate::protocol::{Frame, Limits, Parser, ProtocolError};

/// How much to read per `read` call when not inside a big bulk.
pub(super) const READ_CHUNK: usize = 16 * 1024;
/// Bytes read per job before handing back, so one flooding client cannot starve the others.
pub(super) const READ_BUDGET: usize = 1024 * 1024;
/// Stop parsing ahead when this many requests are waiting to execute.
pub(super) const MAX_PARSED: usize = 4096;
/// Bytes written per job before handing back (Valkey's `NET_MAX_WRITES_PER_EVENT` is 64 KB; a
/// larger budget suits vectored writes of pipelined replies).
pub(super) const WRITE_BUDGET: usize = 1024 * 1024;

/// One parsed request: its arguments, sliced from the read buffer without copying, and what
/// the parsing thread already worked out for the executor: the command's registry entry and
/// the table hash and cluster slot of its first key.
#[derive(Clone)]
pub struct Request {
    pub args: Vec<Bytes>,
    pub cmd: Option<&'static CommandEntry>,
    pub key: Option<(u8, KeyHint)>,
}

impl Request {
    /// Resolves the command and hashes its first key (on whichever thread parses).
    fn new(args: Vec<Bytes>, cluster: bool) -> Request {
        let cmd = crate::command::registry().lookup(&args[0]);
        let key = cmd.and_then(|c| {
            let first = c.meta.first_key;
            if !c.subs.is_empty() || first <= 0 || first as usize >= args.len() || first > u8::MAX as i32 {
                return None;
            }
            let k = &args[first as usize];
            let slot = if cluster { crate::keyspace::slot::key_slot(k) } else { 0 };
            Some((first as u8, KeyHint { hash: crate::keyspace::hash::hash_key(k), slot }))
        });
        Request { args, cmd, key }
    }
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request").field("args", &self.args).field("key", &self.key).finish()
    }
}

/// Reads up to `want` bytes from the socket straight into the spare capacity of `buf`,
/// without zero-filling it first (zeroing 16 KB per read showed up in profiles).
/// Returns the bytes read and the room there was: a read that did not fill the room emptied
/// the socket's receive queue.
fn read_into_spare(stream: &TcpStream, buf: &mut BytesMut, want: usize) -> io::Result<(usize, usize)> {
    use std::os::fd::AsRawFd;
    buf.reserve(want);
    let spare = buf.spare_capacity_mut();
    let len = spare.len().min(want);
    // SAFETY: `read(2)` writes at most `len` bytes into the spare capacity, which `reserve`
    // made valid for writes; no Rust reference to uninitialised bytes is created.
    let n = unsafe { libc::read(stream.as_raw_fd(), spare.as_mut_ptr() as *mut libc::c_void, len) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = n as usize;
    // SAFETY: the kernel initialised the first `n` bytes of the spare capacity.
    unsafe { buf.set_len(buf.len() + n) };
    Ok((n, len))
}

/// Limits and flags the executor sets before the I/O half leaves it.
#[derive(Debug, Clone, Copy)]
pub struct ReadGate {
    pub limits: Limits,
    pub auth_required: bool,
    pub qbuf_limit: usize,
    /// Cluster mode: compute each key's hash slot while parsing.
    pub cluster: bool,
}

/// A connection's I/O state.
///
/// The transport is the plain socket, plus a rustls session when the connection is TLS. The
/// plain path pays one well-predicted branch on `tls` per read or write job and nothing else;
/// everything TLS lives in `net::tls_io`.
pub struct ConnIo {
    pub stream: TcpStream,
    /// The TLS session when this connection is encrypted (boxed: most connections are plain
    /// and should not carry a rustls session's size inline).
    pub tls: Option<Box<super::tls_io::TlsSession>>,
    pub peer: SocketAddr,
    pub local: SocketAddr,
    pub(super) rbuf: BytesMut,
    parser: Parser,
    pub gate: ReadGate,
    pub parsed: VecDeque<Request>,
    /// A malformed request, reported after the requests parsed before it have run.
    pub proto_error: Option<ProtocolError>,
    /// The peer closed its side, or the socket failed.
    pub eof: bool,
    /// The unparsed query buffer outgrew `client-query-buffer-limit`.
    pub qbuf_exceeded: bool,
    /// Reading stopped at a budget, not at `WouldBlock`: there may be more to read.
    pub more_to_read: bool,
    /// Read until `WouldBlock` even after a short read: the last event reported the peer's
    /// hang-up (or an error), which no later edge would announce again.
    pub drain: bool,
    /// Reply chunks not yet written; `out_pos` bytes of the front chunk are already sent.
    pub out: VecDeque<Bytes>,
    pub(super) out_pos: usize,
    /// Bytes in `out` not yet written, kept as a running count (pub/sub output limits read
    /// it on every delivered message).
    pub(super) out_bytes: usize,
    /// Writing stopped at `WouldBlock`: wait for a writable event.
    pub write_blocked: bool,
    pub bytes_read: u64,
    pub bytes_written: u64,
}

impl ConnIo {
    pub fn new(stream: TcpStream, peer: SocketAddr, gate: ReadGate) -> Self {
        let local = stream.local_addr().unwrap_or(peer);
        ConnIo {
            stream,
            tls: None,
            peer,
            local,
            rbuf: BytesMut::new(),
            parser: Parser::new(),
            gate,
            parsed: VecDeque::new(),
            proto_error: None,
            eof: false,
            qbuf_exceeded: false,
            more_to_read: false,
            drain: false,
            out: VecDeque::new(),
            out_pos: 0,
            out_bytes: 0,
            write_blocked: false,
            bytes_read: 0,
            bytes_written: 0,
        }
    }

    /// Bytes received but not yet parsed into requests (`qbuf` in CLIENT LIST).
    pub fn query_buffer_len(&self) -> usize {
        self.rbuf.len()
    }

    /// Capacity of the read buffer (`qbuf-free` is capacity minus length).
    pub fn query_buffer_cap(&self) -> usize {
        self.rbuf.capacity()
    }

    /// Bytes of replies waiting to be written.
    pub fn pending_out(&self) -> usize {
        self.out_bytes
    }

    /// True when nothing more may be read: EOF, a protocol error or the limit was hit.
    pub fn read_closed(&self) -> bool {
        self.eof || self.proto_error.is_some() || self.qbuf_exceeded
    }

    /// True while replies (or TLS records) wait to be written.
    pub fn has_output(&self) -> bool {
        !self.out.is_empty() || self.tls.as_ref().is_some_and(|t| t.wants_write())
    }

    /// Reads what the socket has (up to a budget) and parses every complete request.
    pub fn read_and_parse(&mut self) {
        if self.tls.is_some() {
            return self.read_and_parse_tls();
        }
        self.more_to_read = false;
        let mut total = 0;
        while !self.read_closed() {
            if self.parsed.len() >= MAX_PARSED || total >= READ_BUDGET {
                self.more_to_read = true;
                break;
            }
            let want = self
                .parser
                .pending_bulk(self.rbuf.len())
                .filter(|&n| n >= crate::protocol::parse::BIG_ARG)
                .unwrap_or(READ_CHUNK);
            let old = self.rbuf.len();
            match read_into_spare(&self.stream, &mut self.rbuf, want) {
                Ok((0, _)) => {
                    self.eof = true;
                }
                Ok((n, room)) => {
                    total += n;
                    self.bytes_read += n as u64;
                    self.parse();
                    // A short read emptied the receive queue; with an edge-triggered poll,
                    // data arriving later raises a new edge. Stopping here saves the read
                    // that would only say EAGAIN: one syscall per batch, ~7% at pipeline 16.
                    if n < room && !self.drain {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    debug_assert_eq!(self.rbuf.len(), old);
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.eof = true;
                }
            }
        }
    }

    /// Takes bytes that were read from the socket before this connection existed (a
    /// replica's link read past the end of its primary's payload) and parses them.
    pub fn preload(&mut self, data: &[u8]) {
        self.rbuf.extend_from_slice(data);
        self.bytes_read += data.len() as u64;
        self.parse();
    }

    /// Parses buffered bytes into requests (also used after the gate changes, e.g. AUTH).
    pub fn parse(&mut self) {
        while self.proto_error.is_none() && self.parsed.len() < MAX_PARSED {
            if self.gate.auth_required && !self.parsed.is_empty() {
                // An unauthenticated client gets one request at a time: the tighter limits
                // must not apply to what follows a successful AUTH in the same read.
                break;
            }
            match self.parser.parse(&self.rbuf, self.gate.limits, self.gate.auth_required) {
                Ok(None) => break,
                Ok(Some(frame)) => {
                    let chunk = self.rbuf.split_to(frame.consumed()).freeze();
                    match frame {
                        Frame::Multibulk { args, .. } if !args.is_empty() => {
                            let args = args.into_iter().map(|r| chunk.slice(r)).collect();
                            self.parsed.push_back(Request::new(args, self.gate.cluster));
                        }
                        Frame::Inline { args, .. } if !args.is_empty() => {
                            let args = args.into_iter().map(Bytes::from).collect();
                            self.parsed.push_back(Request::new(args, self.gate.cluster));
                        }
                        _ => {}
                    }
                }
                Err(e) => {
                    self.proto_error = Some(e);
                    self.rbuf.clear();
                }
            }
        }
        if self.rbuf.len() > self.gate.qbuf_limit {
            self.qbuf_exceeded = true;
        }
        if self.rbuf.is_empty() && self.rbuf.capacity() > 4 * READ_CHUNK {
            // Do not keep a huge buffer around after a big argument.
            self.rbuf = BytesMut::new();
        }
    }

    /// Queues reply bytes.
    pub fn queue(&mut self, chunk: Bytes) {
        if !chunk.is_empty() {
            self.out_bytes += chunk.len();
            self.out.push_back(chunk);
        }
    }

    /// Drops `w` written bytes from the front of the queued replies.
    #[inline]
    pub(super) fn consume_out(&mut self, mut w: usize) {
        self.out_bytes -= w;
        self.bytes_written += w as u64;
        while w > 0 {
            let front = self.out.front().map_or(0, |c| c.len() - self.out_pos);
            if w >= front {
                w -= front;
                self.out.pop_front();
                self.out_pos = 0;
            } else {
                self.out_pos += w;
                w = 0;
            }
        }
    }

    /// The queued replies as up to 64 slices (the first one past what is already sent).
    #[inline]
    pub(super) fn out_slices<'a>(&'a self, slices: &mut [IoSlice<'a>; 64]) -> usize {
        let mut n = 0;
        for (i, c) in self.out.iter().enumerate().take(64) {
            slices[n] = IoSlice::new(if i == 0 { &c[self.out_pos..] } else { &c[..] });
            n += 1;
        }
        n
    }

    /// Writes queued replies with vectored writes until done, blocked or over budget.
    pub fn write(&mut self) {
        if self.tls.is_some() {
            return self.write_tls();
        }
        self.write_blocked = false;
        let mut total = 0;
        while !self.out.is_empty() && total < WRITE_BUDGET {
            let mut slices = [IoSlice::new(&[]); 64];
            let n = self.out_slices(&mut slices);
            match (&self.stream).write_vectored(&slices[..n]) {
                Ok(0) => {
                    self.eof = true;
                    self.out.clear();
                    self.out_bytes = 0;
                    break;
                }
                Ok(w) => {
                    total += w;
                    self.consume_out(w);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.write_blocked = true;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.eof = true;
                    self.out.clear();
                    self.out_bytes = 0;
                    break;
                }
            }
        }
    }
}
