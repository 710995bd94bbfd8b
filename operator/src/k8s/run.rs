//! `shoal-operator run`: the operator inside Kubernetes.
//!
//! Several replicas may run; a `coordination.k8s.io` Lease picks the one that reconciles. The
//! others serve health and metrics and wait. A leader that loses its lease exits at once rather
//! than risk two control planes pushing topologies (Kubernetes restarts it as a standby) — the
//! same choice client-go's leader election makes with `ReleaseOnCancel` off.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::runtime::controller::{Config as ControllerConfig, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};

use super::control::driver_factory;
use super::crd::ShoalCluster;
use super::metrics::{serve, Metrics};
use super::reconcile::{error_policy, reconcile, Context};
use super::resources::Defaults;

/// Settings of `shoal-operator run` (flags and environment, set by the Helm chart).
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// Watch one namespace only (`None`: all namespaces).
    pub namespace: Option<String>,
    /// Where `/metrics`, `/healthz` and `/readyz` listen.
    pub metrics_addr: SocketAddr,
    /// Take a Lease before reconciling.
    pub leader_election: bool,
    /// Namespace and name of the Lease.
    pub lease_namespace: String,
    pub lease_name: String,
    /// This replica's identity in the Lease (the pod name).
    pub identity: String,
    /// Clusters reconciled concurrently.
    pub concurrency: u16,
    pub defaults: Defaults,
}

/// Why `run` stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("connecting to the Kubernetes API: {0}")]
    Client(#[source] kube::Error),
    #[error("binding the metrics endpoint {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("leader election: {0}")]
    Lease(#[source] kube_lease_manager::LeaseManagerError),
    #[error("lost the leader lease; exiting so a standby can take over")]
    LostLease,
}

/// The environment variable with the labels that select the operator's own pods, as
/// `key=value,key=value` (the chart sets its selector labels there).
pub const POD_LABELS_ENV: &str = "SHOAL_OPERATOR_POD_LABELS";

/// Parses `key=value,key=value` (whitespace around items is ignored; empty items are skipped).
pub fn parse_labels(s: &str) -> Result<BTreeMap<String, String>, String> {
    s.split(',')
        .map(str::trim)
        .filter(|kv| !kv.is_empty())
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.trim().to_string())),
            _ => Err(format!("{kv:?} is not key=value")),
        })
        .collect()
}

/// Where the operator's own pods are, for the node NetworkPolicies: `POD_NAMESPACE` (the
/// downward API; else the lease namespace) and [`POD_LABELS_ENV`]. Without labels, the policies
/// admit every pod of the operator's namespace, and the log says so.
fn with_operator_identity(mut d: Defaults, lease_namespace: &str) -> Defaults {
    d.operator_namespace = std::env::var("POD_NAMESPACE").unwrap_or_else(|_| lease_namespace.to_string());
    d.operator_pod_labels = match std::env::var(POD_LABELS_ENV).map(|s| parse_labels(&s)) {
        Ok(Ok(labels)) => labels,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "{POD_LABELS_ENV} is malformed; node NetworkPolicies admit every pod of the operator's namespace");
            BTreeMap::new()
        }
        Err(_) => BTreeMap::new(),
    };
    if d.operator_pod_labels.is_empty() {
        tracing::info!(namespace = %d.operator_namespace, "operator pod labels unknown; node NetworkPolicies admit every pod of the operator's namespace");
    }
    d
}

/// Runs until SIGTERM or Ctrl-C (or a lost lease).
pub async fn run(cfg: RunConfig) -> Result<(), RunError> {
    let client = Client::try_default().await.map_err(RunError::Client)?;
    let metrics = Arc::new(Metrics::default());
    let ready = Arc::new(AtomicBool::new(false));
    let listener = tokio::net::TcpListener::bind(cfg.metrics_addr)
        .await
        .map_err(|source| RunError::Bind { addr: cfg.metrics_addr, source })?;
    tokio::spawn(serve(listener, metrics.clone(), ready.clone()));

    // A standby is healthy and ready: readiness only gates the metrics Service, not the lease.
    ready.store(true, Ordering::Relaxed);
    let mut lease = None;
    if cfg.leader_election {
        let manager = kube_lease_manager::LeaseManagerBuilder::new(client.clone(), &cfg.lease_name)
            .with_namespace(&cfg.lease_namespace)
            .with_identity(&cfg.identity)
            .with_duration(15)
            .with_grace(5)
            .build()
            .await
            .map_err(RunError::Lease)?;
        let (mut rx, task) = manager.watch().await;
        tracing::info!(lease = %cfg.lease_name, identity = %cfg.identity, "waiting for the leader lease");
        while !*rx.borrow_and_update() {
            if rx.changed().await.is_err() {
                return Err(RunError::LostLease);
            }
        }
        tracing::info!("leader lease acquired");
        lease = Some((rx, task));
    }

    let defaults = with_operator_identity(cfg.defaults.clone(), &cfg.lease_namespace);
    let ctx = Arc::new(Context::new(client.clone(), metrics, defaults, driver_factory()));
    let clusters: Api<ShoalCluster> = match &cfg.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    macro_rules! owned {
        ($k:ty) => {
            match &cfg.namespace {
                Some(ns) => Api::<$k>::namespaced(client.clone(), ns),
                None => Api::<$k>::all(client.clone()),
            }
        };
    }
    let selector = watcher::Config::default().labels("app.kubernetes.io/managed-by=shoal-operator");
    let controller = Controller::new(clusters, watcher::Config::default().any_semantic())
        .with_config(ControllerConfig::default().concurrency(cfg.concurrency))
        .owns(owned!(StatefulSet), selector.clone())
        .owns(owned!(Service), selector.clone())
        .owns(owned!(ConfigMap), selector.clone())
        .owns(owned!(PodDisruptionBudget), selector.clone())
        .owns(owned!(NetworkPolicy), selector)
        // A node pod that (re)starts is a reason to reconcile now: push it the topology and set
        // its readiness gate without waiting for the periodic requeue.
        .watches(
            owned!(Pod),
            watcher::Config::default().labels("app.kubernetes.io/name=shoal"),
            |pod: Pod| {
                let cluster = pod.labels().get("app.kubernetes.io/instance")?.clone();
                Some(ObjectRef::<ShoalCluster>::new(&cluster).within(&pod.namespace()?))
            },
        )
        .shutdown_on_signal()
        .run(reconcile, error_policy, ctx)
        .for_each(|r| async move {
            if let Err(e) = r {
                tracing::debug!(error = %e, "controller");
            }
        });
    match lease {
        None => controller.await,
        Some((mut rx, _task)) => {
            let lost = async move {
                loop {
                    if rx.changed().await.is_err() || !*rx.borrow() {
                        return;
                    }
                }
            };
            tokio::select! {
                _ = controller => {}
                _ = lost => return Err(RunError::LostLease),
            }
        }
    }
    tracing::info!("controller stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_labels;

    #[test]
    fn pod_labels_parse_from_the_selector_syntax() {
        let l = parse_labels("app.kubernetes.io/name=shoal-operator, app.kubernetes.io/instance=ops,")
            .expect("ok");
        assert_eq!(l.len(), 2);
        assert_eq!(l["app.kubernetes.io/instance"], "ops");
        assert_eq!(parse_labels("").expect("empty"), Default::default());
        assert!(parse_labels("justakey").is_err());
        assert!(parse_labels("=v").is_err());
    }
}
