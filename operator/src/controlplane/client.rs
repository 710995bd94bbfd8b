//! A RESP client for one `shoal-node`, over the `redis` crate's multiplexed tokio connection:
//! the control-plane commands (`CLUSTER MYID/MYSHARDID/INFO/SHARDS/SETTOPOLOGY/MIGRATESLOTS/
//! GETSLOTMIGRATIONS/CANCELSLOTMIGRATIONS`, `INFO everything`, `CONFIG GET/SET io-threads`) and
//! the parsing of their replies into `model` types. Replies are accepted in RESP2 and RESP3
//! shapes (maps as flat arrays or as maps). Every call is bounded by the connection's timeouts.

use std::collections::HashMap;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::Value;

use super::credentials::{self, Credentials};

use super::model::{
    FailoverKind, MigrationJob, MigrationOperation, MigrationState, NodeAddr, NodeId, NodeMetrics,
    ReplicationInfo, Role, ShardId, SlotRange, Topology, TopologyNode, TopologyShard,
};

/// A failed exchange with a node.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("connecting to {addr}: {source}")]
    Connect { addr: String, source: redis::RedisError },
    #[error("{addr}: {cmd}: {source}")]
    Command { addr: String, cmd: String, source: redis::RedisError },
    #[error("{addr}: {cmd}: unexpected reply: {detail}")]
    Reply { addr: String, cmd: String, detail: String },
}

impl ClientError {
    /// The node's error message, when the node answered with an error reply.
    pub fn server_message(&self) -> Option<String> {
        match self {
            ClientError::Command { source, .. } if source.kind() != redis::ErrorKind::IoError => {
                Some(source.to_string())
            }
            _ => None,
        }
    }
}

pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// A connection to one node.
#[derive(Clone)]
pub struct NodeClient {
    addr: NodeAddr,
    conn: MultiplexedConnection,
}

impl NodeClient {
    /// Connects, bounding the connect and every later reply by `timeout`, as `creds` say (an
    /// ACL user or the default user's password, TLS); a node that refuses the user is tried
    /// once more as the `default` user with the fallback password.
    pub async fn connect(addr: &NodeAddr, timeout: Duration, creds: &Credentials) -> Result<NodeClient> {
        let err = |source| ClientError::Connect { addr: addr.to_string(), source };
        let tls = creds.tls.as_ref();
        let first =
            credentials::open(addr, timeout, creds.user.as_deref(), creds.password.as_deref(), tls).await;
        let conn = match first {
            Ok(c) => c,
            Err(e) if creds.user.is_some() && credentials::refused(&e) => {
                credentials::open(addr, timeout, None, creds.fallback.as_deref(), tls).await.map_err(err)?
            }
            Err(e) => return Err(err(e)),
        };
        Ok(NodeClient { addr: addr.clone(), conn })
    }

    /// `ACL USERS`.
    pub async fn acl_users(&mut self) -> Result<Vec<String>> {
        let v = self.call(&["ACL", "USERS"]).await?;
        match &v {
            Value::Array(items) => Ok(items.iter().filter_map(text).collect()),
            _ => Err(self.bad("ACL USERS", format!("{v:?}"))),
        }
    }

    /// `ACL SETUSER <name> <args...>`.
    pub async fn acl_setuser(&mut self, name: &str, args: &[String]) -> Result<()> {
        let mut all = vec!["ACL", "SETUSER", name];
        all.extend(args.iter().map(String::as_str));
        self.call(&all).await.map(|_| ())
    }

    /// `ACL DELUSER <name>`.
    pub async fn acl_deluser(&mut self, name: &str) -> Result<()> {
        self.call(&["ACL", "DELUSER", name]).await.map(|_| ())
    }

    pub fn addr(&self) -> &NodeAddr {
        &self.addr
    }

    async fn call(&mut self, args: &[&str]) -> Result<Value> {
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        cmd.query_async::<Value>(&mut self.conn).await.map_err(|source| ClientError::Command {
            addr: self.addr.to_string(),
            cmd: args[..args.len().min(2)].join(" "),
            source,
        })
    }

    fn bad(&self, cmd: &str, detail: impl Into<String>) -> ClientError {
        ClientError::Reply { addr: self.addr.to_string(), cmd: cmd.into(), detail: detail.into() }
    }

