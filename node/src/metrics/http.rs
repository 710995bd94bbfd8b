//! A deliberately small HTTP/1.1 server for the metrics endpoint: one thread, one connection
//! at a time, `Connection: close`. A scrape is a few requests a minute, so a framework would
//! only add dependencies. What it must get right is robustness: the request head is bounded
//! in size and in time (a slow or silent client holds the thread for at most
//! [`REQUEST_DEADLINE`]), malformed input gets a 400, and nothing here can panic the node.
//!
//! Routes: `GET|HEAD /metrics` (Prometheus text), `GET|HEAD /healthz` (200 when the executor
//! answered a snapshot request within [`HEALTHY_WITHIN`], or answers one now), anything else
//! 404; other methods on known paths 405.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::render::{render, CONTENT_TYPE};
use super::snapshot::Process;
use super::Hub;

/// Longest request head accepted.
pub const MAX_HEAD: usize = 8 * 1024;
/// Time a client has to send its request head, all reads together.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(2);
/// Longest wait for the executor's snapshot before answering 503.
pub const SNAPSHOT_WAIT: Duration = Duration::from_secs(2);
/// `/healthz` is 200 without asking when the executor answered this recently.
pub const HEALTHY_WITHIN: Duration = Duration::from_secs(1);
/// Time to write a response.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a request could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RequestError {
    #[error("request head larger than {MAX_HEAD} bytes")]
    TooLarge,
    #[error("malformed request line")]
    Malformed,
    #[error("client closed or timed out before the end of the request head")]
    Incomplete,
}

/// A parsed request line.
#[derive(Debug, PartialEq, Eq)]
pub struct Request<'a> {
    pub method: &'a str,
    /// The path without the query string.
    pub path: &'a str,
}

/// Parses a request head (everything up to the blank line).
pub fn parse_head(head: &[u8]) -> Result<Request<'_>, RequestError> {
    let text = std::str::from_utf8(head).map_err(|_| RequestError::Malformed)?;
    let line = text.split("\r\n").next().unwrap_or("");
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(RequestError::Malformed);
    };
    let valid_method = !method.is_empty() && method.bytes().all(|b| b.is_ascii_uppercase());
    if !valid_method || !target.starts_with('/') || !matches!(version, "HTTP/1.0" | "HTTP/1.1") {
        return Err(RequestError::Malformed);
    }
    let path = target.split(['?', '#']).next().unwrap_or(target);
    Ok(Request { method, path })
}

/// A response about to be written.
#[derive(Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
    /// `Allow` header for 405.
    pub allow: bool,
}

impl Response {
    fn text(status: u16, body: &str) -> Response {
        Response { status, content_type: "text/plain; charset=utf-8", body: body.to_string(), allow: false }
    }

    fn reason(&self) -> &'static str {
        match self.status {
            200 => "OK",
            400 => "Bad Request",
            404 => "Not Found",
            405 => "Method Not Allowed",
            431 => "Request Header Fields Too Large",
            503 => "Service Unavailable",
            _ => "Error",
        }
    }

    /// The response bytes; HEAD gets the headers only.
    pub fn encode(&self, head_only: bool) -> Vec<u8> {
        let mut out = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.status,
            self.reason(),
            self.content_type,
            self.body.len()
        )
        .into_bytes();
        if self.allow {
            out.extend_from_slice(b"Allow: GET, HEAD\r\n");
        }
        out.extend_from_slice(b"\r\n");
        if !head_only {
            out.extend_from_slice(self.body.as_bytes());
        }
        out
    }
}

/// The endpoint: a listener and the hub to ask the executor through.
pub struct MetricsServer {
    listener: TcpListener,
    hub: Arc<Hub>,
}

impl MetricsServer {
    pub fn new(listener: TcpListener, hub: Arc<Hub>) -> MetricsServer {
        MetricsServer { listener, hub }
    }

    /// Serves until the process ends.
    pub fn run(self) {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    if let Err(e) = self.serve(stream) {
                        log::debug!("Metrics connection: {e}");
                    }
                }
                Err(e) => {
                    log::warn!("Metrics endpoint accept: {e}");
                    // EMFILE and the like: do not spin on the error.
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }

    fn serve(&self, mut stream: TcpStream) -> std::io::Result<()> {
        stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
        let (response, head_only) = match read_head(&mut stream, Instant::now() + REQUEST_DEADLINE) {
            Ok(head) => match parse_head(&head) {
                Ok(req) => (self.route(&req), req.method == "HEAD"),
                Err(e) => (Response::text(400, &format!("{e}\n")), false),
            },
            Err(RequestError::TooLarge) => (Response::text(431, "request head too large\n"), false),
            Err(RequestError::Malformed) => (Response::text(400, "malformed request\n"), false),
            // Nobody to answer.
            Err(RequestError::Incomplete) => return Ok(()),
        };
        stream.write_all(&response.encode(head_only))?;
        stream.flush()?;
        let _ = stream.shutdown(std::net::Shutdown::Write);
        Ok(())
    }

