//! Planner tests: worked examples and properties (every slot owned exactly once, balance,
//! near-minimal moves, moves valid in order, stable under re-planning).

use std::collections::HashSet;

use proptest::prelude::*;

use super::*;

fn sid(i: u32) -> ShardId {
    ShardId::for_ordinal("t", i)
}

fn ids(n: u32) -> Vec<ShardId> {
    (0..n).map(sid).collect()
}

/// Applies moves and claims to an ownership vector (slot -> shard), checking each move's
/// slots are owned by its source at that moment.
fn apply(owner: &mut [Option<ShardId>], plan: &Plan) {
    for c in &plan.claims {
        for r in &c.slots {
            for s in r.slots() {
                assert!(owner[usize::from(s)].is_none(), "claim of owned slot {s}");
                owner[usize::from(s)] = Some(c.id.clone());
            }
        }
    }
    for m in &plan.moves {
        assert_ne!(m.from, m.to);
        for r in &m.slots {
            for s in r.slots() {
                assert_eq!(owner[usize::from(s)].as_ref(), Some(&m.from), "slot {s} not at source");
                owner[usize::from(s)] = Some(m.to.clone());
            }
        }
    }
}

fn owner_of(current: &[ShardSlots]) -> Vec<Option<ShardId>> {
    let mut owner = vec![None; usize::from(SLOT_COUNT)];
    for s in current {
        for r in &s.slots {
            for slot in r.slots() {
                owner[usize::from(slot)] = Some(s.id.clone());
            }
        }
    }
    owner
}

fn to_current(owner: &[Option<ShardId>], order: &[ShardId]) -> Vec<ShardSlots> {
    order
        .iter()
        .map(|id| ShardSlots {
            id: id.clone(),
            slots: ranges_of((0..SLOT_COUNT).filter(|&s| owner[usize::from(s)].as_ref() == Some(id))),
        })
        .collect()
}

fn check(input: &PlanInput, opts: &PlanOptions) -> Plan {
    let p = plan(input, opts).unwrap();
    let n = input.desired.len();
    let base = usize::from(SLOT_COUNT) / n;
    // Every slot owned exactly once, by a desired shard, balanced.
    let mut owner = owner_of(&input.current);
    apply(&mut owner, &p);
    for (s, o) in owner.iter().enumerate() {
        let o = o.as_ref().unwrap_or_else(|| panic!("slot {s} unowned"));
        assert!(input.desired.contains(o), "slot {s} left on a drained shard");
    }
    for l in &p.layout {
        let c = slot_count(&l.slots);
        assert!(c == base || c == base + 1, "unbalanced: {c}");
        let got: Vec<u16> =
            (0..SLOT_COUNT).filter(|&s| owner[usize::from(s)].as_ref() == Some(&l.id)).collect();
        assert_eq!(ranges_of(got), l.slots, "layout differs from the result of the moves");
    }
    // Chunks respect the limit.
    for m in &p.moves {
        assert!(slot_count(&m.slots) <= opts.max_slots_per_move);
    }
    // Near-minimal: any balanced result must move at least the drained shards' slots and each
    // kept shard's slots above base+1; we move at most one more slot per kept shard than that.
    let desired: HashSet<&ShardId> = input.desired.iter().collect();
    let lower: usize = input
        .current
        .iter()
        .map(|s| {
            let c = slot_count(&s.slots);
            if desired.contains(&s.id) {
                c.saturating_sub(base + 1)
            } else {
                c
            }
        })
        .sum();
    assert!(p.moved_slots() >= lower);
    assert!(p.moved_slots() <= lower + n, "moved {} lower bound {lower}", p.moved_slots());
    p
}

#[test]
fn bootstrap_claims_everything_without_moves() {
    let input = PlanInput { current: vec![], desired: ids(3) };
    let p = check(&input, &PlanOptions::default());
    assert!(p.moves.is_empty());
    assert_eq!(p.added, ids(3));
    assert_eq!(p.layout[0].slots, vec![SlotRange::new(0, 5461)]);
    assert_eq!(p.layout[1].slots, vec![SlotRange::new(5462, 10922)]);
    assert_eq!(p.layout[2].slots, vec![SlotRange::new(10923, 16383)]);
}

#[test]
fn two_to_three_moves_a_third() {
    let current = vec![
        ShardSlots { id: sid(0), slots: vec![SlotRange::new(0, 8191)] },
        ShardSlots { id: sid(1), slots: vec![SlotRange::new(8192, 16383)] },
    ];
    let input = PlanInput { current, desired: ids(3) };
    let p = check(&input, &PlanOptions { max_slots_per_move: 16384 });
    assert_eq!(p.moved_slots(), 8192 - 5462 + 8192 - 5461);
    assert_eq!(p.moves.len(), 2);
    assert_eq!(p.added, vec![sid(2)]);
    // One migration per shard at a time: both moves target shard 2, so one starts.
    assert_eq!(next_moves(&p.moves, &HashSet::new()).len(), 1);
}