    /// `CLUSTER MYID`.
    pub async fn my_id(&mut self) -> Result<NodeId> {
        let v = self.call(&["CLUSTER", "MYID"]).await?;
        text(&v).map(NodeId).ok_or_else(|| self.bad("CLUSTER MYID", format!("{v:?}")))
    }

    /// `CLUSTER MYSHARDID`; `None` before the node is in a topology.
    pub async fn my_shard_id(&mut self) -> Result<Option<ShardId>> {
        match self.call(&["CLUSTER", "MYSHARDID"]).await {
            Ok(v) => Ok(text(&v).filter(|s| s.len() == 40).map(ShardId)),
            Err(e) if e.server_message().is_some() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `cluster_current_epoch` from `CLUSTER INFO` (0 when the node holds no topology).
    pub async fn epoch(&mut self) -> Result<u64> {
        let v = self.call(&["CLUSTER", "INFO"]).await?;
        let info = parse_info(&text(&v).unwrap_or_default());
        Ok(info.get("cluster_current_epoch").and_then(|e| e.parse().ok()).unwrap_or(0))
    }

    /// `INFO everything`, plus `CONFIG GET io-threads`, as metrics.
    pub async fn metrics(&mut self) -> Result<NodeMetrics> {
        self.metrics_and_replication().await.map(|(m, _)| m)
    }

    /// `INFO replication`.
    pub async fn replication(&mut self) -> Result<ReplicationInfo> {
        let v = self.call(&["INFO", "replication"]).await?;
        Ok(replication_from_info(&parse_info(&text(&v).unwrap_or_default())))
    }

    /// `CLIENT PAUSE <ms> WRITE`: clients' write commands wait, reads go on.
    pub async fn pause_writes(&mut self, ms: u64) -> Result<()> {
        self.call(&["CLIENT", "PAUSE", &ms.to_string(), "WRITE"]).await.map(|_| ())
    }

    /// `CLIENT UNPAUSE`.
    pub async fn unpause(&mut self) -> Result<()> {
        self.call(&["CLIENT", "UNPAUSE"]).await.map(|_| ())
    }

    /// One `INFO everything` read as metrics (plus `CONFIG GET io-threads`) and replication.
    pub async fn metrics_and_replication(&mut self) -> Result<(NodeMetrics, ReplicationInfo)> {
        let v = self.call(&["INFO", "everything"]).await?;
        let info = parse_info(&text(&v).unwrap_or_default());
        let repl = replication_from_info(&info);
        let mut m = metrics_from_info(&info);
        let v = self.call(&["CONFIG", "GET", "io-threads"]).await?;
        let pairs = pairs(&v);
        m.io_threads =
            pairs.iter().find(|(k, _)| k == "io-threads").and_then(|(_, v)| v.parse().ok()).unwrap_or(1);
        Ok((m, repl))
    }

    /// The topology the node holds, rebuilt from `CLUSTER SHARDS`. Shard ids are not part of
    /// that reply: `shard_ids` maps primary node ids to their `CLUSTER MYSHARDID`; a shard whose
    /// primary is missing there is named after its primary node id.
    pub async fn topology(&mut self, epoch: u64, shard_ids: &HashMap<NodeId, ShardId>) -> Result<Topology> {
        // CLUSTER GETTOPOLOGY carries shard ids and fail marks; CLUSTER SHARDS (Valkey's reply)
        // has neither, so a shard whose only node is gone could not be named from it.
        match self.call(&["CLUSTER", "GETTOPOLOGY"]).await {
            Ok(Value::BulkString(json)) => {
                return serde_json::from_slice(&json)
                    .map_err(|e| self.bad("CLUSTER GETTOPOLOGY", e.to_string()));
            }
            Ok(v) => return Err(self.bad("CLUSTER GETTOPOLOGY", format!("{v:?}"))),
            Err(e) if e.server_message().is_some() => {}
            Err(e) => return Err(e),
        }
        let v = self.call(&["CLUSTER", "SHARDS"]).await?;
        parse_shards(&v, epoch, shard_ids).ok_or_else(|| self.bad("CLUSTER SHARDS", format!("{v:?}")))
    }

    /// `CLUSTER SETTOPOLOGY <json>`.
    pub async fn set_topology(&mut self, t: &Topology) -> Result<()> {
        self.call(&["CLUSTER", "SETTOPOLOGY", &t.to_json()]).await.map(|_| ())
    }

    /// `CLUSTER MIGRATESLOTS SLOTSRANGE a b ... NODE <target>`, sent to the source primary.
    pub async fn migrate_slots(&mut self, slots: &[SlotRange], target: &NodeId) -> Result<()> {
        let bounds: Vec<String> =
            slots.iter().flat_map(|r| [r.start.to_string(), r.end.to_string()]).collect();
        let mut args = vec!["CLUSTER", "MIGRATESLOTS", "SLOTSRANGE"];
        args.extend(bounds.iter().map(String::as_str));
        args.extend(["NODE", &target.0]);
        self.call(&args).await.map(|_| ())
    }

    /// `CLUSTER GETSLOTMIGRATIONS`.
    pub async fn slot_migrations(&mut self) -> Result<Vec<MigrationJob>> {
        let v = self.call(&["CLUSTER", "GETSLOTMIGRATIONS"]).await?;
        match &v {
            Value::Array(items) | Value::Set(items) => Ok(items.iter().filter_map(parse_job).collect()),
            Value::Nil => Ok(Vec::new()),
            _ => Err(self.bad("CLUSTER GETSLOTMIGRATIONS", format!("{v:?}"))),
        }
    }

    /// `CLUSTER CANCELSLOTMIGRATIONS`.
    pub async fn cancel_slot_migrations(&mut self) -> Result<()> {
        self.call(&["CLUSTER", "CANCELSLOTMIGRATIONS"]).await.map(|_| ())
    }

    /// Any command; the reply as text (array elements one per line). For tools and tests.
    pub async fn command_text(&mut self, args: &[&str]) -> Result<String> {
        let v = self.call(args).await?;
        Ok(match &v {
            Value::Array(items) => items.iter().filter_map(text).collect::<Vec<_>>().join("\n"),
            v => text(v).unwrap_or_default(),
        })
    }

    /// `CONFIG SET io-threads n`.
    pub async fn set_io_threads(&mut self, n: u32) -> Result<()> {
        self.call(&["CONFIG", "SET", "io-threads", &n.to_string()]).await.map(|_| ())
    }
}

/// A reply as text, for simple, bulk and verbatim strings and integers.
pub fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        Value::VerbatimString { text, .. } => Some(text.clone()),
        Value::Okay => Some("OK".into()),
        Value::Int(i) => Some(i.to_string()),
        Value::Double(d) => Some(d.to_string()),
        _ => None,
    }
}

