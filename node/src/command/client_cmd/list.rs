//! CLIENT LIST and CLIENT INFO, and the one-line client description they share (also meant for
//! logs and other introspection), in Valkey 8.0's exact field order.

use std::fmt::Write;
use std::time::Instant;

use bytes::Bytes;

use crate::exec::{Client, Ctx};

/// Size of a reply buffer as Valkey reports it (`rbs`, `rbp`): `PROTO_REPLY_CHUNK_BYTES`.
const REPLY_BUF: usize = 16 * 1024;
/// Rough per-client overhead counted in `tot-mem`, besides buffers.
const CLIENT_OVERHEAD: usize = std::mem::size_of::<Client>() + 512;

/// Client types of CLIENT LIST TYPE / CLIENT KILL TYPE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientType {
    Normal,
    Replica,
    Primary,
    PubSub,
}

impl ClientType {
    /// Valkey's `getClientTypeByName` (case-insensitive, with the old aliases).
    pub fn parse(name: &[u8]) -> Option<ClientType> {
        let eq = |s: &str| name.eq_ignore_ascii_case(s.as_bytes());
        if eq("normal") {
            Some(ClientType::Normal)
        } else if eq("slave") || eq("replica") {
            Some(ClientType::Replica)
        } else if eq("master") || eq("primary") {
            Some(ClientType::Primary)
        } else if eq("pubsub") {
            Some(ClientType::PubSub)
        } else {
            None
        }
    }

    /// The type of a connected client: `pubsub` while it has subscriptions (Valkey's
    /// `getClientType`, whatever the protocol), `master`/`replica` for replication links,
    /// otherwise `normal`.
    pub fn of(c: &Client) -> ClientType {
        if c.st.master {
            ClientType::Primary
        } else if c.st.replica {
            ClientType::Replica
        } else if c.st.subs.is_some() {
            ClientType::PubSub
        } else {
            ClientType::Normal
        }
    }
}

/// Appends the CLIENT LIST line of `c` (without the trailing newline) to `out`.
///
/// `running` is the argument vector when `c` is the client executing the current command: it
/// counts as `argv-mem`, and the command is not yet included in `tot-cmds`, as in Valkey.
/// Figures kept by the I/O half (query buffer, pending output, byte counters) read as 0 while
/// an I/O thread holds it.
pub fn write_client_info(out: &mut String, c: &Client, now: Instant, running: Option<&[Bytes]>) {
    let st = &c.st;
    let mut flags = String::with_capacity(4);
    if st.master {
        flags.push('M');
    }
    if st.monitor {
        flags.push('O');
    } else if st.replica {
        flags.push('S');
    }
    if st.subs.is_some() {
        flags.push('P');
    }
    if st.multi.is_some() {
        flags.push('x');
    }
    if let Some(t) = st.tracking.as_deref() {
        flags.push('t');
        if t.broken_redirect {
            flags.push('R');
        }
        if t.bcast {
            flags.push('B');
        }
    }
    if st.dirty_cas {
        flags.push('d');
    }
    if st.close_after_reply {
        flags.push('c');
    }
    if st.close_asap {
        flags.push('A');
    }
    if st.no_evict {
        flags.push('e');
    }
    if st.no_touch {
        flags.push('T');
    }
    if flags.is_empty() {
        flags.push('N');
    }
    let (qbuf, qbuf_cap, omem, net_in, net_out) = match c.io.as_deref() {
        Some(io) => {
            (io.query_buffer_len(), io.query_buffer_cap(), io.pending_out(), io.bytes_read, io.bytes_written)
        }
        None => (0, 0, 0, 0, 0),
    };
    let omem = omem + c.pending_out_bytes() - c.io.as_ref().map_or(0, |io| io.pending_out());
    let argv_mem = running.map_or(0, |a| a.iter().map(Bytes::len).sum());
    let tot_mem = qbuf_cap + REPLY_BUF + omem + argv_mem + CLIENT_OVERHEAD;
    let events = if omem > 0 { "rw" } else { "r" };
    let tot_cmds = st.tot_cmds.saturating_sub(running.is_some() as u64);
    let name = st.name.as_deref().map(String::from_utf8_lossy);
    let lib_name = st.lib_name.as_deref().map(String::from_utf8_lossy);
    let lib_ver = st.lib_ver.as_deref().map(String::from_utf8_lossy);
    let multi = st.multi.as_ref().map_or(-1, |m| m.commands.len() as i64);
    let multi_mem = st.multi.as_ref().map_or(0, |m| m.mem);
    let watch = st.watched.len();
    let age = now.saturating_duration_since(st.created).as_secs();
    let (sub, psub, ssub) =
        st.subs.as_ref().map_or((0, 0, 0), |s| (s.channels.len(), s.patterns.len(), s.shard.len()));
    let idle = now.saturating_duration_since(st.last_interaction).as_secs();
    // Writing to a String cannot fail.
    let _ = write!(
        out,
        "id={} addr={} laddr={} fd={} name={} age={age} idle={idle} flags={flags} db={} \
         sub={sub} psub={psub} ssub={ssub} multi={multi} watch={watch} qbuf={qbuf} qbuf-free={} argv-mem={argv_mem} \
         multi-mem={multi_mem} rbs={REPLY_BUF} rbp={REPLY_BUF} obl=0 oll=0 omem={omem} \
         tot-mem={tot_mem} events={events} cmd={} user={} redir={} resp={} \
         lib-name={} lib-ver={} tot-net-in={net_in} tot-net-out={net_out} tot-cmds={tot_cmds}",
        st.id,
        st.addr,
        st.laddr,
        st.fd,
        name.as_deref().unwrap_or(""),
        st.db,
        qbuf_cap.saturating_sub(qbuf),
        st.last_cmd,
        String::from_utf8_lossy(&st.user_name),
        st.tracking.as_deref().map_or(-1, |t| t.redirect as i64),
        if st.resp3 { 3 } else { 2 },
        lib_name.as_deref().unwrap_or(""),
        lib_ver.as_deref().unwrap_or(""),
    );
}

