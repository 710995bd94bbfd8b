//! Whether this node may run a keyed command, in the order of Valkey's `getNodeByQuery`:
//! unassigned first slot, CROSSSLOT, cluster down, classic migration (ASK / TRYAGAIN),
//! ASKING on an importing slot, READONLY on a replica, MOVED. A write to a slot whose
//! migration is in its final hand-off is *deferred* (the client's request waits, it sees no
//! error), which is how an atomic migration pauses writes.
//!
//! `check` looks only at the command and the client's flags, so EXEC can run it over its
//! queued commands to decide on EXECABORT.

use bytes::Bytes;

use super::ClusterState;
use crate::command::keys_of::{command_keys, has_keys};
use crate::command::meta::CommandMeta;
use crate::config::Config;
use crate::exec::{ClientState, Server};
use crate::keyspace::slot::key_slot;
use crate::keyspace::Db;

/// Why a command is not run here, and what the client is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redirect {
    CrossSlot,
    Unbound,
    Down,
    DownReadOnly,
    TryAgain,
    Ask {
        slot: u16,
        endpoint: String,
        port: u16,
    },
    Moved {
        slot: u16,
        endpoint: String,
        port: u16,
    },
    /// Not an error: the request waits until the slot's hand-off is over.
    Defer,
}

impl Redirect {
    /// The error reply, without the leading `-` (`None` for [`Redirect::Defer`]).
    pub fn message(&self) -> Option<String> {
        Some(match self {
            Redirect::CrossSlot => "CROSSSLOT Keys in request don't hash to the same slot".into(),
            Redirect::Unbound => "CLUSTERDOWN Hash slot not served".into(),
            Redirect::Down => "CLUSTERDOWN The cluster is down".into(),
            Redirect::DownReadOnly => "CLUSTERDOWN The cluster is down and only accepts read commands".into(),
            Redirect::TryAgain => "TRYAGAIN Multiple keys request during rehashing of slot".into(),
            Redirect::Ask { slot, endpoint, port } => format!("ASK {slot} {endpoint}:{port}"),
            Redirect::Moved { slot, endpoint, port } => format!("MOVED {slot} {endpoint}:{port}"),
            Redirect::Defer => return None,
        })
    }
}

/// Checks a command against the cluster state; `None` means "run it here".
pub fn check(srv: &mut Server, client: &ClientState, meta: &CommandMeta, args: &[Bytes]) -> Option<Redirect> {
    let Server { cluster, dbs, config, .. } = srv;
    let cl = cluster.as_ref()?;
    decide(cl, config, &mut dbs[client.db], client, meta, args)
}

