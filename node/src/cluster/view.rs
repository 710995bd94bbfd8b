//! What clients read about the cluster: CLUSTER SLOTS, SHARDS, NODES and INFO, in Valkey 8's
//! exact formats (see `research/cluster-protocol-and-clients.md`). Everything is derived from
//! the effective slot map, so every node that holds the same topology answers byte-for-byte
//! the same SLOTS and SHARDS (GLIDE requires that), and NODES differs only in `myself`.

use super::topology::{NodeInfo, Role};
use super::{endpoint, self_info, ClusterState};
use crate::config::Config;
use crate::protocol::Reply;

/// The port clients are told for `n`: its TLS port with `tls-cluster yes`, as Valkey's
/// `clusterNodeClientPort` (see `net::dial::cluster_port`).
pub fn client_port(n: &NodeInfo) -> u16 {
    crate::net::dial::cluster_port(n.port, n.tls_port)
}

fn node_entry(out: &mut Reply, config: &Config, n: &NodeInfo) {
    let pref = config.get("cluster-preferred-endpoint-type").unwrap_or("ip");
    let mut extra: Vec<(&str, &str)> = Vec::new();
    if pref != "ip" && !n.ip.is_empty() {
        extra.push(("ip", &n.ip));
    }
    if let Some(h) = n.hostname.as_deref().filter(|h| !h.is_empty()) {
        if pref != "hostname" {
            extra.push(("hostname", h));
        }
    }
    out.array(4);
    out.bulk(endpoint(config, n).as_bytes());
    out.int(client_port(n) as i64);
    out.bulk(n.id.as_bytes());
    out.map(extra.len());
    for (k, v) in extra {
        out.bulk(k.as_bytes());
        out.bulk(v.as_bytes());
    }
}

/// CLUSTER SLOTS: one entry per contiguous range served by one shard.
pub fn slots(cl: &ClusterState, config: &Config, out: &mut Reply) {
    let Some(t) = &cl.topology else {
        out.array(0);
        return;
    };
    let mut entries: Vec<(u16, u16, usize)> = Vec::new();
    for slot in 0..crate::keyspace::slot::SLOTS as u16 {
        let Some(shard) = cl.shard_of(slot) else { continue };
        match entries.last_mut() {
            Some((_, end, s)) if *s == shard && *end + 1 == slot => *end = slot,
            _ => entries.push((slot, slot, shard)),
        }
    }
    out.array(entries.len());
    for (start, end, shard) in entries {
        let sh = &t.shards[shard];
        let mut replicas: Vec<&NodeInfo> = sh.nodes.iter().filter(|n| n.role == Role::Replica).collect();
        replicas.sort_by(|a, b| a.id.cmp(&b.id));
        out.array(3 + replicas.len());
        out.int(start as i64);
        out.int(end as i64);
        if let Some(p) = t.primary(shard) {
            node_entry(out, config, p);
        }
        for r in replicas {
            node_entry(out, config, r);
        }
    }
}

/// What this node knows of another node's replication: its offset and whether it is still
/// loading (nodes do not gossip: a node knows its own offset, a primary its replicas' ACKs).
pub type ReplView<'a> = &'a dyn Fn(&NodeInfo) -> (i64, bool);

/// CLUSTER SHARDS: per shard its slot ranges (flat) and nodes.
pub fn shards(cl: &ClusterState, config: &Config, out: &mut Reply, repl: ReplView<'_>) {
    let Some(t) = &cl.topology else {
        out.array(0);
        return;
    };
    out.array(t.shards.len());
    for (i, sh) in t.shards.iter().enumerate() {
        out.map(2);
        out.bulk(b"slots");
        let ranges = cl.shard_ranges(i);
        out.array(ranges.len() * 2);
        for (a, b) in ranges {
            out.int(a as i64);
            out.int(b as i64);
        }
        out.bulk(b"nodes");
        out.array(sh.nodes.len());
        for n in &sh.nodes {
            let hostname = n.hostname.as_deref().filter(|h| !h.is_empty());
            let tls_port = n.tls_port.filter(|&p| p != 0);
            out.map(7 + hostname.is_some() as usize + tls_port.is_some() as usize);
            out.bulk(b"id");
            out.bulk(n.id.as_bytes());
            out.bulk(b"port");
            out.int(n.port as i64);
            if let Some(p) = tls_port {
                out.bulk(b"tls-port");
                out.int(p as i64);
            }
            out.bulk(b"ip");
            out.bulk(n.ip.as_bytes());
            out.bulk(b"endpoint");
            out.bulk(endpoint(config, n).as_bytes());
            if let Some(h) = hostname {
                out.bulk(b"hostname");
                out.bulk(h.as_bytes());
            }
            out.bulk(b"role");
            out.bulk(if n.role == Role::Primary { b"master".as_slice() } else { b"replica" });
            let (offset, loading) = repl(n);
            out.bulk(b"replication-offset");
            out.int(offset);
            out.bulk(b"health");
            out.bulk(match (n.fail, loading) {
                (true, _) => b"fail".as_slice(),
                (false, true) => b"loading",
                (false, false) => b"online",
            });
        }
    }
}

/// The cluster-bus port shown after `@` (Valkey's default: port + 10000), 0 if out of range.
fn cport(port: u16) -> u32 {
    let p = port as u32 + 10000;
    if p > 65535 {
        0
    } else {
        p
    }
}