#[test]
fn three_to_two_drains_the_last_shard() {
    let boot = plan(&PlanInput { current: vec![], desired: ids(3) }, &PlanOptions::default()).unwrap();
    let input = PlanInput { current: boot.layout, desired: ids(2) };
    let p = check(&input, &PlanOptions::default());
    assert_eq!(p.drained, vec![sid(2)]);
    assert_eq!(p.moved_slots(), 5461);
    assert!(p.moves.iter().all(|m| m.from == sid(2)));
}

#[test]
fn done_when_balanced() {
    let boot = plan(&PlanInput { current: vec![], desired: ids(4) }, &PlanOptions::default()).unwrap();
    let p = plan(&PlanInput { current: boot.layout, desired: ids(4) }, &PlanOptions::default()).unwrap();
    assert!(p.is_done(), "{p:?}");
}

#[test]
fn errors() {
    let o = PlanOptions::default();
    assert_eq!(plan(&PlanInput { current: vec![], desired: vec![] }, &o), Err(PlanError::NoShards));
    assert_eq!(
        plan(&PlanInput { current: vec![], desired: vec![sid(0), sid(0)] }, &o),
        Err(PlanError::DuplicateShard(sid(0)))
    );
    let current = vec![
        ShardSlots { id: sid(0), slots: vec![SlotRange::new(0, 10)] },
        ShardSlots { id: sid(1), slots: vec![SlotRange::new(5, 6)] },
    ];
    assert_eq!(plan(&PlanInput { current, desired: ids(2) }, &o), Err(PlanError::SlotOwnedTwice(5)));
}

#[test]
fn next_moves_one_per_shard() {
    let m = |a: u32, b: u32| SlotMove { from: sid(a), to: sid(b), slots: vec![SlotRange::new(0, 0)] };
    let moves = vec![m(0, 3), m(1, 3), m(1, 4), m(2, 5), m(0, 4)];
    let picked: Vec<_> = next_moves(&moves, &HashSet::new()).into_iter().cloned().collect();
    assert_eq!(picked, vec![m(0, 3), m(1, 4), m(2, 5)]);
    let busy: HashSet<ShardId> = [sid(0)].into_iter().collect();
    let picked: Vec<_> = next_moves(&moves, &busy).into_iter().cloned().collect();
    assert_eq!(picked, vec![m(1, 3), m(2, 5)]);
}

/// A random current layout: `k` shards own random contiguous runs, with possible holes.
fn arb_layout() -> impl Strategy<Value = (Vec<ShardSlots>, usize)> {
    (1usize..7, prop::collection::vec(0u16..SLOT_COUNT, 0..12), any::<bool>()).prop_map(
        |(k, mut cuts, holes)| {
            cuts.sort_unstable();
            cuts.dedup();
            let mut bounds = vec![0u16];
            bounds.extend(cuts.into_iter().filter(|&c| c > 0));
            bounds.push(SLOT_COUNT);
            let mut slots: Vec<Vec<u16>> = vec![Vec::new(); k];
            for (j, w) in bounds.windows(2).enumerate() {
                if holes && j % 3 == 2 {
                    continue;
                }
                slots[j % k].extend(w[0]..w[1]);
            }
            let current = slots
                .into_iter()
                .enumerate()
                .map(|(i, s)| ShardSlots { id: sid(i as u32), slots: ranges_of(s) })
                .collect();
            (current, k)
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn any_resize_keeps_every_slot_owned_once((current, k) in arb_layout(), target in 1u32..9, chunk in 1usize..5000) {
        let _ = k;
        let input = PlanInput { current, desired: ids(target) };
        check(&input, &PlanOptions { max_slots_per_move: chunk });
    }

    #[test]
    fn replanning_after_any_prefix_converges((current, _k) in arb_layout(), target in 1u32..9, cut in 0usize..64) {
        let opts = PlanOptions { max_slots_per_move: 1500 };
        let input = PlanInput { current: current.clone(), desired: ids(target) };
        let p = plan(&input, &opts).unwrap();
        let done = cut.min(p.moves.len());
        let mut owner = owner_of(&current);
        let prefix = Plan { claims: p.claims.clone(), moves: p.moves[..done].to_vec(), ..Plan::default() };
        apply(&mut owner, &prefix);
        let mut order: Vec<ShardId> = current.iter().map(|s| s.id.clone()).collect();
        for id in &p.added {
            order.push(id.clone());
        }
        let again = plan(&PlanInput { current: to_current(&owner, &order), desired: ids(target) }, &opts).unwrap();
        prop_assert_eq!(&again.layout, &p.layout);
        prop_assert!(again.claims.is_empty());
        let moved_before: usize = p.moves[..done].iter().map(|m| slot_count(&m.slots)).sum();
        prop_assert_eq!(again.moved_slots(), p.moved_slots() - moved_before);
    }
}
