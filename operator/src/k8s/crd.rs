//! The `ShoalCluster` custom resource (`shoal.dev/v1alpha1`): what a user asks for (spec) and what
//! the operator reports (status).
//!
//! Validation lives in the schema, so the API server refuses a bad spec before the operator ever
//! sees it: bounds through schemars attributes, cross-field and transition rules through CEL
//! (`x-kubernetes-validations`). The rules are evaluated offline in the unit tests with kube's CEL
//! interpreter. `/scale` points at `spec.shards`, so `kubectl scale`, an HPA or KEDA can drive the
//! shard count; the operator's own autoscaler writes the same field through the same subresource.

// `printcolumn(type_ = "integer", ...)` repeated per column reads as a duplicated attribute to clippy.
#![allow(clippy::duplicated_attributes)]

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, LocalObjectReference, ResourceRequirements, Toleration, TopologySpreadConstraint,
};
use k8s_openapi::api::networking::v1::NetworkPolicyPeer;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use super::crd_security::{TlsAuthClients, TlsSpec, UserSpec, RESERVED_USERS};

/// The API group of every Shoal resource.
pub const GROUP: &str = "shoal.dev";

/// Node directives the operator sets itself; `spec.config` may not override them.
pub const RESERVED_DIRECTIVES: &[&str] = &[
    "port",
    "bind",
    "dir",
    "cluster-enabled",
    "cluster-config-file",
    "cluster-announce-hostname",
    "cluster-announce-ip",
    "cluster-preferred-endpoint-type",
    "requirepass",
    "maxmemory",
    "maxmemory-policy",
    "io-threads",
    "daemonize",
    "metrics-port",
    "metrics-bind",
    "aclfile",
    "user",
    "masteruser",
    "masterauth",
    "tls-port",
    "tls-cert-file",
    "tls-key-file",
    "tls-ca-cert-file",
    "tls-auth-clients",
    "tls-cluster",
    "tls-replication",
    "tls-auto-reload-interval",
];

/// A Shoal cache cluster: `shards` primaries that share the 16384 hash slots.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "shoal.dev",
    version = "v1alpha1",
    kind = "ShoalCluster",
    plural = "shoalclusters",
    shortname = "shoal",
    category = "shoal",
    namespaced,
    status = "ShoalClusterStatus",
    derive = "PartialEq",
    doc = "A sharded, Valkey-compatible cache cluster managed by the Shoal operator.",
    scale(
        spec_replicas_path = ".spec.shards",
        status_replicas_path = ".status.shards",
        label_selector_path = ".status.selector"
    ),
    printcolumn(
        name = "Shards",
        type_ = "integer",
        json_path = ".spec.shards",
        description = "Desired shards"
    ),
    printcolumn(
        name = "Current",
        type_ = "integer",
        json_path = ".status.shards",
        description = "Shards that own slots"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Slots", type_ = "integer", json_path = ".status.slotsAssigned", priority = 1),
    printcolumn(name = "Epoch", type_ = "integer", json_path = ".status.epoch", priority = 1),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new(
    "!has(self.autoscaling) || !self.autoscaling.enabled || (self.shards >= self.autoscaling.minShards && self.shards <= self.autoscaling.maxShards)"
).message("with autoscaling enabled, shards must lie within autoscaling.minShards..maxShards"))]
#[x_kube(validation = Rule::new("!(has(self.maxmemory) && has(self.maxmemoryPercent))")
    .message("set either maxmemory or maxmemoryPercent, not both"))]
pub struct ShoalClusterSpec {
    /// Number of shards (primaries). Each shard is one StatefulSet; the hash slots are spread
    /// evenly over the shards and moved, keys included, when this changes.
    #[schemars(range(min = 1, max = 1024))]
    pub shards: i32,

    /// Replicas per shard (0..=5): pods 1..=N of the shard's StatefulSet replicate from its
    /// primary; the control plane promotes one when the primary fails, and rolls the shard in
    /// place, replica first, with a planned failover.
    #[serde(default)]
    #[schemars(range(min = 0, max = 5))]
    pub replicas_per_shard: i32,

    /// The shoal-node image. Default: the image the operator was installed with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,

    /// Image pull policy of the node containers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<PullPolicy>,

    /// Secrets for pulling the node image.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_pull_secrets: Vec<LocalObjectReference>,

    /// Client port of every node. Immutable: every endpoint in the cluster topology uses it.
    #[serde(default = "default_port")]
    #[schemars(range(min = 1, max = 65535))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("port is immutable"))]
    pub port: i32,

    /// CPU and memory of each node container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,

