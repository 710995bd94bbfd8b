//! Unit tests of the promotion choice, the topology swap and the planned-failover state machine.

use std::collections::HashSet;
use std::time::Duration;

use super::super::model::{NodeAddr, ObservedNode, SlotRange, TopologyNode};
use super::*;

fn nid(c: char) -> NodeId {
    NodeId(c.to_string().repeat(40))
}

fn node(c: char, port: u16, role: Role) -> TopologyNode {
    TopologyNode { id: nid(c), ip: "127.0.0.1".into(), hostname: None, port, role, fail: false }
}

/// Shard `a`: primary 1, replicas 2 and 3.
fn topo() -> Topology {
    Topology {
        epoch: 7,
        shards: vec![TopologyShard {
            id: ShardId("a".repeat(40)),
            slots: vec![SlotRange::new(0, 16383)],
            nodes: vec![
                node('1', 7001, Role::Primary),
                node('2', 7002, Role::Replica),
                node('3', 7003, Role::Replica),
            ],
        }],
    }
}

fn repl(role: Role, offset: u64) -> ReplicationInfo {
    ReplicationInfo {
        role: Some(role),
        master_repl_offset: offset,
        replica_offset: (role == Role::Replica).then_some(offset),
        link_up: role == Role::Replica,
        ..Default::default()
    }
}

fn seen(c: char, port: u16, r: Option<ReplicationInfo>) -> ObservedNode {
    ObservedNode {
        addr: NodeAddr { ip: "127.0.0.1".into(), hostname: None, port },
        id: Some(nid(c)),
        epoch: 7,
        metrics: None,
        migrations: Vec::new(),
        replication: r,
        error: None,
    }
}

fn silent(port: u16) -> ObservedNode {
    ObservedNode { id: None, replication: None, error: Some("refused".into()), ..seen('x', port, None) }
}

#[test]
fn the_answering_replica_with_the_highest_offset_is_chosen() {
    let t = topo();
    let none = HashSet::new();
    let obs = [
        silent(7001),
        seen('2', 7002, Some(repl(Role::Replica, 90))),
        seen('3', 7003, Some(repl(Role::Replica, 120))),
    ];
    assert_eq!(candidate(&t.shards[0], &obs, &none), Some((nid('3'), 120)));
    // Ties go to topology order.
    let obs = [
        silent(7001),
        seen('2', 7002, Some(repl(Role::Replica, 5))),
        seen('3', 7003, Some(repl(Role::Replica, 5))),
    ];
    assert_eq!(candidate(&t.shards[0], &obs, &none), Some((nid('2'), 5)));
}

#[test]
fn fenced_syncing_failed_silent_and_excluded_replicas_are_never_chosen() {
    let mut t = topo();
    let mut syncing = repl(Role::Replica, 500);
    syncing.sync_in_progress = true;
    let mut fenced = repl(Role::Replica, 400);
    fenced.fenced = true;
    let obs = [silent(7001), seen('2', 7002, Some(syncing)), seen('3', 7003, Some(fenced))];
    assert_eq!(candidate(&t.shards[0], &obs, &HashSet::new()), None);
    let obs = [silent(7001), silent(7002), seen('3', 7003, Some(repl(Role::Replica, 1)))];
    assert_eq!(candidate(&t.shards[0], &obs, &HashSet::new()), Some((nid('3'), 1)));
    assert_eq!(candidate(&t.shards[0], &obs, &[nid('3')].into()), None);
    t.shards[0].nodes[2].fail = true;
    assert_eq!(candidate(&t.shards[0], &obs, &HashSet::new()), None);
    // No replication info (an old node): not a candidate.
    let obs = [silent(7001), seen('2', 7002, None)];
    t.shards[0].nodes[2].fail = false;
    assert_eq!(candidate(&t.shards[0], &obs, &HashSet::new()), None);
}

#[test]
fn promotion_swaps_roles_and_lists_the_new_primary_first() {
    let mut t = topo();
    t.shards[0].nodes[0].fail = true;
    let old = promote(&mut t, &ShardId("a".repeat(40)), &nid('3')).unwrap();
    assert_eq!(old, nid('1'));
    let s = &t.shards[0];
    assert_eq!(s.nodes[0].id, nid('3'));
    assert_eq!(s.primary().unwrap().id, nid('3'));
    assert_eq!(s.replicas().count(), 2);
    assert!(s.nodes.iter().any(|n| n.id == nid('1') && n.role == Role::Replica && n.fail));
    t.validate().unwrap();
    assert!(matches!(promote(&mut t, &s_id(), &nid('3')), Err(FailoverError::NotAReplica(..))));
    assert!(matches!(promote(&mut t, &ShardId("b".repeat(40)), &nid('2')), Err(FailoverError::NoShard(_))));
}

