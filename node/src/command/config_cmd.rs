//! CONFIG GET/SET/RESETSTAT/REWRITE/HELP. The directive table and value rules live in
//! `crate::config`; this module adds what Valkey's `configGetCommand`/`configSetCommand` do
//! around them: the order in which errors are found and reported, protected directives, alias
//! handling, and the side effects a new value has on the running node.

use bytes::Bytes;

use super::Handler;
use crate::config::{table, Directive};
use crate::exec::Ctx;

pub fn handler(name: &str) -> Option<Handler> {
    Some(match name {
        "config|get" => config_get,
        "config|set" => config_set,
        "config|resetstat" => config_resetstat,
        "config|rewrite" => config_rewrite,
        "config|help" => config_help,
        _ => return None,
    })
}

/// Directives Valkey marks `PROTECTED_CONFIG`: settable only when `enable-protected-configs`
/// allows it (it defaults to `no`).
const PROTECTED: &[&str] = &["dir", "dbfilename"];

const HELP: &[&str] = &[
    "GET <pattern>",
    "    Return parameters matching the glob-like <pattern> and their values.",
    "SET <directive> <value>",
    "    Set the configuration <directive> to <value>.",
    "RESETSTAT",
    "    Reset statistics reported by the INFO command.",
    "REWRITE",
    "    Rewrite the configuration file.",
];

fn config_help(ctx: &mut Ctx, args: &[Bytes]) {
    super::server::reply_help(ctx, &args[0], HELP);
}

/// The value CONFIG GET shows: `dir` is the working directory, as Valkey's `getcwd` getter.
fn shown_value(name: &str, stored: String) -> String {
    if name.eq_ignore_ascii_case("dir") {
        if let Ok(cwd) = std::env::current_dir() {
            return cwd.display().to_string();
        }
    }
    stored
}

fn config_get(ctx: &mut Ctx, args: &[Bytes]) {
    // Names are reported as asked (exact names) or as registered (patterns), once each,
    // compared case-insensitively as Valkey's match dictionary does.
    let mut found: Vec<(String, String)> = Vec::new();
    let seen = |found: &[(String, String)], n: &str| found.iter().any(|(f, _)| f.eq_ignore_ascii_case(n));
    for pat in &args[2..] {
        if !pat.iter().any(|c| matches!(c, b'[' | b'*' | b'?')) {
            let name = String::from_utf8_lossy(pat);
            if seen(&found, &name) {
                continue;
            }
            if let Some(d) = table::find(&name) {
                let v = ctx.srv.config.get(d.name).unwrap_or("").to_string();
                found.push((name.into_owned(), shown_value(d.name, v)));
            }
            continue;
        }
        for (name, v) in ctx.srv.config.matching(pat) {
            if !seen(&found, &name) {
                let v = shown_value(&name, v);
                found.push((name, v));
            }
        }
    }
    ctx.out.map(found.len());
    for (n, v) in &found {
        ctx.out.bulk(n.as_bytes());
        ctx.out.bulk(v.as_bytes());
    }
}

/// True if the running client may set protected directives (`enable-protected-configs` is
/// `yes`, or `local` and the client is on the loopback interface or a Unix socket).
fn protected_allowed(ctx: &mut Ctx) -> bool {
    match ctx.srv.config.get("enable-protected-configs") {
        Some("yes") => true,
        Some("local") => {
            let addr = &ctx.client().addr;
            addr.starts_with("127.") || addr.starts_with("[::1]") || !addr.contains(':')
        }
        _ => false,
    }
}

