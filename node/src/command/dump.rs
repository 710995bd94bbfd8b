//! DUMP, RESTORE and RESTORE-ASKING with Valkey's RDB-compatible payload, so external tools
//! (valkey-cli --cluster import, RIOT, RedisShake) can move keys in and out. The payload
//! format itself is in `cluster::serialize`.

use bytes::Bytes;

use super::Handler;
use crate::cluster::serialize;
use crate::exec::Ctx;

pub fn handler(name: &str) -> Option<Handler> {
    Some(match name {
        "dump" => dump,
        "restore" | "restore-asking" => restore,
        _ => return None,
    })
}

/// DUMP key
fn dump(ctx: &mut Ctx, args: &[Bytes]) {
    let payload = ctx.lookup_read(&args[1]).map(|e| serialize::dump(e.value()));
    match payload {
        Some(p) => ctx.out.bulk(&p),
        None => ctx.out.null(),
    }
}

/// RESTORE key ttl serialized-value [REPLACE] [ABSTTL] [IDLETIME seconds] [FREQ frequency]
fn restore(ctx: &mut Ctx, args: &[Bytes]) {
    let (mut replace, mut absttl) = (false, false);
    let (mut idle, mut freq) = (-1i64, -1i64);
    let mut j = 4;
    while j < args.len() {
        let more = args.len() - j - 1;
        let a = &args[j];
        if a.eq_ignore_ascii_case(b"replace") {
            replace = true;
        } else if a.eq_ignore_ascii_case(b"absttl") {
            absttl = true;
        } else if a.eq_ignore_ascii_case(b"idletime") && more >= 1 && freq == -1 {
            let Some(v) = ctx.arg_i64(&args[j + 1]) else { return };
            if v < 0 {
                return ctx.out.err("Invalid IDLETIME value, must be >= 0");
            }
            idle = v;
            j += 1;
        } else if a.eq_ignore_ascii_case(b"freq") && more >= 1 && idle == -1 {
            let Some(v) = ctx.arg_i64(&args[j + 1]) else { return };
            if !(0..=255).contains(&v) {
                return ctx.out.err("Invalid FREQ value, must be >= 0 and <= 255");
            }
            freq = v;
            j += 1;
        } else {
            return ctx.syntax_error();
        }
        j += 1;
    }
    let key = &args[1];
    if !replace && ctx.lookup_write(key).is_some() {
        return ctx.out.error("BUSYKEY Target key name already exists.");
    }
    let Some(mut ttl) = ctx.arg_i64(&args[2]) else { return };
    if ttl < 0 {
        return ctx.out.err("Invalid TTL value, must be >= 0");
    }
    let value = match serialize::restore(&args[3]) {
        Ok(v) => v,
        Err(e) => return ctx.out.err(&e.to_string()),
    };
    if replace {
        if let Some(old) = ctx.db().remove(key) {
            ctx.free_later(old);
        }
    }
    if ttl != 0 && !absttl {
        ttl = ttl.saturating_add(ctx.now_ms);
    }
    if ttl != 0 && ttl <= ctx.now_ms {
        // Already expired: nothing to create (an old key, if replaced, is gone).
        return ctx.out.ok();
    }
    let clock = ctx.clock();
    let lru = if idle > 0 { clock.saturating_sub(idle.min(u32::MAX as i64) as u32) } else { clock };
    ctx.db().set(key, value, (ttl != 0).then_some(ttl), lru);
    ctx.out.ok();
}

#[cfg(test)]
mod tests {
    use crate::exec::testing::Harness;

    #[test]
    fn dump_and_restore() {
        let mut h = Harness::default();
        h.run("SET h hello");
        assert_eq!(
            h.run_as(0, &[b"DUMP", b"h"]),
            b"$17\r\n\x00\x05hello\x0b\x00\x0a\xad\x62\x05\x98\xab\xc9\x83\r\n"
        );
        assert_eq!(h.run("DUMP nope"), "$-1\r\n");
        let payload = h.run_as(0, &[b"DUMP", b"h"]);
        let payload = &payload[5..payload.len() - 2];
        assert_eq!(
            h.run_as(0, &[b"RESTORE", b"h", b"0", payload]),
            b"-BUSYKEY Target key name already exists.\r\n"
        );
        assert_eq!(h.run_as(0, &[b"RESTORE", b"h2", b"0", payload]), b"+OK\r\n");
        assert_eq!(h.run("GET h2"), "$5\r\nhello\r\n");
        assert_eq!(h.run_as(0, &[b"RESTORE", b"h2", b"5000", payload, b"REPLACE"]), b"+OK\r\n");
        let pttl = h.run("PTTL h2");
        assert!(pttl.starts_with(":4") || pttl.starts_with(":5"), "{pttl}");
        // An absolute TTL in the past replaces the key with nothing.
        assert_eq!(h.run_as(0, &[b"RESTORE", b"h2", b"1", payload, b"REPLACE", b"ABSTTL"]), b"+OK\r\n");
        assert_eq!(h.run("EXISTS h2"), ":0\r\n");
        assert_eq!(
            h.run_as(0, &[b"RESTORE", b"x", b"-1", payload]),
            b"-ERR Invalid TTL value, must be >= 0\r\n"
        );
        assert_eq!(
            h.run_as(0, &[b"RESTORE", b"x", b"0", b"garbage-payload"]),
            b"-ERR DUMP payload version or checksum are wrong\r\n"
        );
        assert_eq!(h.run_as(0, &[b"RESTORE", b"x", b"0", payload, b"BOGUS"]), b"-ERR syntax error\r\n");
        assert_eq!(
            h.run_as(0, &[b"RESTORE", b"x", b"0", payload, b"FREQ", b"300"]),
            b"-ERR Invalid FREQ value, must be >= 0 and <= 255\r\n"
        );
        assert_eq!(h.run_as(0, &[b"RESTORE-ASKING", b"y", b"0", payload]), b"+OK\r\n");
    }
}
