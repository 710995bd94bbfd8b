//! Prometheus metrics on an optional HTTP port (`metrics-port`), so that users need no
//! exporter sidecar: the same figures as INFO plus per-slot key counts in aggregate.
//!
//! The executor owns every figure and must never block, so the HTTP thread never reads its
//! state. Instead, a scrape *asks* for a snapshot through the [`Hub`]: it raises a flag and
//! wakes the executor's poll; at the end of its next loop iteration the executor copies the
//! figures into a plain [`Snapshot`] (cheap: counters, per-db sizes, one count per owned slot)
//! and publishes it. The HTTP thread waits for it, bounded, and serves 503 if it does not come.
//! Nothing is collected when nobody scrapes; formatting happens on the HTTP thread.
//!
//! ```text
//!  scraper ──GET /metrics──▶ HTTP thread ──flag + waker──▶ executor (end of loop iteration)
//!                               ▲                               │ collect() -> Snapshot
//!                               └──── Mutex<Arc<Snapshot>> + Condvar ◀┘
//! ```
//!
//! Process-wide figures that need no executor state (allocator in-use bytes, RSS, process
//! CPU) are read on the HTTP thread, keeping their cost off the executor.

pub mod http;
pub mod render;
pub mod snapshot;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

pub use render::render;
pub use snapshot::{collect, ClusterFigures, CommandFigures, DbFigures, Process, Snapshot};

/// Why the metrics endpoint could not start.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("metrics-bind {0:?} is not an IP address")]
    BadAddress(String),
    #[error("could not bind metrics endpoint {addr}: {source}")]
    Bind { addr: String, source: std::io::Error },
    #[error("could not start the metrics thread: {0}")]
    Spawn(std::io::Error),
}

/// What the executor published last.
#[derive(Default)]
struct Published {
    /// Snapshots published so far.
    generation: u64,
    latest: Option<Arc<Snapshot>>,
    at: Option<Instant>,
}

/// The meeting point between the HTTP thread (asks) and the executor (answers).
pub struct Hub {
    /// Set by a scrape, cleared by the executor when it collects. The executor reads it once
    /// per loop iteration (one relaxed load when nobody scrapes).
    wanted: AtomicBool,
    published: Mutex<Published>,
    ready: Condvar,
    /// Wakes the executor's poll (its mio waker).
    wake: Box<dyn Fn() + Send + Sync>,
}

impl Hub {
    pub fn new(wake: impl Fn() + Send + Sync + 'static) -> Hub {
        Hub {
            wanted: AtomicBool::new(false),
            published: Mutex::new(Published::default()),
            ready: Condvar::new(),
            wake: Box::new(wake),
        }
    }

    /// Executor side: true once per request; the caller must then [`Hub::publish`].
    pub fn take_request(&self) -> bool {
        self.wanted.load(Ordering::Relaxed) && self.wanted.swap(false, Ordering::Acquire)
    }

    /// Executor side: hands a snapshot to whoever waits. The lock is only ever held for a
    /// few instructions by either side, so this does not block the executor.
    pub fn publish(&self, snap: Snapshot) {
        let snap = Arc::new(snap);
        if let Ok(mut p) = self.published.lock() {
            p.generation += 1;
            p.latest = Some(snap);
            p.at = Some(Instant::now());
        }
        self.ready.notify_all();
    }

    /// HTTP side: asks for a snapshot taken after this call and waits for it up to `timeout`.
    /// `None` if the executor did not answer in time.
    pub fn request(&self, timeout: Duration) -> Option<Arc<Snapshot>> {
        let deadline = Instant::now() + timeout;
        let mut p = self.published.lock().ok()?;
        // Any snapshot published after this point was collected after every command whose
        // reply the scraper could have seen: collection and publication are back to back on
        // the executor thread.
        let want = p.generation + 1;
        self.wanted.store(true, Ordering::Release);
        (self.wake)();
        while p.generation < want {
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            p = self.ready.wait_timeout(p, deadline - now).ok()?.0;
        }
        p.latest.clone()
    }

