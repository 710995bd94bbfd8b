//! DEBUG, the subset tools and client test suites use, behind `enable-debug-command` as in
//! Valkey (`no` by default; `local` allows loopback and unix-socket clients): SLEEP (stalls
//! the executor, to test timeouts and latency tooling), OBJECT, SET-ACTIVE-EXPIRE, LOG and
//! PROTOCOL (one reply of each RESP3 type, which client libraries test their parsers with).
//! The rest of Valkey's DEBUG (RELOAD, DIGEST, crash and memory tools) is not built.

use std::time::Duration;

use bytes::Bytes;

use crate::exec::Ctx;
use crate::keyspace::ValueRef;

pub fn handler(name: &str) -> Option<crate::command::Handler> {
    (name == "debug").then_some(debug as crate::command::Handler)
}

const NOT_ALLOWED: &str = "DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.";

fn allowed(ctx: &Ctx) -> bool {
    match ctx.srv.config.get("enable-debug-command").unwrap_or("no") {
        "yes" => true,
        "local" => {
            let addr = &ctx.clients[ctx.me].st.addr;
            addr.starts_with("127.")
                || addr.starts_with("[::1]")
                || addr.starts_with("unix")
                || addr.is_empty()
        }
        _ => false,
    }
}

fn debug(ctx: &mut Ctx, args: &[Bytes]) {
    if !allowed(ctx) {
        return ctx.out.err(NOT_ALLOWED);
    }
    let sub = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
    match (sub.as_str(), args.len()) {
        ("help", 2) => help(ctx),
        ("sleep", 3) => {
            let secs = std::str::from_utf8(&args[2]).ok().and_then(|s| s.trim().parse::<f64>().ok());
            // Valkey reads the float leniently (strtod: garbage is 0).
            let secs = secs.filter(|s| s.is_finite() && *s > 0.0).unwrap_or(0.0);
            std::thread::sleep(Duration::from_secs_f64(secs.min(3600.0)));
            ctx.out.ok();
        }
        ("set-active-expire", 3) => {
            ctx.srv.active_expire_enabled = crate::util::parse_i64(&args[2]).is_some_and(|n| n != 0);
            ctx.out.ok();
        }
        ("log", 3) => {
            log::warn!("DEBUG LOG: {}", String::from_utf8_lossy(&args[2]));
            ctx.out.ok();
        }
        ("object", 3) => object(ctx, &args[2]),
        ("protocol", 3) => protocol(ctx, &args[2]),
        _ => ctx.out.err(&format!(
            "unknown subcommand or wrong number of arguments for '{}'. Try DEBUG HELP.",
            crate::exec::dispatch::truncate_lossy(&args[1], 128)
        )),
    }
}

/// DEBUG OBJECT key: Valkey's one line; `serializedlength` is the value's RDB payload length.
fn object(ctx: &mut Ctx, key: &[u8]) {
    let clock = ctx.clock();
    let Some(e) = super::keys::read_key(ctx, key, false) else {
        return ctx.out.err("no such key");
    };
    let v = e.value();
    let at = match v {
        ValueRef::Int(_) => 0,
        _ => &v as *const ValueRef<'_> as usize,
    };
    let len =
        crate::replication::rdb::value::encode_payload(v, crate::replication::rdb::DEFAULT_VERSION).len();
    // The payload ends with the RDB version and a CRC-64 (DUMP's trailer): not part of the value.
    let serialized = len.saturating_sub(11);
    let lru = e.lru();
    let line = format!(
        "Value at:0x{at:x} refcount:1 encoding:{} serializedlength:{serialized} lru:{lru} lru_seconds_idle:{}",
        e.encoding(),
        super::keys::object::idle_secs(lru, clock)
    );
    ctx.out.simple(&line);
}

/// DEBUG PROTOCOL type: one reply of the type, as Valkey sends it.
// Valkey's double is the literal 3.141, not an approximation of pi.
#[allow(clippy::approx_constant)]
fn protocol(ctx: &mut Ctx, kind: &[u8]) {
    let out = &mut *ctx.out;
    match String::from_utf8_lossy(kind).to_ascii_lowercase().as_str() {
        "string" => out.bulk(b"Hello World"),
        "integer" => out.int(12345),
        "double" => out.double(3.141),
        "bignum" => out.raw(if out.resp3 {
            b"(1234567999999999999999999999999999999\r\n"
        } else {
            b"$37\r\n1234567999999999999999999999999999999\r\n"
        }),
        "null" => out.null(),
        "array" | "set" => {
            if kind.eq_ignore_ascii_case(b"set") {
                out.set(3);
            } else {
                out.array(3);
            }
            for i in 0..3 {
                out.int(i);
            }
        }
        "map" => {
            out.map(3);
            for i in 0..3 {
                out.int(i);
                out.boolean(i == 1);
            }
        }
        "attrib" => {
            if out.resp3 {
                out.raw(b"|1\r\n");
                out.bulk(b"key-popularity");
                out.array(2);
                out.bulk(b"key:123");
                out.int(90);
            }
            out.bulk(b"Some real reply following the attribute");
        }
        "push" => {
            if !out.resp3 {
                return out.err("RESP2 is not supported by this command");
            }
            out.raw(b">2\r\n");
            out.bulk(b"server-cpu-usage");
            out.int(42);
            out.bulk(b"Some real reply following the push reply");
        }
        "verbatim" => out.verbatim(b"This is a verbatim\nstring", "txt"),
        "true" => out.boolean(true),
        "false" => out.boolean(false),
        _ => out.err("Wrong protocol type name. Please use one of the following: string|integer|double|bignum|null|array|set|map|attrib|push|verbatim|true|false"),
    }
}

fn help(ctx: &mut Ctx) {
    crate::command::server::reply_help(
        ctx,
        b"debug",
        &[
            "LOG <message>",
            "    Write <message> to the server log.",
            "OBJECT <key>",
            "    Show low level info about the `key` and associated value.",
            "PROTOCOL <type>",
            "    Reply with a test value of the specified type. <type> can be: string,",
            "    integer, double, bignum, null, array, set, map, attrib, push, verbatim,",
            "    true, false.",
            "SET-ACTIVE-EXPIRE <0|1>",
            "    Setting it to 0 disables expiring keys in background when they are not",
            "    accessed (otherwise the Redis behavior). Setting it to 1 reenables back the",
            "    default.",
            "SLEEP <seconds>",
            "    Stop the server for <seconds>. Decimals allowed.",
        ],
    );
}