/// The name Valkey reports for a directive reached through `given`: the alias entry is a
/// separate registration carrying the alias as its name.
fn registered_name(d: &'static Directive, given: &str) -> &'static str {
    match d.alias {
        Some(a) if a.eq_ignore_ascii_case(given) => a,
        _ => d.name,
    }
}

fn set_failed(ctx: &mut Ctx, name: &str, reason: &str) {
    let msg = format!("CONFIG SET failed (possibly related to argument '{name}') - {reason}");
    ctx.out.err(&msg);
}

fn config_set(ctx: &mut Ctx, args: &[Bytes]) {
    if args.len() % 2 == 1 {
        return ctx.syntax_error();
    }
    let pairs: Vec<(String, String)> = args[2..]
        .chunks_exact(2)
        .map(|p| (String::from_utf8_lossy(&p[0]).into_owned(), String::from_utf8_lossy(&p[1]).into_owned()))
        .collect();

    // 1. Look every name up; the first problem found is the one reported.
    let allowed = protected_allowed(ctx);
    let mut dirs: Vec<(&'static Directive, &'static str)> = Vec::with_capacity(pairs.len());
    for (name, _) in &pairs {
        let Some(d) = table::find(name) else {
            let msg = format!("Unknown option or number of arguments for CONFIG SET - '{name}'");
            return ctx.out.err(&msg);
        };
        let reg = registered_name(d, name);
        if !d.mutable {
            return set_failed(ctx, name, "can't set immutable config");
        }
        if PROTECTED.contains(&d.name) && !allowed {
            return set_failed(ctx, name, "can't set protected config");
        }
        if dirs.iter().any(|(_, r)| *r == reg) {
            return set_failed(ctx, name, "duplicate parameter");
        }
        dirs.push((d, reg));
    }

    // 2. Validate every value, in order, before anything changes. A directive and its alias
    //    are distinct registrations in Valkey, so both may appear: the later one wins.
    let mut canon: Vec<(String, String)> = Vec::with_capacity(pairs.len());
    for ((d, reg), (_, value)) in dirs.iter().zip(&pairs) {
        if let Err(reason) = table::normalize(d, value) {
            return set_failed(ctx, reg, &reason);
        }
        match canon.iter_mut().find(|(n, _)| n == d.name) {
            Some(slot) => slot.1 = value.clone(),
            None => canon.push((d.name.to_string(), value.clone())),
        }
    }
    let old = match ctx.srv.config.set_many(&canon) {
        Ok(old) => old,
        Err((name, reason)) => return set_failed(ctx, &name, &reason),
    };

    // 3. Apply; on failure restore every previous value and re-apply those.
    if let Err((name, reason)) = apply(ctx, &canon) {
        ctx.srv.config.restore(old);
        let _ = apply(ctx, &canon);
        return set_failed(ctx, name, &reason);
    }
    ctx.out.ok();
}

/// Side effects of new values. `maxclients`, `hz`, `timeout` and the like are read from the
/// configuration where they are used; the others are acted on here.
fn apply(ctx: &mut Ctx, set: &[(String, String)]) -> Result<(), (&'static str, String)> {
    // TLS files are re-read once per CONFIG SET, so a certificate and its key set together
    // are swapped together (and a bad pair refuses the whole command).
    if let Some((name, _)) = set.iter().find(|(n, _)| crate::exec::tls_config::is_tls_directive(n)) {
        let name = crate::config::table::find(name).map_or("tls", |d| d.name);
        crate::exec::tls_config::install(ctx.srv).map_err(|e| (name, e.to_string()))?;
    }
    for (name, _) in set {
        match name.as_str() {
            "loglevel" => {
                let level = ctx.srv.config.get("loglevel").unwrap_or("notice");
                log::set_max_level(crate::logging::level_filter(level));
            }
            "dir" => {
                let dir = ctx.srv.config.get("dir").unwrap_or("");
                if !dir.is_empty() {
                    std::env::set_current_dir(dir).map_err(|e| ("dir", os_error_text(&e)))?;
                }
            }
            "notify-keyspace-events" => {
                let v = ctx.srv.config.get("notify-keyspace-events").unwrap_or("");
                let flags = crate::config::pubsub::notify_flags(v).unwrap_or(0);
                ctx.srv.set_notify_flags(flags);
            }
            "slowlog-log-slower-than"
            | "slowlog-max-len"
            | "latency-monitor-threshold"
            | "latency-tracking"
            | "cluster-slot-stats-enabled" => {
                ctx.srv.observe.configure(&ctx.srv.config);
                let slot_stats = ctx.srv.config.get_bool("cluster-slot-stats-enabled");
                if let Some(cl) = ctx.srv.cluster.as_mut() {
                    cl.slot_stats.set_enabled(slot_stats);
                }
                // Per-slot CPU time needs each command timed.
                ctx.srv.time_commands = ctx.srv.observe.timing() || (slot_stats && ctx.srv.cluster.is_some());
            }
            "requirepass" => {
                // Valkey's `ACLUpdateDefaultUserPassword`: connected clients keep their state.
                let pass = ctx.srv.config.get("requirepass").unwrap_or("").to_string();
                ctx.srv.acl.set_requirepass(ctx.srv.registry, &pass);
            }
            "acllog-max-len" => {
                ctx.srv.acl.log.max_len = ctx.srv.config.get_i64("acllog-max-len").max(0) as usize;
                ctx.srv.acl.log.trim();
            }
            "acl-pubsub-default" => {
                ctx.srv.acl.pubsub_default_all =
                    ctx.srv.config.get("acl-pubsub-default") == Some("allchannels");
            }
            "busy-reply-threshold" => ctx.srv.busy_reply_ms = ctx.srv.config.get_i64("busy-reply-threshold"),
            "client-output-buffer-limit" => {
                let v = ctx.srv.config.get("client-output-buffer-limit").unwrap_or("").to_string();
                ctx.srv.pubsub.set_limits(&v);
            }
            "maxmemory"
            | "maxmemory-policy"
            | "maxmemory-samples"
            | "maxmemory-eviction-tenacity"
            | "lfu-log-factor"
            | "lfu-decay-time"
            | "lazyfree-lazy-eviction" => crate::exec::evict::apply_config(ctx.srv),
            _ => {}
        }
    }
    Ok(())
}

/// `strerror` text of an I/O error, without Rust's ` (os error N)` suffix.
fn os_error_text(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

fn config_resetstat(ctx: &mut Ctx, _args: &[Bytes]) {
    ctx.srv.reset_stats();
    if let Some(cl) = ctx.srv.cluster.as_mut() {
        cl.slot_stats.reset();
    }
    super::info::reset_peak();
    let io = &ctx.srv.io_stats;
    for c in [&io.reads, &io.writes, &io.freed] {
        c.store(0, std::sync::atomic::Ordering::Relaxed);
    }
    ctx.out.ok();
}

fn config_rewrite(ctx: &mut Ctx, _args: &[Bytes]) {
    match ctx.srv.config.rewrite() {
        Ok(()) => {
            log::info!("CONFIG REWRITE executed with success.");
            ctx.out.ok();
        }
        Err(msg) => {
            log::warn!("CONFIG REWRITE failed: {msg}");
            ctx.out.err(&msg);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::exec::testing::Harness;

    #[test]
    fn get_exact_alias_and_patterns_without_duplicates() {
        let mut h = Harness::default();
        assert_eq!(h.run("CONFIG GET HZ"), "*2\r\n$2\r\nHZ\r\n$2\r\n10\r\n");
        assert_eq!(h.run("CONFIG GET hz HZ h?"), "*2\r\n$2\r\nhz\r\n$2\r\n10\r\n");
        assert_eq!(h.run("CONFIG GET nosuch"), "*0\r\n");
        assert_eq!(
            h.run("CONFIG GET hash-max-ziplist-entries"),
            "*2\r\n$24\r\nhash-max-ziplist-entries\r\n$3\r\n128\r\n"
        );
        let r = h.run("CONFIG GET hash-max-*-entries");
        assert!(r.starts_with("*4\r\n"), "{r}");
        let r = h.run("CONFIG GET maxmemory maxmemory*");
        assert_eq!(r.matches("$9\r\nmaxmemory\r\n").count(), 1, "{r}");
        h.clients[0].st.resp3 = true;
        assert_eq!(h.run("CONFIG GET hz"), "%1\r\n$2\r\nhz\r\n$2\r\n10\r\n");
        let cwd = std::env::current_dir().unwrap().display().to_string();
        assert!(h.run("CONFIG GET dir").contains(&cwd));
    }

    #[test]
    fn set_errors_in_valkey_order() {
        let mut h = Harness::default();
        assert_eq!(h.run("CONFIG SET hz 10 hz"), "-ERR syntax error\r\n");
        assert_eq!(
            h.run("CONFIG SET hz abc nosuch 1"),
            "-ERR Unknown option or number of arguments for CONFIG SET - 'nosuch'\r\n"
        );
        assert_eq!(
            h.run("CONFIG SET hz 10 HZ 11"),
            "-ERR CONFIG SET failed (possibly related to argument 'HZ') - duplicate parameter\r\n"
        );
        assert_eq!(
            h.run("CONFIG SET HZ abc"),
            "-ERR CONFIG SET failed (possibly related to argument 'hz') - argument couldn't be parsed into an integer\r\n"
        );
        assert_eq!(
            h.run("CONFIG SET daemonize no"),
            "-ERR CONFIG SET failed (possibly related to argument 'daemonize') - can't set immutable config\r\n"
        );
        assert_eq!(
            h.run("CONFIG SET dir /tmp"),
            "-ERR CONFIG SET failed (possibly related to argument 'dir') - can't set protected config\r\n"
        );
        assert_eq!(
            h.run("CONFIG SET maxmemory 10mb appendonly maybe"),
            "-ERR CONFIG SET failed (possibly related to argument 'appendonly') - argument must be 'yes' or 'no'\r\n"
        );
        assert_eq!(h.srv.config.get("maxmemory"), Some("0"));
        assert_eq!(
            h.run("CONFIG SET hash-max-ziplist-entries x"),
            "-ERR CONFIG SET failed (possibly related to argument 'hash-max-ziplist-entries') - argument couldn't be parsed into an integer\r\n"
        );
    }

    #[test]
    fn set_applies_atomically() {
        let mut h = Harness::default();
        assert_eq!(h.run("CONFIG SET maxmemory 1kb HZ 20"), "+OK\r\n");
        assert_eq!(h.srv.config.get("maxmemory"), Some("1024"));
        assert_eq!(h.srv.config.get("hz"), Some("20"));
        // An alias and its directive are distinct registrations: the later value wins.
        assert_eq!(h.run("CONFIG SET hash-max-ziplist-entries 1 hash-max-listpack-entries 2"), "+OK\r\n");
        assert_eq!(h.srv.config.get("hash-max-listpack-entries"), Some("2"));
        assert_eq!(h.run("CONFIG SET requirepass secret"), "+OK\r\n");
        assert!(h.clients[0].st.authenticated);
    }

    #[test]
    fn failed_apply_rolls_back() {
        let mut h = Harness::default();
        h.srv.config.set_many(&[("dir".into(), "/no/such/dir/shoal".into())]).ok();
        let set =
            vec![("hz".to_string(), "30".to_string()), ("dir".to_string(), "/no/such/dir/shoal".to_string())];
        let old = h.srv.config.set_many(&set[..1]).unwrap_or_default();
        let mut out = crate::protocol::Reply::new(false);
        let mut ctx = crate::exec::Ctx {
            srv: &mut h.srv,
            clients: &mut h.clients,
            me: 0,
            out: &mut out,
            cmd: &crate::command::table::COMMANDS[0],
            cmd_name: "config|set",
            now_ms: 0,
        };
        let err = super::apply(&mut ctx, &set).unwrap_err();
        assert_eq!(err, ("dir", "No such file or directory".to_string()));
        ctx.srv.config.restore(old);
        assert_eq!(h.srv.config.get("hz"), Some("10"));
    }

    #[test]
    fn resetstat_rewrite_help() {
        let mut h = Harness::default();
        h.srv.stats.keyspace_hits = 5;
        h.srv.stats.total_commands = 1000;
        h.srv.last_sample = (std::time::Instant::now(), 1000);
        h.srv.ops_samples = [7; 16];
        assert_eq!(h.run("CONFIG RESETSTAT"), "+OK\r\n");
        assert_eq!(h.srv.stats.keyspace_hits, 0);
        // The ops/sec sampler restarts with the counter (its base above the count underflowed
        // in the executor's cron).
        assert!(h.srv.last_sample.1 <= h.srv.stats.total_commands, "{:?}", h.srv.last_sample);
        assert_eq!(h.srv.instantaneous_ops(), 0);
        assert_eq!(h.run("CONFIG REWRITE"), "-ERR The server is running without a config file\r\n");
        let help = h.run("config help");
        assert!(help.starts_with("*11\r\n+CONFIG <subcommand>"), "{help}");
        assert!(help.ends_with("+HELP\r\n+    Print this help.\r\n"), "{help}");
    }
}
