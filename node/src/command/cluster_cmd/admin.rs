//! CLUSTER subcommands that change ownership: SETTOPOLOGY (the control plane's push),
//! ADDSLOTS/DELSLOTS (a node nobody pushed to assigns itself slots, as Valkey's own test setup
//! does), SETSLOT (classic migration states), the Valkey 9 style migration commands and the
//! internal SYNCSLOTS a migration's source sends its target.

use bytes::Bytes;

use super::{slot_arg, state};
use crate::cluster::migrate;
use crate::cluster::serialize::{self, KeyImage};
use crate::cluster::topology::{Role, Shard, Topology};
use crate::cluster::{persist, self_info, Applied, ClusterState, SlotSet};
use crate::exec::{Ctx, Server};
use crate::keyspace::slot::{key_slot, SLOTS};

/// CLUSTER SETTOPOLOGY <json>
pub fn settopology(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(cl) = state(ctx) else { return };
    let res = Topology::parse(&args[2]).and_then(|t| cl.apply(t));
    match res {
        Ok(applied) => {
            if applied == Applied::New {
                log::info!("Topology epoch {} installed", cl.epoch());
                ctx.srv.failover_requested = None;
            }
            // Replicas follow their shard's primary; primaries follow nobody.
            crate::replication::follow::follow_topology(ctx.srv, ctx.clients);
            ctx.out.ok()
        }
        Err(e) => ctx.out.err(&e.to_string()),
    }
}

/// CLUSTER GETTOPOLOGY: the pushed topology as the JSON SETTOPOLOGY takes, with each shard's
/// slots as this node serves them (completed migrations included), so a control plane that
/// restarts reads back shard ids and `fail` marks, which CLUSTER SHARDS does not carry.
pub fn gettopology(ctx: &mut Ctx, _args: &[Bytes]) {
    let Some(cl) = state(ctx) else { return };
    let Some(t) = cl.topology.as_ref().filter(|_| !cl.local) else {
        return ctx.out.null();
    };
    let mut t = t.clone();
    for (i, sh) in t.shards.iter_mut().enumerate() {
        sh.slots = cl.shard_ranges(i);
    }
    match serde_json::to_vec(&t) {
        Ok(json) => ctx.out.bulk(&json),
        Err(e) => ctx.out.err(&format!("cannot serialize the topology: {e}")),
    }
}

/// The self-assigned (ADDSLOTS) topology's slots, or an error if a topology was pushed.
fn local_slots(ctx: &mut Ctx) -> Option<SlotSet> {
    let cl = state(ctx)?;
    if cl.topology.is_some() && !cl.local {
        ctx.out.err("The topology is managed by CLUSTER SETTOPOLOGY; assign slots there");
        return None;
    }
    let mut set = SlotSet::default();
    if let Some(t) = &cl.topology {
        for &(a, b) in t.shards.iter().flat_map(|s| s.slots.iter()) {
            for s in a..=b {
                set.insert(s);
            }
        }
    }
    Some(set)
}

/// Installs the self-assigned topology: this node alone, owning `slots`.
fn set_local(ctx: &mut Ctx, slots: &SlotSet) {
    let port = ctx.srv.port;
    let Server { cluster, config, .. } = &mut *ctx.srv;
    let Some(cl) = cluster.as_mut() else { return };
    let shard_id =
        cl.topology.as_ref().and_then(|t| t.shards.first()).map_or_else(persist::random_id, |s| s.id.clone());
    let me = self_info(config, &cl.myid, port);
    cl.topology = Some(Topology {
        epoch: 0,
        shards: vec![Shard { id: shard_id, slots: slots.ranges(), nodes: vec![me] }],
    });
    cl.local = true;
    cl.rebuild();
    cl.save_or_warn();
    ctx.out.ok();
}

/// Slots from arguments `from..`, singly or as ranges; `None` after replying an error.
fn parse_slots(ctx: &mut Ctx, args: &[Bytes], ranges: bool) -> Option<Vec<(u16, u16)>> {
    let mut out = Vec::new();
    if ranges {
        if args.len() % 2 == 1 {
            ctx.wrong_arity();
            return None;
        }
        for pair in args[2..].chunks(2) {
            let a = slot_arg(ctx, &pair[0], "Invalid or out of range slot")?;
            let b = slot_arg(ctx, &pair[1], "Invalid or out of range slot")?;
            if a > b {
                ctx.out.err(&format!("start slot number {a} is greater than end slot number {b}"));
                return None;
            }
            out.push((a, b));
        }
    } else {
        for a in &args[2..] {
            let s = slot_arg(ctx, a, "Invalid or out of range slot")?;
            out.push((s, s));
        }
    }
    Some(out)
}