/// Key/value pairs of a RESP3 map or a RESP2 flat array; values that are not text are skipped.
fn pairs(v: &Value) -> Vec<(String, String)> {
    entries(v).into_iter().filter_map(|(k, v)| Some((k, text(v)?))).collect()
}

/// Key/value entries of a RESP3 map or a RESP2 flat array.
fn entries(v: &Value) -> Vec<(String, &Value)> {
    match v {
        Value::Map(m) => m.iter().filter_map(|(k, v)| Some((text(k)?, v))).collect(),
        Value::Array(a) => {
            a.chunks(2).filter(|c| c.len() == 2).filter_map(|c| Some((text(&c[0])?, &c[1]))).collect()
        }
        _ => Vec::new(),
    }
}

/// `key:value` lines of INFO and CLUSTER INFO.
pub fn parse_info(s: &str) -> HashMap<String, String> {
    s.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// The figures the autoscaler reads, from parsed INFO fields.
pub fn metrics_from_info(info: &HashMap<String, String>) -> NodeMetrics {
    let num = |k: &str| info.get(k).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    let keys = info
        .iter()
        .filter(|(k, _)| k.starts_with("db") && k[2..].bytes().all(|b| b.is_ascii_digit()))
        .filter_map(|(_, v)| v.split(',').find_map(|kv| kv.strip_prefix("keys=")))
        .filter_map(|n| n.parse::<u64>().ok())
        .sum();
    NodeMetrics {
        executor_busy_ratio: num("executor_busy_ratio"),
        io_threads_active: num("io_threads_active_count") as u32,
        io_threads: 1,
        ops_per_sec: num("instantaneous_ops_per_sec") as u64,
        used_memory: num("used_memory") as u64,
        maxmemory: num("maxmemory") as u64,
        connected_clients: num("connected_clients") as u64,
        keys,
    }
}

/// Replication state from parsed `INFO replication` fields (absent fields: defaults).
pub fn replication_from_info(info: &HashMap<String, String>) -> ReplicationInfo {
    let num = |k: &str| info.get(k).and_then(|v| v.parse::<u64>().ok());
    ReplicationInfo {
        role: match info.get("role").map(String::as_str) {
            Some("master") => Some(Role::Primary),
            Some("slave") | Some("replica") => Some(Role::Replica),
            _ => None,
        },
        master_repl_offset: num("master_repl_offset").unwrap_or(0),
        replica_offset: num("slave_repl_offset"),
        link_up: info.get("master_link_status").is_some_and(|v| v == "up"),
        sync_in_progress: num("master_sync_in_progress") == Some(1),
        connected_replicas: num("connected_slaves").unwrap_or(0) as u32,
        fenced: num("shoal_fenced") == Some(1),
        failover_requested: info.get("shoal_failover_requested").and_then(|v| FailoverKind::parse(v)),
    }
}

/// `"0-10 20 30-39"` (or `"0-10,20"`) as ranges.
pub fn parse_slot_ranges(s: &str) -> Option<Vec<SlotRange>> {
    s.split([' ', ','])
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (a, b) = p.split_once('-').unwrap_or((p, p));
            Some(SlotRange::new(a.trim().parse().ok()?, b.trim().parse().ok()?))
        })
        .collect()
}

