//! Keyspace lookups on a 1M-key database: random GET-style lookups and SET-style overwrites,
//! and batches of 16 lookups with and without the executor's two-stage prefetch (hashes
//! computed beforehand in both, as the I/O threads do).

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use shoal_node::keyspace::db::set_hint;
use shoal_node::keyspace::hash::hash_key;
use shoal_node::keyspace::{Db, KeyHint, Value};

const KEYS: usize = 1_000_000;

fn key(i: usize) -> Vec<u8> {
    format!("key:{i:012}").into_bytes()
}

fn bench(c: &mut Criterion) {
    let mut db = Db::new();
    for i in 0..KEYS {
        db.set(&key(i), Value::from_bytes(b"xxxxxxxxxxxxxxxx"), None, 0);
    }
    let mut rng = fastrand::Rng::with_seed(7);
    // A long random sequence walked 16 at a time, so lookups miss the CPU caches as they do
    // under a real random-key load.
    let seq: Vec<Vec<u8>> = (0..1 << 16).map(|_| key(rng.usize(..KEYS))).collect();
    let mut pos = 0;
    let mut g = c.benchmark_group("keyspace_1m");
    g.throughput(Throughput::Elements(16));
    g.bench_function("lookup_batch16", |b| {
        b.iter(|| {
            let mut hits = 0;
            pos = (pos + 16) % seq.len();
            for k in &seq[pos..pos + 16] {
                hits += db.get(black_box(k), 0, 0, true).is_some() as usize;
            }
            hits
        })
    });
    let hints: Vec<KeyHint> = seq.iter().map(|k| KeyHint { hash: hash_key(k), slot: 0 }).collect();
    // The hints must be right, or the comparison measures misses.
    for (k, &h) in seq.iter().zip(&hints).take(64) {
        set_hint(k, Some(h));
        assert!(db.get(k, 0, 0, true).is_some());
    }
    set_hint(&[], None);
    for prefetch in [false, true] {
        let name =
            if prefetch { "hinted_lookup_batch16_prefetch" } else { "hinted_lookup_batch16_no_prefetch" };
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut hits = 0;
                pos = (pos + 16) % seq.len();
                let (keys, hs) = (&seq[pos..pos + 16], &hints[pos..pos + 16]);
                if prefetch {
                    for &h in hs {
                        db.prefetch_bucket(h);
                    }
                    for &h in hs {
                        db.prefetch_nodes(h);
                    }
                }
                for (k, &h) in keys.iter().zip(hs) {
                    set_hint(k, Some(h));
                    hits += db.get(black_box(k), 0, 0, true).is_some() as usize;
                }
                set_hint(&[], None);
                hits
            })
        });
    }
    g.bench_function("overwrite_batch16", |b| {
        b.iter(|| {
            pos = (pos + 16) % seq.len();
            for k in &seq[pos..pos + 16] {
                db.set(black_box(k), Value::from_bytes(b"yyyyyyyyyyyyyyyy"), None, 0);
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
