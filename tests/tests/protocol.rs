//! The wire protocol against a real node: malformed frames, requests split at every byte,
//! deep pipelines, inline commands, size limits and clients that vanish. Tests marked
//! `reference` also run against redis-server, proving the expected bytes are Redis's.

use std::io::Write;
use std::net::Shutdown;

use shoal_e2e::resp::encode_command;
use shoal_e2e::{io_threads_test, RawClient, Server};

/// Checks the server still serves a new connection: an unknown command's error is the
/// cheapest reply every build of the node gives.
fn assert_serving(srv: &mut Server) {
    srv.assert_alive();
    let mut c = srv.connect();
    assert_eq!(c.run("NOSUCHCMD x"), "-ERR unknown command 'NOSUCHCMD', with args beginning with: 'x' \r\n");
}

fn protocol_error(srv: &mut Server, request: &[u8], msg: &str) {
    let mut c = srv.connect();
    c.send(request).expect("send");
    let reply = c.read_raw().unwrap_or_else(|e| panic!("{msg}: {e}"));
    assert_eq!(String::from_utf8_lossy(&reply), format!("-ERR Protocol error: {msg}\r\n"));
    c.expect_closed().unwrap_or_else(|e| panic!("{msg}: not closed: {e}"));
    assert_serving(srv);
}

io_threads_test!(reference fn malformed_frames(n) {
    let mut srv = Server::start(n, &[]);
    protocol_error(&mut srv, b"*x\r\n", "invalid multibulk length");
    protocol_error(&mut srv, b"*3000000000\r\n", "invalid multibulk length");
    protocol_error(&mut srv, b"*1\r\n+a\r\n", "expected '$', got '+'");
    protocol_error(&mut srv, b"*2\r\n$3\r\nGET\r\n:1\r\n", "expected '$', got ':'");
    protocol_error(&mut srv, b"*1\r\n$-5\r\n", "invalid bulk length");
    protocol_error(&mut srv, b"*1\r\n$x\r\n", "invalid bulk length");
    protocol_error(&mut srv, b"SET \"a\"b\r\n", "unbalanced quotes in request");
    protocol_error(&mut srv, b"SET 'a\r\n", "unbalanced quotes in request");
    // Exactly one byte over the 64 KB limits, so the server has read everything it was sent
    // when it closes (unread data would turn the close into a reset).
    let over = 64 * 1024 + 1;
    protocol_error(&mut srv, &vec![b'a'; over], "too big inline request");
    let mut count = vec![b'1'; over];
    count[0] = b'*';
    protocol_error(&mut srv, &count, "too big mbulk count string");
    let mut bulk = b"*1\r\n".to_vec();
    bulk.push(b'$');
    bulk.extend(std::iter::repeat_n(b'1', over - 1));
    protocol_error(&mut srv, &bulk, "too big bulk count string");
});

io_threads_test!(reference fn requests_before_a_malformed_frame_are_answered(n) {
    let mut srv = Server::start(n, &[]);
    let mut c = srv.connect();
    c.send(b"*2\r\n$4\r\nNOPE\r\n$1\r\na\r\nNOPE2\r\n*1\r\n$x\r\n").expect("send");
    assert_eq!(
        c.read_text(),
        "-ERR unknown command 'NOPE', with args beginning with: 'a' \r\n"
    );
    assert_eq!(
        c.read_text(),
        "-ERR unknown command 'NOPE2', with args beginning with: \r\n"
    );
    assert_eq!(
        c.read_text(),
        "-ERR Protocol error: invalid bulk length\r\n"
    );
    c.expect_closed().expect("closed");
    assert_serving(&mut srv);
});

io_threads_test!(reference fn unauthenticated_limits(n) {
    let mut srv = Server::start(n, &["--requirepass", "secret"]);
    protocol_error(&mut srv, b"*11\r\n", "unauthenticated multibulk length");
    protocol_error(&mut srv, b"*1\r\n$16385\r\n", "unauthenticated bulk length");
    // After AUTH the limits are lifted, even for requests already in the same read.
    let mut c = srv.connect();
    let mut req = encode_command(&["AUTH", "secret"]);
    req.extend(encode_command(&["ECHO", &"x".repeat(20_000)]));
    c.send(&req).expect("send");
    assert_eq!(c.read_text(), "+OK\r\n");
    let echo = c.read_raw().expect("echo");
    assert!(echo.starts_with(b"$20000\r\nxxx"), "{}", String::from_utf8_lossy(&echo[..20]));
});

/// A small pipeline covering multibulk, inline, empty and binary requests, with its replies.
fn pipeline() -> (Vec<u8>, Vec<&'static [u8]>) {
    let mut req = Vec::new();
    req.extend(encode_command(&["SET", "k", "v"]));
    req.extend(b"GET k\r\n");
    req.extend(b"*0\r\n");
    req.extend(b"\r\n");
    req.extend(encode_command(&[&b"SET"[..], b"bin\x00\r\n", b"\x00\xff"]));
    req.extend(encode_command(&[&b"GET"[..], b"bin\x00\r\n"]));
    req.extend(b"INCR n\n");
    req.extend(b"  ECHO  \"a b\\x41\"  \r\n");
    req.extend(b"\r\n");
    req.extend(b"INCR n\r\n");
    let replies: Vec<&[u8]> = vec![
        b"+OK\r\n",
        b"$1\r\nv\r\n",
        b"+OK\r\n",
        b"$2\r\n\x00\xff\r\n",
        b":1\r\n",
        b"$4\r\na bA\r\n",
        b":2\r\n",
    ];
    (req, replies)
}

