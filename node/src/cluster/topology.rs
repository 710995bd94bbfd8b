//! The topology a control plane pushes with `CLUSTER SETTOPOLOGY <json>`: shards, their slot
//! ranges (inclusive), their primary and replica endpoints, and an epoch. Nodes never gossip,
//! so this document is the whole truth about the cluster; it is validated completely before
//! anything changes, then swapped in at once (see `docs/cluster.md` for the contract).

use serde::{Deserialize, Serialize};

use crate::keyspace::slot::SLOTS;

/// Marks a slot that no shard serves in [`SlotMap`].
pub const UNASSIGNED: u16 = u16::MAX;

/// A node's role inside its shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Primary,
    Replica,
}

/// One node of a shard, as clients should reach it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeInfo {
    pub id: String,
    pub ip: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    pub port: u16,
    /// The node's TLS port, for clients (with `tls-cluster yes` it is the port CLUSTER SLOTS
    /// reports) and node-to-node links. Optional, so topologies pushed before TLS still parse.
    #[serde(rename = "tls-port", default, skip_serializing_if = "Option::is_none")]
    pub tls_port: Option<u16>,
    pub role: Role,
    /// Marked by the control plane once the node stopped answering past its failure-detection
    /// window (nodes do not gossip, so this is how they learn it). The node then shows Valkey's
    /// `fail` flag and `health fail`, and the slots it serves count as `cluster_slots_fail`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fail: bool,
}

/// One shard: a primary, its replicas, and the slot ranges it serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shard {
    pub id: String,
    /// Inclusive `[start, end]` ranges.
    #[serde(default)]
    pub slots: Vec<(u16, u16)>,
    pub nodes: Vec<NodeInfo>,
}

/// The whole cluster at one epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    pub epoch: u64,
    pub shards: Vec<Shard>,
}

/// Why a topology was refused. The texts are what `CLUSTER SETTOPOLOGY` replies after `ERR`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopologyError {
    #[error("Invalid topology JSON: {0}")]
    Json(String),
    #[error("Stale topology epoch {got}: this node already has epoch {have}")]
    StaleEpoch { got: u64, have: u64 },
    #[error("Topology epoch {0} is already in use with a different topology")]
    EpochConflict(u64),
    #[error("Invalid {what} id '{id}': expected 40 lower-case hex characters")]
    BadId { what: &'static str, id: String },
    #[error("Duplicate {what} id {id}")]
    DuplicateId { what: &'static str, id: String },
    #[error("Invalid slot range {start}-{end} in shard {shard}: slots are 0-16383 and start <= end")]
    BadRange { shard: String, start: u16, end: u16 },
    #[error("Slot {slot} is assigned to both shard {a} and shard {b}")]
    Overlap { slot: u16, a: String, b: String },
    #[error("Shard {shard} must have exactly one primary, it has {count}")]
    Primaries { shard: String, count: usize },
    #[error("Node {id} has an empty ip and no hostname")]
    NoAddress { id: String },
    #[error("Node {id} has port 0")]
    NoPort { id: String },
}

/// True for a 40-character lower-case hex id, the form Valkey node ids take.
pub fn valid_id(id: &str) -> bool {
    id.len() == 40 && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Slot → shard index for a validated topology.
#[derive(Clone)]
pub struct SlotMap(pub Box<[u16]>);

impl SlotMap {
    pub fn empty() -> SlotMap {
        SlotMap(vec![UNASSIGNED; SLOTS].into_boxed_slice())
    }

    /// The index of the shard serving `slot`.
    pub fn get(&self, slot: u16) -> Option<usize> {
        match self.0[slot as usize] {
            UNASSIGNED => None,
            s => Some(s as usize),
        }
    }
}

impl std::fmt::Debug for SlotMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SlotMap({} assigned)", self.0.iter().filter(|&&s| s != UNASSIGNED).count())
    }
}

impl Topology {
    /// Parses and validates a pushed document.
    pub fn parse(json: &[u8]) -> Result<Topology, TopologyError> {
        let t: Topology = serde_json::from_slice(json).map_err(|e| TopologyError::Json(e.to_string()))?;
        t.validate()?;
        Ok(t)
    }

    /// Checks ids, roles, endpoints and slot ranges; returns the slot map.
    pub fn validate(&self) -> Result<SlotMap, TopologyError> {
        let mut shard_ids = std::collections::HashSet::new();
        let mut node_ids = std::collections::HashSet::new();
        for sh in &self.shards {
            if !valid_id(&sh.id) {
                return Err(TopologyError::BadId { what: "shard", id: sh.id.clone() });
            }
            if !shard_ids.insert(sh.id.as_str()) {
                return Err(TopologyError::DuplicateId { what: "shard", id: sh.id.clone() });
            }
            let primaries = sh.nodes.iter().filter(|n| n.role == Role::Primary).count();
            if primaries != 1 {
                return Err(TopologyError::Primaries { shard: sh.id.clone(), count: primaries });
            }
            for n in &sh.nodes {
                if !valid_id(&n.id) {
                    return Err(TopologyError::BadId { what: "node", id: n.id.clone() });
                }
                if !node_ids.insert(n.id.as_str()) {
                    return Err(TopologyError::DuplicateId { what: "node", id: n.id.clone() });
                }
                if n.ip.is_empty() && n.hostname.as_deref().unwrap_or("").is_empty() {
                    return Err(TopologyError::NoAddress { id: n.id.clone() });
                }
                if n.port == 0 {
                    return Err(TopologyError::NoPort { id: n.id.clone() });
                }
            }
        }
        self.slot_map()
    }