/// CLIENT INFO: the running client's line.
pub fn info(ctx: &mut Ctx, args: &[Bytes]) {
    let mut s = String::with_capacity(512);
    write_client_info(&mut s, &ctx.clients[ctx.me], Instant::now(), Some(args));
    s.push('\n');
    ctx.out.verbatim(s.as_bytes(), "txt");
}

/// CLIENT LIST [TYPE type] | [ID id ...]
pub fn list(ctx: &mut Ctx, args: &[Bytes]) {
    let mut ty = None;
    let mut ids: Option<Vec<u64>> = None;
    if args.len() == 4 && args[2].eq_ignore_ascii_case(b"type") {
        match ClientType::parse(&args[3]) {
            Some(t) => ty = Some(t),
            None => {
                let msg = format!("Unknown client type '{}'", String::from_utf8_lossy(&args[3]));
                ctx.out.err(&msg);
                return;
            }
        }
    } else if args.len() > 3 && args[2].eq_ignore_ascii_case(b"id") {
        let mut v = Vec::with_capacity(args.len() - 3);
        for a in &args[3..] {
            match crate::util::parse_i64(a) {
                Some(id) => v.push(id as u64),
                None => {
                    ctx.out.err("Invalid client ID");
                    return;
                }
            }
        }
        ids = Some(v);
    } else if args.len() != 2 {
        ctx.syntax_error();
        return;
    }

    let now = Instant::now();
    let me = ctx.me;
    let line = |s: &mut String, i: usize, c: &Client| {
        write_client_info(s, c, now, (i == me).then_some(args));
        s.push('\n');
    };
    let mut s = String::new();
    match ids {
        // With IDs, clients come in the order asked for (repeats included), as in Valkey.
        Some(ids) => {
            for id in ids {
                if let Some((i, c)) = ctx.clients.iter().find(|(_, c)| c.st.id == id && !c.st.close_asap) {
                    line(&mut s, i, c);
                }
            }
        }
        // Otherwise in connection order, which is id order.
        None => {
            let mut all: Vec<(usize, &Client)> = ctx
                .clients
                .iter()
                .filter(|(_, c)| !c.st.close_asap && ty.is_none_or(|t| ClientType::of(c) == t))
                .collect();
            all.sort_unstable_by_key(|(_, c)| c.st.id);
            s.reserve(all.len() * 400);
            for (i, c) in all {
                line(&mut s, i, c);
            }
        }
    }
    ctx.out.verbatim(s.as_bytes(), "txt");
}

#[cfg(test)]
mod tests {
    use crate::exec::testing::Harness;

    /// The verbatim/bulk payload of a reply.
    fn payload(r: &str) -> &str {
        let start = r.find("\r\n").map_or(0, |i| i + 2);
        &r[start..r.len() - 2]
    }

