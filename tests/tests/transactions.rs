//! Transactions against real nodes: WATCH aborted by another client's write, by expiry and
//! by FLUSHALL; EXEC's null reply in RESP2 and RESP3; CLIENT LIST's view of a transaction; the
//! `redis` crate's atomic pipelines; and the cluster rules (one slot per transaction, MOVED at
//! queue time aborts).

use std::time::{Duration, Instant};

use shoal_e2e::cluster::{key_in_slot, Cluster};
use shoal_e2e::{io_threads_test, ShoalNode};

io_threads_test!(fn watch_is_aborted_by_another_clients_write(n) {
    let node = ShoalNode::with_io_threads(n, &[]);
    let mut a = node.connect();
    let mut b = node.connect();
    assert_eq!(a.run("SET balance 100"), "+OK\r\n");
    assert_eq!(a.run("WATCH balance"), "+OK\r\n");
    assert_eq!(a.run("GET balance"), "$3\r\n100\r\n");
    // Another client changes the key between WATCH and EXEC.
    assert_eq!(b.run("INCRBY balance 5"), ":105\r\n");
    assert_eq!(a.run("MULTI"), "+OK\r\n");
    assert_eq!(a.run("SET balance 90"), "+QUEUED\r\n");
    assert_eq!(a.run("EXEC"), "*-1\r\n");
    assert_eq!(a.run("GET balance"), "$3\r\n105\r\n");
    // Retried without interference, it commits.
    a.run("WATCH balance");
    a.run("MULTI");
    a.run("SET balance 95");
    assert_eq!(a.run("EXEC"), "*1\r\n+OK\r\n");
    assert_eq!(b.run("GET balance"), "$2\r\n95\r\n");
    // A write to another key, or a write that changes nothing, does not abort.
    a.run("WATCH balance");
    b.run("SET other 1");
    b.run("SET balance 1 NX");
    a.run("MULTI");
    a.run("GET balance");
    assert_eq!(a.run("EXEC"), "*1\r\n$2\r\n95\r\n");
});

io_threads_test!(fn watch_sees_expiry_and_flushall_and_resp3_null(n) {
    let node = ShoalNode::with_io_threads(n, &[]);
    let mut a = node.connect();
    let mut b = node.connect();
    a.run("SET k v PX 30");
    a.run("WATCH k");
    // Bounded wait for the key to expire (seen from the other client).
    let deadline = Instant::now() + Duration::from_secs(10);
    while b.run("PTTL k") != ":-2\r\n" {
        assert!(Instant::now() < deadline, "key never expired");
        std::thread::yield_now();
    }
    a.run("MULTI");
    a.run("PING");
    assert_eq!(a.run("EXEC"), "*-1\r\n");
    // RESP3: the aborted EXEC is a null.
    assert!(a.run("HELLO 3").starts_with('%'));
    a.run("SET f 1");
    a.run("WATCH f");
    b.run("FLUSHALL");
    a.run("MULTI");
    assert_eq!(a.run("EXEC"), "_\r\n");
});

io_threads_test!(fn client_list_and_errors_in_a_transaction(n) {
    let node = ShoalNode::with_io_threads(n, &[]);
    let mut a = node.connect();
    let mut b = node.connect();
    a.run("CLIENT SETNAME txn");
    a.run("WATCH x y");
    a.run("MULTI");
    a.run("SET x 1");
    a.run("SET y 2");
    let list = b.run("CLIENT LIST");
    let line = list.lines().find(|l| l.contains("name=txn")).unwrap_or_default().to_string();
    assert!(line.contains(" flags=x "), "{line}");
    assert!(line.contains(" multi=2 watch=2 "), "{line}");
    b.run("SET x changed");
    let line = b.run("CLIENT LIST");
    let line = line.lines().find(|l| l.contains("name=txn")).unwrap_or_default().to_string();
    assert!(line.contains(" flags=xd "), "{line}");
    assert_eq!(a.run("EXEC"), "*-1\r\n");
    // Queue-time errors abort; runtime errors are returned in place.
    a.run("MULTI");
    assert!(a.run("NOPE").starts_with("-ERR unknown command"));
    assert_eq!(a.run("EXEC"), "-EXECABORT Transaction discarded because of previous errors.\r\n");
    a.run("MULTI");
    a.run("SET s abc");
    a.run("INCR s");
    a.run("GET s");
    assert_eq!(a.run("EXEC"), "*3\r\n+OK\r\n-ERR value is not an integer or out of range\r\n$3\r\nabc\r\n");
    let line = b.run("CLIENT LIST");
    let line = line.lines().find(|l| l.contains("name=txn")).unwrap_or_default().to_string();
    assert!(line.contains(" multi=-1 watch=0 "), "{line}");
});

io_threads_test!(fn redis_crate_atomic_pipeline(n) {
    let node = ShoalNode::with_io_threads(n, &[]);
    let client = redis::Client::open(format!("redis://127.0.0.1:{}/", node.port)).expect("url");
    let mut con = client.get_connection_with_timeout(Duration::from_secs(10)).expect("connect");
    con.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let (a, b): (i64, i64) =
        redis::pipe().atomic().cmd("INCR").arg("c").cmd("INCRBY").arg("c").arg(10).query(&mut con).expect("tx");
    assert_eq!((a, b), (1, 11));
    // The crate's optimistic-locking helper retries until EXEC commits.
    let key = "counter";
    let v: (i64,) = redis::transaction(&mut con, &[key], |con, pipe| {
        let cur: Option<i64> = redis::cmd("GET").arg(key).query(con)?;
        pipe.set(key, cur.unwrap_or(0) + 1).ignore().get(key).query(con)
    })
    .expect("transaction");
    assert_eq!(v, (1,));
});

#[test]
fn cluster_transactions_stay_in_one_slot() {
    let c = Cluster::start(3);
    // Two keys of slots node 0 owns, in different slots.
    let k1 = key_in_slot(0, "a");
    let k2 = key_in_slot(1, "b");
    assert_eq!(c.owner(0), 0);
    let mut n0 = c.node(0).node.connect();
    assert_eq!(n0.run("MULTI"), "+OK\r\n");
    assert_eq!(n0.run(&format!("SET {k1} 1")), "+QUEUED\r\n");
    assert_eq!(n0.run(&format!("SET {k2} 1")), "+QUEUED\r\n");
    assert_eq!(n0.run("EXEC"), "-CROSSSLOT Keys in request don't hash to the same slot\r\n");
    assert_eq!(n0.run(&format!("EXISTS {k1}")), ":0\r\n");
    // A multi-key command is checked when queued.
    n0.run("MULTI");
    assert_eq!(
        n0.run(&format!("MSET {k1} 1 {k2} 2")),
        "-CROSSSLOT Keys in request don't hash to the same slot\r\n"
    );
    assert!(n0.run("EXEC").starts_with("-EXECABORT"));
    // A key served elsewhere: MOVED when queued, and the transaction is doomed.
    n0.run("MULTI");
    assert!(n0.run("SET foo bar").starts_with("-MOVED 12182 "));
    assert!(n0.run("EXEC").starts_with("-EXECABORT"));
    // One slot: runs.
    n0.run("MULTI");
    n0.run(&format!("SET {k1} 1"));
    n0.run(&format!("INCR {k1}"));
    assert_eq!(n0.run("EXEC"), "*2\r\n+OK\r\n:2\r\n");
}