fn parse_job(v: &Value) -> Option<MigrationJob> {
    let f: HashMap<String, String> = pairs(v).into_iter().collect();
    let get = |k: &str| f.get(k).cloned().unwrap_or_default();
    let operation = match get("operation").to_ascii_uppercase().as_str() {
        "EXPORT" => MigrationOperation::Export,
        "IMPORT" => MigrationOperation::Import,
        _ => return None,
    };
    Some(MigrationJob {
        name: get("name"),
        operation,
        slots: parse_slot_ranges(&get("slot_ranges"))?,
        source_node: NodeId(get("source_node")),
        target_node: NodeId(get("target_node")),
        state: MigrationState::parse(&get("state")),
        message: get("message"),
        last_update: get("last_update_time").parse().unwrap_or(0),
    })
}

fn parse_shards(v: &Value, epoch: u64, shard_ids: &HashMap<NodeId, ShardId>) -> Option<Topology> {
    let Value::Array(shards) = v else { return None };
    let mut out = Topology { epoch, shards: Vec::new() };
    for shard in shards {
        let e = entries(shard);
        let slots_v = e.iter().find(|(k, _)| k == "slots").map(|(_, v)| *v)?;
        let nodes_v = e.iter().find(|(k, _)| k == "nodes").map(|(_, v)| *v)?;
        let bounds: Vec<u16> = match slots_v {
            Value::Array(a) => a.iter().filter_map(|x| text(x)?.parse().ok()).collect(),
            _ => Vec::new(),
        };
        let slots = bounds.chunks(2).filter(|c| c.len() == 2).map(|c| SlotRange::new(c[0], c[1])).collect();
        let Value::Array(nodes_a) = nodes_v else { return None };
        let mut nodes = Vec::new();
        for n in nodes_a {
            let f: HashMap<String, String> = pairs(n).into_iter().collect();
            let role = match f.get("role").map(String::as_str) {
                Some("master") | Some("primary") => Role::Primary,
                _ => Role::Replica,
            };
            nodes.push(TopologyNode {
                id: NodeId(f.get("id")?.clone()),
                ip: f.get("ip").cloned().unwrap_or_default(),
                hostname: f.get("hostname").filter(|h| !h.is_empty()).cloned(),
                port: f.get("port")?.parse().ok()?,
                role,
                fail: f.get("health").is_some_and(|h| h == "fail"),
            });
        }
        let id = e
            .iter()
            .find(|(k, _)| k == "id")
            .and_then(|(_, v)| text(v))
            .map(ShardId)
            .or_else(|| {
                nodes.iter().find(|n| n.role == Role::Primary).and_then(|p| shard_ids.get(&p.id).cloned())
            })
            .or_else(|| nodes.first().map(|n| ShardId(n.id.0.clone())))?;
        out.shards.push(TopologyShard { id, slots, nodes });
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn info_metrics() {
        let info = parse_info(
            "# Server\r\nio_threads_active_count:2\r\nexecutor_busy_ratio:0.375\r\n# Memory\r\nused_memory:1000\r\n\
             maxmemory:4000\r\ninstantaneous_ops_per_sec:12\r\nconnected_clients:3\r\n# Keyspace\r\n\
             db0:keys=7,expires=0,avg_ttl=0\r\n",
        );
        let m = metrics_from_info(&info);
        assert_eq!(m.io_threads_active, 2);
        assert_eq!(m.executor_busy_ratio, 0.375);
        assert_eq!(m.keys, 7);
        assert_eq!(m.memory_ratio(), Some(0.25));
        assert_eq!(m.ops_per_sec, 12);
    }

    #[test]
    fn replication_fields() {
        let r = replication_from_info(&parse_info(
            "# Replication\r\nrole:slave\r\nmaster_link_status:up\r\nmaster_sync_in_progress:0\r\n\
             slave_repl_offset:420\r\nmaster_repl_offset:420\r\nshoal_failover_requested:force\r\n",
        ));
        assert_eq!(r.role, Some(Role::Replica));
        assert!(r.link_up && !r.sync_in_progress && !r.fenced);
        assert_eq!((r.offset(), r.failover_requested), (420, Some(FailoverKind::Force)));
        let p = replication_from_info(&parse_info(
            "role:master\r\nconnected_slaves:1\r\nmaster_repl_offset:9\r\nshoal_fenced:1\r\n\
             shoal_failover_requested:\r\n",
        ));
        assert_eq!((p.role, p.offset(), p.connected_replicas), (Some(Role::Primary), 9, 1));
        assert!(p.fenced && p.failover_requested.is_none());
    }

    #[test]
    fn slot_ranges_text() {
        assert_eq!(
            parse_slot_ranges("0-10 20 30-39"),
            Some(vec![SlotRange::new(0, 10), SlotRange::new(20, 20), SlotRange::new(30, 39)])
        );
        assert_eq!(parse_slot_ranges("x"), None);
    }

    #[test]
    fn job_resp2_and_resp3() {
        let kv = [
            ("name", "j1"),
            ("operation", "EXPORT"),
            ("slot_ranges", "0-10"),
            ("target_node", "t"),
            ("source_node", "s"),
            ("state", "success"),
            ("last_update_time", "5"),
        ];
        let flat = Value::Array(kv.iter().flat_map(|(k, v)| [bulk(k), bulk(v)]).collect());
        let map = Value::Map(kv.iter().map(|(k, v)| (bulk(k), bulk(v))).collect());
        for v in [flat, map] {
            let j = parse_job(&v).unwrap();
            assert_eq!(j.state, MigrationState::Success);
            assert_eq!(j.operation, MigrationOperation::Export);
            assert_eq!(j.slots, vec![SlotRange::new(0, 10)]);
            assert_eq!(j.last_update, 5);
        }
    }

    #[test]
    fn shards_reply() {
        let node = Value::Array(vec![
            bulk("id"),
            bulk(&"a".repeat(40)),
            bulk("port"),
            Value::Int(7000),
            bulk("ip"),
            bulk("127.0.0.1"),
            bulk("role"),
            bulk("master"),
        ]);
        let shard = Value::Array(vec![
            bulk("slots"),
            Value::Array(vec![Value::Int(0), Value::Int(99), Value::Int(200), Value::Int(200)]),
            bulk("nodes"),
            Value::Array(vec![node]),
        ]);
        let ids: HashMap<NodeId, ShardId> = [(NodeId("a".repeat(40)), ShardId("s".repeat(40)))].into();
        let t = parse_shards(&Value::Array(vec![shard]), 4, &ids).unwrap();
        assert_eq!(t.epoch, 4);
        assert_eq!(t.shards[0].id, ShardId("s".repeat(40)));
        assert_eq!(t.shards[0].slots, vec![SlotRange::new(0, 99), SlotRange::new(200, 200)]);
        assert_eq!(t.shards[0].nodes[0].port, 7000);
        assert_eq!(t.shards[0].nodes[0].role, Role::Primary);
    }

    #[test]
    fn passwords_are_percent_encoded_for_the_url() {
        assert_eq!(super::credentials::percent_encode("abc-._~XYZ09"), "abc-._~XYZ09");
        assert_eq!(super::credentials::percent_encode("p@ss word:/%"), "p%40ss%20word%3A%2F%25");
        assert_eq!(super::credentials::percent_encode("é"), "%C3%A9");
    }
}
