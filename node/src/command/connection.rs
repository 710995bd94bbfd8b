//! Connection commands: PING, ECHO, HELLO, AUTH, SELECT, QUIT and RESET.
//!
//! AUTH and HELLO authenticate against the ACL users (see `acl`): `AUTH <password>` is
//! `AUTH default <password>`, refused while the default user is `nopass` (no `requirepass`),
//! exactly as Valkey. Failed attempts are written to the ACL log.

use bytes::Bytes;

use super::Handler;
use crate::exec::{Ctx, ReplyMode};

pub fn handler(name: &str) -> Option<Handler> {
    Some(match name {
        "ping" => ping,
        "echo" => echo,
        "hello" => hello,
        "auth" => auth,
        "select" => select,
        "quit" => quit,
        "reset" => reset,
        _ => return None,
    })
}

/// `-WRONGPASS` as Valkey's `addAuthErrReply` words it.
const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

/// PING [message]
fn ping(ctx: &mut Ctx, args: &[Bytes]) {
    let st = ctx.client();
    if st.subs.is_some() && !st.resp3 {
        // RESP2 subscriber mode: a reply shaped like a message, `["pong", message or ""]`.
        ctx.out.array(2);
        ctx.out.bulk(b"pong");
        ctx.out.bulk(args.get(1).map_or(&b""[..], |m| &m[..]));
        return;
    }
    match args {
        [_] => ctx.out.simple("PONG"),
        [_, msg] => ctx.out.bulk(msg),
        _ => ctx.wrong_arity(),
    }
}

/// ECHO message
fn echo(ctx: &mut Ctx, args: &[Bytes]) {
    ctx.out.bulk(&args[1]);
}

/// SELECT index
fn select(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(id) = arg_int(ctx, &args[1]) else {
        return;
    };
    if id != 0 && crate::command::keys::single_cluster_db(ctx.srv) {
        ctx.out.err("SELECT is not allowed in cluster mode");
        return;
    }
    match usize::try_from(id) {
        Ok(i) if i < ctx.srv.dbs.len() => {
            ctx.client().db = i;
            ctx.out.ok();
        }
        _ => ctx.out.err("DB index is out of range"),
    }
}

/// Valkey's `getIntFromObjectOrReply` without a custom message: not an integer, or outside
/// the C `int` range, each with its own error.
fn arg_int(ctx: &mut Ctx, arg: &[u8]) -> Option<i32> {
    let v = crate::util::parse_i64(arg);
    let Some(v) = v else {
        ctx.not_integer();
        return None;
    };
    match i32::try_from(v) {
        Ok(v) => Some(v),
        Err(_) => {
            ctx.out.err(&format!("value is out of range, value must between {} and {}", i32::MIN, i32::MAX));
            None
        }
    }
}

/// QUIT: reply, then close once the reply is written.
fn quit(ctx: &mut Ctx, _args: &[Bytes]) {
    ctx.out.ok();
    ctx.client().close_after_reply = true;
}

/// RESET: back to the state of a new connection (lib-name/lib-ver are kept, as in Valkey).
fn reset(ctx: &mut Ctx, _args: &[Bytes]) {
    let nopass = !ctx.srv.acl.auth_required();
    let me = ctx.me;
    ctx.srv.pubsub.drop_client(&mut ctx.clients[me].st, me);
    ctx.srv.monitors.remove(me);
    ctx.clients[me].st.monitor = false;
    crate::command::txn::discard_transaction(ctx.srv, &mut ctx.clients[me].st, me);
    crate::exec::tracking::disable(ctx.srv, &mut ctx.clients[me].st, me);
    let c = ctx.client();
    c.db = 0;
    c.resp3 = false;
    c.name = None;
    c.authenticated = nopass;
    c.set_user(crate::acl::DEFAULT_USER, b"default");
    c.no_evict = false;
    c.no_touch = false;
    // Valkey clears `reply_off` and `reply_skip_next`, but not `reply_skip`: a RESET that
    // follows CLIENT REPLY SKIP still has its own reply skipped.
    if c.reply_mode != ReplyMode::Skip {
        c.reply_mode = ReplyMode::On;
    }
    ctx.out.resp3 = false;
    ctx.out.simple("RESET");
}

