//! COMMAND tests. Expected replies were captured from Valkey/Redis where both agree; the
//! harness registry gets a stand-in handler for every command so the tests do not depend on
//! which command families are built.

use bytes::Bytes;

use super::info::legacy;
use crate::command::{table::COMMANDS, Registry};
use crate::exec::testing::Harness;
use crate::exec::Ctx;

fn stand_in(ctx: &mut Ctx, _args: &[Bytes]) {
    ctx.out.ok();
}

/// A harness whose registry reports every table command as implemented.
fn harness() -> Harness {
    let mut h = Harness::default();
    let mut reg = Registry::build();
    for e in reg.commands.values_mut() {
        e.handler.get_or_insert(stand_in);
        for s in e.subs.values_mut() {
            s.handler.get_or_insert(stand_in);
        }
    }
    // A container never runs by itself.
    if let Some(e) = reg.commands.get_mut("config") {
        e.handler = None;
    }
    // Leaked: a registry lives as long as the process, as the real one does.
    h.srv.registry = Box::leak(Box::new(reg));
    h
}

fn run(h: &mut Harness, line: &str) -> String {
    h.run(line)
}

fn resp3(h: &mut Harness) {
    h.clients[0].st.resp3 = true;
}

const GET_INFO: &str = "*10\r\n$3\r\nget\r\n:2\r\n*2\r\n+readonly\r\n+fast\r\n:1\r\n:1\r\n:1\r\n\
*3\r\n+@read\r\n+@string\r\n+@fast\r\n*0\r\n*1\r\n*6\r\n$5\r\nflags\r\n*2\r\n+RO\r\n+access\r\n\
$12\r\nbegin_search\r\n*4\r\n$4\r\ntype\r\n$5\r\nindex\r\n$4\r\nspec\r\n*2\r\n$5\r\nindex\r\n:1\r\n\
$9\r\nfind_keys\r\n*4\r\n$4\r\ntype\r\n$5\r\nrange\r\n$4\r\nspec\r\n*6\r\n$7\r\nlastkey\r\n:0\r\n\
$7\r\nkeystep\r\n:1\r\n$5\r\nlimit\r\n:0\r\n*0\r\n";

#[test]
fn info_get_matches_valkey_resp2() {
    let mut h = harness();
    assert_eq!(run(&mut h, "COMMAND INFO get"), format!("*1\r\n{GET_INFO}"));
    assert_eq!(run(&mut h, "COMMAND INFO GeT"), format!("*1\r\n{GET_INFO}"));
}

#[test]
fn info_resp3_uses_sets_and_maps() {
    let mut h = harness();
    resp3(&mut h);
    let r = run(&mut h, "COMMAND INFO get nosuch");
    assert!(r.starts_with("*2\r\n*10\r\n$3\r\nget\r\n:2\r\n~2\r\n+readonly\r\n+fast\r\n"));
    assert!(r.contains("~3\r\n+@read\r\n+@string\r\n+@fast\r\n~0\r\n~1\r\n%3\r\n$5\r\nflags\r\n~2\r\n"));
    assert!(r.contains("$12\r\nbegin_search\r\n%2\r\n"));
    assert!(r.ends_with("~0\r\n_\r\n"), "{r}");
}

#[test]
fn info_unknown_and_malformed_names_are_null() {
    let mut h = harness();
    assert_eq!(
        run(&mut h, "COMMAND INFO nosuch get|x config|get|y |get config|"),
        "*5\r\n$-1\r\n$-1\r\n$-1\r\n$-1\r\n$-1\r\n"
    );
    let r = run(&mut h, "COMMAND INFO CONFIG|GET");
    assert!(r.starts_with("*1\r\n*10\r\n$10\r\nconfig|get\r\n:-3\r\n"), "{r}");
}

#[test]
fn info_hides_internal_flags_and_orders_like_valkey() {
    let mut h = harness();
    // AUTH: table flags include `sentinel`, hidden; `no_auth` shown after `fast`.
    let r = run(&mut h, "COMMAND INFO auth");
    assert!(
        r.contains("*6\r\n+noscript\r\n+loading\r\n+stale\r\n+fast\r\n+no_auth\r\n+allow_busy\r\n"),
        "{r}"
    );
    // SET has a key-extraction function but plain specs: no movablekeys in Valkey 8.
    let r = run(&mut h, "COMMAND INFO set");
    assert!(r.contains("*2\r\n+write\r\n+denyoom\r\n:1\r\n:1\r\n:1\r\n"), "{r}");
    // Containers list their subcommands; leaves have an empty set.
    let r = run(&mut h, "COMMAND INFO object");
    assert!(r.contains("$15\r\nobject|encoding\r\n"), "{r}");
}