fn change_slots(ctx: &mut Ctx, args: &[Bytes], ranges: bool, add: bool) {
    let Some(set) = local_slots(ctx) else { return };
    let Some(list) = parse_slots(ctx, args, ranges) else { return };
    let mut seen = SlotSet::default();
    for &(a, b) in &list {
        for s in a..=b {
            if seen.contains(s) {
                return ctx.out.err(&format!("Slot {s} specified multiple times"));
            }
            seen.insert(s);
            if add && set.contains(s) {
                return ctx.out.err(&format!("Slot {s} is already busy"));
            }
            if !add && !set.contains(s) {
                return ctx.out.err(&format!("Slot {s} is already unassigned"));
            }
        }
    }
    let mut next = SlotSet::default();
    for s in 0..SLOTS as u16 {
        let keep =
            if add { set.contains(s) || seen.contains(s) } else { set.contains(s) && !seen.contains(s) };
        if keep {
            next.insert(s);
        }
    }
    set_local(ctx, &next);
}

pub fn addslots(ctx: &mut Ctx, args: &[Bytes]) {
    change_slots(ctx, args, false, true);
}

pub fn addslotsrange(ctx: &mut Ctx, args: &[Bytes]) {
    change_slots(ctx, args, true, true);
}

pub fn delslots(ctx: &mut Ctx, args: &[Bytes]) {
    change_slots(ctx, args, false, false);
}

pub fn delslotsrange(ctx: &mut Ctx, args: &[Bytes]) {
    change_slots(ctx, args, true, false);
}

/// CLUSTER SETSLOT <slot> IMPORTING <id> | MIGRATING <id> | STABLE | NODE <id>
pub fn setslot(ctx: &mut Ctx, args: &[Bytes]) {
    if state(ctx).is_none() {
        return;
    }
    let Some(slot) = slot_arg(ctx, &args[2], "Invalid or out of range slot") else { return };
    let op = args[3].to_ascii_lowercase();
    let id = args.get(4).map(|a| String::from_utf8_lossy(a).into_owned());
    let now = ctx.now_ms;
    let has_keys = ctx.srv.dbs.iter().any(|d| d.count_in_slot(slot, now) > 0);
    let Some(cl) = ctx.srv.cluster.as_mut() else { return };
    let known = |cl: &ClusterState, id: &Option<String>| id.as_ref().and_then(|i| cl.node(i).cloned());
    let res: Result<(), String> = match (op.as_slice(), args.len()) {
        (b"stable", 4) => {
            cl.migrating.remove(&slot);
            cl.importing.remove(&slot);
            Ok(())
        }
        (b"migrating", 5) => match known(cl, &id) {
            _ if !cl.owns(slot) => Err(format!("I'm not the owner of hash slot {slot}")),
            None => Err(format!("I don't know about node {}", id.unwrap_or_default())),
            Some(n) if n.role != Role::Primary => Err("Target node is not a master".into()),
            Some(n) => {
                cl.migrating.insert(slot, n.id);
                Ok(())
            }
        },
        (b"importing", 5) => match known(cl, &id) {
            _ if cl.owns(slot) => Err(format!("I'm already the owner of hash slot {slot}")),
            None => Err(format!("I don't know about node {}", id.unwrap_or_default())),
            Some(n) => {
                cl.importing.insert(slot, n.id);
                Ok(())
            }
        },
        (b"node", 5) => match known(cl, &id) {
            None => Err(format!("Unknown node {}", id.unwrap_or_default())),
            Some(n) if n.role != Role::Primary => Err("Target node is not a master".into()),
            Some(n) if cl.owns(slot) && n.id != cl.myid && has_keys => Err(format!(
                "Can't assign hashslot {slot} to a different node while I still hold keys for this hash slot."
            )),
            Some(n) => {
                cl.migrating.remove(&slot);
                cl.importing.remove(&slot);
                cl.overrides.insert(slot, n.id);
                cl.rebuild();
                cl.save_or_warn();
                Ok(())
            }
        },
        _ => Err("Invalid CLUSTER SETSLOT action or number of arguments. Try CLUSTER HELP".into()),
    };
    match res {
        Ok(()) => ctx.out.ok(),
        Err(e) => ctx.out.err(&e),
    }
}

