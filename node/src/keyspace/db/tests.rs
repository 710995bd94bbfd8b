//! Unit tests of `Db`: expiry, TTL bookkeeping, SCAN order under deletes and growth.

use super::*;

#[test]
fn lazy_expiry_removes_and_counts() {
    let mut db = Db::new();
    db.set(b"a", Value::Int(1), Some(100), 0);
    assert!(db.get(b"a", 100, 0, true).is_some(), "alive at its deadline, as in Valkey");
    assert!(db.get(b"a", 101, 0, true).is_none());
    assert_eq!(db.len(), 0);
    assert_eq!(db.volatile_len(), 0);
    assert_eq!(db.expired, 1);
}

#[test]
fn ttl_changes_keep_the_volatile_index_in_step() {
    for mut db in [Db::new(), Db::new_cluster()] {
        db.set(b"k", Value::Str(Bytes::from_static(b"v")), None, 0);
        assert!(db.set_expire(b"k", Some(50)));
        assert_eq!(db.volatile_len(), 1);
        db.get(b"k", 0, 0, false).expect("live").set_value(Value::Int(3));
        assert_eq!(db.volatile_len(), 1);
        assert_eq!(db.get(b"k", 0, 0, false).expect("live").expire_at(), Some(50));
        db.set(b"k", Value::Int(4), None, 0);
        assert_eq!(db.volatile_len(), 0);
        db.set(b"k", Value::Int(5), Some(10), 0);
        assert_eq!(db.volatile_len(), 1);
        assert!(db.remove(b"k").is_some());
        assert_eq!((db.len(), db.volatile_len()), (0, 0));
    }
}

#[test]
fn scan_returns_every_stable_key_despite_deletes_and_growth() {
    for mut db in [Db::new(), Db::new_cluster()] {
        for i in 0..1000 {
            db.set(format!("k{i}").as_bytes(), Value::Int(i), None, 0);
        }
        let mut seen = std::collections::HashMap::<Vec<u8>, usize>::new();
        let mut cursor = 0;
        let mut step = 0;
        loop {
            cursor = db.scan(cursor, 10, 0, |k, _| {
                *seen.entry(k.to_vec()).or_default() += 1;
            });
            step += 1;
            db.remove(format!("k{}", 900 + step % 100).as_bytes());
            db.set(format!("new{step}").as_bytes(), Value::Int(0), None, 0);
            if cursor == 0 {
                break;
            }
        }
        for i in 0..900 {
            assert_eq!(seen.get(format!("k{i}").as_bytes()), Some(&1), "k{i}");
        }
    }
}

#[test]
fn active_expiry_samples_volatile_keys() {
    let mut db = Db::new();
    for i in 0..100 {
        db.set(format!("k{i}").as_bytes(), Value::Int(i), Some(10), 0);
    }
    db.set(b"keep", Value::Int(1), None, 0);
    let mut total = 0;
    while db.volatile_len() > 0 {
        total += db.expire_sample(20, 11).expired;
    }
    assert_eq!(total, 100);
    assert_eq!(db.len(), 1);
}

#[test]
fn lfu_counter_survives_an_overwrite() {
    let mut db = Db::new();
    db.set(b"k", Value::Int(1), None, (7 << 8) | 40);
    db.set(b"k", Value::Int(2), None, (9 << 8) | 5);
    assert_eq!(db.get(b"k", 0, 0, false).expect("live").lru(), (9 << 8) | 5, "LRU: the new clock");
    db.lfu = Some(Lfu { log_factor: 10, decay_time: 1 });
    assert!(db.remove(b"k").is_some());
    db.set(b"k", Value::Int(3), None, (7 << 8) | 40);
    db.set(b"k", Value::Int(4), None, (9 << 8) | 5);
    assert_eq!(db.get(b"k", 0, 0, false).expect("live").lru(), (7 << 8) | 40, "LFU: the old counter");
}

#[test]
fn cluster_mode_keeps_keys_per_slot() {
    let mut db = Db::new_cluster();
    for i in 0..50 {
        db.set(format!("{{tag}}{i}").as_bytes(), Value::Int(i), None, 0);
    }
    db.set(b"other", Value::Int(0), None, 0);
    let slot = key_slot(b"tag");
    assert_eq!(db.count_in_slot(slot, 0), 50);
    assert_eq!(db.keys_in_slot(slot, 10, 0).len(), 10);
    assert_eq!(db.count_in_slot(key_slot(b"other"), 0), 1);
    assert!(db.random_key(0).is_some());
}

