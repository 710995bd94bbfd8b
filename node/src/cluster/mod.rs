//! Cluster mode. Nodes do not gossip: a control plane pushes the whole topology (shards, slot
//! ranges, endpoints, an epoch) with `CLUSTER SETTOPOLOGY`, and each node persists it with its
//! own node id, so a restarted node serves its slots at once. What clients see is standard
//! Valkey cluster behaviour (CLUSTER SLOTS/SHARDS/NODES, MOVED, ASK, CROSSSLOT, CLUSTERDOWN).
//!
//! Ownership of a slot is the pushed topology, overlaid with *overrides* that completed slot
//! migrations leave behind until the control plane pushes a topology that agrees with them:
//! the data lives where the override says, so an override is never dropped by a topology that
//! contradicts it (see `docs/cluster.md`).
//!
//! Only the executor touches `ClusterState`; migrations talk to other nodes from their own
//! threads (`worker`), fed through bounded channels a few milliseconds of work per tick.

pub mod bus;
pub mod migrate;
pub mod persist;
pub mod redirect;
pub mod serialize;
pub mod slot_stats;
pub mod topology;
pub mod view;
pub mod worker;

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::config::Config;
use crate::keyspace::slot::SLOTS;
pub use migrate::Migrations;
pub use redirect::Redirect;
use topology::{NodeInfo, Role, SlotMap, Topology, TopologyError};

/// Why the cluster state could not be loaded or saved.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cannot read cluster config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("corrupt cluster config file {path}: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("cannot write cluster config file {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
}

/// A set of hash slots.
#[derive(Clone, PartialEq, Eq)]
pub struct SlotSet(Box<[u64]>);

impl Default for SlotSet {
    fn default() -> Self {
        SlotSet(vec![0; SLOTS / 64].into_boxed_slice())
    }
}

impl SlotSet {
    pub fn from_ranges(ranges: &[(u16, u16)]) -> SlotSet {
        let mut s = SlotSet::default();
        for &(a, b) in ranges {
            for slot in a..=b {
                s.insert(slot);
            }
        }
        s
    }

    pub fn insert(&mut self, slot: u16) {
        self.0[slot as usize / 64] |= 1 << (slot % 64);
    }

    pub fn contains(&self, slot: u16) -> bool {
        self.0.get(slot as usize / 64).is_some_and(|w| w & (1 << (slot % 64)) != 0)
    }

    pub fn intersects(&self, other: &SlotSet) -> bool {
        self.0.iter().zip(other.0.iter()).any(|(a, b)| a & b != 0)
    }

    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|&w| w == 0)
    }

    /// The slots as sorted inclusive ranges.
    pub fn ranges(&self) -> Vec<(u16, u16)> {
        topology::ranges(|s| self.contains(s))
    }

    /// `0-10 20-29`, as Valkey 9's GETSLOTMIGRATIONS shows slot ranges.
    pub fn describe(&self) -> String {
        let parts: Vec<String> = self
            .ranges()
            .iter()
            .map(|&(a, b)| if a == b { a.to_string() } else { format!("{a}-{b}") })
            .collect();
        parts.join(" ")
    }
}

impl std::fmt::Debug for SlotSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SlotSet({})", self.describe())
    }
}

/// Outcome of `CLUSTER SETTOPOLOGY`.
#[derive(Debug, PartialEq, Eq)]
pub enum Applied {
    New,
    Unchanged,
}

/// The executor's view of the cluster.
pub struct ClusterState {
    pub myid: String,
    /// The pushed topology, or the one `CLUSTER ADDSLOTS` built on a node nobody pushed to.
    pub topology: Option<Topology>,
    /// `topology` was built locally by ADDSLOTS/DELSLOTS, not pushed.
    pub local: bool,
    /// Slot → owner node id, left by completed migrations (see the module docs).
    pub overrides: BTreeMap<u16, String>,
    /// Effective slot → shard index (topology plus overrides).
    map: SlotMap,
    assigned: usize,
    /// Assigned slots whose primary is marked `fail`.
    failed: usize,
    /// My shard index and role, when I am in the topology.
    me: Option<(usize, Role)>,
    /// Where the state is persisted (`None` in in-process tests).
    pub path: Option<PathBuf>,
    /// Classic (externally driven) slot states: slot → destination / source node id.
    pub migrating: BTreeMap<u16, String>,
    pub importing: BTreeMap<u16, String>,
    pub migrations: Migrations,
    /// Restarted as the primary of a shard that has replicas: this process lost the data (Shoal
    /// keeps none on disk), so it serves nothing until the control plane pushes a topology,
    /// which promotes a replica and makes this node its replica (fencing by epoch).
    pub fenced: bool,
    /// CPU and network counters per slot (`cluster-slot-stats-enabled`).
    pub slot_stats: slot_stats::SlotStats,
}

