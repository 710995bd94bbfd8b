//! Blocking list and sorted-set commands over real sockets: FIFO wake-up order with several waiters,
//! timeouts, BLMOVE chains, pipelined requests behind a blocked one, disconnect cleanup,
//! CLIENT UNBLOCK and CLIENT KILL, wake-up after MULTI/EXEC. Each test runs against shoal-node
//! with 1 and 2 I/O threads and, where the behaviour is the same, against redis-server as the
//! reference. Nothing sleeps to synchronise: a test waits for `blocked_clients:N` in INFO with
//! a bounded poll before it pushes, so the blocking order is known.

use std::time::{Duration, Instant};

use shoal_e2e::client::RawClient;
use shoal_e2e::io_threads_test;
use shoal_e2e::process::Server;

/// Upper bound for any wait in these tests.
const WAIT: Duration = Duration::from_secs(10);

/// Polls INFO clients until `field:value` shows, failing the test after `WAIT`.
/// Redis 7.0 has no `total_blocking_keys` (7.2 added it): that field is checked on Shoal only.
fn wait_info(c: &mut RawClient, field: &str, value: usize) {
    if field == "total_blocking_keys" && c.run("INFO clients").find(field).is_none() {
        return;
    }
    c.wait_info("clients", field, value, WAIT);
}

fn bulk(s: &str) -> String {
    shoal_e2e::resp::bulk_text(s)
}

fn pair(k: &str, v: &str) -> String {
    format!("*2\r\n{}{}", bulk(k), bulk(v))
}

io_threads_test!(reference fn waiters_wake_in_fifo_order(n) {
    let server = Server::start(n, &[]);
    let mut admin = server.connect();
    let mut waiters: Vec<RawClient> = (0..3).map(|_| server.connect()).collect();
    for (i, w) in waiters.iter_mut().enumerate() {
        // Different commands and key orders, all blocked on `q`.
        let cmd: &[&str] = match i {
            0 => &["BLPOP", "q", "0"],
            1 => &["BRPOP", "other", "q", "0"],
            _ => &["BLPOP", "q", "other", "0"],
        };
        w.send_cmd(cmd).expect("send");
        wait_info(&mut admin, "blocked_clients", i + 1);
    }
    wait_info(&mut admin, "total_blocking_keys", 2);
    // One push with three elements serves all three, oldest first.
    assert_eq!(admin.run("RPUSH q a b c"), ":3\r\n");
    assert_eq!(waiters[0].read_text(), pair("q", "a"));
    assert_eq!(waiters[1].read_text(), pair("q", "c"), "BRPOP pops from the tail");
    assert_eq!(waiters[2].read_text(), pair("q", "b"));
    wait_info(&mut admin, "blocked_clients", 0);
    wait_info(&mut admin, "total_blocking_keys", 0);
    assert_eq!(admin.run("EXISTS q"), ":0\r\n");

    // One element at a time: each push serves exactly the oldest waiter.
    for (i, w) in waiters.iter_mut().enumerate() {
        w.send_cmd(&["BLPOP", "q", "0"]).expect("send");
        wait_info(&mut admin, "blocked_clients", i + 1);
    }
    for (i, w) in waiters.iter_mut().enumerate() {
        let v = format!("v{i}");
        assert_eq!(admin.run(&format!("LPUSH q {v}")), ":1\r\n");
        assert_eq!(w.read_text(), pair("q", &v));
    }
    wait_info(&mut admin, "blocked_clients", 0);
});

