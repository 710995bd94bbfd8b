//! ACL users end to end, on real processes: NOPERM texts and the ACL LOG as Valkey 8 words them
//! (Redis 7.0 words them differently, so `tests/diff/acl.txt` leaves them out), MULTI and Lua
//! denials, pub/sub channel rules, clients closed when their user is deleted or reloaded, the
//! ACL file round trip, `requirepass` as the default user's password, a replica linking to a
//! primary whose default user is off with `masteruser`/`masterauth`, and redis-py logging in
//! with a username.

use std::process::Command;
use std::time::Duration;

use shoal_e2e::resp::{bulk_text, Value};
use shoal_e2e::{run_with_timeout, ShoalNode};

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    shoal_e2e::cluster::wait_for(Duration::from_secs(30), what, || f().then_some(()));
}

/// ACL LOG entries as (field, value-as-text) lists.
fn log_entries(c: &mut shoal_e2e::RawClient, n: usize) -> Vec<Vec<(String, String)>> {
    c.send_cmd(&["ACL", "LOG", &n.to_string()]).unwrap();
    let Value::Agg(_, Some(entries)) = c.read_value().unwrap() else { panic!("ACL LOG is not an array") };
    entries
        .into_iter()
        .map(|e| {
            let Value::Agg(_, Some(fields)) = e else { panic!("entry is not a map") };
            fields.chunks(2).map(|kv| (text(&kv[0]), text(&kv[1]))).collect()
        })
        .collect()
}

fn text(v: &Value) -> String {
    match v {
        Value::Blob(_, Some(b)) | Value::Line(_, b) => String::from_utf8_lossy(b).into_owned(),
        other => format!("{other:?}"),
    }
}

fn field<'a>(e: &'a [(String, String)], name: &str) -> &'a str {
    e.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).unwrap_or_else(|| panic!("no {name} in {e:?}"))
}

#[test]
fn noperm_errors_and_the_acl_log_are_valkeys() {
    let node = ShoalNode::start(&[]);
    let mut admin = node.connect();
    let mut c = node.connect();
    assert_eq!(admin.run("ACL SETUSER v on >p +get +publish +subscribe +psubscribe ~a* &c*"), "+OK\r\n");
    assert_eq!(c.run("AUTH v p"), "+OK\r\n");
    assert_eq!(c.run("SET a 1"), "-NOPERM User v has no permissions to run the 'set' command\r\n");
    assert_eq!(c.run("GET b"), "-NOPERM No permissions to access a key\r\n");
    assert_eq!(c.run("GET a"), "$-1\r\n");
    assert_eq!(c.run("PUBLISH x 1"), "-NOPERM No permissions to access a channel\r\n");
    assert_eq!(c.run("PSUBSCRIBE c* d"), "-NOPERM No permissions to access a channel\r\n");
    assert_eq!(
        c.run("CONFIG GET maxmemory"),
        "-NOPERM User v has no permissions to run the 'config|get' command\r\n"
    );
    assert_eq!(c.run("ACL WHOAMI"), "-NOPERM User v has no permissions to run the 'acl|whoami' command\r\n");
    // DRYRUN names the key or channel.
    assert_eq!(admin.run("ACL DRYRUN v get b"), bulk_text("User v has no permissions to access the 'b' key"));
    assert_eq!(
        admin.run("ACL DRYRUN v publish z m"),
        bulk_text("User v has no permissions to access the 'z' channel")
    );
    assert_eq!(
        admin.run("ACL DRYRUN v set a 1"),
        bulk_text("User v has no permissions to run the 'set' command")
    );
    // Failed logins are logged too, under the name tried and the command as sent.
    assert_eq!(
        c.run("AUTH nosuchuser p"),
        "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    assert_eq!(
        c.run("HELLO 3 AUTH v wrong"),
        "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );

    let log = log_entries(&mut admin, 100);
    let names: Vec<&str> = log[0].iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "count",
            "reason",
            "context",
            "object",
            "username",
            "age-seconds",
            "client-info",
            "entry-id",
            "timestamp-created",
            "timestamp-last-updated"
        ]
    );
    let summary: Vec<(String, String, String, String)> = log
        .iter()
        .map(|e| {
            (
                field(e, "reason").into(),
                field(e, "context").into(),
                field(e, "object").into(),
                field(e, "username").into(),
            )
        })
        .collect();
    let want = [
        ("auth", "toplevel", "HELLO", "v"),
        ("auth", "toplevel", "AUTH", "nosuchuser"),
        ("command", "toplevel", "acl|whoami", "v"),
        ("command", "toplevel", "config|get", "v"),
        ("channel", "toplevel", "d", "v"),
        ("channel", "toplevel", "x", "v"),
        ("key", "toplevel", "b", "v"),
        ("command", "toplevel", "set", "v"),
    ];
    let want: Vec<(String, String, String, String)> = want
        .iter()
        .map(|(a, b, c, d)| (a.to_string(), b.to_string(), c.to_string(), d.to_string()))
        .collect();
    assert_eq!(summary, want);
    // Newest first, ids in creation order, the client's CLIENT LIST line.
    assert_eq!(field(&log[0], "entry-id"), "7");
    assert_eq!(field(&log[7], "entry-id"), "0");
    assert!(field(&log[7], "client-info").contains(" user=v "), "{:?}", log[7]);
    // The same refusal again bumps the count of its entry instead of adding one.
    assert_eq!(c.run("SET a 2"), "-NOPERM User v has no permissions to run the 'set' command\r\n");
    let log = log_entries(&mut admin, 1);
    assert_eq!(
        (field(&log[0], "object"), field(&log[0], "count"), field(&log[0], "entry-id")),
        ("set", "2", "0")
    );
    assert!(field(&log[0], "timestamp-last-updated") >= field(&log[0], "timestamp-created"));
    let stats = admin.run("INFO stats");
    for (name, n) in [("auth", 2), ("cmd", 4), ("key", 1), ("channel", 2)] {
        assert!(stats.contains(&format!("acl_access_denied_{name}:{n}\r\n")), "{name}: {stats}");
    }
    assert_eq!(admin.run("ACL LOG RESET"), "+OK\r\n");
    assert_eq!(admin.run("ACL LOG"), "*0\r\n");
    assert_eq!(admin.run("CONFIG SET acllog-max-len 2"), "+OK\r\n");
    for k in ["k1", "k2", "k3"] {
        c.run(&format!("GET {k}"));
    }
    assert_eq!(log_entries(&mut admin, 10).len(), 2);
    // Without an ACL file.
    assert_eq!(
        admin.run("ACL SAVE"),
        "-ERR This instance is not configured to use an ACL file. You may want to specify users via the ACL \
         SETUSER command and then issue a CONFIG REWRITE (assuming you have a configuration file set) in order \
         to store users in the configuration.\r\n"
    );
}