/// CLUSTER MIGRATESLOTS SLOTSRANGE <start> <end> [...] NODE <id> [SLOTSRANGE ... NODE <id>]
pub fn migrateslots(ctx: &mut Ctx, args: &[Bytes]) {
    if state(ctx).is_none() {
        return;
    }
    let mut groups: Vec<(Vec<(u16, u16)>, String)> = Vec::new();
    let mut i = 2;
    while i < args.len() {
        if !args[i].eq_ignore_ascii_case(b"slotsrange") {
            return ctx.syntax_error();
        }
        i += 1;
        let mut ranges = Vec::new();
        while i + 1 < args.len() && !args[i].eq_ignore_ascii_case(b"node") {
            let Some(a) = slot_arg(ctx, &args[i], "Invalid or out of range slot") else { return };
            let Some(b) = slot_arg(ctx, &args[i + 1], "Invalid or out of range slot") else { return };
            if a > b {
                return ctx.out.err(&format!("start slot number {a} is greater than end slot number {b}"));
            }
            ranges.push((a, b));
            i += 2;
        }
        if ranges.is_empty() || i + 1 >= args.len() || !args[i].eq_ignore_ascii_case(b"node") {
            return ctx.syntax_error();
        }
        groups.push((ranges, String::from_utf8_lossy(&args[i + 1]).into_owned()));
        i += 2;
    }
    let mut all = SlotSet::default();
    for (ranges, _) in &groups {
        let set = SlotSet::from_ranges(ranges);
        if all.intersects(&set) {
            return ctx.out.err("Slot ranges of a MIGRATESLOTS overlap");
        }
        for &(a, b) in ranges {
            for s in a..=b {
                all.insert(s);
            }
        }
    }
    // The target is a node of the same cluster: a node-to-node user (`masteruser` with
    // `masterauth`, as the replica link and the bus), else the shared password.
    let cfg = &ctx.srv.config;
    let nonempty = |k: &str| cfg.get(k).filter(|p| !p.is_empty()).map(str::to_string);
    let password = match nonempty("masteruser") {
        Some(user) => Some((Some(user), nonempty("masterauth").unwrap_or_default())),
        None => nonempty("masterauth").or_else(|| nonempty("requirepass")).map(|p| (None, p)),
    };
    let Some(cl) = ctx.srv.cluster.as_mut() else { return };
    // Validate every group before starting any, so the reply is OK only if all start.
    for (ranges, target) in &groups {
        if let Err(e) = migrate::check_export(cl, &SlotSet::from_ranges(ranges), target) {
            return ctx.out.err(&e.to_string());
        }
    }
    for (ranges, target) in groups {
        if let Err(e) = migrate::start_export(cl, SlotSet::from_ranges(&ranges), &target, password.clone()) {
            return ctx.out.err(&e.to_string());
        }
    }
    ctx.out.ok();
}

