//! Process lifecycle: start-up on an ephemeral port, SIGTERM/SIGINT shutting down cleanly
//! (exit status 0, within a bounded time) after flushing replies already produced.

use std::time::Duration;

use shoal_e2e::resp::encode_command;
use shoal_e2e::{io_threads_test, ShoalNode};

const EXIT_TIMEOUT: Duration = Duration::from_secs(10);

io_threads_test!(fn sigterm_exits_zero(n) {
    let mut node = ShoalNode::with_io_threads(n, &[]);
    let mut idle = node.connect();
    assert!(idle.run("NOSUCHCMD").starts_with("-ERR unknown command"));
    node.signal("TERM");
    let status = node.wait_exit(EXIT_TIMEOUT).expect("exits after SIGTERM");
    assert!(status.success(), "exit status {status}");
    assert!(node.log.contains("Received SIGTERM"), "{:?}", node.log.lines());
    idle.expect_closed().expect("clients are disconnected");
});

io_threads_test!(fn sigint_exits_zero(n) {
    let mut node = ShoalNode::with_io_threads(n, &[]);
    node.signal("INT");
    let status = node.wait_exit(EXIT_TIMEOUT).expect("exits after SIGINT");
    assert!(status.success(), "exit status {status}");
});

io_threads_test!(fn sigterm_flushes_pending_replies(n) {
    let mut node = ShoalNode::with_io_threads(n, &[]);
    let mut c = node.connect();
    // A reply much larger than the socket buffers, so most of it is still queued in the node
    // when the signal arrives.
    let size = 8 * 1024 * 1024;
    c.send_cmd(&[&b"SET"[..], b"big", &vec![b'z'; size]]).expect("send");
    assert_eq!(c.read_text(), "+OK\r\n");
    let mut req = encode_command(&["GET", "big"]);
    req.extend(encode_command(&["GET", "big"]));
    c.send(&req).expect("send");
    // The first bytes prove the GET ran and its reply is queued.
    let head = c.read_exact_raw(10).expect("reply starts");
    assert_eq!(head, b"$8388608\r\n");
    node.signal("TERM");
    let body = c.read_exact_raw(size + 2).expect("the whole reply is flushed");
    assert!(body.iter().take(size).all(|&b| b == b'z') && body.ends_with(b"\r\n"));
    // The second GET may or may not have run before the shutdown; if it did, its reply is
    // complete too. Either way the connection then closes.
    match c.read_raw() {
        Ok(second) => {
            assert_eq!(second.len(), size + 12);
            c.expect_closed().expect("closed after the last reply");
        }
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof, "{e}"),
    }
    let status = node.wait_exit(EXIT_TIMEOUT).expect("exits after SIGTERM");
    assert!(status.success(), "exit status {status}");
});

#[test]
fn two_nodes_get_different_ports() {
    let a = ShoalNode::start(&[]);
    let b = ShoalNode::start(&[]);
    assert_ne!(a.port, b.port);
    // The port line comes first; the readiness line follows it on the log stream.
    let ready = a.log.wait_for(shoal_e2e::process::START_TIMEOUT, |l| {
        l.contains("Ready to accept connections").then_some(())
    });
    assert!(ready.is_some(), "no readiness line:\n{}", a.log.lines().join("\n"));
}

#[test]
fn bad_directive_fails_to_start() {
    let out = shoal_e2e::run_with_timeout(
        std::process::Command::new(shoal_e2e::process::shoal_node_bin()).args([
            "--port",
            "0",
            "--no-such-directive",
            "1",
        ]),
        b"",
        EXIT_TIMEOUT,
    );
    assert!(!out.status.success());
    assert!(!out.stderr.is_empty() || !out.stdout.is_empty());
}