io_threads_test!(reference fn zset_waiters_wake_in_fifo_order(n) {
    let server = Server::start(n, &[]);
    let mut admin = server.connect();
    let mut waiters: Vec<RawClient> = (0..3).map(|_| server.connect()).collect();
    let cmds: [&[&str]; 3] =
        [&["BZPOPMIN", "z", "0"], &["BZPOPMAX", "other", "z", "0"], &["BZMPOP", "0", "1", "z", "MIN", "COUNT", "2"]];
    for (i, (w, cmd)) in waiters.iter_mut().zip(cmds).enumerate() {
        w.send_cmd(cmd).expect("send");
        wait_info(&mut admin, "blocked_clients", i + 1);
    }
    // A list push does not serve zset waiters.
    assert_eq!(admin.run("RPUSH other x"), ":1\r\n");
    assert_eq!(admin.run("DEL other"), ":1\r\n");
    // Four members serve all three, oldest first: min, then max, then the next two by rank.
    assert_eq!(admin.run("ZADD z 1 a 2 b 3 c 4 d"), ":4\r\n");
    assert_eq!(waiters[0].read_text(), format!("*3\r\n{}{}{}", bulk("z"), bulk("a"), bulk("1")));
    assert_eq!(waiters[1].read_text(), format!("*3\r\n{}{}{}", bulk("z"), bulk("d"), bulk("4")));
    assert_eq!(
        waiters[2].read_text(),
        format!("*2\r\n{}*2\r\n*2\r\n{}{}*2\r\n{}{}", bulk("z"), bulk("b"), bulk("2"), bulk("c"), bulk("3"))
    );
    wait_info(&mut admin, "blocked_clients", 0);
    assert_eq!(admin.run("EXISTS z"), ":0\r\n");
    // Timeouts answer a null array.
    assert_eq!(admin.run("BZPOPMIN z 0.01"), "*-1\r\n");
    assert_eq!(admin.run("BZMPOP 0.01 1 z MAX"), "*-1\r\n");
});

io_threads_test!(reference fn timeouts_reply_null_arrays(n) {
    let server = Server::start(n, &[]);
    let mut c = server.connect();
    let started = Instant::now();
    assert_eq!(c.run("BLPOP nokey 0.2"), "*-1\r\n");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(190), "timed out after {waited:?}");
    assert!(waited < WAIT, "timed out after {waited:?}");
    assert_eq!(c.run("BLMOVE nokey d LEFT RIGHT 0.05"), "*-1\r\n");
    assert_eq!(c.run("BRPOPLPUSH nokey d 0.05"), "*-1\r\n");
    assert_eq!(c.run("BLMPOP 0.05 2 k1 k2 LEFT COUNT 3"), "*-1\r\n");
    // RESP3: the null is `_`.
    c.send_cmd(&["HELLO", "3"]).expect("hello");
    c.read_value().expect("hello reply");
    assert_eq!(c.run("BRPOP nokey 0.05"), "_\r\n");
    assert_eq!(c.run("BLMOVE nokey d LEFT RIGHT 0.05"), "_\r\n");
    // A waiter that timed out is no longer blocked and a later push stays in the list.
    let mut admin = server.connect();
    wait_info(&mut admin, "blocked_clients", 0);
    assert_eq!(admin.run("RPUSH nokey x"), ":1\r\n");
    assert_eq!(admin.run("LLEN nokey"), ":1\r\n");
});

io_threads_test!(reference fn blmove_chains_carry_an_element_along(n) {
    let server = Server::start(n, &[]);
    let mut admin = server.connect();
    let mut first = server.connect();
    let mut second = server.connect();
    let mut last = server.connect();
    first.send_cmd(&["BLMOVE", "a", "b", "LEFT", "RIGHT", "0"]).expect("send");
    wait_info(&mut admin, "blocked_clients", 1);
    second.send_cmd(&["BRPOPLPUSH", "b", "c", "0"]).expect("send");
    wait_info(&mut admin, "blocked_clients", 2);
    last.send_cmd(&["BLPOP", "c", "0"]).expect("send");
    wait_info(&mut admin, "blocked_clients", 3);
    assert_eq!(admin.run("RPUSH a job"), ":1\r\n");
    assert_eq!(first.read_text(), bulk("job"));
    assert_eq!(second.read_text(), bulk("job"));
    assert_eq!(last.read_text(), pair("c", "job"));
    wait_info(&mut admin, "blocked_clients", 0);
    assert_eq!(admin.run("EXISTS a b c"), ":0\r\n");
});