fn s_id() -> ShardId {
    ShardId("a".repeat(40))
}

#[test]
fn automatic_promotes_for_a_failed_fenced_or_replaced_primary_only() {
    let healthy = [
        seen('1', 7001, Some(repl(Role::Primary, 100))),
        seen('2', 7002, Some(repl(Role::Replica, 100))),
        seen('3', 7003, Some(repl(Role::Replica, 99))),
    ];
    let t = topo();
    assert!(automatic(&t, &healthy, &HashSet::new()).is_empty());
    // Silent but not yet marked fail: wait for the failure-detection window.
    let obs = [silent(7001), healthy[1].clone(), healthy[2].clone()];
    assert!(automatic(&t, &obs, &HashSet::new()).is_empty());
    let mut failed = t.clone();
    failed.shards[0].nodes[0].fail = true;
    let d = automatic(&failed, &obs, &HashSet::new());
    assert_eq!(d.len(), 1);
    assert_eq!(
        (d[0].new.clone(), d[0].old.clone(), d[0].cause.clone()),
        (nid('2'), nid('1'), Cause::PrimaryFailed)
    );
    // Fenced: answers, but its data is gone.
    let mut f = repl(Role::Primary, 0);
    f.fenced = true;
    let obs = [seen('1', 7001, Some(f)), healthy[1].clone(), healthy[2].clone()];
    assert_eq!(automatic(&t, &obs, &HashSet::new())[0].cause, Cause::PrimaryFenced);
    // Replaced by a newcomer with no data.
    assert_eq!(automatic(&t, &healthy, &[nid('1')].into())[0].cause, Cause::PrimaryReplaced);
    // No usable replica: nothing to do.
    let obs = [silent(7001), silent(7002), silent(7003)];
    assert!(automatic(&failed, &obs, &HashSet::new()).is_empty());
}

#[test]
fn failover_requests_force_at_once_default_as_planned() {
    let t = topo();
    let mut asks = repl(Role::Replica, 10);
    asks.failover_requested = Some(FailoverKind::Takeover);
    let obs = [
        seen('1', 7001, Some(repl(Role::Primary, 10))),
        seen('2', 7002, Some(repl(Role::Replica, 10))),
        seen('3', 7003, Some(asks.clone())),
    ];
    let d = automatic(&t, &obs, &HashSet::new());
    assert_eq!((d[0].new.clone(), d[0].cause.clone()), (nid('3'), Cause::Requested(FailoverKind::Takeover)));
    assert!(planned_requests(&t, &obs).is_empty());
    asks.failover_requested = Some(FailoverKind::Default);
    let obs = [obs[0].clone(), obs[1].clone(), seen('3', 7003, Some(asks))];
    assert!(automatic(&t, &obs, &HashSet::new()).is_empty());
    assert_eq!(planned_requests(&t, &obs), vec![(s_id(), nid('3'))]);
}

