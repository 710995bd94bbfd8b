//! Pub/Sub commands: (P|S)SUBSCRIBE, (P|S)UNSUBSCRIBE, PUBLISH, SPUBLISH and PUBSUB.
//!
//! ```text
//! SUBSCRIBE channel [channel ...]      PSUBSCRIBE pattern [pattern ...]
//! UNSUBSCRIBE [channel ...]            PUNSUBSCRIBE [pattern ...]
//! SSUBSCRIBE shardchannel [...]        SUNSUBSCRIBE [shardchannel ...]
//! PUBLISH channel message              SPUBLISH shardchannel message
//! PUBSUB CHANNELS [pattern] | NUMSUB [channel ...] | NUMPAT | SHARDCHANNELS [pattern]
//!        | SHARDNUMSUB [shardchannel ...] | HELP
//! ```
//!
//! The registries and the fan-out live in `exec::pubsub`; this file is the command surface:
//! Valkey's reply per channel (a push frame in RESP3, an array in RESP2) with the running
//! subscription count. The cluster slot checks of SSUBSCRIBE/SPUBLISH (MOVED, CROSSSLOT) are
//! the generic redirection's, from the key specs in the command table. PUBLISH reaches this
//! node's subscribers only: Shoal nodes have no cluster bus to forward it on.

use bytes::Bytes;

use super::Handler;
use crate::exec::pubsub::{Fanout, Kind};
use crate::exec::Ctx;

pub fn handler(name: &str) -> Option<Handler> {
    Some(match name {
        "subscribe" => |c, a| subscribe(c, a, Kind::Channel),
        "psubscribe" => |c, a| subscribe(c, a, Kind::Pattern),
        "ssubscribe" => |c, a| subscribe(c, a, Kind::Shard),
        "unsubscribe" => |c, a| unsubscribe(c, a, Kind::Channel),
        "punsubscribe" => |c, a| unsubscribe(c, a, Kind::Pattern),
        "sunsubscribe" => |c, a| unsubscribe(c, a, Kind::Shard),
        "publish" => |c, a| publish(c, a, false),
        "spublish" => |c, a| publish(c, a, true),
        "pubsub|channels" => |c, a| channels(c, a, Kind::Channel),
        "pubsub|shardchannels" => |c, a| channels(c, a, Kind::Shard),
        "pubsub|numsub" => |c, a| numsub(c, a, Kind::Channel),
        "pubsub|shardnumsub" => |c, a| numsub(c, a, Kind::Shard),
        "pubsub|numpat" => numpat,
        "pubsub|help" => help,
        "cluster|publishlocal" => publish_local,
        _ => return None,
    })
}

/// One (un)subscribe confirmation: `[kind, channel or null, count]`.
fn confirm(ctx: &mut Ctx, what: &str, channel: Option<&[u8]>, count: usize) {
    ctx.out.push(3);
    ctx.out.bulk_str(what);
    match channel {
        Some(c) => ctx.out.bulk(c),
        None => ctx.out.null(),
    }
    ctx.out.int(count as i64);
}

fn count(ctx: &mut Ctx, kind: Kind) -> usize {
    ctx.client().subs.as_ref().map_or(0, |s| s.count(kind))
}

fn subscribe(ctx: &mut Ctx, args: &[Bytes], kind: Kind) {
    let me = ctx.me;
    for ch in &args[1..] {
        let st = &mut ctx.clients[me].st;
        ctx.srv.pubsub.subscribe(st, me, kind, ch);
        let n = count(ctx, kind);
        confirm(ctx, kind.names().0, Some(ch), n);
    }
}

fn unsubscribe(ctx: &mut Ctx, args: &[Bytes], kind: Kind) {
    let me = ctx.me;
    let what = kind.names().1;
    if args.len() == 1 {
        let names: Vec<Bytes> =
            ctx.client().subs.as_ref().map(|s| s.of(kind).iter().cloned().collect()).unwrap_or_default();
        if names.is_empty() {
            let n = count(ctx, kind);
            confirm(ctx, what, None, n);
        }
        for ch in names {
            ctx.srv.pubsub.unsubscribe(&mut ctx.clients[me].st, me, kind, &ch);
            let n = count(ctx, kind);
            confirm(ctx, what, Some(&ch), n);
        }
    } else {
        for ch in &args[1..] {
            ctx.srv.pubsub.unsubscribe(&mut ctx.clients[me].st, me, kind, ch);
            let n = count(ctx, kind);
            confirm(ctx, what, Some(ch), n);
        }
    }
    ctx.srv.pubsub.leave_if_idle(&mut ctx.clients[me].st);
}

