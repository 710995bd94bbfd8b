//! Server-wide commands that are not CONFIG or INFO: DBSIZE, FLUSHDB/FLUSHALL, SWAPDB, TIME,
//! LASTSAVE, MEMORY USAGE/HELP, SHUTDOWN and FUNCTION FLUSH. Argument checks and error texts
//! follow Valkey 8 (`db.c`, `object.c`, `server.c`, `functions.c`).

use bytes::Bytes;

use super::Handler;
use crate::exec::{Ctx, Shutdown};
use crate::keyspace::ValueRef;

pub fn handler(name: &str) -> Option<Handler> {
    Some(match name {
        "dbsize" => dbsize,
        "monitor" => monitor,
        "flushdb" => flushdb,
        "flushall" => flushall,
        "swapdb" => swapdb,
        "time" => time,
        "lastsave" => lastsave,
        "memory|usage" => memory_usage,
        "memory|help" => memory_help,
        "memory|doctor" => memory_doctor,
        "memory|malloc-stats" => memory_malloc_stats,
        "memory|purge" => memory_purge,
        "memory|stats" => memory_stats,
        "shutdown" => shutdown,
        _ => return None,
    })
}

fn dbsize(ctx: &mut Ctx, _args: &[Bytes]) {
    let n = ctx.db().len();
    ctx.out.int(n as i64);
}

/// Valkey's `getFlushCommandFlags`: nothing, `SYNC` or `ASYNC`, else a syntax error. Both modes
/// free the old tables off the executor, so they differ only in name.
fn flush_mode_ok(args: &[Bytes]) -> bool {
    match args {
        [_] => true,
        [_, mode] => mode.eq_ignore_ascii_case(b"sync") || mode.eq_ignore_ascii_case(b"async"),
        _ => false,
    }
}

fn flushdb(ctx: &mut Ctx, args: &[Bytes]) {
    if !flush_mode_ok(args) {
        return ctx.syntax_error();
    }
    let old = ctx.db().clear();
    ctx.free_later(old);
    crate::exec::tracking::flushed(ctx.srv, ctx.clients);
    ctx.out.ok();
}

fn flushall(ctx: &mut Ctx, args: &[Bytes]) {
    if !flush_mode_ok(args) {
        return ctx.syntax_error();
    }
    for i in 0..ctx.srv.dbs.len() {
        if !ctx.srv.dbs[i].is_empty() {
            let old = ctx.srv.dbs[i].clear();
            ctx.free_later(old);
        }
    }
    crate::exec::tracking::flushed(ctx.srv, ctx.clients);
    ctx.out.ok();
}

/// A DB index argument as `getIntFromObjectOrReply` reads it: a C `int`.
fn db_index(arg: &[u8]) -> Option<i64> {
    crate::util::parse_i64(arg).filter(|v| i32::try_from(*v).is_ok())
}

fn swapdb(ctx: &mut Ctx, args: &[Bytes]) {
    // Even with several databases (Valkey 9's `cluster-databases`): a swap would move keys
    // of every slot at once, under migrations and replicas that track them per slot.
    if ctx.srv.config.get_bool("cluster-enabled") {
        return ctx.out.err("SWAPDB is not allowed in cluster mode");
    }
    let Some(a) = db_index(&args[1]) else {
        return ctx.out.err("invalid first DB index");
    };
    let Some(b) = db_index(&args[2]) else {
        return ctx.out.err("invalid second DB index");
    };
    let n = ctx.srv.dbs.len() as i64;
    if a < 0 || a >= n || b < 0 || b >= n {
        return ctx.out.err("DB index is out of range");
    }
    // Clients keep their DB index, so after the swap they see the other data set, as in Valkey.
    let now = ctx.now_ms;
    crate::command::txn::swapdb(ctx.srv, ctx.clients, a as usize, b as usize, now);
    ctx.out.ok();
}

