//! Pure builders of the objects a `ShoalCluster` owns: one StatefulSet per shard (so a drained
//! shard is removed whole, never by shrinking a shared StatefulSet from the top), a headless
//! Service for the per-pod DNS names the topology uses as endpoints, a client Service, a
//! ConfigMap with the node config, a PodDisruptionBudget, an optional ServiceMonitor and an
//! optional NetworkPolicy.
//!
//! No I/O and no clock: the same spec always gives the same objects, which the golden tests pin
//! down and server-side apply turns into no-ops on the API server.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec, StatefulSetUpdateStrategy};
use k8s_openapi::api::core::v1::{
    Affinity, Capabilities, ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource,
    EnvVar, EnvVarSource, HTTPGetAction, ObjectFieldSelector, PodAffinityTerm, PodAntiAffinity,
    PodReadinessGate, PodSecurityContext, PodSpec, PodTemplateSpec, Probe, SeccompProfile, SecretKeySelector,
    SecurityContext, Service, ServicePort, ServiceSpec as K8sServiceSpec, TopologySpreadConstraint, Volume,
    VolumeMount, WeightedPodAffinityTerm,
};
use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort,
    NetworkPolicySpec as K8sNetworkPolicySpec,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::DynamicObject;
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Resource, ResourceExt};

use super::crd::ShoalCluster;
use crate::controlplane::model::{NodeAddr, ShardId};

/// Port of each node's HTTP endpoint: `/healthz` for the kubelet's probes (always on), and
/// `/metrics`, which the Services and the ServiceMonitor expose only when metrics are enabled.
pub const METRICS_PORT: i32 = 9121;
/// The node's health route: 200 only while the executor answers (a hung executor fails it).
pub const HEALTH_PATH: &str = "/healthz";
/// The pod readiness gate the operator sets: true while the pod's shard owns slots.
pub const SLOTS_READINESS_GATE: &str = "shoal.dev/slots-owned";
/// Label holding the shard ordinal.
pub const SHARD_LABEL: &str = "shoal.dev/shard";
/// Where the node keeps its data, node id and last topology.
const DATA_DIR: &str = "/data";
const CONFIG_DIR: &str = "/etc/shoal";

/// Defaults that come from the operator's installation rather than the resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Defaults {
    /// The shoal-node image when the spec names none.
    pub node_image: String,
    /// The cluster DNS domain (`cluster.local` on EKS).
    pub cluster_domain: String,
    /// The namespace the operator's pods run in (node NetworkPolicies admit them).
    pub operator_namespace: String,
    /// The labels that select the operator's pods (the chart's selector labels); empty: every
    /// pod of `operator_namespace`.
    pub operator_pod_labels: BTreeMap<String, String>,
}