fn ranges_text(ranges: &[(u16, u16)], line: &mut String) {
    for &(a, b) in ranges {
        line.push(' ');
        if a == b {
            line.push_str(&a.to_string());
        } else {
            line.push_str(&format!("{a}-{b}"));
        }
    }
}

/// CLUSTER NODES text: one `\n`-terminated line per node, `myself` on this node's line.
pub fn nodes(cl: &ClusterState, config: &Config, port: u16) -> String {
    let mut out = String::new();
    let epoch = cl.epoch();
    let mut line = |n: &NodeInfo, myself: bool, primary: Option<&str>, ranges: &[(u16, u16)]| {
        let port = client_port(n);
        let mut s = format!("{} {}:{}@{}", n.id, n.ip, port, cport(port));
        if let Some(h) = n.hostname.as_deref().filter(|h| !h.is_empty()) {
            s.push(',');
            s.push_str(h);
        }
        let role = if primary.is_some() { "slave" } else { "master" };
        s.push_str(&format!(
            " {}{}{} {} 0 0 {} {}",
            if myself { "myself," } else { "" },
            role,
            if n.fail { ",fail" } else { "" },
            primary.unwrap_or("-"),
            epoch,
            if n.fail && !myself { "disconnected" } else { "connected" },
        ));
        ranges_text(ranges, &mut s);
        if myself {
            for (slot, dst) in &cl.migrating {
                s.push_str(&format!(" [{slot}->-{dst}]"));
            }
            for (slot, src) in &cl.importing {
                s.push_str(&format!(" [{slot}-<-{src}]"));
            }
        }
        s.push('\n');
        out.push_str(&s);
    };
    let mut found_me = false;
    if let Some(t) = &cl.topology {
        for (i, sh) in t.shards.iter().enumerate() {
            let ranges = cl.shard_ranges(i);
            let primary = t.primary(i).map(|p| p.id.as_str());
            for n in &sh.nodes {
                let me = n.id == cl.myid;
                found_me |= me;
                match n.role {
                    Role::Primary => line(n, me, None, &ranges),
                    Role::Replica => line(n, me, primary.or(Some("-")), &[]),
                }
            }
        }
    }
    if !found_me {
        line(&self_info(config, &cl.myid, port), true, None, &[]);
    }
    out
}

/// CLUSTER INFO text (`\r\n` lines).
pub fn info(cl: &ClusterState, config: &Config) -> String {
    let known = cl.topology.as_ref().map_or(0, |t| t.shards.iter().map(|s| s.nodes.len()).sum::<usize>())
        + usize::from(cl.me().is_none());
    let size = cl
        .topology
        .as_ref()
        .map_or(0, |t| (0..t.shards.len()).filter(|&i| !cl.shard_ranges(i).is_empty()).count());
    let epoch = cl.epoch();
    format!(
        "cluster_state:{}\r\ncluster_slots_assigned:{}\r\ncluster_slots_ok:{}\r\ncluster_slots_pfail:0\r\n\
         cluster_slots_fail:{}\r\ncluster_known_nodes:{known}\r\ncluster_size:{size}\r\n\
         cluster_current_epoch:{epoch}\r\ncluster_my_epoch:{epoch}\r\ncluster_stats_messages_sent:0\r\n\
         cluster_stats_messages_received:0\r\ntotal_cluster_links_buffer_limit_exceeded:0\r\n",
        if cl.healthy(config) { "ok" } else { "fail" },
        cl.assigned(),
        cl.assigned() - cl.failed(),
        cl.failed(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::tests::two_shards;

    #[test]
    fn slots_and_nodes_formats() {
        let mut cl = ClusterState::ephemeral("1".repeat(40));
        cl.apply(two_shards(5, 12182)).expect("apply");
        let config = Config::default();
        let mut r = Reply::new(false);
        slots(&cl, &config, &mut r);
        let text = String::from_utf8_lossy(&r.buf).into_owned();
        let id1 = "1".repeat(40);
        assert!(
            text.starts_with(&format!(
                "*2\r\n*3\r\n:0\r\n:12181\r\n*4\r\n$9\r\n127.0.0.1\r\n:7001\r\n$40\r\n{id1}\r\n*0\r\n"
            )),
            "{text}"
        );
        let n = nodes(&cl, &config, 7001);
        assert_eq!(
            n,
            format!(
                "{id1} 127.0.0.1:7001@17001 myself,master - 0 0 5 connected 0-12181\n{} 127.0.0.1:7002@17002 master - 0 0 5 connected 12182-16383\n",
                "2".repeat(40)
            )
        );
        let i = info(&cl, &config);
        assert!(i.starts_with("cluster_state:ok\r\ncluster_slots_assigned:16384\r\n"), "{i}");
        assert!(i.contains("cluster_known_nodes:2\r\ncluster_size:2\r\n"), "{i}");
    }

    #[test]
    fn a_node_outside_the_topology_still_has_a_myself_line() {
        let cl = ClusterState::ephemeral("9".repeat(40));
        let n = nodes(&cl, &Config::default(), 6379);
        assert_eq!(n, format!("{} :6379@16379 myself,master - 0 0 0 connected\n", "9".repeat(40)));
        assert!(
            info(&cl, &Config::default()).starts_with("cluster_state:fail\r\ncluster_slots_assigned:0\r\n")
        );
    }
}
