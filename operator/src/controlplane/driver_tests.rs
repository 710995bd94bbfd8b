//! Unit tests of the driver's pure helpers.

use super::super::model::MigrationOperation;
use super::*;

fn shard(id: &str, node: &str, slots: Vec<SlotRange>) -> TopologyShard {
    TopologyShard {
        id: ShardId(id.into()),
        slots,
        nodes: vec![TopologyNode {
            id: NodeId(node.into()),
            ip: "127.0.0.1".into(),
            hostname: None,
            port: 1,
            role: Role::Primary,
            fail: false,
        }],
    }
}

fn job(src: &str, dst: &str, r: SlotRange, state: MigrationState, t: u64) -> MigrationJob {
    MigrationJob {
        name: format!("{src}{dst}{t}"),
        operation: MigrationOperation::Export,
        slots: vec![r],
        source_node: NodeId(src.into()),
        target_node: NodeId(dst.into()),
        state,
        message: String::new(),
        last_update: t,
    }
}

#[test]
fn finished_jobs_fold_into_the_topology_newest_first() {
    let mut t = Topology {
        epoch: 5,
        shards: vec![shard("A", "a", vec![SlotRange::new(0, 16383)]), shard("B", "b", vec![])],
    };
    let ns: HashMap<NodeId, ShardId> =
        [(NodeId("a".into()), ShardId("A".into())), (NodeId("b".into()), ShardId("B".into()))].into();
    let jobs = [
        job("a", "b", SlotRange::new(0, 9), MigrationState::Success, 1),
        // Moved back later: the newest success wins.
        job("b", "a", SlotRange::new(0, 4), MigrationState::Success, 2),
        // Failed and running jobs change nothing.
        job("a", "b", SlotRange::new(100, 200), MigrationState::Failed, 3),
        job("a", "b", SlotRange::new(300, 400), MigrationState::Running, 3),
    ];
    assert_eq!(fold_finished_jobs(&mut t, jobs.iter(), &ns), 5);
    assert_eq!(t.shards[1].slots, vec![SlotRange::new(5, 9)]);
    assert_eq!(t.shards[0].slots, vec![SlotRange::new(0, 4), SlotRange::new(10, 16383)]);
    t.validate().unwrap();
    // Idempotent.
    assert_eq!(fold_finished_jobs(&mut t, jobs.iter(), &ns), 0);
}