#[test]
fn multi_is_checked_when_queueing_and_again_at_exec() {
    let node = ShoalNode::start(&[]);
    let mut admin = node.connect();
    let mut c = node.connect();
    assert_eq!(admin.run("ACL SETUSER m on nopass +get +multi +exec ~a*"), "+OK\r\n");
    assert_eq!(c.run("AUTH m x"), "+OK\r\n");
    assert_eq!(c.run("MULTI"), "+OK\r\n");
    assert_eq!(c.run("SET a 1"), "-NOPERM User m has no permissions to run the 'set' command\r\n");
    assert_eq!(c.run("GET b"), "-NOPERM No permissions to access a key\r\n");
    assert_eq!(c.run("GET a"), "+QUEUED\r\n");
    assert_eq!(c.run("EXEC"), "-EXECABORT Transaction discarded because of previous errors.\r\n");
    let log = log_entries(&mut admin, 2);
    assert_eq!((field(&log[0], "context"), field(&log[0], "object")), ("multi", "b"));
    // Rules changed between queueing and EXEC.
    assert_eq!(c.run("MULTI"), "+OK\r\n");
    assert_eq!(c.run("GET a"), "+QUEUED\r\n");
    assert_eq!(admin.run("ACL SETUSER m resetkeys"), "+OK\r\n");
    assert_eq!(
        c.run("EXEC"),
        "*1\r\n-NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. \
         This command is no longer allowed for the following reason: no permission to touch the specified keys\r\n"
    );
    let log = log_entries(&mut admin, 1);
    assert_eq!((field(&log[0], "reason"), field(&log[0], "context")), ("key", "multi"));
}