io_threads_test!(reference fn pipelined_requests_wait_behind_a_blocked_one(n) {
    let server = Server::start(n, &[]);
    let mut admin = server.connect();
    let mut c = server.connect();
    let mut pipeline = shoal_e2e::resp::encode_command(&["BLPOP", "q", "0"]);
    pipeline.extend(shoal_e2e::resp::encode_command(&["LLEN", "q"]));
    pipeline.extend(shoal_e2e::resp::encode_command(&["PING"]));
    c.send(&pipeline).expect("send");
    wait_info(&mut admin, "blocked_clients", 1);
    assert_eq!(admin.run("RPUSH q x y"), ":2\r\n");
    assert_eq!(c.read_text(), pair("q", "x"));
    assert_eq!(c.read_text(), ":1\r\n", "LLEN ran after BLPOP was served");
    assert_eq!(c.read_text(), "+PONG\r\n");
});

io_threads_test!(reference fn a_disconnected_waiter_is_forgotten(n) {
    let server = Server::start(n, &[]);
    let mut admin = server.connect();
    let mut gone = server.connect();
    gone.send_cmd(&["BLPOP", "q", "0"]).expect("send");
    wait_info(&mut admin, "blocked_clients", 1);
    let mut stays = server.connect();
    stays.send_cmd(&["BLPOP", "q", "0"]).expect("send");
    wait_info(&mut admin, "blocked_clients", 2);
    drop(gone);
    wait_info(&mut admin, "blocked_clients", 1);
    assert_eq!(admin.run("RPUSH q x y"), ":2\r\n");
    assert_eq!(stays.read_text(), pair("q", "x"));
    assert_eq!(admin.run("LRANGE q 0 -1"), format!("*1\r\n{}", bulk("y")));
    wait_info(&mut admin, "blocked_clients", 0);
    wait_info(&mut admin, "total_blocking_keys", 0);
});

io_threads_test!(reference fn client_unblock_and_kill(n) {
    let server = Server::start(n, &[]);
    let mut admin = server.connect();
    let mut c = server.connect();
    let id = c.run("CLIENT ID");
    let id = id.trim_start_matches(':').trim_end();
    c.send_cmd(&["BLPOP", "q", "0"]).expect("send");
    wait_info(&mut admin, "blocked_clients", 1);
    assert_eq!(admin.run(&format!("CLIENT UNBLOCK {id}")), ":1\r\n");
    assert_eq!(c.read_text(), "*-1\r\n");
    wait_info(&mut admin, "blocked_clients", 0);
    assert_eq!(admin.run(&format!("CLIENT UNBLOCK {id}")), ":0\r\n");

    c.send_cmd(&["BLMOVE", "q", "d", "LEFT", "LEFT", "0"]).expect("send");
    wait_info(&mut admin, "blocked_clients", 1);
    assert_eq!(admin.run(&format!("CLIENT UNBLOCK {id} ERROR")), ":1\r\n");
    assert_eq!(c.read_text(), "-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n");
    assert_eq!(c.run("PING"), "+PONG\r\n", "the unblocked client is usable");

    c.send_cmd(&["BRPOP", "q", "0"]).expect("send");
    wait_info(&mut admin, "blocked_clients", 1);
    assert_eq!(admin.run(&format!("CLIENT KILL ID {id}")), ":1\r\n");
    wait_info(&mut admin, "blocked_clients", 0);
    assert!(c.expect_closed().is_ok(), "killed client's connection is closed");
    assert_eq!(admin.run("RPUSH q x"), ":1\r\n");
    assert_eq!(admin.run("LLEN q"), ":1\r\n");
});

