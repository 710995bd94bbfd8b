//! Real client programs against a real node: the `redis` crate, `redis-cli` (arguments,
//! `--no-raw`, piped input, `--pipe` mass insertion) and `redis-benchmark`.

use std::process::Command;
use std::time::Duration;

use shoal_e2e::resp::encode_command;
use shoal_e2e::{io_threads_test, run_with_timeout, ShoalNode};

const TOOL_TIMEOUT: Duration = Duration::from_secs(60);

io_threads_test!(fn redis_crate_sync_client(n) {
    let node = ShoalNode::with_io_threads(n, &[]);
    let client = redis::Client::open(format!("redis://127.0.0.1:{}/", node.port)).expect("url");
    let mut con = client
        .get_connection_with_timeout(Duration::from_secs(10))
        .expect("connect");
    con.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let pong: String = redis::cmd("PING").query(&mut con).expect("ping");
    assert_eq!(pong, "PONG");
    let () = redis::cmd("SET").arg("k").arg("v").query(&mut con).expect("set");
    let v: Option<String> = redis::cmd("GET").arg("k").query(&mut con).expect("get");
    assert_eq!(v.as_deref(), Some("v"));
    let missing: Option<String> = redis::cmd("GET").arg("nope").query(&mut con).expect("get");
    assert_eq!(missing, None);
    let n1: i64 = redis::cmd("INCR").arg("n").query(&mut con).expect("incr");
    let n2: i64 = redis::cmd("INCRBY").arg("n").arg(41).query(&mut con).expect("incrby");
    assert_eq!((n1, n2), (1, 42));
    let () = redis::cmd("MSET")
        .arg("a")
        .arg("1")
        .arg("b")
        .arg(&b"\x00\xff"[..])
        .query(&mut con)
        .expect("mset");
    let got: Vec<Option<Vec<u8>>> = redis::cmd("MGET")
        .arg("a")
        .arg("b")
        .arg("c")
        .query(&mut con)
        .expect("mget");
    assert_eq!(got, vec![Some(b"1".to_vec()), Some(b"\x00\xff".to_vec()), None]);
    let deleted: i64 = redis::cmd("DEL").arg("a").arg("b").arg("c").query(&mut con).expect("del");
    assert_eq!(deleted, 2);
    let err = redis::cmd("INCR").arg("k").query::<i64>(&mut con).unwrap_err();
    assert_eq!(err.detail(), Some("value is not an integer or out of range"));
    // A pipeline through the crate.
    let (x, y): (i64, i64) = redis::pipe()
        .cmd("INCR")
        .arg("p")
        .cmd("INCR")
        .arg("p")
        .query(&mut con)
        .expect("pipeline");
    assert_eq!((x, y), (1, 2));
});

fn cli(node: &ShoalNode, args: &[&str], stdin: &str) -> String {
    let out = run_with_timeout(
        Command::new("redis-cli").args(["-h", "127.0.0.1", "-p", &node.port.to_string()]).args(args),
        stdin.as_bytes(),
        TOOL_TIMEOUT,
    );
    assert!(out.status.success(), "redis-cli {args:?}: {}\n{}", out.stdout, out.stderr);
    out.stdout
}

io_threads_test!(fn redis_cli(n) {
    let node = ShoalNode::with_io_threads(n, &[]);
    assert_eq!(cli(&node, &["SET", "a", "b"], ""), "OK");
    assert_eq!(cli(&node, &["GET", "a"], ""), "b");
    assert_eq!(cli(&node, &["--no-raw", "GET", "a"], ""), "\"b\"");
    assert_eq!(cli(&node, &["--no-raw", "GET", "nope"], ""), "(nil)");
    assert_eq!(cli(&node, &["--no-raw", "INCR", "n"], ""), "(integer) 1");
    assert_eq!(
        cli(&node, &["--no-raw", "NOSUCHCMD"], ""),
        "(error) ERR unknown command 'NOSUCHCMD', with args beginning with: "
    );
    assert_eq!(cli(&node, &["--no-raw", "MGET", "a", "nope"], ""), "1) \"b\"\n2) (nil)");
    // Commands piped on stdin, one per line.
    assert_eq!(cli(&node, &[], "SET x 1\nINCR x\nGET x\nPING\n"), "OK\n2\n2\nPONG");
    // Mass insertion with --pipe: raw protocol on stdin.
    let mut proto = Vec::new();
    for i in 0..1000 {
        proto.extend(encode_command(&["SET", &format!("key:{i}"), &i.to_string()]));
    }
    let out = run_with_timeout(
        Command::new("redis-cli").args(["-h", "127.0.0.1", "-p", &node.port.to_string(), "--pipe"]),
        &proto,
        TOOL_TIMEOUT,
    );
    assert!(out.status.success(), "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("errors: 0, replies: 1000"), "{}", out.stdout);
    assert_eq!(cli(&node, &["GET", "key:999"], ""), "999");
    assert_eq!(cli(&node, &["DBSIZE"], ""), "1003");
});

/// Runs redis-benchmark and checks every test printed a requests-per-second line and no
/// error.
fn benchmark(node: &ShoalNode, pipeline: &str) {
    let out = run_with_timeout(
        Command::new("redis-benchmark").args([
            "-h",
            "127.0.0.1",
            "-p",
            &node.port.to_string(),
            "-t",
            "ping,set,get,incr,mset",
            "-P",
            pipeline,
            "-n",
            "2000",
            "-q",
        ]),
        b"",
        TOOL_TIMEOUT,
    );
    assert!(out.status.success(), "{}\n{}", out.stdout, out.stderr);
    let text = format!("{}\n{}", out.stdout, out.stderr);
    // Progress lines are rewritten in place with `\r`: only the last part of each line counts.
    let lines: Vec<&str> =
        text.lines().filter_map(|l| l.rsplit('\r').next()).map(str::trim).filter(|l| !l.is_empty()).collect();
    let errors: Vec<&&str> =
        lines.iter().filter(|l| l.contains("ERR") || l.to_ascii_lowercase().contains("error")).collect();
    assert!(errors.is_empty(), "redis-benchmark -P {pipeline} errors: {errors:#?}\n{text}");
    for test in ["PING_INLINE", "PING_MBULK", "SET", "GET", "INCR", "MSET (10 keys)"] {
        assert!(
            lines.iter().any(|l| l.starts_with(&format!("{test}: ")) && l.contains("requests per second")),
            "redis-benchmark -P {pipeline}: no result for {test}:\n{text}"
        );
    }
}

io_threads_test!(fn redis_benchmark(n) {
    let mut node = ShoalNode::with_io_threads(n, &[]);
    benchmark(&node, "1");
    benchmark(&node, "16");
    node.assert_alive();
});
