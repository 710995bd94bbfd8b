//! Operator metrics in the Prometheus text format, and the small HTTP server that serves them with
//! the health endpoints: `/metrics`, `/healthz` (the process is alive), `/readyz` (the controller
//! runs, or this replica stands by for the lease — both are healthy states).
//!
//! Counters, not gauges per object, so the series count does not grow with the number of
//! clusters; errors are labelled by variant (`Error::metric_label`), decisions by action.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabels {
    /// `scale_out`, `scale_in`, `io_threads`.
    pub action: String,
    /// `true` when acted on, `false` for a recommendation.
    pub applied: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailoverLabels {
    /// `planned`, `primary_failed`, `primary_fenced`, `primary_replaced`, `requested`.
    pub cause: String,
}

/// One replica: its cluster (`namespace/name`) and endpoint. One series per replica, the only
/// per-object series here: lag is worth watching per replica, and a replica's series is
/// removed when it leaves the topology.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReplicaLabels {
    pub cluster: String,
    pub node: String,
}

/// Every metric the operator exports.
pub struct Metrics {
    pub reconciles: Counter,
    pub errors: Family<ErrorLabels, Counter>,
    pub duration: Histogram,
    pub migrations: Counter,
    pub slots_moved: Counter,
    pub shards_added: Counter,
    pub shards_removed: Counter,
    pub decisions: Family<DecisionLabels, Counter>,
    /// Nodes that came back with a new id and took their predecessor's place.
    pub nodes_replaced: Counter,
    /// Nodes marked `fail` after staying silent past the failure-detection window.
    pub nodes_failed: Counter,
    /// Control-plane actions that became stuck (failing longer than the stuck window).
    pub actions_stuck: Counter,
    /// Actions stuck now, summed over clusters at their last reconcile.
    pub stuck_now: Gauge,
    /// Slots no answering primary serves, summed over clusters at their last reconcile.
    pub unserved_slots: Gauge,
    /// Shard pods deleted for a rollout or a Node's removal, after their shard was drained.
    pub pods_recreated: Counter,
    /// Promotions of a replica, by cause.
    pub failovers: Family<FailoverLabels, Counter>,
    /// Time to recover of the newest failover (from the first sign of trouble to the push).
    pub last_recovery_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
    /// Primary offset minus replica offset, bytes, per replica.
    pub replication_lag: Family<ReplicaLabels, Gauge>,
    lag_series: std::sync::Mutex<std::collections::HashMap<String, Vec<ReplicaLabels>>>,
    registry: Registry,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut r = Registry::with_prefix("shoal_operator");
        let m = Metrics {
            reconciles: Counter::default(),
            errors: Family::default(),
            duration: Histogram::new(exponential_buckets(0.005, 2.0, 12)),
            migrations: Counter::default(),
            slots_moved: Counter::default(),
            shards_added: Counter::default(),
            shards_removed: Counter::default(),
            decisions: Family::default(),
            nodes_replaced: Counter::default(),
            nodes_failed: Counter::default(),
            actions_stuck: Counter::default(),
            stuck_now: Gauge::default(),
            unserved_slots: Gauge::default(),
            pods_recreated: Counter::default(),
            failovers: Family::default(),
            last_recovery_seconds: Gauge::default(),
            replication_lag: Family::default(),
            lag_series: Default::default(),
            registry: Registry::default(),
        };
        r.register("reconciles", "Reconciles run", m.reconciles.clone());
        r.register("reconcile_errors", "Failed reconciles by error kind", m.errors.clone());
        r.register("reconcile_duration_seconds", "Reconcile duration", m.duration.clone());
        r.register("migrations_started", "Slot migration jobs started", m.migrations.clone());
        r.register("slots_moved", "Slots whose migration completed", m.slots_moved.clone());
        r.register("shards_added", "Shard StatefulSets created", m.shards_added.clone());
        r.register("shards_removed", "Drained shard StatefulSets removed", m.shards_removed.clone());
        r.register("autoscale_decisions", "Autoscaler decisions that change something", m.decisions.clone());
        r.register(
            "nodes_replaced",
            "Nodes that came back with a new id and replaced the old one",
            m.nodes_replaced.clone(),
        );
        r.register(
            "nodes_failed",
            "Nodes marked fail after the failure-detection window",
            m.nodes_failed.clone(),
        );
        r.register("actions_stuck", "Control-plane actions that became stuck", m.actions_stuck.clone());
        r.register("stuck_actions", "Control-plane actions stuck now", m.stuck_now.clone());
        r.register("unserved_slots", "Slots no answering primary serves", m.unserved_slots.clone());
        r.register(
            "pods_recreated",
            "Shard pods recreated after their shard was drained",
            m.pods_recreated.clone(),
        );
        r.register("failovers", "Replicas promoted to primary, by cause", m.failovers.clone());
        r.register(
            "last_failover_recovery_seconds",
            "Time to recover of the newest failover: first sign of trouble to the promotion push",
            m.last_recovery_seconds.clone(),
        );
        r.register(
            "replication_lag_bytes",
            "Primary replication offset minus the replica's, per replica",
            m.replication_lag.clone(),
        );
        Metrics { registry: r, ..m }
    }
}

