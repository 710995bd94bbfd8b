//! BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP and CLIENT UNBLOCK. Each handler first tries to
//! serve like its non-blocking form; if every key is missing it parks the client with
//! `exec::blocking::block`. The same handler runs again when a key is signalled (see
//! `exec::blocking`), so serving a woken client is exactly a normal run of the command.
//! Inside MULTI/EXEC blocking is denied and the command replies as if it had timed out.

use bytes::Bytes;

use super::pop::{lmove_generic, mpop_first, parse_mpop};
use super::{elements_removed, list_mut, parse_end, write_list, Found};
use crate::exec::blocking::{self, Blocked, Kind};
use crate::exec::{Ctx, WRONGTYPE};
use crate::keyspace::types::list::End;

/// BLPOP key [key ...] timeout
pub fn blpop(ctx: &mut Ctx, args: &[Bytes]) {
    bpop_generic(ctx, args, End::Head);
}

/// BRPOP key [key ...] timeout
pub fn brpop(ctx: &mut Ctx, args: &[Bytes]) {
    bpop_generic(ctx, args, End::Tail);
}

/// Valkey's `blockingPopGenericCommand` without COUNT: replies `[key, element]`.
fn bpop_generic(ctx: &mut Ctx, args: &[Bytes], end: End) {
    let last = args.len() - 1;
    let Some(deadline) = blocking::parse_timeout(ctx, &args[last]) else { return };
    let keys = &args[1..last];
    for key in keys {
        let (found, out) = write_list(ctx, key);
        let mut e = match found {
            Found::Missing => continue,
            Found::WrongType => return out.error(WRONGTYPE),
            Found::List(e) => e,
        };
        let Some(v) = list_mut(&mut e).and_then(|l| l.pop(end)) else { continue };
        out.array(2);
        out.bulk(key);
        out.bulk(&v);
        elements_removed(ctx, key, end);
        return;
    }
    if blocking::block(ctx, args, keys, deadline, Kind::List) == Blocked::Denied {
        ctx.out.null_array();
    }
}

/// BLMPOP timeout numkeys key [key ...] LEFT|RIGHT [COUNT count]
pub fn blmpop(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(m) = parse_mpop(ctx, args, 2) else { return };
    let Some(deadline) = blocking::parse_timeout(ctx, &args[1]) else { return };
    let keys = &args[m.first_key..m.first_key + m.numkeys];
    if mpop_first(ctx, keys, m.end, m.count) {
        return;
    }
    if blocking::block(ctx, args, keys, deadline, Kind::List) == Blocked::Denied {
        ctx.out.null_array();
    }
}

/// BLMOVE source destination LEFT|RIGHT LEFT|RIGHT timeout
pub fn blmove(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(from) = parse_end(ctx, &args[3]) else { return };
    let Some(to) = parse_end(ctx, &args[4]) else { return };
    let Some(deadline) = blocking::parse_timeout(ctx, &args[5]) else { return };
    blmove_generic(ctx, args, from, to, deadline);
}

/// BRPOPLPUSH source destination timeout
pub fn brpoplpush(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(deadline) = blocking::parse_timeout(ctx, &args[3]) else { return };
    blmove_generic(ctx, args, End::Tail, End::Head, deadline);
}

/// Valkey's `blmoveGenericCommand`. Denied blocking replies a null bulk string here (not a
/// null array as on timeout), as in Valkey.
fn blmove_generic(ctx: &mut Ctx, args: &[Bytes], from: End, to: End, deadline: Option<std::time::Instant>) {
    let (src, dst) = (&args[1], &args[2]);
    match write_list(ctx, src) {
        (Found::WrongType, out) => out.error(WRONGTYPE),
        (Found::List(_), _) => lmove_generic(ctx, src, dst, from, to),
        (Found::Missing, _) => {
            if blocking::block(ctx, args, std::slice::from_ref(src), deadline, Kind::List) == Blocked::Denied
            {
                ctx.out.null();
            }
        }
    }
}

/// CLIENT UNBLOCK client-id [TIMEOUT|ERROR]
pub fn client_unblock(ctx: &mut Ctx, args: &[Bytes]) {
    if args.len() > 4 {
        let msg = format!(
            "unknown subcommand or wrong number of arguments for '{}'. Try CLIENT HELP.",
            String::from_utf8_lossy(&args[1][..args[1].len().min(128)])
        );
        return ctx.out.err(&msg);
    }
    let error = match args.get(3) {
        None => false,
        Some(r) if r.eq_ignore_ascii_case(b"timeout") => false,
        Some(r) if r.eq_ignore_ascii_case(b"error") => true,
        Some(_) => return ctx.out.err("CLIENT UNBLOCK reason should be TIMEOUT or ERROR"),
    };
    let Some(id) = ctx.arg_i64(&args[2]) else { return };
    let unblocked = u64::try_from(id).ok().and_then(|id| blocking::unblock(ctx.srv, ctx.clients, id, error));
    ctx.out.int(unblocked.is_some() as i64);
}