fn time(ctx: &mut Ctx, _args: &[Bytes]) {
    let us = crate::util::now_us();
    let mut buf = itoa::Buffer::new();
    ctx.out.array(2);
    ctx.out.bulk(buf.format(us.div_euclid(1_000_000)).as_bytes());
    ctx.out.bulk(buf.format(us.rem_euclid(1_000_000)).as_bytes());
}

/// There is no persistence: the last "save" is the start of the node, as in a fresh Valkey.
fn lastsave(ctx: &mut Ctx, _args: &[Bytes]) {
    ctx.out.int(ctx.srv.started_unix as i64);
}

const MEMORY_HELP: &[&str] = &[
    "DOCTOR",
    "    Return memory problems reports.",
    "MALLOC-STATS",
    "    Return internal statistics report from the memory allocator.",
    "PURGE",
    "    Attempt to purge dirty pages for reclamation by the allocator.",
    "STATS",
    "    Return information about the memory usage of the server.",
    "USAGE <key> [SAMPLES <count>]",
    "    Return memory in bytes used by <key> and its value. Nested values are",
    "    sampled up to <count> times (default: 5, 0 means sample all).",
];

fn memory_help(ctx: &mut Ctx, args: &[Bytes]) {
    reply_help(ctx, &args[0], MEMORY_HELP);
}

/// Valkey's verdict for a small instance; Shoal has no fragmentation or big-buffer detector
/// yet, so a populated instance gets Valkey's "no problems" text.
fn memory_doctor(ctx: &mut Ctx, _args: &[Bytes]) {
    let empty = ctx.srv.dbs.iter().all(|d| d.is_empty());
    let text = if empty {
        "Hi Sam, this instance is empty or is using very little memory, my issues detector can't \
         be used in these conditions. Please, leave for your mission on Earth and fill it with \
         some data. The new Sam and I will be back to our programming as soon as I finished \
         rebooting."
    } else {
        "Hi Sam, I can't find any memory issue in your instance. I can only account for what \
         occurs on this base."
    };
    ctx.out.verbatim(text.as_bytes(), "txt");
}

/// Valkey's answer when the allocator has no statistics report (libc malloc).
fn memory_malloc_stats(ctx: &mut Ctx, _args: &[Bytes]) {
    ctx.out.verbatim(b"Stats not supported for the current allocator", "txt");
}

/// Returns freed pages to the system where the allocator can (glibc's `malloc_trim`).
fn memory_purge(ctx: &mut Ctx, _args: &[Bytes]) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
    ctx.out.ok();
}

/// `MEMORY STATS`: Valkey's field names and order; the overheads Shoal does not have
/// (replication backlog, AOF, Lua) are zero.
fn memory_stats(ctx: &mut Ctx, _args: &[Bytes]) {
    use super::info::{rss_bytes, startup_memory, used_memory, used_memory_peak};
    let used = used_memory();
    let peak = used_memory_peak().max(used);
    let startup = startup_memory().min(used);
    let rss = rss_bytes();
    let keys: usize = ctx.srv.dbs.iter().map(|d| d.len()).sum();
    let dataset = used - startup;
    let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let mut fields: Vec<(&str, Result<i64, f64>)> = vec![
        ("peak.allocated", Ok(peak as i64)),
        ("total.allocated", Ok(used as i64)),
        ("startup.allocated", Ok(startup as i64)),
        ("replication.backlog", Ok(0)),
        ("clients.slaves", Ok(0)),
        ("clients.normal", Ok(0)),
        ("cluster.links", Ok(0)),
        ("aof.buffer", Ok(0)),
        ("lua.caches", Ok(0)),
        ("functions.caches", Ok(0)),
        ("overhead.total", Ok(startup as i64)),
    ];
    let mut dbs = Vec::new();
    for (i, d) in ctx.srv.dbs.iter().enumerate() {
        if !d.is_empty() {
            dbs.push((i, d.len()));
        }
    }
    fields.extend([
        ("keys.count", Ok(keys as i64)),
        ("keys.bytes-per-key", Ok(if keys == 0 { 0 } else { (dataset / keys as u64) as i64 })),
        ("dataset.bytes", Ok(dataset as i64)),
        ("dataset.percentage", Err(100.0 * ratio(dataset, used))),
        ("peak.percentage", Err(100.0 * ratio(used, peak))),
        ("fragmentation", Err(ratio(rss, used))),
        ("fragmentation.bytes", Ok(rss as i64 - used as i64)),
    ]);
    ctx.out.map(fields.len() + dbs.len());
    let mut it = fields.into_iter();
    for (name, v) in it.by_ref().take(11) {
        stat(ctx, name, v);
    }
    for (i, n) in dbs {
        ctx.out.bulk_str(&format!("db.{i}"));
        ctx.out.map(2);
        ctx.out.bulk_str("overhead.hashtable.main");
        ctx.out.int(n as i64 * 24);
        ctx.out.bulk_str("overhead.hashtable.expires");
        ctx.out.int(0);
    }
    for (name, v) in it {
        stat(ctx, name, v);
    }
}