/// AUTH [username] password
fn auth(ctx: &mut Ctx, args: &[Bytes]) {
    let (user, pass): (&[u8], &[u8]) = match args {
        [_, pass] => {
            if ctx.srv.acl.user(crate::acl::DEFAULT_USER).nopass {
                ctx.out.err(
                    "AUTH <password> called without any password configured for the default \
                     user. Are you sure your configuration is correct?",
                );
                return;
            }
            (b"default", pass)
        }
        [_, user, pass] => (user, pass),
        _ => {
            ctx.syntax_error();
            return;
        }
    };
    if authenticate(ctx, &args[0], user, pass) {
        ctx.out.ok();
    } else {
        ctx.out.error(WRONGPASS);
    }
}

/// Checks a username/password pair (Valkey's `ACLAuthenticateUser`); on success the client
/// runs as that user. A failure is logged (reason `auth`, object the command name as sent) and
/// leaves an already authenticated client as it was.
fn authenticate(ctx: &mut Ctx, cmd: &[u8], user: &[u8], pass: &[u8]) -> bool {
    if let Some(id) = ctx.srv.acl.check_credentials(user, pass) {
        let c = ctx.client();
        c.set_user(id, user);
        c.authenticated = true;
        return true;
    }
    let context = if ctx.client().multi.is_some() {
        crate::acl::log::Context::Multi
    } else {
        crate::acl::log::Context::Toplevel
    };
    let me = ctx.me;
    crate::acl::gate::log_denial(
        ctx.srv,
        ctx.clients,
        me,
        crate::acl::Denied::Auth,
        context,
        cmd.to_vec(),
        user.to_vec(),
    );
    false
}

