//! The replication commands a primary answers: REPLCONF, PSYNC, SYNC, ROLE, WAIT, and the
//! INFO replication section, with Valkey 8's replies and errors.

use std::fmt::Write as _;

use bytes::Bytes;

use super::primary::{self, LinkState};
use crate::exec::Ctx;

pub fn handler(name: &str) -> Option<crate::command::Handler> {
    Some(match name {
        "replconf" => replconf,
        "psync" => psync,
        "sync" => sync,
        "role" => role,
        "wait" => wait,
        _ => return None,
    })
}

/// REPLCONF <option> <value> [<option> <value> ...]
fn replconf(ctx: &mut Ctx, args: &[Bytes]) {
    if args.len().is_multiple_of(2) {
        return ctx.wrong_arity();
    }
    let id = ctx.client().id;
    let me = ctx.me;
    let mut j = 1;
    while j < args.len() {
        let (opt, val) = (&args[j], &args[j + 1]);
        let lower = opt.to_ascii_lowercase();
        match lower.as_slice() {
            b"listening-port" => {
                let Some(port) = ctx.arg_i64(val) else { return };
                ctx.srv.repl.handshakes.entry(id).or_default().0 = port.clamp(0, 65535) as u16;
            }
            b"capa" => {
                if val.eq_ignore_ascii_case(b"eof") {
                    ctx.srv.repl.handshakes.entry(id).or_default().1 = true;
                }
            }
            b"ack" | b"fack" => {
                // A replica's acknowledgement: never answered.
                if lower == b"ack" {
                    if let Some(off) = crate::util::parse_i64(val).filter(|&o| o >= 0) {
                        primary::ack(ctx.srv, ctx.clients, me, id, off as u64);
                    }
                }
                ctx.client().reply_mode = crate::exec::client::ReplyMode::Skip;
                return;
            }
            b"getack" => {
                // Only a replica's primary link asks this; a primary ignores it.
                ctx.client().reply_mode = crate::exec::client::ReplyMode::Skip;
                return;
            }
            b"ip-address" | b"rdb-only" | b"rdb-filter-only" | b"version" | b"rdb-channel" => {}
            _ => {
                let msg = format!("Unrecognized REPLCONF option: {}", String::from_utf8_lossy(opt));
                return ctx.out.err(&msg);
            }
        }
        j += 2;
    }
    ctx.out.ok();
}

/// PSYNC <replid> <offset>
fn psync(ctx: &mut Ctx, args: &[Bytes]) {
    start_sync(ctx, &args[1], crate::util::parse_i64(&args[2]));
}

/// SYNC: the old full sync (no replication id or offset in the answer).
fn sync(ctx: &mut Ctx, _args: &[Bytes]) {
    start_sync(ctx, b"?", None);
}

fn start_sync(ctx: &mut Ctx, replid: &[u8], offset: Option<i64>) {
    let (me, id) = (ctx.me, ctx.client().id);
    if ctx.srv.repl.link(me, id).is_some() {
        // Already a replica: Valkey ignores a repeated PSYNC.
        return;
    }
    if ctx.client().multi.is_some() {
        return ctx.out.err("Command not allowed inside a transaction");
    }
    primary::psync(ctx.srv, ctx.clients, me, replid, offset, ctx.out);
}

/// ROLE on a primary: offset and each replica's ip, port and acknowledged offset.
fn role(ctx: &mut Ctx, _args: &[Bytes]) {
    let repl = &ctx.srv.repl;
    let online: Vec<(String, u16, u64)> = repl
        .replicas
        .iter()
        .filter(|r| r.state == LinkState::Online)
        .map(|r| (ip_of(&r.addr), r.listening_port, r.ack))
        .collect();
    let offset = repl.offset;
    ctx.out.array(3);
    ctx.out.bulk(b"master");
    ctx.out.int(offset as i64);
    ctx.out.array(online.len());
    for (ip, port, ack) in online {
        ctx.out.array(3);
        ctx.out.bulk(ip.as_bytes());
        ctx.out.bulk(port.to_string().as_bytes());
        ctx.out.bulk(ack.to_string().as_bytes());
    }
}

/// WAIT numreplicas timeout
fn wait(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(n) = ctx.arg_i64(&args[1]) else { return };
    let Some(timeout) = crate::util::parse_i64(&args[2]) else {
        return ctx.out.err("timeout is not an integer or out of range");
    };
    if timeout < 0 {
        return ctx.out.err("timeout is negative");
    }
    let blocking_denied = ctx.client().deny_blocking;
    let me = ctx.me;
    let needed = n.max(0) as usize;
    if blocking_denied {
        // Inside EXEC: answer with what is acknowledged now.
        let have = ctx.srv.repl.acked(ctx.srv.repl.offset);
        return ctx.out.int(have as i64);
    }
    if let Some(have) = primary::wait(ctx.srv, ctx.clients, me, needed, timeout) {
        ctx.out.int(have);
    }
}

/// `ip` of an `ip:port` peer address (IPv6 addresses keep their colons).
fn ip_of(addr: &str) -> String {
    match addr.rsplit_once(':') {
        Some((ip, _)) => ip.trim_start_matches('[').trim_end_matches(']').to_string(),
        None => addr.to_string(),
    }
}

/// INFO's `# Replication` section.
pub fn info(ctx: &mut Ctx, out: &mut String) {
    let repl = &ctx.srv.repl;
    let now = ctx.srv.now;
    let _ = write!(out, "# Replication\r\nrole:master\r\nconnected_slaves:{}\r\n", repl.replicas.len());
    for (i, r) in repl.replicas.iter().enumerate() {
        let state = match r.state {
            LinkState::Syncing => "wait_bgsave",
            LinkState::WaitAck => "send_bulk",
            LinkState::Online => "online",
        };
        let lag = now.saturating_duration_since(r.ack_at).as_secs();
        let _ = write!(
            out,
            "slave{i}:ip={},port={},state={state},offset={},lag={lag}\r\n",
            ip_of(&r.addr),
            r.listening_port,
            r.ack
        );
    }
    let (active, size, first, hist) = match &repl.backlog {
        Some(b) => (1, b.capacity(), b.first_offset(), b.len()),
        None => (0, ctx.srv.config.get_i64("repl-backlog-size") as usize, 0, 0),
    };
    let _ = write!(
        out,
        "replicas_waiting_psync:0\r\nmaster_failover_state:no-failover\r\nmaster_replid:{}\r\n\
         master_replid2:{}\r\nmaster_repl_offset:{}\r\nsecond_repl_offset:{}\r\n\
         repl_backlog_active:{active}\r\nrepl_backlog_size:{size}\r\n\
         repl_backlog_first_byte_offset:{first}\r\nrepl_backlog_histlen:{hist}\r\n",
        repl.replid, repl.replid2, repl.offset, repl.second_offset
    );
}
