//! Membership: which node is each topology entry now. A pure function over the topology, the
//! desired shards and what the nodes answered, run before any planning.
//!
//! Why it exists: a pod recreated without its data directory (eviction, node drain, Spot loss,
//! `kubectl delete pod`, an `OnDelete` upgrade) comes back at the same address with a new
//! random node id. Left alone, the old id stays in the topology as a phantom owner of the
//! shard's slots, nothing serves them, and the node at the address answers `MOVED` to itself.
//! The rules, in order, for each node the topology names:
//!
//! 1. **Seen**: the id answered at some address. A `fail` mark is cleared (it recovered).
//! 2. **Replaced**: the id did not answer, and one of the addresses where this node should be
//!    (the shard's desired addresses, or the node's own announced address for a shard being
//!    drained) answers with an id the topology does not know. The newcomer takes the node's
//!    place, role and slots. A node at the *same* address is preferred. Each newcomer replaces
//!    one node at most, and the old id is forgotten: no phantom shard is left behind.
//! 3. **Down**: neither. After `fail_after` without an answer, the node is marked `fail`, so the
//!    nodes report `cluster_state:fail` and clients learn the truth, as in Valkey.
//!
//! A shard's data is not recovered by a replacement (one copy per shard, no persistence): the
//! slots are served again, empty. With replicas a promotion comes first (see issue 12).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::driver::DesiredShard;
use super::model::{NodeAddr, NodeId, ObservedNode, Role, ShardId, Topology, TopologyNode};

/// What a membership pass changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Change {
    /// `old` did not answer; `new` answered at `addr` and took its place in `shard`.
    Replaced { shard: ShardId, old: NodeId, new: NodeId, addr: NodeAddr },
    /// The node has not answered for `down_for`: marked `fail`.
    Failed { shard: ShardId, node: NodeId, down_for: Duration },
    /// A node marked `fail` answers again.
    Recovered { shard: ShardId, node: NodeId },
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Change::Replaced { shard, old, new, addr } => write!(
                f,
                "node {} at {addr} replaces {} in shard {} (the old id no longer answers)",
                short(&new.0),
                short(&old.0),
                short(&shard.0)
            ),
            Change::Failed { shard, node, down_for } => write!(
                f,
                "node {} of shard {} marked failed: no answer for {:.1}s",
                short(&node.0),
                short(&shard.0),
                down_for.as_secs_f64()
            ),
            Change::Recovered { shard, node } => {
                write!(
                    f,
                    "node {} of shard {} answers again: fail mark cleared",
                    short(&node.0),
                    short(&shard.0)
                )
            }
        }
    }
}

fn short(id: &str) -> &str {
    &id[..id.len().min(8)]
}

/// Applies the rules of the module docs to `topo` in place and returns what changed.
/// `down_for` holds how long each unanswering topology node has been silent (the driver's clock).
pub fn reconcile(
    topo: &mut Topology,
    desired: &[DesiredShard],
    observed: &[ObservedNode],
    down_for: &HashMap<NodeId, Duration>,
    fail_after: Duration,
) -> Vec<Change> {
    let answering: HashMap<&NodeAddr, &NodeId> =
        observed.iter().filter(|o| o.reachable()).filter_map(|o| Some((&o.addr, o.id.as_ref()?))).collect();
    let seen: HashSet<&NodeId> = answering.values().copied().collect();
    let known: HashSet<NodeId> =
        topo.shards.iter().flat_map(|s| s.nodes.iter().map(|n| n.id.clone())).collect();
    let mut taken: HashSet<NodeId> = HashSet::new();
    let mut changes = Vec::new();
    for shard in &mut topo.shards {
        let wanted: Vec<&NodeAddr> =
            desired.iter().filter(|d| d.id == shard.id).flat_map(|d| d.nodes.iter()).collect();
        for node in &mut shard.nodes {
            if seen.contains(&node.id) {
                if node.fail {
                    node.fail = false;
                    changes.push(Change::Recovered { shard: shard.id.clone(), node: node.id.clone() });
                }
                continue;
            }
            // Where this node may have come back: its own address first, then the shard's.
            let own = node.addr();
            let candidates = std::iter::once(&own).chain(wanted.iter().copied());
            let newcomer = candidates
                .filter_map(|a| Some((a, *answering.get(a)?)))
                .find(|(_, id)| !known.contains(*id) && !taken.contains(*id));
            if let Some((addr, new)) = newcomer {
                taken.insert(new.clone());
                changes.push(Change::Replaced {
                    shard: shard.id.clone(),
                    old: node.id.clone(),
                    new: new.clone(),
                    addr: addr.clone(),
                });
                node.id = new.clone();
                node.ip = addr.ip.clone();
                node.hostname = addr.hostname.clone();
                node.port = addr.port;
                node.fail = false;
                continue;
            }
            let silent = down_for.get(&node.id).copied().unwrap_or_default();
            if !node.fail && silent >= fail_after {
                node.fail = true;
                changes.push(Change::Failed {
                    shard: shard.id.clone(),
                    node: node.id.clone(),
                    down_for: silent,
                });
            }
        }
    }
    changes
}

