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
