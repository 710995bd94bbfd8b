//! Pub/Sub registries and fan-out, owned by the executor.
//!
//! Three namespaces, as in Valkey: channels, patterns and shard channels (SSUBSCRIBE; in
//! cluster mode the generic redirection keeps each shard channel on the node owning its
//! slot). Each maps a name to the slab indices of its subscribers; each client keeps the
//! mirror image in `ClientState::subs`, which is `Some` exactly while Valkey would flag the
//! client `CLIENT_PUBSUB`. Invariant: both sides always agree, and a client leaves every
//! registry before its slab slot is freed (`Executor::close`, RESET), so an index here is
//! never a reused slot.
//!
//! Fan-out: a message is encoded once per protocol (at most a RESP2 and a RESP3 frame, built
//! on first use) and each subscriber gets a cheap clone of those bytes appended to its reply
//! queue. Subscribers other than the publisher are put on `dirty`; the executor queues them
//! for the normal write path, which the I/O threads run when they are active. The executor
//! never writes a subscriber's socket here.

use std::collections::HashMap;
use std::time::Instant;

use bytes::{BufMut, Bytes, BytesMut};
use indexmap::{IndexMap, IndexSet};
use slab::Slab;

use super::client::{Client, ClientState};
use crate::config::pubsub::{parse_obuf, ObufLimit, ObufLimits};
use crate::protocol::Reply;

/// Which namespace a subscription lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Channel,
    Pattern,
    Shard,
}

impl Kind {
    /// The push message kinds: (subscribe reply, unsubscribe reply).
    pub fn names(self) -> (&'static str, &'static str) {
        match self {
            Kind::Channel => ("subscribe", "unsubscribe"),
            Kind::Pattern => ("psubscribe", "punsubscribe"),
            Kind::Shard => ("ssubscribe", "sunsubscribe"),
        }
    }
}

/// A client's subscriptions, in subscription order.
#[derive(Debug, Clone, Default)]
pub struct Subs {
    pub channels: IndexSet<Bytes>,
    pub patterns: IndexSet<Bytes>,
    pub shard: IndexSet<Bytes>,
}

impl Subs {
    pub fn of(&self, kind: Kind) -> &IndexSet<Bytes> {
        match kind {
            Kind::Channel => &self.channels,
            Kind::Pattern => &self.patterns,
            Kind::Shard => &self.shard,
        }
    }

    fn of_mut(&mut self, kind: Kind) -> &mut IndexSet<Bytes> {
        match kind {
            Kind::Channel => &mut self.channels,
            Kind::Pattern => &mut self.patterns,
            Kind::Shard => &mut self.shard,
        }
    }

    /// The count a (un)subscribe reply carries: channels plus patterns for the classic
    /// namespaces, shard channels alone for the sharded one (Valkey's `subscriptionCount`).
    pub fn count(&self, kind: Kind) -> usize {
        match kind {
            Kind::Shard => self.shard.len(),
            _ => self.channels.len() + self.patterns.len(),
        }
    }

    fn total(&self) -> usize {
        self.channels.len() + self.patterns.len() + self.shard.len()
    }
}

type Subscribers = IndexSet<usize>;

/// The node's subscriptions.
#[derive(Debug, Default)]
pub struct PubSub {
    channels: HashMap<Bytes, Subscribers>,
    /// Ordered, so pattern messages go out in subscription order.
    patterns: IndexMap<Bytes, Subscribers>,
    shard: HashMap<Bytes, Subscribers>,
    /// Clients given output by another client's command (or by cron): the executor queues
    /// them for writing after the batch.
    pub dirty: Vec<usize>,
    /// Clients currently in pub/sub mode (INFO `pubsub_clients`).
    pub clients: usize,
    /// `client-output-buffer-limit` for the pubsub class, refreshed on CONFIG SET.
    pub limit: ObufLimit,
    /// Subscribers disconnected for exceeding that limit.
    pub limit_disconnections: u64,
    /// The replica class's limit (enforced by `replication::limits`).
    pub replica_limit: ObufLimit,
}

impl PubSub {
    /// Registry for a node started with `obuf` as its `client-output-buffer-limit`.
    pub fn new(obuf: &str) -> PubSub {
        let mut ps = PubSub::default();
        ps.set_limits(obuf);
        ps
    }

    /// Applies a (canonical) `client-output-buffer-limit` value.
    pub fn set_limits(&mut self, obuf: &str) {
        let limits: ObufLimits = parse_obuf(obuf, ObufLimits::default()).unwrap_or_default();
        self.limit = limits[2];
        self.replica_limit = limits[1];
    }

