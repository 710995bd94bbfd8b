//! SLOWLOG GET/LEN/RESET/HELP over `exec::observe::slowlog`.

use bytes::Bytes;

use crate::exec::Ctx;

pub fn handler(name: &str) -> Option<crate::command::Handler> {
    Some(match name {
        "slowlog|get" => get,
        "slowlog|len" => len,
        "slowlog|reset" => reset,
        "slowlog|help" => help,
        _ => return None,
    })
}

/// SLOWLOG GET [count]: the newest `count` entries (10 by default, -1 for all).
fn get(ctx: &mut Ctx, args: &[Bytes]) {
    if args.len() > 3 {
        return ctx.out.err("unknown subcommand or wrong number of arguments for 'GET'. Try SLOWLOG HELP.");
    }
    let count = match args.get(2) {
        None => 10,
        Some(a) => match crate::util::parse_i64(a) {
            Some(-1) => usize::MAX,
            Some(n) if n >= 0 => n as usize,
            _ => return ctx.out.err("count should be greater than or equal to -1"),
        },
    };
    let log = &ctx.srv.observe.slowlog;
    let n = log.entries.len().min(count);
    let out = &mut *ctx.out;
    out.array(n);
    for e in log.entries.iter().take(n) {
        out.array(6);
        out.int(e.id as i64);
        out.int(e.time);
        out.int(e.micros as i64);
        out.array(e.args.len());
        for a in &e.args {
            out.bulk(a);
        }
        out.bulk(e.addr.as_bytes());
        out.bulk(&e.name);
    }
}

fn len(ctx: &mut Ctx, _args: &[Bytes]) {
    ctx.out.int(ctx.srv.observe.slowlog.entries.len() as i64);
}

fn reset(ctx: &mut Ctx, _args: &[Bytes]) {
    ctx.srv.observe.slowlog.reset();
    ctx.out.ok();
}

fn help(ctx: &mut Ctx, _args: &[Bytes]) {
    crate::command::server::reply_help_ending(
        ctx,
        b"slowlog",
        &[
            "GET [<count>]",
            "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
            "    Entries are made of:",
            "    id, timestamp, time in microseconds, arguments array, client IP and port,",
            "    client name",
            "LEN",
            "    Return the length of the slowlog.",
            "RESET",
            "    Reset the slowlog.",
        ],
        "    Prints this help.",
    );
}