fn stat(ctx: &mut Ctx, name: &str, v: Result<i64, f64>) {
    ctx.out.bulk_str(name);
    match v {
        Ok(n) => ctx.out.int(n),
        Err(f) => ctx.out.double(f),
    }
}

/// MONITOR: from now on this client receives every command the node runs (`exec::monitor`).
fn monitor(ctx: &mut Ctx, _args: &[Bytes]) {
    let me = ctx.me;
    let st = &mut ctx.clients[me].st;
    if st.deny_blocking || st.multi.is_some() {
        return ctx.out.err("MONITOR isn't allowed for DENY BLOCKING client");
    }
    if st.replica || st.monitor {
        return;
    }
    st.monitor = true;
    let id = st.id;
    ctx.srv.monitors.add(me, id);
    ctx.out.ok();
}

/// Valkey's `addReplyHelp`: a header naming the command, the lines, and the HELP footer, all
/// as status replies.
pub fn reply_help(ctx: &mut Ctx, cmd: &[u8], lines: &[&str]) {
    reply_help_ending(ctx, cmd, lines, "    Print this help.");
}

/// `reply_help` with another footer text (SLOWLOG and LATENCY say "Prints this help.").
pub fn reply_help_ending(ctx: &mut Ctx, cmd: &[u8], lines: &[&str], footer: &str) {
    let cmd = String::from_utf8_lossy(cmd).to_ascii_uppercase();
    ctx.out.array(lines.len() + 3);
    ctx.out.simple(&format!("{cmd} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"));
    for l in lines {
        ctx.out.simple(l);
    }
    ctx.out.simple("HELP");
    ctx.out.simple(footer);
}

fn memory_usage(ctx: &mut Ctx, args: &[Bytes]) {
    // SAMPLES only matters for nested types; validate it as Valkey does and ignore it.
    let mut j = 3;
    while j < args.len() {
        if args[j].eq_ignore_ascii_case(b"samples") && j + 1 < args.len() {
            let Some(n) = ctx.arg_i64(&args[j + 1]) else {
                return;
            };
            if n < 0 {
                return ctx.syntax_error();
            }
            j += 2;
        } else {
            return ctx.syntax_error();
        }
    }
    // `objectCommandLookup`: counts a hit or miss but does not touch the access time.
    let key = &args[2];
    let i = ctx.client().db;
    let now = ctx.now_ms;
    let size = ctx.srv.dbs[i].get(key, now, 0, false).map(|e| entry_usage(key, e.value()));
    match size {
        Some(n) => {
            ctx.srv.stats.keyspace_hits += 1;
            ctx.out.int(n as i64);
        }
        None => {
            ctx.srv.stats.keyspace_misses += 1;
            ctx.out.null();
        }
    }
}