    /// Each node's `maxmemory` (e.g. `2gb`, `512mb`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]+([kKmMgG][bB]?)?$"))]
    pub maxmemory: Option<String>,

    /// Each node's `maxmemory` as a percentage of the container memory limit (default 75 when a
    /// memory limit is set and `maxmemory` is not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 10, max = 95))]
    pub maxmemory_percent: Option<i32>,

    /// Eviction policy when `maxmemory` is reached.
    #[serde(default)]
    pub maxmemory_policy: MaxmemoryPolicy,

    /// I/O threads of each node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub io_threads: Option<IoThreadsSpec>,

    /// Shard autoscaling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaling: Option<AutoscalingSpec>,

    /// Extra node directives (`name: value`), written to the node config file.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[x_kube(validation = Rule::new(
        "self.all(k, !(k in ['port', 'bind', 'dir', 'cluster-enabled', 'cluster-config-file', 'cluster-announce-hostname', 'cluster-announce-ip', 'cluster-preferred-endpoint-type', 'requirepass', 'maxmemory', 'maxmemory-policy', 'io-threads', 'daemonize', 'metrics-port', 'metrics-bind', 'aclfile', 'user', 'masteruser', 'masterauth', 'tls-port', 'tls-cert-file', 'tls-key-file', 'tls-ca-cert-file', 'tls-auth-clients', 'tls-cluster', 'tls-replication', 'tls-auto-reload-interval']))"
    ).message("config may not set a directive the operator manages (port, bind, dir, cluster-*, requirepass, maxmemory*, io-threads, daemonize, metrics-*, aclfile, user, master*, tls-*)"))]
    pub config: BTreeMap<String, String>,

    /// Password of the `default` user (`requirepass`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthSpec>,

    /// ACL users, applied to every node at runtime; a changed password Secret rotates the
    /// password without a restart. Users are managed by name: removing one here deletes it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(validation = Rule::new("self.all(u, self.exists_one(v, v.name == u.name))")
        .message("user names must be unique"))]
    pub users: Vec<UserSpec>,

    /// TLS for clients and between nodes, from a Secret (cert-manager compatible).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSpec>,

    /// Where the node pods run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduling: Option<SchedulingSpec>,

    /// The client Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceSpec>,

    /// Prometheus metrics of the nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<MetricsSpec>,

    /// A NetworkPolicy admitting only the listed peers to the node pods (off by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_policy: Option<NodeNetworkPolicySpec>,
}

fn default_port() -> i32 {
    6379
}

/// When the kubelet pulls the node image.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum PullPolicy {
    Always,
    IfNotPresent,
    Never,
}

impl PullPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            PullPolicy::Always => "Always",
            PullPolicy::IfNotPresent => "IfNotPresent",
            PullPolicy::Never => "Never",
        }
    }
}

/// The node's `maxmemory-policy` values.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum MaxmemoryPolicy {
    /// Refuse writes when full.
    Noeviction,
    /// Evict the least recently used keys (the default: Shoal is a cache).
    #[default]
    AllkeysLru,
    AllkeysLfu,
    AllkeysRandom,
    VolatileLru,
    VolatileLfu,
    VolatileRandom,
    VolatileTtl,
}

impl MaxmemoryPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            MaxmemoryPolicy::Noeviction => "noeviction",
            MaxmemoryPolicy::AllkeysLru => "allkeys-lru",
            MaxmemoryPolicy::AllkeysLfu => "allkeys-lfu",
            MaxmemoryPolicy::AllkeysRandom => "allkeys-random",
            MaxmemoryPolicy::VolatileLru => "volatile-lru",
            MaxmemoryPolicy::VolatileLfu => "volatile-lfu",
            MaxmemoryPolicy::VolatileRandom => "volatile-random",
            MaxmemoryPolicy::VolatileTtl => "volatile-ttl",
        }
    }
}

/// I/O threads of each node. `io-threads` counts the executor (Valkey semantics).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.min <= self.max").message("ioThreads.min must not exceed ioThreads.max"))]
pub struct IoThreadsSpec {
    /// The `io-threads` a node starts with, and the floor when `auto` is on.
    #[serde(default = "one")]
    #[schemars(range(min = 1, max = 128))]
    pub min: i32,
    /// The ceiling when `auto` is on.
    #[serde(default = "four")]
    #[schemars(range(min = 1, max = 128))]
    pub max: i32,
    /// Let the operator tune each node's `io-threads` at run time from its load.
    #[serde(default)]
    pub auto: bool,
}

fn one() -> i32 {
    1
}
fn four() -> i32 {
    4
}

