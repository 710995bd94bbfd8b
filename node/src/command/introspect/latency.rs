//! LATENCY LATEST/HISTORY/RESET/GRAPH/DOCTOR/HISTOGRAM/HELP over `exec::observe`.

use std::fmt::Write;

use bytes::Bytes;

use crate::exec::Ctx;

pub fn handler(name: &str) -> Option<crate::command::Handler> {
    Some(match name {
        "latency|latest" => latest,
        "latency|history" => history,
        "latency|reset" => reset,
        "latency|graph" => graph,
        "latency|doctor" => doctor,
        "latency|histogram" => histogram,
        "latency|help" => help,
        _ => return None,
    })
}

/// LATENCY LATEST: per event, its last sample's time and latency and the all-time worst.
fn latest(ctx: &mut Ctx, _args: &[Bytes]) {
    let events = &ctx.srv.observe.latency.events;
    let out = &mut *ctx.out;
    out.array(events.len());
    for (name, s) in events {
        let (time, ms) = s.samples.back().copied().unwrap_or((0, 0));
        out.array(4);
        out.bulk(name.as_bytes());
        out.int(time);
        out.int(ms as i64);
        out.int(s.max as i64);
    }
}

/// LATENCY HISTORY event: its samples, oldest first.
fn history(ctx: &mut Ctx, args: &[Bytes]) {
    let name = String::from_utf8_lossy(&args[2]).to_ascii_lowercase();
    let samples =
        ctx.srv.observe.latency.events.get(name.as_str()).map(|s| s.samples.clone()).unwrap_or_default();
    let out = &mut *ctx.out;
    out.array(samples.len());
    for (time, ms) in samples {
        out.array(2);
        out.int(time);
        out.int(ms as i64);
    }
}

fn reset(ctx: &mut Ctx, args: &[Bytes]) {
    let names: Vec<&[u8]> = args[2..].iter().map(|a| &a[..]).collect();
    let n = ctx.srv.observe.latency.reset(&names);
    ctx.out.int(n as i64);
}

fn graph(ctx: &mut Ctx, args: &[Bytes]) {
    let name = String::from_utf8_lossy(&args[2]).to_ascii_lowercase();
    let now = ctx.now_ms / 1000;
    let mon = &ctx.srv.observe.latency;
    match mon.events.get(name.as_str()) {
        Some(s) => {
            let text = mon.graph(&name, s, now);
            ctx.out.verbatim(text.as_bytes(), "txt");
        }
        None => {
            ctx.out.err(&format!("No samples available for event '{}'", String::from_utf8_lossy(&args[2])))
        }
    }
}

/// LATENCY DOCTOR: a plain report of what the monitor saw.
fn doctor(ctx: &mut Ctx, _args: &[Bytes]) {
    let ob = &ctx.srv.observe;
    let mut text = String::new();
    if ob.monitor_ms == 0 {
        text.push_str("I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Valkey instance. You may use \"CONFIG SET latency-monitor-threshold <milliseconds>.\" in order to enable it. If we weren't in a deep space mission I'd suggest to take a look at https://valkey.io/topics/latency-monitor.\n");
    } else if ob.latency.events.is_empty() {
        text.push_str("Dave, no latency spike was observed during the lifetime of this Valkey instance, not in the slightest bit. I honestly think you ought to sleep tonight.\n");
    } else {
        text.push_str("Dave, I have observed latency spikes in this Valkey instance. You don't mind talking about it, do you Dave?\n\n");
        for (i, (name, s)) in ob.latency.events.iter().enumerate() {
            let n = s.samples.len().max(1) as u64;
            let avg = s.samples.iter().map(|x| x.1).sum::<u64>() / n;
            let _ = writeln!(
                text,
                "{}. {name}: {} latency spikes (average {avg}ms, mean deviation {}ms, period {} sec). Worst all time event {}ms.",
                i + 1,
                s.samples.len(),
                s.samples.iter().map(|x| x.1.abs_diff(avg)).sum::<u64>() / n,
                period(s),
                s.max
            );
        }
        text.push_str("\nI have a few advices for you:\n\n- Check your latency-monitor-threshold (");
        let _ = writeln!(
            text,
            "{} ms) and the slow log (SLOWLOG GET) for the commands behind the spikes.",
            ob.monitor_ms
        );
    }
    ctx.out.verbatim(text.as_bytes(), "txt");
}

/// Mean seconds between samples.
fn period(s: &crate::exec::observe::latency::Series) -> i64 {
    match (s.samples.front(), s.samples.back()) {
        (Some(a), Some(b)) if s.samples.len() > 1 => (b.0 - a.0) / (s.samples.len() as i64 - 1),
        _ => 0,
    }
}

/// LATENCY HISTOGRAM [command ...]: per command, its calls and cumulative distribution.
fn histogram(ctx: &mut Ctx, args: &[Bytes]) {
    type Rows = Vec<(&'static str, u64, Vec<(u64, u64)>)>;
    fn add(ob: &crate::exec::observe::Observe, e: &'static crate::command::Entry, rows: &mut Rows) {
        if let Some(h) = ob.histogram(e.id).filter(|h| h.total > 0) {
            if !rows.iter().any(|(n, _, _)| *n == e.full_name.as_str()) {
                rows.push((e.full_name.as_str(), h.total, h.cumulative_usec()));
            }
        }
    }
    let registry: &'static crate::command::Registry = ctx.srv.registry;
    let mut rows: Rows = Vec::new();
    let ob = &ctx.srv.observe;
    if args.len() == 2 {
        for e in registry.entries() {
            add(ob, e, &mut rows);
        }
    } else {
        for a in &args[2..] {
            let name = String::from_utf8_lossy(a).to_ascii_lowercase();
            let mut parts = name.splitn(2, '|');
            let top = parts.next().and_then(|t| registry.lookup(t.as_bytes()));
            match (top, parts.next()) {
                (Some(e), Some(sub)) => {
                    if let Some(s) = e.sub(sub.as_bytes()) {
                        add(ob, s, &mut rows);
                    }
                }
                // A container stands for all its subcommands.
                (Some(e), None) if !e.subs.is_empty() => {
                    for s in e.subs.values() {
                        add(ob, s, &mut rows);
                    }
                }
                (Some(e), None) => add(ob, e, &mut rows),
                _ => {}
            }
        }
    }
    let out = &mut *ctx.out;
    out.map(rows.len());
    for (name, calls, buckets) in rows {
        out.bulk(name.as_bytes());
        out.map(2);
        out.bulk(b"calls");
        out.int(calls as i64);
        out.bulk(b"histogram_usec");
        out.map(buckets.len());
        for (us, n) in buckets {
            out.int(us as i64);
            out.int(n as i64);
        }
    }
}

fn help(ctx: &mut Ctx, _args: &[Bytes]) {
    crate::command::server::reply_help_ending(
        ctx,
        b"latency",
        &[
            "DOCTOR",
            "    Return a human readable latency analysis report.",
            "GRAPH <event>",
            "    Return an ASCII latency graph for the <event> class.",
            "HISTORY <event>",
            "    Return time-latency samples for the <event> class.",
            "LATEST",
            "    Return the latest latency samples for all events.",
            "RESET [<event> ...]",
            "    Reset latency data of one or more <event> classes.",
            "    (default: reset all data for all event classes)",
            "HISTOGRAM [COMMAND ...]",
            "    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.",
            "    If no commands are specified then all histograms are replied.",
        ],
        "    Prints this help.",
    );
}
