//! Tracking through the in-process harness: raw replies of the running client, and the pushes
//! queued for the others (`Harness::take_pending`). BCAST broadcasts are sent by
//! `before_sleep`, which the event loop runs; the tests call it.

use super::before_sleep;
use crate::exec::testing::Harness;

const INV_A: &str = ">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\na\r\n";

fn resp3(h: &mut Harness, idx: usize) {
    h.run_as(idx, &[b"HELLO", b"3"]);
}

fn run(h: &mut Harness, idx: usize, line: &str) -> String {
    let words: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
    String::from_utf8_lossy(&h.run_as(idx, &words)).into_owned()
}

#[test]
fn default_mode_invalidates_other_readers_once() {
    let mut h = Harness::default();
    let b = h.add_client();
    resp3(&mut h, 0);
    assert_eq!(h.run("CLIENT TRACKING on"), "+OK\r\n");
    assert_eq!(h.srv.tracking.clients, 1);
    h.run("GET a");
    assert_eq!((h.srv.tracking.total_keys(), h.srv.tracking.total_items()), (1, 1));
    run(&mut h, b, "SET a 1");
    assert_eq!(h.take_pending(0), INV_A);
    // Forgotten until read again.
    run(&mut h, b, "SET a 2");
    assert_eq!(h.take_pending(0), "");
    assert_eq!(h.srv.tracking.total_keys(), 0);
}

#[test]
fn own_writes_follow_the_reply_unless_noloop() {
    let mut h = Harness::default();
    resp3(&mut h, 0);
    h.run("CLIENT TRACKING on");
    h.run("GET a");
    assert_eq!(h.run("SET a 1"), format!("+OK\r\n{INV_A}"));
    h.run("GET a");
    h.run("CLIENT TRACKING on NOLOOP");
    assert_eq!(h.run("SET a 2"), "+OK\r\n");
    // In a transaction, after EXEC's whole reply.
    h.run("CLIENT TRACKING on");
    h.run("MULTI");
    h.run("GET a");
    h.run("SET a 3");
    assert_eq!(h.run("EXEC"), format!("*2\r\n$1\r\n2\r\n+OK\r\n{INV_A}"));
}

#[test]
fn flush_sends_null_to_every_tracking_client() {
    let mut h = Harness::default();
    let b = h.add_client();
    resp3(&mut h, 0);
    resp3(&mut h, b);
    h.run("CLIENT TRACKING on");
    run(&mut h, b, "CLIENT TRACKING on");
    h.run("GET a");
    assert_eq!(run(&mut h, b, "FLUSHALL"), "+OK\r\n>2\r\n$10\r\ninvalidate\r\n_\r\n");
    assert_eq!(h.take_pending(0), ">2\r\n$10\r\ninvalidate\r\n_\r\n");
    assert_eq!(h.srv.tracking.total_keys(), 0);
}

#[test]
fn optin_tracks_only_after_caching_yes() {
    let mut h = Harness::default();
    let b = h.add_client();
    resp3(&mut h, 0);
    h.run("CLIENT TRACKING on OPTIN");
    h.run("GET a");
    assert_eq!(h.srv.tracking.total_keys(), 0);
    h.run("CLIENT CACHING yes");
    h.run("GET a");
    h.run("GET b");
    assert_eq!(h.srv.tracking.total_keys(), 1, "CACHING covers the next command only");
    run(&mut h, b, "MSET a 1 b 1");
    assert_eq!(h.take_pending(0), INV_A);
}

#[test]
fn optout_skips_after_caching_no() {
    let mut h = Harness::default();
    resp3(&mut h, 0);
    h.run("CLIENT TRACKING on OPTOUT");
    h.run("CLIENT CACHING no");
    h.run("GET a");
    assert_eq!(h.srv.tracking.total_keys(), 0);
    h.run("GET a");
    assert_eq!(h.srv.tracking.total_keys(), 1);
}

#[test]
fn bcast_batches_keys_per_prefix() {
    let mut h = Harness::default();
    let b = h.add_client();
    resp3(&mut h, 0);
    h.run("CLIENT TRACKING on BCAST PREFIX user: PREFIX obj:");
    assert_eq!(h.srv.tracking.total_prefixes(), 2);
    run(&mut h, b, "SET user:2 x");
    run(&mut h, b, "SET other y");
    run(&mut h, b, "SET user:1 x");
    run(&mut h, b, "SET user:2 z");
    before_sleep(&mut h.srv, &mut h.clients);
    assert_eq!(h.take_pending(0), ">2\r\n$10\r\ninvalidate\r\n*2\r\n$6\r\nuser:1\r\n$6\r\nuser:2\r\n");
    before_sleep(&mut h.srv, &mut h.clients);
    assert_eq!(h.take_pending(0), "");
    h.run("CLIENT TRACKING off");
    assert_eq!((h.srv.tracking.total_prefixes(), h.srv.tracking.clients), (0, 0));
}

