//! TLS end to end: real clients (redis-cli, redis-benchmark, redis-py, openssl s_client, a
//! rustls client) against a node with a `tls-port`, mutual TLS refusals, bad input on the TLS
//! port, certificate rotation under load, replication and a cluster over TLS. Certificates
//! are generated per test by the `openssl` command line.

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use shoal_e2e::cluster::{key_slot, wait_for, TempDir};
use shoal_e2e::tls::{cert_der, peer_cert, tls_connect, Certs, TlsNode};
use shoal_e2e::{run_with_timeout, RawClient};

const WAIT: Duration = Duration::from_secs(30);

fn args(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// A node with mTLS required and `io-threads n` (all I/O offloaded when n > 1).
fn mtls_node(certs: &Certs, n: usize, extra: &[&str]) -> TlsNode {
    let mut a = certs.server_args("yes");
    let n = n.to_string();
    a.extend(args(&["--io-threads", &n]));
    if n != "1" {
        a.extend(args(&["--events-per-io-thread", "0"]));
    }
    a.extend(args(extra));
    TlsNode::start(&a)
}

fn info_field(c: &mut RawClient, field: &str) -> u64 {
    let text = c.run("INFO stats");
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} not in INFO stats: {text}"))
}

/// Reads until the node closes the connection (an alert may come first); fails the test if
/// it stays open for 10 s.
fn read_to_close(c: &mut RawClient) -> Vec<u8> {
    use std::io::Read;
    c.stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match c.stream.read(&mut buf) {
            Ok(0) => return all,
            Ok(n) => all.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return all,
            Err(e) => panic!("connection not closed by the node: {e}; read so far {all:?}"),
        }
    }
}

fn redis_cli(certs: &Certs, port: u16, cmd: &[&str]) -> shoal_e2e::Output {
    let p = port.to_string();
    let (ca, crt, key) = (certs.crt("ca"), certs.crt("client"), certs.key("client"));
    let mut c = Command::new("redis-cli");
    c.args(["--tls", "--cacert", &ca, "--cert", &crt, "--key", &key, "-h", "127.0.0.1", "-p", &p]).args(cmd);
    run_with_timeout(&mut c, b"", Duration::from_secs(30))
}

#[test]
fn real_clients_speak_tls_on_both_io_paths() {
    let certs = Certs::new();
    for n in [1, 2] {
        let node = mtls_node(&certs, n, &[]);
        // redis-cli
        let out = redis_cli(&certs, node.tls_port, &["SET", "k", "v"]);
        assert_eq!(out.stdout.trim(), "OK", "redis-cli SET (io-threads {n}): {out:?}");
        let out = redis_cli(&certs, node.tls_port, &["GET", "k"]);
        assert_eq!(out.stdout.trim(), "v", "redis-cli GET: {out:?}");
        // the plain port keeps working beside it
        assert_eq!(node.node.connect().run("GET k"), "$1\r\nv\r\n");

        // rustls, a pipeline of 2,000 commands with values large enough to span records
        let cfg = certs.client_config(Some("client"));
        let mut c = node.tls(&cfg);
        let big = "x".repeat(40_000);
        let mut batch = Vec::new();
        for i in 0..2000 {
            let v = if i % 100 == 0 { big.clone() } else { format!("v{i}") };
            batch.extend(shoal_e2e::resp::encode_command(&["SET", &format!("p{i}"), &v]));
        }
        c.send(&batch).expect("pipeline");
        for i in 0..2000 {
            assert_eq!(c.read_raw().expect("reply"), b"+OK\r\n", "SET p{i}");
        }
        assert_eq!(c.cmd(&["GET", "p100"]).expect("GET"), format!("$40000\r\n{big}\r\n").into_bytes());
        assert_eq!(c.run("DBSIZE"), ":2001\r\n");

        // redis-benchmark --tls
        let p = node.tls_port.to_string();
        let (ca, crt, key) = (certs.crt("ca"), certs.crt("client"), certs.key("client"));
        let mut b = Command::new("redis-benchmark");
        b.args(["--tls", "--cacert", &ca, "--cert", &crt, "--key", &key, "-h", "127.0.0.1", "-p", &p]);
        b.args(["-t", "set,get", "-n", "5000", "-c", "10", "-P", "16", "-q", "--csv"]);
        let out = run_with_timeout(&mut b, b"", Duration::from_secs(60));
        assert!(out.status.success() && out.stdout.contains("\"GET\""), "redis-benchmark: {out:?}");

        // redis-py with ssl
        let py = format!(
            r#"
import redis
r = redis.Redis(host="127.0.0.1", port={p}, ssl=True, ssl_ca_certs="{ca}", ssl_certfile="{crt}", ssl_keyfile="{key}")
assert r.ping()
r.set("py", "ok")
pipe = r.pipeline()
for i in range(500):
    pipe.incr("ctr")
res = pipe.execute()
assert res[-1] == 500, res[-1]
print(r.get("py").decode())
"#
        );
        let mut cmd = Command::new("/work/main/target/test-venv/bin/python");
        cmd.args(["-c", &py]);
        let out = run_with_timeout(&mut cmd, b"", Duration::from_secs(60));
        assert!(out.status.success() && out.stdout.trim() == "ok", "redis-py: {out:?}");

        // openssl s_client completes a verified handshake with a client certificate
        let target = format!("127.0.0.1:{}", node.tls_port);
        let mut s = Command::new("openssl");
        s.args([
            "s_client",
            "-connect",
            &target,
            "-CAfile",
            &ca,
            "-cert",
            &crt,
            "-key",
            &key,
            "-verify_return_error",
            "-brief",
            "-ign_eof",
        ]);
        // QUIT makes the node close the connection, which ends s_client after the replies.
        let out = run_with_timeout(&mut s, b"PING\r\nQUIT\r\n", Duration::from_secs(30));
        let all = format!("{}\n{}", out.stdout, out.stderr);
        assert!(all.contains("Verification: OK") && all.contains("+PONG"), "openssl s_client: {all}");

        let mut admin = node.node.connect();
        assert!(info_field(&mut admin, "tls_handshakes") >= 4, "handshakes counted");
        assert_eq!(info_field(&mut admin, "tls_handshake_failures"), 0);
    }
}

