//! Replication with real processes, every pairing of Shoal and a Debian redis-server 7.0:
//! Shoal -> redis-server, redis-server -> Shoal and Shoal -> Shoal. Each runs
//! `tests/python/replication_check.py`: a full sync under a writer, 10k writes of every kind,
//! WAIT, a cut link and partial resync, then a promotion (the replica takes over, the old
//! primary follows it with a partial resync); every acknowledged write is recorded and the
//! per-key digests compared. Then the replies to bad replication input.

use std::process::Command;
use std::time::Duration;

use shoal_e2e::{run_with_timeout, RedisRef, ShoalNode};

const SCRIPT_TIMEOUT: Duration = Duration::from_secs(300);

/// Runs the check with `primary` and `replica` ports; `logs` are shown when it fails.
fn check(primary: u16, replica: u16, label: &str, logs: impl Fn() -> String) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/python/replication_check.py");
    let out = run_with_timeout(
        Command::new("python3").arg(script).arg(primary.to_string()).arg(replica.to_string()).arg(label),
        b"",
        SCRIPT_TIMEOUT,
    );
    assert!(
        out.status.success(),
        "replication check {label} failed (redis-py: pip install redis):\n{}\n{}\nlogs:\n{}",
        out.stdout,
        out.stderr,
        logs()
    );
    assert!(out.stdout.contains("replication ok"), "{}", out.stdout);
    println!("{}", out.stdout);
}

#[test]
fn redis_server_replicates_from_a_shoal_primary() {
    let node = ShoalNode::start(&[]);
    let (redis, port) = RedisRef::start_tcp(&[]).expect("redis-server");
    check(node.port, port, "shoal -> redis-server", || {
        format!("{}\n--- redis-server ---\n{}", node.log.lines().join("\n"), redis.log.lines().join("\n"))
    });
}

#[test]
fn shoal_replicates_from_a_redis_server_primary() {
    // No diskless-sync delay: the replica is told REPLICAOF while the writer runs.
    let (redis, port) = RedisRef::start_tcp(&["--repl-diskless-sync-delay", "0"]).expect("redis-server");
    let node = ShoalNode::start(&[]);
    check(port, node.port, "redis-server -> shoal", || {
        format!("{}\n--- redis-server ---\n{}", node.log.lines().join("\n"), redis.log.lines().join("\n"))
    });
}

#[test]
fn shoal_replicates_from_a_shoal_primary() {
    let primary = ShoalNode::start(&[]);
    let replica = ShoalNode::start(&[]);
    check(primary.port, replica.port, "shoal -> shoal", || {
        format!("{}\n--- replica ---\n{}", primary.log.lines().join("\n"), replica.log.lines().join("\n"))
    });
}

#[test]
fn bad_replication_input_gets_valkeys_errors_and_loses_nothing() {
    let node = ShoalNode::start(&[]);
    let mut c = node.connect();
    assert_eq!(c.run("SET k v"), "+OK\r\n");
    assert_eq!(c.run("REPLCONF listening-port"), "-ERR wrong number of arguments for 'replconf' command\r\n");
    assert_eq!(c.run("REPLCONF bogus 1"), "-ERR Unrecognized REPLCONF option: bogus\r\n");
    assert_eq!(c.run("REPLCONF listening-port abc"), "-ERR value is not an integer or out of range\r\n");
    assert_eq!(c.run("WAIT 0 0"), ":0\r\n");
    assert_eq!(c.run("WAIT 1 -1"), "-ERR timeout is negative\r\n");
    assert_eq!(c.run("WAIT x 0"), "-ERR value is not an integer or out of range\r\n");
    // No replica yet: WAIT for one answers 0 at once, as on a primary without replicas.
    assert_eq!(c.run("WAIT 1 10"), ":0\r\n");
    let role = c.run("ROLE");
    assert!(role.starts_with("*3\r\n$6\r\nmaster\r\n:"), "{role}");
    // PSYNC with a garbage id and offset: a full resync, never an error or a crash.
    let mut r = node.connect();
    assert_eq!(r.run("REPLCONF capa eof capa psync2"), "+OK\r\n");
    r.send_cmd(&["PSYNC", "not-a-replication-id", "-12345"]).expect("send");
    let line = r.read_text();
    assert!(
        line.starts_with("+FULLRESYNC ") && line.ends_with(" 0\r\n") && line.len() == 12 + 40 + 4,
        "{line:?}"
    );
    let head = r.read_exact_raw(5 + 40 + 2).expect("EOF header");
    assert!(head.starts_with(b"$EOF:"), "{:?}", String::from_utf8_lossy(&head));
    // The primary keeps serving, and nothing is lost.
    assert_eq!(c.run("GET k"), "$1\r\nv\r\n");
    let info = c.run("INFO replication");
    assert!(info.contains("connected_slaves:1"), "{info}");
    drop(r);
    assert_eq!(c.run("DBSIZE"), ":1\r\n");
}