/// Brings each desired shard's replicas in line with its desired addresses: a node answering at
/// one of them with an id the topology does not know joins the shard as a replica (it then
/// syncs from the primary by itself), and a replica whose address is no longer desired leaves.
/// Shards not yet in the topology are added whole by the driver. Returns one line per change.
pub fn join_replicas(
    topo: &mut Topology,
    desired: &[DesiredShard],
    observed: &[ObservedNode],
) -> Vec<String> {
    let mut known: HashSet<NodeId> =
        topo.shards.iter().flat_map(|s| s.nodes.iter().map(|n| n.id.clone())).collect();
    let mut out = Vec::new();
    for d in desired {
        let Some(shard) = topo.shards.iter_mut().find(|s| s.id == d.id) else { continue };
        let before = shard.nodes.len();
        shard.nodes.retain(|n| n.role == Role::Primary || d.nodes.iter().any(|a| n.at(a)));
        if shard.nodes.len() < before {
            out.push(format!(
                "shard {}: {} replica(s) no longer desired removed",
                short(&shard.id.0),
                before - shard.nodes.len()
            ));
        }
        for a in &d.nodes {
            let Some(id) = observed.iter().find(|o| o.reachable() && &o.addr == a).and_then(|o| o.id.clone())
            else {
                continue;
            };
            if known.contains(&id) {
                continue;
            }
            known.insert(id.clone());
            out.push(format!("node {} at {a} joins shard {} as a replica", short(&id.0), short(&shard.id.0)));
            shard.nodes.push(TopologyNode {
                id,
                ip: a.ip.clone(),
                hostname: a.hostname.clone(),
                port: a.port,
                role: Role::Replica,
                fail: false,
            });
        }
    }
    out
}

/// Shards that own no slots yet (new ones) and are not ready to take any: one of their desired
/// nodes is not in the topology, or one of their replicas is not in sync (link down, loading a
/// full sync, far behind). Slots move to such a shard only once its replicas are attached, so
/// a new shard never serves slots with fewer copies than asked for. Shards that already own
/// slots are not held back (a dead replica must not stall a scale-in).
pub fn unready_new_shards(
    topo: &Topology,
    desired: &[DesiredShard],
    observed: &[ObservedNode],
) -> Vec<ShardId> {
    desired
        .iter()
        .filter_map(|d| {
            let s = topo.shard(&d.id)?;
            if !s.slots.is_empty() {
                return None;
            }
            let attached = d.nodes.iter().all(|a| s.nodes.iter().any(|n| n.at(a)));
            let synced = s.replicas().all(|r| super::failover::in_sync(topo, observed, &r.id));
            (!attached || !synced).then(|| d.id.clone())
        })
        .collect()
}

/// Topology nodes that did not answer at any address this step.
pub fn silent_nodes<'a>(topo: &'a Topology, observed: &[ObservedNode]) -> Vec<&'a NodeId> {
    let seen: HashSet<&NodeId> =
        observed.iter().filter(|o| o.reachable()).filter_map(|o| o.id.as_ref()).collect();
    topo.shards.iter().flat_map(|s| s.nodes.iter()).map(|n| &n.id).filter(|id| !seen.contains(id)).collect()
}

/// Slots no answering primary serves: unowned slots (once any are owned) and the slots of
/// shards whose primary did not answer, is marked failed, or is fenced.
pub fn unserved_slots(topo: &Topology, observed: &[ObservedNode]) -> usize {
    let covered = topo.covered_slots();
    if covered == 0 {
        return 0;
    }
    let seen: HashSet<&NodeId> =
        observed.iter().filter(|o| o.reachable() && !o.fenced()).filter_map(|o| o.id.as_ref()).collect();
    let dead: usize = topo
        .shards
        .iter()
        .filter(|s| s.primary().is_none_or(|p| p.fail || !seen.contains(&p.id)))
        .map(|s| s.slot_count())
        .sum();
    usize::from(super::model::SLOT_COUNT) - covered + dead
}

