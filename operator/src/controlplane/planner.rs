//! The topology planner: a pure function from the slots each shard owns now and the shards that
//! should own slots, to the balanced layout and the ordered slot moves that reach it.
//!
//! Why this shape:
//! - **Balanced**: every desired shard ends with ⌊16384/n⌋ or ⌈16384/n⌉ slots.
//! - **Few moves**: a kept shard keeps its lowest slots up to its quota and gives away only its
//!   excess; the extra slot of an uneven split goes to shards that already hold it, so the number
//!   of slots moved is the minimum for a balanced result. Unowned slots (a new cluster, a repaired
//!   hole) are claimed directly, with no migration, before any slot is moved.
//! - **Stable**: re-planning after any prefix of the moves has completed yields the same final
//!   layout and exactly the remaining moves, so a control plane that restarts mid-way converges to
//!   the same place without storing the plan.
//! - **Safe scale-in**: shards left out of `desired` give all their slots away; the driver removes
//!   them from the topology only once they own nothing, so no slot is ever unowned.
//! - **One migration per source**: moves are chunked (`max_slots_per_move`) and ordered round-robin
//!   by source; [`next_moves`] picks the moves that can start now, one per source and per target.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};

use super::model::{ranges_of, slot_count, ShardId, SlotRange, Topology, SLOT_COUNT};

/// A shard and the slots it owns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardSlots {
    pub id: ShardId,
    pub slots: Vec<SlotRange>,
}

/// What the planner starts from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanInput {
    /// Shards in the current topology, in ordinal order, with the slots they own.
    pub current: Vec<ShardSlots>,
    /// Shards that should own slots when the plan is done, in ordinal order. Shards of `current`
    /// not listed here are drained; shards listed here but not in `current` are new.
    pub desired: Vec<ShardId>,
}

impl PlanInput {
    /// The planner input for a topology and a list of desired shards.
    pub fn from_topology(t: &Topology, desired: Vec<ShardId>) -> PlanInput {
        PlanInput {
            current: t
                .shards
                .iter()
                .map(|s| ShardSlots { id: s.id.clone(), slots: s.slots.clone() })
                .collect(),
            desired,
        }
    }
}

/// Knobs of the planner.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanOptions {
    /// Largest number of slots in one migration job: smaller jobs show progress and retry less
    /// work after a failure; larger ones finish sooner.
    pub max_slots_per_move: usize,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions { max_slots_per_move: 2048 }
    }
}

/// One migration job: `slots` go from shard `from` to shard `to`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotMove {
    pub from: ShardId,
    pub to: ShardId,
    pub slots: Vec<SlotRange>,
}

/// The layout to reach and how to get there.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// Final ownership of every desired shard, in the order of `desired`.
    pub layout: Vec<ShardSlots>,
    /// Slots no shard owns now, given directly (no data to move) by the next topology push.
    pub claims: Vec<ShardSlots>,
    /// Migrations, in the order they should start.
    pub moves: Vec<SlotMove>,
    /// Shards to remove from the topology once they own no slot.
    pub drained: Vec<ShardId>,
    /// Shards to add to the topology (with no slots) before slots move to them.
    pub added: Vec<ShardId>,
}

impl Plan {
    /// True when the cluster already has the desired layout.
    pub fn is_done(&self) -> bool {
        self.claims.is_empty() && self.moves.is_empty() && self.drained.is_empty() && self.added.is_empty()
    }

    /// Slots the moves migrate.
    pub fn moved_slots(&self) -> usize {
        self.moves.iter().map(|m| slot_count(&m.slots)).sum()
    }
}

/// Why no plan can be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("at least one shard must own slots")]
    NoShards,
    #[error("{0} shards requested; at most 16384 can own slots")]
    TooManyShards(usize),
    #[error("shard {0} is listed twice")]
    DuplicateShard(ShardId),
    #[error("slot {0} is owned by more than one shard")]
    SlotOwnedTwice(u16),
    #[error("slot {0} is out of range")]
    SlotOutOfRange(u16),
}