    /// Builds the slot map, refusing bad or overlapping ranges.
    pub fn slot_map(&self) -> Result<SlotMap, TopologyError> {
        let mut map = SlotMap::empty();
        for (i, sh) in self.shards.iter().enumerate() {
            for &(start, end) in &sh.slots {
                if start > end || end as usize >= SLOTS {
                    return Err(TopologyError::BadRange { shard: sh.id.clone(), start, end });
                }
                for slot in start..=end {
                    let cur = map.0[slot as usize];
                    if cur != UNASSIGNED {
                        let a = self.shards[cur as usize].id.clone();
                        return Err(TopologyError::Overlap { slot, a, b: sh.id.clone() });
                    }
                    map.0[slot as usize] = i as u16;
                }
            }
        }
        Ok(map)
    }

    /// The shard index and the node of `id`, if the node is in this topology.
    pub fn find_node(&self, id: &str) -> Option<(usize, &NodeInfo)> {
        self.shards.iter().enumerate().find_map(|(i, s)| s.nodes.iter().find(|n| n.id == id).map(|n| (i, n)))
    }

    /// The primary of a shard (validation guarantees there is exactly one).
    pub fn primary(&self, shard: usize) -> Option<&NodeInfo> {
        self.shards.get(shard)?.nodes.iter().find(|n| n.role == Role::Primary)
    }
}

/// Sorted inclusive ranges of the slots for which `pick` is true.
pub fn ranges(mut pick: impl FnMut(u16) -> bool) -> Vec<(u16, u16)> {
    let mut out: Vec<(u16, u16)> = Vec::new();
    for slot in 0..SLOTS as u16 {
        if pick(slot) {
            match out.last_mut() {
                Some((_, end)) if *end + 1 == slot => *end = slot,
                _ => out.push((slot, slot)),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(c: char) -> String {
        std::iter::repeat_n(c, 40).collect()
    }

    fn doc(shards: &str) -> String {
        format!(r#"{{"epoch": 3, "shards": [{shards}]}}"#)
    }

    fn shard(sid: char, nid: char, slots: &str) -> String {
        format!(
            r#"{{"id": "{}", "slots": {slots}, "nodes": [{{"id": "{}", "ip": "127.0.0.1", "port": 7000, "role": "primary"}}]}}"#,
            id(sid),
            id(nid)
        )
    }

    #[test]
    fn parses_and_maps_slots() {
        let t = Topology::parse(
            doc(&format!(
                "{}, {}",
                shard('a', '1', "[[0, 5460], [10923, 10923]]"),
                shard('b', '2', "[[5461, 10922]]")
            ))
            .as_bytes(),
        )
        .expect("valid");
        let map = t.slot_map().expect("map");
        assert_eq!(map.get(0), Some(0));
        assert_eq!(map.get(5461), Some(1));
        assert_eq!(map.get(10923), Some(0));
        assert_eq!(map.get(10924), None);
        assert_eq!(t.find_node(&id('2')).map(|(s, _)| s), Some(1));
        assert_eq!(ranges(|s| map.get(s) == Some(0)), vec![(0, 5460), (10923, 10923)]);
    }

    #[test]
    fn hostname_is_optional_and_round_trips() {
        let j = r#"{"epoch": 1, "shards": [{"id": "SID", "slots": [[0, 16383]], "nodes": [
            {"id": "NID", "ip": "10.0.0.1", "hostname": "shoal-0.shoal", "port": 6379, "role": "primary"},
            {"id": "RID", "ip": "10.0.0.2", "port": 6379, "role": "replica"}]}]}"#
            .replace("SID", &id('a'))
            .replace("NID", &id('b'))
            .replace("RID", &id('c'));
        let t = Topology::parse(j.as_bytes()).expect("valid");
        assert_eq!(t.shards[0].nodes[0].hostname.as_deref(), Some("shoal-0.shoal"));
        let back = serde_json::to_vec(&t).expect("json");
        assert_eq!(Topology::parse(&back).expect("again"), t);
    }

    #[test]
    fn refuses_invalid_documents() {
        let err = |j: String| Topology::parse(j.as_bytes()).unwrap_err();
        assert!(matches!(
            err(doc(&format!("{}, {}", shard('a', '1', "[[0, 100]]"), shard('b', '2', "[[100, 200]]")))),
            TopologyError::Overlap { slot: 100, .. }
        ));
        assert!(matches!(err(doc(&shard('a', '1', "[[5, 4]]"))), TopologyError::BadRange { .. }));
        assert!(matches!(err(doc(&shard('a', '1', "[[0, 16384]]"))), TopologyError::BadRange { .. }));
        assert!(matches!(
            err(doc(&format!("{}, {}", shard('a', '1', "[]"), shard('a', '2', "[]")))),
            TopologyError::DuplicateId { what: "shard", .. }
        ));
        assert!(matches!(
            err(doc(&format!("{}, {}", shard('a', '1', "[]"), shard('b', '1', "[]")))),
            TopologyError::DuplicateId { what: "node", .. }
        ));
        assert!(matches!(err(doc(&shard('A', '1', "[]"))), TopologyError::BadId { what: "shard", .. }));
        let j = doc(&shard('a', '1', "[]")).replace("\"epoch\"", "\"bogus\": 1, \"epoch\"");
        match err(j) {
            TopologyError::Json(m) => assert!(m.contains("unknown field `bogus`"), "{m}"),
            e => panic!("{e:?}"),
        }
        let j = doc(&shard('a', '1', "[]")).replace("primary", "replica");
        assert!(matches!(err(j), TopologyError::Primaries { count: 0, .. }));
        let j = doc(&shard('a', '1', "[]")).replace("\"port\": 7000", "\"port\": 0");
        assert!(matches!(err(j), TopologyError::NoPort { .. }));
        assert!(matches!(err("[1,2]".into()), TopologyError::Json(_)));
    }
}
