//! Transaction tests through the in-process harness (raw RESP2 replies).

use crate::exec::testing::Harness;

/// Waits until the wall clock is past `ms` milliseconds from now (a TTL of `ms` has expired).
fn let_expire(ms: i64) {
    let deadline = crate::util::now_ms() + ms;
    while crate::util::now_ms() <= deadline {
        std::thread::yield_now();
    }
}

const NULL_ARRAY: &str = "*-1\r\n";

#[test]
fn queue_and_exec() {
    let mut h = Harness::default();
    assert_eq!(h.run("MULTI"), "+OK\r\n");
    assert_eq!(h.run("SET a 1"), "+QUEUED\r\n");
    assert_eq!(h.run("INCR a"), "+QUEUED\r\n");
    assert_eq!(h.run("SET b x"), "+QUEUED\r\n");
    assert_eq!(h.run("INCR b"), "+QUEUED\r\n");
    assert_eq!(h.run("EXEC"), "*4\r\n+OK\r\n:2\r\n+OK\r\n-ERR value is not an integer or out of range\r\n");
    assert_eq!(h.run("GET a"), "$1\r\n2\r\n");
    assert_eq!(h.run("EXEC"), "-ERR EXEC without MULTI\r\n");
    assert_eq!(h.run("DISCARD"), "-ERR DISCARD without MULTI\r\n");
}

#[test]
fn queue_time_errors_abort() {
    let mut h = Harness::default();
    h.run("MULTI");
    assert_eq!(h.run("SET a"), "-ERR wrong number of arguments for 'set' command\r\n");
    assert_eq!(h.run("SET b 1"), "+QUEUED\r\n");
    assert_eq!(h.run("EXEC"), "-EXECABORT Transaction discarded because of previous errors.\r\n");
    assert_eq!(h.run("GET b"), "$-1\r\n");
    h.run("MULTI");
    assert!(h.run("NOSUCH x").starts_with("-ERR unknown command 'NOSUCH'"));
    assert!(h.run("EXEC").starts_with("-EXECABORT"));
    h.run("MULTI");
    assert_eq!(
        h.run("EXEC x"),
        "-EXECABORT Transaction discarded because of: wrong number of arguments for 'exec' command\r\n"
    );
    assert_eq!(h.run("EXEC"), "-ERR EXEC without MULTI\r\n");
}

#[test]
fn nested_multi_and_watch_inside_multi_do_not_abort() {
    let mut h = Harness::default();
    h.run("MULTI");
    assert_eq!(h.run("MULTI"), "-ERR MULTI calls can not be nested\r\n");
    assert_eq!(h.run("WATCH x"), "-ERR WATCH inside MULTI is not allowed\r\n");
    assert_eq!(h.run("SET x 1"), "+QUEUED\r\n");
    assert_eq!(h.run("EXEC"), "*1\r\n+OK\r\n");
}

#[test]
fn watch_is_invalidated_by_another_client() {
    let mut h = Harness::default();
    let other = h.add_client();
    h.run("SET k 1");
    assert_eq!(h.run("WATCH k"), "+OK\r\n");
    assert_eq!(h.srv.watching, 1);
    h.run_as(other, &[b"SET", b"k", b"2"]);
    h.run("MULTI");
    h.run("GET k");
    assert_eq!(h.run("EXEC"), NULL_ARRAY);
    assert_eq!(h.srv.watching, 0);
    // Not watched any more: the next transaction runs.
    h.run("MULTI");
    h.run("GET k");
    assert_eq!(h.run("EXEC"), "*1\r\n$1\r\n2\r\n");
}

#[test]
fn unchanged_watch_and_no_op_writes_pass() {
    let mut h = Harness::default();
    let other = h.add_client();
    h.run("SET k 1");
    h.run("WATCH k missing");
    h.run_as(other, &[b"SET", b"k", b"2", b"NX"]);
    h.run_as(other, &[b"DEL", b"missing"]);
    h.run_as(other, &[b"SET", b"unrelated", b"2"]);
    h.run_as(other, &[b"GET", b"k"]);
    h.run("MULTI");
    h.run("GET k");
    assert_eq!(h.run("EXEC"), "*1\r\n$1\r\n1\r\n");
}

