//! XADD, XTRIM, XDEL, XLEN and XSETID: the commands that add, remove and count entries.
//! XADD and XTRIM share Valkey's option parser (`streamParseAddOrTrimArgsOrReply`), whose
//! check order decides which error a bad command gets.

use bytes::Bytes;

use super::{b, create, effect, effects_begin, get, limits, parse_id, strict_id, touched, Got};
use crate::exec::blocking;
use crate::exec::notify::class;
use crate::exec::{Ctx, WRONGTYPE};
use crate::keyspace::types::stream::{StreamId, StreamValue, Trim};

/// Parsed XADD/XTRIM options.
struct AddArgs {
    trim: Option<Trim>,
    approx: bool,
    /// Entries approximate trimming may remove (0: no limit).
    limit: u64,
    nomkstream: bool,
    /// `None` for `*`; else the ID and whether its sequence was given (`<ms>-*` is not).
    id: Option<(StreamId, bool)>,
    /// Index of the ID argument (XADD) or one past the last option (XTRIM).
    id_pos: usize,
}

/// Valkey's `streamParseAddOrTrimArgsOrReply`; replies the error and returns `None`.
fn parse_add_trim(ctx: &mut Ctx, args: &[Bytes], xadd: bool) -> Option<AddArgs> {
    let mut a =
        AddArgs { trim: None, approx: false, limit: 0, nomkstream: false, id: None, id_pos: args.len() };
    let mut limit_given = false;
    let mut i = 2;
    while i < args.len() {
        let more = args.len() - 1 - i;
        let opt = &args[i];
        if xadd && &opt[..] == b"*" {
            a.id_pos = i;
            break;
        } else if (opt.eq_ignore_ascii_case(b"maxlen") || opt.eq_ignore_ascii_case(b"minid")) && more > 0 {
            if a.trim.is_some() {
                ctx.out.err("syntax error, MAXLEN and MINID options at the same time are not compatible");
                return None;
            }
            a.approx = false;
            let next = &args[i + 1][..];
            if more >= 2 && next == b"~" {
                a.approx = true;
                i += 1;
            } else if more >= 2 && next == b"=" {
                i += 1;
            }
            if opt.eq_ignore_ascii_case(b"maxlen") {
                let n = ctx.arg_i64(&args[i + 1])?;
                if n < 0 {
                    ctx.out.err("The MAXLEN argument must be >= 0.");
                    return None;
                }
                a.trim = Some(Trim::MaxLen(n as u64));
            } else {
                a.trim = Some(Trim::MinId(strict_id(ctx, &args[i + 1])?));
            }
            i += 1;
        } else if opt.eq_ignore_ascii_case(b"limit") && more > 0 {
            let n = ctx.arg_i64(&args[i + 1])?;
            if n < 0 {
                ctx.out.err("The LIMIT argument must be >= 0.");
                return None;
            }
            a.limit = n as u64;
            limit_given = true;
            i += 1;
        } else if xadd && opt.eq_ignore_ascii_case(b"nomkstream") {
            a.nomkstream = true;
        } else if xadd {
            let Some(id) = parse_id(opt, true, 0, true) else {
                ctx.out.err(super::INVALID_ID);
                return None;
            };
            a.id = Some(id);
            a.id_pos = i;
            break;
        } else {
            ctx.syntax_error();
            return None;
        }
        i += 1;
    }
    if a.limit > 0 && a.trim.is_none() {
        ctx.out.err("syntax error, LIMIT cannot be used without specifying a trimming strategy");
        return None;
    }
    if !xadd && a.trim.is_none() {
        ctx.out.err("syntax error, XTRIM must be called with a trimming strategy");
        return None;
    }
    if ctx.clients[ctx.me].st.master {
        // The primary rewrote approximate trimming into an exact threshold.
        a.limit = 0;
    } else if limit_given {
        if !a.approx {
            ctx.out.err("syntax error, LIMIT cannot be used without the special ~ option");
            return None;
        }
    } else if a.approx {
        let per_node = ctx.srv.config.get_i64("stream-node-max-entries");
        a.limit = match per_node.checked_mul(100) {
            Some(l) if l > 0 && l <= 1 << 30 => l as u64,
            _ => 10_000,
        };
    } else {
        a.limit = 0;
    }
    Some(a)
}

