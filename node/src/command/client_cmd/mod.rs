//! CLIENT subcommands: the running connection's own settings (ID, SETNAME, GETNAME, SETINFO,
//! REPLY, NO-EVICT, NO-TOUCH, HELP) here; introspection of every connection (LIST, INFO) in
//! `list`, CLIENT KILL in `kill`, and the client-side caching switches in `tracking`.

mod kill;
mod list;
mod tracking;

pub use list::write_client_info;

use bytes::Bytes;

use super::Handler;
use crate::exec::{Ctx, ReplyMode};

pub fn handler(name: &str) -> Option<Handler> {
    Some(match name {
        "client|id" => id,
        "client|setname" => setname,
        "client|getname" => getname,
        "client|setinfo" => setinfo,
        "client|reply" => reply,
        "client|no-evict" => no_evict,
        "client|no-touch" => no_touch,
        "client|capa" => capa,
        "client|help" => help,
        "client|list" => list::list,
        "client|info" => list::info,
        "client|kill" => kill::kill,
        "client|pause" => pause,
        "client|unpause" => unpause,
        "client|tracking" => tracking::tracking,
        "client|caching" => tracking::caching,
        "client|getredir" => tracking::getredir,
        "client|trackinginfo" => tracking::trackinginfo,
        _ => return None,
    })
}

/// The error for a client name with characters CLIENT LIST could not show.
pub const BAD_NAME: &str = "Client names cannot contain spaces, newlines or special characters.";

/// Valkey's `validateClientAttr`: only printable ASCII without spaces, so CLIENT LIST lines
/// can always be split on spaces.
pub fn valid_client_attr(v: &[u8]) -> bool {
    v.iter().all(|&b| (b'!'..=b'~').contains(&b))
}

/// CLIENT ID
fn id(ctx: &mut Ctx, _args: &[Bytes]) {
    let id = ctx.client().id;
    ctx.out.int(id as i64);
}

/// CLIENT SETNAME name (an empty name removes the name)
fn setname(ctx: &mut Ctx, args: &[Bytes]) {
    let name = &args[2];
    if !valid_client_attr(name) {
        ctx.out.err(BAD_NAME);
        return;
    }
    ctx.client().name = (!name.is_empty()).then(|| name.clone());
    ctx.out.ok();
}

/// CLIENT GETNAME
fn getname(ctx: &mut Ctx, _args: &[Bytes]) {
    match ctx.clients[ctx.me].st.name.as_ref() {
        Some(n) => ctx.out.bulk(n),
        None => ctx.out.null(),
    }
}

/// CLIENT SETINFO LIB-NAME|LIB-VER value (an empty value clears it)
fn setinfo(ctx: &mut Ctx, args: &[Bytes]) {
    let (attr, val) = (&args[2], &args[3]);
    let lib_name = attr.eq_ignore_ascii_case(b"lib-name");
    if !lib_name && !attr.eq_ignore_ascii_case(b"lib-ver") {
        let msg = format!("Unrecognized option '{}'", String::from_utf8_lossy(attr));
        ctx.out.err(&msg);
        return;
    }
    if !valid_client_attr(val) {
        let msg = format!(
            "{} cannot contain spaces, newlines or special characters.",
            String::from_utf8_lossy(attr)
        );
        ctx.out.err(&msg);
        return;
    }
    let v = (!val.is_empty()).then(|| val.clone());
    let c = ctx.client();
    if lib_name {
        c.lib_name = v;
    } else {
        c.lib_ver = v;
    }
    ctx.out.ok();
}

