//! The packed stream against a `BTreeMap` model: appends, deletions, trims and ranges in
//! both directions must see exactly the model's entries.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;

type Fields = Vec<(Vec<u8>, Vec<u8>)>;
type Model = BTreeMap<StreamId, Fields>;

#[derive(Debug, Clone)]
enum Op {
    Add { ms_step: u64, seq_step: u64, fields: Vec<(Vec<u8>, Vec<u8>)> },
    Del(usize),
    MaxLen(u64),
    MinIdAt(usize),
    Range(usize, usize),
}

fn op() -> impl Strategy<Value = Op> {
    let field = (
        prop::sample::select(vec![b"f".to_vec(), b"g".to_vec(), b"name".to_vec()]),
        prop::collection::vec(any::<u8>(), 0..6),
    );
    prop_oneof![
        6 => (0u64..3, 0u64..3, prop::collection::vec(field, 1..4))
            .prop_map(|(ms_step, seq_step, fields)| Op::Add { ms_step, seq_step, fields }),
        2 => any::<usize>().prop_map(Op::Del),
        1 => (0u64..40).prop_map(Op::MaxLen),
        1 => any::<usize>().prop_map(Op::MinIdAt),
        2 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Op::Range(a, b)),
    ]
}

fn pick(model: &Model, i: usize) -> Option<StreamId> {
    if model.is_empty() {
        None
    } else {
        model.keys().nth(i % model.len()).copied()
    }
}

fn collect(s: &StreamValue, a: StreamId, b: StreamId, rev: bool) -> Vec<(StreamId, Fields)> {
    s.range(a, b, rev)
        .map(|e| (e.id, e.fields.iter().map(|(f, v)| (f.to_vec(), v.to_vec())).collect()))
        .collect()
}

proptest! {
    #[test]
    fn matches_a_btreemap(ops in prop::collection::vec(op(), 1..200), max_entries in 1u32..8) {
        let limits = NodeLimits { max_bytes: 4096, max_entries };
        let mut s = StreamValue::default();
        let mut model = Model::new();
        let mut next = StreamId::new(1, 0);
        for op in ops {
            match op {
                Op::Add { ms_step, seq_step, fields } => {
                    next = StreamId::new(next.ms + ms_step, if ms_step > 0 { seq_step } else { next.seq + seq_step + 1 });
                    let pairs: Vec<(&[u8], &[u8])> = fields.iter().map(|(f, v)| (&f[..], &v[..])).collect();
                    s.append(next, &pairs, limits);
                    model.insert(next, fields);
                }
                Op::Del(i) => {
                    if let Some(id) = pick(&model, i) {
                        model.remove(&id);
                        prop_assert_eq!(s.delete_ids(&[id, id]), 1);
                        prop_assert!(s.max_deleted_id >= id);
                    }
                }
                Op::MaxLen(n) => {
                    let removed = s.trim(Trim::MaxLen(n), false, 0);
                    while model.len() as u64 > n {
                        model.pop_first();
                    }
                    prop_assert!(removed <= 200);
                }
                Op::MinIdAt(i) => {
                    if let Some(id) = pick(&model, i) {
                        s.trim(Trim::MinId(id), false, 0);
                        model.retain(|k, _| *k >= id);
                    }
                }
                Op::Range(a, b) => {
                    if let (Some(a), Some(b)) = (pick(&model, a), pick(&model, b)) {
                        let want: Vec<_> = model.range(a..=b.max(a)).map(|(k, v)| (*k, v.clone())).collect();
                        prop_assert_eq!(collect(&s, a, b.max(a), false), want.clone());
                        let mut rev = want;
                        rev.reverse();
                        prop_assert_eq!(collect(&s, a, b.max(a), true), rev);
                    }
                }
            }
            prop_assert_eq!(s.len(), model.len() as u64);
            prop_assert_eq!(s.first_id, model.keys().next().copied().unwrap_or_default());
            prop_assert_eq!(s.edge_id(false), model.keys().last().copied());
        }
        let all: Vec<_> = model.iter().map(|(k, v)| (*k, v.clone())).collect();
        prop_assert_eq!(collect(&s, StreamId::MIN, StreamId::MAX, false), all);
    }
}

#[test]
fn approximate_trim_drops_whole_nodes_only() {
    let mut s = StreamValue::default();
    for i in 1..=250 {
        s.append(StreamId::new(i, 0), &[(b"f", b"v")], NodeLimits::default());
    }
    assert_eq!(s.node_count(), 3);
    assert_eq!(s.trim(Trim::MaxLen(180), true, 0), 0);
    assert_eq!(s.trim(Trim::MaxLen(150), true, 0), 100);
    assert_eq!(s.len(), 150);
    assert_eq!(s.first_id, StreamId::new(101, 0));
    assert_eq!(s.trim(Trim::MaxLen(10), true, 50), 0, "LIMIT below a node's size");
}

#[test]
fn small_entries_take_a_few_bytes() {
    let mut s = StreamValue::default();
    for i in 0..10_000u64 {
        s.append(StreamId::new(1_700_000_000_000 + i, 0), &[(b"f", b"1")], NodeLimits::default());
    }
    let per_entry = s.heap_size() as f64 / 10_000.0;
    assert!(per_entry < 8.0, "{per_entry} bytes per entry");
}