#[cfg(test)]
mod tests {
    use super::super::model::{SlotRange, TopologyShard};
    use super::*;

    fn addr(port: u16) -> NodeAddr {
        NodeAddr { ip: "127.0.0.1".into(), hostname: None, port }
    }

    fn nid(c: char) -> NodeId {
        NodeId(c.to_string().repeat(40))
    }

    fn topo() -> Topology {
        let shard = |s: char, n: char, port: u16, r: SlotRange| TopologyShard {
            id: ShardId(s.to_string().repeat(40)),
            slots: vec![r],
            nodes: vec![TopologyNode {
                id: nid(n),
                ip: "127.0.0.1".into(),
                hostname: None,
                port,
                role: Role::Primary,
                fail: false,
            }],
        };
        Topology {
            epoch: 4,
            shards: vec![
                shard('a', '1', 7001, SlotRange::new(0, 8191)),
                shard('b', '2', 7002, SlotRange::new(8192, 16383)),
            ],
        }
    }

    fn desired(t: &Topology) -> Vec<DesiredShard> {
        t.shards.iter().map(|s| DesiredShard { id: s.id.clone(), nodes: vec![s.nodes[0].addr()] }).collect()
    }

    fn seen(port: u16, id: Option<NodeId>) -> ObservedNode {
        ObservedNode {
            addr: addr(port),
            error: id.is_none().then(|| "connection refused".into()),
            id,
            epoch: 0,
            metrics: None,
            migrations: Vec::new(),
            replication: None,
        }
    }

    #[test]
    fn a_new_id_at_a_known_address_takes_the_place_and_slots_of_the_old_one() {
        let mut t = topo();
        let d = desired(&t);
        let obs = [seen(7001, Some(nid('1'))), seen(7002, Some(nid('9')))];
        let ch = reconcile(&mut t, &d, &obs, &HashMap::new(), Duration::from_secs(5));
        assert_eq!(
            ch,
            vec![Change::Replaced {
                shard: t.shards[1].id.clone(),
                old: nid('2'),
                new: nid('9'),
                addr: addr(7002)
            }]
        );
        assert_eq!(t.shards[1].nodes[0].id, nid('9'));
        assert_eq!(t.shards[1].slots, vec![SlotRange::new(8192, 16383)]);
        assert_eq!(t.shards.len(), 2, "no phantom shard");
        assert!(t.validate().is_ok());
        assert_eq!(unserved_slots(&t, &obs), 0);
        // Idempotent.
        assert!(reconcile(&mut t, &d, &obs, &HashMap::new(), Duration::from_secs(5)).is_empty());
    }

    #[test]
    fn a_node_back_on_another_port_of_its_shard_replaces_the_old_entry() {
        let mut t = topo();
        let mut d = desired(&t);
        d[1].nodes = vec![addr(7999)];
        let obs = [seen(7001, Some(nid('1'))), seen(7999, Some(nid('9')))];
        let ch = reconcile(&mut t, &d, &obs, &HashMap::new(), Duration::from_secs(5));
        assert!(matches!(&ch[..], [Change::Replaced { addr, .. }] if addr.port == 7999));
        assert_eq!(t.shards[1].nodes[0].port, 7999);
    }

    #[test]
    fn a_known_id_is_never_taken_for_a_newcomer() {
        let mut t = topo();
        let d = desired(&t);
        // Node 1 answers at shard b's address (it moved there): that is not a replacement.
        let obs = [seen(7001, None), seen(7002, Some(nid('1')))];
        let ch = reconcile(&mut t, &d, &obs, &HashMap::new(), Duration::from_secs(5));
        assert!(ch.is_empty(), "{ch:?}");
        assert_eq!(t.shards[1].nodes[0].id, nid('2'));
    }