/// CLUSTER GETSLOTMIGRATIONS: one map per job, Valkey 9's fields plus `keys` and
/// `handoff_pause_us` (how long writes to the slots waited for the hand-off; 0 before it).
pub fn getslotmigrations(ctx: &mut Ctx, _args: &[Bytes]) {
    let Some(cl) = state(ctx) else { return };
    let jobs: Vec<_> = cl
        .migrations
        .jobs
        .iter()
        .map(|j| {
            (
                j.name.clone(),
                if j.export { "EXPORT" } else { "IMPORT" },
                j.slots.describe(),
                j.target.clone(),
                j.source.clone(),
                [j.created_ms, j.updated_ms, j.last_ack_ms()],
                j.state.name(),
                j.message.clone(),
                j.keys,
                j.handoff_us.unwrap_or(0),
            )
        })
        .collect();
    let out = &mut *ctx.out;
    out.array(jobs.len());
    for (name, op, ranges, target, source, times, st, msg, keys, pause) in jobs {
        out.map(13);
        for (k, v) in [("name", name.as_str()), ("operation", op), ("slot_ranges", &ranges)] {
            out.bulk(k.as_bytes());
            out.bulk(v.as_bytes());
        }
        for (k, v) in [("target_node", &target), ("source_node", &source)] {
            out.bulk(k.as_bytes());
            out.bulk(v.as_bytes());
        }
        for (k, v) in ["create_time", "last_update_time", "last_ack_time"].iter().zip(times) {
            out.bulk(k.as_bytes());
            out.int(v);
        }
        for (k, v) in [("state", st), ("message", msg.as_str())] {
            out.bulk(k.as_bytes());
            out.bulk(v.as_bytes());
        }
        out.bulk(b"cow_size");
        out.int(0);
        out.bulk(b"keys");
        out.int(keys as i64);
        out.bulk(b"handoff_pause_us");
        out.int(pause as i64);
    }
}

/// CLUSTER CANCELSLOTMIGRATIONS
pub fn cancelslotmigrations(ctx: &mut Ctx, _args: &[Bytes]) {
    let Some(cl) = state(ctx) else { return };
    cl.migrations.cancel_all();
    ctx.out.ok();
}

/// CLUSTER SYNCSLOTS START|DATA|DATADB|FINISH|ABORT <name> ... (sent by a migration's source).
pub fn syncslots(ctx: &mut Ctx, args: &[Bytes]) {
    if state(ctx).is_none() {
        return;
    }
    let conn = (ctx.me, ctx.client().id);
    let op = args[2].to_ascii_lowercase();
    let name = &args[3];
    let clock = ctx.clock();
    // Imported keys reach this node's replicas as RESTORE ... ABSTTL / DEL (a replica has no
    // import job to apply SYNCSLOTS to).
    let replicating = ctx.srv.repl.active() && ctx.srv.master.is_none();
    let mut shipped: Vec<KeyImage> = Vec::new();
    let Server { cluster, dbs, .. } = &mut *ctx.srv;
    let Some(cl) = cluster.as_mut() else { return };
    let res: Result<(), String> = match op.as_slice() {
        b"start" if args.len() >= 7 && args.len() % 2 == 1 => {
            let mut ranges = Vec::new();
            for pair in args[5..].chunks(2) {
                let p = |a: &Bytes| crate::util::parse_i64(a).filter(|s| (0..SLOTS as i64).contains(s));
                match (p(&pair[0]), p(&pair[1])) {
                    (Some(a), Some(b)) if a <= b => ranges.push((a as u16, b as u16)),
                    _ => {
                        ctx.out.err("Invalid or out of range slot");
                        return;
                    }
                }
            }
            let source = String::from_utf8_lossy(&args[4]).into_owned();
            let name = String::from_utf8_lossy(name).into_owned();
            migrate::start_import(cl, &name, &source, SlotSet::from_ranges(&ranges), conn)
                .map_err(|e| e.to_string())
        }
        b"data" | b"datadb" => match data_args(&op, args, dbs.len()) {
            Err(e) => Err(e),
            Ok((db, triples)) => match migrate::import_job(cl, name, conn) {
                Err(e) => Err(e.to_string()),
                Ok(job) => {
                    let mut res = Ok(());
                    for t in triples.chunks(3) {
                        if !job.slots.contains(key_slot(&t[0])) {
                            res = Err(format!("Key is not in the slots of migration {}", job.name));
                            break;
                        }
                        let img = match crate::util::parse_i64(&t[1]) {
                            Some(-2) => KeyImage { db, key: t[0].clone(), payload: None, expire_at: None },
                            Some(e) if e >= -1 => KeyImage {
                                db,
                                key: t[0].clone(),
                                payload: Some(t[2].to_vec()),
                                expire_at: (e >= 0).then_some(e),
                            },
                            _ => {
                                res = Err("Invalid expire time".into());
                                break;
                            }
                        };
                        if let Err(e) = serialize::install(&mut dbs[db], &img, clock) {
                            res = Err(e.to_string());
                            break;
                        }
                        job.keys += 1;
                        if replicating {
                            shipped.push(img);
                        }
                    }
                    if res.is_err() {
                        job.message = "bad data from the source".into();
                    }
                    res
                }
            },
        },
        b"finish" if args.len() == 4 => migrate::finish_import(cl, name, conn).map_err(|e| e.to_string()),
        b"abort" if args.len() == 4 => migrate::abort_import(cl, name, conn).map_err(|e| e.to_string()),
        _ => Err("Invalid CLUSTER SYNCSLOTS operation or number of arguments".into()),
    };
    for img in shipped {
        match &img.payload {
            Some(p) => {
                let at = img.expire_at.unwrap_or(0).to_string();
                ctx.srv.repl.feed(img.db, &[b"RESTORE", &img.key, at.as_bytes(), p, b"REPLACE", b"ABSTTL"]);
            }
            None => ctx.srv.repl.feed(img.db, &[b"DEL", &img.key]),
        }
    }
    match res {
        Ok(()) => ctx.out.ok(),
        Err(e) => ctx.out.err(&e),
    }
}

