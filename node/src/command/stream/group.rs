//! XGROUP CREATE/SETID/DESTROY/CREATECONSUMER/DELCONSUMER/HELP and XACK (`xgroupCommand`,
//! `xackCommand`). XGROUP checks its options first, then the key, then the group, as Valkey.

use bytes::Bytes;

use super::{create as create_stream, get, no_group, reply_help, strict_id, subcommand_syntax, touched, Got};
use crate::exec::blocking;
use crate::exec::notify::class;
use crate::exec::{Ctx, WRONGTYPE};
use crate::keyspace::types::stream::{Group, StreamId, INVALID_ENTRIES_READ};

/// Options of CREATE and SETID: MKSTREAM (CREATE only) and ENTRIESREAD.
struct Opts {
    mkstream: bool,
    entries_read: i64,
}

fn parse_opts(ctx: &mut Ctx, args: &[Bytes], create: bool) -> Option<Opts> {
    let mut o = Opts { mkstream: false, entries_read: INVALID_ENTRIES_READ };
    let mut i = 5;
    while i < args.len() {
        if create && args[i].eq_ignore_ascii_case(b"mkstream") {
            o.mkstream = true;
            i += 1;
        } else if args[i].eq_ignore_ascii_case(b"entriesread") && i + 1 < args.len() {
            let n = ctx.arg_i64(&args[i + 1])?;
            if n < 0 && n != INVALID_ENTRIES_READ {
                ctx.out.err("value for ENTRIESREAD must be positive or -1");
                return None;
            }
            o.entries_read = n;
            i += 2;
        } else {
            subcommand_syntax(ctx, args);
            return None;
        }
    }
    Some(o)
}

const NO_KEY: &str = "The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.";

/// The key and group checks every subcommand but HELP shares. `need_group`: SETID,
/// CREATECONSUMER and DELCONSUMER fail on a missing group. Returns whether the key exists.
fn check(ctx: &mut Ctx, args: &[Bytes], mkstream: bool, need_group: bool) -> Option<bool> {
    let (key, name) = (&args[2], &args[3]);
    let (exists, has_group, out) = match get(ctx, key, false) {
        (Got::WrongType, out) => {
            out.error(WRONGTYPE);
            return None;
        }
        (Got::Missing, out) => (false, false, out),
        (Got::Stream(s), out) => (true, s.groups.contains_key(&name[..]), out),
    };
    if !mkstream {
        if !exists {
            out.err(NO_KEY);
            return None;
        }
        if need_group && !has_group {
            no_group(out, key, name);
            return None;
        }
    }
    Some(exists)
}

/// XGROUP CREATE key group id|$ [MKSTREAM] [ENTRIESREAD entries-read]
pub fn create(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(o) = parse_opts(ctx, args, true) else { return };
    let Some(exists) = check(ctx, args, o.mkstream, false) else { return };
    if args.len() > 8 {
        return subcommand_syntax(ctx, args);
    }
    let key = &args[2];
    let id = if &args[4][..] == b"$" {
        match get(ctx, key, false) {
            (Got::Stream(s), _) => s.last_id,
            _ => StreamId::MIN,
        }
    } else {
        match strict_id(ctx, &args[4]) {
            Some(id) => id,
            None => return,
        }
    };
    if !exists {
        create_stream(ctx, key);
    }
    let (Got::Stream(s), out) = get(ctx, key, false) else { return };
    if s.groups.contains_key(&args[3][..]) {
        return out.error("BUSYGROUP Consumer Group name already exists");
    }
    s.groups.insert(args[3].clone(), Group::new(id, o.entries_read));
    out.ok();
    touched(ctx, key);
    ctx.notify(class::STREAM, "xgroup-create", key);
}

/// XGROUP SETID key group id|$ [ENTRIESREAD entries-read]
pub fn setid(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(o) = parse_opts(ctx, args, false) else { return };
    if check(ctx, args, false, true).is_none() {
        return;
    }
    if args.len() != 5 && args.len() != 7 {
        return subcommand_syntax(ctx, args);
    }
    let key = &args[2];
    let id = if &args[4][..] == b"$" {
        None
    } else {
        match super::parse_id(&args[4], false, 0, false) {
            Some((id, _)) => Some(id),
            None => return ctx.out.err(super::INVALID_ID),
        }
    };
    let (Got::Stream(s), out) = get(ctx, key, false) else { return };
    let id = id.unwrap_or(s.last_id);
    if let Some(g) = s.groups.get_mut(&args[3][..]) {
        g.last_id = id;
        g.entries_read = o.entries_read;
    }
    out.ok();
    touched(ctx, key);
    ctx.notify(class::STREAM, "xgroup-setid", key);
}

