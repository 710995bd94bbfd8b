//! What a write command puts into the replication stream (see `primary` for the stream
//! itself): the command as executed when replaying it gives the same result, a rewrite when it
//! would not (relative TTLs, random or blocking pops, float increments), and MULTI/EXEC
//! around an EXEC's or a script's writes.

use bytes::Bytes;

use super::primary::drain_expired;
use crate::command::meta::CommandMeta;
use crate::exec::Server;

/// Commands whose TTL argument is relative (or absolute in seconds): after them the stream
/// gets the key's absolute deadline (`PEXPIREAT`), so a replica's clock does not matter.
const RELATIVE_TTL: &[&str] =
    &["set", "setex", "psetex", "getex", "expire", "pexpire", "expireat", "restore", "restore-asking"];

/// FLUSHALL and FLUSHDB reach replicas even when there was nothing to flush.
const ALWAYS: &[&str] = &["flushall", "flushdb", "swapdb", "load", "delete", "flush", "restore"];

/// After a command ran: if it wrote (the databases' mutation count moved), its effect goes to
/// the stream — verbatim when replaying it gives the same result, rewritten when it would not:
/// relative TTLs made absolute, SPOP as SREM of what it popped, INCRBYFLOAT as SET of the
/// result, a served blocking pop as its non-blocking form on the key it served.
pub fn propagate(
    srv: &mut Server,
    db: usize,
    meta: &CommandMeta,
    args: &[Bytes],
    reply: &[u8],
    changed: bool,
) {
    if !changed && !ALWAYS.contains(&meta.name) {
        return;
    }
    drain_expired(srv);
    if let Some(open) = srv.repl.exec_open.as_mut() {
        if !*open {
            *open = true;
            srv.repl.out.extend_from_slice(b"*1\r\n$5\r\nMULTI\r\n");
        }
    }
    let name = meta.name;
    // Parsed only by the few rewrites that need what the command returned.
    let parsed = || super::reply::parse(reply);
    let a = |i: usize| args.get(i).map_or(&b""[..], |b| &b[..]);
    match name {
        "spop" => {
            let members: Vec<Vec<u8>> = match parsed() {
                Some(super::reply::Value::Bulk(m)) => vec![m],
                Some(super::reply::Value::Array(items)) => {
                    items.into_iter().filter_map(|v| v.bulk()).collect()
                }
                _ => Vec::new(),
            };
            if !members.is_empty() {
                let mut cmd: Vec<&[u8]> = vec![b"SREM", a(1)];
                cmd.extend(members.iter().map(Vec::as_slice));
                srv.repl.feed(db, &cmd);
            }
        }
        "incrbyfloat" => {
            if let Some(v) = parsed().and_then(|r| r.bulk()) {
                srv.repl.feed(db, &[b"SET", a(1), &v, b"KEEPTTL"]);
            }
        }
        "hincrbyfloat" => {
            if let Some(v) = parsed().and_then(|r| r.bulk()) {
                srv.repl.feed(db, &[b"HSET", a(1), a(2), &v]);
                // HSET drops a field's TTL, HINCRBYFLOAT keeps it: restore it on the replica.
                let ttl = match srv.dbs[db].peek(a(1)) {
                    Some(crate::keyspace::node::ValueRef::Hash(h)) => h.field_expiry(a(2)),
                    _ => None,
                };
                if let Some(at) = ttl {
                    let at = at.to_string();
                    srv.repl.feed(db, &[b"HPEXPIREAT", a(1), at.as_bytes(), b"FIELDS", b"1", a(2)]);
                }
            }
        }
        "blpop" | "brpop" | "bzpopmin" | "bzpopmax" => {
            if let Some(key) = parsed().and_then(|r| r.first_bulk()) {
                let op: &[u8] = match name {
                    "blpop" => b"LPOP",
                    "brpop" => b"RPOP",
                    "bzpopmin" => b"ZPOPMIN",
                    _ => b"ZPOPMAX",
                };
                srv.repl.feed(db, &[op, &key]);
            }
        }
        "blmove" => srv.repl.feed(db, &[b"LMOVE", a(1), a(2), a(3), a(4)]),
        "brpoplpush" => srv.repl.feed(db, &[b"RPOPLPUSH", a(1), a(2)]),
        "blmpop" | "bzmpop" => {
            // [key, elements]: pop as many from that key with the non-blocking form.
            if let Some(super::reply::Value::Array(items)) = parsed() {
                if let (Some(key), Some(super::reply::Value::Array(popped))) =
                    (items.first().and_then(|k| k.clone().bulk()), items.get(1))
                {
                    let numkeys = crate::util::parse_i64(a(2)).unwrap_or(0).max(0) as usize;
                    let dir = a(3 + numkeys);
                    let count = popped.len().to_string();
                    let op: &[u8] = if name == "blmpop" { b"LMPOP" } else { b"ZMPOP" };
                    srv.repl.feed(db, &[op, b"1", &key, dir, b"COUNT", count.as_bytes()]);
                }
            }
        }
        // Stream commands whose effect depends on this node record how to reproduce it.
        "xadd" | "xtrim" | "xreadgroup" | "xclaim" | "xautoclaim" => {
            match crate::command::stream::take_effects() {
                Some(cmds) if cmds.is_empty() && !matches!(name, "xadd" | "xtrim") => {}
                Some(cmds) if !cmds.is_empty() => {
                    for cmd in cmds {
                        srv.repl.feed_args(db, &cmd);
                    }
                }
                _ => srv.repl.feed_args(db, args),
            }
        }
        // Hash field expiry: relative or second deadlines become the absolute one used.
        "hexpire" | "hpexpire" | "hexpireat" => {
            let at = crate::command::hash::expire::last_deadline().to_string();
            let mut cmd: Vec<&[u8]> = vec![b"HPEXPIREAT", a(1), at.as_bytes()];
            cmd.extend(args[3..].iter().map(|b| &b[..]));
            srv.repl.feed(db, &cmd);
        }
        "hgetex" => {
            if let Some(fi) = (2..args.len()).find(|&i| args[i].eq_ignore_ascii_case(b"fields")) {
                let at = crate::command::hash::expire::last_deadline().to_string();
                let persist = args[2..fi].iter().any(|o| o.eq_ignore_ascii_case(b"persist"));
                let mut cmd: Vec<&[u8]> =
                    if persist { vec![b"HPERSIST", a(1)] } else { vec![b"HPEXPIREAT", a(1), at.as_bytes()] };
                cmd.extend(args[fi..].iter().map(|b| &b[..]));
                srv.repl.feed(db, &cmd);
            }
        }
        "hsetex" => {
            let fi = (2..args.len()).find(|&i| args[i].eq_ignore_ascii_case(b"fields")).unwrap_or(args.len());
            let at = crate::command::hash::expire::last_deadline().to_string();
            let mut cmd: Vec<&[u8]> = Vec::with_capacity(args.len());
            let mut i = 0;
            while i < args.len() {
                let o = &args[i][..];
                if (2..fi).contains(&i)
                    && [&b"ex"[..], b"px", b"exat", b"pxat"].iter().any(|t| o.eq_ignore_ascii_case(t))
                {
                    cmd.extend([&b"PXAT"[..], at.as_bytes()]);
                    i += 2;
                } else {
                    cmd.push(o);
                    i += 1;
                }
            }
            srv.repl.feed(db, &cmd);
        }
        "expire" | "pexpire" | "expireat" | "pexpireat" | "getex" if !srv.dbs[db].exists_raw(a(1)) => {
            // A deadline in the past deleted the key: replicas (which never expire keys by
            // themselves) get the deletion.
            srv.repl.feed(db, &[b"DEL", a(1)]);
        }
        _ => {
            srv.repl.feed_args(db, args);
            if RELATIVE_TTL.contains(&name) {
                let key = a(1);
                if let Some(at) = srv.dbs[db].peek_node(key).and_then(|n| n.expire_at()) {
                    let at = at.to_string();
                    srv.repl.feed(db, &[b"PEXPIREAT", key, at.as_bytes()]);
                }
            }
        }
    }
}

/// EXEC starts: the writes it runs go to the stream inside MULTI ... EXEC.
pub fn exec_begin(srv: &mut Server) {
    if srv.repl.active() {
        srv.repl.exec_open = Some(false);
    }
}

/// EXEC ended: closes the transaction in the stream if one was opened.
pub fn exec_end(srv: &mut Server) {
    if srv.repl.exec_open.take() == Some(true) {
        srv.repl.out.extend_from_slice(b"*1\r\n$4\r\nEXEC\r\n");
    }
}