/// CLIENT REPLY ON|OFF|SKIP. The dispatcher applies the mode after the command, so OFF and
/// SKIP reply nothing.
fn reply(ctx: &mut Ctx, args: &[Bytes]) {
    let mode = &args[2];
    let c = ctx.client();
    if mode.eq_ignore_ascii_case(b"on") {
        // Valkey clears `reply_off` and `reply_skip_next`; a reply already being skipped (this
        // command follows CLIENT REPLY SKIP) stays skipped.
        if c.reply_mode != ReplyMode::Skip {
            c.reply_mode = ReplyMode::On;
        }
        ctx.out.ok();
    } else if mode.eq_ignore_ascii_case(b"off") {
        c.reply_mode = ReplyMode::Off;
    } else if mode.eq_ignore_ascii_case(b"skip") {
        if c.reply_mode != ReplyMode::Off {
            c.reply_mode = ReplyMode::SkipNext;
        }
    } else {
        ctx.syntax_error();
    }
}

/// Parses ON|OFF for the CLIENT NO-* switches, replying the syntax error otherwise.
fn on_off(ctx: &mut Ctx, arg: &[u8]) -> Option<bool> {
    if arg.eq_ignore_ascii_case(b"on") {
        Some(true)
    } else if arg.eq_ignore_ascii_case(b"off") {
        Some(false)
    } else {
        ctx.syntax_error();
        None
    }
}

/// CLIENT NO-EVICT ON|OFF
fn no_evict(ctx: &mut Ctx, args: &[Bytes]) {
    if let Some(v) = on_off(ctx, &args[2]) {
        ctx.client().no_evict = v;
        ctx.out.ok();
    }
}

/// CLIENT NO-TOUCH ON|OFF
/// CLIENT CAPA capability [...] (Valkey 8): `redirect` makes a standalone replica send this
/// client to its primary (`-REDIRECT host:port`) instead of serving it; others are ignored.
fn capa(ctx: &mut Ctx, args: &[Bytes]) {
    if args[2..].iter().any(|a| a.eq_ignore_ascii_case(b"redirect")) {
        ctx.client().capa_redirect = true;
    }
    ctx.out.ok();
}

fn no_touch(ctx: &mut Ctx, args: &[Bytes]) {
    if let Some(v) = on_off(ctx, &args[2]) {
        ctx.client().no_touch = v;
        ctx.out.ok();
    }
}

/// Valkey 8.0's CLIENT HELP text, between the usual header and footer.
const HELP: &[&str] = &[
    "CACHING (YES|NO)",
    "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
    "CAPA <option> [options...]",
    "    The client claims its some capability options. Options are:",
    "    * REDIRECT",
    "      The client can handle redirection during primary and replica failover in standalone mode.",
    "GETREDIR",
    "    Return the client ID we are redirecting to when tracking is enabled.",
    "GETNAME",
    "    Return the name of the current connection.",
    "ID",
    "    Return the ID of the current connection.",
    "INFO",
    "    Return information about the current client connection.",
    "KILL <ip:port>",
    "    Kill connection made from <ip:port>.",
    "KILL <option> <value> [<option> <value> [...]]",
    "    Kill connections. Options are:",
    "    * ADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made from the specified address",
    "    * LADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made to specified local address",
    "    * TYPE (NORMAL|PRIMARY|REPLICA|PUBSUB)",
    "      Kill connections by type.",
    "    * USER <username>",
    "      Kill connections authenticated by <username>.",
    "    * SKIPME (YES|NO)",
    "      Skip killing current connection (default: yes).",
    "    * ID <client-id>",
    "      Kill connections by client id.",
    "    * MAXAGE <maxage>",
    "      Kill connections older than the specified age.",
    "LIST [options ...]",
    "    Return information about client connections. Options:",
    "    * TYPE (NORMAL|PRIMARY|REPLICA|PUBSUB)",
    "      Return clients of specified type.",
    "UNPAUSE",
    "    Stop the current client pause, resuming traffic.",
    "PAUSE <timeout> [WRITE|ALL]",
    "    Suspend all, or just write, clients for <timeout> milliseconds.",
    "REPLY (ON|OFF|SKIP)",
    "    Control the replies sent to the current connection.",
    "SETNAME <name>",
    "    Assign the name <name> to the current connection.",
    "SETINFO <option> <value>",
    "    Set client meta attr. Options are:",
    "    * LIB-NAME: the client lib name.",
    "    * LIB-VER: the client lib version.",
    "UNBLOCK <clientid> [TIMEOUT|ERROR]",
    "    Unblock the specified blocked client.",
    "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
    "         [OPTIN] [OPTOUT] [NOLOOP]",
    "    Control server assisted client side caching.",
    "TRACKINGINFO",
    "    Report tracking status for the current connection.",
    "NO-EVICT (ON|OFF)",
    "    Protect current client connection from eviction.",
    "NO-TOUCH (ON|OFF)",
    "    Will not touch LRU/LFU stats when this mode is on.",
];

