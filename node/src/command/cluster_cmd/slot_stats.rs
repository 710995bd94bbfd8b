//! CLUSTER SLOT-STATS SLOTSRANGE start end | ORDERBY metric [LIMIT n] [ASC|DESC] (Valkey 8):
//! per-slot key counts, and with `cluster-slot-stats-enabled` the CPU and network counters of
//! `cluster::slot_stats`. Only slots this node serves are listed, as in Valkey. Key counts add
//! up every database (Valkey 9's `cluster-databases`).

use bytes::Bytes;

use super::{slot_arg, state};
use crate::exec::Ctx;
use crate::keyspace::slot::SLOTS;

/// A metric ORDERBY can sort by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Metric {
    Keys,
    Cpu,
    In,
    Out,
}

/// CLUSTER SLOT-STATS ...
pub fn slot_stats(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(cl) = state(ctx) else { return };
    let detailed = cl.slot_stats.enabled();
    let filter = args[2].to_ascii_lowercase();
    let slots: Vec<u16> = match filter.as_slice() {
        b"slotsrange" if args.len() == 5 => {
            const MSG: &str = "Invalid or out of range slot";
            let Some(start) = slot_arg(ctx, &args[3], MSG) else { return };
            let Some(end) = slot_arg(ctx, &args[4], MSG) else { return };
            if start > end {
                return ctx
                    .out
                    .err(&format!("Start slot number {start} is greater than end slot number {end}"));
            }
            let Some(cl) = ctx.srv.cluster.as_ref() else { return };
            (start..=end).filter(|&s| cl.owns(s)).collect()
        }
        b"orderby" => {
            let metric = match args[3].to_ascii_lowercase().as_slice() {
                b"key-count" => Metric::Keys,
                b"cpu-usec" if detailed => Metric::Cpu,
                b"network-bytes-in" if detailed => Metric::In,
                b"network-bytes-out" if detailed => Metric::Out,
                _ => return ctx.out.err("Unrecognized sort metric for ORDERBY."),
            };
            let (mut limit, mut desc) = (16usize, true);
            let mut i = 4;
            while i < args.len() {
                let opt = args[i].to_ascii_lowercase();
                if opt == b"limit" && i + 1 < args.len() {
                    match crate::util::parse_i64(&args[i + 1]).filter(|n| (1..=SLOTS as i64).contains(n)) {
                        Some(n) => limit = n as usize,
                        None => {
                            return ctx
                                .out
                                .err("Limit has to lie in between 1 and 16384 (maximum number of slots).")
                        }
                    }
                    i += 1;
                } else if opt == b"asc" {
                    desc = false;
                } else if opt == b"desc" {
                    desc = true;
                } else {
                    return ctx.syntax_error();
                }
                i += 1;
            }
            let Some(cl) = ctx.srv.cluster.as_ref() else { return };
            let owned: Vec<u16> = (0..SLOTS as u16).filter(|&s| cl.owns(s)).collect();
            let mut ranked: Vec<(u64, u16)> = owned.into_iter().map(|s| (value(ctx, s, metric), s)).collect();
            // Ties in slot order, either way (Valkey's stable sort over ascending slots).
            if desc {
                ranked.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
            } else {
                ranked.sort();
            }
            ranked.into_iter().take(limit).map(|(_, s)| s).collect()
        }
        _ => {
            return ctx
                .out
                .err("unknown subcommand or wrong number of arguments for 'slot-stats'. Try CLUSTER HELP.")
        }
    };
    ctx.out.array(slots.len());
    for slot in slots {
        ctx.out.array(2);
        ctx.out.int(slot as i64);
        ctx.out.map(if detailed { 4 } else { 1 });
        ctx.out.bulk(b"key-count");
        let keys = value(ctx, slot, Metric::Keys);
        ctx.out.int(keys as i64);
        if detailed {
            for (name, m) in [
                (&b"cpu-usec"[..], Metric::Cpu),
                (b"network-bytes-in", Metric::In),
                (b"network-bytes-out", Metric::Out),
            ] {
                let v = value(ctx, slot, m);
                ctx.out.bulk(name);
                ctx.out.int(v as i64);
            }
        }
    }
}

/// One metric of one slot.
fn value(ctx: &Ctx, slot: u16, metric: Metric) -> u64 {
    let usage = || ctx.srv.cluster.as_ref().map(|cl| cl.slot_stats.usage(slot)).unwrap_or_default();
    match metric {
        Metric::Keys => ctx.srv.dbs.iter().map(|d| d.count_in_slot(slot, ctx.now_ms) as u64).sum(),
        Metric::Cpu => usage().cpu_ns / 1000,
        Metric::In => usage().bytes_in,
        Metric::Out => usage().bytes_out,
    }
}
