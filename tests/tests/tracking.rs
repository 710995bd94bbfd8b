//! Client-side caching (CLIENT TRACKING) over real sockets, with a tracking connection and a
//! writer: default-mode invalidations after another client's SET / DEL / PEXPIRE and the key's
//! expiry, FLUSHALL's null, BCAST prefixes batched per event-loop iteration, OPTIN / OPTOUT,
//! NOLOOP, a RESP2 client redirecting to a `__redis__:invalidate` subscriber, a RESP3 redirect
//! target, the `tracking-redir-broken` push when the target leaves, MULTI/EXEC, scripts, RENAME
//! and MOVE, eviction, keys a slot migration moves away, and a replica's clients hearing the
//! primary's writes. Every two-client scenario is
//! a `reference` test: it also runs against redis-server, so the expected bytes are Redis's own.
//! Pushes are awaited with bounded reads, never with sleeps. redis-py's client-side cache
//! (`CacheConfig`, RESP3) runs last.

use std::process::Command;
use std::time::{Duration, Instant};

use shoal_e2e::{io_threads_test, run_with_timeout, RawClient, Server, ShoalNode};

/// `>2 invalidate [keys]`.
fn inv(keys: &[&str]) -> String {
    let mut s = format!(">2\r\n$10\r\ninvalidate\r\n*{}\r\n", keys.len());
    for k in keys {
        s.push_str(&format!("${}\r\n{k}\r\n", k.len()));
    }
    s
}

/// The same keys as a message on `__redis__:invalidate` (a RESP2 redirect target).
fn inv_message(keys: &[&str]) -> String {
    let mut s = "*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n".to_string();
    s.push_str(&format!("*{}\r\n", keys.len()));
    for k in keys {
        s.push_str(&format!("${}\r\n{k}\r\n", k.len()));
    }
    s
}

const INV_ALL: &str = ">2\r\n$10\r\ninvalidate\r\n_\r\n";

fn resp3(srv: &Server) -> RawClient {
    let mut c = srv.connect();
    c.send_cmd(&["HELLO", "3"]).unwrap();
    c.read_value().unwrap();
    c
}

fn client_id(c: &mut RawClient) -> String {
    let r = c.run("CLIENT ID");
    r.trim_start_matches(':').trim_end().to_string()
}

/// Waits (bounded) until client `id` is no longer listed: the server has freed it.
fn wait_gone(admin: &mut RawClient, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while admin.run("CLIENT LIST").contains(&format!("id={id} ")) {
        assert!(Instant::now() < deadline, "client {id} was not freed");
        std::thread::yield_now();
    }
}

io_threads_test!(reference fn default_mode_set_del_expire_and_expiry(n) {
    let srv = Server::start(n, &["--hz", "100"]);
    let mut c = resp3(&srv);
    let mut w = srv.connect();
    assert_eq!(c.run("CLIENT TRACKING on"), "+OK\r\n");
    w.run("SET a 1");
    assert_eq!(c.run("GET a"), "$1\r\n1\r\n");
    assert_eq!(w.run("SET a 2"), "+OK\r\n");
    assert_eq!(c.read_text(), inv(&["a"]));
    // Forgotten until read again: this write sends nothing, the next push is about DEL.
    w.run("SET a 3");
    assert_eq!(c.run("GET a"), "$1\r\n3\r\n");
    assert_eq!(w.run("DEL a"), ":1\r\n");
    assert_eq!(c.read_text(), inv(&["a"]));
    // A missing key read is tracked too.
    assert_eq!(c.run("GET a"), "_\r\n");
    w.run("SET a 4");
    assert_eq!(c.read_text(), inv(&["a"]));
    // PEXPIRE changes the key; then its expiry (active, nobody reads it) deletes it.
    assert_eq!(c.run("GET a"), "$1\r\n4\r\n");
    assert_eq!(w.run("PEXPIRE a 1000"), ":1\r\n");
    assert_eq!(c.read_text(), inv(&["a"]));
    assert_eq!(c.run("GET a"), "$1\r\n4\r\n");
    assert_eq!(c.read_text(), inv(&["a"]), "expiry invalidates");
    assert_eq!(w.run("EXISTS a"), ":0\r\n");
    // Several keys of one command; a key read by two clients reaches both.
    let mut c2 = resp3(&srv);
    c2.run("CLIENT TRACKING on");
    assert_eq!(c.run("MGET x y"), "*2\r\n_\r\n_\r\n");
    assert_eq!(c2.run("GET y"), "_\r\n");
    w.run("MSET y 1 x 1");
    let mut got = vec![c.read_text(), c.read_text()];
    got.sort();
    assert_eq!(got, vec![inv(&["x"]), inv(&["y"])]);
    assert_eq!(c2.read_text(), inv(&["y"]));
    assert_eq!(c.run("CLIENT TRACKING off"), "+OK\r\n");
    assert_eq!(c.run("PING"), "+PONG\r\n");
});

