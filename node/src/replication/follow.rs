//! Cluster mode: the pushed topology decides each node's replication role. A node listed as a
//! shard's replica replicates from that shard's primary; a node listed as a primary (or not
//! listed) replicates from nobody. So a failover is one push: the promoted replica stops
//! following (keeping the history as its `replid2`) and the old primary, now listed as a
//! replica, follows it and continues with a partial resync. `REPLICAOF` itself stays refused
//! in cluster mode, as in Valkey: the control plane owns the roles.

use slab::Slab;

use super::replica;
use crate::cluster::topology::Role;
use crate::exec::{Client, Server};

/// Makes the replication role match the installed topology.
pub fn follow_topology(srv: &mut Server, clients: &mut Slab<Client>) {
    let Some(cl) = srv.cluster.as_ref() else { return };
    let target = match (cl.me(), cl.topology.as_ref()) {
        (Some((shard, Role::Replica)), Some(t)) => {
            t.shards[shard].nodes.iter().find(|n| n.role == Role::Primary).map(|p| {
                (
                    if p.ip.is_empty() { p.hostname.clone().unwrap_or_default() } else { p.ip.clone() },
                    repl_port(p),
                )
            })
        }
        _ => None,
    };
    match target {
        Some((host, port)) => {
            if srv.master.as_ref().is_some_and(|m| m.host == host && m.port == port) {
                return;
            }
            log::info!("The topology makes this node a replica of {host}:{port}");
            replica::set_primary(srv, clients, &host, port);
            // Writes held by a planned failover's CLIENT PAUSE now get MOVED to the new primary.
            crate::exec::pause::end(srv);
        }
        None => {
            if srv.master.is_some() {
                log::info!("The topology makes this node a primary");
                replica::unset_primary(srv, clients);
            }
        }
    }
}

/// The port a replica dials for its primary: the TLS one with `tls-replication yes` (when the
/// topology names one), as Valkey replicas use the primary's TLS port then.
fn repl_port(n: &crate::cluster::topology::NodeInfo) -> u16 {
    match n.tls_port {
        Some(t) if t != 0 && crate::net::dial::tls_for(crate::net::dial::Link::Replication) => t,
        _ => n.port,
    }
}