#[test]
fn lua_redis_call_runs_as_the_calling_user() {
    let node = ShoalNode::start(&[]);
    let mut admin = node.connect();
    let mut c = node.connect();
    assert_eq!(admin.run("ACL SETUSER s on nopass +get +eval ~a*"), "+OK\r\n");
    assert_eq!(c.run("AUTH s x"), "+OK\r\n");
    let set = c.cmd(&["EVAL", "return redis.call('set','a','1')", "0"]).unwrap();
    let set = String::from_utf8_lossy(&set);
    assert!(
        set.starts_with(
            "-ERR ACL failure in script: User s has no permissions to run the 'set' command script:"
        ),
        "{set}"
    );
    let get = c.cmd(&["EVAL", "return redis.pcall('get','b')", "0"]).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&get),
        "-ERR ACL failure in script: No permissions to access a key\r\n"
    );
    assert_eq!(c.cmd(&["EVAL", "return redis.call('get','a')", "0"]).unwrap(), b"$-1\r\n");
    let log = log_entries(&mut admin, 2);
    assert_eq!(
        (field(&log[0], "reason"), field(&log[0], "context"), field(&log[0], "object")),
        ("key", "lua", "b")
    );
    assert_eq!((field(&log[1], "reason"), field(&log[1], "object")), ("command", "set"));
    assert!(field(&log[0], "client-info").contains("cmd=eval user=s"), "{:?}", log[0]);
    // The default user's scripts are not limited.
    assert_eq!(admin.cmd(&["EVAL", "return redis.call('set','b','1')", "0"]).unwrap(), b"+OK\r\n");
}

