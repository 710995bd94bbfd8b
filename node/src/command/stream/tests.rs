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

#[test]
fn keyspace_events_of_stream_commands() {
    let mut h = Harness::default();
    let sub = h.add_client();
    h.run("CONFIG SET notify-keyspace-events Et");
    h.run_as(sub, &[b"SUBSCRIBE", b"__keyevent@0__:xadd", b"__keyevent@0__:xtrim", b"__keyevent@0__:xdel"]);
    for ev in [
        "xgroup-create",
        "xgroup-setid",
        "xgroup-createconsumer",
        "xgroup-delconsumer",
        "xgroup-destroy",
        "xsetid",
    ] {
        h.run_as(sub, &[b"SUBSCRIBE", format!("__keyevent@0__:{ev}").as_bytes()]);
    }
    h.take_pending(sub);
    let script = [
        "XADD s 1-0 f v",
        "XADD s MAXLEN 1 2-0 f v",
        "XDEL s 2-0",
        "XDEL s 9-0",
        "XGROUP CREATE s g 0",
        "XGROUP SETID s g 0",
        "XGROUP CREATECONSUMER s g c",
        "XGROUP DELCONSUMER s g c",
        "XGROUP DESTROY s g",
        "XSETID s 5-0",
    ];
    for line in script {
        h.run(line);
    }
    let got = h.take_pending(sub);
    let events: Vec<&str> =
        got.split("__keyevent@0__:").skip(1).map(|t| t.split('\r').next().unwrap_or("")).collect();
    assert_eq!(
        events,
        [
            "xadd",
            "xadd",
            "xtrim",
            "xdel",
            "xgroup-create",
            "xgroup-setid",
            "xgroup-createconsumer",
            "xgroup-delconsumer",
            "xgroup-destroy",
            "xsetid"
        ],
        "{got}"
    );
}

#[test]
fn dump_restore_keeps_entries_deletions_and_groups() {
    let mut h = Harness::default();
    h.run("XADD s 5-0 f a");
    h.run("XADD s 8-0 f b");
    h.run("XADD s 9-0 g c h d");
    h.run("XDEL s 8-0");
    // The last ID cannot go below a deleted entry, so a node never gets an entry below one.
    assert!(h.run("XSETID s 7-0").contains("smaller than current max_deleted_entry_id"));
    h.run("XGROUP CREATE s g 0");
    h.run("XREADGROUP GROUP g alice COUNT 1 STREAMS s >");
    let dump = h.run_as(0, &[b"DUMP", b"s"]);
    let body_at = dump.iter().position(|&b| b == b'\n').expect("bulk header") + 1;
    let payload = &dump[body_at..dump.len() - 2];
    assert_eq!(h.run_as(0, &[b"RESTORE", b"s2", b"0", payload]), b"+OK\r\n");
    for cmd in ["XRANGE {} - +", "XINFO GROUPS {}", "XPENDING {} g", "XLEN {}"] {
        assert_eq!(h.run(&cmd.replace("{}", "s2")), h.run(&cmd.replace("{}", "s")), "{cmd}");
    }
    let info = |h: &mut Harness, k: &str| h.run(&format!("XINFO STREAM {k}"));
    assert_eq!(info(&mut h, "s2"), info(&mut h, "s"));
}