/// Polls `f` (bounded) until it holds.
fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    shoal_e2e::cluster::wait_for(Duration::from_secs(30), what, || f().then_some(()));
}

#[test]
fn replicaof_bad_targets_get_valkeys_answers_and_lose_nothing() {
    let node = ShoalNode::start(&[]);
    let mut c = node.connect();
    for i in 0..100 {
        assert_eq!(c.run(&format!("SET k{i} v{i}")), "+OK\r\n");
    }
    assert_eq!(c.run("REPLICAOF 127.0.0.1 notaport"), "-ERR Invalid master port\r\n");
    assert_eq!(c.run("REPLICAOF 127.0.0.1 70000"), "-ERR Invalid master port\r\n");
    assert_eq!(c.run("SLAVEOF a"), "-ERR wrong number of arguments for 'slaveof' command\r\n");
    // Nobody listens on port 1: the link stays down, the data stays, writes are refused.
    assert_eq!(c.run("REPLICAOF 127.0.0.1 1"), "+OK\r\n");
    assert_eq!(c.run("REPLICAOF 127.0.0.1 1"), "+OK Already connected to specified master\r\n");
    let info = c.run("INFO replication");
    assert!(info.contains("role:slave\r\n") && info.contains("master_link_status:down\r\n"), "{info}");
    assert_eq!(c.run("SET k0 x"), "-READONLY You can't write against a read only replica.\r\n");
    assert_eq!(c.run("WAIT 1 0").split(' ').next(), Some("-ERR"));
    assert_eq!(c.run("DBSIZE"), ":100\r\n");
    assert_eq!(c.run("GET k7"), "$2\r\nv7\r\n");
    let role = c.run("ROLE");
    assert!(role.starts_with("*5\r\n$5\r\nslave\r\n$9\r\n127.0.0.1\r\n:1\r\n"), "{role}");
    // Itself: its own PSYNC finds a replica without a primary link (-NOMASTERLINK): no sync.
    assert_eq!(c.run(&format!("REPLICAOF 127.0.0.1 {}", node.port)), "+OK\r\n");
    node.log
        .wait_for(Duration::from_secs(30), |l| l.contains("NOMASTERLINK").then_some(()))
        .expect("the link to itself is refused with NOMASTERLINK");
    assert_eq!(c.run("DBSIZE"), ":100\r\n");
    // Back to a primary: everything is still there and writable.
    assert_eq!(c.run("REPLICAOF NO ONE"), "+OK\r\n");
    assert_eq!(c.run("SET k0 x"), "+OK\r\n");
    assert_eq!(c.run("DBSIZE"), ":100\r\n");
    assert!(c.run("INFO replication").contains("role:master\r\n"));
}

#[test]
fn a_replica_that_stops_reading_is_cut_off_and_the_primary_keeps_serving() {
    let node = ShoalNode::start(&["--client-output-buffer-limit", "replica 1mb 0 0"]);
    let mut c = node.connect();
    // A replica that completes the handshake and then never reads.
    let mut r = node.connect();
    assert_eq!(r.run("REPLCONF capa eof"), "+OK\r\n");
    r.send_cmd(&["PSYNC", "?", "-1"]).expect("send");
    wait_until("the replica to be attached", || c.run("INFO replication").contains("connected_slaves:1"));
    let value = "x".repeat(64 * 1024);
    let mut i = 0;
    while c.run("INFO replication").contains("connected_slaves:1") {
        assert_eq!(c.run(&format!("SET big{} {value}", i % 64)), "+OK\r\n");
        i += 1;
        assert!(i < 20_000, "the replica was never cut off");
    }
    // The primary kept serving and counts the disconnection.
    assert_eq!(c.run("PING"), "+PONG\r\n");
    assert!(c.run("INFO stats").contains("client_output_buffer_limit_disconnections:1"));
    assert!(node.log.contains("overcoming of output buffer limits"));
    drop(r);
}

#[test]
fn min_replicas_to_write_refuses_writes_without_good_replicas() {
    let primary = ShoalNode::start(&["--min-replicas-to-write", "1", "--min-replicas-max-lag", "10"]);
    let mut c = primary.connect();
    assert_eq!(c.run("SET k v"), "-NOREPLICAS Not enough good replicas to write.\r\n");
    assert_eq!(c.run("MULTI"), "+OK\r\n");
    assert_eq!(c.run("SET k v"), "-NOREPLICAS Not enough good replicas to write.\r\n");
    assert_eq!(c.run("EXEC"), "-EXECABORT Transaction discarded because of previous errors.\r\n");
    assert_eq!(c.run("GET k"), "$-1\r\n");
    let replica = ShoalNode::start(&[]);
    let mut r = replica.connect();
    assert_eq!(r.run(&format!("REPLICAOF 127.0.0.1 {}", primary.port)), "+OK\r\n");
    wait_until("a good replica", || c.run("SET k v") == "+OK\r\n");
    assert_eq!(c.run("WAIT 1 5000"), ":1\r\n");
    assert_eq!(r.run("GET k"), "$1\r\nv\r\n");
}