impl Metrics {
    /// Counts one failover by cause and sets the last time to recover.
    pub fn record_failover(&self, f: &crate::controlplane::failover::FailoverRecord) {
        use crate::controlplane::failover::Cause;
        let cause = match f.cause {
            Cause::Planned => "planned",
            Cause::PrimaryFailed => "primary_failed",
            Cause::PrimaryFenced => "primary_fenced",
            Cause::PrimaryReplaced => "primary_replaced",
            Cause::Requested(_) => "requested",
        };
        self.failovers.get_or_create(&FailoverLabels { cause: cause.into() }).inc();
        self.last_recovery_seconds.set(f.recovered_in.as_secs_f64());
    }

    /// Records the failovers and replica lags of one control-plane step of `cluster`.
    pub fn record_replication(&self, cluster: &str, r: &crate::controlplane::driver::StepReport) {
        for f in &r.failovers {
            self.record_failover(f);
        }
        let now: Vec<ReplicaLabels> = r
            .replica_lags()
            .into_iter()
            .map(|l| {
                let labels = ReplicaLabels { cluster: cluster.into(), node: l.addr.to_string() };
                self.replication_lag.get_or_create(&labels).set(l.lag_bytes as i64);
                labels
            })
            .collect();
        let mut series = self.lag_series.lock().unwrap_or_else(|e| e.into_inner());
        for gone in series.get(cluster).into_iter().flatten().filter(|l| !now.contains(l)) {
            self.replication_lag.remove(gone);
        }
        series.insert(cluster.into(), now);
    }
}

impl Metrics {
    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut s = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut s, &self.registry);
        s
    }

    pub fn error(&self, kind: &str) {
        self.errors.get_or_create(&ErrorLabels { kind: kind.into() }).inc();
    }

    pub fn decision(&self, action: &str, applied: bool) {
        self.decisions
            .get_or_create(&DecisionLabels { action: action.into(), applied: applied.to_string() })
            .inc();
    }
}

/// Serves `/metrics`, `/healthz` and `/readyz` on `listener` until the process ends.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    ready: Arc<AtomicBool>,
) -> std::io::Result<()> {
    tracing::info!(addr = ?listener.local_addr().ok(), "serving /metrics, /healthz, /readyz");
    loop {
        let (stream, _) = listener.accept().await?;
        let (metrics, ready) = (metrics.clone(), ready.clone());
        tokio::spawn(async move {
            let svc = service_fn(move |req| respond(req, metrics.clone(), ready.clone()));
            if let Err(e) = http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await {
                tracing::debug!(error = %e, "metrics connection");
            }
        });
    }
}

async fn respond(
    req: Request<Incoming>,
    metrics: Arc<Metrics>,
    ready: Arc<AtomicBool>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (code, body) = match req.uri().path() {
        "/metrics" => (StatusCode::OK, metrics.encode()),
        "/healthz" => (StatusCode::OK, "ok\n".into()),
        "/readyz" if ready.load(Ordering::Relaxed) => (StatusCode::OK, "ok\n".into()),
        "/readyz" => (StatusCode::SERVICE_UNAVAILABLE, "starting\n".into()),
        _ => (StatusCode::NOT_FOUND, "not found\n".into()),
    };
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = code;
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_every_family_with_the_prefix() {
        let m = Metrics::default();
        m.reconciles.inc();
        m.error("kube");
        m.decision("scale_out", true);
        let text = m.encode();
        for name in [
            "shoal_operator_reconciles_total 1",
            "shoal_operator_reconcile_errors_total{kind=\"kube\"} 1",
            "shoal_operator_autoscale_decisions_total{action=\"scale_out\",applied=\"true\"} 1",
            "shoal_operator_reconcile_duration_seconds_bucket",
            "shoal_operator_slots_moved_total 0",
        ] {
            assert!(text.contains(name), "{name} missing from:\n{text}");
        }
    }

    #[tokio::test]
    async fn http_endpoints_answer() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let ready = Arc::new(AtomicBool::new(false));
        let server = tokio::spawn(serve(listener, Arc::new(Metrics::default()), ready.clone()));
        let get = |path: &'static str| async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            s.write_all(req.as_bytes()).await.unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).await.unwrap();
            out
        };
        let r = tokio::time::timeout(std::time::Duration::from_secs(10), async {
            assert!(get("/healthz").await.starts_with("HTTP/1.1 200"));
            assert!(get("/readyz").await.starts_with("HTTP/1.1 503"));
            ready.store(true, Ordering::Relaxed);
            assert!(get("/readyz").await.starts_with("HTTP/1.1 200"));
            assert!(get("/metrics").await.contains("shoal_operator_reconciles_total"));
            assert!(get("/nope").await.starts_with("HTTP/1.1 404"));
        })
        .await;
        server.abort();
        r.unwrap();
    }
}
