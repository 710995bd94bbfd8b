//! Observation: asks every node, concurrently and with bounded waits, who it is, which topology
//! epoch it holds, its metrics and its slot-migration jobs, and rebuilds the newest topology from
//! the node that holds it. Nothing here is cached across calls but the connections: the nodes are
//! the source of truth.

use std::collections::HashMap;
use std::time::Duration;

use tokio::task::JoinSet;

use super::client::{ClientError, NodeClient};
use super::credentials::Credentials;
use super::model::{NodeAddr, NodeId, ObservedNode, ObservedState, ShardId};

/// Maps the address a node is known by to the address to dial (tests reach nodes named by
/// cluster DNS names on loopback ports; an operator run outside the cluster could use
/// port-forwards).
pub type Dialer = std::sync::Arc<dyn Fn(&NodeAddr) -> NodeAddr + Send + Sync>;

/// Connections to nodes, reused across observations and dropped when they fail.
pub struct ClientPool {
    clients: HashMap<NodeAddr, NodeClient>,
    timeout: Duration,
    creds: Credentials,
    dialer: Option<Dialer>,
}

impl ClientPool {
    pub fn new(timeout: Duration) -> ClientPool {
        ClientPool { clients: HashMap::new(), timeout, creds: Credentials::default(), dialer: None }
    }

    /// Dials every node through `d`.
    pub fn set_dialer(&mut self, d: Dialer) {
        self.dialer = Some(d);
        self.clients.clear();
    }

    /// What new connections authenticate with; a change drops the open connections.
    pub fn set_credentials(&mut self, creds: Credentials) {
        if creds != self.creds {
            self.creds = creds;
            self.clients.clear();
        }
    }

    /// A connected client for `addr`.
    pub async fn get(&mut self, addr: &NodeAddr) -> Result<NodeClient, ClientError> {
        if let Some(c) = self.clients.get(addr) {
            return Ok(c.clone());
        }
        let dial = match &self.dialer {
            Some(d) => d(addr),
            None => addr.clone(),
        };
        let c = NodeClient::connect(&dial, self.timeout, &self.creds).await?;
        self.clients.insert(addr.clone(), c.clone());
        Ok(c)
    }

    /// Forgets the connection to `addr` (after an I/O error, or when the node is gone).
    pub fn drop_client(&mut self, addr: &NodeAddr) {
        self.clients.remove(addr);
    }

    /// Forgets connections to nodes not in `keep`.
    pub fn retain(&mut self, keep: &[NodeAddr]) {
        self.clients.retain(|a, _| keep.contains(a));
    }
}

struct NodeView {
    node: ObservedNode,
    shard: Option<ShardId>,
}

async fn observe_one(pool_client: Result<NodeClient, ClientError>, addr: NodeAddr) -> NodeView {
    let mut node = ObservedNode {
        addr,
        id: None,
        epoch: 0,
        metrics: None,
        migrations: Vec::new(),
        replication: None,
        error: None,
    };
    let mut c = match pool_client {
        Ok(c) => c,
        Err(e) => {
            node.error = Some(e.to_string());
            return NodeView { node, shard: None };
        }
    };
    let r: Result<Option<ShardId>, ClientError> = async {
        node.id = Some(c.my_id().await?);
        node.epoch = c.epoch().await?;
        let (metrics, repl) = c.metrics_and_replication().await?;
        node.metrics = Some(metrics);
        node.replication = Some(repl);
        // A node without slot migration support (or without jobs) reports none.
        node.migrations = match c.slot_migrations().await {
            Ok(j) => j,
            Err(e) if e.server_message().is_some() => Vec::new(),
            Err(e) => return Err(e),
        };
        c.my_shard_id().await
    }
    .await;
    match r {
        Ok(shard) => NodeView { node, shard },
        Err(e) => {
            node.id = None;
            node.error = Some(e.to_string());
            NodeView { node, shard: None }
        }
    }
}

/// Observes `addrs` (in that order in the result).
pub async fn observe(pool: &mut ClientPool, addrs: &[NodeAddr]) -> ObservedState {
    let mut set = JoinSet::new();
    for (i, addr) in addrs.iter().enumerate() {
        let client = pool.get(addr).await;
        let addr = addr.clone();
        set.spawn(async move { (i, observe_one(client, addr).await) });
    }
    let mut views: Vec<Option<NodeView>> = (0..addrs.len()).map(|_| None).collect();
    while let Some(joined) = set.join_next().await {
        if let Ok((i, v)) = joined {
            views[i] = Some(v);
        }
    }
    let views: Vec<NodeView> = views
        .into_iter()
        .zip(addrs)
        .map(|(v, a)| {
            v.unwrap_or_else(|| NodeView {
                node: ObservedNode {
                    addr: a.clone(),
                    id: None,
                    epoch: 0,
                    metrics: None,
                    migrations: Vec::new(),
                    replication: None,
                    error: Some("observation task failed".into()),
                },
                shard: None,
            })
        })
        .collect();
    for v in &views {
        if v.node.error.is_some() {
            pool.drop_client(&v.node.addr);
        }
    }
    let shard_ids: HashMap<NodeId, ShardId> =
        views.iter().filter_map(|v| Some((v.node.id.clone()?, v.shard.clone()?))).collect();
    // The topology comes from the node holding the newest epoch.
    let newest = views.iter().filter(|v| v.node.reachable() && v.node.epoch > 0).max_by_key(|v| v.node.epoch);
    let mut topology = None;
    if let Some(v) = newest {
        let addr = v.node.addr.clone();
        if let Ok(mut c) = pool.get(&addr).await {
            match c.topology(v.node.epoch, &shard_ids).await {
                Ok(t) => topology = Some(t),
                Err(e) => {
                    tracing::warn!(node = %addr, error = %e, "reading the topology failed");
                    pool.drop_client(&addr);
                }
            }
        }
    }
    ObservedState { topology, nodes: views.into_iter().map(|v| v.node).collect() }
}