io_threads_test!(reference fn split_at_every_byte(n) {
    let srv = Server::start(n, &[]);
    let (req, replies) = pipeline();
    // Whole, then one byte per write (TCP_NODELAY: each byte leaves on its own).
    for chunk in [req.len(), 1, 2, 3, 7] {
        let mut c = srv.connect();
        c.send(b"*1\r\n$8\r\nFLUSHALL\r\n").expect("send");
        assert_eq!(c.read_text(), "+OK\r\n");
        for piece in req.chunks(chunk) {
            c.send(piece).expect("send");
        }
        for want in &replies {
            let got = c.read_raw().unwrap_or_else(|e| panic!("chunk {chunk}: {e}"));
            assert_eq!(
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(want),
                "chunk size {chunk}"
            );
        }
    }
});

io_threads_test!(reference fn deep_pipeline_in_one_write(n) {
    let srv = Server::start(n, &[]);
    const N: usize = 10_000;
    let mut req = Vec::with_capacity(N * 30);
    for i in 0..N {
        if i % 2 == 0 {
            req.extend(encode_command(&["INCR", "counter"]));
        } else {
            req.extend(format!("SET key:{i} {i}\r\n").as_bytes());
        }
    }
    let mut c = srv.connect();
    // Write from another thread: the server answers while we are still sending.
    let mut writer = c.stream.try_clone().expect("clone");
    let sender = std::thread::spawn(move || writer.write_all(&req));
    for i in 0..N {
        let got = c.read_raw().unwrap_or_else(|e| panic!("reply {i}: {e}"));
        let want = if i % 2 == 0 {
            format!(":{}\r\n", i / 2 + 1).into_bytes()
        } else {
            b"+OK\r\n".to_vec()
        };
        assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(&want), "reply {i}");
    }
    sender.join().expect("writer thread").expect("write");
    assert_eq!(c.run("GET key:9999"), "$4\r\n9999\r\n");
});

io_threads_test!(reference fn bulk_up_to_proto_max_bulk_len(n) {
    let mut srv = Server::start(n, &["--proto-max-bulk-len", "1mb"]);
    let max = 1024 * 1024;
    let value = vec![b'x'; max];
    let mut c = srv.connect();
    c.send_cmd(&[&b"SET"[..], b"big", &value]).expect("set");
    assert_eq!(c.read_text(), "+OK\r\n");
    let got = c.cmd(&["GET", "big"]).expect("get");
    assert_eq!(got.len(), max + 12);
    assert!(got.starts_with(b"$1048576\r\nxxx") && got.ends_with(b"x\r\n"));
    // One byte more is refused as soon as the header is read.
    protocol_error(
        &mut srv,
        format!("*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n${}\r\n", max + 1).as_bytes(),
        "invalid bulk length",
    );
    assert_eq!(c.run("STRLEN big"), ":1048576\r\n");
});

io_threads_test!(fn query_buffer_limit_closes_only_that_client(n) {
    let mut srv = Server::start(n, &["--client-query-buffer-limit", "1mb"]);
    let mut other = srv.connect();
    assert_eq!(other.run("SET a 1"), "+OK\r\n");
    let mut c = srv.connect();
    // Two complete 600 KB arguments of an unfinished command: 1.2 MB buffered, over the limit.
    let arg = vec![b'y'; 600 * 1024];
    let mut req = b"*5\r\n$3\r\nSET\r\n$1\r\nk\r\n".to_vec();
    for _ in 0..2 {
        req.extend(format!("${}\r\n", arg.len()).as_bytes());
        req.extend(&arg);
        req.extend(b"\r\n");
    }
    let mut writer = c.stream.try_clone().expect("clone");
    // The server may close before reading everything: a failed write is expected.
    let sender = std::thread::spawn(move || {
        let _ = writer.write_all(&req);
    });
    c.expect_closed().expect("client over the limit is closed");
    let _ = sender.join();
    assert_eq!(other.run("GET a"), "$1\r\n1\r\n");
    assert_serving(&mut srv);
    if let Server::Shoal(node) = &srv {
        assert!(
            node.log
                .wait_for(shoal_e2e::process::START_TIMEOUT, |l| l
                    .contains("max query buffer length")
                    .then_some(()))
                .is_some(),
            "no log line about the query buffer limit"
        );
    }
});

io_threads_test!(reference fn client_vanishing_mid_command(n) {
    let mut srv = Server::start(n, &[]);
    for partial in [
        &b"*3\r\n$3\r\nSET\r\n$1\r\nk"[..],
        b"*3\r\n$3\r\nSET\r\n$1",
        b"*3\r",
        b"SET k",
    ] {
        let mut c = srv.connect();
        c.send(partial).expect("send");
        c.stream.shutdown(Shutdown::Both).expect("shutdown");
        drop(c);
    }
    // A client that sends a pipeline and leaves without reading its replies.
    let mut c = srv.connect();
    let mut req = Vec::new();
    for _ in 0..2000 {
        req.extend(encode_command(&["INCR", "left"]));
    }
    c.send(&req).expect("send");
    drop(c);
    assert_serving(&mut srv);
    let mut c = srv.connect();
    assert_eq!(c.run("EXISTS k"), ":0\r\n");
});

io_threads_test!(reference fn resp3_replies_parse(n) {
    let srv = Server::start(n, &[]);
    let mut c: RawClient = srv.connect();
    let hello = c.cmd(&["HELLO", "3"]).expect("hello");
    assert!(hello.starts_with(b"%"), "{}", String::from_utf8_lossy(&hello));
    assert_eq!(c.run("GET missing"), "_\r\n");
    assert_eq!(c.run("SET k 1.5"), "+OK\r\n");
    assert_eq!(c.run("INCRBYFLOAT k 1"), "$3\r\n2.5\r\n");
});