#[test]
fn mutual_tls_refuses_missing_untrusted_and_expired_client_certificates() {
    let certs = Certs::new();
    let node = mtls_node(&certs, 2, &[]);
    let good = certs.client_config(Some("client"));
    for (what, cfg) in [
        ("no client certificate", certs.client_config(None)),
        ("untrusted certificate", certs.client_config(Some("untrusted"))),
        ("expired certificate", certs.client_config(Some("expired"))),
    ] {
        // TLS 1.3 clients finish their side before the server checks the certificate: the
        // refusal shows on the first read, as an alert or a closed connection.
        match tls_connect(node.tls_port, cfg) {
            Err(_) => {}
            Ok(mut c) => {
                let r = c.cmd(&["PING"]);
                assert!(r.is_err(), "{what}: the node answered {r:?}");
            }
        }
        // Everyone else is still served.
        assert_eq!(node.tls(&good).run("PING"), "+PONG\r\n", "after {what}");
    }
    let mut admin = node.node.connect();
    wait_for(WAIT, "3 handshake failures counted", || {
        (info_field(&mut admin, "tls_handshake_failures") >= 3).then_some(())
    });
    // tls-auth-clients optional: no certificate is fine, a bad one still is not.
    assert_eq!(admin.run("CONFIG SET tls-auth-clients optional"), "+OK\r\n");
    assert_eq!(
        tls_connect(node.tls_port, certs.client_config(None)).expect("anonymous").run("PING"),
        "+PONG\r\n"
    );
    let bad =
        tls_connect(node.tls_port, certs.client_config(Some("untrusted"))).and_then(|mut c| c.cmd(&["PING"]));
    assert!(bad.is_err(), "untrusted certificate accepted with optional: {bad:?}");
}

