//! The replication commands: REPLICAOF (SLAVEOF), REPLCONF, PSYNC, SYNC, ROLE, WAIT, and the
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
        "replicaof" | "slaveof" => replicaof,
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
                // Only a replica's primary asks this (a primary ignores it): the answer is an
                // ACK with the offset before this command.
                super::replica::getack(ctx.srv, ctx.clients, me);
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
    if ctx.srv.master.as_ref().is_some_and(|m| m.state != super::replica::LinkState::Connected) {
        // A replica serves sub-replicas only the history it has fully received.
        return ctx.out.error("NOMASTERLINK Can't SYNC while not connected with my master");
    }
    if ctx.srv.loading {
        return ctx.out.error(super::gate::LOADING);
    }
    primary::psync(ctx.srv, ctx.clients, me, replid, offset, ctx.out);
}

/// REPLICAOF host port | NO ONE
fn replicaof(ctx: &mut Ctx, args: &[Bytes]) {
    if ctx.srv.cluster.is_some() {
        return ctx.out.err("REPLICAOF not allowed in cluster mode.");
    }
    if args[1].eq_ignore_ascii_case(b"no") && args[2].eq_ignore_ascii_case(b"one") {
        if ctx.srv.master.is_some() {
            super::replica::unset_primary(ctx.srv, ctx.clients);
            let who = ctx.client().addr.clone();
            log::info!("PRIMARY MODE enabled (user request from '{who}')");
        }
        return ctx.out.ok();
    }
    if ctx.client().replica {
        return ctx.out.err("Command is not valid when client is a replica.");
    }
    let port = crate::util::parse_i64(&args[2]).filter(|p| (0..=65535).contains(p));
    let Some(port) = port else {
        return ctx.out.err("Invalid master port");
    };
    let host = String::from_utf8_lossy(&args[1]).into_owned();
    if ctx.srv.master.as_ref().is_some_and(|m| m.host.eq_ignore_ascii_case(&host) && m.port == port as u16) {
        log::info!("REPLICAOF would result into synchronization with the primary we are already connected with. No operation performed.");
        return ctx.out.simple("OK Already connected to specified master");
    }
    super::replica::set_primary(ctx.srv, ctx.clients, &host, port as u16);
    let who = ctx.client().addr.clone();
    log::info!("REPLICAOF {host}:{port} enabled (user request from '{who}')");
    ctx.out.ok();
}

/// ROLE: a primary's offset and replicas, or a replica's primary, link state and offset.
fn role(ctx: &mut Ctx, _args: &[Bytes]) {
    if let Some(m) = ctx.srv.master.as_ref() {
        let offset = if m.client.is_some() { ctx.srv.repl.offset_now() as i64 } else { -1 };
        let (host, port, state) = (m.host.clone(), m.port, m.role_state());
        ctx.out.array(5);
        ctx.out.bulk(b"slave");
        ctx.out.bulk(host.as_bytes());
        ctx.out.int(port as i64);
        ctx.out.bulk(state.as_bytes());
        ctx.out.int(offset);
        return;
    }
    let repl = &ctx.srv.repl;
    let online: Vec<(String, u16, u64)> = repl
        .replicas
        .iter()
        .filter(|r| r.state == LinkState::Online)
        .map(|r| (ip_of(&r.addr), r.listening_port, r.ack))
        .collect();
    let offset = repl.offset_now();
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
    if ctx.srv.master.is_some() {
        return ctx.out.err("WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if a replica is configured to be writable (which is not the default) writes to replicas are just local and are not propagated.");
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
pub fn ip_of(addr: &str) -> String {
    match addr.rsplit_once(':') {
        Some((ip, _)) => ip.trim_start_matches('[').trim_end_matches(']').to_string(),
        None => addr.to_string(),
    }
}

/// INFO's `# Replication` section.
pub fn info(ctx: &mut Ctx, out: &mut String) {
    let repl = &ctx.srv.repl;
    let now = ctx.srv.now;
    match ctx.srv.master.as_ref() {
        None => out.push_str("# Replication\r\nrole:master\r\n"),
        Some(m) => replica_info(ctx.srv, m, out),
    }
    // Shoal's own fields, for the control plane (see `replication::follow`).
    if let Some(cl) = ctx.srv.cluster.as_ref() {
        let _ = write!(out, "shoal_fenced:{}\r\n", u8::from(cl.fenced));
        if let Some(mode) = ctx.srv.failover_requested {
            let _ = write!(out, "shoal_failover_requested:{mode}\r\n");
        }
    }
    let _ = write!(out, "connected_slaves:{}\r\n", repl.replicas.len());
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
        repl.replid,
        repl.replid2,
        repl.offset_now(),
        repl.second_offset
    );
}

/// INFO replication's replica fields (Valkey's names, `slave_*` included).
fn replica_info(srv: &crate::exec::Server, m: &super::replica::Master, out: &mut String) {
    use super::replica::LinkState;
    let now = srv.now;
    let up = m.state == LinkState::Connected;
    let _ = write!(
        out,
        "# Replication\r\nrole:slave\r\nmaster_host:{}\r\nmaster_port:{}\r\nmaster_link_status:{}\r\n\
         master_last_io_seconds_ago:{}\r\nmaster_sync_in_progress:{}\r\n",
        m.host,
        m.port,
        if up { "up" } else { "down" },
        if up { now.saturating_duration_since(m.last_io).as_secs() as i64 } else { -1 },
        u8::from(m.syncing()),
    );
    if m.syncing() {
        let (read, total) = m.transfer();
        let _ = write!(
            out,
            "master_sync_total_bytes:{}\r\nmaster_sync_read_bytes:{read}\r\nmaster_sync_left_bytes:{}\r\n\
             master_sync_perc:{:.2}\r\nmaster_sync_last_io_seconds_ago:{}\r\n",
            if total == 0 { -1 } else { total as i64 },
            if total == 0 { -1 } else { total.saturating_sub(read) as i64 },
            if total == 0 { 0.0 } else { read as f64 * 100.0 / total as f64 },
            now.saturating_duration_since(m.last_io).as_secs(),
        );
    }
    if let Some(since) = m.down_since {
        let _ = write!(
            out,
            "master_link_down_since_seconds:{}\r\n",
            now.saturating_duration_since(since).as_secs()
        );
    }
    let off = srv.repl.offset_now();
    let _ = write!(
        out,
        "slave_read_repl_offset:{off}\r\nslave_repl_offset:{off}\r\nreplica_full_sync_buffer_size:0\r\n\
         replica_full_sync_buffer_peak:0\r\nslave_priority:{}\r\nslave_read_only:{}\r\nreplica_announced:1\r\n",
        srv.config.get_i64("replica-priority"),
        u8::from(srv.config.get_bool("replica-read-only")),
    );
}
