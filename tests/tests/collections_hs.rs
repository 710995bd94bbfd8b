//! Hashes and sets through real clients against a real node, with one and two I/O threads:
//! the `redis` crate (pipelined bulk loads, HSCAN/SSCAN cursor loops as applications write
//! them, DUMP/RESTORE over the wire) and `redis-benchmark`'s HSET/SADD/SPOP tests.

use std::collections::{HashMap, HashSet};
use std::process::Command;
use std::time::Duration;

use shoal_e2e::{io_threads_test, run_with_timeout, ShoalNode};

fn connect(node: &ShoalNode) -> redis::Connection {
    let client = redis::Client::open(format!("redis://127.0.0.1:{}/", node.port)).expect("url");
    let con = client.get_connection_with_timeout(Duration::from_secs(10)).expect("connect");
    con.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    con
}

io_threads_test!(fn hash_bulk_load_scan_and_restore(n) {
    let node = ShoalNode::with_io_threads(n, &[]);
    let mut con = connect(&node);
    let mut pipe = redis::pipe();
    for i in 0..5000 {
        pipe.cmd("HSET").arg("h").arg(format!("f{i}")).arg(format!("v{i}")).ignore();
    }
    let () = pipe.query(&mut con).expect("bulk HSET");
    let len: usize = redis::cmd("HLEN").arg("h").query(&mut con).expect("HLEN");
    assert_eq!(len, 5000);
    let enc: String = redis::cmd("OBJECT").arg("ENCODING").arg("h").query(&mut con).expect("encoding");
    assert_eq!(enc, "hashtable");
    let all: HashMap<String, String> = redis::cmd("HGETALL").arg("h").query(&mut con).expect("HGETALL");
    assert_eq!(all.len(), 5000);
    assert!(all.iter().all(|(f, v)| f[1..] == v[1..]));
    // An application's HSCAN loop sees every field.
    let mut seen = HashSet::new();
    let mut cursor: u64 = 0;
    for _ in 0..10_000 {
        let (next, items): (u64, Vec<String>) =
            redis::cmd("HSCAN").arg("h").arg(cursor).arg("COUNT").arg(100).query(&mut con).expect("HSCAN");
        seen.extend(items.chunks(2).map(|p| p[0].clone()));
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    assert_eq!(cursor, 0, "HSCAN did not finish");
    assert_eq!(seen.len(), 5000);
    // DUMP / RESTORE over the wire.
    let payload: Vec<u8> = redis::cmd("DUMP").arg("h").query(&mut con).expect("DUMP");
    let () = redis::cmd("RESTORE").arg("h2").arg(0).arg(payload).query(&mut con).expect("RESTORE");
    let copy: HashMap<String, String> = redis::cmd("HGETALL").arg("h2").query(&mut con).expect("HGETALL");
    assert_eq!(copy, all);
    let f: f64 = redis::cmd("HINCRBYFLOAT").arg("h2").arg("x").arg("2.5").query(&mut con).expect("HINCRBYFLOAT");
    assert_eq!(f, 2.5);
});

io_threads_test!(fn set_bulk_load_algebra_and_pops(n) {
    let node = ShoalNode::with_io_threads(n, &[]);
    let mut con = connect(&node);
    let mut pipe = redis::pipe();
    for i in 0..3000 {
        pipe.cmd("SADD").arg("a").arg(i).ignore();
        if i % 3 == 0 {
            pipe.cmd("SADD").arg("b").arg(i).ignore();
        }
    }
    let () = pipe.query(&mut con).expect("bulk SADD");
    let inter: usize = redis::cmd("SINTERCARD").arg(2).arg("a").arg("b").query(&mut con).expect("SINTERCARD");
    assert_eq!(inter, 1000);
    let diff: usize = redis::cmd("SDIFFSTORE").arg("d").arg("a").arg("b").query(&mut con).expect("SDIFFSTORE");
    assert_eq!(diff, 2000);
    let members: HashSet<i64> = redis::cmd("SMEMBERS").arg("d").query(&mut con).expect("SMEMBERS");
    assert!(members.iter().all(|m| m % 3 != 0) && members.len() == 2000);
    let popped: Vec<i64> = redis::cmd("SPOP").arg("d").arg(1500).query(&mut con).expect("SPOP");
    let popped: HashSet<i64> = popped.into_iter().collect();
    assert_eq!(popped.len(), 1500);
    let rest: HashSet<i64> = redis::cmd("SMEMBERS").arg("d").query(&mut con).expect("SMEMBERS");
    assert!(rest.is_disjoint(&popped));
    assert_eq!(rest.len() + popped.len(), 2000);
    let mut cursor: u64 = 0;
    let mut seen = HashSet::new();
    for _ in 0..10_000 {
        let (next, items): (u64, Vec<i64>) = redis::cmd("SSCAN").arg("a").arg(cursor).query(&mut con).expect("SSCAN");
        seen.extend(items);
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    assert_eq!(seen.len(), 3000);
});

io_threads_test!(fn redis_benchmark_collections(n) {
    let mut node = ShoalNode::with_io_threads(n, &[]);
    let out = run_with_timeout(
        Command::new("redis-benchmark").args([
            "-h", "127.0.0.1", "-p", &node.port.to_string(), "-t", "hset,sadd,spop", "-n", "2000", "-P", "8", "-q",
        ]),
        b"",
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "{}\n{}", out.stdout, out.stderr);
    let text = format!("{}\n{}", out.stdout, out.stderr);
    let lines: Vec<&str> = text.lines().filter_map(|l| l.rsplit('\r').next()).map(str::trim).collect();
    assert!(!lines.iter().any(|l| l.contains("ERR")), "{text}");
    for test in ["HSET", "SADD", "SPOP"] {
        assert!(
            lines.iter().any(|l| l.starts_with(&format!("{test}: ")) && l.contains("requests per second")),
            "no result for {test}:\n{text}"
        );
    }
    node.assert_alive();
});
