//! In-process tests of the list family and of the blocking machinery through the dispatcher.

use crate::exec::testing::Harness;

#[test]
fn small_lists_are_listpack_and_grow_into_quicklist() {
    let mut h = Harness::default();
    assert_eq!(h.run("RPUSH l a b c"), ":3\r\n");
    assert_eq!(h.run("OBJECT ENCODING l"), "$8\r\nlistpack\r\n");
    let big = "x".repeat(9000);
    h.run(&format!("RPUSH l {big}"));
    assert_eq!(h.run("OBJECT ENCODING l"), "$9\r\nquicklist\r\n");
    assert_eq!(h.run("RPOP l"), format!("$9000\r\n{big}\r\n"));
    assert_eq!(h.run("OBJECT ENCODING l"), "$8\r\nlistpack\r\n");
    assert_eq!(h.run("CONFIG SET list-max-listpack-size 2"), "+OK\r\n");
    h.run("RPUSH l d");
    assert_eq!(h.run("OBJECT ENCODING l"), "$9\r\nquicklist\r\n");
    assert_eq!(h.run("TYPE l"), "+list\r\n");
}

#[test]
fn lset_converts_even_with_a_bad_index() {
    let mut h = Harness::default();
    h.run("RPUSH l a");
    let big = "y".repeat(9000);
    assert_eq!(h.run(&format!("LSET l 5 {big}")), "-ERR index out of range\r\n");
    assert_eq!(h.run("OBJECT ENCODING l"), "$9\r\nquicklist\r\n");
}

#[test]
fn emptied_lists_are_deleted() {
    let mut h = Harness::default();
    h.run("RPUSH l a b");
    assert_eq!(h.run("LPOP l 5"), "*2\r\n$1\r\na\r\n$1\r\nb\r\n");
    assert_eq!(h.run("EXISTS l"), ":0\r\n");
    h.run("RPUSH l a");
    assert_eq!(h.run("LMOVE l l LEFT RIGHT"), "$1\r\na\r\n");
    assert_eq!(h.run("LLEN l"), ":1\r\n");
    assert_eq!(h.run("LMOVE l m LEFT RIGHT"), "$1\r\na\r\n");
    assert_eq!(h.run("EXISTS l"), ":0\r\n");
}

#[test]
fn resp3_null_shapes() {
    let mut h = Harness::default();
    h.clients[0].st.resp3 = true;
    assert_eq!(h.run("LPOP nokey"), "_\r\n");
    assert_eq!(h.run("LPOP nokey 2"), "_\r\n");
    assert_eq!(h.run("LMPOP 1 nokey LEFT"), "_\r\n");
}

#[test]
fn blocked_clients_are_served_in_fifo_order() {
    let mut h = Harness::default();
    let a = h.add_client();
    let b = h.add_client();
    assert_eq!(h.run_as(a, &[b"BLPOP", b"q", b"0"]), b"");
    assert_eq!(h.run_as(b, &[b"BRPOP", b"other", b"q", b"0"]), b"");
    assert_eq!(h.srv.blocking.blocked_clients(), 2);
    assert_eq!(h.srv.blocking.blocking_keys(), 2);
    assert_eq!(h.run("RPUSH q 1 2 3"), ":3\r\n");
    assert_eq!(h.take_pending(a), "*2\r\n$1\r\nq\r\n$1\r\n1\r\n");
    assert_eq!(h.take_pending(b), "*2\r\n$1\r\nq\r\n$1\r\n3\r\n");
    assert_eq!(h.run("LRANGE q 0 -1"), "*1\r\n$1\r\n2\r\n");
    assert_eq!(h.srv.blocking.blocked_clients(), 0);
    assert_eq!(h.srv.blocking.blocking_keys(), 0);
    assert!(!h.clients[a].st.blocked && !h.clients[b].st.blocked);
}

#[test]
fn one_push_serves_only_as_many_as_it_has_elements() {
    let mut h = Harness::default();
    let a = h.add_client();
    let b = h.add_client();
    h.run_as(a, &[b"BLPOP", b"q", b"0"]);
    h.run_as(b, &[b"BLPOP", b"q", b"0"]);
    h.run("LPUSH q x");
    assert_eq!(h.take_pending(a), "*2\r\n$1\r\nq\r\n$1\r\nx\r\n");
    assert_eq!(h.take_pending(b), "");
    assert_eq!(h.srv.blocking.blocked_clients(), 1);
    assert_eq!(h.run("EXISTS q"), ":0\r\n");
}

#[test]
fn blmove_chains_wake_the_next_waiter() {
    let mut h = Harness::default();
    let a = h.add_client();
    let b = h.add_client();
    h.run_as(a, &[b"BLMOVE", b"s1", b"s2", b"LEFT", b"RIGHT", b"0"]);
    h.run_as(b, &[b"BRPOPLPUSH", b"s2", b"s3", b"0"]);
    h.run("RPUSH s1 v");
    assert_eq!(h.take_pending(a), "$1\r\nv\r\n");
    assert_eq!(h.take_pending(b), "$1\r\nv\r\n");
    assert_eq!(h.run("LRANGE s3 0 -1"), "*1\r\n$1\r\nv\r\n");
    assert_eq!(h.run("EXISTS s1 s2"), ":0\r\n");
}