/// HELLO [protover [AUTH username password] [SETNAME clientname]]
fn hello(ctx: &mut Ctx, args: &[Bytes]) {
    let mut ver = None;
    if let Some(v) = args.get(1) {
        match crate::util::parse_i64(v) {
            None => {
                ctx.out.err("Protocol version is not an integer or out of range");
                return;
            }
            Some(v @ 2..=3) => ver = Some(v),
            Some(_) => {
                ctx.out.error("NOPROTO unsupported protocol version");
                return;
            }
        }
    }
    let mut creds = None;
    let mut name = None;
    let mut j = 2;
    while j < args.len() {
        let more = args.len() - 1 - j;
        let opt = &args[j];
        if opt.eq_ignore_ascii_case(b"AUTH") && more >= 2 {
            creds = Some((&args[j + 1], &args[j + 2]));
            j += 2;
        } else if opt.eq_ignore_ascii_case(b"SETNAME") && more >= 1 {
            let n = &args[j + 1];
            if !super::client_cmd::valid_client_attr(n) {
                ctx.out.err(super::client_cmd::BAD_NAME);
                return;
            }
            name = Some(n);
            j += 1;
        } else {
            let msg = format!("Syntax error in HELLO option '{}'", String::from_utf8_lossy(opt));
            ctx.out.err(&msg);
            return;
        }
        j += 1;
    }
    if let Some((user, pass)) = creds {
        if !authenticate(ctx, &args[0], user, pass) {
            ctx.out.error(WRONGPASS);
            return;
        }
    }
    if !ctx.client().authenticated {
        ctx.out.error(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the \
             HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and \
             select the RESP protocol version at the same time",
        );
        return;
    }
    let c = ctx.client();
    if let Some(n) = name {
        c.name = (!n.is_empty()).then(|| n.clone());
    }
    if let Some(v) = ver {
        c.resp3 = v == 3;
    }
    let (resp3, id) = (c.resp3, c.id);
    ctx.out.resp3 = resp3;
    let out = &mut *ctx.out;
    out.map(7);
    out.bulk(b"server");
    out.bulk(b"redis");
    out.bulk(b"version");
    out.bulk(crate::REDIS_VERSION.as_bytes());
    out.bulk(b"proto");
    out.int(if resp3 { 3 } else { 2 });
    out.bulk(b"id");
    out.int(id as i64);
    out.bulk(b"mode");
    out.bulk(if ctx.srv.config.get_bool("cluster-enabled") { b"cluster".as_slice() } else { b"standalone" });
    out.bulk(b"role");
    out.bulk(b"master");
    out.bulk(b"modules");
    out.array(0);
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use crate::exec::testing::Harness;

    fn with_password(pw: &str) -> Harness {
        let mut cfg = Config::default();
        if let Err(e) = cfg.load_str(&format!("requirepass {pw}")) {
            panic!("config: {e}");
        }
        Harness::new(cfg)
    }

    #[test]
    fn ping_and_echo() {
        let mut h = Harness::default();
        assert_eq!(h.run("PING"), "+PONG\r\n");
        assert_eq!(h.run("ping hello"), "$5\r\nhello\r\n");
        assert_eq!(h.run("PING a b"), "-ERR wrong number of arguments for 'ping' command\r\n");
        assert_eq!(h.run("ECHO hi"), "$2\r\nhi\r\n");
        assert_eq!(h.run_as(0, &[b"ECHO", b""]), b"$0\r\n\r\n");
        assert_eq!(h.run_as(0, &[b"PING", b"\x00\xff"]), b"$2\r\n\x00\xff\r\n");
        assert_eq!(h.run("ECHO"), "-ERR wrong number of arguments for 'echo' command\r\n");
    }

    #[test]
    fn select_bounds_and_errors() {
        let mut h = Harness::default();
        assert_eq!(h.run("SELECT 15"), "+OK\r\n");
        assert_eq!(h.clients[0].st.db, 15);
        assert_eq!(h.run("SELECT 16"), "-ERR DB index is out of range\r\n");
        assert_eq!(h.run("SELECT -1"), "-ERR DB index is out of range\r\n");
        assert_eq!(h.run("SELECT 1.5"), "-ERR value is not an integer or out of range\r\n");
        assert_eq!(
            h.run("SELECT 99999999999"),
            "-ERR value is out of range, value must between -2147483648 and 2147483647\r\n"
        );
        assert_eq!(h.run("SELECT 99999999999999999999"), "-ERR value is not an integer or out of range\r\n");
        assert_eq!(h.clients[0].st.db, 15);
    }

    #[test]
    fn auth_without_password() {
        let mut h = Harness::default();
        assert_eq!(
            h.run("AUTH x"),
            "-ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?\r\n"
        );
        assert_eq!(h.run("AUTH default anything"), "+OK\r\n");
        assert_eq!(h.run("AUTH bob x"), "-WRONGPASS invalid username-password pair or user is disabled.\r\n");
        assert_eq!(h.run("AUTH a b c"), "-ERR syntax error\r\n");
    }

    #[test]
    fn auth_with_password() {
        let mut h = with_password("s3cret");
        assert_eq!(h.run("ECHO k"), "-NOAUTH Authentication required.\r\n");
        assert_eq!(h.run("AUTH wrong"), "-WRONGPASS invalid username-password pair or user is disabled.\r\n");
        assert_eq!(h.run("AUTH s3cre"), "-WRONGPASS invalid username-password pair or user is disabled.\r\n");
        assert_eq!(
            h.run("AUTH s3cret2"),
            "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
        );
        assert_eq!(h.run("PING"), "-NOAUTH Authentication required.\r\n");
        assert_eq!(h.run("AUTH s3cret"), "+OK\r\n");
        assert_eq!(h.run("PING"), "+PONG\r\n");
        // A failed attempt does not log an authenticated client out.
        assert_eq!(
            h.run("AUTH default nope"),
            "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
        );
        assert_eq!(h.run("PING"), "+PONG\r\n");
        // RESET logs out when a password is set.
        assert_eq!(h.run("RESET"), "+RESET\r\n");
        assert_eq!(h.run("PING"), "-NOAUTH Authentication required.\r\n");
        assert_eq!(h.run("AUTH default s3cret"), "+OK\r\n");
    }

    #[test]
    fn hello_errors() {
        let mut h = Harness::default();
        assert_eq!(h.run("HELLO 4"), "-NOPROTO unsupported protocol version\r\n");
        assert_eq!(h.run("HELLO 1"), "-NOPROTO unsupported protocol version\r\n");
        assert_eq!(h.run("HELLO abc"), "-ERR Protocol version is not an integer or out of range\r\n");
        assert_eq!(h.run("HELLO 3 SETNAME"), "-ERR Syntax error in HELLO option 'SETNAME'\r\n");
        assert_eq!(h.run("HELLO 3 AUTH default"), "-ERR Syntax error in HELLO option 'AUTH'\r\n");
        assert_eq!(h.run("HELLO 3 foo"), "-ERR Syntax error in HELLO option 'foo'\r\n");
        assert_eq!(
            h.run_as(0, &[b"HELLO", b"3", b"SETNAME", b"a b"]),
            b"-ERR Client names cannot contain spaces, newlines or special characters.\r\n"
        );
        assert_eq!(
            h.run("HELLO 3 AUTH bob x"),
            "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
        );
        assert!(!h.clients[0].st.resp3);
    }

    #[test]
    fn hello_switches_protocol() {
        let mut h = Harness::default();
        let r2 = h.run("HELLO");
        assert!(r2.starts_with("*14\r\n$6\r\nserver\r\n$5\r\nredis\r\n"), "{r2}");
        assert!(r2.ends_with("$7\r\nmodules\r\n*0\r\n"), "{r2}");
        assert!(r2.contains("$5\r\nproto\r\n:2\r\n$2\r\nid\r\n:1\r\n"), "{r2}");
        let r3 = h.run("HELLO 3 SETNAME app");
        assert!(r3.starts_with("%7\r\n"), "{r3}");
        assert!(r3.contains("$5\r\nproto\r\n:3\r\n"), "{r3}");
        assert!(r3.contains("$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n"));
        assert!(h.clients[0].st.resp3);
        assert_eq!(h.clients[0].st.name.as_deref(), Some(&b"app"[..]));
        assert_eq!(h.run_as(0, &[b"CLIENT", b"SETNAME", b""]), b"+OK\r\n");
        assert_eq!(h.run("CLIENT GETNAME"), "_\r\n");
        assert!(h.run("HELLO 2").starts_with("*14\r\n"));
        assert_eq!(h.run("CLIENT GETNAME"), "$-1\r\n");
    }

    #[test]
    fn hello_auth() {
        let mut h = with_password("pw");
        assert_eq!(
            h.run("HELLO 3"),
            "-NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time\r\n"
        );
        assert_eq!(
            h.run("HELLO 3 AUTH default bad"),
            "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
        );
        assert!(!h.clients[0].st.resp3);
        assert!(h.run("HELLO 3 AUTH default pw SETNAME n").starts_with("%7\r\n"));
        assert!(h.clients[0].st.authenticated);
        assert_eq!(h.run("PING"), "+PONG\r\n");
    }

    #[test]
    fn quit_closes_after_reply() {
        let mut h = Harness::default();
        assert_eq!(h.run("QUIT"), "+OK\r\n");
        assert!(h.clients[0].st.close_after_reply);
    }

    #[test]
    fn reset_restores_defaults() {
        let mut h = Harness::default();
        h.run("SELECT 3");
        h.run("HELLO 3");
        h.run("CLIENT SETNAME foo");
        h.run("CLIENT SETINFO LIB-NAME lib");
        h.run("CLIENT NO-EVICT on");
        h.run("CLIENT NO-TOUCH on");
        assert_eq!(h.run("RESET"), "+RESET\r\n");
        let st = &h.clients[0].st;
        assert_eq!(st.db, 0);
        assert!(!st.resp3 && !st.no_evict && !st.no_touch);
        assert!(st.name.is_none());
        assert_eq!(st.lib_name.as_deref(), Some(&b"lib"[..]));
        assert_eq!(h.run("CLIENT GETNAME"), "$-1\r\n");
        // RESET turns replies back on.
        assert_eq!(h.run("CLIENT REPLY OFF"), "");
        assert_eq!(h.run("PING"), "");
        assert_eq!(h.run("RESET"), "+RESET\r\n");
        assert_eq!(h.run("PING"), "+PONG\r\n");
        // ...but a RESET whose reply is being skipped stays skipped.
        assert_eq!(h.run("CLIENT REPLY SKIP"), "");
        assert_eq!(h.run("RESET"), "");
        assert_eq!(h.run("PING"), "+PONG\r\n");
    }
}