#[test]
fn plaintext_garbage_and_stalled_handshakes_do_not_hurt_others() {
    let certs = Certs::new();
    let node = mtls_node(&certs, 2, &["--tls-handshake-timeout", "500"]);
    let good = certs.client_config(Some("client"));
    let addr = shoal_e2e::Addr::Tcp(std::net::SocketAddr::from(([127, 0, 0, 1], node.tls_port)));

    // Plaintext RESP to the TLS port: the connection is closed, nothing is executed.
    let mut plain = RawClient::connect(&addr).expect("tcp");
    plain.send(b"*3\r\n$3\r\nSET\r\n$5\r\nplain\r\n$1\r\n1\r\n").expect("send");
    let got = read_to_close(&mut plain);
    assert!(!got.windows(3).any(|w| w == b"+OK"), "plaintext got a reply: {got:?}");

    // Garbage, including a record header announcing a huge record.
    for junk in [&b"\x16\x03\x01\xff\xff"[..], b"\x00\x00\x00\x00\x00\x00garbage", &[0xffu8; 4096][..]] {
        let mut g = RawClient::connect(&addr).expect("tcp");
        let _ = g.send(junk);
        let _ = g.stream.shutdown(std::net::Shutdown::Write);
        read_to_close(&mut g);
    }

    // Stalled handshakes: sockets that connect and say nothing, and one that stops after
    // half a ClientHello. Others are served meanwhile; the stalled ones are closed.
    let mut stalled: Vec<RawClient> = (0..20).map(|_| RawClient::connect(&addr).expect("tcp")).collect();
    let mut half = RawClient::connect(&addr).expect("tcp");
    half.send(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03").expect("half hello");
    stalled.push(half);
    let started = Instant::now();
    let mut c = node.tls(&good);
    for i in 0..200 {
        assert_eq!(c.cmd(&["SET", &format!("s{i}"), "1"]).expect("SET"), b"+OK\r\n");
    }
    assert!(started.elapsed() < Duration::from_secs(5), "others served while handshakes stall");
    for mut s in stalled {
        // Closed by tls-handshake-timeout (read_to_close fails the test after 10 s).
        read_to_close(&mut s);
    }
    let mut admin = node.node.connect();
    assert_eq!(admin.run("EXISTS plain"), ":0\r\n");
    assert!(info_field(&mut admin, "tls_handshake_timeouts") >= 21);
    assert!(info_field(&mut admin, "tls_handshake_failures") >= 2);
    assert_eq!(c.run("PING"), "+PONG\r\n");
}

#[test]
fn certificate_rotation_under_load_drops_nothing() {
    let certs = Certs::new();
    certs.leaf("server2", "ca", "shoal-server-rotated", 2);
    let node = mtls_node(&certs, 2, &[]);
    let cfg = certs.client_config(Some("client"));
    let stop = Arc::new(AtomicBool::new(false));
    // Writers: one long-lived pipelined connection each, plus reconnecting ones (new
    // handshakes during the swap).
    let mut writers = Vec::new();
    for w in 0..3 {
        let (cfg, stop, port) = (cfg.clone(), stop.clone(), node.tls_port);
        writers.push(thread::spawn(move || {
            let mut acked = 0u64;
            let mut conn = tls_connect(port, cfg.clone()).expect("connect");
            let mut round = 0u64;
            while !stop.load(Ordering::Relaxed) || round < 5 {
                let mut batch = Vec::new();
                for j in 0..32 {
                    let k = format!("r{w}:{}", acked + j);
                    batch.extend(shoal_e2e::resp::encode_command(&["SET", &k, &k]));
                }
                conn.send(&batch).expect("send");
                for _ in 0..32 {
                    assert_eq!(conn.read_raw().expect("ack"), b"+OK\r\n");
                    acked += 1;
                }
                round += 1;
                if w == 2 && round.is_multiple_of(10) {
                    conn = tls_connect(port, cfg.clone()).expect("reconnect during rotation");
                }
            }
            (w, acked)
        }));
    }
    let mut admin = node.node.connect();
    let old = cert_der(&certs.crt("server"));
    let new = cert_der(&certs.crt("server2"));
    assert_eq!(peer_cert(&node.tls(&cfg)), old);
    for i in 0..6 {
        let (crt, key) = if i % 2 == 0 { ("server2", "server2") } else { ("server", "server") };
        let cmd = ["CONFIG", "SET", "tls-cert-file", &certs.crt(crt), "tls-key-file", &certs.key(key)];
        assert_eq!(admin.cmd(&cmd).expect("CONFIG SET"), b"+OK\r\n");
        let want = if i % 2 == 0 { &new } else { &old };
        assert_eq!(&peer_cert(&node.tls(&cfg)), want, "new handshakes use the new certificate");
    }
    // A mismatched pair is refused as a whole and changes nothing.
    let bad = admin
        .cmd(&["CONFIG", "SET", "tls-cert-file", &certs.crt("server2"), "tls-key-file", &certs.key("client")])
        .expect("CONFIG SET");
    assert!(bad.starts_with(b"-ERR"), "{}", String::from_utf8_lossy(&bad));
    assert_eq!(peer_cert(&node.tls(&cfg)), old);
    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    for h in writers {
        let (w, acked) = h.join().expect("writer");
        for i in (0..acked).step_by(97).chain([acked - 1]) {
            let k = format!("r{w}:{i}");
            assert_eq!(
                admin.cmd(&["GET", &k]).expect("GET"),
                format!("${}\r\n{k}\r\n", k.len()).into_bytes()
            );
        }
        let pattern = format!("r{w}:*");
        let n = admin.cmd(&["EVAL", "return #redis.call('KEYS', ARGV[1])", "0", &pattern]).expect("EVAL");
        assert_eq!(n, format!(":{acked}\r\n").into_bytes(), "writer {w}: every acknowledged key present");
        total += acked;
    }
    assert!(total > 0);
}

#[test]
fn replication_over_tls_keeps_every_acknowledged_write() {
    let certs = Certs::new();
    let mut common = certs.server_args("yes");
    common.extend(args(&["--tls-replication", "yes"]));
    let primary = TlsNode::start(&common);
    let cfg = certs.client_config(Some("client"));
    let mut w = primary.tls(&cfg);
    for i in 0..3000 {
        w.send(&shoal_e2e::resp::encode_command(&["SET", &format!("a{i}"), &format!("{i}")])).expect("send");
    }
    for _ in 0..3000 {
        assert_eq!(w.read_raw().expect("ack"), b"+OK\r\n");
    }
    let mut rargs = common.clone();
    rargs.extend(args(&["--replicaof", "127.0.0.1", &primary.tls_port.to_string()]));
    let replica = TlsNode::start(&rargs);
    // Writes while the replica syncs and after (the stream over the TLS link).
    for i in 3000..6000 {
        assert_eq!(w.cmd(&["SET", &format!("a{i}"), &format!("{i}")]).expect("SET"), b"+OK\r\n");
    }
    let mut r = replica.tls(&cfg);
    wait_for(WAIT, "replica has every key", || (r.run("DBSIZE") == ":6000\r\n").then_some(()));
    for i in (0..6000).step_by(250).chain([5999]) {
        assert_eq!(
            r.cmd(&["GET", &format!("a{i}")]).expect("GET"),
            format!("${}\r\n{i}\r\n", i.to_string().len()).into_bytes()
        );
    }
    let info = r.run("INFO replication");
    assert!(info.contains("master_link_status:up"), "{info}");
    // The primary sees its replica on the TLS port it announced.
    let pinfo = primary.node.connect().run("INFO replication");
    assert!(pinfo.contains(&format!("port={}", replica.tls_port)), "{pinfo}");
}

/// The topology for three TLS nodes, each with its plain and TLS port.
fn tls_topology(ids: &[String], ports: &[(u16, u16)], split: &[(u16, u16)], epoch: u64) -> String {
    let shards: Vec<String> = (0..ids.len())
        .map(|i| {
            format!(
                r#"{{"id": "{:040x}", "slots": [[{}, {}]], "nodes": [{{"id": "{}", "ip": "127.0.0.1", "port": {}, "tls-port": {}, "role": "primary"}}]}}"#,
                i + 1,
                split[i].0,
                split[i].1,
                ids[i],
                ports[i].0,
                ports[i].1
            )
        })
        .collect();
    format!(r#"{{"epoch": {epoch}, "shards": [{}]}}"#, shards.join(", "))
}

#[test]
fn cluster_over_tls_reports_tls_ports_and_migrates_slots() {
    let certs = Certs::new();
    let mut extra = certs.server_args("yes");
    extra.extend(args(&["--tls-cluster", "yes", "--cluster-enabled", "yes"]));
    let dirs: Vec<TempDir> = (0..3).map(|_| TempDir::new("tls-cluster")).collect();
    let nodes: Vec<TlsNode> = dirs
        .iter()
        .map(|d| {
            let mut a = extra.clone();
            a.extend(args(&["--dir", &d.0.to_string_lossy()]));
            TlsNode::start(&a)
        })
        .collect();
    let ids: Vec<String> =
        nodes.iter().map(|n| n.node.connect().run("CLUSTER MYID")[5..45].to_string()).collect();
    let ports: Vec<(u16, u16)> = nodes.iter().map(|n| (n.node.port, n.tls_port)).collect();
    let split = [(0, 5460), (5461, 10922), (10923, 16383)];
    let json = tls_topology(&ids, &ports, &split, 1);
    for n in &nodes {
        assert_eq!(n.node.connect().cmd(&["CLUSTER", "SETTOPOLOGY", &json]).expect("push"), b"+OK\r\n");
    }
    let cfg = certs.client_config(Some("client"));
    let mut c = nodes[0].tls(&cfg);
    // CLUSTER SLOTS names the TLS ports; SHARDS shows both.
    let slots = c.run("CLUSTER SLOTS");
    for (i, (plain, tls)) in ports.iter().enumerate() {
        assert!(slots.contains(&format!(":{tls}\r\n")), "SLOTS lacks node {i}'s TLS port {tls}: {slots}");
        assert!(!slots.contains(&format!(":{plain}\r\n")), "SLOTS shows a plain port: {slots}");
    }
    let shards = c.run("CLUSTER SHARDS");
    assert!(shards.contains("tls-port") && shards.contains(&format!(":{}\r\n", ports[1].1)), "{shards}");
    let nodes_text = c.run("CLUSTER NODES");
    assert!(nodes_text.contains(&format!("127.0.0.1:{}@", ports[2].1)), "{nodes_text}");
    // A redirect names the TLS port too.
    let key = (0..).map(|i| format!("k{i}")).find(|k| key_slot(k.as_bytes()) > 11000).expect("key");
    assert_eq!(
        c.run(&format!("GET {key}")),
        format!("-MOVED {} 127.0.0.1:{}\r\n", key_slot(key.as_bytes()), ports[2].1)
    );

    // Slot migration 0..=99 from node 0 to node 1, over the TLS cluster link.
    let keys: Vec<String> =
        (0..).map(|i| format!("m{i}")).filter(|k| key_slot(k.as_bytes()) < 100).take(300).collect();
    for k in &keys {
        assert_eq!(c.cmd(&["SET", k, k]).expect("SET"), b"+OK\r\n");
    }
    let r = c.run(&format!("CLUSTER MIGRATESLOTS SLOTSRANGE 0 99 NODE {}", ids[1]));
    assert_eq!(r, "+OK\r\n");
    let mut t = nodes[1].tls(&cfg);
    wait_for(WAIT, "slots 0-99 served by node 1", || {
        let reply = t.cmd(&["GET", &keys[0]]).ok()?;
        (reply == format!("${}\r\n{}\r\n", keys[0].len(), keys[0]).into_bytes()).then_some(())
    });
    for k in &keys {
        assert_eq!(
            t.cmd(&["GET", k]).expect("GET"),
            format!("${}\r\n{k}\r\n", k.len()).into_bytes(),
            "{k} moved"
        );
    }
    let moved = c.run(&format!("GET {}", keys[0]));
    assert!(moved.starts_with("-MOVED") && moved.contains(&format!(":{}", ports[1].1)), "{moved}");
}

/// `tls-auto-reload-interval`: certificate files replaced on disk (renamed over, as the
/// kubelet updates a mounted Secret) are picked up without a CONFIG SET; a file that does not
/// load leaves the current certificate in place.
#[test]
fn certificates_replaced_on_disk_are_reloaded() {
    let certs = Certs::new();
    certs.leaf("server2", "ca", "shoal-server-renewed", 2);
    let live = TempDir::new("tls-live");
    let (crt, key) = (live.0.join("tls.crt"), live.0.join("tls.key"));
    let put = |from_crt: &str, from_key: &str| {
        // Written next to the target, then renamed over it: readers never see half a file.
        for (from, to) in [(from_crt, &crt), (from_key, &key)] {
            let tmp = to.with_extension("tmp");
            std::fs::copy(from, &tmp).expect("copy");
            std::fs::rename(&tmp, to).expect("rename");
        }
    };
    put(&certs.crt("server"), &certs.key("server"));
    let (c, k) = (crt.display().to_string(), key.display().to_string());
    let node = TlsNode::start(&args(&[
        "--tls-cert-file",
        &c,
        "--tls-key-file",
        &k,
        "--tls-ca-cert-file",
        &certs.crt("ca"),
        "--tls-auth-clients",
        "no",
        "--tls-auto-reload-interval",
        "1",
    ]));
    let cfg = certs.client_config(None);
    assert_eq!(peer_cert(&node.tls(&cfg)), cert_der(&certs.crt("server")));
    let mut held = node.tls(&cfg);
    assert_eq!(held.run("SET before renewal"), "+OK\r\n");
    put(&certs.crt("server2"), &certs.key("server2"));
    let renewed = cert_der(&certs.crt("server2"));
    wait_for(Duration::from_secs(20), "the renewed certificate on new connections", || {
        (peer_cert(&node.tls(&cfg)) == renewed).then_some(())
    });
    let mut admin = node.node.connect();
    assert!(info_field(&mut admin, "tls_reloads") >= 1);
    // The connection made before the renewal keeps working.
    assert_eq!(held.run("GET before"), "$7\r\nrenewal\r\n");
    // A key that does not match (the old one with the new certificate) is refused, and the
    // node keeps serving the renewed pair.
    std::fs::copy(certs.key("server"), &key).expect("copy");
    node.node
        .log
        .wait_for(Duration::from_secs(20), |l| l.contains("do not load").then_some(()))
        .expect("the failed reload is logged");
    assert_eq!(peer_cert(&node.tls(&cfg)), renewed);
}