/// Shard autoscaling (target tracking with ElastiCache's semantics, see docs/operator.md).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.minShards <= self.maxShards").message("autoscaling.minShards must not exceed autoscaling.maxShards"))]
#[x_kube(validation = Rule::new("has(self.targetCPUPercent) || has(self.targetMemoryPercent)")
    .message("autoscaling needs targetCPUPercent, targetMemoryPercent or both"))]
pub struct AutoscalingSpec {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default = "one")]
    #[schemars(range(min = 1, max = 1024))]
    pub min_shards: i32,
    #[schemars(range(min = 1, max = 1024))]
    pub max_shards: i32,
    /// Target executor busy ratio of a primary, percent.
    #[serde(rename = "targetCPUPercent", default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 10, max = 95))]
    pub target_cpu_percent: Option<i32>,
    /// Target used memory of a primary as a percentage of its `maxmemory`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 10, max = 95))]
    pub target_memory_percent: Option<i32>,
    /// Seconds after a scale-out before the next scale-out.
    #[serde(default = "scale_out_cooldown")]
    #[schemars(range(min = 0, max = 86400))]
    pub scale_out_cooldown_seconds: i32,
    /// Seconds after any resize before a scale-in.
    #[serde(default = "scale_in_cooldown")]
    #[schemars(range(min = 0, max = 86400))]
    pub scale_in_cooldown_seconds: i32,
    /// Only ever scale out.
    #[serde(default)]
    pub disable_scale_in: bool,
    /// Decide and report in status, but do not resize.
    #[serde(default)]
    pub recommend_only: bool,
}

fn scale_out_cooldown() -> i32 {
    300
}
fn scale_in_cooldown() -> i32 {
    600
}

/// A key of a Secret in the cluster's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    pub name: String,
    #[serde(default = "password_key")]
    pub key: String,
}

fn password_key() -> String {
    "password".into()
}

/// Client authentication.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthSpec {
    /// The Secret key that holds the password (`requirepass`); the operator reads it too.
    pub secret_ref: SecretKeyRef,
}

/// Pod placement.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SchedulingSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// Default: spread the shards over zones and hosts (best effort).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topology_spread_constraints: Option<Vec<TopologySpreadConstraint>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,
}

/// Type of the client Service.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum ServiceType {
    #[default]
    ClusterIP,
    NodePort,
    LoadBalancer,
}

impl ServiceType {
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceType::ClusterIP => "ClusterIP",
            ServiceType::NodePort => "NodePort",
            ServiceType::LoadBalancer => "LoadBalancer",
        }
    }
}

/// The client Service: where cluster clients bootstrap (they follow `MOVED` to per-pod names).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceSpec {
    #[serde(default, rename = "type")]
    pub type_: ServiceType,
    /// e.g. `service.beta.kubernetes.io/aws-load-balancer-scheme: internal`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// Node metrics for Prometheus.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricsSpec {
    /// Expose each node's `/metrics` to Prometheus: the `metrics` port (9121) on the headless
    /// Service, and the ServiceMonitor if asked. Nodes listen on 9121 in any case (the kubelet
    /// probes `/healthz` there), so `/metrics` is reachable on the pod IP even when this is off;
    /// `networkPolicy` restricts who may connect.
    #[serde(default)]
    pub enabled: bool,
    /// Create a prometheus-operator ServiceMonitor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_monitor: Option<ServiceMonitorSpec>,
}

/// A prometheus-operator ServiceMonitor for the nodes.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceMonitorSpec {
    #[serde(default)]
    pub enabled: bool,
    /// Scrape interval, e.g. `30s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]+(ms|s|m|h)$"))]
    pub interval: Option<String>,
    /// Labels the Prometheus instance selects ServiceMonitors by.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// The rule every peer list obeys, as the API server's NetworkPolicy validation would (checked at
/// admission here, so a bad peer cannot fail every later reconcile).
const PEERS_RULE: &str = "self.all(p, has(p.ipBlock) ? !has(p.podSelector) && !has(p.namespaceSelector) : (has(p.podSelector) || has(p.namespaceSelector)))";
const PEERS_MESSAGE: &str = "each peer sets podSelector, namespaceSelector or both, or else ipBlock alone";