#[test]
fn legacy_triples() {
    let find = |n: &str| COMMANDS.iter().find(|m| m.name == n).map(legacy);
    let l = find("mset").map(|l| (l.first, l.last, l.step, l.movable));
    assert_eq!(l, Some((1, -1, 2, false)));
    let l = find("copy").map(|l| (l.first, l.last, l.step, l.movable));
    assert_eq!(l, Some((1, 2, 1, false)));
    let l = find("lcs").map(|l| (l.first, l.last, l.step, l.movable));
    assert_eq!(l, Some((1, 2, 1, false)));
    let l = find("ping").map(|l| (l.first, l.last, l.step, l.movable));
    assert_eq!(l, Some((0, 0, 0, false)));
}

#[test]
fn count_and_list() {
    let mut h = harness();
    let n = COMMANDS.len();
    assert_eq!(run(&mut h, "COMMAND COUNT"), format!(":{n}\r\n"));
    let r = run(&mut h, "COMMAND LIST");
    let subs: usize = COMMANDS.iter().map(|m| m.subcommands.len()).sum();
    assert!(r.starts_with(&format!("*{}\r\n", n + subs)), "{r}");
    assert_eq!(run(&mut h, "COMMAND LIST FILTERBY PATTERN CONFIG|G*"), "*1\r\n$10\r\nconfig|get\r\n");
    assert_eq!(
        run(&mut h, "COMMAND LIST FILTERBY pattern inc*"),
        "*3\r\n$4\r\nincr\r\n$6\r\nincrby\r\n$11\r\nincrbyfloat\r\n"
    );
    let r = run(&mut h, "COMMAND LIST FILTERBY ACLCAT String");
    assert!(r.contains("$6\r\nappend\r\n") && !r.contains("$4\r\nping\r\n"), "{r}");
    assert_eq!(run(&mut h, "COMMAND LIST FILTERBY ACLCAT nosuch"), "*0\r\n");
    assert_eq!(run(&mut h, "COMMAND LIST FILTERBY MODULE m"), "*0\r\n");
    for bad in [
        "COMMAND LIST x",
        "COMMAND LIST FILTERBY",
        "COMMAND LIST FILTERBY PATTERN",
        "COMMAND LIST FILTERBY NOPE x",
        "COMMAND LIST FILTERBY PATTERN a b",
        "COMMAND LIST FILTERBY PATTERN a FILTERBY PATTERN b",
    ] {
        assert_eq!(run(&mut h, bad), "-ERR syntax error\r\n", "{bad}");
    }
}

#[test]
fn getkeys() {
    let mut h = harness();
    assert_eq!(run(&mut h, "COMMAND GETKEYS MSET a 1 b 2"), "*2\r\n$1\r\na\r\n$1\r\nb\r\n");
    assert_eq!(run(&mut h, "COMMAND GETKEYS object encoding k"), "*1\r\n$1\r\nk\r\n");
    assert_eq!(run(&mut h, "COMMAND GETKEYS nosuch"), "-ERR Invalid command specified\r\n");
    assert_eq!(run(&mut h, "COMMAND GETKEYS object nosuch k"), "-ERR Invalid command specified\r\n");
    assert_eq!(run(&mut h, "COMMAND GETKEYS ping"), "-ERR The command has no key arguments\r\n");
    assert_eq!(run(&mut h, "COMMAND GETKEYS config"), "-ERR The command has no key arguments\r\n");
    assert_eq!(
        run(&mut h, "COMMAND GETKEYS get a b"),
        "-ERR Invalid number of arguments specified for command\r\n"
    );
    assert_eq!(
        run(&mut h, "COMMAND GETKEYS mget"),
        "-ERR Invalid number of arguments specified for command\r\n"
    );
    assert_eq!(
        run(&mut h, "COMMAND GETKEYS"),
        "-ERR wrong number of arguments for 'command|getkeys' command\r\n"
    );
}

#[test]
fn getkeys_and_flags() {
    let mut h = harness();
    assert_eq!(
        run(&mut h, "COMMAND GETKEYSANDFLAGS copy a b"),
        "*2\r\n*2\r\n$1\r\na\r\n*2\r\n+RO\r\n+access\r\n*2\r\n$1\r\nb\r\n*2\r\n+OW\r\n+update\r\n"
    );
    assert_eq!(
        run(&mut h, "COMMAND GETKEYSANDFLAGS set a b get"),
        "*1\r\n*2\r\n$1\r\na\r\n*3\r\n+RW\r\n+access\r\n+update\r\n"
    );
    assert_eq!(
        run(&mut h, "COMMAND GETKEYSANDFLAGS set a b"),
        "*1\r\n*2\r\n$1\r\na\r\n*2\r\n+OW\r\n+update\r\n"
    );
    resp3(&mut h);
    assert_eq!(
        run(&mut h, "COMMAND GETKEYSANDFLAGS del a"),
        "*1\r\n*2\r\n$1\r\na\r\n~2\r\n+RM\r\n+delete\r\n"
    );
}