#[test]
fn deleting_or_reloading_a_user_closes_its_clients() {
    let dir = std::env::temp_dir().join(format!("shoal-acl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("users.acl");
    std::fs::write(&file, "user alice on >a ~* &* +@all\nuser default on nopass ~* &* +@all\n").unwrap();
    let path = file.to_string_lossy().into_owned();
    let node = ShoalNode::start(&["--aclfile", &path]);
    let mut admin = node.connect();
    let alice = format!("user alice on #{} ~* &* +@all", sha256_hex("a"));
    assert_eq!(
        admin.run("ACL LIST"),
        format!("*2\r\n{}{}", bulk_text(&alice), bulk_text("user default on nopass ~* &* +@all"))
    );
    // DELUSER closes the user's connections; others stay.
    let mut a1 = node.connect();
    let mut a2 = node.connect();
    let mut other = node.connect();
    assert_eq!(a1.run("AUTH alice a"), "+OK\r\n");
    assert_eq!(a2.run("AUTH alice a"), "+OK\r\n");
    assert_eq!(admin.run("ACL DELUSER alice"), ":1\r\n");
    a1.expect_closed().unwrap();
    a2.expect_closed().unwrap();
    assert_eq!(other.run("PING"), "+PONG\r\n");
    // A user deleting itself gets its reply, then the connection closes.
    assert_eq!(admin.run("ACL SETUSER bob on >b +@all ~*"), "+OK\r\n");
    let mut b = node.connect();
    assert_eq!(b.run("AUTH bob b"), "+OK\r\n");
    assert_eq!(b.run("ACL DELUSER bob"), ":1\r\n");
    b.expect_closed().unwrap();

    // SAVE writes the users; LOAD reads them back and closes the clients of replaced users.
    assert_eq!(admin.run("ACL SETUSER carol on >c ~c:* &* -@all +get (~x +set)"), "+OK\r\n");
    assert_eq!(admin.run("ACL SAVE"), "+OK\r\n");
    let saved = std::fs::read_to_string(&file).unwrap();
    assert_eq!(
        saved,
        format!(
            "user carol on #{} ~c:* &* -@all +get (~x resetchannels -@all +set)\nuser default on nopass ~* &* +@all\n",
            sha256_hex("c")
        )
    );
    let mut carol = node.connect();
    assert_eq!(carol.run("AUTH carol c"), "+OK\r\n");
    std::fs::write(&file, format!("{saved}user dan on nopass +@all ~*\n")).unwrap();
    assert_eq!(admin.run("ACL LOAD"), "+OK\r\n");
    carol.expect_closed().unwrap();
    assert_eq!(admin.run("ACL USERS"), "*3\r\n$5\r\ncarol\r\n$3\r\ndan\r\n$7\r\ndefault\r\n");
    // CLIENT KILL USER knows the users.
    let mut dan = node.connect();
    assert_eq!(dan.run("AUTH dan x"), "+OK\r\n");
    assert_eq!(admin.run("CLIENT KILL USER nosuch"), "-ERR No such user 'nosuch'\r\n");
    assert_eq!(admin.run("CLIENT KILL USER dan"), ":1\r\n");
    dan.expect_closed().unwrap();
    // A bad file changes nothing and says every problem.
    std::fs::write(&file, "user eve on +nosuch\nuser eve off\n# comment\n").unwrap();
    assert_eq!(
        admin.run("ACL LOAD"),
        format!(
            "-ERR {path}:1: Error in applying operation '+nosuch': Unknown command or category name in ACL. \
             WARNING: Duplicate user 'eve' found on line 2. {path}:3 should start with user keyword followed by \
             the username. WARNING: ACL errors detected, no change to the previously active ACL rules was \
             performed\r\n"
        )
    );
    assert_eq!(admin.run("ACL USERS"), "*3\r\n$5\r\ncarol\r\n$3\r\ndan\r\n$7\r\ndefault\r\n");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn channel_rules_close_subscribers_they_no_longer_allow() {
    let node = ShoalNode::start(&[]);
    let mut admin = node.connect();
    let mut sub = node.connect();
    assert_eq!(admin.run("ACL SETUSER p on nopass +@all ~* resetchannels &news.*"), "+OK\r\n");
    assert_eq!(sub.run("AUTH p x"), "+OK\r\n");
    assert_eq!(sub.run("SUBSCRIBE sports"), "-NOPERM No permissions to access a channel\r\n");
    assert_eq!(sub.run("SUBSCRIBE news.1"), "*3\r\n$9\r\nsubscribe\r\n$6\r\nnews.1\r\n:1\r\n");
    // A superset keeps it; losing the pattern closes it.
    assert_eq!(admin.run("ACL SETUSER p &other"), "+OK\r\n");
    assert_eq!(sub.run("PING"), "*2\r\n$4\r\npong\r\n$0\r\n\r\n");
    assert_eq!(admin.run("ACL SETUSER p resetchannels &other"), "+OK\r\n");
    sub.expect_closed().unwrap();
}

#[test]
fn requirepass_is_the_default_users_password() {
    let node = ShoalNode::start(&["--requirepass", "s3cret"]);
    let mut c = node.connect();
    assert_eq!(c.run("GET k"), "-NOAUTH Authentication required.\r\n");
    assert_eq!(c.run("AUTH wrong"), "-WRONGPASS invalid username-password pair or user is disabled.\r\n");
    assert_eq!(c.run("AUTH s3cret"), "+OK\r\n");
    let line = format!("user default on #{} ~* &* +@all", sha256_hex("s3cret"));
    assert_eq!(c.run("ACL LIST"), format!("*1\r\n{}", bulk_text(&line)));
    // CONFIG SET requirepass changes the password; connected clients stay logged in.
    assert_eq!(c.run("CONFIG SET requirepass other"), "+OK\r\n");
    assert_eq!(c.run("PING"), "+PONG\r\n");
    let mut d = node.connect();
    assert_eq!(
        d.run("AUTH default s3cret"),
        "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    assert_eq!(d.run("AUTH default other"), "+OK\r\n");
    assert_eq!(c.cmd(&["CONFIG", "SET", "requirepass", ""]).unwrap(), b"+OK\r\n");
    assert_eq!(c.run("ACL LIST"), "*1\r\n$34\r\nuser default on nopass ~* &* +@all\r\n");
}

/// SHA-256 hex through the system's `sha256sum`, independent of the node's.
fn sha256_hex(s: &str) -> String {
    let out = run_with_timeout(&mut Command::new("sha256sum"), s.as_bytes(), Duration::from_secs(10));
    out.stdout.split_whitespace().next().unwrap_or_default().to_string()
}

#[test]
fn a_replica_links_as_masteruser_to_a_primary_whose_default_user_is_off() {
    let primary = ShoalNode::start(&[
        // Each rule is its own argument, as valkey-server's command line takes them.
        "--user",
        "default",
        "off",
        "--user",
        "admin",
        "on",
        ">adm",
        "~*",
        "&*",
        "+@all",
        "--user",
        "repl",
        "on",
        ">rpw",
        "+psync",
        "+replconf",
        "+ping",
    ]);
    let replica = ShoalNode::start(&["--masteruser", "repl", "--masterauth", "rpw"]);
    let mut p = primary.connect();
    assert_eq!(p.run("PING"), "-NOAUTH Authentication required.\r\n");
    assert_eq!(p.run("AUTH admin adm"), "+OK\r\n");
    let mut r = replica.connect();
    assert_eq!(r.run(&format!("REPLICAOF 127.0.0.1 {}", primary.port)), "+OK\r\n");
    wait_until("the replica's link", || r.run("INFO replication").contains("master_link_status:up"));
    assert_eq!(p.run("SET k v"), "+OK\r\n");
    wait_until("the write on the replica", || r.run("GET k") == "$1\r\nv\r\n");
    // The link's user is what the primary sees.
    let clients = p.run("CLIENT LIST TYPE replica");
    assert!(clients.contains("user=repl"), "{clients}");
}

#[test]
fn redis_py_logs_in_with_a_username() {
    let node = ShoalNode::start(&[]);
    let mut admin = node.connect();
    assert_eq!(admin.run("ACL SETUSER app on >app-pw ~app:* +@read +@write -@dangerous"), "+OK\r\n");
    let code = format!(
        r#"
import redis
r = redis.Redis(port={port}, username="app", password="app-pw")
r.set("app:1", "x")
assert r.get("app:1") == b"x"
try:
    r.set("other", "x")
    raise SystemExit("write outside app:* allowed")
except redis.exceptions.NoPermissionError as e:
    assert "No permissions to access a key" in str(e), e
try:
    redis.Redis(port={port}, username="app", password="bad").ping()
    raise SystemExit("bad password accepted")
except redis.exceptions.AuthenticationError:
    pass
print("redis-py ok")
"#,
        port = node.port
    );
    let out = run_with_timeout(Command::new("python3").arg("-c").arg(code), b"", Duration::from_secs(60));
    assert!(out.status.success() && out.stdout.contains("redis-py ok"), "{}\n{}", out.stdout, out.stderr);
}

/// Node-to-node links of a cluster log in as `masteruser`: the default user here may not run
/// the internal commands (SYNCSLOTS, PUBLISHLOCAL, SLOTSMOVED), so a slot migration and a
/// cross-node PUBLISH only work if the migration worker and the bus authenticate as `link`.
#[test]
fn cluster_links_log_in_as_masteruser() {
    use shoal_e2e::cluster::{key_in_slot, migrations, wait_for, Cluster, TempDir};
    let dir = TempDir::new("acl-links");
    let file = dir.0.join("users.acl");
    std::fs::write(
        &file,
        "user default on nopass ~* &* +@all -cluster|syncslots -cluster|publishlocal -cluster|slotsmoved\n\
         user link on >linkpw ~* &* +@all\n",
    )
    .expect("aclfile");
    let path = file.display().to_string();
    let c = Cluster::start_with(2, &["--aclfile", &path, "--masteruser", "link", "--masterauth", "linkpw"]);
    let mut n0 = c.node(0).node.connect();
    // The default user really is refused the internal command.
    let refused = n0.run("CLUSTER PUBLISHLOCAL ch m");
    assert!(refused.starts_with("-NOPERM"), "{refused}");
    // PUBLISH on node 0 reaches a subscriber on node 1 through the bus.
    let mut sub = c.node(1).node.connect();
    assert_eq!(sub.run("SUBSCRIBE news"), "*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n");
    let mut got = false;
    for i in 0..50 {
        n0.run(&format!("PUBLISH news m{i}"));
        sub.stream.set_read_timeout(Some(Duration::from_millis(100))).expect("timeout");
        if let Ok(Value::Agg(_, Some(parts))) = sub.read_value() {
            assert_eq!(parts[0], Value::Blob(b'$', Some(b"message".to_vec())), "{parts:?}");
            assert_eq!(parts[2], Value::Blob(b'$', Some(format!("m{i}").into_bytes())));
            got = true;
            break;
        }
    }
    assert!(got, "no message crossed the bus as masteruser");
    // A slot with keys moves to node 1 over a link that logs in as `link`.
    let k = key_in_slot(42, "k");
    assert_eq!(n0.run(&format!("SET {k} v")), "+OK\r\n");
    let r = c.node(0).run(&format!("CLUSTER MIGRATESLOTS SLOTSRANGE 42 42 NODE {}", c.node(1).id));
    assert_eq!(r, "+OK\r\n");
    let job = wait_for(Duration::from_secs(60), "the export to end", || {
        migrations(c.node(0)).into_iter().rev().find(|j| {
            j["operation"] == "EXPORT" && ["success", "failed", "cancelled"].contains(&j["state"].as_str())
        })
    });
    assert_eq!(job["state"], "success", "{job:?}");
    assert_eq!(c.node(1).node.connect().run(&format!("GET {k}")), "$1\r\nv\r\n");
}