/// A fake primary: answers the handshake, then `payload` after `+FULLRESYNC`, then holds the
/// connection until the replica closes it. Returns its port.
fn fake_primary(payload: &'static [u8]) -> u16 {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        // Serve a few link attempts (the replica retries after a failure).
        for stream in listener.incoming().take(3) {
            let Ok(mut s) = stream else { return };
            let mut r = BufReader::new(s.try_clone().expect("clone"));
            let mut commands = 0;
            let mut line = String::new();
            // Each command is an array; answer once per `*` header, PSYNC with the payload.
            while commands < 4 {
                line.clear();
                if r.read_line(&mut line).unwrap_or(0) == 0 {
                    return;
                }
                if line.starts_with('*') {
                    commands += 1;
                    let reply: &[u8] = if commands == 1 { b"+PONG\r\n" } else { b"+OK\r\n" };
                    if commands < 4 {
                        let _ = s.write_all(reply);
                    }
                }
            }
            // Drain the PSYNC arguments, then the payload.
            for _ in 0..6 {
                line.clear();
                let _ = r.read_line(&mut line);
            }
            let _ = s.write_all(b"+FULLRESYNC 0123456789012345678901234567890123456789 0\r\n");
            let _ = s.write_all(payload);
            let mut sink = [0u8; 1024];
            use std::io::Read;
            while matches!(s.read(&mut sink), Ok(n) if n > 0) {}
        }
    });
    port
}

#[test]
fn a_primary_sending_garbage_fails_the_link_not_the_replica() {
    for payload in [
        &b"$20\r\nthis is not an RDB!!"[..],
        b"$EOF:0123456789012345678901234567890123456789\r\nREDIS0010\xfa\xff\xff\xff\xff\xff\xff\xff\xff\xff",
        b"$99999999999999999999\r\n",
        b"-ERR no sync for you\r\n",
    ] {
        let port = fake_primary(payload);
        let node = ShoalNode::start(&[]);
        let mut c = node.connect();
        assert_eq!(c.run("SET mine 1"), "+OK\r\n");
        assert_eq!(c.run(&format!("REPLICAOF 127.0.0.1 {port}")), "+OK\r\n");
        node.log
            .wait_for(Duration::from_secs(30), |l| l.contains("Replication link to").then_some(()))
            .unwrap_or_else(|| panic!("no link failure logged for {:?}", String::from_utf8_lossy(payload)));
        // Still serving, link down, and back to a primary on request.
        assert_eq!(c.run("PING"), "+PONG\r\n");
        assert!(c.run("INFO replication").contains("master_link_status:down"));
        assert_eq!(c.run("REPLICAOF NO ONE"), "+OK\r\n");
        assert_eq!(c.run("SET after 1"), "+OK\r\n");
        drop(c);
        let mut n = node;
        n.assert_alive();
    }
}

/// CLIENT CAPA redirect (Valkey 8): a replica sends such a client to its primary for writes,
/// and for reads unless it said READONLY, inside MULTI too. Replies as Valkey 9.1 gives them.
#[test]
fn capa_redirect_clients_are_sent_to_the_primary() {
    let primary = ShoalNode::start(&[]);
    let replica = ShoalNode::start(&[]);
    let mut r = replica.connect();
    assert_eq!(r.run(&format!("REPLICAOF 127.0.0.1 {}", primary.port)), "+OK\r\n");
    let redirect = format!("-REDIRECT 127.0.0.1:{}\r\n", primary.port);
    let mut plain = replica.connect();
    assert!(plain.run("SET foo bar").starts_with("-READONLY"), "without CAPA: READONLY");
    assert_eq!(plain.run("GET foo"), "$-1\r\n");
    let mut c = replica.connect();
    assert_eq!(c.run("CLIENT CAPA redirect"), "+OK\r\n");
    assert_eq!(c.run("GET foo"), redirect);
    assert_eq!(c.run("SET foo bar"), redirect);
    assert_eq!(c.run("READONLY"), "+OK\r\n");
    assert_eq!(c.run("GET foo"), "$-1\r\n");
    assert_eq!(c.run("SET foo 1"), redirect);
    assert_eq!(c.run("MULTI"), "+OK\r\n");
    assert_eq!(c.run("GET foo"), "+QUEUED\r\n");
    assert_eq!(c.run("SET foo 1"), redirect);
    assert_eq!(c.run("EXEC"), "-EXECABORT Transaction discarded because of previous errors.\r\n");
    assert_eq!(c.run("PING"), "+PONG\r\n");
    assert_eq!(c.run("READWRITE"), "+OK\r\n");
    assert_eq!(c.run("GET foo"), redirect);
    assert_eq!(c.run("CLIENT CAPA foo bar"), "+OK\r\n");
}

