//! OBJECT ENCODING / FREQ / IDLETIME / REFCOUNT / HELP. Lookups never touch the access time
//! (that would change what IDLETIME reports); a missing key replies null.

use bytes::Bytes;

use super::read_key;
use crate::exec::{Ctx, Server};
use crate::keyspace::evict::lfu_minutes;
use crate::keyspace::ValueRef;

/// What Valkey reports as the reference count of a shared object (`OBJ_SHARED_REFCOUNT`).
const SHARED_REFCOUNT: i64 = i32::MAX as i64;
/// Integers below this are shared objects in Valkey (`OBJ_SHARED_INTEGERS`).
const SHARED_INTEGERS: i64 = 10_000;

/// OBJECT ENCODING key
pub fn encoding(ctx: &mut Ctx, args: &[Bytes]) {
    match read_key(ctx, &args[2], false) {
        Some(e) => {
            let enc = e.encoding();
            ctx.out.bulk_str(enc);
        }
        None => ctx.out.null(),
    }
}

/// OBJECT REFCOUNT key: Valkey shares small integers between keys, everything else is 1.
pub fn refcount(ctx: &mut Ctx, args: &[Bytes]) {
    let shared_ok = shared_integers_allowed(ctx.srv);
    match read_key(ctx, &args[2], false) {
        Some(e) => {
            let shared =
                matches!(e.value(), ValueRef::Int(n) if (0..SHARED_INTEGERS).contains(&n)) && shared_ok;
            ctx.out.int(if shared { SHARED_REFCOUNT } else { 1 });
        }
        None => ctx.out.null(),
    }
}

/// OBJECT IDLETIME key: seconds since the last access; refused under an LFU policy.
pub fn idletime(ctx: &mut Ctx, args: &[Bytes]) {
    let lfu = lfu_policy(ctx.srv);
    let clock = ctx.clock();
    let Some(e) = read_key(ctx, &args[2], false) else {
        ctx.out.null();
        return;
    };
    let idle = idle_secs(e.lru(), clock);
    if lfu {
        ctx.out.err(
            "An LFU maxmemory policy is selected, idle time not tracked. Please note that when \
             switching between policies at runtime LRU and LFU data will take some time to adjust.",
        );
        return;
    }
    ctx.out.int(i64::from(idle));
}

/// OBJECT FREQ key: the logarithmic access counter, decayed for the time since it was last
/// decremented (`LFUDecrAndReturn`); refused unless the policy is LFU.
pub fn freq(ctx: &mut Ctx, args: &[Bytes]) {
    let lfu = lfu_policy(ctx.srv);
    let params = ctx.srv.evict.lfu;
    let now_min = lfu_minutes(ctx.now_ms);
    let Some(e) = read_key(ctx, &args[2], false) else {
        ctx.out.null();
        return;
    };
    let field = e.lru();
    if !lfu {
        ctx.out.err(
            "An LFU maxmemory policy is not selected, access frequency not tracked. Please note \
             that when switching between policies at runtime LRU and LFU data will take some \
             time to adjust.",
        );
        return;
    }
    ctx.out.int(i64::from(params.decayed(field, now_min)));
}

/// OBJECT HELP
pub fn help(ctx: &mut Ctx, _args: &[Bytes]) {
    const LINES: [&str; 12] = [
        "ENCODING <key>",
        "    Return the kind of internal representation used in order to store the value",
        "    associated with a <key>.",
        "FREQ <key>",
        "    Return the access frequency index of the <key>. The returned integer is",
        "    proportional to the logarithm of the recent access frequency of the key.",
        "IDLETIME <key>",
        "    Return the idle time of the <key>, that is the approximated number of",
        "    seconds elapsed since the last access to the key.",
        "REFCOUNT <key>",
        "    Return the number of references of the value associated with the specified",
        "    <key>.",
    ];
    let out = &mut *ctx.out;
    out.array(LINES.len() + 3);
    out.simple("OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:");
    for l in LINES {
        out.simple(l);
    }
    out.simple("HELP");
    out.simple("    Print this help.");
}

/// Seconds since the last access on the wrapping 24-bit clock (`estimateObjectIdleTime`).
pub(crate) fn idle_secs(lru: u32, clock: u32) -> u32 {
    if clock >= lru {
        clock - lru
    } else {
        0x00ff_ffff - lru + clock
    }
}

fn lfu_policy(srv: &Server) -> bool {
    srv.config.get("maxmemory-policy").is_some_and(|p| p.ends_with("-lfu"))
}

/// Valkey stops sharing integers when `maxmemory` is set with an LRU or LFU policy (each key
/// then needs its own access field).
fn shared_integers_allowed(srv: &Server) -> bool {
    let policy = srv.config.get("maxmemory-policy").unwrap_or("");
    srv.config.get("maxmemory").is_none_or(|m| m == "0")
        || !(policy.ends_with("-lru") || policy.ends_with("-lfu"))
}