    fn map(&mut self, kind: Kind) -> &mut dyn Registry {
        match kind {
            Kind::Channel => &mut self.channels,
            Kind::Pattern => &mut self.patterns,
            Kind::Shard => &mut self.shard,
        }
    }

    /// Number of channels (or shard channels) with at least one subscriber.
    pub fn channel_count(&self, kind: Kind) -> usize {
        match kind {
            Kind::Channel => self.channels.len(),
            Kind::Pattern => self.patterns.len(),
            Kind::Shard => self.shard.len(),
        }
    }

    /// Active channel names of a namespace matching `pattern` (all without one).
    pub fn channel_names(&self, kind: Kind, pattern: Option<&[u8]>) -> Vec<Bytes> {
        let keys: Box<dyn Iterator<Item = &Bytes>> = match kind {
            Kind::Channel => Box::new(self.channels.keys()),
            Kind::Pattern => Box::new(self.patterns.keys()),
            Kind::Shard => Box::new(self.shard.keys()),
        };
        keys.filter(|c| pattern.is_none_or(|p| crate::util::glob_match(p, c, false))).cloned().collect()
    }

    /// Subscribers of one channel (PUBSUB NUMSUB / SHARDNUMSUB).
    pub fn subscribers(&self, kind: Kind, channel: &[u8]) -> usize {
        match kind {
            Kind::Channel => self.channels.get(channel).map_or(0, IndexSet::len),
            Kind::Pattern => self.patterns.get(channel).map_or(0, IndexSet::len),
            Kind::Shard => self.shard.get(channel).map_or(0, IndexSet::len),
        }
    }

    /// Subscribes client `idx`; false if it already was. Puts the client in pub/sub mode.
    pub fn subscribe(&mut self, st: &mut ClientState, idx: usize, kind: Kind, name: &Bytes) -> bool {
        if st.subs.is_none() {
            self.clients += 1;
        }
        let subs = st.subs.get_or_insert_with(Default::default);
        if !subs.of_mut(kind).insert(name.clone()) {
            return false;
        }
        self.map(kind).add(name, idx);
        true
    }

    /// Unsubscribes client `idx`; false if it was not subscribed. The caller decides when
    /// the client leaves pub/sub mode ([`PubSub::leave_if_idle`]), as Valkey does after the
    /// whole command.
    pub fn unsubscribe(&mut self, st: &mut ClientState, idx: usize, kind: Kind, name: &[u8]) -> bool {
        let Some(subs) = st.subs.as_mut() else { return false };
        if !subs.of_mut(kind).shift_remove(name) {
            return false;
        }
        self.map(kind).del(name, idx);
        true
    }

    /// Takes the client out of pub/sub mode when it has no subscription left.
    pub fn leave_if_idle(&mut self, st: &mut ClientState) {
        if st.subs.as_ref().is_some_and(|s| s.total() == 0) {
            st.subs = None;
            self.clients -= 1;
        }
    }

    /// Drops every subscription of a client, silently (disconnect, RESET).
    pub fn drop_client(&mut self, st: &mut ClientState, idx: usize) {
        let Some(subs) = st.subs.take() else { return };
        self.clients -= 1;
        for (kind, set) in
            [(Kind::Channel, subs.channels), (Kind::Pattern, subs.patterns), (Kind::Shard, subs.shard)]
        {
            for name in set {
                self.map(kind).del(&name, idx);
            }
        }
    }
}

/// Add/remove on the three registries (two hash maps and an ordered map).
trait Registry {
    fn add(&mut self, name: &Bytes, idx: usize);
    fn del(&mut self, name: &[u8], idx: usize);
}

impl Registry for HashMap<Bytes, Subscribers> {
    fn add(&mut self, name: &Bytes, idx: usize) {
        self.entry(name.clone()).or_default().insert(idx);
    }
    fn del(&mut self, name: &[u8], idx: usize) {
        if let Some(s) = self.get_mut(name) {
            s.swap_remove(&idx);
            if s.is_empty() {
                self.remove(name);
            }
        }
    }
}

impl Registry for IndexMap<Bytes, Subscribers> {
    fn add(&mut self, name: &Bytes, idx: usize) {
        self.entry(name.clone()).or_default().insert(idx);
    }
    fn del(&mut self, name: &[u8], idx: usize) {
        if let Some(s) = self.get_mut(name) {
            s.swap_remove(&idx);
            if s.is_empty() {
                self.shift_remove(name);
            }
        }
    }
}

/// A message frame in both protocols, each encoded on first use.
struct Frame<'a> {
    parts: [&'a [u8]; 4],
    n: usize,
    resp2: Option<Bytes>,
    resp3: Option<Bytes>,
}