impl ClusterState {
    /// A node with an id and no topology, persisted nowhere (for in-process tests).
    pub fn ephemeral(myid: String) -> ClusterState {
        ClusterState {
            myid,
            topology: None,
            local: false,
            overrides: BTreeMap::new(),
            map: SlotMap::empty(),
            assigned: 0,
            failed: 0,
            me: None,
            path: None,
            migrating: BTreeMap::new(),
            importing: BTreeMap::new(),
            migrations: Migrations::default(),
            fenced: false,
            slot_stats: slot_stats::SlotStats::default(),
        }
    }

    /// Loads the node id and last topology from `cluster-config-file` (relative to `dir`, the
    /// working directory), creating the file with a fresh id at first start.
    pub fn load(config: &Config) -> Result<ClusterState, ClusterError> {
        let path = PathBuf::from(config.get("cluster-config-file").unwrap_or("nodes.conf"));
        let mut st = match persist::read(&path)? {
            Some(saved) => {
                let mut st = ClusterState::ephemeral(saved.node_id);
                st.topology = saved.topology;
                st.local = saved.local;
                st.overrides = saved.overrides;
                st
            }
            None => ClusterState::ephemeral(persist::random_id()),
        };
        st.path = Some(path);
        st.slot_stats.set_enabled(config.get_bool("cluster-slot-stats-enabled"));
        st.rebuild();
        if let (Some((shard, Role::Primary)), Some(t)) = (st.me, st.topology.as_ref().filter(|_| !st.local)) {
            let sh = &t.shards[shard];
            if sh.nodes.len() > 1 && !sh.slots.is_empty() {
                log::warn!(
                    "Restarted as the primary of shard {} with replicas and no data: fenced until the control plane pushes a topology",
                    sh.id
                );
                st.fenced = true;
            }
        }
        st.save()?;
        log::info!(
            "Cluster node id {} (topology epoch {})",
            st.myid,
            st.topology.as_ref().map_or(0, |t| t.epoch)
        );
        Ok(st)
    }

    /// Writes the state atomically (no-op without a path).
    pub fn save(&self) -> Result<(), ClusterError> {
        match &self.path {
            Some(p) => persist::write(p, self),
            None => Ok(()),
        }
    }

    /// Saves, logging a failure: the in-memory state is already applied and serving.
    pub fn save_or_warn(&self) {
        if let Err(e) = self.save() {
            log::warn!("{e}");
        }
    }

    /// Recomputes the effective slot map after the topology or the overrides changed.
    pub fn rebuild(&mut self) {
        let Some(t) = &self.topology else {
            self.map = SlotMap::empty();
            self.assigned = 0;
            self.failed = 0;
            self.me = None;
            return;
        };
        let mut map = t.slot_map().unwrap_or_else(|_| SlotMap::empty());
        for (&slot, owner) in &self.overrides {
            if let Some((shard, n)) = t.find_node(owner) {
                if n.role == Role::Primary {
                    map.0[slot as usize] = shard as u16;
                }
            }
        }
        self.assigned = map.0.iter().filter(|&&s| s != topology::UNASSIGNED).count();
        self.failed = map
            .0
            .iter()
            .filter(|&&s| s != topology::UNASSIGNED && t.primary(s as usize).is_none_or(|p| p.fail))
            .count();
        self.me = t.find_node(&self.myid).map(|(s, n)| (s, n.role));
        self.map = map;
        // A slot that left this node starts from zero if it comes back (Valkey's
        // `clusterDelSlot`).
        if self.slot_stats.enabled() {
            for slot in 0..SLOTS as u16 {
                if !self.owns(slot) {
                    self.slot_stats.reset_slot(slot);
                }
            }
        }
    }

    /// Installs a pushed topology: stale epochs are refused, an identical one is a no-op.
    /// Overrides the new topology agrees with are dropped; the others are kept.
    pub fn apply(&mut self, new: Topology) -> Result<Applied, TopologyError> {
        new.validate()?;
        if let Some(cur) = self.topology.as_ref().filter(|_| !self.local) {
            if new.epoch < cur.epoch {
                return Err(TopologyError::StaleEpoch { got: new.epoch, have: cur.epoch });
            }
            if new.epoch == cur.epoch {
                return if &new == cur {
                    // A push confirms the topology: a fenced node may serve it again.
                    self.fenced = false;
                    Ok(Applied::Unchanged)
                } else {
                    Err(TopologyError::EpochConflict(new.epoch))
                };
            }
        }
        let map = new.slot_map()?;
        self.overrides.retain(|&slot, owner| {
            let agrees = map.get(slot).and_then(|s| new.primary(s)).is_some_and(|p| &p.id == owner);
            if !agrees {
                log::warn!("Keeping slot {slot} at node {owner}: the pushed topology does not reflect its migration yet");
            }
            !agrees
        });
        self.topology = Some(new);
        self.local = false;
        self.fenced = false;
        // Classic migration states refer to the old topology.
        self.migrating.clear();
        self.importing.clear();
        self.rebuild();
        self.save_or_warn();
        Ok(Applied::New)
    }