/// Rounds an allocation up to jemalloc's size class, as `zmalloc_size` reports it.
fn alloc_size(n: usize) -> usize {
    if n <= 8 {
        return 8;
    }
    if n <= 128 {
        return n.div_ceil(16) * 16;
    }
    // Four classes per doubling above 128 bytes.
    let pow = usize::BITS - (n - 1).leading_zeros(); // 2^pow >= n
    let step = 1usize << (pow - 3);
    n.div_ceil(step) * step
}

/// Bytes an sds string of `len` bytes occupies (header sized by length, plus the NUL).
fn sds_size(len: usize) -> usize {
    let hdr = match len {
        0..32 => 1,
        32..256 => 3,
        256..65536 => 5,
        _ if len as u64 <= u32::MAX as u64 => 9,
        _ => 17,
    };
    alloc_size(hdr + len + 1)
}

/// `MEMORY USAGE` estimate with Valkey's layout: the key's sds, a 24-byte dict entry, and the
/// value object (16-byte header; short strings embedded in it, longer ones in their own sds).
pub fn entry_usage(key: &[u8], v: ValueRef<'_>) -> usize {
    const ROBJ: usize = 16;
    const DICT_ENTRY: usize = 24;
    let value = match v {
        ValueRef::Int(_) => ROBJ,
        ValueRef::Str(s) if s.len() <= crate::keyspace::value::EMBSTR_MAX => {
            alloc_size(ROBJ + 3 + s.len() + 1)
        }
        ValueRef::Str(s) => ROBJ + sds_size(s.len()),
        // Collections: the object header plus what the type reports it holds.
        other => ROBJ + other.heap_size(),
    };
    sds_size(key.len()) + DICT_ENTRY + value
}

/// `SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]`. There is no persistence, so every accepted
/// form stops the node at once, without a reply; ABORT never finds a shutdown in progress.
fn shutdown(ctx: &mut Ctx, args: &[Bytes]) {
    let (mut nosave, mut save, mut other, mut abort) = (false, false, false, false);
    for a in &args[1..] {
        if a.eq_ignore_ascii_case(b"nosave") {
            nosave = true;
        } else if a.eq_ignore_ascii_case(b"save") {
            save = true;
        } else if a.eq_ignore_ascii_case(b"now") || a.eq_ignore_ascii_case(b"force") {
            other = true;
        } else if a.eq_ignore_ascii_case(b"abort") {
            abort = true;
        } else {
            return ctx.syntax_error();
        }
    }
    if (abort && (nosave || save || other)) || (nosave && save) {
        return ctx.syntax_error();
    }
    if abort {
        return ctx.out.err("No shutdown in progress.");
    }
    if !crate::scripting::busy::shutdown(ctx, nosave) {
        return;
    }
    log::warn!("User requested shutdown...");
    ctx.srv.shutdown = Some(Shutdown::Command);
}

#[cfg(test)]
mod tests {
    use crate::exec::testing::Harness;

    #[test]
    fn dbsize_and_flush() {
        let mut h = Harness::default();
        h.srv.dbs[0].set(b"a", crate::keyspace::Value::Int(1), None, 0);
        h.srv.dbs[1].set(b"b", crate::keyspace::Value::Int(1), None, 0);
        assert_eq!(h.run("DBSIZE"), ":1\r\n");
        assert_eq!(h.run("FLUSHDB x"), "-ERR syntax error\r\n");
        assert_eq!(h.run("FLUSHDB sync async"), "-ERR syntax error\r\n");
        assert_eq!(h.run("FLUSHDB ASYNC"), "+OK\r\n");
        assert_eq!(h.run("DBSIZE"), ":0\r\n");
        assert_eq!(h.srv.dbs[1].len(), 1);
        assert_eq!(h.run("FLUSHALL Sync"), "+OK\r\n");
        assert_eq!(h.srv.dbs[1].len(), 0);
        assert!(!h.srv.garbage.is_empty());
    }