/// The trimming options as they reach a replica: approximate trimming becomes exact at
/// what it left (Valkey's `streamRewriteApproxSpecifier`/`streamRewriteTrimArgument`).
fn trim_args(s: &StreamValue, a: &AddArgs) -> Vec<Bytes> {
    match (a.trim, a.approx) {
        (None, _) => Vec::new(),
        (Some(Trim::MaxLen(_)), true) => vec![b("MAXLEN"), b("="), b(&s.len().to_string())],
        (Some(Trim::MinId(_)), true) => vec![b("MINID"), b("="), b(&s.first_id.to_string())],
        (Some(Trim::MaxLen(n)), false) => vec![b("MAXLEN"), b("="), b(&n.to_string())],
        (Some(Trim::MinId(id)), false) => vec![b("MINID"), b("="), b(&id.to_string())],
    }
}

/// XADD key [NOMKSTREAM] [MAXLEN|MINID [=|~] threshold [LIMIT count]] *|id field value ...
pub fn xadd(ctx: &mut Ctx, args: &[Bytes]) {
    effects_begin(ctx);
    let Some(a) = parse_add_trim(ctx, args, true) else { return };
    let field_pos = a.id_pos + 1;
    if args.len() < field_pos + 2 || (args.len() - field_pos) % 2 == 1 {
        return ctx.wrong_arity();
    }
    if let Some((id, true)) = a.id {
        if id.is_zero() {
            return ctx.out.err("The ID specified in XADD must be greater than 0-0");
        }
    }
    let key = &args[1];
    match get(ctx, key, false) {
        (Got::WrongType, out) => return out.error(WRONGTYPE),
        (Got::Missing, out) if a.nomkstream => return out.null(),
        (Got::Missing, _) => create(ctx, key),
        (Got::Stream(_), _) => {}
    }
    let limits = limits(ctx);
    let now = ctx.now_ms;
    let (Got::Stream(s), out) = get(ctx, key, false) else { return };
    if s.last_id == StreamId::MAX {
        return out.err("The stream has exhausted the last possible ID, unable to add more items");
    }
    let id = match a.id {
        Some((id, true)) => Some(id),
        Some((id, false)) if id.ms == s.last_id.ms => s.last_id.next().filter(|n| n.ms == id.ms),
        Some((id, false)) => Some(id),
        None => {
            let ms = u64::try_from(now).unwrap_or(0);
            if ms > s.last_id.ms {
                Some(StreamId::new(ms, 0))
            } else {
                s.last_id.next()
            }
        }
    };
    let Some(id) = id.filter(|id| *id > s.last_id) else {
        return out.err("The ID specified in XADD is equal or smaller than the target stream top item");
    };
    let pairs: Vec<(&[u8], &[u8])> = args[field_pos..].chunks(2).map(|p| (&p[0][..], &p[1][..])).collect();
    let total: usize = pairs.iter().map(|(f, v)| f.len() + v.len()).sum();
    if total > u32::MAX as usize {
        return out.err("Elements are too large to be stored");
    }
    s.append(id, &pairs, limits);
    super::reply_id(out, id);
    let trimmed = match a.trim {
        Some(t) => s.trim(t, a.approx, a.limit),
        None => 0,
    };
    let rewritten = a.id != Some((id, true)) || a.approx;
    if rewritten && super::recording() {
        let mut cmd = vec![b("XADD"), key.clone()];
        if a.nomkstream {
            cmd.push(b("NOMKSTREAM"));
        }
        cmd.extend(trim_args(s, &a));
        cmd.push(b(&id.to_string()));
        cmd.extend(args[field_pos..].iter().cloned());
        effect(|| cmd);
    } else {
        super::take_effects();
    }
    touched(ctx, key);
    ctx.notify(class::STREAM, "xadd", key);
    if trimmed > 0 {
        ctx.notify(class::STREAM, "xtrim", key);
    }
    let db = ctx.clients[ctx.me].st.db;
    blocking::signal_key_ready(ctx.srv, db, key);
}