    fn field<'a>(line: &'a str, name: &str) -> &'a str {
        line.trim_end()
            .split(' ')
            .find_map(|f| f.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
            .unwrap_or("<missing>")
    }

    #[test]
    fn info_line_format() {
        let mut h = Harness::default();
        h.run("SELECT 2");
        h.run("CLIENT SETNAME me");
        let r = h.run("CLIENT INFO");
        let line = payload(&r);
        assert!(line.ends_with('\n'));
        let names: Vec<&str> =
            line.trim_end().split(' ').map(|f| f.split('=').next().unwrap_or("")).collect();
        assert_eq!(
            names,
            [
                "id",
                "addr",
                "laddr",
                "fd",
                "name",
                "age",
                "idle",
                "flags",
                "db",
                "sub",
                "psub",
                "ssub",
                "multi",
                "watch",
                "qbuf",
                "qbuf-free",
                "argv-mem",
                "multi-mem",
                "rbs",
                "rbp",
                "obl",
                "oll",
                "omem",
                "tot-mem",
                "events",
                "cmd",
                "user",
                "redir",
                "resp",
                "lib-name",
                "lib-ver",
                "tot-net-in",
                "tot-net-out",
                "tot-cmds"
            ]
        );
        assert_eq!(field(line, "id"), "1");
        assert_eq!(field(line, "addr"), "127.0.0.1:1");
        assert_eq!(field(line, "name"), "me");
        assert_eq!(field(line, "flags"), "N");
        assert_eq!(field(line, "db"), "2");
        assert_eq!(field(line, "cmd"), "client|info");
        assert_eq!(field(line, "argv-mem"), "10");
        assert_eq!(field(line, "tot-cmds"), "2");
        assert_eq!(field(line, "resp"), "2");
        assert_eq!(field(line, "lib-name"), "");
    }

    #[test]
    fn info_is_verbatim_in_resp3() {
        let mut h = Harness::default();
        h.run("HELLO 3");
        let r = h.run("CLIENT INFO");
        assert!(r.starts_with('='), "{r}");
        assert!(r.contains("txt:id=1 "), "{r}");
        assert!(r.contains(" resp=3 "), "{r}");
    }

    #[test]
    fn flags() {
        let mut h = Harness::default();
        h.run("CLIENT NO-EVICT on");
        h.run("CLIENT NO-TOUCH on");
        let r = h.run("CLIENT INFO");
        assert_eq!(field(payload(&r), "flags"), "eT");
    }

    #[test]
    fn list_all_by_type_and_id() {
        let mut h = Harness::default();
        let b = h.add_client();
        h.run_as(b, &[b"CLIENT", b"SETNAME", b"second"]);
        let r = h.run("CLIENT LIST");
        let lines: Vec<&str> = payload(&r).lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("id=1 "));
        assert!(lines[1].starts_with("id=2 "));
        assert_eq!(field(lines[1], "name"), "second");
        assert_eq!(field(lines[1], "cmd"), "client|setname");
        assert_eq!(field(lines[0], "cmd"), "client|list");

        let r = h.run("CLIENT LIST TYPE normal");
        assert_eq!(payload(&r).lines().count(), 2);
        assert_eq!(h.run("CLIENT LIST TYPE pubsub"), "$0\r\n\r\n");
        assert_eq!(h.run("CLIENT LIST TYPE replica"), "$0\r\n\r\n");
        assert_eq!(h.run("CLIENT LIST TYPE master"), "$0\r\n\r\n");
        assert_eq!(h.run("CLIENT LIST TYPE foo"), "-ERR Unknown client type 'foo'\r\n");

        let r = h.run("CLIENT LIST ID 2 99 1 2");
        let ids: Vec<&str> = payload(&r).lines().map(|l| field(l, "id")).collect();
        assert_eq!(ids, ["2", "1", "2"]);
        assert_eq!(h.run("CLIENT LIST ID 99"), "$0\r\n\r\n");
        assert_eq!(h.run("CLIENT LIST ID x"), "-ERR Invalid client ID\r\n");
        assert_eq!(h.run("CLIENT LIST ID"), "-ERR syntax error\r\n");
        assert_eq!(h.run("CLIENT LIST TYPE"), "-ERR syntax error\r\n");
        assert_eq!(h.run("CLIENT LIST foo bar"), "-ERR syntax error\r\n");
        assert_eq!(h.run("CLIENT LIST TYPE normal ID 1"), "-ERR syntax error\r\n");
    }
}
