//! CLIENT TRACKING, CACHING, GETREDIR and TRACKINGINFO: the client-side caching switches,
//! parsed and checked in the order of Valkey's `clientCommand` so every error matches. The
//! state they change and what it does lives in `exec::tracking`.

use bytes::Bytes;

use crate::exec::tracking::{self, Options};
use crate::exec::Ctx;

/// CLIENT TRACKING ON|OFF [REDIRECT id] [PREFIX p ...] [BCAST] [OPTIN] [OPTOUT] [NOLOOP]
pub fn tracking(ctx: &mut Ctx, args: &[Bytes]) {
    let mut opts = Options::default();
    let mut j = 3;
    while j < args.len() {
        let more = j + 1 < args.len();
        let opt = &args[j];
        if opt.eq_ignore_ascii_case(b"redirect") && more {
            j += 1;
            if opts.redirect.is_some() {
                return ctx.out.err("A client can only redirect to a single other client");
            }
            let Some(id) = ctx.arg_i64(&args[j]) else { return };
            // The target must exist now, even if it may go away later.
            let found = ctx.clients.iter().find(|(_, c)| c.st.id as i64 == id && id > 0).map(|(i, _)| i);
            match found {
                Some(idx) => opts.redirect = Some((id as u64, idx)),
                None => return ctx.out.err("The client ID you want redirect to does not exist"),
            }
        } else if opt.eq_ignore_ascii_case(b"bcast") {
            opts.bcast = true;
        } else if opt.eq_ignore_ascii_case(b"optin") {
            opts.optin = true;
        } else if opt.eq_ignore_ascii_case(b"optout") {
            opts.optout = true;
        } else if opt.eq_ignore_ascii_case(b"noloop") {
            opts.noloop = true;
        } else if opt.eq_ignore_ascii_case(b"prefix") && more {
            j += 1;
            opts.prefixes.push(args[j].clone());
        } else {
            return ctx.syntax_error();
        }
        j += 1;
    }
    let me = ctx.me;
    let mode = &args[2];
    if mode.eq_ignore_ascii_case(b"on") {
        if !opts.bcast && !opts.prefixes.is_empty() {
            return ctx.out.err("PREFIX option requires BCAST mode to be enabled");
        }
        let cur = ctx.clients[me].st.tracking.as_deref();
        if cur.is_some_and(|t| t.bcast != opts.bcast) {
            return ctx.out.err(
                "You can't switch BCAST mode on/off before disabling tracking for this client, and then \
                 re-enabling it with a different mode.",
            );
        }
        if opts.bcast && (opts.optin || opts.optout) {
            return ctx.out.err("OPTIN and OPTOUT are not compatible with BCAST");
        }
        if opts.optin && opts.optout {
            return ctx.out.err("You can't specify both OPTIN mode and OPTOUT mode");
        }
        if cur.is_some_and(|t| (opts.optin && t.optout) || (opts.optout && t.optin)) {
            return ctx.out.err(
                "You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then \
                 re-enabling it with a different mode.",
            );
        }
        if opts.bcast {
            if let Some(msg) = tracking::prefix_collision(&ctx.clients[me].st, &opts.prefixes) {
                return ctx.out.err(&msg);
            }
        }
        tracking::enable(ctx.srv, ctx.clients, me, opts);
    } else if mode.eq_ignore_ascii_case(b"off") {
        tracking::disable(ctx.srv, &mut ctx.clients[me].st, me);
    } else {
        return ctx.syntax_error();
    }
    ctx.out.ok();
}

/// CLIENT CACHING YES|NO: whether the next command's reads are tracked (OPTIN/OPTOUT).
pub fn caching(ctx: &mut Ctx, args: &[Bytes]) {
    let me = ctx.me;
    let Some(t) = ctx.clients[me].st.tracking.as_deref_mut() else {
        return ctx.out.err(
            "CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT \
             mode enabled",
        );
    };
    let opt = &args[2];
    if opt.eq_ignore_ascii_case(b"yes") {
        if !t.optin {
            return ctx.out.err("CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.");
        }
    } else if opt.eq_ignore_ascii_case(b"no") {
        if !t.optout {
            return ctx.out.err("CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.");
        }
    } else {
        return ctx.syntax_error();
    }
    t.caching = true;
    ctx.out.ok();
}

/// CLIENT GETREDIR: the redirect id (0 without one), -1 when tracking is off.
pub fn getredir(ctx: &mut Ctx, _args: &[Bytes]) {
    let r = ctx.clients[ctx.me].st.tracking.as_deref().map_or(-1, |t| t.redirect as i64);
    ctx.out.int(r);
}

/// CLIENT TRACKINGINFO: a map of flags (a set), redirect and prefixes.
pub fn trackinginfo(ctx: &mut Ctx, _args: &[Bytes]) {
    let t = ctx.clients[ctx.me].st.tracking.clone();
    let out = &mut *ctx.out;
    out.map(3);
    out.bulk(b"flags");
    let mut flags: Vec<&str> = vec![if t.is_some() { "on" } else { "off" }];
    if let Some(t) = t.as_deref() {
        if t.bcast {
            flags.push("bcast");
        }
        if t.optin {
            flags.push("optin");
            if t.caching {
                flags.push("caching-yes");
            }
        }
        if t.optout {
            flags.push("optout");
            if t.caching {
                flags.push("caching-no");
            }
        }
        if t.noloop {
            flags.push("noloop");
        }
        if t.broken_redirect {
            flags.push("broken_redirect");
        }
    }
    out.set(flags.len());
    for f in flags {
        out.bulk(f.as_bytes());
    }
    out.bulk(b"redirect");
    out.int(t.as_deref().map_or(-1, |t| t.redirect as i64));
    out.bulk(b"prefixes");
    match t.as_deref() {
        Some(t) => {
            out.array(t.prefixes.len());
            for p in &t.prefixes {
                out.bulk(p);
            }
        }
        None => out.array(0),
    }
}