/// The database and the `<key> <expire> <payload>` triples of `DATA <name> ...` (database 0)
/// or `DATADB <name> <db> ...`.
fn data_args<'a>(op: &[u8], args: &'a [Bytes], dbs: usize) -> Result<(usize, &'a [Bytes]), String> {
    const BAD: &str = "Invalid CLUSTER SYNCSLOTS operation or number of arguments";
    let (db, triples) = if op == b"datadb" {
        let db = args.get(4).and_then(|a| crate::util::parse_i64(a)).ok_or(BAD)?;
        let db = usize::try_from(db).ok().filter(|&d| d < dbs).ok_or("DB index is out of range")?;
        (db, &args[5.min(args.len())..])
    } else {
        (0, &args[4.min(args.len())..])
    };
    if triples.len() % 3 != 0 {
        return Err(BAD.into());
    }
    Ok((db, triples))
}

/// CLUSTER FAILOVER [FORCE|TAKEOVER] on a replica: the control plane owns the roles, so the
/// request is recorded (`shoal_failover_requested` in INFO replication) and the control plane
/// carries it out: a planned hand-over by default, an immediate promotion with FORCE or
/// TAKEOVER. The checks and errors are Valkey's.
pub fn failover(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(cl) = state(ctx) else { return };
    let mode = match args.get(2) {
        None => "default",
        Some(a) if args.len() == 3 && a.eq_ignore_ascii_case(b"force") => "force",
        Some(a) if args.len() == 3 && a.eq_ignore_ascii_case(b"takeover") => "takeover",
        Some(_) => return ctx.out.err("syntax error"),
    };
    let Some((shard, Role::Replica)) = cl.me() else {
        return ctx.out.err("You should send CLUSTER FAILOVER to a replica");
    };
    let primary = cl.topology.as_ref().and_then(|t| t.primary(shard)).cloned();
    let Some(primary) = primary else {
        return ctx.out.err("I'm a replica but my master is unknown to me");
    };
    let link_up = ctx.srv.master.as_ref().is_some_and(|m| m.client.is_some());
    if mode == "default" && (primary.fail || !link_up) {
        return ctx.out.err("Master is down or failed, please use CLUSTER FAILOVER FORCE");
    }
    log::info!("Manual failover ({mode}) requested: waiting for the control plane to carry it out");
    ctx.srv.failover_requested = Some(mode);
    ctx.out.ok();
}

/// CLUSTER SLOTSMOVED <target-id> <start> <end> [<start> <end> ...]: internal, from the node
/// that just handed these slots to `target` (`cluster::bus::announce_handoffs`); this node
/// redirects to the target from now on (`ClusterState::learn_moved`).
pub fn slotsmoved(ctx: &mut Ctx, args: &[Bytes]) {
    if state(ctx).is_none() {
        return;
    }
    let Some(ranges) = parse_slots(ctx, &args[1..], true) else { return };
    let target = String::from_utf8_lossy(&args[2]).into_owned();
    let Some(cl) = ctx.srv.cluster.as_mut() else { return };
    match cl.learn_moved(&target, &ranges) {
        Ok(n) => {
            if n > 0 {
                log::info!("{n} slots moved to {target} (told by the source)");
            }
            ctx.out.ok()
        }
        Err(e) => ctx.out.err(&e),
    }
}