    #[test]
    fn swapdb_checks_and_swaps() {
        let mut h = Harness::default();
        h.srv.dbs[1].set(b"b", crate::keyspace::Value::Int(1), None, 0);
        assert_eq!(h.run("SWAPDB a 1"), "-ERR invalid first DB index\r\n");
        assert_eq!(h.run("SWAPDB 0 01"), "-ERR invalid second DB index\r\n");
        assert_eq!(h.run("SWAPDB 2147483648 0"), "-ERR invalid first DB index\r\n");
        assert_eq!(h.run("SWAPDB -1 0"), "-ERR DB index is out of range\r\n");
        assert_eq!(h.run("SWAPDB 0 16"), "-ERR DB index is out of range\r\n");
        assert_eq!(h.run("SWAPDB 0 1"), "+OK\r\n");
        assert_eq!(h.run("DBSIZE"), ":1\r\n");
        assert_eq!(h.run("SWAPDB 1 1"), "+OK\r\n");
    }

    #[test]
    fn time_and_lastsave() {
        let mut h = Harness::default();
        let t = h.run("TIME");
        assert!(t.starts_with("*2\r\n$10\r\n"), "{t}");
        assert!(h.run("LASTSAVE").starts_with(':'));
    }

    #[test]
    fn memory_usage_matches_valkey_layout() {
        let mut h = Harness::default();
        let long = "x".repeat(100);
        let e44 = "x".repeat(44);
        let f45 = "x".repeat(45);
        for (k, v) in [("a", "1"), ("b", "hello"), ("c", &long), ("e", &e44), ("f", &f45)] {
            let v = crate::keyspace::Value::from_bytes(v.as_bytes());
            h.srv.dbs[0].set(k.as_bytes(), v, None, 0);
        }
        for k in ["a", "b", "c", "e", "f"] {
            let e = h.srv.dbs[0].get(k.as_bytes(), 0, 0, false).expect("stored");
            // Values as redis-server 7.0 with jemalloc reports them.
            let want = match k {
                "a" => 48,
                "b" => 64,
                "c" => 160,
                "e" => 96,
                _ => 112,
            };
            assert_eq!(super::entry_usage(k.as_bytes(), e.value()), want, "{k}");
        }
        assert_eq!(h.run("MEMORY USAGE nokey"), "$-1\r\n");
        assert_eq!(h.run("MEMORY USAGE a SAMPLES"), "-ERR syntax error\r\n");
        assert_eq!(h.run("MEMORY USAGE a SAMPLES -1"), "-ERR syntax error\r\n");
        assert_eq!(h.run("MEMORY USAGE a SAMPLES x"), "-ERR value is not an integer or out of range\r\n");
        assert_eq!(h.run("MEMORY USAGE a samples 0 SAMPLES 3"), ":48\r\n");
        assert_eq!(h.run("MEMORY USAGE a foo 1"), "-ERR syntax error\r\n");
        assert!(h
            .run("MEMORY HELP")
            .starts_with("*14\r\n+MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:\r\n"));
    }

    #[test]
    fn shutdown_forms() {
        let mut h = Harness::default();
        assert_eq!(h.run("SHUTDOWN ABORT"), "-ERR No shutdown in progress.\r\n");
        assert_eq!(h.run("SHUTDOWN foo"), "-ERR syntax error\r\n");
        assert_eq!(h.run("SHUTDOWN NOSAVE SAVE"), "-ERR syntax error\r\n");
        assert_eq!(h.run("SHUTDOWN ABORT NOW"), "-ERR syntax error\r\n");
        assert!(h.srv.shutdown.is_none());
        assert_eq!(h.run("SHUTDOWN NOSAVE NOW FORCE"), "");
        assert_eq!(h.srv.shutdown, Some(crate::exec::Shutdown::Command));
    }
}