/// CLIENT HELP, framed as Valkey's `addReplyHelp` frames it.
fn help(ctx: &mut Ctx, _args: &[Bytes]) {
    let out = &mut *ctx.out;
    out.array(HELP.len() + 3);
    out.simple("CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:");
    for line in HELP {
        out.simple(line);
    }
    out.simple("HELP");
    out.simple("    Print this help.");
}

/// CLIENT PAUSE timeout [WRITE|ALL]
fn pause(ctx: &mut Ctx, args: &[Bytes]) {
    let all = match args.get(3) {
        None => true,
        Some(m) if m.eq_ignore_ascii_case(b"write") => false,
        Some(m) if m.eq_ignore_ascii_case(b"all") => true,
        Some(_) => return ctx.out.err("CLIENT PAUSE mode must be WRITE or ALL"),
    };
    let Some(ms) = crate::util::parse_i64(&args[2]) else {
        return ctx.out.err("timeout is not an integer or out of range");
    };
    if ms < 0 {
        return ctx.out.err("timeout is negative");
    }
    let now = std::time::Instant::now();
    // A huge timeout means "until UNPAUSE": capped where Instant arithmetic cannot overflow.
    let until = now
        .checked_add(std::time::Duration::from_millis(ms as u64))
        .unwrap_or(now + std::time::Duration::from_secs(100 * 365 * 86_400));
    crate::exec::pause::start(ctx.srv, until, all);
    ctx.out.ok();
}

/// CLIENT UNPAUSE
fn unpause(ctx: &mut Ctx, _args: &[Bytes]) {
    crate::exec::pause::end(ctx.srv);
    ctx.out.ok();
}

#[cfg(test)]
mod tests {
    use crate::exec::testing::Harness;

    #[test]
    fn id_and_names() {
        let mut h = Harness::default();
        assert_eq!(h.run("CLIENT ID"), ":1\r\n");
        assert_eq!(h.run("client getname"), "$-1\r\n");
        assert_eq!(h.run("CLIENT SETNAME app-1"), "+OK\r\n");
        assert_eq!(h.run("CLIENT GETNAME"), "$5\r\napp-1\r\n");
        assert_eq!(
            h.run_as(0, &[b"CLIENT", b"SETNAME", b"a b"]),
            b"-ERR Client names cannot contain spaces, newlines or special characters.\r\n"
        );
        assert_eq!(
            h.run_as(0, &[b"CLIENT", b"SETNAME", b"a\nb"]),
            b"-ERR Client names cannot contain spaces, newlines or special characters.\r\n"
        );
        assert_eq!(
            h.run_as(0, &[b"CLIENT", b"SETNAME", b"\xc3\xa9"]),
            b"-ERR Client names cannot contain spaces, newlines or special characters.\r\n"
        );
        assert_eq!(h.run("CLIENT GETNAME"), "$5\r\napp-1\r\n");
        assert_eq!(h.run_as(0, &[b"CLIENT", b"SETNAME", b""]), b"+OK\r\n");
        assert_eq!(h.run("CLIENT GETNAME"), "$-1\r\n");
        assert_eq!(
            h.run("CLIENT SETNAME"),
            "-ERR wrong number of arguments for 'client|setname' command\r\n"
        );
        let other = h.add_client();
        assert_eq!(h.run_as(other, &[b"CLIENT", b"ID"]), b":2\r\n");
    }