/// The node pods' NetworkPolicy. When enabled, the operator applies one NetworkPolicy (named
/// like the cluster) selecting the cluster's node pods, with ingress only:
/// - to the client port from `clients`, from the cluster's own node pods (slot migrations travel
///   between nodes over the client port) and from the operator's pods;
/// - to the metrics port (9121) from `metrics` and from the operator's pods.
///
/// Peers are NetworkPolicy peers (`podSelector`, `namespaceSelector`, `ipBlock`); a `podSelector`
/// alone means pods of the cluster's namespace. An empty `clients` list admits no application at
/// all. The kubelet's probes come from the pod's own Node, which NetworkPolicies always admit.
/// Needs a network plugin that enforces NetworkPolicies (on EKS: the VPC CNI with network policy
/// enabled, Calico or Cilium).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct NodeNetworkPolicySpec {
    #[serde(default)]
    pub enabled: bool,
    /// Who may connect to the client port: your applications (and, for a LoadBalancer Service,
    /// an `ipBlock` with the load balancer's or the clients' addresses).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(validation = Rule::new(PEERS_RULE).message(PEERS_MESSAGE))]
    pub clients: Vec<NetworkPolicyPeer>,
    /// Who may connect to the metrics port, e.g. Prometheus's namespace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(validation = Rule::new(PEERS_RULE).message(PEERS_MESSAGE))]
    pub metrics: Vec<NetworkPolicyPeer>,
}

/// What the operator observed and did.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ShoalClusterStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `Progressing`, `Degraded`, `SlotsAssigned`, `Rebalancing`, `Autoscaling`,
    /// `RollingOut`, `Stuck`.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// Shards that own slots (the `/scale` status).
    #[serde(default)]
    pub shards: i32,
    /// Label selector of the node pods (the `/scale` selector).
    #[serde(default)]
    pub selector: String,
    /// The control plane's phase: `Converged`, `Progressing`, `Migrating`, `Waiting`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// Slots owned by some shard (16384 when the cluster serves every key).
    #[serde(default)]
    pub slots_assigned: i32,
    /// Slots no answering primary serves (unowned, or owned by a silent or failed node).
    #[serde(default)]
    pub unserved_slots: i32,
    /// Shard pods running the current template on a Node that is not being removed.
    #[serde(default)]
    pub updated_pods: i32,
    /// Shard pods that must be recreated (older template, or their Node is being removed).
    #[serde(default)]
    pub outdated_pods: i32,
    /// Control-plane actions that keep failing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stuck_actions: Vec<StuckActionStatus>,
    /// Epoch of the newest topology the nodes hold.
    #[serde(default)]
    pub epoch: i64,
    /// One entry per shard in the topology or desired.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shard_status: Vec<ShardStatus>,
    /// Slot migrations in flight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migration: Option<MigrationStatus>,
    /// The autoscaler's last decision and recommendation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaling: Option<AutoscalingStatus>,
    /// Where clients connect: `host:port` of the client Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
}

/// A control-plane action that keeps failing.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StuckActionStatus {
    pub action: String,
    pub failures: i32,
    pub failing_for_seconds: i64,
    pub last_error: String,
}

/// One shard.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ShardStatus {
    pub ordinal: i32,
    /// The shard id (`CLUSTER MYSHARDID`).
    pub id: String,
    /// The primary's pod.
    pub pod: String,
    /// The primary's endpoint (per-pod DNS name and port).
    pub endpoint: String,
    /// Owned slot ranges, e.g. `0-5460`.
    #[serde(default)]
    pub slots: Vec<String>,
    pub slot_count: i32,
    /// The node answered the last observation.
    pub reachable: bool,
    /// The shard is being emptied before its StatefulSet is removed.
    #[serde(default)]
    pub draining: bool,
}

/// Slot migrations in flight.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MigrationStatus {
    /// Slots still to move to reach the desired layout (including those moving now).
    pub slots_to_move: i32,
    #[serde(default)]
    pub jobs: Vec<MigrationJobStatus>,
}

/// One running migration job.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MigrationJobStatus {
    pub name: String,
    pub source_node: String,
    pub target_node: String,
    pub slots: Vec<String>,
}

/// The autoscaler's view.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AutoscalingStatus {
    /// The last decision that changed (or, with `recommendOnly`, would change) the shard count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_decision: Option<ScaleDecisionStatus>,
    /// The shard count the autoscaler wants now (equal to `spec.shards` when it holds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recommended_shards: Option<i32>,
    /// Why it holds or what it wants, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A resize decision.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScaleDecisionStatus {
    /// RFC 3339.
    pub time: String,
    /// `ScaleOut` or `ScaleIn`.
    pub action: String,
    pub from_shards: i32,
    pub to_shards: i32,
    pub reason: String,
    /// Whether the operator acted (false with `recommendOnly`).
    pub applied: bool,
    /// The metrics behind it, e.g. `cpu 81.2% (target 60%)`.
    #[serde(default)]
    pub figures: Vec<String>,
}

impl ShoalCluster {
    /// The shard count the spec asks for, at least 1.
    pub fn desired_shards(&self) -> u32 {
        self.spec.shards.max(1) as u32
    }
}