impl<'a> Frame<'a> {
    fn new(parts: &[&'a [u8]]) -> Self {
        let mut p: [&[u8]; 4] = [&[]; 4];
        p[..parts.len()].copy_from_slice(parts);
        Frame { parts: p, n: parts.len(), resp2: None, resp3: None }
    }

    fn bytes(&mut self, resp3: bool) -> Bytes {
        let slot = if resp3 { &mut self.resp3 } else { &mut self.resp2 };
        if let Some(b) = slot {
            return b.clone();
        }
        let len: usize = self.parts[..self.n].iter().map(|p| p.len() + 16).sum();
        let mut buf = BytesMut::with_capacity(len + 8);
        let mut r = itoa::Buffer::new();
        buf.put_u8(if resp3 { b'>' } else { b'*' });
        buf.extend_from_slice(r.format(self.n).as_bytes());
        buf.extend_from_slice(b"\r\n");
        for p in &self.parts[..self.n] {
            buf.put_u8(b'$');
            buf.extend_from_slice(r.format(p.len()).as_bytes());
            buf.extend_from_slice(b"\r\n");
            buf.extend_from_slice(p);
            buf.extend_from_slice(b"\r\n");
        }
        let b = buf.freeze();
        *slot = Some(b.clone());
        b
    }
}

/// Where a publish happens: the clients, and the running client (if any) whose own messages
/// go into its reply buffer in order with its replies.
pub struct Fanout<'a> {
    pub ps: &'a mut PubSub,
    pub clients: &'a mut Slab<Client>,
    pub me: Option<(usize, &'a mut Reply)>,
    pub now: Instant,
    /// Set when a subscriber was marked to close (the executor reaps it after the batch).
    pub kill_pending: &'a mut bool,
}

impl Fanout<'_> {
    /// PUBLISH / SPUBLISH (`shard`): delivers to the channel's subscribers and, for classic
    /// channels, to every matching pattern. Returns the number of deliveries.
    pub fn publish(&mut self, channel: &[u8], msg: &[u8], shard: bool) -> usize {
        let mut receivers = 0;
        let (map, kind) = if shard { (&self.ps.shard, "smessage") } else { (&self.ps.channels, "message") };
        if let Some(subs) = map.get(channel) {
            // Collected first: delivery needs the registry and the clients at once.
            let subs: Vec<usize> = subs.iter().copied().collect();
            let mut frame = Frame::new(&[kind.as_bytes(), channel, msg]);
            for idx in subs {
                self.deliver(idx, &mut frame);
                receivers += 1;
            }
        }
        if shard || self.ps.patterns.is_empty() {
            return receivers;
        }
        let matching: Vec<(Bytes, Vec<usize>)> = self
            .ps
            .patterns
            .iter()
            .filter(|(p, _)| crate::util::glob_match(p, channel, false))
            .map(|(p, s)| (p.clone(), s.iter().copied().collect()))
            .collect();
        for (pattern, subs) in matching {
            let mut frame = Frame::new(&[b"pmessage", &pattern, channel, msg]);
            for idx in subs {
                self.deliver(idx, &mut frame);
                receivers += 1;
            }
        }
        receivers
    }

    fn deliver(&mut self, idx: usize, frame: &mut Frame) {
        if let Some((me, out)) = self.me.as_mut() {
            if *me == idx {
                let bytes = frame.bytes(out.resp3);
                out.buf.extend_from_slice(&bytes);
                return;
            }
        }
        let Some(c) = self.clients.get_mut(idx) else { return };
        if c.st.close_asap {
            return;
        }
        c.send(frame.bytes(c.st.resp3));
        if self.over_limit(idx) {
            return;
        }
        if self.ps.dirty.last() != Some(&idx) {
            self.ps.dirty.push(idx);
        }
    }

    fn over_limit(&mut self, idx: usize) -> bool {
        over_limit(self.ps, self.clients, idx, self.now, self.kill_pending)
    }
}