#[test]
fn lags_are_primary_offset_minus_replica_offset() {
    let t = topo();
    let obs = [
        seen('1', 7001, Some(repl(Role::Primary, 1000))),
        seen('2', 7002, Some(repl(Role::Replica, 1000))),
        seen('3', 7003, Some(repl(Role::Replica, 400))),
    ];
    let lags = replica_lags(&t, &obs);
    assert_eq!(lags.iter().map(|l| l.lag_bytes).collect::<Vec<_>>(), vec![0, 600]);
    assert!(in_sync(&t, &obs, &nid('3')));
    assert!(!in_sync(&t, &obs, &nid('1')), "a primary is not an in-sync replica");
    let mut down = repl(Role::Replica, 1000);
    down.link_up = false;
    let obs = [obs[0].clone(), seen('2', 7002, Some(down)), obs[2].clone()];
    assert!(!in_sync(&t, &obs, &nid('2')));
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn planned_failover_pauses_waits_for_the_exact_offset_pushes_new_primary_first_then_unpauses() {
    use Stage::*;
    let mut m = Planned::new(ms(1000));
    assert_eq!(m.next(Event::Start, ms(0)), Command::Run(Pause));
    assert_eq!(m.next(Event::Done, ms(1)), Command::Run(ReadPrimaryOffset));
    assert_eq!(m.next(Event::PrimaryOffset(500), ms(2)), Command::Run(PollReplica));
    assert_eq!(m.target(), 500);
    assert_eq!(m.next(Event::Replica(repl(Role::Replica, 499)), ms(3)), Command::Run(PollReplica));
    let mut loading = repl(Role::Replica, 500);
    loading.sync_in_progress = true;
    assert_eq!(m.next(Event::Replica(loading), ms(4)), Command::Run(PollReplica));
    assert_eq!(m.next(Event::Replica(repl(Role::Replica, 500)), ms(5)), Command::Run(PushNewPrimary));
    assert_eq!(m.next(Event::Done, ms(6)), Command::Run(PushOldPrimary));
    assert_eq!(m.next(Event::Done, ms(7)), Command::Run(PushRest));
    assert_eq!(m.next(Event::Done, ms(8)), Command::Run(Unpause));
    assert_eq!(m.next(Event::Done, ms(9)), Command::Promoted);
}

#[test]
fn a_replica_that_does_not_catch_up_in_time_aborts_and_unpauses() {
    use Stage::*;
    let mut m = Planned::new(ms(1000));
    m.next(Event::Start, ms(0));
    m.next(Event::Done, ms(0));
    m.next(Event::PrimaryOffset(500), ms(0));
    assert_eq!(m.next(Event::Replica(repl(Role::Replica, 100)), ms(999)), Command::Run(PollReplica));
    assert_eq!(m.next(Event::Replica(repl(Role::Replica, 100)), ms(1000)), Command::Run(Unpause));
    let Command::Aborted(why) = m.next(Event::Done, ms(1001)) else { panic!("aborted") };
    assert!(why.contains("100 of 500"), "{why}");
}

#[test]
fn failures_before_the_promotion_change_nothing_and_unpause() {
    use Stage::*;
    let mut m = Planned::new(ms(1000));
    m.next(Event::Start, ms(0));
    assert!(
        matches!(m.next(Event::Refused("ERR unknown".into()), ms(0)), Command::Aborted(_)),
        "pause refused"
    );
    let mut m = Planned::new(ms(1000));
    m.next(Event::Start, ms(0));
    m.next(Event::Done, ms(0));
    assert_eq!(m.next(Event::Lost("reset".into()), ms(0)), Command::Run(Unpause));
    assert!(matches!(m.next(Event::Done, ms(0)), Command::Aborted(_)));
    // The replica refuses the push (a stale epoch): unpause, nothing changed.
    let mut m = Planned::new(ms(1000));
    for ev in [Event::Start, Event::Done, Event::PrimaryOffset(1), Event::Replica(repl(Role::Replica, 1))] {
        m.next(ev, ms(0));
    }
    assert_eq!(m.next(Event::Refused("stale epoch".into()), ms(0)), Command::Run(Unpause));
    assert!(matches!(m.next(Event::Done, ms(0)), Command::Aborted(_)));
}

#[test]
fn an_unknown_push_outcome_leaves_the_old_primary_paused_for_the_next_step() {
    use Stage::*;
    let mut m = Planned::new(ms(1000));
    for ev in [Event::Start, Event::Done, Event::PrimaryOffset(1), Event::Replica(repl(Role::Replica, 1))] {
        m.next(ev, ms(0));
    }
    assert!(matches!(m.next(Event::Lost("timeout".into()), ms(0)), Command::Unsettled(_)));
    // The old primary did not take the topology: push the rest, but never unpause it.
    let mut m = Planned::new(ms(1000));
    for ev in [
        Event::Start,
        Event::Done,
        Event::PrimaryOffset(1),
        Event::Replica(repl(Role::Replica, 1)),
        Event::Done,
    ] {
        m.next(ev, ms(0));
    }
    assert_eq!(m.next(Event::Lost("reset".into()), ms(0)), Command::Run(PushRest));
    assert!(matches!(m.next(Event::Done, ms(0)), Command::Unsettled(_)));
}