io_threads_test!(reference fn flushall_and_flushdb_invalidate_everything(n) {
    let srv = Server::start(n, &[]);
    let mut c = resp3(&srv);
    let mut w = srv.connect();
    c.run("CLIENT TRACKING on");
    // Even with nothing read and nothing stored.
    assert_eq!(w.run("FLUSHALL"), "+OK\r\n");
    assert_eq!(c.read_text(), INV_ALL);
    c.run("GET a");
    w.run("SELECT 1");
    assert_eq!(w.run("FLUSHDB"), "+OK\r\n");
    assert_eq!(c.read_text(), INV_ALL);
    // The table was emptied: a write to the key read before sends nothing.
    w.run("SELECT 0");
    w.run("SET a 1");
    assert_eq!(c.run("PING"), "+PONG\r\n");
    // The flushing client's own null follows its reply.
    assert_eq!(c.run("FLUSHALL"), "+OK\r\n");
    assert_eq!(c.read_text(), INV_ALL);
    assert_eq!(c.run("PING"), "+PONG\r\n");
});

io_threads_test!(reference fn bcast_prefixes_batch_keys(n) {
    let srv = Server::start(n, &[]);
    let mut c = resp3(&srv);
    let mut w = srv.connect();
    assert_eq!(c.run("CLIENT TRACKING on BCAST PREFIX user: PREFIX obj:"), "+OK\r\n");
    // One command, one event-loop iteration: one array per prefix, keys in order.
    assert_eq!(w.run("MSET user:2 x other y user:1 z"), "+OK\r\n");
    assert_eq!(c.read_text(), inv(&["user:1", "user:2"]));
    w.run("SET obj:9 v");
    assert_eq!(c.read_text(), inv(&["obj:9"]));
    // Nothing is read-tracked in BCAST mode; unrelated keys send nothing.
    c.run("GET other");
    w.run("SET other z");
    w.run("DEL user:1");
    assert_eq!(c.read_text(), inv(&["user:1"]));
    // NOLOOP: a client's own writes are left out of its broadcasts.
    let mut n2 = resp3(&srv);
    assert_eq!(n2.run("CLIENT TRACKING on BCAST NOLOOP"), "+OK\r\n");
    assert_eq!(n2.run("SET user:5 mine"), "+OK\r\n");
    assert_eq!(c.read_text(), inv(&["user:5"]));
    w.run("SET zz 1");
    assert_eq!(n2.read_text(), inv(&["zz"]));
    // Without NOLOOP a client hears its own write, after its reply.
    assert_eq!(c.run("SET user:7 x"), "+OK\r\n");
    assert_eq!(c.read_text(), inv(&["user:7"]));
    assert_eq!(n2.read_text(), inv(&["user:7"]));
});