io_threads_test!(reference fn a_list_survives_dump_and_restore(n) {
    let server = Server::start(n, &[]);
    let mut c = server.connect();
    c.cmd(&["RPUSH", "l", "a", "\x00bin", "123", "-7", ""]).expect("rpush");
    let dump = c.read_value_of(&["DUMP", "l"]);
    let shoal_e2e::resp::Value::Blob(b'$', Some(payload)) = dump else { panic!("DUMP: {dump:?}") };
    let restored = c.cmd(&[&b"RESTORE"[..], b"l2", b"0", &payload]).expect("restore");
    assert_eq!(restored, b"+OK\r\n");
    assert_eq!(c.cmd(&["LRANGE", "l2", "0", "-1"]).expect("lrange"), c.cmd(&["LRANGE", "l", "0", "-1"]).expect("lrange"));
    assert_eq!(c.run("TYPE l2"), "+list\r\n");
    // A restored key wakes a waiter, as any write of a key does.
    let mut admin = server.connect();
    let mut w = server.connect();
    w.send_cmd(&["BLPOP", "l3", "0"]).expect("send");
    wait_info(&mut admin, "blocked_clients", 1);
    let restored = admin.cmd(&[&b"RESTORE"[..], b"l3", b"0", &payload]).expect("restore");
    assert_eq!(restored, b"+OK\r\n");
    assert_eq!(w.read_text(), pair("l3", "a"));
});

/// A push inside MULTI/EXEC serves waiters once EXEC is done, with what the whole
/// transaction left; inside MULTI a blocking command times out at once.
fn push_inside_exec(n: usize) {
    let server = Server::start(n, &[]);
    let mut admin = server.connect();
    let mut w = server.connect();
    w.send_cmd(&["BLPOP", "q", "0"]).expect("send");
    wait_info(&mut admin, "blocked_clients", 1);
    let mut tx = Vec::new();
    for cmd in [&["MULTI"][..], &["RPUSH", "q", "a", "b"], &["LPOP", "q"], &["EXEC"]] {
        tx.extend(shoal_e2e::resp::encode_command(cmd));
    }
    admin.send(&tx).expect("send");
    assert_eq!(admin.read_text(), "+OK\r\n");
    assert_eq!(admin.read_text(), "+QUEUED\r\n");
    assert_eq!(admin.read_text(), "+QUEUED\r\n");
    assert_eq!(admin.read_text(), format!("*2\r\n:2\r\n{}", bulk("a")));
    assert_eq!(w.read_text(), pair("q", "b"));
    assert_eq!(admin.run("MULTI"), "+OK\r\n");
    assert_eq!(admin.run("BLPOP q 0"), "+QUEUED\r\n");
    assert_eq!(admin.run("BLMOVE q d LEFT LEFT 0"), "+QUEUED\r\n");
    assert_eq!(admin.run("EXEC"), "*2\r\n*-1\r\n$-1\r\n");
    wait_info(&mut admin, "blocked_clients", 0);
}

mod push_inside_exec_wakes_after_exec {
    #[test]
    fn reference() {
        super::push_inside_exec(0);
    }

    #[test]
    fn io_threads_1() {
        super::push_inside_exec(1);
    }

    #[test]
    fn io_threads_2() {
        super::push_inside_exec(2);
    }
}

/// Cluster mode: a client blocked on a key whose slot this node stops serving gets `-MOVED`
/// to the new owner instead of waiting for a push that can never happen here.
#[test]
fn a_waiter_on_a_slot_that_moves_away_gets_moved() {
    use shoal_e2e::cluster::{key_slot, Cluster};
    let mut cluster = Cluster::start(2);
    let slot = key_slot(b"q");
    let owner = cluster.owner(slot);
    let other = 1 - owner;
    let node = &cluster.node(owner).node;
    let mut admin = node.connect();
    let mut w = node.connect();
    w.send_cmd(&["BLPOP", "q", "0"]).expect("send");
    wait_info(&mut admin, "blocked_clients", 1);
    let new_port = cluster.ports[other];
    cluster.push(vec![(0, 16383, other)]);
    let reply = w.read_text();
    assert!(reply.starts_with(&format!("-MOVED {slot} ")), "{reply}");
    assert!(reply.ends_with(&format!(":{new_port}\r\n")), "{reply}");
    wait_info(&mut admin, "blocked_clients", 0);
}
