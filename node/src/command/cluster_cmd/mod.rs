//! CLUSTER and the connection flags cluster clients set (ASKING, READONLY, READWRITE).
//!
//! The read-only subcommands clients use to learn the topology live here; the ones that change
//! it (SETTOPOLOGY, ADDSLOTS, SETSLOT, slot migrations and their internal SYNCSLOTS) are in
//! [`admin`]. On a node without `cluster-enabled yes` every one of them answers Valkey's
//! `This instance has cluster support disabled`.

mod admin;
mod slot_stats;

use bytes::Bytes;

use super::Handler;
use crate::cluster::{view, ClusterState};
use crate::exec::Ctx;
use crate::keyspace::slot::{key_slot, SLOTS};

pub fn handler(name: &str) -> Option<Handler> {
    Some(match name {
        "asking" => asking,
        "readonly" => readonly,
        "readwrite" => readwrite,
        "cluster|help" => help,
        "cluster|info" => info,
        "cluster|myid" => myid,
        "cluster|myshardid" => myshardid,
        "cluster|keyslot" => keyslot,
        "cluster|countkeysinslot" => countkeysinslot,
        "cluster|getkeysinslot" => getkeysinslot,
        "cluster|links" => links,
        "cluster|nodes" => nodes,
        "cluster|shards" => shards,
        "cluster|slots" => slots,
        "cluster|slot-stats" => slot_stats::slot_stats,
        "cluster|settopology" => admin::settopology,
        "cluster|gettopology" => admin::gettopology,
        "cluster|addslots" => admin::addslots,
        "cluster|addslotsrange" => admin::addslotsrange,
        "cluster|delslots" => admin::delslots,
        "cluster|delslotsrange" => admin::delslotsrange,
        "cluster|setslot" => admin::setslot,
        "cluster|migrateslots" => admin::migrateslots,
        "cluster|getslotmigrations" => admin::getslotmigrations,
        "cluster|cancelslotmigrations" => admin::cancelslotmigrations,
        "cluster|syncslots" => admin::syncslots,
        "cluster|slotsmoved" => admin::slotsmoved,
        "cluster|failover" => admin::failover,
        "cluster|replicas" | "cluster|slaves" => replicas,
        _ => return None,
    })
}

const DISABLED: &str = "This instance has cluster support disabled";

/// The cluster state, or the `cluster support disabled` error.
fn state<'a>(ctx: &'a mut Ctx) -> Option<&'a mut ClusterState> {
    if ctx.srv.cluster.is_none() {
        ctx.out.err(DISABLED);
    }
    ctx.srv.cluster.as_mut()
}

/// ASKING: the next command may touch a slot this node is importing.
fn asking(ctx: &mut Ctx, _args: &[Bytes]) {
    if state(ctx).is_some() {
        ctx.client().asking = true;
        ctx.out.ok();
    }
}

/// READONLY: a replica may serve reads of its primary's slots; outside cluster mode (Valkey 8)
/// a replica serves reads to a CLIENT CAPA redirect client instead of redirecting them.
fn readonly(ctx: &mut Ctx, _args: &[Bytes]) {
    ctx.client().readonly = true;
    ctx.out.ok();
}

fn readwrite(ctx: &mut Ctx, _args: &[Bytes]) {
    ctx.client().readonly = false;
    ctx.out.ok();
}

