use crate::exec::testing::Harness;

fn text(b: Vec<u8>) -> String {
    String::from_utf8_lossy(&b).into_owned()
}

/// What a client got pushed by other clients' commands.
fn pushed(h: &mut Harness, idx: usize) -> String {
    let out: Vec<u8> = h.clients[idx].pending_out.drain(..).flat_map(|b| b.to_vec()).collect();
    text(out)
}

#[test]
fn subscribe_counts_and_unsubscribe_all() {
    let mut h = Harness::default();
    assert_eq!(
        h.run("SUBSCRIBE a b"),
        "*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n*3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n"
    );
    assert_eq!(h.run("PSUBSCRIBE p*"), "*3\r\n$10\r\npsubscribe\r\n$2\r\np*\r\n:3\r\n");
    assert_eq!(
        h.run("UNSUBSCRIBE"),
        "*3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:2\r\n*3\r\n$11\r\nunsubscribe\r\n$1\r\nb\r\n:1\r\n"
    );
    assert_eq!(h.run("UNSUBSCRIBE"), "*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:1\r\n");
    assert_eq!(h.run("PUNSUBSCRIBE"), "*3\r\n$12\r\npunsubscribe\r\n$2\r\np*\r\n:0\r\n");
    assert!(h.clients[0].st.subs.is_none());
    assert_eq!(h.srv.pubsub.clients, 0);
    assert_eq!(h.run("SUNSUBSCRIBE"), "*3\r\n$12\r\nsunsubscribe\r\n$-1\r\n:0\r\n");
}

#[test]
fn resp2_subscriber_mode_restricts_commands() {
    let mut h = Harness::default();
    h.run("SUBSCRIBE a");
    assert_eq!(
        h.run("GET x"),
        "-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n"
    );
    assert!(h.run("CLIENT LIST").contains("'client|list'"));
    assert_eq!(h.run("PING"), "*2\r\n$4\r\npong\r\n$0\r\n\r\n");
    assert_eq!(h.run("PING hi"), "*2\r\n$4\r\npong\r\n$2\r\nhi\r\n");
    assert_eq!(h.run("RESET"), "+RESET\r\n");
    assert_eq!(h.srv.pubsub.channel_count(crate::exec::pubsub::Kind::Channel), 0);
    assert_eq!(h.run("PING"), "+PONG\r\n");
}

#[test]
fn resp3_allows_everything_and_pushes() {
    let mut h = Harness::default();
    h.run("HELLO 3");
    assert_eq!(h.run("SUBSCRIBE a"), ">3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n");
    assert_eq!(h.run("GET x"), "_\r\n");
    assert_eq!(h.run("PING"), "+PONG\r\n");
    // Its own message arrives before the PUBLISH reply, as in Valkey.
    assert_eq!(h.run("PUBLISH a m"), ">3\r\n$7\r\nmessage\r\n$1\r\na\r\n$1\r\nm\r\n:1\r\n");
}

#[test]
fn publish_reaches_channels_and_patterns() {
    let mut h = Harness::default();
    let s1 = h.add_client();
    let s2 = h.add_client();
    h.run_as(s1, &[b"SUBSCRIBE", b"news"]);
    h.run_as(s2, &[b"PSUBSCRIBE", b"n*", b"x*"]);
    h.clients[s2].st.resp3 = true;
    assert_eq!(h.run("PUBLISH news hello"), ":2\r\n");
    assert_eq!(pushed(&mut h, s1), "*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$5\r\nhello\r\n");
    assert_eq!(pushed(&mut h, s2), ">4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n$4\r\nnews\r\n$5\r\nhello\r\n");
    assert_eq!(h.run("PUBLISH other x"), ":0\r\n");
    assert_eq!(h.run("PUBSUB NUMPAT"), ":2\r\n");
    assert_eq!(h.run("PUBSUB CHANNELS"), "*1\r\n$4\r\nnews\r\n");
    assert_eq!(h.run("PUBSUB CHANNELS z*"), "*0\r\n");
    assert_eq!(h.run("PUBSUB NUMSUB news nope"), "*4\r\n$4\r\nnews\r\n:1\r\n$4\r\nnope\r\n:0\r\n");
    assert_eq!(
        h.run("PUBSUB CHANNELS a b"),
        "-ERR unknown subcommand or wrong number of arguments for 'CHANNELS'. Try PUBSUB HELP.\r\n"
    );
    assert!(h.srv.pubsub.dirty.contains(&s1));
}

#[test]
fn shard_channels_are_their_own_namespace() {
    let mut h = Harness::default();
    let s = h.add_client();
    assert_eq!(
        text(h.run_as(s, &[b"SSUBSCRIBE", b"{t}a"])),
        "*3\r\n$10\r\nssubscribe\r\n$4\r\n{t}a\r\n:1\r\n"
    );
    assert_eq!(h.run("PUBLISH {t}a x"), ":0\r\n");
    assert_eq!(h.run("SPUBLISH {t}a x"), ":1\r\n");
    assert_eq!(pushed(&mut h, s), "*3\r\n$8\r\nsmessage\r\n$4\r\n{t}a\r\n$1\r\nx\r\n");
    assert_eq!(h.run("PUBSUB SHARDCHANNELS"), "*1\r\n$4\r\n{t}a\r\n");
    assert_eq!(h.run("PUBSUB SHARDNUMSUB {t}a"), "*2\r\n$4\r\n{t}a\r\n:1\r\n");
    h.run_as(s, &[b"PSUBSCRIBE", b"a*", b"b*"]);
    let list = text(h.run_as(0, &[b"CLIENT", b"LIST", b"TYPE", b"pubsub"]));
    assert!(list.contains(" flags=P ") && list.contains(" sub=0 psub=2 ssub=1 "), "{list}");
    assert_eq!(list.matches("id=").count(), 1, "only the subscriber is of type pubsub: {list}");
}

#[test]
fn keyspace_notifications() {
    let mut h = Harness::default();
    let s = h.add_client();
    assert_eq!(h.run("CONFIG SET notify-keyspace-events KEA"), "+OK\r\n");
    assert_eq!(
        h.run("CONFIG GET notify-keyspace-events"),
        "*2\r\n$22\r\nnotify-keyspace-events\r\n$3\r\nAKE\r\n"
    );
    h.run_as(s, &[b"PSUBSCRIBE", b"__key*__:*"]);
    h.run("SET k v");
    let got = pushed(&mut h, s);
    assert!(got.contains("$16\r\n__keyspace@0__:k\r\n$3\r\nset\r\n"), "{got}");
    assert!(got.contains("$18\r\n__keyevent@0__:set\r\n$1\r\nk\r\n"), "{got}");
    h.run("CONFIG SET notify-keyspace-events Ex");
    h.run("SET k v PX 1");
    pushed(&mut h, s);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while h.run("GET k") != "$-1\r\n" && std::time::Instant::now() < deadline {
        std::thread::yield_now();
    }
    let got = pushed(&mut h, s);
    assert_eq!(
        got,
        "*4\r\n$8\r\npmessage\r\n$10\r\n__key*__:*\r\n$22\r\n__keyevent@0__:expired\r\n$1\r\nk\r\n"
    );
}
