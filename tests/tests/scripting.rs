//! Lua scripting with real processes: redis-py's `Lock` and `register_script` on a node and
//! on a cluster (`tests/python/scripting_clients.py`), script writes reaching a replica as
//! their effects, cluster key checks, and bad scripts (a runaway loop, deep recursion, a huge
//! reply) that fail clearly while the node keeps serving. The replies themselves are compared
//! with redis-server in `tests/diff/scripting.txt`.

use std::process::Command;
use std::time::{Duration, Instant};

use shoal_e2e::cluster::{key_in_slot, Cluster};
use shoal_e2e::{run_with_timeout, ShoalNode};

fn python(args: &[String]) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/python/scripting_clients.py");
    let out = run_with_timeout(Command::new("python3").arg(script).args(args), b"", Duration::from_secs(180));
    assert!(out.status.success(), "scripting clients failed:\n{}\n{}", out.stdout, out.stderr);
    out.stdout
}

#[test]
fn redis_py_lock_and_scripts_on_a_node_and_a_cluster() {
    let node = ShoalNode::start(&[]);
    let cluster = Cluster::start(3);
    let out = python(&[node.port.to_string(), cluster.node(0).port().to_string()]);
    assert!(out.contains("none lost; register_script ok") && out.contains("on a cluster"), "{out}");
    println!("{}", out.trim());
}

/// Runs `tests/node/<script>` with Node.js (its packages installed by `npm ci` in scripts/test.sh).
fn node_js(script: &str, args: &[String]) -> String {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/node");
    assert!(
        std::path::Path::new(dir).join("node_modules/ioredis").exists(),
        "Node.js packages missing: run `npm ci` in tests/node (scripts/test.sh does)"
    );
    let out = run_with_timeout(
        Command::new("node").arg(format!("{dir}/{script}")).args(args),
        b"",
        Duration::from_secs(180),
    );
    assert!(out.status.success(), "{script} failed:\n{}\n{}", out.stdout, out.stderr);
    out.stdout
}

#[test]
fn ioredis_define_command_on_a_node_and_a_cluster() {
    let node = ShoalNode::start(&[]);
    let cluster = Cluster::start(3);
    let out = node_js("scripting.js", &[node.port.to_string(), cluster.node(0).port().to_string()]);
    assert!(out.contains("on a node: rate limit") && out.contains("on 3 shards ok"), "{out}");
    println!("{}", out.trim());
}