const HELP: &[&str] = &[
    "COUNTKEYSINSLOT <slot>",
    "    Return the number of keys in <slot>.",
    "GETKEYSINSLOT <slot> <count>",
    "    Return key names stored by current node in a slot.",
    "INFO",
    "    Return information about the cluster.",
    "KEYSLOT <key>",
    "    Return the hash slot for <key>.",
    "LINKS",
    "    Return information about all network links between this node and its peers.",
    "    Output format is an array where each array element is a map containing attributes of a link",
    "MYID",
    "    Return the node id.",
    "MYSHARDID",
    "    Return the node's shard id.",
    "NODES",
    "    Return cluster configuration seen by node. Output format:",
    "    <id> <ip:port@bus-port[,hostname]> <flags> <master> <pings> <pongs> <epoch> <link> <slot> ...",
    "SLOT-STATS",
    "    Return an array of slot usage statistics for slots assigned to the current node.",
    "SHARDS",
    "    Return information about slot range mappings and the nodes associated with them.",
    "SLOTS",
    "    Return information about slots range mappings. Each range is made of:",
    "    start, end, master and replicas IP addresses, ports and ids",
    "SETTOPOLOGY <json>",
    "    Install the cluster topology pushed by the control plane (see docs/cluster.md).",
    "GETTOPOLOGY",
    "    Return the pushed topology as JSON, slots as this node serves them (nil before any push).",
    "ADDSLOTS <slot> [<slot> ...]",
    "    Assign slots to this node while no topology has been pushed.",
    "ADDSLOTSRANGE <start slot> <end slot> [<start slot> <end slot> ...]",
    "    Assign slot ranges to this node while no topology has been pushed.",
    "DELSLOTS <slot> [<slot> ...]",
    "    Delete slots information from this node's self-assigned topology.",
    "DELSLOTSRANGE <start slot> <end slot> [<start slot> <end slot> ...]",
    "    Delete slot ranges from this node's self-assigned topology.",
    "SETSLOT <slot> (IMPORTING <node ID>|MIGRATING <node ID>|STABLE|NODE <node ID>)",
    "    Set slot state (classic, externally driven migration).",
    "MIGRATESLOTS SLOTSRANGE <start> <end> [<start> <end> ...] NODE <node ID> [SLOTSRANGE ... NODE ...]",
    "    Migrate slots to another node, atomically for clients.",
    "GETSLOTMIGRATIONS",
    "    Show the slot migrations of this node.",
    "CANCELSLOTMIGRATIONS",
    "    Cancel the slot migrations of this node that are not handing over yet.",
];

fn help(ctx: &mut Ctx, args: &[Bytes]) {
    if state(ctx).is_some() {
        super::server::reply_help(ctx, &args[0], HELP);
    }
}

fn info(ctx: &mut Ctx, _args: &[Bytes]) {
    let Some(cl) = ctx.srv.cluster.as_ref() else {
        return ctx.out.err(DISABLED);
    };
    let text = view::info(cl, &ctx.srv.config);
    ctx.out.verbatim(text.as_bytes(), "txt");
}

fn myid(ctx: &mut Ctx, _args: &[Bytes]) {
    if let Some(cl) = state(ctx) {
        let id = cl.myid.clone();
        ctx.out.bulk(id.as_bytes());
    }
}

fn myshardid(ctx: &mut Ctx, _args: &[Bytes]) {
    let Some(cl) = state(ctx) else { return };
    let shard = match (cl.me(), &cl.topology) {
        (Some((s, _)), Some(t)) => Some(t.shards[s].id.clone()),
        _ => None,
    };
    match shard {
        Some(id) => ctx.out.bulk(id.as_bytes()),
        None => ctx.out.err("No shard ID yet"),
    }
}

fn keyslot(ctx: &mut Ctx, args: &[Bytes]) {
    if state(ctx).is_some() {
        ctx.out.int(key_slot(&args[2]) as i64);
    }
}

/// A slot argument: `None` (and `-ERR <msg>`) unless an integer in 0..16384.
fn slot_arg(ctx: &mut Ctx, arg: &[u8], msg: &str) -> Option<u16> {
    match crate::util::parse_i64(arg) {
        Some(s) if (0..SLOTS as i64).contains(&s) => Some(s as u16),
        _ => {
            ctx.out.err(msg);
            None
        }
    }
}

fn countkeysinslot(ctx: &mut Ctx, args: &[Bytes]) {
    if state(ctx).is_none() {
        return;
    }
    let Some(slot) = slot_arg(ctx, &args[2], "Invalid slot") else { return };
    let now = ctx.now_ms;
    // The selected database's keys, as Valkey 9 with `cluster-databases` > 1.
    let db = ctx.client().db;
    let n = ctx.srv.dbs[db].count_in_slot(slot, now);
    ctx.out.int(n as i64);
}

