//! Keyspace lookups on a 1M-key database: random GET-style lookups and SET-style overwrites.
//! The baseline for the prefetching table of the io_threads issue.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use shoal_node::keyspace::{Db, Value};

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