io_threads_test!(reference fn optin_optout_and_noloop(n) {
    let srv = Server::start(n, &[]);
    let mut w = srv.connect();
    let mut c = resp3(&srv);
    assert_eq!(c.run("CLIENT TRACKING on OPTIN"), "+OK\r\n");
    c.run("GET a");
    assert_eq!(c.run("CLIENT CACHING yes"), "+OK\r\n");
    c.run("GET b");
    c.run("GET c");
    // Only b was tracked: a and c (read without CACHING yes just before) send nothing.
    w.run("MSET a 1 c 1");
    w.run("SET b 1");
    assert_eq!(c.read_text(), inv(&["b"]));
    assert_eq!(c.run("CLIENT TRACKING off"), "+OK\r\n");
    assert_eq!(c.run("CLIENT TRACKING on OPTOUT"), "+OK\r\n");
    assert_eq!(c.run("CLIENT CACHING no"), "+OK\r\n");
    c.run("GET a");
    c.run("GET b");
    w.run("SET a 2");
    w.run("SET b 2");
    assert_eq!(c.read_text(), inv(&["b"]));
    // NOLOOP: no push for the client's own write, others still reach it.
    let mut l = resp3(&srv);
    l.run("CLIENT TRACKING on NOLOOP");
    l.run("MGET p q");
    assert_eq!(l.run("SET p 1"), "+OK\r\n");
    w.run("SET q 1");
    assert_eq!(l.read_text(), inv(&["q"]));
    // Without NOLOOP the own invalidation follows the reply.
    l.run("CLIENT TRACKING on");
    l.run("GET p");
    assert_eq!(l.run("SET p 2"), "+OK\r\n");
    assert_eq!(l.read_text(), inv(&["p"]));
});

io_threads_test!(reference fn resp2_redirect_to_a_subscriber(n) {
    let srv = Server::start(n, &[]);
    let mut admin = srv.connect();
    let mut w = srv.connect();
    let mut s = srv.connect();
    let sid = client_id(&mut s);
    assert_eq!(
        s.run("SUBSCRIBE __redis__:invalidate"),
        "*3\r\n$9\r\nsubscribe\r\n$20\r\n__redis__:invalidate\r\n:1\r\n"
    );
    let mut c = srv.connect();
    assert_eq!(c.run(&format!("CLIENT TRACKING on REDIRECT {sid}")), "+OK\r\n");
    assert_eq!(c.run("CLIENT GETREDIR"), format!(":{sid}\r\n"));
    // (The reference listens on a unix socket: its flags end with `U`.)
    assert!(c.run("CLIENT INFO").contains(" flags=t"));
    assert!(c.run("CLIENT INFO").contains(&format!(" redir={sid} ")));
    c.run("GET a");
    w.run("SET a 1");
    assert_eq!(s.read_text(), inv_message(&["a"]));
    w.run("FLUSHALL");
    assert_eq!(s.read_text(), "*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n$-1\r\n");
    // The target leaves: a RESP2 client cannot be told, but its flags show it.
    drop(s);
    wait_gone(&mut admin, &sid);
    c.run("GET a");
    w.run("SET a 2");
    assert_eq!(
        c.run("CLIENT TRACKINGINFO"),
        format!(
            "*6\r\n$5\r\nflags\r\n*2\r\n$2\r\non\r\n$15\r\nbroken_redirect\r\n$8\r\nredirect\r\n:{sid}\r\n$8\r\nprefixes\r\n*0\r\n"
        )
    );
    assert!(c.run("CLIENT INFO").contains(" flags=tR"));
});

io_threads_test!(reference fn resp3_redirect_and_broken_redirect_push(n) {
    let srv = Server::start(n, &[]);
    let mut admin = srv.connect();
    let mut w = srv.connect();
    let mut t = resp3(&srv);
    let tid = client_id(&mut t);
    let mut c = resp3(&srv);
    assert_eq!(c.run(&format!("CLIENT TRACKING on REDIRECT {tid}")), "+OK\r\n");
    c.run("GET a");
    w.run("SET a 1");
    // A RESP3 target gets the push itself, subscribed or not.
    assert_eq!(t.read_text(), inv(&["a"]));
    drop(t);
    wait_gone(&mut admin, &tid);
    c.run("GET a");
    w.run("SET a 2");
    assert_eq!(c.read_text(), format!(">2\r\n$21\r\ntracking-redir-broken\r\n:{tid}\r\n"));
    assert_eq!(c.run("CLIENT GETREDIR"), format!(":{tid}\r\n"));
    // Re-enabling clears the flag.
    c.run("CLIENT TRACKING on");
    assert_eq!(c.run("CLIENT GETREDIR"), ":0\r\n");
    let info = c.run("CLIENT INFO");
    assert!(info.contains(" flags=t") && !info.contains(" flags=tR"), "{info}");
    assert_eq!(c.run("CLIENT TRACKING on REDIRECT 123456"), "-ERR The client ID you want redirect to does not exist\r\n");
});