#[test]
fn docs() {
    let mut h = harness();
    let r = run(&mut h, "COMMAND DOCS get nosuch");
    assert_eq!(
        r,
        "*2\r\n$3\r\nget\r\n*10\r\n$7\r\nsummary\r\n$34\r\nReturns the string value of a key.\r\n\
$5\r\nsince\r\n$5\r\n1.0.0\r\n$5\r\ngroup\r\n$6\r\nstring\r\n\
$10\r\ncomplexity\r\n$4\r\nO(1)\r\n$9\r\narguments\r\n*1\r\n*8\r\n$4\r\nname\r\n$3\r\nkey\r\n\
$4\r\ntype\r\n$3\r\nkey\r\n$12\r\ndisplay_text\r\n$3\r\nkey\r\n$14\r\nkey_spec_index\r\n:0\r\n"
    );
    assert_eq!(run(&mut h, "COMMAND DOCS nosuch"), "*0\r\n");
    resp3(&mut h);
    let r = run(&mut h, "COMMAND DOCS lcs");
    assert!(r.starts_with("%1\r\n$3\r\nlcs\r\n%5\r\n"), "{r}");
    // Both key arguments of LCS belong to its single key spec.
    assert_eq!(r.matches("$14\r\nkey_spec_index\r\n:0\r\n").count(), 2, "{r}");
    assert!(r.contains("$5\r\nflags\r\n~1\r\n+optional\r\n"), "{r}");
    let r = run(&mut h, "COMMAND DOCS copy");
    assert!(r.contains("$14\r\nkey_spec_index\r\n:1\r\n"), "{r}");
    let r = run(&mut h, "COMMAND DOCS config");
    assert!(r.contains("$11\r\nsubcommands\r\n%"), "{r}");
    assert!(r.contains("$10\r\nconfig|get\r\n%"), "{r}");
}

#[test]
fn help() {
    let mut h = harness();
    let r = run(&mut h, "command help");
    assert!(r.starts_with("*21\r\n+COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:\r\n"));
    assert!(r.ends_with("+HELP\r\n+    Print this help.\r\n"));
}

#[test]
fn only_registered_commands_are_reported() {
    // The default registry of this build: whatever families exist, COMMAND never reports a
    // command without a handler.
    let mut h = Harness::default();
    let reg = h.srv.registry;
    let n = reg
        .commands
        .values()
        .filter(|e| e.handler.is_some() || e.subs.values().any(|s| s.handler.is_some()))
        .count();
    assert_eq!(h.run("COMMAND COUNT"), format!(":{n}\r\n"));
    let r = h.run("COMMAND INFO command|count");
    assert!(r.starts_with("*1\r\n*10\r\n$13\r\ncommand|count\r\n"), "{r}");
}

#[test]
fn slow_commands_reach_the_slow_log_and_the_latency_monitor() {
    let mut h = Harness::default();
    assert_eq!(h.run("CONFIG SET slowlog-log-slower-than 0"), "+OK\r\n");
    assert!(h.run("AUTH someone secret").starts_with('-'));
    let log = h.run("SLOWLOG GET 1");
    assert!(log.contains("$4\r\nAUTH\r\n$10\r\n(redacted)\r\n$10\r\n(redacted)\r\n"), "{log}");
    assert!(!log.contains("secret"), "{log}");
    assert_eq!(h.run("LATENCY LATEST"), "*0\r\n");
    assert_eq!(h.run("CONFIG SET latency-monitor-threshold 1"), "+OK\r\n");
    // A script that runs for several milliseconds, even in a debug build.
    let script: &[u8] = b"local t = 0 for i = 1, 3000000 do t = t + i end return 1";
    assert_eq!(h.run_as(0, &[b"EVAL", script, b"0"]), b":1\r\n");
    let latest = h.run("LATENCY LATEST");
    assert!(latest.starts_with("*1\r\n*4\r\n$7\r\ncommand\r\n:"), "{latest}");
    assert!(h.run("LATENCY HISTORY command").starts_with("*1\r\n*2\r\n:"));
    assert!(h.run("LATENCY GRAPH command").contains("command - high "));
    assert!(h.run("LATENCY DOCTOR").contains("1. command: 1 latency spikes"));
    assert_eq!(h.run("LATENCY RESET"), ":1\r\n");
    let hist = h.run("LATENCY HISTOGRAM eval");
    assert!(
        hist.starts_with("*2\r\n$4\r\neval\r\n*4\r\n$5\r\ncalls\r\n:1\r\n$14\r\nhistogram_usec\r\n*"),
        "{hist}"
    );
    let info = h.run("INFO latencystats");
    assert!(info.contains("latency_percentiles_usec_eval:p50="), "{info}");
}