    /// The shard index serving `slot`.
    pub fn shard_of(&self, slot: u16) -> Option<usize> {
        self.map.get(slot)
    }

    /// Another node handed `ranges` over to primary `target` (`CLUSTER SLOTSMOVED`, sent by
    /// the source at the hand-off): serve redirections and CLUSTER SLOTS as if the control
    /// plane had pushed it, so a client that refreshes its map right after the hand-off reads
    /// the new owner from any node. Held as overrides until a pushed topology agrees. Slots
    /// this node serves as primary are never taken from it this way. Returns the slots
    /// changed, or an error for an unknown or non-primary target.
    pub fn learn_moved(&mut self, target: &str, ranges: &[(u16, u16)]) -> Result<usize, String> {
        let t = self.topology.as_ref().ok_or("no topology")?;
        let (shard, node) = t.find_node(target).ok_or_else(|| format!("Unknown node {target}"))?;
        if node.role != Role::Primary {
            return Err("Target node is not a master".into());
        }
        let mut changed = 0;
        for &(a, b) in ranges {
            for slot in a..=b {
                if !self.owns(slot) && self.map.get(slot) != Some(shard) {
                    self.overrides.insert(slot, target.to_string());
                    changed += 1;
                }
            }
        }
        if changed > 0 {
            self.rebuild();
            self.save_or_warn();
        }
        Ok(changed)
    }

    /// True when this node is the primary serving `slot`.
    pub fn owns(&self, slot: u16) -> bool {
        matches!(self.me, Some((s, Role::Primary)) if self.map.get(slot) == Some(s))
    }

    /// My shard index and role in the topology.
    pub fn me(&self) -> Option<(usize, Role)> {
        self.me
    }

    /// The primary of the shard serving `slot`.
    pub fn primary_for(&self, slot: u16) -> Option<&NodeInfo> {
        let t = self.topology.as_ref()?;
        t.primary(self.map.get(slot)?)
    }

    /// Number of slots some shard serves.
    pub fn assigned(&self) -> usize {
        self.assigned
    }

    /// Number of assigned slots whose primary is marked `fail` (`cluster_slots_fail`).
    pub fn failed(&self) -> usize {
        self.failed
    }

    /// `cluster_state:ok`: every slot is served by a primary not marked `fail`, or full
    /// coverage is not required and some topology is installed (Valkey's `clusterUpdateState`).
    pub fn healthy(&self, config: &Config) -> bool {
        if self.fenced {
            return false;
        }
        if config.get_bool("cluster-require-full-coverage") {
            self.assigned == SLOTS && self.failed == 0
        } else {
            self.topology.is_some()
        }
    }

    /// The topology epoch (0 before any).
    pub fn epoch(&self) -> u64 {
        self.topology.as_ref().map_or(0, |t| t.epoch)
    }

    /// Effective slot ranges served by shard `shard`.
    pub fn shard_ranges(&self, shard: usize) -> Vec<(u16, u16)> {
        topology::ranges(|s| self.map.get(s) == Some(shard))
    }

    /// A node by id.
    pub fn node(&self, id: &str) -> Option<&NodeInfo> {
        self.topology.as_ref()?.find_node(id).map(|(_, n)| n)
    }
}

/// The endpoint clients are told for `node` (`cluster-preferred-endpoint-type`), as Valkey's
/// `clusterNodePreferredEndpoint`: a missing hostname is `?`, `unknown-endpoint` is empty.
pub fn endpoint<'a>(config: &Config, node: &'a NodeInfo) -> &'a str {
    match config.get("cluster-preferred-endpoint-type").unwrap_or("ip") {
        "hostname" => node.hostname.as_deref().filter(|h| !h.is_empty()).unwrap_or("?"),
        "unknown-endpoint" => "",
        _ => &node.ip,
    }
}