fn getkeysinslot(ctx: &mut Ctx, args: &[Bytes]) {
    if state(ctx).is_none() {
        return;
    }
    const MSG: &str = "Invalid slot or number of keys";
    let count = match crate::util::parse_i64(&args[3]) {
        Some(n) if n >= 0 => n as usize,
        _ => return ctx.out.err(MSG),
    };
    let Some(slot) = slot_arg(ctx, &args[2], MSG) else { return };
    let now = ctx.now_ms;
    let db = ctx.client().db;
    let keys = ctx.srv.dbs[db].keys_in_slot(slot, count, now);
    ctx.out.array(keys.len());
    for k in keys {
        ctx.out.bulk(&k);
    }
}

/// No node-to-node links: nodes do not gossip.
fn links(ctx: &mut Ctx, _args: &[Bytes]) {
    if state(ctx).is_some() {
        ctx.out.array(0);
    }
}

fn nodes(ctx: &mut Ctx, _args: &[Bytes]) {
    let Some(cl) = ctx.srv.cluster.as_ref() else {
        return ctx.out.err(DISABLED);
    };
    let text = view::nodes(cl, &ctx.srv.config, ctx.srv.port);
    ctx.out.verbatim(text.as_bytes(), "txt");
}

/// CLUSTER REPLICAS node-id (and the old SLAVES): the NODES lines of that primary's replicas.
fn replicas(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(cl) = ctx.srv.cluster.as_ref() else {
        return ctx.out.err(DISABLED);
    };
    let id = String::from_utf8_lossy(&args[2]).into_owned();
    let Some(node) = cl.node(&id) else {
        return ctx.out.err(&format!("Unknown node {id}"));
    };
    if node.role != crate::cluster::topology::Role::Primary {
        return ctx.out.err("The specified node is not a master");
    }
    let text = view::nodes(cl, &ctx.srv.config, ctx.srv.port);
    let lines: Vec<&str> = text.lines().filter(|l| l.split(' ').nth(3) == Some(id.as_str())).collect();
    ctx.out.array(lines.len());
    for l in lines {
        ctx.out.bulk(l.as_bytes());
    }
}

fn shards(ctx: &mut Ctx, _args: &[Bytes]) {
    let Some(cl) = ctx.srv.cluster.as_ref() else {
        return ctx.out.err(DISABLED);
    };
    let srv = &*ctx.srv;
    let myid = cl.myid.as_str();
    let repl = |n: &crate::cluster::topology::NodeInfo| -> (i64, bool) {
        let own = srv.repl.offset_now() as i64;
        if n.id == myid {
            return match srv.master.as_ref() {
                // A replica that has not loaded its primary's data yet is `loading`.
                Some(m) => (own, srv.loading || m.client.is_none() && m.syncs == 0),
                None => (own, false),
            };
        }
        if srv.master.as_ref().is_some_and(|m| {
            (m.port == n.port || Some(m.port) == n.tls_port)
                && (m.host == n.ip || n.hostname.as_deref() == Some(&m.host))
        }) {
            // My primary: at least as far as I am.
            return (own, false);
        }
        // One of my replicas: what it acknowledged.
        let ack = srv.repl.replicas.iter().find(|r| {
            (r.listening_port == n.port || Some(r.listening_port) == n.tls_port)
                && crate::replication::commands::ip_of(&r.addr) == n.ip
        });
        match ack {
            Some(r) => (r.ack as i64, r.state != crate::replication::primary::LinkState::Online),
            None => (0, false),
        }
    };
    view::shards(cl, &srv.config, ctx.out, &repl);
}

fn slots(ctx: &mut Ctx, _args: &[Bytes]) {
    let Some(cl) = ctx.srv.cluster.as_ref() else {
        return ctx.out.err(DISABLED);
    };
    view::slots(cl, &ctx.srv.config, ctx.out);
}

#[cfg(test)]
mod tests;