#[test]
fn wrong_type_keeps_waiting_and_wrong_destination_errors() {
    let mut h = Harness::default();
    let a = h.add_client();
    h.run_as(a, &[b"BLMOVE", b"src", b"dst", b"LEFT", b"RIGHT", b"0"]);
    h.run("SET src str");
    assert_eq!(h.srv.blocking.blocked_clients(), 1, "a string does not serve a list waiter");
    h.run("DEL src");
    h.run("SET dst str");
    h.run("RPUSH src v");
    assert!(h.take_pending(a).starts_with("-WRONGTYPE"));
    assert_eq!(h.run("LLEN src"), ":1\r\n");
}

#[test]
fn rename_and_blmpop_serve_waiters() {
    let mut h = Harness::default();
    let a = h.add_client();
    h.run_as(a, &[b"BLMPOP", b"0", b"2", b"k1", b"k2", b"RIGHT", b"COUNT", b"2"]);
    h.run("RPUSH tmp a b c");
    h.run("RENAME tmp k2");
    assert_eq!(h.take_pending(a), "*2\r\n$2\r\nk2\r\n*2\r\n$1\r\nc\r\n$1\r\nb\r\n");
}

#[test]
fn client_unblock_and_deny_blocking() {
    let mut h = Harness::default();
    let a = h.add_client();
    let id = h.clients[a].st.id.to_string();
    h.run_as(a, &[b"BLPOP", b"q", b"0"]);
    assert_eq!(h.run("CLIENT UNBLOCK 999 TIMEOUT"), ":0\r\n");
    assert_eq!(
        h.run(&format!("CLIENT UNBLOCK {id} FOO")),
        "-ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR\r\n"
    );
    assert_eq!(h.run(&format!("CLIENT UNBLOCK {id} ERROR")), ":1\r\n");
    assert_eq!(h.take_pending(a), "-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n");
    h.run_as(a, &[b"BLPOP", b"q", b"0"]);
    assert_eq!(h.run(&format!("CLIENT UNBLOCK {id}")), ":1\r\n");
    assert_eq!(h.take_pending(a), "*-1\r\n");
    assert_eq!(h.run(&format!("CLIENT UNBLOCK {id}")), ":0\r\n");
    // Inside EXEC (the transaction family sets the flag): act as timed out.
    h.srv.blocking.deny_blocking = true;
    assert_eq!(h.run("BLPOP q 0"), "*-1\r\n");
    assert_eq!(h.run("BLMOVE q d LEFT LEFT 0"), "$-1\r\n");
    assert_eq!(h.run("BLMPOP 0 1 q LEFT"), "*-1\r\n");
    h.srv.blocking.deny_blocking = false;
    assert_eq!(h.srv.blocking.blocked_clients(), 0);
}

#[test]
fn timeouts_reply_a_null_array() {
    let mut h = Harness::default();
    let a = h.add_client();
    h.clients[a].st.resp3 = true;
    h.run_as(a, &[b"BLMOVE", b"q", b"d", b"LEFT", b"LEFT", b"0.001"]);
    let deadline = h.srv.blocking.next_deadline().expect("has a deadline");
    crate::exec::blocking::expire(&mut h.srv, &mut h.clients, deadline);
    assert_eq!(h.take_pending(a), "_\r\n");
    assert_eq!(h.srv.blocking.blocked_clients(), 0);
    assert!(!h.clients[a].st.blocked);
}

#[test]
fn move_copy_and_swapdb_wake_waiters_in_the_target_database() {
    let mut h = Harness::default();
    let a = h.add_client();
    h.clients[a].st.db = 1;
    h.run_as(a, &[b"BLPOP", b"q", b"0"]);
    h.run("RPUSH q x");
    assert_eq!(h.run("MOVE q 1"), ":1\r\n");
    assert_eq!(h.take_pending(a), "*2\r\n$1\r\nq\r\n$1\r\nx\r\n");

    h.run_as(a, &[b"BLPOP", b"q", b"0"]);
    h.run("RPUSH src y");
    assert_eq!(h.run("COPY src q DB 1"), ":1\r\n");
    assert_eq!(h.take_pending(a), "*2\r\n$1\r\nq\r\n$1\r\ny\r\n");

    h.run_as(a, &[b"BLPOP", b"q", b"0"]);
    h.run("RPUSH q z");
    assert_eq!(h.run("SWAPDB 0 1"), "+OK\r\n");
    assert_eq!(h.take_pending(a), "*2\r\n$1\r\nq\r\n$1\r\nz\r\n");
    assert_eq!(h.srv.blocking.blocked_clients(), 0);
}
