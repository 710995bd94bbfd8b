//! Cluster vocabulary shared by the planner, the autoscaler, the driver and the infrastructure
//! layers (local processes, Kubernetes). These types are serde-serializable so the Kubernetes
//! layer can put them in CRD status, and free of I/O so they can be built in tests.
//!
//! [`Topology`] is exactly the JSON that `CLUSTER SETTOPOLOGY` accepts: the whole cluster, with
//! inclusive slot ranges and a monotonically increasing epoch.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Number of hash slots in a cluster.
pub const SLOT_COUNT: u16 = 16384;

/// A node's 40-hex identity, persisted by the node (`CLUSTER MYID`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NodeId(pub String);

/// A shard's 40-hex identity, chosen by the control plane (`CLUSTER MYSHARDID`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ShardId(pub String);

impl ShardId {
    /// The shard id of shard number `ordinal` of cluster `cluster`: 40 hex digits derived from
    /// both, so an operator that restarts, or two infrastructure layers, name shards the same way
    /// without storing anything.
    pub fn for_ordinal(cluster: &str, ordinal: u32) -> ShardId {
        // FNV-1a, re-seeded per 64-bit word: stable across releases, unlike std's hasher.
        let mut out = String::with_capacity(40);
        let mut seed: u64 = 0xcbf2_9ce4_8422_2325;
        while out.len() < 40 {
            let mut h = seed;
            for b in cluster.bytes().chain(ordinal.to_le_bytes()).chain(seed.to_le_bytes()) {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
            out.push_str(&format!("{h:016x}"));
            seed = h;
        }
        out.truncate(40);
        ShardId(out)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An inclusive range of hash slots; serialized as `[start, end]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(from = "[u16; 2]", into = "[u16; 2]")]
pub struct SlotRange {
    pub start: u16,
    pub end: u16,
}

impl SlotRange {
    pub fn new(start: u16, end: u16) -> SlotRange {
        SlotRange { start, end }
    }

    /// Number of slots in the range.
    pub fn len(&self) -> usize {
        usize::from(self.end) - usize::from(self.start) + 1
    }

    /// Never true: a range holds at least one slot (kept for clippy's `len_without_is_empty`).
    pub fn is_empty(&self) -> bool {
        false
    }

    pub fn contains(&self, slot: u16) -> bool {
        self.start <= slot && slot <= self.end
    }

    pub fn slots(&self) -> impl Iterator<Item = u16> {
        self.start..=self.end
    }
}

impl From<[u16; 2]> for SlotRange {
    fn from(r: [u16; 2]) -> SlotRange {
        SlotRange { start: r[0], end: r[1] }
    }
}

impl From<SlotRange> for [u16; 2] {
    fn from(r: SlotRange) -> [u16; 2] {
        [r.start, r.end]
    }
}

impl fmt::Display for SlotRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.start == self.end {
            write!(f, "{}", self.start)
        } else {
            write!(f, "{}-{}", self.start, self.end)
        }
    }
}

/// Sorted, merged ranges covering exactly `slots` (which need not be sorted).
pub fn ranges_of(slots: impl IntoIterator<Item = u16>) -> Vec<SlotRange> {
    let mut v: Vec<u16> = slots.into_iter().collect();
    v.sort_unstable();
    v.dedup();
    let mut out: Vec<SlotRange> = Vec::new();
    for s in v {
        match out.last_mut() {
            Some(r) if r.end + 1 == s => r.end = s,
            _ => out.push(SlotRange::new(s, s)),
        }
    }
    out
}

/// Total number of slots in `ranges`.
pub fn slot_count(ranges: &[SlotRange]) -> usize {
    ranges.iter().map(SlotRange::len).sum()
}

/// A node's role in its shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Primary,
    Replica,
}

/// A node as the topology names it: identity and the endpoint clients are redirected to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopologyNode {
    pub id: NodeId,
    pub ip: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    pub port: u16,
    pub role: Role,
    /// Marked by the control plane once the node has been unreachable past the failure-detection
    /// window: nodes then report `cluster_state:fail` and the node's `fail` flag, as Valkey does.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fail: bool,
}

impl TopologyNode {
    /// True when `addr` is where this node was announced: same port, and same IP or hostname.
    pub fn at(&self, addr: &NodeAddr) -> bool {
        self.port == addr.port
            && (self.ip == addr.ip || (self.hostname.is_some() && self.hostname == addr.hostname))
    }

    /// The node's endpoint as an address.
    pub fn addr(&self) -> NodeAddr {
        NodeAddr { ip: self.ip.clone(), hostname: self.hostname.clone(), port: self.port }
    }
}

/// One shard: the slots it owns and its nodes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopologyShard {
    pub id: ShardId,
    pub slots: Vec<SlotRange>,
    pub nodes: Vec<TopologyNode>,
}

impl TopologyShard {
    /// The shard's primary, if it has one.
    pub fn primary(&self) -> Option<&TopologyNode> {
        self.nodes.iter().find(|n| n.role == Role::Primary)
    }

    /// The shard's replicas.
    pub fn replicas(&self) -> impl Iterator<Item = &TopologyNode> {
        self.nodes.iter().filter(|n| n.role == Role::Replica)
    }

    pub fn slot_count(&self) -> usize {
        slot_count(&self.slots)
    }
}

/// The whole cluster as pushed with `CLUSTER SETTOPOLOGY`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Topology {
    pub epoch: u64,
    pub shards: Vec<TopologyShard>,
}

/// A topology that cannot be pushed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopologyError {
    #[error("slot {0} is owned by more than one shard")]
    SlotOwnedTwice(u16),
    #[error("slot {0} is out of range")]
    SlotOutOfRange(u16),
    #[error("shard {0} owns slots but has no primary")]
    NoPrimary(ShardId),
    #[error("shard {0} appears twice")]
    DuplicateShard(ShardId),
}

impl Topology {
    /// For each slot, the index of the shard that owns it (`None`: unowned).
    pub fn owners(&self) -> Result<Vec<Option<usize>>, TopologyError> {
        let mut owners = vec![None; usize::from(SLOT_COUNT)];
        for (i, shard) in self.shards.iter().enumerate() {
            for r in &shard.slots {
                if r.end >= SLOT_COUNT || r.start > r.end {
                    return Err(TopologyError::SlotOutOfRange(r.end.max(r.start)));
                }
                for s in r.slots() {
                    let o = &mut owners[usize::from(s)];
                    if o.is_some() {
                        return Err(TopologyError::SlotOwnedTwice(s));
                    }
                    *o = Some(i);
                }
            }
        }
        Ok(owners)
    }

    /// Checks what a node would check before accepting the topology.
    pub fn validate(&self) -> Result<(), TopologyError> {
        let mut seen = std::collections::HashSet::new();
        for s in &self.shards {
            if !seen.insert(&s.id) {
                return Err(TopologyError::DuplicateShard(s.id.clone()));
            }
            if !s.slots.is_empty() && s.primary().is_none() {
                return Err(TopologyError::NoPrimary(s.id.clone()));
            }
        }
        self.owners().map(|_| ())
    }

    /// Number of slots owned by some shard.
    pub fn covered_slots(&self) -> usize {
        self.shards.iter().map(TopologyShard::slot_count).sum()
    }

    pub fn shard(&self, id: &ShardId) -> Option<&TopologyShard> {
        self.shards.iter().find(|s| &s.id == id)
    }

    /// The shard a node belongs to.
    pub fn shard_of_node(&self, node: &NodeId) -> Option<&TopologyShard> {
        self.shards.iter().find(|s| s.nodes.iter().any(|n| &n.id == node))
    }

    /// The JSON argument of `CLUSTER SETTOPOLOGY`.
    pub fn to_json(&self) -> String {
        // Serializing plain structs of strings and integers cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Figures read from one node's `INFO` and `CONFIG GET io-threads`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeMetrics {
    /// Share of the last second the executor thread spent working (0..=1).
    pub executor_busy_ratio: f64,
    /// I/O threads currently active (0: the executor does its own I/O).
    pub io_threads_active: u32,
    /// The node's `io-threads` setting (Valkey semantics: counts the executor, so at most
    /// `io_threads - 1` I/O threads are active).
    pub io_threads: u32,
    pub ops_per_sec: u64,
    pub used_memory: u64,
    /// 0: no limit.
    pub maxmemory: u64,
    pub connected_clients: u64,
    pub keys: u64,
}

impl NodeMetrics {
    /// `used_memory / maxmemory`, or `None` without a limit.
    pub fn memory_ratio(&self) -> Option<f64> {
        (self.maxmemory > 0).then(|| self.used_memory as f64 / self.maxmemory as f64)
    }
}

/// What kind of `CLUSTER FAILOVER` a replica was asked for (`shoal_failover_requested`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailoverKind {
    /// Planned: pause writes on the primary, wait for the replica to catch up, swap roles.
    Default,
    /// Promote at once, without the primary's agreement.
    Force,
    /// Promote at once (Valkey: without a vote; here the control plane decides anyway).
    Takeover,
}

impl FailoverKind {
    pub fn parse(s: &str) -> Option<FailoverKind> {
        match s.trim().to_ascii_lowercase().as_str() {
            "default" => Some(FailoverKind::Default),
            "force" => Some(FailoverKind::Force),
            "takeover" => Some(FailoverKind::Takeover),
            _ => None,
        }
    }
}

/// A node's replication state, from `INFO replication` (Valkey's field names, plus Shoal's
/// `shoal_fenced` and `shoal_failover_requested`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicationInfo {
    /// `role:master` → primary, `role:slave` → replica; `None` when the node did not say.
    pub role: Option<Role>,
    /// `master_repl_offset`: on a primary, the end of its stream.
    pub master_repl_offset: u64,
    /// `slave_repl_offset` (replicas only): how much of the primary's stream it has applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica_offset: Option<u64>,
    /// `master_link_status:up` (replicas only).
    #[serde(default)]
    pub link_up: bool,
    /// `master_sync_in_progress:1` (replicas only): a full sync is loading.
    #[serde(default)]
    pub sync_in_progress: bool,
    /// `connected_slaves` (primaries).
    #[serde(default)]
    pub connected_replicas: u32,
    /// `shoal_fenced:1`: the node restarted without its data while it was a primary with
    /// replicas; it serves nothing until the control plane pushes again.
    #[serde(default)]
    pub fenced: bool,
    /// `shoal_failover_requested`: a `CLUSTER FAILOVER` was sent to this replica.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failover_requested: Option<FailoverKind>,
}

impl ReplicationInfo {
    /// The replication offset this node has reached: a replica's applied offset, a primary's
    /// stream end.
    pub fn offset(&self) -> u64 {
        self.replica_offset.unwrap_or(self.master_repl_offset)
    }
}

/// Direction of a slot migration job as a node reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MigrationOperation {
    Export,
    Import,
}

/// State of a slot migration job; `success`, `failed` and `cancelled` are terminal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MigrationState {
    Running,
    Success,
    Failed,
    Cancelled,
}

impl MigrationState {
    pub fn is_terminal(&self) -> bool {
        !matches!(self, MigrationState::Running)
    }

    /// Maps a node's state word; anything not terminal is some running phase.
    pub fn parse(s: &str) -> MigrationState {
        match s.to_ascii_lowercase().as_str() {
            "success" | "succeeded" | "completed" | "done" => MigrationState::Success,
            "failed" | "failure" | "error" => MigrationState::Failed,
            "cancelled" | "canceled" => MigrationState::Cancelled,
            _ => MigrationState::Running,
        }
    }
}

/// One entry of `CLUSTER GETSLOTMIGRATIONS`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigrationJob {
    pub name: String,
    pub operation: MigrationOperation,
    pub slots: Vec<SlotRange>,
    pub source_node: NodeId,
    pub target_node: NodeId,
    pub state: MigrationState,
    #[serde(default)]
    pub message: String,
    /// `last_update_time` as the node reports it (used to pick the newest job for some slots).
    #[serde(default)]
    pub last_update: u64,
}

/// Where a node listens.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NodeAddr {
    pub ip: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    pub port: u16,
}

impl fmt::Display for NodeAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.hostname.as_deref().unwrap_or(&self.ip), self.port)
    }
}

/// What the control plane learned from one node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ObservedNode {
    pub addr: NodeAddr,
    /// `None` when the node did not answer.
    pub id: Option<NodeId>,
    /// The epoch of the topology the node holds (0: none yet).
    pub epoch: u64,
    pub metrics: Option<NodeMetrics>,
    pub migrations: Vec<MigrationJob>,
    /// Replication state (`None`: not read, or the node did not answer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication: Option<ReplicationInfo>,
    /// The error, when the node did not answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl ObservedNode {
    pub fn reachable(&self) -> bool {
        self.error.is_none() && self.id.is_some()
    }

    /// True when the node says it is fenced (see [`ReplicationInfo::fenced`]).
    pub fn fenced(&self) -> bool {
        self.replication.as_ref().is_some_and(|r| r.fenced)
    }
}

/// The cluster as the nodes report it: the newest topology any node holds, and every node.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ObservedState {
    pub topology: Option<Topology>,
    pub nodes: Vec<ObservedNode>,
}

impl ObservedState {
    /// The highest epoch any node reported.
    pub fn max_epoch(&self) -> u64 {
        let t = self.topology.as_ref().map_or(0, |t| t.epoch);
        self.nodes.iter().map(|n| n.epoch).max().unwrap_or(0).max(t)
    }

    pub fn node(&self, id: &NodeId) -> Option<&ObservedNode> {
        self.nodes.iter().find(|n| n.id.as_ref() == Some(id))
    }

    /// Migration jobs still running anywhere.
    pub fn running_migrations(&self) -> impl Iterator<Item = &MigrationJob> {
        self.nodes.iter().flat_map(|n| n.migrations.iter()).filter(|j| !j.state.is_terminal())
    }

    /// Metrics of each shard's primary, for shards that own slots.
    pub fn primary_metrics(&self) -> Vec<&NodeMetrics> {
        let Some(t) = &self.topology else { return Vec::new() };
        t.shards
            .iter()
            .filter(|s| !s.slots.is_empty())
            .filter_map(|s| s.primary())
            .filter_map(|p| self.node(&p.id))
            .filter_map(|n| n.metrics.as_ref())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topology_json_matches_settopology() {
        let t = Topology {
            epoch: 3,
            shards: vec![TopologyShard {
                id: ShardId("a".repeat(40)),
                slots: vec![SlotRange::new(0, 5460), SlotRange::new(10923, 10923)],
                nodes: vec![TopologyNode {
                    id: NodeId("b".repeat(40)),
                    ip: "127.0.0.1".into(),
                    hostname: None,
                    port: 7000,
                    role: Role::Primary,
                    fail: false,
                }],
            }],
        };
        let json = t.to_json();
        assert_eq!(
            json,
            format!(
                r#"{{"epoch":3,"shards":[{{"id":"{}","slots":[[0,5460],[10923,10923]],"nodes":[{{"id":"{}","ip":"127.0.0.1","port":7000,"role":"primary"}}]}}]}}"#,
                "a".repeat(40),
                "b".repeat(40)
            )
        );
        let back: Topology = serde_json::from_str(&json).unwrap();
        assert_eq!(back, t);
        t.validate().unwrap();
    }

    #[test]
    fn ranges_merge_and_count() {
        let r = ranges_of([5, 3, 4, 10, 9, 0]);
        assert_eq!(r, vec![SlotRange::new(0, 0), SlotRange::new(3, 5), SlotRange::new(9, 10)]);
        assert_eq!(slot_count(&r), 6);
        assert_eq!(r[1].to_string(), "3-5");
    }

    #[test]
    fn shard_ids_are_stable_hex() {
        let a = ShardId::for_ordinal("shoal", 0);
        assert_eq!(a.0.len(), 40);
        assert!(a.0.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(a, ShardId::for_ordinal("shoal", 0));
        assert_ne!(a, ShardId::for_ordinal("shoal", 1));
        assert_ne!(a, ShardId::for_ordinal("other", 0));
    }

    #[test]
    fn double_ownership_is_refused() {
        let shard = |id: &str, r: SlotRange| TopologyShard {
            id: ShardId(id.into()),
            slots: vec![r],
            nodes: vec![TopologyNode {
                id: NodeId(format!("n{id}")),
                ip: "127.0.0.1".into(),
                hostname: None,
                port: 1,
                role: Role::Primary,
                fail: false,
            }],
        };
        let t = Topology {
            epoch: 1,
            shards: vec![shard("a", SlotRange::new(0, 10)), shard("b", SlotRange::new(10, 20))],
        };
        assert_eq!(t.validate(), Err(TopologyError::SlotOwnedTwice(10)));
    }
}
