//! Sorted sets through real clients against a real node, with one and two I/O threads: the
//! `redis` crate (a pipelined leaderboard load, ZSCAN as applications loop it, ranks, slices,
//! DUMP/RESTORE over the wire, RESP3 doubles) and `redis-benchmark`'s ZADD/ZPOPMIN tests.

use std::collections::HashSet;
use std::process::Command;
use std::time::Duration;

use shoal_e2e::{io_threads_test, run_with_timeout, ShoalNode};

fn connect(node: &ShoalNode) -> redis::Connection {
    let client = redis::Client::open(format!("redis://127.0.0.1:{}/", node.port)).expect("url");
    let con = client.get_connection_with_timeout(Duration::from_secs(10)).expect("connect");
    con.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    con
}

io_threads_test!(fn leaderboard_load_ranks_scan_and_restore(n) {
    let node = ShoalNode::with_io_threads(n, &[]);
    let mut con = connect(&node);
    const N: usize = 20_000;
    let mut pipe = redis::pipe();
    for i in 0..N {
        pipe.cmd("ZADD").arg("lb").arg(i as f64 / 2.0).arg(format!("p{i:05}")).ignore();
    }
    let () = pipe.query(&mut con).expect("bulk ZADD");
    let card: usize = redis::cmd("ZCARD").arg("lb").query(&mut con).expect("ZCARD");
    assert_eq!(card, N);
    let enc: String = redis::cmd("OBJECT").arg("ENCODING").arg("lb").query(&mut con).expect("encoding");
    assert_eq!(enc, "skiplist");
    let rank: usize = redis::cmd("ZREVRANK").arg("lb").arg("p19990").query(&mut con).expect("ZREVRANK");
    assert_eq!(rank, 9);
    let top: Vec<(String, f64)> =
        redis::cmd("ZRANGE").arg("lb").arg(0).arg(2).arg("REV").arg("WITHSCORES").query(&mut con).expect("top");
    assert_eq!(top, vec![("p19999".into(), 9999.5), ("p19998".into(), 9999.0), ("p19997".into(), 9998.5)]);
    let mid: Vec<String> = redis::cmd("ZRANGE").arg("lb").arg(10_000).arg(10_001).query(&mut con).expect("mid");
    assert_eq!(mid, ["p10000", "p10001"]);
    let count: usize = redis::cmd("ZCOUNT").arg("lb").arg("(100").arg(200).query(&mut con).expect("ZCOUNT");
    assert_eq!(count, 200);
    // An application's ZSCAN loop sees every member once.
    let mut seen = HashSet::new();
    let mut cursor: u64 = 0;
    for _ in 0..10_000 {
        let (next, items): (u64, Vec<String>) =
            redis::cmd("ZSCAN").arg("lb").arg(cursor).arg("COUNT").arg(500).query(&mut con).expect("ZSCAN");
        for pair in items.chunks(2) {
            assert!(seen.insert(pair[0].clone()), "{} returned twice", pair[0]);
        }
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    assert_eq!(cursor, 0, "ZSCAN did not finish");
    assert_eq!(seen.len(), N);
    // DUMP / RESTORE over the wire keeps members, scores and order.
    let payload: Vec<u8> = redis::cmd("DUMP").arg("lb").query(&mut con).expect("DUMP");
    let () = redis::cmd("RESTORE").arg("lb2").arg(0).arg(payload).query(&mut con).expect("RESTORE");
    let a: Vec<(String, f64)> = redis::cmd("ZRANGE").arg("lb").arg(0).arg(-1).arg("WITHSCORES").query(&mut con).expect("a");
    let b: Vec<(String, f64)> = redis::cmd("ZRANGE").arg("lb2").arg(0).arg(-1).arg("WITHSCORES").query(&mut con).expect("b");
    assert_eq!(a, b);
    // Pops and store commands.
    let popped: Vec<(String, f64)> = redis::cmd("ZPOPMIN").arg("lb2").arg(3).query(&mut con).expect("ZPOPMIN");
    assert_eq!(popped[0], ("p00000".into(), 0.0));
    let stored: usize =
        redis::cmd("ZINTERSTORE").arg("both").arg(2).arg("lb").arg("lb2").query(&mut con).expect("ZINTERSTORE");
    assert_eq!(stored, N - 3);
    let s: f64 = redis::cmd("ZSCORE").arg("both").arg("p00004").query(&mut con).expect("ZSCORE");
    assert_eq!(s, 4.0);
    // RESP3: scores are doubles.
    let mut r3 = std::net::TcpStream::connect(("127.0.0.1", node.port)).expect("raw connect");
    r3.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    use std::io::{Read, Write};
    r3.write_all(b"HELLO 3\r\nZSCORE lb p00003\r\n").expect("write");
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.ends_with(b",1.5\r\n") {
        let n = r3.read(&mut chunk).expect("read");
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&buf));
        buf.extend_from_slice(&chunk[..n]);
    }
});

io_threads_test!(fn redis_benchmark_zset(n) {
    let mut node = ShoalNode::with_io_threads(n, &[]);
    let out = run_with_timeout(
        Command::new("redis-benchmark").args([
            "-h", "127.0.0.1", "-p", &node.port.to_string(), "-t", "zadd,zpopmin", "-n", "2000", "-P", "8", "-q",
        ]),
        b"",
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "{}\n{}", out.stdout, out.stderr);
    let text = format!("{}\n{}", out.stdout, out.stderr);
    let lines: Vec<&str> = text.lines().filter_map(|l| l.rsplit('\r').next()).map(str::trim).collect();
    assert!(!lines.iter().any(|l| l.contains("ERR")), "{text}");
    for test in ["ZADD", "ZPOPMIN"] {
        assert!(
            lines.iter().any(|l| l.starts_with(&format!("{test}: ")) && l.contains("requests per second")),
            "no result for {test}:\n{text}"
        );
    }
    node.assert_alive();
});