#[test]
fn watch_sees_expiry_flush_and_swapdb() {
    let mut h = Harness::default();
    // A key that expires after WATCH counts as changed, even before it is deleted.
    h.run("SET k 1 PX 1");
    h.run("WATCH k");
    let_expire(1);
    h.run("MULTI");
    h.run("PING");
    assert_eq!(h.run("EXEC"), NULL_ARRAY);
    // A key already expired when watched does not.
    h.run("SET e 1 PX 1");
    let_expire(1);
    h.run("WATCH e");
    h.run("GET e");
    h.run("MULTI");
    h.run("PING");
    assert_eq!(h.run("EXEC"), "*1\r\n+PONG\r\n");
    // FLUSHALL touches existing watched keys, not missing ones.
    h.run("SET f 1");
    h.run("WATCH f");
    h.run("FLUSHALL");
    h.run("MULTI");
    assert_eq!(h.run("EXEC"), NULL_ARRAY);
    h.run("WATCH nothing");
    h.run("FLUSHDB");
    h.run("MULTI");
    assert_eq!(h.run("EXEC"), "*0\r\n");
    // SWAPDB touches a watched key that exists on either side.
    h.run("SELECT 1");
    h.run("SET s 1");
    h.run("SELECT 0");
    h.run("WATCH s");
    h.run("SWAPDB 0 1");
    h.run("MULTI");
    assert_eq!(h.run("EXEC"), NULL_ARRAY);
    h.run("WATCH s");
    assert_eq!(h.srv.dbs[0].watch.watchers(b"s").len(), 1, "WATCH entries stay with the index");
    h.run("UNWATCH");
    assert_eq!(h.srv.watching, 0);
}

#[test]
fn discard_and_reset_forget_everything() {
    let mut h = Harness::default();
    let other = h.add_client();
    h.run("WATCH k");
    h.run_as(other, &[b"SET", b"k", b"2"]);
    h.run("MULTI");
    h.run("SET x 1");
    assert_eq!(h.run("DISCARD"), "+OK\r\n");
    h.run("MULTI");
    assert_eq!(h.run("EXEC"), "*0\r\n", "DISCARD clears the dirty flag");
    h.run("WATCH k");
    h.run("MULTI");
    h.run("SET x 1");
    assert_eq!(h.run("RESET"), "+RESET\r\n");
    assert_eq!(h.srv.watching, 0);
    assert_eq!(h.run("EXEC"), "-ERR EXEC without MULTI\r\n");
    assert_eq!(h.run("GET x"), "$-1\r\n");
}

#[test]
fn client_list_shows_the_transaction() {
    let mut h = Harness::default();
    h.run("WATCH a b");
    h.run("MULTI");
    h.run("SET a 1");
    let other = h.add_client();
    let list = String::from_utf8(h.run_as(other, &[b"CLIENT", b"LIST"])).unwrap_or_default();
    let first = list.lines().find(|l| l.contains("id=1 ")).unwrap_or_default();
    assert!(first.contains(" flags=x "), "{first}");
    assert!(first.contains(" multi=1 watch=2 "), "{first}");
}

#[test]
fn no_multi_commands_are_refused_and_abort() {
    let mut h = Harness::default();
    h.run("MULTI");
    h.run("SET foo bar");
    assert_eq!(h.run("SHUTDOWN"), "-ERR Command not allowed inside a transaction\r\n");
    assert!(h.srv.shutdown.is_none());
    assert!(h.run("EXEC").starts_with("-EXECABORT"));
    assert_eq!(h.run("GET foo"), "$-1\r\n");
}

#[test]
fn info_counts_watchers_and_watched_keys() {
    let mut h = Harness::default();
    let other = h.add_client();
    h.run("WATCH a b");
    h.run_as(other, &[b"WATCH", b"b", b"c"]);
    let info = h.run("INFO clients");
    assert!(info.contains("watching_clients:2\r\n"), "{info}");
    assert!(info.contains("total_watched_keys:3\r\n"), "{info}");
}