io_threads_test!(reference fn reset_and_close_turn_tracking_off(n) {
    let srv = Server::start(n, &[]);
    let mut admin = srv.connect();
    let mut c = resp3(&srv);
    c.run("CLIENT TRACKING on BCAST PREFIX p");
    let info = admin.run("INFO stats");
    assert!(info.contains("tracking_total_prefixes:1\r\n"), "{info}");
    assert!(admin.run("INFO clients").contains("tracking_clients:1\r\n"));
    assert_eq!(c.run("RESET"), "+RESET\r\n");
    assert!(admin.run("INFO clients").contains("tracking_clients:0\r\n"));
    assert!(admin.run("INFO stats").contains("tracking_total_prefixes:0\r\n"));
    // Another tracking client stays, so the table lives on after `d` leaves.
    let mut keep = resp3(&srv);
    keep.run("CLIENT TRACKING on");
    let mut d = resp3(&srv);
    let did = client_id(&mut d);
    d.run("CLIENT TRACKING on");
    d.run("MGET k1 k2");
    let info = admin.run("INFO stats");
    assert!(info.contains("tracking_total_keys:2\r\n") && info.contains("tracking_total_items:2\r\n"), "{info}");
    drop(d);
    wait_gone(&mut admin, &did);
    assert!(admin.run("INFO clients").contains("tracking_clients:1\r\n"));
    // Entries of a client that left go lazily, when their key changes.
    admin.run("SET k1 v");
    let info = admin.run("INFO stats");
    assert!(info.contains("tracking_total_keys:1\r\n") && info.contains("tracking_total_items:1\r\n"), "{info}");
    // With no tracking client left, stale entries still go when their key changes.
    keep.run("CLIENT TRACKING off");
    assert!(admin.run("INFO clients").contains("tracking_clients:0\r\n"));
    assert!(admin.run("INFO stats").contains("tracking_total_keys:1\r\n"));
    admin.run("SET k2 v");
    assert!(admin.run("INFO stats").contains("tracking_total_keys:0\r\n"));
});

io_threads_test!(reference fn transactions_scripts_and_rename(n) {
    let srv = Server::start(n, &[]);
    let mut c = resp3(&srv);
    let mut w = srv.connect();
    c.run("CLIENT TRACKING on");
    // Keys read inside MULTI are tracked; the own invalidation follows EXEC's whole reply.
    c.run("MULTI");
    c.run("GET t1");
    c.run("SET t1 x");
    assert_eq!(c.run("EXEC"), "*2\r\n_\r\n+OK\r\n");
    assert_eq!(c.read_text(), inv(&["t1"]));
    // A script's reads are tracked for the calling client; EVAL's own keys are not.
    assert_eq!(c.cmd(&["EVAL", "return 1", "1", "notread"]).unwrap(), b":1\r\n");
    let get = "return redis.call('GET', KEYS[1])";
    assert_eq!(c.cmd(&["EVAL", get, "1", "s1"]).unwrap(), b"_\r\n");
    w.run("MSET notread 1 s1 1");
    assert_eq!(c.read_text(), inv(&["s1"]));
    // RENAME changes both keys; MOVE and COPY change the keys they write.
    c.run("MGET r1 r2");
    w.run("SET r1 v");
    assert_eq!(c.read_text(), inv(&["r1"]));
    c.run("MGET r1 r2");
    assert_eq!(w.run("RENAME r1 r2"), "+OK\r\n");
    let mut got = vec![c.read_text(), c.read_text()];
    got.sort();
    assert_eq!(got, vec![inv(&["r1"]), inv(&["r2"])]);
    c.run("GET m1");
    assert_eq!(w.run("MOVE r2 1"), ":1\r\n");
    w.run("SET m1 x");
    assert_eq!(c.read_text(), inv(&["m1"]));
    // Keys are not per database: a write in db 1 invalidates a read in db 0.
    c.run("GET shared");
    w.run("SELECT 1");
    w.run("SET shared 1");
    assert_eq!(c.read_text(), inv(&["shared"]));
});