#[test]
fn hash_fields_expiring_on_a_primary_reach_its_replica_as_hdel() {
    let primary = ShoalNode::start(&[]);
    let replica = ShoalNode::start(&[]);
    let mut p = primary.connect();
    let mut r = replica.connect();
    assert_eq!(r.run(&format!("REPLICAOF 127.0.0.1 {}", primary.port)), "+OK\r\n");
    wait_until("the replica's link", || r.run("INFO replication").contains("master_link_status:up"));
    assert_eq!(p.run("HSET h a 1 b 2 c 3"), ":3\r\n");
    // Far deadline first: the replica gets the primary's absolute deadline (HPEXPIREAT).
    assert_eq!(p.run("HEXPIRE h 1000 FIELDS 1 c"), "*1\r\n:1\r\n");
    let at = p.run("HPEXPIRETIME h FIELDS 1 c");
    wait_until("the deadline on the replica", || r.run("HPEXPIRETIME h FIELDS 1 c") == at);
    assert_eq!(r.run("HPERSIST h FIELDS 1 c"), "-READONLY You can't write against a read only replica.\r\n");
    // HINCRBYFLOAT keeps the TTL (its HSET rewrite is followed by the deadline); HSETEX and
    // HGETEX with relative times reach the replica with the primary's absolute deadline.
    assert_eq!(p.run("HINCRBYFLOAT h c 1.5"), "$3\r\n4.5\r\n");
    assert_eq!(p.run("HSETEX h PX 100000 FIELDS 1 e 5"), ":1\r\n");
    assert_eq!(p.run("HGETEX h EX 500 FIELDS 1 b"), "*1\r\n$1\r\n2\r\n");
    let want = p.run("HPEXPIRETIME h FIELDS 3 b c e");
    wait_until("the TTLs on the replica", || {
        r.run("HGET h c") == "$3\r\n4.5\r\n" && r.run("HPEXPIRETIME h FIELDS 3 b c e") == want
    });
    assert_eq!(p.run("HPERSIST h FIELDS 2 b e"), "*2\r\n:1\r\n:1\r\n");
    // A field expiring by the primary's active cycle (nobody reads it there) disappears on
    // the replica through the HDEL the primary sends.
    assert_eq!(p.run("HPEXPIRE h 50 FIELDS 1 a"), "*1\r\n:1\r\n");
    wait_until("field a to go on the replica", || r.run("HEXISTS h a") == ":0\r\n");
    assert_eq!(r.run("HGET h b"), "$1\r\n2\r\n");
    // The last fields going delete the key on both.
    assert_eq!(p.run("HPERSIST h FIELDS 1 c"), "*1\r\n:1\r\n");
    assert_eq!(p.run("HPEXPIRE h 50 FIELDS 3 b c e"), "*3\r\n:1\r\n:1\r\n:1\r\n");
    wait_until("the hash to go on the replica", || r.run("EXISTS h") == ":0\r\n");
    assert_eq!(p.run("EXISTS h"), ":0\r\n");
}

/// A full sync carries field TTLs: the snapshot is written as Valkey 9's `VALKEY080` when a
/// hash has them (RDB type 22), and the replica, attached after the fact, has the deadlines.
#[test]
fn a_full_sync_keeps_hash_field_ttls() {
    let primary = ShoalNode::start(&[]);
    let replica = ShoalNode::start(&[]);
    let mut p = primary.connect();
    let mut r = replica.connect();
    assert_eq!(p.run("HSET h a 1 b 2 c 3"), ":3\r\n");
    assert_eq!(p.run("HPEXPIREAT h 4000000000000 FIELDS 2 a c"), "*2\r\n:1\r\n:1\r\n");
    assert_eq!(p.run("SET plain v"), "+OK\r\n");
    assert_eq!(r.run(&format!("REPLICAOF 127.0.0.1 {}", primary.port)), "+OK\r\n");
    wait_until("the replica's link", || r.run("INFO replication").contains("master_link_status:up"));
    wait_until("the snapshot loaded", || r.run("GET plain") == "$1\r\nv\r\n");
    let want = "*3\r\n:4000000000000\r\n:-1\r\n:4000000000000\r\n";
    assert_eq!(p.run("HPEXPIRETIME h FIELDS 3 a b c"), want);
    assert_eq!(r.run("HPEXPIRETIME h FIELDS 3 a b c"), want);
    assert_eq!(r.run("HLEN h"), ":3\r\n");
}