fn publish(ctx: &mut Ctx, args: &[Bytes], shard: bool) {
    let now = ctx.srv.now;
    let srv = &mut *ctx.srv;
    let mut fan = Fanout {
        ps: &mut srv.pubsub,
        clients: ctx.clients,
        me: Some((ctx.me, &mut *ctx.out)),
        now,
        kill_pending: &mut srv.kill_pending,
    };
    let n = fan.publish(&args[1], &args[2], shard);
    ctx.out.int(n as i64);
    if ctx.srv.cluster.is_some() {
        forward(ctx, &args[1], &args[2], shard);
    }
}

/// Cluster mode: the other nodes' subscribers get the message too (`cluster::bus`); the reply
/// counts this node's, as Valkey's.
fn forward(ctx: &mut Ctx, channel: &Bytes, message: &Bytes, shard: bool) {
    let srv = &mut *ctx.srv;
    let Some(cl) = srv.cluster.as_ref() else { return };
    let Some(topology) = cl.topology.as_ref() else { return };
    if srv.bus.is_none() {
        let user = srv.config.get("masteruser").filter(|u| !u.is_empty()).map(str::to_string);
        let auth = match user {
            // A node-to-node user: AUTH masteruser masterauth, as the replica link.
            Some(user) => Some(crate::cluster::bus::Credentials {
                user: Some(user),
                pass: srv.config.get("masterauth").unwrap_or("").to_string(),
            }),
            None => [srv.config.get("masterauth"), srv.config.get("requirepass")]
                .into_iter()
                .flatten()
                .find(|p| !p.is_empty())
                .map(|p| crate::cluster::bus::Credentials { user: None, pass: p.to_string() }),
        };
        match crate::cluster::bus::Bus::start(auth) {
            Ok(b) => srv.bus = Some(b),
            Err(e) => {
                log::warn!("Cannot start the cluster bus thread: {e}");
                return;
            }
        }
    }
    let Some(bus) = srv.bus.as_mut() else { return };
    if bus.stale(topology.epoch) {
        bus.set_peers(topology.epoch, crate::cluster::bus::peers(topology, &cl.myid));
    }
    bus.publish(channel, message, shard);
}

/// CLUSTER PUBLISHLOCAL [SHARD] channel message: another node's PUBLISH, for this node's
/// subscribers only (see `cluster::bus`).
pub fn publish_local(ctx: &mut Ctx, args: &[Bytes]) {
    let (shard, channel, message) = match args {
        [_, _, s, c, m] if s.eq_ignore_ascii_case(b"shard") => (true, c, m),
        [_, _, c, m] => (false, c, m),
        _ => return ctx.syntax_error(),
    };
    let now = ctx.srv.now;
    let srv = &mut *ctx.srv;
    let mut fan = Fanout {
        ps: &mut srv.pubsub,
        clients: ctx.clients,
        me: Some((ctx.me, &mut *ctx.out)),
        now,
        kill_pending: &mut srv.kill_pending,
    };
    let n = fan.publish(channel, message, shard);
    ctx.out.int(n as i64);
}

fn channels(ctx: &mut Ctx, args: &[Bytes], kind: Kind) {
    if args.len() > 3 {
        // Valkey's `addReplySubcommandSyntaxError`, with the subcommand as typed.
        let sub = String::from_utf8_lossy(&args[1]).into_owned();
        return ctx
            .out
            .err(&format!("unknown subcommand or wrong number of arguments for '{sub}'. Try PUBSUB HELP."));
    }
    let names = ctx.srv.pubsub.channel_names(kind, args.get(2).map(|p| &p[..]));
    ctx.out.array(names.len());
    for n in names {
        ctx.out.bulk(&n);
    }
}

fn numsub(ctx: &mut Ctx, args: &[Bytes], kind: Kind) {
    ctx.out.array((args.len() - 2) * 2);
    for ch in &args[2..] {
        let n = ctx.srv.pubsub.subscribers(kind, ch);
        ctx.out.bulk(ch);
        ctx.out.int(n as i64);
    }
}

fn numpat(ctx: &mut Ctx, _args: &[Bytes]) {
    let n = ctx.srv.pubsub.channel_count(Kind::Pattern);
    ctx.out.int(n as i64);
}

fn help(ctx: &mut Ctx, _args: &[Bytes]) {
    super::server::reply_help(
        ctx,
        b"pubsub",
        &[
            "CHANNELS [<pattern>]",
            "    Return the currently active channels matching a <pattern> (default: '*').",
            "NUMPAT",
            "    Return number of subscriptions to patterns.",
            "NUMSUB [<channel> ...]",
            "    Return the number of subscribers for the specified channels, excluding",
            "    pattern subscriptions(default: no channels).",
            "SHARDCHANNELS [<pattern>]",
            "    Return the currently active shard level channels matching a <pattern> (default: '*').",
            "SHARDNUMSUB [<shardchannel> ...]",
            "    Return the number of subscribers for the specified shard level channel(s)",
        ],
    );
}

#[cfg(test)]
mod tests;