#[test]
fn redirect_to_resp2_subscriber_and_broken_redirect() {
    let mut h = Harness::default();
    let sub = h.add_client();
    let w = h.add_client();
    run(&mut h, sub, "SUBSCRIBE __redis__:invalidate");
    h.take_pending(sub);
    let id = h.clients[sub].st.id;
    assert_eq!(h.run(&format!("CLIENT TRACKING on REDIRECT {id}")), "+OK\r\n");
    assert_eq!(h.run("CLIENT GETREDIR"), format!(":{id}\r\n"));
    h.run("GET a");
    run(&mut h, w, "SET a 1");
    assert_eq!(
        h.take_pending(sub),
        "*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n*1\r\n$1\r\na\r\n"
    );
    // The target leaves: RESP2 gets nothing, but the flag shows.
    let mut st = h.clients[sub].st.clone();
    crate::exec::tracking::disable(&mut h.srv, &mut st, sub);
    h.srv.pubsub.drop_client(&mut st, sub);
    h.clients.remove(sub);
    h.run("GET a");
    run(&mut h, w, "SET a 2");
    assert!(h.run("CLIENT INFO").contains(" flags=tR "));
}

#[test]
fn table_bound_drops_keys_and_tells_their_clients() {
    let mut h = Harness::default();
    resp3(&mut h, 0);
    h.run("CONFIG SET tracking-table-max-keys 2");
    h.run("CLIENT TRACKING on");
    h.run("MGET a b c d");
    assert_eq!(h.srv.tracking.total_keys(), 4);
    before_sleep(&mut h.srv, &mut h.clients);
    assert_eq!(h.srv.tracking.total_keys(), 2);
    assert_eq!(h.take_pending(0).matches("invalidate").count(), 2);
}

#[test]
fn reset_and_errors() {
    let mut h = Harness::default();
    assert_eq!(
        h.run("CLIENT TRACKING on PREFIX a"),
        "-ERR PREFIX option requires BCAST mode to be enabled\r\n"
    );
    assert_eq!(
        h.run("CLIENT TRACKING on BCAST PREFIX ab PREFIX a"),
        "-ERR Prefix 'ab' overlaps with another provided prefix 'a'. Prefixes for a single client must not overlap.\r\n"
    );
    h.run("CLIENT TRACKING on BCAST PREFIX x");
    assert_eq!(
        h.run("CLIENT TRACKING on BCAST PREFIX xy"),
        "-ERR Prefix 'xy' overlaps with an existing prefix 'x'. Prefixes for a single client must not overlap.\r\n"
    );
    h.run("RESET");
    assert_eq!((h.srv.tracking.clients, h.srv.tracking.total_prefixes()), (0, 0));
    assert!(h.srv.dbs.iter().all(|d| d.watch.modified.is_none()), "the write path is idle again");
    assert_eq!(h.run("CLIENT GETREDIR"), ":-1\r\n");
}

#[test]
fn client_list_flags_and_redir() {
    let mut h = Harness::default();
    let field = |h: &mut Harness, name: &str| {
        let info = h.run("CLIENT INFO");
        let start = info.find(&format!(" {name}=")).map(|i| i + name.len() + 2).unwrap_or(0);
        info[start..].split(' ').next().unwrap_or("").to_string()
    };
    assert_eq!((field(&mut h, "flags"), field(&mut h, "redir")), ("N".into(), "-1".into()));
    h.run("CLIENT TRACKING on BCAST");
    assert_eq!((field(&mut h, "flags"), field(&mut h, "redir")), ("tB".into(), "0".into()));
    h.run("CLIENT TRACKING off");
    let other = h.add_client();
    let id = h.clients[other].st.id;
    h.run(&format!("CLIENT TRACKING on REDIRECT {id}"));
    assert_eq!((field(&mut h, "flags"), field(&mut h, "redir")), ("t".into(), id.to_string()));
    assert_eq!(h.run("CLIENT GETREDIR"), format!(":{id}\r\n"));
}

#[test]
fn redirect_subscriber_is_held_to_the_pubsub_output_limit() {
    let mut h = Harness::default();
    let sub = h.add_client();
    let w = h.add_client();
    let set: &[&[u8]] = &[b"CONFIG", b"SET", b"client-output-buffer-limit", b"pubsub 200 0 0"];
    assert_eq!(h.run_as(0, set), b"+OK\r\n");
    run(&mut h, sub, "SUBSCRIBE __redis__:invalidate");
    let id = h.clients[sub].st.id;
    h.run(&format!("CLIENT TRACKING on REDIRECT {id}"));
    for i in 0..10 {
        h.run(&format!("GET key:{i}"));
        run(&mut h, w, &format!("SET key:{i} v"));
    }
    assert!(h.clients[sub].st.close_asap, "the subscriber went over 200 bytes of pending output");
    assert_eq!(h.srv.pubsub.limit_disconnections, 1);
}