    #[test]
    fn silence_past_the_window_marks_fail_and_an_answer_clears_it() {
        let mut t = topo();
        let d = desired(&t);
        let obs = [seen(7001, Some(nid('1'))), seen(7002, None)];
        assert_eq!(silent_nodes(&t, &obs), vec![&nid('2')]);
        let short: HashMap<NodeId, Duration> = [(nid('2'), Duration::from_secs(2))].into();
        assert!(reconcile(&mut t, &d, &obs, &short, Duration::from_secs(5)).is_empty());
        assert_eq!(unserved_slots(&t, &obs), 8192, "an unanswering primary's slots are unserved");
        let long: HashMap<NodeId, Duration> = [(nid('2'), Duration::from_secs(6))].into();
        let ch = reconcile(&mut t, &d, &obs, &long, Duration::from_secs(5));
        assert!(matches!(&ch[..], [Change::Failed { node, .. }] if node == &nid('2')));
        assert!(t.shards[1].nodes[0].fail);
        assert!(t.to_json().contains(r#""fail":true"#));
        // Marked once.
        assert!(reconcile(&mut t, &d, &obs, &long, Duration::from_secs(5)).is_empty());
        let back = [seen(7001, Some(nid('1'))), seen(7002, Some(nid('2')))];
        let ch = reconcile(&mut t, &d, &back, &HashMap::new(), Duration::from_secs(5));
        assert!(matches!(&ch[..], [Change::Recovered { .. }]));
        assert!(!t.shards[1].nodes[0].fail);
        assert!(!t.to_json().contains("fail"));
        assert_eq!(unserved_slots(&t, &back), 0);
    }

    #[test]
    fn desired_replicas_join_and_undesired_ones_leave() {
        let mut t = topo();
        let mut d = desired(&t);
        d[0].nodes.push(addr(7101));
        let obs = [seen(7001, Some(nid('1'))), seen(7002, Some(nid('2'))), seen(7101, Some(nid('5')))];
        let ch = join_replicas(&mut t, &d, &obs);
        assert_eq!(ch.len(), 1, "{ch:?}");
        assert_eq!(t.shards[0].nodes[1].id, nid('5'));
        assert_eq!(t.shards[0].nodes[1].role, Role::Replica);
        assert!(join_replicas(&mut t, &d, &obs).is_empty(), "idempotent");
        d[0].nodes.pop();
        assert_eq!(join_replicas(&mut t, &d, &obs).len(), 1);
        assert_eq!(t.shards[0].nodes.len(), 1, "the primary stays");
    }

    #[test]
    fn a_new_shard_takes_slots_only_once_its_replicas_are_attached_and_in_sync() {
        use super::super::model::ReplicationInfo;
        let mut t = topo();
        let new = ShardId("c".repeat(40));
        t.shards.push(TopologyShard { id: new.clone(), slots: vec![], nodes: vec![] });
        let first = TopologyNode { port: 7003, id: nid('3'), ..t.shards[0].nodes[0].clone() };
        t.shards[2].nodes.push(first);
        let mut d = desired(&t);
        d[2].nodes.push(addr(7103));
        let repl = |role, replica_offset, link_up| ReplicationInfo {
            role: Some(role),
            master_repl_offset: 500,
            replica_offset,
            link_up,
            ..Default::default()
        };
        let mut primary = seen(7003, Some(nid('3')));
        primary.replication = Some(repl(Role::Primary, None, false));
        let mut replica = seen(7103, Some(nid('7')));
        replica.replication = Some(repl(Role::Replica, Some(500), false));
        let obs = vec![seen(7001, Some(nid('1'))), seen(7002, Some(nid('2'))), primary, replica];
        // The replica answers but has not joined the topology yet.
        assert_eq!(unready_new_shards(&t, &d, &obs), vec![new.clone()]);
        join_replicas(&mut t, &d, &obs);
        // Joined, link not up yet.
        assert_eq!(unready_new_shards(&t, &d, &obs), vec![new.clone()]);
        let mut obs = obs;
        obs[3].replication = Some(repl(Role::Replica, Some(500), true));
        assert!(unready_new_shards(&t, &d, &obs).is_empty());
        // Shards owning slots are never held back, whatever their replicas do.
        d[0].nodes.push(addr(7101));
        assert!(unready_new_shards(&t, &d, &obs).is_empty());
    }

    #[test]
    fn a_replacement_clears_a_fail_mark() {
        let mut t = topo();
        t.shards[1].nodes[0].fail = true;
        let d = desired(&t);
        let obs = [seen(7001, Some(nid('1'))), seen(7002, Some(nid('9')))];
        let ch = reconcile(&mut t, &d, &obs, &HashMap::new(), Duration::from_secs(5));
        assert!(matches!(&ch[..], [Change::Replaced { .. }]));
        assert!(!t.shards[1].nodes[0].fail);
    }
}
