//! Scripts past `busy-reply-threshold`, run side by side against shoal-node and redis-server:
//! other clients get `-BUSY` (new connections too), only the allow-busy commands run, SCRIPT
//! KILL and FUNCTION KILL stop what they may stop (a `pcall` loop included), a script that wrote
//! is `-UNKILLABLE`, and SHUTDOWN NOSAVE stops the node and the script. The two transcripts must
//! agree, Redis's name in the BUSY text aside; Shoal's runs once inline and once with every read
//! and write on I/O threads.

use std::time::{Duration, Instant};

use shoal_e2e::diff::shape;
use shoal_e2e::{RawClient, RedisRef, ShoalNode};

const SPIN: &str = "local i = 0 while true do i = i + 1 end";
const LIB: &str = "#!lua name=spinlib
redis.register_function('spin', function(keys, args)
  local i = 0 while true do i = i + 1 end
end)";

fn text(raw: Vec<u8>) -> String {
    String::from_utf8_lossy(&raw).replace("Redis is busy", "Valkey is busy")
}

fn cmd(c: &mut RawClient, args: &[&str]) -> String {
    text(c.cmd(args).unwrap_or_else(|e| panic!("{args:?}: {e}")))
}

/// Sends PING until the server answers BUSY (the script in `runner` has passed the threshold).
fn wait_busy(c: &mut RawClient) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = cmd(c, &["PING"]);
        if r.starts_with("-BUSY") {
            return r;
        }
        assert!(Instant::now() < deadline, "no BUSY reply within 20s (last: {r})");
    }
}

/// The whole scenario; returns the transcript of replies. `connect` opens a new connection.
fn scenario(connect: &dyn Fn() -> RawClient) -> Vec<String> {
    let mut t = Vec::new();
    let (mut a, mut b) = (connect(), connect());
    assert_eq!(cmd(&mut b, &["SET", "before", "1"]), "+OK\r\n");
    t.push(cmd(&mut b, &["FUNCTION", "LOAD", LIB]));

    // An EVAL script that never ends and never writes.
    a.send_cmd(&["EVAL", SPIN, "0"]).unwrap();
    t.push(wait_busy(&mut b));
    t.push(cmd(&mut b, &["FUNCTION", "KILL"]));
    t.push(cmd(&mut b, &["FUNCTION", "STATS"]));
    t.push(cmd(&mut b, &["GET", "before"]));
    // A transaction: MULTI runs, what it would queue is refused, EXEC aborts.
    t.push(cmd(&mut b, &["MULTI"]));
    t.push(cmd(&mut b, &["INCR", "before"]));
    t.push(cmd(&mut b, &["EXEC"]));
    // A connection opened while the script runs is accepted and refused the same way.
    let mut late = connect();
    t.push(cmd(&mut late, &["PING"]));
    t.push(cmd(&mut late, &["HELLO", "3"]).lines().next().unwrap_or("").to_string());
    t.push(cmd(&mut b, &["SCRIPT", "KILL"]));
    t.push(text(a.read_raw().unwrap()));
    t.push(cmd(&mut b, &["PING"]));
    t.push(cmd(&mut late, &["GET", "before"]));

    // A function: SCRIPT KILL does not stop it, FUNCTION KILL does.
    a.send_cmd(&["FCALL", "spin", "0"]).unwrap();
    t.push(wait_busy(&mut b));
    t.push(cmd(&mut b, &["SCRIPT", "KILL"]));
    let stats = b.cmd(&["FUNCTION", "STATS"]).unwrap();
    let parsed = shoal_e2e::resp::parse(&stats).unwrap().unwrap().0;
    t.push(shape(&parsed));
    let stats = String::from_utf8_lossy(&stats).into_owned();
    assert!(stats.contains("spin") && stats.contains("FCALL") && stats.contains("duration_ms"), "{stats}");
    t.push(cmd(&mut b, &["FUNCTION", "KILL"]));
    t.push(text(a.read_raw().unwrap()));

    // A script catching the kill with pcall is stopped anyway.
    let catching = "while true do pcall(function() local i = 0 while true do i = i + 1 end end) end";
    a.send_cmd(&["EVAL", catching, "0"]).unwrap();
    t.push(wait_busy(&mut b));
    t.push(cmd(&mut b, &["SCRIPT", "KILL"]));
    t.push(text(a.read_raw().unwrap()));
    t.push(cmd(&mut b, &["SCRIPT", "KILL"]));

    // A script that wrote cannot be killed; SHUTDOWN NOSAVE stops the node with it.
    let writes = format!("redis.call('SET', 'written', '1') {SPIN}");
    a.send_cmd(&["EVAL", &writes, "0"]).unwrap();
    t.push(wait_busy(&mut b));
    t.push(cmd(&mut b, &["SCRIPT", "KILL"]));
    t.push(cmd(&mut b, &["SHUTDOWN"]));
    b.send_cmd(&["SHUTDOWN", "NOSAVE"]).unwrap();
    t.push(format!("shutdown nosave closes: {:?}", b.expect_closed().map_err(|e| e.to_string())));
    t.push(format!("caller closed: {:?}", a.expect_closed().map_err(|e| e.to_string())));
    t
}