/// XGROUP DESTROY key group
pub fn destroy(ctx: &mut Ctx, args: &[Bytes]) {
    if check(ctx, args, false, false).is_none() {
        return;
    }
    let key = &args[2];
    let (Got::Stream(s), out) = get(ctx, key, false) else { return };
    if s.groups.remove(&args[3][..]).is_none() {
        return out.int(0);
    }
    out.int(1);
    touched(ctx, key);
    ctx.notify(class::STREAM, "xgroup-destroy", key);
    // Clients blocked in XREADGROUP on this group get their error.
    let db = ctx.clients[ctx.me].st.db;
    blocking::signal_key_ready(ctx.srv, db, key);
}

/// XGROUP CREATECONSUMER key group consumer
pub fn createconsumer(ctx: &mut Ctx, args: &[Bytes]) {
    if check(ctx, args, false, true).is_none() {
        return;
    }
    let key = &args[2];
    let now = ctx.now_ms;
    let (Got::Stream(s), out) = get(ctx, key, false) else { return };
    let created = s.groups.get_mut(&args[3][..]).is_some_and(|g| g.create_consumer(&args[4], now));
    out.int(created as i64);
    if created {
        touched(ctx, key);
        ctx.notify(class::STREAM, "xgroup-createconsumer", key);
    }
}

/// XGROUP DELCONSUMER key group consumer
pub fn delconsumer(ctx: &mut Ctx, args: &[Bytes]) {
    if check(ctx, args, false, true).is_none() {
        return;
    }
    let key = &args[2];
    let (Got::Stream(s), out) = get(ctx, key, false) else { return };
    let pending = s.groups.get_mut(&args[3][..]).and_then(|g| g.delete_consumer(&args[4]));
    out.int(pending.unwrap_or(0) as i64);
    if pending.is_some() {
        touched(ctx, key);
        ctx.notify(class::STREAM, "xgroup-delconsumer", key);
    }
}

/// XGROUP HELP
pub fn help(ctx: &mut Ctx, args: &[Bytes]) {
    let name = String::from_utf8_lossy(&args[0]).to_uppercase();
    reply_help(
        ctx,
        &name,
        &[
            "CREATE <key> <groupname> <id|$> [option]",
            "    Create a new consumer group. Options are:",
            "    * MKSTREAM",
            "      Create the empty stream if it does not exist.",
            "    * ENTRIESREAD entries_read",
            "      Set the group's entries_read counter (internal use).",
            "CREATECONSUMER <key> <groupname> <consumer>",
            "    Create a new consumer in the specified group.",
            "DELCONSUMER <key> <groupname> <consumer>",
            "    Remove the specified consumer.",
            "DESTROY <key> <groupname>",
            "    Remove the specified group.",
            "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
            "    Set the current group ID and entries_read counter.",
        ],
    );
}

/// XACK key group id [id ...]
pub fn xack(ctx: &mut Ctx, args: &[Bytes]) {
    let key = &args[1];
    let found = match get(ctx, key, true) {
        (Got::WrongType, out) => return out.error(WRONGTYPE),
        (Got::Missing, _) => false,
        (Got::Stream(s), _) => s.groups.contains_key(&args[2][..]),
    };
    if !found {
        return ctx.out.int(0);
    }
    let mut ids = Vec::with_capacity(args.len() - 3);
    for a in &args[3..] {
        match strict_id(ctx, a) {
            Some(id) => ids.push(id),
            None => return,
        }
    }
    let (Got::Stream(s), out) = get(ctx, key, false) else { return };
    let Some(g) = s.groups.get_mut(&args[2][..]) else { return };
    let acked = ids.iter().filter(|&&id| g.ack(id)).count();
    out.int(acked as i64);
    if acked > 0 {
        touched(ctx, key);
    }
}