#[test]
fn script_writes_reach_a_replica_as_their_effects() {
    let primary = ShoalNode::start(&[]);
    let replica = ShoalNode::start(&[]);
    let mut r = replica.connect();
    assert_eq!(r.run(&format!("REPLICAOF 127.0.0.1 {}", primary.port)), "+OK\r\n");
    let mut p = primary.connect();
    assert_eq!(p.run("SADD s a b c d e"), ":5\r\n");
    // SPOP is random: replaying the script on the replica would pop other members.
    let script = "local m = redis.call('SPOP', KEYS[1]) redis.call('INCR', KEYS[2]) return m";
    for _ in 0..3 {
        let reply = p.read_value_of(&["EVAL", script, "2", "s", "n"]);
        assert!(matches!(reply, shoal_e2e::resp::Value::Blob(_, Some(_))), "{reply:?}");
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while p.run("WAIT 1 1000") != ":1\r\n" {
        assert!(Instant::now() < deadline, "the replica never acknowledged");
    }
    let members = |c: &mut shoal_e2e::RawClient| {
        let mut v = match c.read_value_of(&["SMEMBERS", "s"]) {
            shoal_e2e::resp::Value::Agg(_, Some(items)) => {
                items.iter().map(|i| format!("{i:?}")).collect::<Vec<_>>()
            }
            other => panic!("{other:?}"),
        };
        v.sort();
        v
    };
    assert_eq!(members(&mut p), members(&mut r), "the replica popped what the primary popped");
    assert_eq!(r.run("GET n"), "$1\r\n3\r\n");
}

/// Sends one command given as arguments (spaces inside arguments kept); the raw reply.
fn cmd(c: &mut shoal_e2e::RawClient, args: &[&str]) -> String {
    String::from_utf8_lossy(&c.cmd(args).expect("command")).into_owned()
}

#[test]
fn cluster_scripts_must_use_local_keys() {
    let cluster = Cluster::start(2);
    let owner = cluster.owner(0);
    let mut c = cluster.node(owner).node.connect();
    let local = key_in_slot(0, "a");
    let remote = key_in_slot(16000, "b");
    let other = 1 - owner;
    assert_eq!(cmd(&mut c, &["EVAL", "return redis.call('SET', KEYS[1], 'v')", "1", &local]), "+OK\r\n");
    // Declared keys are routed like any command's.
    let moved = cmd(&mut c, &["EVAL", "return 1", "1", &remote]);
    assert_eq!(moved, format!("-MOVED 16000 127.0.0.1:{}\r\n", cluster.node(other).port()));
    assert_eq!(
        cmd(&mut c, &["EVAL", "return 1", "2", &local, &remote]),
        "-CROSSSLOT Keys in request don't hash to the same slot\r\n"
    );
    // An undeclared key of another node is refused inside the script.
    let r = cmd(&mut c, &["EVAL", &format!("return redis.call('GET', '{remote}')"), "0"]);
    assert!(
        r.starts_with("-ERR Script attempted to access a non local key in a cluster node script: "),
        "{r}"
    );
}

#[test]
fn bad_scripts_fail_clearly_and_the_node_keeps_serving() {
    let mut node = ShoalNode::start(&["--busy-reply-threshold", "300"]);
    let mut c = node.connect();
    assert_eq!(c.run("SET keep 1"), "+OK\r\n");
    // A runaway loop: another client kills it (the BUSY window itself: tests/scripting_busy.rs).
    c.send_cmd(&["EVAL", "while true do end", "0"]).unwrap();
    let mut killer = node.connect();
    let deadline = Instant::now() + Duration::from_secs(20);
    while cmd(&mut killer, &["SCRIPT", "KILL"]) != "+OK\r\n" {
        assert!(Instant::now() < deadline, "the runaway script could not be killed");
    }
    let r = c.read_text();
    assert!(r.starts_with("-ERR Script killed by user with SCRIPT KILL..."), "{r}");
    let r = cmd(&mut c, &["EVAL", "local function f(n) return 1 + f(n + 1) end return f(1)", "0"]);
    assert!(r.starts_with("-ERR user_script:1: stack overflow"), "{r}");
    let r = cmd(&mut c, &["EVAL", "return string.len(string.rep('x', 50000000))", "0"]);
    assert_eq!(r, ":50000000\r\n");
    let big = c.read_value_of(&["EVAL", "return string.rep('y', 20000000)", "0"]);
    assert!(matches!(&big, shoal_e2e::resp::Value::Blob(_, Some(b)) if b.len() == 20_000_000));
    let r = cmd(&mut c, &["EVAL", "return redis.call('GET')", "0"]);
    assert!(r.starts_with("-ERR Wrong number of args calling Redis command from script script: "), "{r}");
    let r = cmd(&mut c, &["EVAL", "return (", "0"]);
    assert!(r.starts_with("-ERR Error compiling script (new function): user_script:1: "), "{r}");
    assert_eq!(c.run("GET keep"), "$1\r\n1\r\n");
    assert_eq!(c.run("PING"), "+PONG\r\n");
    node.assert_alive();
}

#[test]
fn functions_reach_replicas_with_the_full_sync_and_the_stream() {
    let primary = ShoalNode::start(&[]);
    let mut p = primary.connect();
    let lib1 = "#!lua name=lib1\nredis.register_function{function_name='get1', callback=function(keys) return redis.call('GET', keys[1]) end, flags={'no-writes'}}";
    assert_eq!(cmd(&mut p, &["FUNCTION", "LOAD", lib1]), "$4\r\nlib1\r\n");
    assert_eq!(p.run("SET k v"), "+OK\r\n");
    // A Shoal replica and a redis-server replica both get lib1 with the full sync.
    let replica = ShoalNode::start(&[]);
    let (redis, _) = shoal_e2e::RedisRef::start_tcp(&[]).expect("redis-server");
    let mut r = replica.connect();
    let mut rr = redis.connect();
    let to_primary = format!("REPLICAOF 127.0.0.1 {}", primary.port);
    assert_eq!(r.run(&to_primary), "+OK\r\n");
    assert_eq!(rr.run(&to_primary), "+OK\r\n");
    let deadline = Instant::now() + Duration::from_secs(60);
    while p.run("WAIT 2 1000") != ":2\r\n" {
        assert!(Instant::now() < deadline, "the replicas never synced");
    }
    // Then lib2 through the stream.
    let lib2 = "#!lua name=lib2\nredis.register_function('two', function() return 2 end)";
    assert_eq!(cmd(&mut p, &["FUNCTION", "LOAD", lib2]), "$4\r\nlib2\r\n");
    assert_eq!(p.run("WAIT 2 5000"), ":2\r\n");
    for (name, c) in [("shoal", &mut r), ("redis-server", &mut rr)] {
        assert_eq!(c.run("FCALL_RO get1 1 k"), "$1\r\nv\r\n", "lib1 on the {name} replica");
        let list = c.run("FUNCTION LIST");
        assert!(list.contains("lib1") && list.contains("lib2"), "{name}: {list}");
    }
}

#[test]
fn function_dump_and_restore_move_libraries_between_shoal_and_redis_server() {
    let node = ShoalNode::start(&[]);
    let redis = shoal_e2e::RedisRef::start().expect("redis-server");
    let mut s = node.connect();
    let mut r = redis.connect();
    let lib = "#!lua name=moved\nredis.register_function('answer', function() return 42 end)";
    for c in [&mut s, &mut r] {
        assert_eq!(cmd(c, &["FUNCTION", "LOAD", lib]), "$5\r\nmoved\r\n");
    }
    let dump = |c: &mut shoal_e2e::RawClient| match c.read_value_of(&["FUNCTION", "DUMP"]) {
        shoal_e2e::resp::Value::Blob(_, Some(b)) => b,
        other => panic!("FUNCTION DUMP: {other:?}"),
    };
    let (from_shoal, from_redis) = (dump(&mut s), dump(&mut r));
    assert_eq!(from_shoal, from_redis, "the same payload, byte for byte");
    for (c, payload) in [(&mut s, &from_redis), (&mut r, &from_shoal)] {
        assert_eq!(c.run("FUNCTION FLUSH"), "+OK\r\n");
        let reply = c.cmd(&[b"FUNCTION".as_slice(), b"RESTORE", payload]).expect("restore");
        assert_eq!(reply, b"+OK\r\n");
        assert_eq!(c.run("FCALL answer 0"), ":42\r\n");
        let again = c.cmd(&[b"FUNCTION".as_slice(), b"RESTORE", payload]).expect("restore");
        assert_eq!(String::from_utf8_lossy(&again), "-ERR Library moved already exists\r\n");
    }
}

/// BullMQ (every write a Lua script over hash-tagged keys, events in a stream, workers blocked
/// on a marker key) on a 3-shard cluster: 10,000 jobs, three workers, each job once.
#[test]
fn bullmq_processes_every_job_exactly_once_on_a_cluster() {
    let cluster = Cluster::start(3);
    let out = node_js("bullmq.js", &[cluster.node(0).port().to_string(), "10000".to_string()]);
    assert!(out.contains("10000 jobs, 10000 processed, 0 duplicated, 0 missing, 0 failed"), "{out}");
    println!("{}", out.trim());
}