#[test]
fn hint_is_used_only_for_its_own_argument() {
    let mut db = Db::new();
    let key = Bytes::from_static(b"hinted");
    db.set(&key, Value::Int(1), None, 0);
    // A wrong hint for another buffer with the same bytes must be ignored.
    let other = Bytes::copy_from_slice(b"hinted");
    set_hint(&other, Some(KeyHint { hash: 1, slot: 0 }));
    assert!(db.get(&key, 0, 0, false).is_some());
    set_hint(&key, Some(KeyHint { hash: hash_key(&key), slot: 0 }));
    assert!(db.get(&key, 0, 0, false).is_some());
    set_hint(&key, None);
}

/// A hash `a=1 b=2` whose field `a` expires at 100 and `b` at 200, known to the active pass.
fn volatile_hash(db: &mut Db, key: &[u8]) {
    let mut h = crate::keyspace::types::HashValue::default();
    h.insert_pair(b"a", b"1");
    h.insert_pair(b"b", b"2");
    h.set_field_expiry(b"a", 100);
    h.set_field_expiry(b"b", 200);
    db.set(key, Value::Hash(Box::new(h)), None, 0);
    db.hfe_keys.insert(Bytes::copy_from_slice(key));
}

fn hash_len(db: &Db, key: &[u8]) -> Option<usize> {
    match db.peek(key)? {
        ValueRef::Hash(h) => Some(h.len()),
        _ => None,
    }
}

#[test]
fn lazy_field_expiry_removes_due_fields_then_the_key() {
    let mut db = Db::new();
    db.log_for_replication(true);
    volatile_hash(&mut db, b"h");
    assert_eq!(db.expire_fields(b"h", 100), 0, "alive at its deadline, as keys are");
    assert_eq!(db.expire_fields(b"h", 101), 1);
    assert_eq!(hash_len(&db, b"h"), Some(1));
    assert_eq!(db.hexpired_log, [(Bytes::from_static(b"h"), false)]);
    assert_eq!(db.hfe_repl_log.len(), 1);
    assert_eq!(&*db.hfe_repl_log[0].1[0], b"a");
    assert_eq!(db.expire_fields(b"h", 201), 1);
    assert!(!db.exists_raw(b"h"), "the last field going deletes the hash");
    assert_eq!(db.hexpired_log[1], (Bytes::from_static(b"h"), true));
}

#[test]
fn replicas_leave_field_expiry_to_their_primary() {
    let mut db = Db::new();
    db.expiry = Expiry::Hide;
    volatile_hash(&mut db, b"h");
    assert_eq!(db.expire_fields(b"h", 1000), 0);
    assert_eq!(db.expire_fields_active(10, 1000), 0);
    assert_eq!(hash_len(&db, b"h"), Some(2));
}

#[test]
fn active_field_expiry_walks_only_known_keys_and_forgets_finished_ones() {
    let mut db = Db::new();
    volatile_hash(&mut db, b"h1");
    volatile_hash(&mut db, b"h2");
    db.set(b"plain", Value::Int(1), None, 0);
    db.hfe_keys.insert(Bytes::from_static(b"gone"));
    assert_eq!(db.expire_fields_active(10, 150), 2);
    assert_eq!((hash_len(&db, b"h1"), hash_len(&db, b"h2")), (Some(1), Some(1)));
    assert_eq!(db.hfe_keys.len(), 2, "a missing key is forgotten, the hashes stay");
    assert_eq!(db.expire_fields_active(10, 250), 2);
    assert!(db.hfe_keys.is_empty());
    assert_eq!(db.len(), 1);
}

#[test]
fn active_field_expiry_resumes_where_it_stopped() {
    let mut db = Db::new();
    for k in [&b"k1"[..], b"k2", b"k3"] {
        volatile_hash(&mut db, k);
    }
    let mut expired = 0;
    for _ in 0..3 {
        expired += db.expire_fields_active(1, 150);
    }
    assert_eq!(expired, 3, "three passes of one key each met every key");
}
