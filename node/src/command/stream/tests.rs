//! In-process tests of the stream family: the cases where Valkey 8 (which Shoal follows) and
//! the differential reference (Redis 7.0) disagree, blocking reads through the dispatcher, and
//! what the replication stream gets.

use crate::exec::testing::Harness;

#[test]
fn valkey_8_error_order_and_wording() {
    let mut h = Harness::default();
    h.run("XADD s 5-18446744073709551615 f v");
    // 7.0.15 says "Elements are too large to be stored" here (its errno was not set).
    assert_eq!(
        h.run("XADD s 5-* f v"),
        "-ERR The ID specified in XADD is equal or smaller than the target stream top item\r\n"
    );
    h.run("XADD x 10-0 f v");
    h.run("XADD x 20-0 f v");
    h.run("XDEL x 10-0");
    // Valkey checks the max deleted ID first; 7.0.15 the top item.
    assert_eq!(
        h.run("XSETID x 5-0"),
        "-ERR The ID specified in XSETID is smaller than current max_deleted_entry_id\r\n"
    );
    // Valkey 8's HELP footer (7.0: "Prints this help.").
    assert!(h.run("XINFO HELP").ends_with("+HELP\r\n+    Print this help.\r\n"));
    assert!(h.run("XGROUP HELP").starts_with("*17\r\n+XGROUP <subcommand>"));
    assert_eq!(
        h.run("XREAD STREAMS a b 0"),
        "-ERR Unbalanced 'xread' list of streams: for each stream key an ID or '$' must be specified.\r\n"
    );
    assert_eq!(
        h.run("XREADGROUP GROUP g c STREAMS a b 0"),
        "-ERR Unbalanced 'xreadgroup' list of streams: for each stream key an ID or '>' must be specified.\r\n"
    );
}

#[test]
fn ids_never_overflow() {
    let mut h = Harness::default();
    assert_eq!(
        h.run("XADD s 18446744073709551615-18446744073709551615 f v"),
        "$41\r\n18446744073709551615-18446744073709551615\r\n"
    );
    assert_eq!(
        h.run("XADD s * f v"),
        "-ERR The stream has exhausted the last possible ID, unable to add more items\r\n"
    );
    assert_eq!(
        h.run("XRANGE s (18446744073709551615-18446744073709551615 +"),
        "-ERR invalid start ID for the interval\r\n"
    );
    assert_eq!(h.run("XRANGE s - (0-0"), "-ERR invalid end ID for the interval\r\n");
    assert_eq!(h.run("XREAD COUNT 9223372036854775807 STREAMS s 0"), "*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*2\r\n$41\r\n18446744073709551615-18446744073709551615\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n");
    assert_eq!(h.run("XREAD BLOCK 9223372036854775807 STREAMS s $"), "-ERR timeout is out of range\r\n");
    assert_eq!(h.run("XINFO CONSUMERS s g"), "-NOGROUP No such consumer group 'g' for key name 's'\r\n");
}

#[test]
fn blocked_xread_is_woken_by_xadd_and_dollar_means_then() {
    let mut h = Harness::default();
    let a = h.add_client();
    h.run("XADD s 1-0 f v");
    assert_eq!(h.run_as(a, &[b"XREAD", b"BLOCK", b"0", b"STREAMS", b"s", b"$"]), b"");
    // Another write that is not to `s` wakes nobody.
    h.run("XADD other 1-0 f v");
    assert_eq!(h.take_pending(a), "");
    h.run("XADD s 2-0 g w");
    assert_eq!(
        h.take_pending(a),
        "*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n2-0\r\n*2\r\n$1\r\ng\r\n$1\r\nw\r\n"
    );
}

#[test]
fn blocked_readgroup_consumers_each_get_an_entry_once() {
    let mut h = Harness::default();
    let (a, b) = (h.add_client(), h.add_client());
    h.run("XGROUP CREATE s g $ MKSTREAM");
    assert_eq!(
        h.run_as(
            a,
            &[
                b"XREADGROUP",
                b"GROUP",
                b"g",
                b"alice",
                b"COUNT",
                b"1",
                b"BLOCK",
                b"0",
                b"STREAMS",
                b"s",
                b">"
            ]
        ),
        b""
    );
    assert_eq!(
        h.run_as(
            b,
            &[b"XREADGROUP", b"GROUP", b"g", b"bob", b"COUNT", b"1", b"BLOCK", b"0", b"STREAMS", b"s", b">"]
        ),
        b""
    );
    h.run("XADD s 1-0 f 1");
    assert_eq!(
        h.take_pending(a),
        "*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n1-0\r\n*2\r\n$1\r\nf\r\n$1\r\n1\r\n"
    );
    assert_eq!(h.take_pending(b), "", "bob still waits: alice took 1-0");
    h.run("XADD s 2-0 f 2");
    assert_eq!(
        h.take_pending(b),
        "*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n2-0\r\n*2\r\n$1\r\nf\r\n$1\r\n2\r\n"
    );
    assert_eq!(h.run("XPENDING s g - + 10 bob").matches("2-0").count(), 1);
    // Destroying the group answers a blocked reader with NOGROUP.
    assert_eq!(
        h.run_as(a, &[b"XREADGROUP", b"GROUP", b"g", b"alice", b"BLOCK", b"0", b"STREAMS", b"s", b">"]),
        b""
    );
    h.run("XGROUP DESTROY s g");
    assert!(h.take_pending(a).starts_with("-NOGROUP"));
}

#[test]
fn multi_turns_block_into_a_timeout() {
    let mut h = Harness::default();
    h.run("MULTI");
    h.run("XREAD BLOCK 0 STREAMS s $");
    assert_eq!(h.run("EXEC"), "*1\r\n*-1\r\n");
}

#[test]
fn readgroup_waiters_hear_that_the_stream_is_gone() {
    let mut h = Harness::default();
    let (a, b) = (h.add_client(), h.add_client());
    h.run("XGROUP CREATE s g $ MKSTREAM");
    h.run("XGROUP CREATE s2 g $ MKSTREAM");
    let readgroup = |key: &'static [u8]| -> Vec<&'static [u8]> {
        vec![b"XREADGROUP", b"GROUP", b"g", b"c", b"BLOCK", b"0", b"STREAMS", key, b">"]
    };
    assert_eq!(h.run_as(a, &readgroup(b"s")), b"");
    assert_eq!(h.run_as(b, &[b"XREAD", b"BLOCK", b"0", b"STREAMS", b"s", b"$"]), b"");
    h.run("DEL s");
    assert_eq!(h.take_pending(a), "-UNBLOCKED the stream key no longer exists\r\n");
    assert_eq!(h.take_pending(b), "", "XREAD keeps waiting");
    h.run("XADD s 1-0 f v");
    assert!(h.take_pending(b).contains("1-0"));
    assert_eq!(h.run_as(a, &readgroup(b"s2")), b"");
    h.run("FLUSHALL");
    assert_eq!(h.take_pending(a), "-UNBLOCKED the stream key no longer exists\r\n");
}