#[test]
fn replica_clients_hear_the_primarys_writes() {
    let primary = ShoalNode::start(&[]);
    let replica = ShoalNode::start(&[]);
    let mut p = primary.connect();
    let mut admin = replica.connect();
    assert_eq!(admin.run(&format!("REPLICAOF 127.0.0.1 {}", primary.port)), "+OK\r\n");
    p.run("SET k v1");
    let deadline = Instant::now() + Duration::from_secs(30);
    while admin.run("GET k") != "$2\r\nv1\r\n" {
        assert!(Instant::now() < deadline, "the replica did not sync");
        std::thread::yield_now();
    }
    let mut c = replica.connect();
    c.send_cmd(&["HELLO", "3"]).unwrap();
    c.read_value().unwrap();
    c.run("CLIENT TRACKING on");
    assert_eq!(c.run("GET k"), "$2\r\nv1\r\n");
    // The write arrives over the replication stream and invalidates on the replica.
    p.run("SET k v2");
    assert_eq!(c.read_text(), inv(&["k"]));
    assert_eq!(c.run("GET k"), "$2\r\nv2\r\n");
    p.run("FLUSHALL");
    assert_eq!(c.read_text(), INV_ALL);
}

#[test]
fn eviction_invalidates() {
    let node = ShoalNode::start(&["--maxmemory", "4mb", "--maxmemory-policy", "allkeys-lru"]);
    let mut c = node.connect();
    c.send_cmd(&["HELLO", "3"]).unwrap();
    c.read_value().unwrap();
    let mut w = node.connect();
    w.run("SET a 1");
    c.run("CLIENT TRACKING on");
    assert_eq!(c.run("GET a"), "$1\r\n1\r\n");
    let value = "x".repeat(1000);
    let mut i = 0;
    while w.run("EXISTS a") == ":1\r\n" {
        assert!(i < 100_000, "a was never evicted");
        w.cmd(&["SET", &format!("fill:{i}"), &value]).unwrap();
        i += 1;
    }
    assert_eq!(c.read_text(), inv(&["a"]));
}

#[test]
fn slot_migration_invalidates_the_keys_it_moves_away() {
    use shoal_e2e::cluster::{key_in_slot, migrations, wait_for, Cluster};
    let c = Cluster::start(2);
    let slot = 0u16;
    let src = c.owner(slot);
    let dst = 1 - src;
    let key = key_in_slot(slot, "cached");
    let mut t = c.node(src).node.connect();
    t.send_cmd(&["HELLO", "3"]).unwrap();
    t.read_value().unwrap();
    assert_eq!(t.run("CLIENT TRACKING on"), "+OK\r\n");
    assert_eq!(t.cmd(&["SET", key.as_str(), "v"]).unwrap(), b"+OK\r\n");
    assert_eq!(t.cmd(&["GET", key.as_str()]).unwrap(), b"$1\r\nv\r\n");
    let r =
        c.node(src).run(&format!("CLUSTER MIGRATESLOTS SLOTSRANGE {slot} {slot} NODE {}", c.node(dst).id));
    assert_eq!(r, "+OK\r\n");
    wait_for(Duration::from_secs(60), "the export to finish", || {
        migrations(c.node(src)).into_iter().rev().find(|j| {
            j.get("operation").map(String::as_str) == Some("EXPORT")
                && j.get("state").map(String::as_str) == Some("success")
        })
    });
    // The source deletes the keys it handed over: the reader is told.
    assert_eq!(t.read_text(), inv(&[key.as_str()]));
}

#[test]
fn redis_py_client_side_cache() {
    let probe = Command::new("python3").args(["-c", "from redis.cache import CacheConfig"]).output();
    if !probe.map(|o| o.status.success()).unwrap_or(false) {
        println!("skipped: python3 with redis-py 5.1+ (redis.cache) is not available");
        return;
    }
    let node = ShoalNode::with_io_threads(2, &[]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/python/tracking_client.py");
    let out = run_with_timeout(
        Command::new("python3").arg(script).arg(node.port.to_string()),
        b"",
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "redis-py client-side caching failed:\n{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("redis-py tracking ok"), "{}", out.stdout);
}