    #[test]
    fn setinfo() {
        let mut h = Harness::default();
        assert_eq!(h.run("CLIENT SETINFO lib-name redis-py"), "+OK\r\n");
        assert_eq!(h.run("CLIENT SETINFO LIB-VER 5.0.1"), "+OK\r\n");
        assert_eq!(h.run("CLIENT SETINFO foo bar"), "-ERR Unrecognized option 'foo'\r\n");
        assert_eq!(
            h.run_as(0, &[b"CLIENT", b"SETINFO", b"LIB-NAME", b"a b"]),
            b"-ERR LIB-NAME cannot contain spaces, newlines or special characters.\r\n"
        );
        let st = &h.clients[0].st;
        assert_eq!(st.lib_name.as_deref(), Some(&b"redis-py"[..]));
        assert_eq!(st.lib_ver.as_deref(), Some(&b"5.0.1"[..]));
        assert_eq!(h.run_as(0, &[b"CLIENT", b"SETINFO", b"lib-ver", b""]), b"+OK\r\n");
        assert!(h.clients[0].st.lib_ver.is_none());
    }

    #[test]
    fn reply_modes() {
        let mut h = Harness::default();
        assert_eq!(h.run("CLIENT REPLY ON"), "+OK\r\n");
        assert_eq!(h.run("CLIENT REPLY maybe"), "-ERR syntax error\r\n");
        assert_eq!(h.run("CLIENT REPLY OFF"), "");
        assert_eq!(h.run("ECHO v"), "");
        assert_eq!(h.run("CLIENT REPLY SKIP"), "");
        assert_eq!(h.run("PING"), "");
        assert_eq!(h.run("CLIENT REPLY ON"), "+OK\r\n");
        assert_eq!(h.run("ECHO v"), "$1\r\nv\r\n");
        assert_eq!(h.run("CLIENT REPLY SKIP"), "");
        assert_eq!(h.run("ECHO v"), "");
        assert_eq!(h.run("ECHO v"), "$1\r\nv\r\n");
        // The command right after SKIP is skipped even if it is CLIENT REPLY ON.
        assert_eq!(h.run("CLIENT REPLY SKIP"), "");
        assert_eq!(h.run("CLIENT REPLY ON"), "");
        assert_eq!(h.run("PING"), "+PONG\r\n");
    }

    #[test]
    fn no_evict_no_touch() {
        let mut h = Harness::default();
        assert_eq!(h.run("CLIENT NO-EVICT on"), "+OK\r\n");
        assert_eq!(h.run("CLIENT NO-TOUCH ON"), "+OK\r\n");
        assert!(h.clients[0].st.no_evict && h.clients[0].st.no_touch);
        assert_eq!(h.run("CLIENT NO-EVICT x"), "-ERR syntax error\r\n");
        assert_eq!(h.run("CLIENT NO-TOUCH x"), "-ERR syntax error\r\n");
        assert_eq!(h.run("CLIENT NO-EVICT off"), "+OK\r\n");
        assert_eq!(h.run("CLIENT NO-TOUCH Off"), "+OK\r\n");
        assert!(!h.clients[0].st.no_evict && !h.clients[0].st.no_touch);
    }

    #[test]
    fn help_and_unknown() {
        let mut h = Harness::default();
        let r = h.run("client help");
        assert!(r.starts_with(&format!(
            "*{}\r\n+CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:\r\n+CACHING (YES|NO)\r\n",
            super::HELP.len() + 3
        )));
        assert!(r.ends_with("+HELP\r\n+    Print this help.\r\n"));
        assert_eq!(h.run("CLIENT foo"), "-ERR unknown subcommand 'foo'. Try CLIENT HELP.\r\n");
        assert_eq!(h.run("CLIENT"), "-ERR wrong number of arguments for 'client' command\r\n");
    }
}