/// Valkey's `checkClientOutputBufferLimits` for the pubsub class: over the hard limit, or over
/// the soft limit for longer than its seconds, closes the subscriber (after logging it, as
/// `closeClientOnOutputBufferLimitReached` does). Also used for client-side caching messages.
pub fn over_limit(
    ps: &mut PubSub,
    clients: &mut Slab<Client>,
    idx: usize,
    now: Instant,
    kill_pending: &mut bool,
) -> bool {
    let ObufLimit { hard, soft, soft_seconds } = ps.limit;
    if hard == 0 && soft == 0 {
        return false;
    }
    let Some(c) = clients.get_mut(idx) else { return false };
    let used = c.pending_out_bytes() as u64;
    let hard_hit = hard > 0 && used >= hard;
    let mut soft_hit = false;
    if soft > 0 && used >= soft {
        match c.st.obuf_soft_since {
            None => c.st.obuf_soft_since = Some(now),
            Some(t) => soft_hit = now.saturating_duration_since(t).as_secs() > soft_seconds,
        }
    } else {
        c.st.obuf_soft_since = None;
    }
    if !(hard_hit || soft_hit) {
        return false;
    }
    let mut info = String::new();
    crate::command::client_cmd::write_client_info(&mut info, c, now, None);
    log::warn!("Client {info} scheduled to be closed ASAP for overcoming of output buffer limits.");
    c.st.close_asap = true;
    c.discard_pending();
    ps.limit_disconnections += 1;
    *kill_pending = true;
    true
}

/// Cluster mode: shard channels whose slot this node no longer owns lose their subscribers,
/// each told with a `sunsubscribe` message (Valkey's `removeChannelsInSlot`), so clients
/// resubscribe on the new owner. Run from cron: a few shard channels to check per tick.
pub fn drop_unowned_shard_channels(srv: &mut super::server::Server, clients: &mut Slab<Client>) {
    let Some(cl) = srv.cluster.as_ref() else { return };
    if srv.pubsub.shard.is_empty() {
        return;
    }
    let lost: Vec<Bytes> =
        srv.pubsub.shard.keys().filter(|c| !cl.owns(crate::keyspace::slot::key_slot(c))).cloned().collect();
    for ch in lost {
        let subs: Vec<usize> =
            srv.pubsub.shard.get(&ch).map(|s| s.iter().copied().collect()).unwrap_or_default();
        for idx in subs {
            let Some(c) = clients.get_mut(idx) else { continue };
            srv.pubsub.unsubscribe(&mut c.st, idx, Kind::Shard, &ch);
            let count = c.st.subs.as_ref().map_or(0, |s| s.count(Kind::Shard));
            let mut r = Reply::new(c.st.resp3);
            r.push(3);
            r.bulk(b"sunsubscribe");
            r.bulk(&ch);
            r.int(count as i64);
            c.send(r.buf.freeze());
            srv.pubsub.leave_if_idle(&mut c.st);
            srv.pubsub.dirty.push(idx);
        }
    }
}

/// The RESP2 subscriber-mode restriction (Valkey's `processCommand`): a RESP2 client with
/// subscriptions may only run these; RESP3 clients may run anything.
pub fn allowed_in_subscriber_mode(name: &str) -> bool {
    matches!(
        name,
        "ping"
            | "subscribe"
            | "ssubscribe"
            | "unsubscribe"
            | "sunsubscribe"
            | "psubscribe"
            | "punsubscribe"
            | "quit"
            | "reset"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_encoded_once_per_protocol() {
        let mut f = Frame::new(&[b"message", b"ch", b"hi"]);
        assert_eq!(&f.bytes(false)[..], b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n");
        assert_eq!(&f.bytes(true)[..], b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n");
        let a = f.bytes(false);
        let b = f.bytes(false);
        assert_eq!(a.as_ptr(), b.as_ptr(), "the second subscriber shares the first's bytes");
    }

    #[test]
    fn registries_mirror_client_state() {
        let mut ps = PubSub::new("normal 0 0 0 slave 0 0 0 pubsub 0 0 0");
        let mut st = ClientState::new(1, String::new(), String::new(), -1, true);
        let ch = Bytes::from_static(b"news");
        assert!(ps.subscribe(&mut st, 7, Kind::Channel, &ch));
        assert!(!ps.subscribe(&mut st, 7, Kind::Channel, &ch));
        assert!(ps.subscribe(&mut st, 7, Kind::Pattern, &Bytes::from_static(b"n*")));
        assert_eq!((ps.clients, ps.subscribers(Kind::Channel, b"news")), (1, 1));
        assert_eq!(st.subs.as_ref().map(|s| s.count(Kind::Channel)), Some(2));
        assert!(ps.unsubscribe(&mut st, 7, Kind::Channel, b"news"));
        assert_eq!(ps.channel_count(Kind::Channel), 0);
        ps.leave_if_idle(&mut st);
        assert!(st.subs.is_some(), "the pattern keeps it in pub/sub mode");
        ps.drop_client(&mut st, 7);
        assert!(st.subs.is_none());
        assert_eq!((ps.clients, ps.channel_count(Kind::Pattern)), (0, 0));
    }
}