fn expect_shoal_transcript(t: &[String]) {
    let eval_busy =
        "-BUSY Valkey is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.\r\n";
    let fn_busy =
        "-BUSY Valkey is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.\r\n";
    assert_eq!(t[1], eval_busy);
    assert_eq!(t[6], eval_busy, "a command inside MULTI is refused");
    assert!(t[7].starts_with("-EXECABORT Transaction discarded because of: BUSY"), "{}", t[7]);
    assert_eq!(t[8], eval_busy, "a connection accepted while busy");
    assert_eq!(t[10], "+OK\r\n", "SCRIPT KILL");
    assert!(t[11].starts_with("-ERR Script killed by user with SCRIPT KILL... script: "), "{}", t[11]);
    assert_eq!(t[12], "+PONG\r\n", "served again after the kill");
    assert_eq!(t[14], fn_busy);
    assert_eq!(t[15], fn_busy, "SCRIPT KILL refuses to stop a function");
    assert_eq!(t[17], "+OK\r\n", "FUNCTION KILL");
    assert!(t[18].contains("script: spin, on @user_function:3."), "{}", t[18]);
    assert_eq!(t[20], "+OK\r\n", "SCRIPT KILL of a pcall loop");
    assert!(t[21].starts_with("-ERR Script killed by user"), "{}", t[21]);
    assert!(t[22].starts_with("-NOTBUSY"), "{}", t[22]);
    assert!(t[24].starts_with("-UNKILLABLE"), "{}", t[24]);
    assert_eq!(t[25], eval_busy, "SHUTDOWN without NOSAVE");
    assert!(t.last().is_some_and(|l| l.ends_with("Ok(())")), "{t:?}");
}

#[test]
fn busy_scripts_agree_with_redis_server() {
    let (redis, _) = match RedisRef::start_tcp(&["--busy-reply-threshold", "200"]) {
        Ok(r) => r,
        Err(e) => panic!("redis-server is needed: {e}"),
    };
    let reference = scenario(&|| redis.connect());
    for threads in [1, 3] {
        let mut node = ShoalNode::with_io_threads(threads, &["--lua-time-limit", "200"]);
        let ours = scenario(&|| node.connect());
        expect_shoal_transcript(&ours);
        assert_eq!(ours, reference, "io-threads {threads}: Shoal (left) and redis-server (right) differ");
        assert!(node.wait_exit(Duration::from_secs(10)).is_some(), "SHUTDOWN NOSAVE stops the node");
        assert!(node.log.contains("Slow script detected"), "the slow script is logged");
    }
}

/// A script cut short by SIGTERM after writing: the node stops, and a replica never sees the
/// script's partial effects (only the writes before it).
#[test]
fn a_busy_script_stopped_by_sigterm_leaves_nothing_on_the_replica() {
    let mut primary = ShoalNode::start(&["--busy-reply-threshold", "100"]);
    let replica = ShoalNode::start(&[]);
    let mut r = replica.connect();
    assert_eq!(r.run(&format!("REPLICAOF 127.0.0.1 {}", primary.port)), "+OK\r\n");
    let mut p = primary.connect();
    assert_eq!(cmd(&mut p, &["SET", "before", "1"]), "+OK\r\n");
    let deadline = Instant::now() + Duration::from_secs(20);
    while cmd(&mut r, &["GET", "before"]) != "$1\r\n1\r\n" {
        assert!(Instant::now() < deadline, "the replica never caught up");
    }
    let writes = format!("redis.call('SET', 'partial', '1') {SPIN}");
    p.send_cmd(&["EVAL", &writes, "0"]).unwrap();
    let mut other = primary.connect();
    wait_busy(&mut other);
    primary.signal("TERM");
    assert!(primary.wait_exit(Duration::from_secs(10)).is_some(), "SIGTERM stops a busy node");
    p.expect_closed().expect("the script's caller gets no reply");
    // The replica keeps what it had; the script's write never reached it.
    assert_eq!(cmd(&mut r, &["GET", "before"]), "$1\r\n1\r\n");
    assert_eq!(cmd(&mut r, &["GET", "partial"]), "$-1\r\n");
}