/// XTRIM key MAXLEN|MINID [=|~] threshold [LIMIT count]
pub fn xtrim(ctx: &mut Ctx, args: &[Bytes]) {
    effects_begin(ctx);
    let key = &args[1];
    match get(ctx, key, false) {
        (Got::WrongType, out) => return out.error(WRONGTYPE),
        (Got::Missing, out) => return out.int(0),
        (Got::Stream(_), _) => {}
    }
    let Some(a) = parse_add_trim(ctx, args, false) else { return };
    let (Got::Stream(s), out) = get(ctx, key, false) else { return };
    let deleted = match a.trim {
        Some(t) => s.trim(t, a.approx, a.limit),
        None => 0,
    };
    out.int(deleted as i64);
    if a.approx && deleted > 0 {
        let mut cmd = vec![b("XTRIM"), key.clone()];
        cmd.extend(trim_args(s, &a));
        effect(|| cmd);
    } else {
        super::take_effects();
    }
    if deleted > 0 {
        touched(ctx, key);
        ctx.notify(class::STREAM, "xtrim", key);
    }
}

/// XDEL key id [id ...]
pub fn xdel(ctx: &mut Ctx, args: &[Bytes]) {
    let key = &args[1];
    match get(ctx, key, false) {
        (Got::WrongType, out) => return out.error(WRONGTYPE),
        (Got::Missing, out) => return out.int(0),
        (Got::Stream(_), _) => {}
    }
    let mut ids = Vec::with_capacity(args.len() - 2);
    for a in &args[2..] {
        ids.push(match strict_id(ctx, a) {
            Some(id) => id,
            None => return,
        });
    }
    let (Got::Stream(s), out) = get(ctx, key, false) else { return };
    let deleted = s.delete_ids(&ids);
    out.int(deleted as i64);
    if deleted > 0 {
        touched(ctx, key);
        ctx.notify(class::STREAM, "xdel", key);
    }
}

/// XLEN key
pub fn xlen(ctx: &mut Ctx, args: &[Bytes]) {
    match get(ctx, &args[1], true) {
        (Got::WrongType, out) => out.error(WRONGTYPE),
        (Got::Missing, out) => out.int(0),
        (Got::Stream(s), out) => out.int(s.len() as i64),
    }
}

/// XSETID key last-id [ENTRIESADDED entries-added] [MAXDELETEDID max-deleted-id]
pub fn xsetid(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(id) = strict_id(ctx, &args[2]) else { return };
    let mut entries_added: Option<u64> = None;
    let mut max_deleted = StreamId::MIN;
    let mut i = 3;
    while i < args.len() {
        let more = args.len() - 1 - i;
        if args[i].eq_ignore_ascii_case(b"entriesadded") && more > 0 {
            let Some(n) = ctx.arg_i64(&args[i + 1]) else { return };
            if n < 0 {
                return ctx.out.err("entries_added must be positive");
            }
            entries_added = Some(n as u64);
        } else if args[i].eq_ignore_ascii_case(b"maxdeletedid") && more > 0 {
            let Some(m) = strict_id(ctx, &args[i + 1]) else { return };
            if id < m {
                return ctx
                    .out
                    .err("The ID specified in XSETID is smaller than the provided max_deleted_entry_id");
            }
            max_deleted = m;
        } else {
            return ctx.syntax_error();
        }
        i += 2;
    }
    let key = &args[1];
    let (Got::Stream(s), out) = (match get(ctx, key, false) {
        (Got::WrongType, out) => return out.error(WRONGTYPE),
        (Got::Missing, out) => return out.err("no such key"),
        got => got,
    }) else {
        return;
    };
    if id < s.max_deleted_id {
        return out.err("The ID specified in XSETID is smaller than current max_deleted_entry_id");
    }
    if !s.is_empty() {
        if s.edge_id(false).is_some_and(|top| id < top) {
            return out.err("The ID specified in XSETID is smaller than the target stream top item");
        }
        if entries_added.is_some_and(|n| s.len() > n) {
            return out.err("The entries_added specified in XSETID is smaller than the target stream length");
        }
    }
    s.last_id = id;
    if let Some(n) = entries_added {
        s.entries_added = n;
    }
    if !max_deleted.is_zero() {
        s.max_deleted_id = max_deleted;
    }
    out.ok();
    touched(ctx, key);
    ctx.notify(class::STREAM, "xsetid", key);
}