    /// Answers a well-formed request.
    pub fn route(&self, req: &Request<'_>) -> Response {
        let known = matches!(req.path, "/metrics" | "/healthz");
        if !known {
            return Response::text(404, "not found: try /metrics\n");
        }
        if !matches!(req.method, "GET" | "HEAD") {
            return Response { allow: true, ..Response::text(405, "method not allowed\n") };
        }
        if req.path == "/healthz" {
            let recent = self.hub.last_answer().is_some_and(|t| t.elapsed() < HEALTHY_WITHIN);
            return if recent || self.hub.request(SNAPSHOT_WAIT).is_some() {
                Response::text(200, "ok\n")
            } else {
                Response::text(503, "executor not answering\n")
            };
        }
        match self.hub.request(SNAPSHOT_WAIT) {
            Some(snap) => Response {
                status: 200,
                content_type: CONTENT_TYPE,
                body: render(&snap, &Process::read()),
                allow: false,
            },
            None => Response::text(503, "executor did not answer in time\n"),
        }
    }
}

/// Reads up to the blank line ending the head, within `deadline` and [`MAX_HEAD`] bytes.
fn read_head(stream: &mut TcpStream, deadline: Instant) -> Result<Vec<u8>, RequestError> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return Err(RequestError::Incomplete);
        }
        let n = match stream.read(&mut buf) {
            Ok(0) => {
                // A closed request without a blank line is still malformed if it said anything.
                return Err(if head.is_empty() { RequestError::Incomplete } else { RequestError::Malformed });
            }
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return Err(RequestError::Incomplete),
        };
        let scan_from = head.len().saturating_sub(3);
        head.extend_from_slice(&buf[..n]);
        if let Some(end) = find_blank_line(&head[scan_from..]) {
            head.truncate(scan_from + end);
            return Ok(head);
        }
        if head.len() > MAX_HEAD {
            return Err(RequestError::TooLarge);
        }
    }
}

/// The offset of the end of the head (`\r\n\r\n`, or a bare `\n\n`).
fn find_blank_line(b: &[u8]) -> Option<usize> {
    let crlf = b.windows(4).position(|w| w == b"\r\n\r\n");
    let lf = b.windows(2).position(|w| w == b"\n\n");
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines() {
        assert_eq!(
            parse_head(b"GET /metrics HTTP/1.1\r\nHost: x\r\n"),
            Ok(Request { method: "GET", path: "/metrics" })
        );
        assert_eq!(
            parse_head(b"HEAD /healthz?x=1 HTTP/1.0"),
            Ok(Request { method: "HEAD", path: "/healthz" })
        );
        for bad in [
            &b""[..],
            b"GET",
            b"GET /metrics",
            b"GET metrics HTTP/1.1",
            b"get /metrics HTTP/1.1",
            b"GET /metrics HTTP/2.0",
            b"GET /metrics HTTP/1.1 extra",
            b"GET  /metrics HTTP/1.1",
            b"\xff\xfe /metrics HTTP/1.1",
        ] {
            assert_eq!(parse_head(bad), Err(RequestError::Malformed), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn routes_without_executor() {
        let server = MetricsServer::new(TcpListener::bind("127.0.0.1:0").unwrap(), Arc::new(Hub::new(|| {})));
        let get = |path| server.route(&Request { method: "GET", path });
        assert_eq!(get("/").status, 404);
        assert_eq!(get("/metricsx").status, 404);
        let post = server.route(&Request { method: "POST", path: "/metrics" });
        assert_eq!(post.status, 405);
        assert!(String::from_utf8_lossy(&post.encode(false)).contains("Allow: GET, HEAD\r\n"));
    }

    #[test]
    fn head_responses_have_no_body() {
        let r = Response::text(200, "hello");
        let full = String::from_utf8(r.encode(false)).unwrap();
        let head = String::from_utf8(r.encode(true)).unwrap();
        assert!(full.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(full.ends_with("\r\n\r\nhello"));
        assert!(head.contains("Content-Length: 5\r\n"));
        assert!(head.ends_with("\r\n\r\n"));
    }

    #[test]
    fn blank_line_detection() {
        assert_eq!(find_blank_line(b"GET / HTTP/1.1\r\n\r\n"), Some(14));
        assert_eq!(find_blank_line(b"GET / HTTP/1.1\n\n"), Some(14));
        assert_eq!(find_blank_line(b"GET / HTTP/1.1\r\n"), None);
    }
}