/// [`check`] over explicit parts, for unit tests.
pub fn decide(
    cl: &ClusterState,
    config: &Config,
    db: &mut Db,
    client: &ClientState,
    meta: &CommandMeta,
    args: &[Bytes],
) -> Option<Redirect> {
    // Sharded pub/sub is routed by its channels, which are not keys (see `shard_channels`).
    let channels = crate::command::keys_of::shard_channels(meta, args);
    if !has_keys(meta) && channels.is_empty() {
        return None;
    }
    // Shard channels are served by the source until a migration ends: never "missing".
    let by_channel = !channels.is_empty();
    let keys = if by_channel { channels } else { command_keys(meta, args) };
    let first = keys.first()?;
    let slot = key_slot(&args[first.pos]);
    let Some(shard) = cl.shard_of(slot) else {
        return Some(Redirect::Unbound);
    };
    let mine = cl.owns(slot);
    let migrating_to = if mine { cl.migrating.get(&slot) } else { None };
    let importing_from = if mine { None } else { cl.importing.get(&slot) };
    let open = migrating_to.is_some() || importing_from.is_some();
    let now = crate::util::now_ms();
    let (mut multiple, mut missing) = (false, 0usize);
    for k in &keys {
        let key = &args[k.pos];
        if key != &args[first.pos] {
            if key_slot(key) != slot {
                return Some(Redirect::CrossSlot);
            }
            multiple = true;
        }
        if open && !by_channel && !db.contains(key, now) {
            missing += 1;
        }
    }
    let write = meta.has_flag("write");
    if !cl.healthy(config) {
        if !config.get_bool("cluster-allow-reads-when-down") {
            return Some(Redirect::Down);
        }
        if write {
            return Some(Redirect::DownReadOnly);
        }
    }
    if let (Some(dst), true) = (migrating_to, missing > 0) {
        if multiple {
            return Some(Redirect::TryAgain);
        }
        let node = cl.node(dst)?;
        return Some(Redirect::Ask {
            slot,
            endpoint: super::endpoint(config, node).into(),
            port: super::view::client_port(node),
        });
    }
    if importing_from.is_some() && (client.asking || meta.has_flag("asking")) {
        return (multiple && missing > 0).then_some(Redirect::TryAgain);
    }
    if mine {
        let paused = cl.migrations.write_paused(slot);
        return (paused && write).then_some(Redirect::Defer);
    }
    if client.readonly
        && !write
        && cl.me().is_some_and(|(s, r)| s == shard && r == super::topology::Role::Replica)
    {
        return None;
    }
    let node = cl.primary_for(slot)?;
    if node.id == cl.myid {
        // Never MOVED to myself (go-redis drops the connection on that).
        return None;
    }
    Some(Redirect::Moved {
        slot,
        endpoint: super::endpoint(config, node).into(),
        port: super::view::client_port(node),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::tests::two_shards;
    use crate::command::table::COMMANDS;
    use crate::keyspace::Value;

    fn meta(name: &str) -> &'static CommandMeta {
        COMMANDS.iter().find(|m| m.name == name).unwrap_or_else(|| panic!("no {name}"))
    }

    fn args(line: &str) -> Vec<Bytes> {
        line.split(' ').map(|s| Bytes::copy_from_slice(s.as_bytes())).collect()
    }

    struct Fixture {
        cl: ClusterState,
        config: Config,
        db: Db,
        client: ClientState,
    }

    impl Fixture {
        /// I am node 1, owning slots 0..=12181; node 2 owns 12182.. (where `foo` hashes).
        fn new() -> Fixture {
            let mut cl = ClusterState::ephemeral("1".repeat(40));
            cl.apply(two_shards(1, 12182)).expect("apply");
            let client = ClientState::new(1, String::new(), String::new(), -1, true);
            Fixture { cl, config: Config::default(), db: Db::new(), client }
        }

        fn run(&mut self, line: &str) -> Option<String> {
            let a = args(line);
            let m = meta(&line.split(' ').next().unwrap_or("").to_ascii_lowercase());
            decide(&self.cl, &self.config, &mut self.db, &self.client, m, &a)
                .map(|r| r.message().unwrap_or_else(|| "DEFER".into()))
        }
    }

    #[test]
    fn moved_crossslot_and_local() {
        let mut f = Fixture::new();
        // `bar` is slot 5061 (mine), `foo` 12182 (node 2).
        assert_eq!(f.run("get bar"), None);
        assert_eq!(f.run("get foo").as_deref(), Some("MOVED 12182 127.0.0.1:7002"));
        assert_eq!(
            f.run("mset bar 1 foo 2").as_deref(),
            Some("CROSSSLOT Keys in request don't hash to the same slot")
        );
        // CROSSSLOT is reported even when the first key's slot is elsewhere.
        assert_eq!(
            f.run("mget foo bar").as_deref(),
            Some("CROSSSLOT Keys in request don't hash to the same slot")
        );
        assert_eq!(f.run("mget {bar}a {bar}b bar"), None);
        assert_eq!(f.run("ping"), None);
    }

    #[test]
    fn unbound_before_crossslot_and_down_after() {
        let mut f = Fixture::new();
        let mut t = two_shards(2, 12182);
        t.shards[1].slots = vec![(12183, 16383)];
        f.cl.apply(t).expect("apply");
        assert_eq!(f.run("mget foo bar").as_deref(), Some("CLUSTERDOWN Hash slot not served"));
        assert_eq!(
            f.run("mget bar foo").as_deref(),
            Some("CROSSSLOT Keys in request don't hash to the same slot")
        );
        assert_eq!(f.run("get bar").as_deref(), Some("CLUSTERDOWN The cluster is down"));
        f.config.load_str("cluster-allow-reads-when-down yes").expect("set");
        assert_eq!(f.run("get bar"), None);
        assert_eq!(
            f.run("set bar 1").as_deref(),
            Some("CLUSTERDOWN The cluster is down and only accepts read commands")
        );
        f.config.load_str("cluster-require-full-coverage no").expect("set");
        assert_eq!(f.run("set bar 1"), None);
    }

    #[test]
    fn classic_migration_ask_and_tryagain() {
        let mut f = Fixture::new();
        f.cl.migrating.insert(5061, "2".repeat(40));
        f.db.set(b"bar", Value::Int(1), None, 0);
        assert_eq!(f.run("get bar"), None);
        assert_eq!(f.run("get {bar}x").as_deref(), Some("ASK 5061 127.0.0.1:7002"));
        assert_eq!(
            f.run("mget bar {bar}x").as_deref(),
            Some("TRYAGAIN Multiple keys request during rehashing of slot")
        );
        // Importing on the other side: MOVED unless ASKING.
        f.cl.importing.insert(12182, "2".repeat(40));
        assert_eq!(f.run("get foo").as_deref(), Some("MOVED 12182 127.0.0.1:7002"));
        f.client.asking = true;
        assert_eq!(f.run("get foo"), None);
        assert_eq!(
            f.run("mget foo {foo}x").as_deref(),
            Some("TRYAGAIN Multiple keys request during rehashing of slot")
        );
    }

    #[test]
    fn endpoints_follow_the_preferred_type() {
        let mut f = Fixture::new();
        f.config.load_str("cluster-preferred-endpoint-type hostname").expect("set");
        assert_eq!(f.run("get foo").as_deref(), Some("MOVED 12182 ?:7002"));
        f.config.load_str("cluster-preferred-endpoint-type unknown-endpoint").expect("set");
        assert_eq!(f.run("get foo").as_deref(), Some("MOVED 12182 :7002"));
    }

    #[test]
    fn replica_serves_reads_only_with_readonly() {
        let mut f = Fixture::new();
        let mut t = two_shards(2, 12182);
        let mut replica = t.shards[1].nodes[0].clone();
        replica.id = "3".repeat(40);
        replica.role = super::super::topology::Role::Replica;
        t.shards[1].nodes.push(replica);
        f.cl = ClusterState::ephemeral("3".repeat(40));
        f.cl.apply(t).expect("apply");
        assert_eq!(f.run("get foo").as_deref(), Some("MOVED 12182 127.0.0.1:7002"));
        f.client.readonly = true;
        assert_eq!(f.run("get foo"), None);
        assert_eq!(f.run("set foo 1").as_deref(), Some("MOVED 12182 127.0.0.1:7002"));
        assert_eq!(f.run("get bar").as_deref(), Some("MOVED 5061 127.0.0.1:7001"));
    }
}