/// Computes the plan. Pure and deterministic.
pub fn plan(input: &PlanInput, opts: &PlanOptions) -> Result<Plan, PlanError> {
    let n = input.desired.len();
    if n == 0 {
        return Err(PlanError::NoShards);
    }
    if n > usize::from(SLOT_COUNT) {
        return Err(PlanError::TooManyShards(n));
    }
    // A shard may appear once in each list, not twice in one.
    let mut seen = HashSet::new();
    for id in &input.desired {
        if !seen.insert(id) {
            return Err(PlanError::DuplicateShard(id.clone()));
        }
    }
    let mut seen_current = HashSet::new();
    for s in &input.current {
        if !seen_current.insert(&s.id) {
            return Err(PlanError::DuplicateShard(s.id.clone()));
        }
    }

    // Who owns each slot now.
    let mut owner: Vec<Option<&ShardId>> = vec![None; usize::from(SLOT_COUNT)];
    let mut owned: HashMap<&ShardId, Vec<u16>> = HashMap::new();
    for s in &input.current {
        let list = owned.entry(&s.id).or_default();
        for r in &s.slots {
            if r.end >= SLOT_COUNT || r.start > r.end {
                return Err(PlanError::SlotOutOfRange(r.end.max(r.start)));
            }
            for slot in r.slots() {
                if owner[usize::from(slot)].replace(&s.id).is_some() {
                    return Err(PlanError::SlotOwnedTwice(slot));
                }
                list.push(slot);
            }
        }
        list.sort_unstable();
    }
    let count = |id: &ShardId| owned.get(id).map_or(0, Vec::len);

    // Quotas: base for everyone, +1 for `extra` shards: first those already holding more than
    // base (they keep it: fewer moves), then by ordinal. Shards holding base or less move
    // nothing whichever gets the extra, and ranking them by ordinal rather than by count keeps
    // the choice the same while they fill up, so re-planning mid-way gives the same layout.
    let base = usize::from(SLOT_COUNT) / n;
    let extra = usize::from(SLOT_COUNT) % n;
    let mut ranked: Vec<usize> = (0..n).collect();
    ranked.sort_by_key(|&i| (count(&input.desired[i]) <= base, i));
    let mut quota = vec![base; n];
    for &i in ranked.iter().take(extra) {
        quota[i] += 1;
    }

    // Kept shards keep their lowest slots up to quota; the rest joins the pool.
    let desired_set: HashSet<&ShardId> = input.desired.iter().collect();
    let mut layout: Vec<Vec<u16>> = Vec::with_capacity(n);
    let mut donated: Vec<(u16, &ShardId)> = Vec::new();
    for (i, id) in input.desired.iter().enumerate() {
        let mine = owned.get(id).cloned().unwrap_or_default();
        let keep = mine.len().min(quota[i]);
        donated.extend(mine[keep..].iter().map(|&s| (s, id)));
        layout.push(mine[..keep].to_vec());
    }
    for s in &input.current {
        if !desired_set.contains(&s.id) {
            donated.extend(owned.get(&s.id).into_iter().flatten().map(|&slot| (slot, &s.id)));
        }
    }
    donated.sort_unstable_by_key(|&(slot, _)| slot);
    let unowned: Vec<u16> = (0..SLOT_COUNT).filter(|&s| owner[usize::from(s)].is_none()).collect();

    // Fill deficits in ordinal order: unowned slots first (free), then donated ones.
    let mut claims: BTreeMap<usize, Vec<u16>> = BTreeMap::new();
    let mut received: Vec<Vec<(u16, &ShardId)>> = vec![Vec::new(); n];
    let mut free = unowned.into_iter();
    let mut pool = donated.into_iter();
    for i in 0..n {
        let mut need = quota[i] - layout[i].len();
        while need > 0 {
            if let Some(slot) = free.next() {
                claims.entry(i).or_default().push(slot);
            } else if let Some(d) = pool.next() {
                received[i].push(d);
            } else {
                break;
            }
            need -= 1;
        }
    }

    // Group received slots by source, chunk, and order round-robin by source.
    let mut per_source: BTreeMap<usize, Vec<SlotMove>> = BTreeMap::new();
    let source_rank: HashMap<&ShardId, usize> =
        input.current.iter().enumerate().map(|(i, s)| (&s.id, i)).collect();
    for (i, got) in received.iter().enumerate() {
        let mut by_source: BTreeMap<usize, Vec<u16>> = BTreeMap::new();
        for &(slot, from) in got {
            by_source.entry(source_rank[from]).or_default().push(slot);
        }
        for (src, slots) in by_source {
            for chunk in slots.chunks(opts.max_slots_per_move.max(1)) {
                per_source.entry(src).or_default().push(SlotMove {
                    from: input.current[src].id.clone(),
                    to: input.desired[i].clone(),
                    slots: ranges_of(chunk.iter().copied()),
                });
            }
        }
    }
    let mut moves = Vec::new();
    let mut queues: Vec<std::vec::IntoIter<SlotMove>> =
        per_source.into_values().map(Vec::into_iter).collect();
    loop {
        let before = moves.len();
        for q in &mut queues {
            if let Some(m) = q.next() {
                moves.push(m);
            }
        }
        if moves.len() == before {
            break;
        }
    }

    for (i, got) in received.iter().enumerate() {
        layout[i].extend(got.iter().map(|&(s, _)| s));
    }
    for (&i, slots) in &claims {
        layout[i].extend(slots);
    }
    let current_set: HashSet<&ShardId> = input.current.iter().map(|s| &s.id).collect();
    Ok(Plan {
        layout: input
            .desired
            .iter()
            .zip(layout)
            .map(|(id, slots)| ShardSlots { id: id.clone(), slots: ranges_of(slots) })
            .collect(),
        claims: claims
            .into_iter()
            .map(|(i, slots)| ShardSlots { id: input.desired[i].clone(), slots: ranges_of(slots) })
            .collect(),
        moves,
        drained: input
            .current
            .iter()
            .filter(|s| !desired_set.contains(&s.id))
            .map(|s| s.id.clone())
            .collect(),
        added: input.desired.iter().filter(|id| !current_set.contains(id)).cloned().collect(),
    })
}

/// The moves that can start now: in plan order, skipping any whose source or target shard is
/// already busy (in `busy`, or picked earlier in this call). One migration per shard at a time
/// keeps each node's fork-and-stream work bounded and never runs two conflicting jobs.
pub fn next_moves<'a>(moves: &'a [SlotMove], busy: &HashSet<ShardId>) -> Vec<&'a SlotMove> {
    let mut taken: HashSet<&ShardId> = busy.iter().collect();
    let mut out = Vec::new();
    for m in moves {
        if !taken.contains(&m.from) && !taken.contains(&m.to) {
            taken.insert(&m.from);
            taken.insert(&m.to);
            out.push(m);
        }
    }
    out
}

#[cfg(test)]
#[path = "planner_tests.rs"]
mod tests;