impl Default for Defaults {
    /// The chart's defaults (release `shoal-operator` in `shoal-system`).
    fn default() -> Self {
        Defaults {
            node_image: format!("ghcr.io/shoal-dev/shoal-node:{}", env!("CARGO_PKG_VERSION")),
            cluster_domain: "cluster.local".into(),
            operator_namespace: "shoal-system".into(),
            operator_pod_labels: [
                ("app.kubernetes.io/name", "shoal-operator"),
                ("app.kubernetes.io/instance", "shoal-operator"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        }
    }
}

/// Names of everything a cluster owns, derived from the cluster's name.
pub struct Names<'a> {
    pub cluster: &'a str,
    pub namespace: &'a str,
}

impl<'a> Names<'a> {
    pub fn of(sc: &'a ShoalCluster) -> Names<'a> {
        Names {
            cluster: sc.metadata.name.as_deref().unwrap_or(""),
            namespace: sc.metadata.namespace.as_deref().unwrap_or("default"),
        }
    }
    /// The headless Service behind the per-pod DNS names.
    pub fn headless(&self) -> String {
        format!("{}-nodes", self.cluster)
    }
    /// The client Service.
    pub fn client(&self) -> String {
        self.cluster.to_string()
    }
    pub fn config(&self) -> String {
        format!("{}-config", self.cluster)
    }
    pub fn statefulset(&self, ordinal: u32) -> String {
        format!("{}-{ordinal}", self.cluster)
    }
    /// The primary pod of shard `ordinal` (the StatefulSet's pod 0).
    pub fn pod(&self, ordinal: u32) -> String {
        format!("{}-{ordinal}-0", self.cluster)
    }
    /// Pod `member` of shard `ordinal`.
    pub fn member_pod(&self, ordinal: u32, member: u32) -> String {
        format!("{}-{ordinal}-{member}", self.cluster)
    }
    /// The stable DNS name of shard `ordinal`'s primary.
    pub fn pod_fqdn(&self, ordinal: u32, domain: &str) -> String {
        self.member_fqdn(ordinal, 0, domain)
    }
    /// The stable DNS name of pod `member` of shard `ordinal` (0 starts as the primary).
    pub fn member_fqdn(&self, ordinal: u32, member: u32, domain: &str) -> String {
        format!("{}-{ordinal}-{member}.{}.{}.svc.{domain}", self.cluster, self.headless(), self.namespace)
    }
    /// The label selector of every node pod of the cluster.
    pub fn selector(&self) -> String {
        format!("app.kubernetes.io/name=shoal,app.kubernetes.io/instance={}", self.cluster)
    }
}

/// The control plane's view of shard `ordinal`: its id and its primary's endpoint. Endpoints are
/// DNS names (in both `ip` and `hostname`), so a pod that comes back with a new IP is the same node.
pub fn desired_shard(sc: &ShoalCluster, ordinal: u32, d: &Defaults) -> (ShardId, NodeAddr) {
    let n = Names::of(sc);
    let host = n.pod_fqdn(ordinal, &d.cluster_domain);
    let id = ShardId::for_ordinal(&format!("{}/{}", n.namespace, n.cluster), ordinal);
    (id, NodeAddr { ip: host.clone(), hostname: Some(host), port: sc.spec.port as u16 })
}

/// Every node of shard `ordinal`: its StatefulSet's pods 0..=replicasPerShard, by DNS name.
/// Pod 0 starts as the primary; after a failover any of them may be.
pub fn desired_nodes(sc: &ShoalCluster, ordinal: u32, d: &Defaults) -> Vec<NodeAddr> {
    (0..=sc.spec.replicas_per_shard.max(0) as u32).map(|m| member_addr(sc, ordinal, m, d)).collect()
}

/// The endpoint of pod `member` of shard `ordinal` (its DNS name, as the node announces it).
pub fn member_addr(sc: &ShoalCluster, ordinal: u32, member: u32, d: &Defaults) -> NodeAddr {
    let host = Names::of(sc).member_fqdn(ordinal, member, &d.cluster_domain);
    NodeAddr { ip: host.clone(), hostname: Some(host), port: sc.spec.port as u16 }
}

fn selector_labels(cluster: &str) -> BTreeMap<String, String> {
    [("app.kubernetes.io/name", "shoal"), ("app.kubernetes.io/instance", cluster)]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn labels(cluster: &str, component: &str) -> BTreeMap<String, String> {
    let mut l = selector_labels(cluster);
    l.insert("app.kubernetes.io/component".into(), component.into());
    l.insert("app.kubernetes.io/managed-by".into(), "shoal-operator".into());
    l
}

fn owner(sc: &ShoalCluster) -> Vec<OwnerReference> {
    sc.controller_owner_ref(&()).into_iter().collect()
}

/// Metadata of an object the cluster owns (labels, owner reference), for other modules.
pub fn owned_meta(sc: &ShoalCluster, name: String, component: &str) -> ObjectMeta {
    meta(sc, name, component)
}

fn meta(sc: &ShoalCluster, name: String, component: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: sc.namespace(),
        labels: Some(labels(&sc.name_any(), component)),
        owner_references: Some(owner(sc)),
        ..Default::default()
    }
}

/// Bytes in a Kubernetes quantity (`2Gi`, `512M`, `1.5Gi`, `1000000`); `None` if unparseable.
pub fn quantity_bytes(q: &str) -> Option<u64> {
    const SUFFIXES: &[(&str, f64)] = &[
        ("Ki", 1024.0),
        ("Mi", 1048576.0),
        ("Gi", 1073741824.0),
        ("Ti", 1099511627776.0),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
    ];
    let q = q.trim();
    let (num, mul) =
        SUFFIXES.iter().find_map(|(s, m)| q.strip_suffix(s).map(|n| (n, *m))).unwrap_or((q, 1.0));
    let v: f64 = num.parse().ok()?;
    (v >= 0.0).then_some((v * mul) as u64)
}

/// The node's `maxmemory` in bytes, from `maxmemory`, or a percentage (default 75) of the
/// container memory limit; `None` when neither gives one (no limit).
pub fn maxmemory_bytes(sc: &ShoalCluster) -> Option<u64> {
    if let Some(m) = &sc.spec.maxmemory {
        let lower = m.to_ascii_lowercase();
        let (num, mul) = [
            ("gb", 1u64 << 30),
            ("g", 1 << 30),
            ("mb", 1 << 20),
            ("m", 1 << 20),
            ("kb", 1 << 10),
            ("k", 1 << 10),
        ]
        .iter()
        .find_map(|(s, m)| lower.strip_suffix(s).map(|n| (n.to_string(), *m)))
        .unwrap_or((lower.clone(), 1));
        return num.parse::<u64>().ok().map(|n| n * mul);
    }
    let limit = sc.spec.resources.as_ref()?.limits.as_ref()?.get("memory")?;
    let pct = u64::try_from(sc.spec.maxmemory_percent.unwrap_or(75)).ok()?;
    Some(quantity_bytes(&limit.0)? / 100 * pct)
}

/// The node config file shared by every node of the cluster.
pub fn node_config(sc: &ShoalCluster) -> String {
    let s = &sc.spec;
    let mut lines = vec!["# Generated by shoal-operator; edit the ShoalCluster instead.".to_string()];
    match &s.tls {
        Some(tls) => lines.extend(super::security::tls_config_lines(tls, s.port)),
        None => lines.push(format!("port {}", s.port)),
    }
    lines.extend([
        "bind * -::*".into(),
        "protected-mode no".into(),
        "cluster-enabled yes".into(),
        "cluster-preferred-endpoint-type hostname".into(),
        format!("dir {DATA_DIR}"),
        format!("maxmemory-policy {}", s.maxmemory_policy.as_str()),
        // Users from spec.users and the operator's own (see `security`).
        format!("aclfile {}/{}", super::security::ACL_DIR, super::security::ACL_FILE),
    ]);
    if let Some(b) = maxmemory_bytes(sc) {
        lines.push(format!("maxmemory {b}"));
    }
    let io = s.io_threads.as_ref().map_or(1, |io| io.min);
    lines.push(format!("io-threads {io}"));
    // Always on, whatever `metrics.enabled` says: the liveness and readiness probes need
    // `/healthz`, which the node serves on this port only. It binds the first `bind` address
    // (`*`), so the kubelet reaches it on the pod IP; `metrics-bind` is reserved for that reason.
    lines.push(format!("metrics-port {METRICS_PORT}"));
    for (k, v) in &s.config {
        lines.push(format!("{k} {v}"));
    }
    lines.push(String::new());
    lines.join("\n")
}

/// A short, stable hash of the node config, put on the pod template so a changed config is
/// visible on the StatefulSet (the pods pick it up when they are next recreated).
pub fn config_hash(config: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in config.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

pub fn config_map(sc: &ShoalCluster) -> ConfigMap {
    let n = Names::of(sc);
    ConfigMap {
        metadata: meta(sc, n.config(), "config"),
        data: Some([("shoal.conf".to_string(), node_config(sc))].into()),
        ..Default::default()
    }
}

fn port(name: &str, port: i32) -> ServicePort {
    ServicePort {
        name: Some(name.into()),
        port,
        target_port: Some(IntOrString::String(name.into())),
        protocol: Some("TCP".into()),
        ..Default::default()
    }
}

fn service_ports(sc: &ShoalCluster) -> Vec<ServicePort> {
    let mut ports = vec![port("client", sc.spec.port)];
    if sc.spec.metrics.as_ref().is_some_and(|m| m.enabled) {
        ports.push(port("metrics", METRICS_PORT));
    }
    ports
}

/// The headless Service: per-pod DNS names for every node, ready or not (a new shard's node is
/// not Ready until it owns slots, but the control plane must reach it to give it some).
pub fn headless_service(sc: &ShoalCluster) -> Service {
    let n = Names::of(sc);
    Service {
        metadata: meta(sc, n.headless(), "nodes"),
        spec: Some(K8sServiceSpec {
            cluster_ip: Some("None".into()),
            publish_not_ready_addresses: Some(true),
            selector: Some(selector_labels(n.cluster)),
            ports: Some(service_ports(sc)),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The client Service: clients bootstrap here (Ready pods own slots) and follow `MOVED`.
pub fn client_service(sc: &ShoalCluster) -> Service {
    let n = Names::of(sc);
    let svc = sc.spec.service.clone().unwrap_or_default();
    let mut metadata = meta(sc, n.client(), "client");
    if !svc.annotations.is_empty() {
        metadata.annotations = Some(svc.annotations.clone());
    }
    Service {
        metadata,
        spec: Some(K8sServiceSpec {
            type_: Some(svc.type_.as_str().into()),
            selector: Some(selector_labels(n.cluster)),
            ports: Some(vec![port("client", sc.spec.port)]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The label [`pod_disruption_budget`] selects on: `"true"` while the pod's node serves slots
/// (kept by `pods::sync_serving`).
pub const SERVING_LABEL: &str = "shoal.dev/serving";

/// No voluntary eviction (`kubectl drain`, node group upgrades, Karpenter, cluster-autoscaler)
/// of a pod whose node serves slots: without replicas, evicting it loses its shard's keys and
/// leaves its slots unserved until the pod is back.
///
/// The budget covers only pods labelled [`SERVING_LABEL`]`=true`, with `maxUnavailable: 0`, so
/// the eviction API answers 429 and the drain keeps retrying. Meanwhile the operator sees the
/// cordon or removal taint (`rollout`), drains the shard's slots to the other shards and sets
/// the label to `"false"`; the pod then leaves the budget's selection and the next retry evicts
/// it. Pods that serve nothing (new, draining, drained) are never held up.
///
/// `unhealthyPodEvictionPolicy: AlwaysAllow`: a pod that is not Ready (its `/healthz` fails, or
/// it owns no slots) serves no client, so blocking a Node drain on it protects nothing; with the
/// default `IfHealthyBudget` a single wedged or crash-looping pod whose label is stale (operator
/// down) would block every drain of its Node until someone intervened.
pub fn pod_disruption_budget(sc: &ShoalCluster) -> PodDisruptionBudget {
    let n = Names::of(sc);
    let mut match_labels = selector_labels(n.cluster);
    match_labels.insert(SERVING_LABEL.into(), "true".into());
    PodDisruptionBudget {
        metadata: meta(sc, n.client(), "nodes"),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(0)),
            selector: Some(LabelSelector { match_labels: Some(match_labels), ..Default::default() }),
            unhealthy_pod_eviction_policy: Some("AlwaysAllow".into()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The operator's pods as a NetworkPolicy peer: its namespace by the label every namespace
/// carries, and its pods by their labels when known.
fn operator_peer(d: &Defaults) -> NetworkPolicyPeer {
    NetworkPolicyPeer {
        namespace_selector: Some(LabelSelector {
            match_labels: Some(
                [("kubernetes.io/metadata.name".to_string(), d.operator_namespace.clone())].into(),
            ),
            ..Default::default()
        }),
        pod_selector: (!d.operator_pod_labels.is_empty()).then(|| LabelSelector {
            match_labels: Some(d.operator_pod_labels.clone()),
            ..Default::default()
        }),
        ip_block: None,
    }
}

/// The node pods' NetworkPolicy, when `networkPolicy.enabled` (see `NodeNetworkPolicySpec`):
/// ingress to the client port from the listed clients, the cluster's own node pods (migrations
/// between shards use the client port) and the operator; to the metrics port from the listed
/// scrapers and the operator. Nothing else reaches the node pods; egress is left alone.
pub fn network_policy(sc: &ShoalCluster, d: &Defaults) -> Option<NetworkPolicy> {
    let np = sc.spec.network_policy.as_ref().filter(|p| p.enabled)?;
    let n = Names::of(sc);
    let nodes = LabelSelector { match_labels: Some(selector_labels(n.cluster)), ..Default::default() };
    let tcp = |port| {
        Some(vec![NetworkPolicyPort {
            port: Some(IntOrString::Int(port)),
            protocol: Some("TCP".into()),
            end_port: None,
        }])
    };
    let from_nodes = NetworkPolicyPeer { pod_selector: Some(nodes.clone()), ..Default::default() };
    let mut clients = vec![from_nodes, operator_peer(d)];
    clients.extend(np.clients.iter().cloned());
    let mut scrapers = vec![operator_peer(d)];
    scrapers.extend(np.metrics.iter().cloned());
    Some(NetworkPolicy {
        metadata: meta(sc, n.client(), "nodes"),
        spec: Some(K8sNetworkPolicySpec {
            pod_selector: Some(nodes),
            policy_types: Some(vec!["Ingress".into()]),
            ingress: Some(vec![
                NetworkPolicyIngressRule { from: Some(clients), ports: tcp(sc.spec.port) },
                NetworkPolicyIngressRule { from: Some(scrapers), ports: tcp(METRICS_PORT) },
            ]),
            egress: None,
        }),
    })
}

fn default_spread(cluster: &str) -> Vec<TopologySpreadConstraint> {
    ["topology.kubernetes.io/zone", "kubernetes.io/hostname"]
        .into_iter()
        .map(|key| TopologySpreadConstraint {
            max_skew: 1,
            topology_key: key.into(),
            when_unsatisfiable: "ScheduleAnyway".into(),
            label_selector: Some(LabelSelector {
                match_labels: Some(selector_labels(cluster)),
                ..Default::default()
            }),
            ..Default::default()
        })
        .collect()
}

fn node_container(sc: &ShoalCluster, ordinal: u32, d: &Defaults) -> Container {
    let n = Names::of(sc);
    // Each pod announces its own DNS name: `$(POD_NAME)` is expanded by the kubelet, so pods of
    // one StatefulSet (a primary and its replicas) share the template.
    let _ = ordinal;
    let mut args = vec![
        format!("{CONFIG_DIR}/shoal.conf"),
        "--cluster-announce-hostname".into(),
        format!("$(POD_NAME).{}.{}.svc.{}", n.headless(), n.namespace, d.cluster_domain),
    ];
    let mut env = vec![EnvVar {
        name: "POD_NAME".into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector { field_path: "metadata.name".into(), ..Default::default() }),
            ..Default::default()
        }),
        ..Default::default()
    }];
    if let Some(auth) = &sc.spec.auth {
        env.push(EnvVar {
            name: "SHOAL_PASSWORD".into(),
            value_from: Some(EnvVarSource {
                secret_key_ref: Some(SecretKeySelector {
                    name: auth.secret_ref.name.clone(),
                    key: auth.secret_ref.key.clone(),
                    optional: Some(false),
                }),
                ..Default::default()
            }),
            ..Default::default()
        });
        args.extend(["--requirepass".into(), "$(SHOAL_PASSWORD)".into()]);
    }
    let ports = [("client", sc.spec.port), ("metrics", METRICS_PORT)]
        .into_iter()
        .map(|(name, port)| ContainerPort {
            name: Some(name.into()),
            container_port: port,
            protocol: Some("TCP".into()),
            ..Default::default()
        })
        .collect();
    // `/healthz` rather than a TCP connect: the I/O threads keep accepting connections while the
    // executor is stuck, and only `/healthz` asks the executor. It may wait up to 2 s for the
    // executor's answer, and the endpoint serves one connection at a time (a scrape can hold it
    // briefly), hence timeouts well above the kubelet's default of 1 s.
    let health = |initial, period, timeout, failures| Probe {
        http_get: Some(HTTPGetAction {
            path: Some(HEALTH_PATH.into()),
            port: IntOrString::String("metrics".into()),
            scheme: Some("HTTP".into()),
            ..Default::default()
        }),
        initial_delay_seconds: Some(initial),
        period_seconds: Some(period),
        timeout_seconds: Some(timeout),
        failure_threshold: Some(failures),
        ..Default::default()
    };
    Container {
        name: "node".into(),
        image: Some(sc.spec.image.clone().unwrap_or_else(|| d.node_image.clone())),
        image_pull_policy: sc.spec.image_pull_policy.map(|p| p.as_str().into()),
        args: Some(args),
        env: (!env.is_empty()).then_some(env),
        ports: Some(ports),
        resources: sc.spec.resources.clone(),
        // A minute of failed checks restarts the container (its `emptyDir` stays); a few seconds
        // take the pod out of the client Service's endpoints.
        liveness_probe: Some(health(10, 10, 5, 6)),
        readiness_probe: Some(health(2, 5, 4, 3)),
        volume_mounts: Some(
            vec![
                VolumeMount {
                    name: "config".into(),
                    mount_path: CONFIG_DIR.into(),
                    read_only: Some(true),
                    ..Default::default()
                },
                VolumeMount { name: "data".into(), mount_path: DATA_DIR.into(), ..Default::default() },
            ]
            .into_iter()
            .chain(super::security::mounts(sc))
            .collect(),
        ),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            capabilities: Some(Capabilities { drop: Some(vec!["ALL".into()]), ..Default::default() }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Keeps a shard's pods apart: with replicas, each pod prefers a zone and a host without
/// another pod of its shard. Preferred, not required, by hostname too: a required rule leaves a
/// replica Pending on a cluster with fewer Nodes than pods per shard (a one-Node dev cluster, a
/// Node pool scaled down), and a Pending replica protects nothing, while the control plane
/// never promotes a replica that is not in sync anyway. Users who want it required set
/// `scheduling.affinity` (which replaces this).
fn shard_anti_affinity(cluster: &str, ordinal: u32) -> Affinity {
    let mut labels = selector_labels(cluster);
    labels.insert(SHARD_LABEL.into(), ordinal.to_string());
    let term = |key: &str, weight| WeightedPodAffinityTerm {
        weight,
        pod_affinity_term: PodAffinityTerm {
            label_selector: Some(LabelSelector { match_labels: Some(labels.clone()), ..Default::default() }),
            topology_key: key.into(),
            ..Default::default()
        },
    };
    Affinity {
        pod_anti_affinity: Some(PodAntiAffinity {
            preferred_during_scheduling_ignored_during_execution: Some(vec![
                term("kubernetes.io/hostname", 100),
                term("topology.kubernetes.io/zone", 50),
            ]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Shard `ordinal`: a StatefulSet of one primary and `replicasPerShard` replicas.
///
/// `OnDelete` updates: without replicas, restarting a node drops its shard's keys, so a changed
/// template must not roll every shard at once; pods pick changes up when they are recreated.
pub fn statefulset(sc: &ShoalCluster, ordinal: u32, d: &Defaults) -> StatefulSet {
    let n = Names::of(sc);
    let mut pod_labels = labels(n.cluster, "node");
    pod_labels.insert(SHARD_LABEL.into(), ordinal.to_string());
    let mut match_labels = selector_labels(n.cluster);
    match_labels.insert(SHARD_LABEL.into(), ordinal.to_string());
    let sched = sc.spec.scheduling.clone().unwrap_or_default();
    let config = node_config(sc);
    let data_limit = maxmemory_bytes(sc).map(|b| Quantity(format!("{}", b.saturating_mul(2).max(64 << 20))));
    let mut metadata = meta(sc, n.statefulset(ordinal), "node");
    metadata.labels.get_or_insert_default().insert(SHARD_LABEL.into(), ordinal.to_string());
    StatefulSet {
        metadata,
        spec: Some(StatefulSetSpec {
            replicas: Some(1 + sc.spec.replicas_per_shard.max(0)),
            service_name: Some(n.headless()),
            pod_management_policy: Some("Parallel".into()),
            update_strategy: Some(StatefulSetUpdateStrategy {
                type_: Some("OnDelete".into()),
                rolling_update: None,
            }),
            selector: LabelSelector { match_labels: Some(match_labels), ..Default::default() },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    annotations: Some([("shoal.dev/config-hash".to_string(), config_hash(&config))].into()),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![node_container(sc, ordinal, d)],
                    readiness_gates: Some(vec![PodReadinessGate {
                        condition_type: SLOTS_READINESS_GATE.into(),
                    }]),
                    affinity: sched.affinity.or_else(|| {
                        (sc.spec.replicas_per_shard > 0).then(|| shard_anti_affinity(n.cluster, ordinal))
                    }),
                    tolerations: (!sched.tolerations.is_empty()).then_some(sched.tolerations),
                    node_selector: (!sched.node_selector.is_empty()).then_some(sched.node_selector),
                    topology_spread_constraints: Some(
                        sched.topology_spread_constraints.unwrap_or_else(|| default_spread(n.cluster)),
                    ),
                    priority_class_name: sched.priority_class_name,
                    image_pull_secrets: (!sc.spec.image_pull_secrets.is_empty())
                        .then(|| sc.spec.image_pull_secrets.clone()),
                    automount_service_account_token: Some(false),
                    enable_service_links: Some(false),
                    termination_grace_period_seconds: Some(30),
                    security_context: Some(PodSecurityContext {
                        run_as_non_root: Some(true),
                        run_as_user: Some(65532),
                        run_as_group: Some(65532),
                        fs_group: Some(65532),
                        seccomp_profile: Some(SeccompProfile {
                            type_: "RuntimeDefault".into(),
                            localhost_profile: None,
                        }),
                        ..Default::default()
                    }),
                    volumes: Some(
                        vec![
                            Volume {
                                name: "config".into(),
                                config_map: Some(ConfigMapVolumeSource {
                                    name: n.config(),
                                    ..Default::default()
                                }),
                                ..Default::default()
                            },
                            Volume {
                                name: "data".into(),
                                empty_dir: Some(EmptyDirVolumeSource {
                                    size_limit: data_limit,
                                    medium: None,
                                }),
                                ..Default::default()
                            },
                        ]
                        .into_iter()
                        .chain(super::security::volumes(sc))
                        .collect(),
                    ),
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The prometheus-operator ServiceMonitor kind (not in k8s-openapi).
pub fn service_monitor_resource() -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk("monitoring.coreos.com", "v1", "ServiceMonitor"))
}

/// The ServiceMonitor, when `metrics.serviceMonitor.enabled` (and metrics are on).
pub fn service_monitor(sc: &ShoalCluster) -> Option<DynamicObject> {
    let m = sc.spec.metrics.as_ref().filter(|m| m.enabled)?;
    let smon = m.service_monitor.as_ref().filter(|s| s.enabled)?;
    let n = Names::of(sc);
    let mut metadata = meta(sc, n.client(), "metrics");
    metadata.labels.get_or_insert_default().extend(smon.labels.clone());
    let mut endpoint = serde_json::json!({ "port": "metrics", "path": "/metrics" });
    if let Some(i) = &smon.interval {
        endpoint["interval"] = i.clone().into();
    }
    let mut obj = DynamicObject::new(&n.client(), &service_monitor_resource()).within(n.namespace);
    obj.metadata = metadata;
    obj.data = serde_json::json!({
        "spec": {
            "selector": { "matchLabels": labels(n.cluster, "nodes") },
            "endpoints": [endpoint],
        }
    });
    Some(obj)
}