    /// When the executor last answered.
    pub fn last_answer(&self) -> Option<Instant> {
        self.published.lock().ok()?.at
    }
}

/// The address to serve metrics on: `metrics-bind`, else the first `bind` address.
pub fn bind_address(config: &crate::config::Config) -> Result<Option<std::net::SocketAddr>, MetricsError> {
    let port = config.get_i64("metrics-port");
    if port <= 0 {
        return Ok(None);
    }
    let explicit = config.get("metrics-bind").unwrap_or("").trim().to_string();
    let host = if explicit.is_empty() {
        let bind = config.get("bind").unwrap_or("127.0.0.1");
        bind.split_whitespace().next().unwrap_or("127.0.0.1").trim_start_matches('-').to_string()
    } else {
        explicit
    };
    let host = if host == "*" { "0.0.0.0" } else { host.as_str() };
    let ip: std::net::IpAddr = host.parse().map_err(|_| MetricsError::BadAddress(host.to_string()))?;
    Ok(Some(std::net::SocketAddr::new(ip, port as u16)))
}

/// Starts the metrics endpoint when `metrics-port` is set: binds, logs the address and spawns
/// the HTTP thread. Returns the hub the executor must answer, or `None` when disabled.
pub fn start(
    config: &crate::config::Config,
    wake: impl Fn() + Send + Sync + 'static,
) -> Result<Option<Arc<Hub>>, MetricsError> {
    let Some(addr) = bind_address(config)? else {
        return Ok(None);
    };
    let listener = std::net::TcpListener::bind(addr)
        .map_err(|source| MetricsError::Bind { addr: addr.to_string(), source })?;
    let bound = listener.local_addr().unwrap_or(addr);
    let hub = Arc::new(Hub::new(wake));
    let server = http::MetricsServer::new(listener, hub.clone());
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || server.run())
        .map_err(MetricsError::Spawn)?;
    log::info!("Metrics on http://{bound}/metrics");
    Ok(Some(hub))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_times_out_without_executor() {
        let hub = Hub::new(|| {});
        assert!(hub.request(Duration::from_millis(20)).is_none());
        assert!(hub.take_request(), "the request left the flag up");
        assert!(!hub.take_request(), "one request, one answer");
    }

    #[test]
    fn request_gets_a_fresh_snapshot() {
        let hub = Arc::new(Hub::new(|| {}));
        let executor = {
            let hub = hub.clone();
            std::thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(10);
                while Instant::now() < deadline {
                    if hub.take_request() {
                        hub.publish(Snapshot { commands_processed: 42, ..Snapshot::default() });
                        return true;
                    }
                    std::thread::yield_now();
                }
                false
            })
        };
        let snap = hub.request(Duration::from_secs(10)).expect("answered");
        assert_eq!(snap.commands_processed, 42);
        assert!(executor.join().unwrap());
        assert!(hub.last_answer().is_some());
    }

    #[test]
    fn bind_address_defaults_to_first_bind() {
        let mut c = crate::config::Config::default();
        assert_eq!(bind_address(&c).unwrap(), None);
        c.load_str("metrics-port 9121\nbind \"-10.1.2.3 127.0.0.1\"").unwrap();
        assert_eq!(bind_address(&c).unwrap(), Some("10.1.2.3:9121".parse().unwrap()));
        c.load_str("bind *").unwrap();
        assert_eq!(bind_address(&c).unwrap(), Some("0.0.0.0:9121".parse().unwrap()));
        c.load_str("metrics-bind ::1").unwrap();
        assert_eq!(bind_address(&c).unwrap(), Some("[::1]:9121".parse().unwrap()));
        c.load_str("metrics-bind nonsense").unwrap();
        assert!(matches!(bind_address(&c), Err(MetricsError::BadAddress(_))));
    }
}
