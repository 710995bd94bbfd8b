//! A raw RESP client over TCP or a unix socket: send any bytes (including malformed ones),
//! read exactly one complete reply frame, and observe the server closing the connection.
//! Every read has a timeout so a silent server fails the test instead of hanging it.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::resp::{self, Value};

/// How long a read may wait for a reply before the test fails.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Addr {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

/// A connected socket of either family, or a TLS session over TCP (see `crate::tls`).
#[derive(Debug)]
pub enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Stream {
    /// Connects with `TCP_NODELAY`, so small writes leave one by one.
    pub fn connect(addr: &Addr) -> io::Result<Stream> {
        let s = match addr {
            Addr::Tcp(a) => {
                let s = TcpStream::connect_timeout(a, READ_TIMEOUT)?;
                s.set_nodelay(true)?;
                Stream::Tcp(s)
            }
            Addr::Unix(p) => Stream::Unix(UnixStream::connect(p)?),
        };
        s.set_read_timeout(Some(READ_TIMEOUT))?;
        s.set_write_timeout(Some(READ_TIMEOUT))?;
        Ok(s)
    }

    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_read_timeout(t),
            Stream::Unix(s) => s.set_read_timeout(t),
            Stream::Tls(s) => s.sock.set_read_timeout(t),
        }
    }

    pub fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_write_timeout(t),
            Stream::Unix(s) => s.set_write_timeout(t),
            Stream::Tls(s) => s.sock.set_write_timeout(t),
        }
    }

    /// A second handle on the same socket, e.g. for a writer thread.
    pub fn try_clone(&self) -> io::Result<Stream> {
        Ok(match self {
            Stream::Tcp(s) => Stream::Tcp(s.try_clone()?),
            Stream::Unix(s) => Stream::Unix(s.try_clone()?),
            Stream::Tls(_) => return Err(io::Error::other("a TLS session cannot be cloned")),
        })
    }

    /// Shuts down one or both directions.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.shutdown(how),
            Stream::Unix(s) => s.shutdown(how),
            Stream::Tls(s) => s.sock.shutdown(how),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.flush(),
            Stream::Unix(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// A connection plus the bytes received but not yet returned as replies.
#[derive(Debug)]
pub struct RawClient {
    pub stream: Stream,
    buf: Vec<u8>,
}

fn timeout_error(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, what.to_string())
}

impl RawClient {
    pub fn connect(addr: &Addr) -> io::Result<RawClient> {
        Ok(RawClient { stream: Stream::connect(addr)?, buf: Vec::new() })
    }

    /// A client over an already connected stream (e.g. a TLS session).
    pub fn over(stream: Stream) -> RawClient {
        RawClient { stream, buf: Vec::new() }
    }

    /// Writes raw bytes.
    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Sends one command as a multibulk request.
    pub fn send_cmd<A: AsRef<[u8]>>(&mut self, args: &[A]) -> io::Result<()> {
        self.send(&resp::encode_command(args))
    }

    /// Sends a command and returns the raw bytes of its reply.
    pub fn cmd<A: AsRef<[u8]>>(&mut self, args: &[A]) -> io::Result<Vec<u8>> {
        self.send_cmd(args)?;
        self.read_raw()
    }

    /// Runs a command given as space-separated words and returns its reply as (lossy) text,
    /// e.g. `c.run("SET k v") == "+OK\r\n"`. Panics on I/O errors: for test bodies.
    pub fn run(&mut self, line: &str) -> String {
        let args: Vec<&str> = line.split(' ').collect();
        match self.cmd(&args) {
            Ok(raw) => String::from_utf8_lossy(&raw).into_owned(),
            Err(e) => panic!("{line}: {e}"),
        }
    }

    /// Reads exactly one complete reply and returns its raw bytes.
    pub fn read_raw(&mut self) -> io::Result<Vec<u8>> {
        let (_, used) = self.read_frame()?;
        Ok(self.buf.drain(..used).collect())
    }

    /// Polls `INFO <section>` until it has the line `field:value`, failing the test after
    /// `timeout` (how tests wait for `blocked_clients:N` instead of sleeping).
    pub fn wait_info(
        &mut self,
        section: &str,
        field: &str,
        value: impl std::fmt::Display,
        timeout: Duration,
    ) {
        let want = format!("{field}:{value}\r\n");
        let deadline = Instant::now() + timeout;
        loop {
            let info = self.run(&format!("INFO {section}"));
            if info.contains(&want) {
                return;
            }
            assert!(Instant::now() < deadline, "no {want:?} within {timeout:?}: {info}");
            std::thread::yield_now();
        }
    }

    /// Reads one reply as (lossy) text, for readable assertions. Panics on I/O errors.
    pub fn read_text(&mut self) -> String {
        match self.read_raw() {
            Ok(raw) => String::from_utf8_lossy(&raw).into_owned(),
            Err(e) => panic!("reading a reply: {e}"),
        }
    }

    /// Reads exactly one complete reply, parsed.
    pub fn read_value(&mut self) -> io::Result<Value> {
        let (v, used) = self.read_frame()?;
        self.buf.drain(..used);
        Ok(v)
    }

    fn read_frame(&mut self) -> io::Result<(Value, usize)> {
        let deadline = Instant::now() + READ_TIMEOUT;
        loop {
            match resp::parse(&self.buf) {
                Ok(Some(found)) => return Ok(found),
                Ok(None) => {}
                Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
            }
            if Instant::now() >= deadline {
                return Err(timeout_error("no complete reply"));
            }
            if self.fill()? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "connection closed with {} unparsed bytes: {}",
                        self.buf.len(),
                        resp::escape(&self.buf[..self.buf.len().min(200)])
                    ),
                ));
            }
        }
    }

    /// One `read` into the buffer; 0 means end of stream.
    fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 64 * 1024];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock) => {
                    return Err(timeout_error("read timed out"))
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads exactly `n` raw bytes (no framing), e.g. to look at a partial reply.
    pub fn read_exact_raw(&mut self, n: usize) -> io::Result<Vec<u8>> {
        while self.buf.len() < n {
            if self.fill()? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
        Ok(self.buf.drain(..n).collect())
    }

    /// Waits until the server closes the connection, failing if it sends anything else
    /// first. A reset counts as closed.
    pub fn expect_closed(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("unexpected bytes: {}", resp::escape(&self.buf)),
            ));
        }
        match self.fill() {
            Ok(0) => Ok(()),
            Ok(_) => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("expected the connection to close, got {}", resp::escape(&self.buf)),
            )),
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Bytes received and not yet consumed.
    pub fn buffered(&self) -> &[u8] {
        &self.buf
    }
}