/// How this node describes itself before any topology mentions it (ADDSLOTS mode, or a node
/// not yet added): the announce directives, else an unknown ip as a fresh Valkey node shows.
pub fn self_info(config: &Config, myid: &str, port: u16) -> NodeInfo {
    let announce_port = config.get_i64("cluster-announce-port") as u16;
    let hostname = config.get("cluster-announce-hostname").unwrap_or("");
    NodeInfo {
        id: myid.to_string(),
        ip: config.get("cluster-announce-ip").unwrap_or("").to_string(),
        hostname: (!hostname.is_empty()).then(|| hostname.to_string()),
        port: if announce_port != 0 { announce_port } else { port },
        tls_port: match (config.get_i64("cluster-announce-tls-port"), config.get_i64("tls-port")) {
            (0, 0) => None,
            (0, t) | (t, _) => Some(t as u16),
        },
        role: Role::Primary,
        fail: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(c: char) -> String {
        std::iter::repeat_n(c, 40).collect()
    }

    pub(crate) fn two_shards(epoch: u64, split: u16) -> Topology {
        let node = |n: char, port: u16| NodeInfo {
            id: id(n),
            ip: "127.0.0.1".into(),
            hostname: None,
            port,
            tls_port: None,
            role: Role::Primary,
            fail: false,
        };
        Topology {
            epoch,
            shards: vec![
                topology::Shard { id: id('a'), slots: vec![(0, split - 1)], nodes: vec![node('1', 7001)] },
                topology::Shard { id: id('b'), slots: vec![(split, 16383)], nodes: vec![node('2', 7002)] },
            ],
        }
    }

    #[test]
    fn epochs_are_monotonic_and_identical_pushes_are_no_ops() {
        let mut st = ClusterState::ephemeral(id('1'));
        assert_eq!(st.apply(two_shards(2, 100)), Ok(Applied::New));
        assert_eq!(st.apply(two_shards(2, 100)), Ok(Applied::Unchanged));
        assert_eq!(st.apply(two_shards(2, 200)), Err(TopologyError::EpochConflict(2)));
        assert_eq!(st.apply(two_shards(1, 100)), Err(TopologyError::StaleEpoch { got: 1, have: 2 }));
        assert!(st.owns(0) && !st.owns(100));
        assert_eq!(st.assigned(), SLOTS);
    }

    #[test]
    fn overrides_survive_contradicting_topologies_and_drop_when_confirmed() {
        let mut st = ClusterState::ephemeral(id('1'));
        st.apply(two_shards(1, 100)).expect("apply");
        // Slot 5 migrated to node 2.
        st.overrides.insert(5, id('2'));
        st.rebuild();
        assert!(!st.owns(5));
        assert_eq!(st.primary_for(5).map(|n| n.port), Some(7002));
        // A newer topology that still gives slot 5 to shard a keeps the override.
        st.apply(two_shards(2, 100)).expect("apply");
        assert!(!st.owns(5));
        // One that agrees drops it.
        st.apply(two_shards(3, 5)).expect("apply");
        assert!(st.overrides.is_empty());
        assert!(!st.owns(5) && st.owns(4));
    }

    #[test]
    fn slots_moved_by_another_node_redirect_until_a_push_confirms_them() {
        // Node 1 owns 0-99: hearsay never takes its own slots.
        let mut owner = ClusterState::ephemeral(id('1'));
        owner.apply(two_shards(1, 100)).expect("apply");
        assert_eq!(owner.learn_moved(&id('2'), &[(0, 5)]), Ok(0));
        assert!(owner.owns(3));
        // A node outside both shards learns that 0-5 went to node 2.
        let mut other = ClusterState::ephemeral(id('3'));
        other.apply(two_shards(1, 100)).expect("apply");
        assert!(other.learn_moved(&id('9'), &[(0, 5)]).is_err(), "unknown target");
        assert_eq!(other.learn_moved(&id('2'), &[(0, 5)]), Ok(6));
        assert_eq!(other.learn_moved(&id('2'), &[(0, 5)]), Ok(0), "already known");
        assert_eq!(other.primary_for(5).map(|n| n.port), Some(7002));
        assert_eq!(other.primary_for(6).map(|n| n.port), Some(7001));
        // The control plane's push that agrees drops the overrides.
        let mut confirmed = two_shards(2, 100);
        confirmed.shards[0].slots = vec![(6, 99)];
        confirmed.shards[1].slots = vec![(0, 5), (100, 16383)];
        other.apply(confirmed).expect("apply");
        assert!(other.overrides.is_empty());
        assert_eq!(other.primary_for(5).map(|n| n.port), Some(7002));
    }

    #[test]
    fn slot_sets() {
        let s = SlotSet::from_ranges(&[(0, 10), (20, 20), (16383, 16383)]);
        assert!(s.contains(10) && !s.contains(11) && s.contains(16383));
        assert_eq!(s.describe(), "0-10 20 16383");
        assert!(s.intersects(&SlotSet::from_ranges(&[(20, 30)])));
        assert!(!s.intersects(&SlotSet::from_ranges(&[(21, 30)])));
    }
}
