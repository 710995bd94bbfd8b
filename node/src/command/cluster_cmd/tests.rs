use crate::cluster::ClusterState;
use crate::config::Config;
use crate::exec::testing::Harness;

fn id(c: char) -> String {
    std::iter::repeat_n(c, 40).collect()
}

/// A cluster-mode harness whose node id is `1111...`, not persisted.
fn cluster() -> Harness {
    let mut config = Config::default();
    config.load_str("cluster-enabled yes").expect("config");
    let mut h = Harness::new(config);
    h.srv.port = 7001;
    h.srv.cluster = Some(ClusterState::ephemeral(id('1')));
    h
}

fn topology(epoch: u64) -> String {
    format!(
        r#"{{"epoch":{epoch},"shards":[{{"id":"{}","slots":[[0,12181]],"nodes":[{{"id":"{}","ip":"127.0.0.1","port":7001,"role":"primary"}}]}},{{"id":"{}","slots":[[12182,16383]],"nodes":[{{"id":"{}","ip":"127.0.0.1","hostname":"n2.example","port":7002,"role":"primary"}},{{"id":"{}","ip":"127.0.0.1","port":7003,"role":"replica"}}]}}]}}"#,
        id('a'),
        id('1'),
        id('b'),
        id('2'),
        id('3')
    )
}

fn push(h: &mut Harness, json: &str) -> String {
    String::from_utf8_lossy(&h.run_as(0, &[b"CLUSTER", b"SETTOPOLOGY", json.as_bytes()])).into_owned()
}

#[test]
fn disabled_without_cluster_mode() {
    let mut h = Harness::default();
    for cmd in ["CLUSTER INFO", "CLUSTER MYID", "ASKING", "CLUSTER KEYSLOT a"] {
        assert_eq!(h.run(cmd), "-ERR This instance has cluster support disabled\r\n", "{cmd}");
    }
    // Valkey 8: READONLY/READWRITE also matter to a standalone replica (CLIENT CAPA redirect).
    assert_eq!(h.run("READONLY"), "+OK\r\n");
    assert_eq!(h.run("READWRITE"), "+OK\r\n");
    assert!(h.run("INFO cluster").contains("cluster_enabled:0"));
}

#[test]
fn settopology_then_redirects() {
    let mut h = cluster();
    assert_eq!(h.run("GET foo"), "-CLUSTERDOWN Hash slot not served\r\n");
    assert_eq!(push(&mut h, &topology(2)), "+OK\r\n");
    assert_eq!(push(&mut h, &topology(2)), "+OK\r\n");
    assert_eq!(push(&mut h, &topology(1)), "-ERR Stale topology epoch 1: this node already has epoch 2\r\n");
    assert!(push(&mut h, "{\"epoch\": 3}").starts_with("-ERR Invalid topology JSON: missing field `shards`"));
    assert_eq!(h.run("SET bar 1"), "+OK\r\n");
    assert_eq!(h.run("GET foo"), "-MOVED 12182 127.0.0.1:7002\r\n");
    assert_eq!(h.run("MSET bar 1 foo 2"), "-CROSSSLOT Keys in request don't hash to the same slot\r\n");
    assert_eq!(h.run("MSET {bar}a 1 {bar}b 2"), "+OK\r\n");
    assert_eq!(h.run("SELECT 1"), "-ERR SELECT is not allowed in cluster mode\r\n");
    assert_eq!(h.run("CLUSTER KEYSLOT foo"), ":12182\r\n");
    assert_eq!(h.run("CLUSTER COUNTKEYSINSLOT 5061"), ":3\r\n");
    assert_eq!(h.run("CLUSTER COUNTKEYSINSLOT 16384"), "-ERR Invalid slot\r\n");
    assert_eq!(h.run("CLUSTER GETKEYSINSLOT 5061 -1"), "-ERR Invalid slot or number of keys\r\n");
    assert_eq!(h.run("CLUSTER GETKEYSINSLOT 5061 1").matches("\r\n").count(), 3);
    assert_eq!(h.run("CLUSTER MYID"), format!("$40\r\n{}\r\n", id('1')));
    assert_eq!(h.run("CLUSTER MYSHARDID"), format!("$40\r\n{}\r\n", id('a')));
    assert_eq!(h.run("CLUSTER LINKS"), "*0\r\n");
    assert_eq!(h.run("READONLY"), "+OK\r\n");
    assert_eq!(h.run("READWRITE"), "+OK\r\n");
    assert!(h.run("INFO cluster").contains("cluster_enabled:1"));
    let nodes = h.run("CLUSTER NODES");
    assert!(nodes
        .contains(&format!("{} 127.0.0.1:7001@17001 myself,master - 0 0 2 connected 0-12181\n", id('1'))));
    assert!(nodes.contains(&format!(
        "{} 127.0.0.1:7002@17002,n2.example master - 0 0 2 connected 12182-16383\n",
        id('2')
    )));
    assert!(nodes.contains(&format!("{} 127.0.0.1:7003@17003 slave {} 0 0 2 connected\n", id('3'), id('2'))));
    assert!(h.run("CLUSTER INFO").contains("cluster_state:ok\r\n"));
    let shards = h.run("CLUSTER SHARDS");
    assert!(
        shards.starts_with(
            "*2\r\n*4\r\n$5\r\nslots\r\n*2\r\n:0\r\n:12181\r\n$5\r\nnodes\r\n*1\r\n*14\r\n$2\r\nid\r\n"
        ),
        "{shards}"
    );
    assert!(shards.contains("$8\r\nhostname\r\n$10\r\nn2.example\r\n"));
    // The replica's extra networking map names its hostname when the endpoint is an ip.
    let slots = h.run("CLUSTER SLOTS");
    assert!(slots.contains("*2\r\n$8\r\nhostname\r\n$10\r\nn2.example\r\n"), "{slots}");
    // ADDSLOTS is for nodes nobody pushed to.
    assert!(h.run("CLUSTER ADDSLOTS 1").starts_with("-ERR The topology is managed by CLUSTER SETTOPOLOGY"));
}

#[test]
fn addslots_on_a_lone_node() {
    let mut h = cluster();
    assert_eq!(h.run("CLUSTER ADDSLOTSRANGE 0 8191"), "+OK\r\n");
    assert_eq!(h.run("CLUSTER ADDSLOTS 8191"), "-ERR Slot 8191 is already busy\r\n");
    assert_eq!(h.run("CLUSTER ADDSLOTS 9000 9000"), "-ERR Slot 9000 specified multiple times\r\n");
    assert_eq!(h.run("CLUSTER ADDSLOTS 16384"), "-ERR Invalid or out of range slot\r\n");
    assert_eq!(
        h.run("CLUSTER ADDSLOTSRANGE 5 4"),
        "-ERR start slot number 5 is greater than end slot number 4\r\n"
    );
    assert_eq!(h.run("CLUSTER INFO").lines().nth(1), Some("cluster_state:fail"));
    assert_eq!(h.run("GET bar"), "-CLUSTERDOWN The cluster is down\r\n");
    assert_eq!(h.run("CLUSTER ADDSLOTSRANGE 8192 16383"), "+OK\r\n");
    assert!(h.run("CLUSTER INFO").contains("cluster_state:ok\r\n"));
    assert_eq!(h.run("SET foo 1"), "+OK\r\n");
    assert_eq!(h.run("CLUSTER DELSLOTS 5"), "+OK\r\n");
    assert_eq!(h.run("CLUSTER DELSLOTS 5"), "-ERR Slot 5 is already unassigned\r\n");
    // The lone node knows no ip yet: an empty endpoint, as a fresh Valkey node shows.
    assert!(h.run("CLUSTER SLOTS").contains("*4\r\n$0\r\n\r\n:7001\r\n"));
    // A push replaces the self-assigned topology whatever its epoch.
    assert_eq!(push(&mut h, &topology(1)), "+OK\r\n");
    assert_eq!(h.run("GET foo"), "-MOVED 12182 127.0.0.1:7002\r\n");
}

#[test]
fn setslot_classic_states() {
    let mut h = cluster();
    push(&mut h, &topology(1));
    assert_eq!(h.run(&format!("CLUSTER SETSLOT 5061 MIGRATING {}", id('2'))), "+OK\r\n");
    assert_eq!(h.run("GET {bar}x"), "-ASK 5061 127.0.0.1:7002\r\n");
    assert!(h.run("CLUSTER NODES").contains(&format!("[5061->-{}]", id('2'))));
    assert_eq!(
        h.run(&format!("CLUSTER SETSLOT 12182 MIGRATING {}", id('2'))),
        "-ERR I'm not the owner of hash slot 12182\r\n"
    );
    assert_eq!(h.run(&format!("CLUSTER SETSLOT 12182 IMPORTING {}", id('2'))), "+OK\r\n");
    assert_eq!(h.run("ASKING"), "+OK\r\n");
    assert_eq!(h.run("GET foo"), "$-1\r\n");
    // ASKING covered one command only.
    assert_eq!(h.run("GET foo"), "-MOVED 12182 127.0.0.1:7002\r\n");
    assert_eq!(h.run(&format!("CLUSTER SETSLOT 12182 NODE {}", id('1'))), "+OK\r\n");
    assert_eq!(h.run("GET foo"), "$-1\r\n");
    assert_eq!(h.run("CLUSTER SETSLOT 5061 STABLE"), "+OK\r\n");
    assert_eq!(h.run("GET {bar}x"), "$-1\r\n");
}

#[test]
fn migrateslots_validation() {
    let mut h = cluster();
    push(&mut h, &topology(1));
    assert_eq!(
        h.run(&format!("CLUSTER MIGRATESLOTS SLOTSRANGE 12182 12182 NODE {}", id('2'))),
        "-ERR I'm not the owner of hash slot 12182\r\n"
    );
    assert_eq!(
        h.run(&format!("CLUSTER MIGRATESLOTS SLOTSRANGE 0 10 NODE {}", id('9'))),
        format!("-ERR Unknown node {}\r\n", id('9'))
    );
    assert_eq!(
        h.run(&format!("CLUSTER MIGRATESLOTS SLOTSRANGE 0 10 NODE {}", id('3'))),
        format!("-ERR Node {} is not a primary\r\n", id('3'))
    );
    assert_eq!(h.run("CLUSTER MIGRATESLOTS SLOTSRANGE 0 10 NODE"), "-ERR syntax error\r\n");
    assert_eq!(
        h.run("CLUSTER MIGRATESLOTS SLOTSRANGE 0"),
        "-ERR wrong number of arguments for 'cluster|migrateslots' command\r\n"
    );
    assert_eq!(h.run("CLUSTER GETSLOTMIGRATIONS"), "*0\r\n");
    assert_eq!(h.run("CLUSTER CANCELSLOTMIGRATIONS"), "+OK\r\n");
    // SYNCSLOTS data for an import that does not exist is refused.
    assert!(h.run("CLUSTER SYNCSLOTS DATA nope k -1 x").starts_with("-ERR Unknown slot migration nope"));
}

#[test]
fn gettopology_returns_the_pushed_document_with_served_slots() {
    let mut h = cluster();
    assert_eq!(h.run("CLUSTER GETTOPOLOGY"), "$-1\r\n");
    assert_eq!(
        h.run("CLUSTER GETTOPOLOGY x"),
        "-ERR wrong number of arguments for 'cluster|gettopology' command\r\n"
    );
    assert_eq!(push(&mut h, &topology(4)), "+OK\r\n");
    let reply = h.run("CLUSTER GETTOPOLOGY");
    let json = reply.split_once("\r\n").expect("bulk").1.trim_end();
    let back = crate::cluster::topology::Topology::parse(json.as_bytes()).expect("valid topology");
    let sent = crate::cluster::topology::Topology::parse(topology(4).as_bytes()).expect("valid");
    assert_eq!(back, sent);
    // A completed migration's override shows in the served slots.
    h.srv.cluster.as_mut().expect("cluster").overrides.insert(0, id('2'));
    h.srv.cluster.as_mut().expect("cluster").rebuild();
    let reply = h.run("CLUSTER GETTOPOLOGY");
    assert!(reply.contains(r#""slots":[[1,12181]]"#), "{reply}");
    assert!(reply.contains(r#""slots":[[0,0],[12182,16383]]"#), "{reply}");
}

/// A pushed `fail` mark on shard 2's primary: Valkey's slot counters, flags and health, the
/// cluster down while full coverage is required, and back to ok when the mark is cleared.
#[test]
fn fail_mark_shows_in_info_nodes_and_shards() {
    let mut h = cluster();
    let failed = topology(3).replacen(
        r#""port":7002,"role":"primary""#,
        r#""port":7002,"role":"primary","fail":true"#,
        1,
    );
    assert_eq!(push(&mut h, &failed), "+OK\r\n");
    let info = h.run("CLUSTER INFO");
    assert!(info.contains("\r\ncluster_state:fail\r\ncluster_slots_assigned:16384\r\n"), "{info}");
    assert!(
        info.contains("cluster_slots_ok:12182\r\ncluster_slots_pfail:0\r\ncluster_slots_fail:4202\r\n"),
        "{info}"
    );
    let nodes = h.run("CLUSTER NODES");
    assert!(nodes.contains(&format!(
        "{} 127.0.0.1:7002@17002,n2.example master,fail - 0 0 3 disconnected 12182-16383\n",
        id('2')
    )));
    assert!(h.run("CLUSTER SHARDS").contains("$6\r\nhealth\r\n$4\r\nfail\r\n"));
    assert_eq!(h.run("GET foo"), "-CLUSTERDOWN The cluster is down\r\n");
    // The round trip keeps the mark: a restarted control plane reads it back.
    assert!(h.run("CLUSTER GETTOPOLOGY").contains(r#""fail":true"#));
    assert_eq!(h.run("CONFIG SET cluster-require-full-coverage no"), "+OK\r\n");
    assert!(h.run("CLUSTER INFO").contains("\r\ncluster_state:ok\r\n"));
    assert_eq!(h.run("CONFIG SET cluster-require-full-coverage yes"), "+OK\r\n");
    assert_eq!(push(&mut h, &topology(4)), "+OK\r\n");
    let info = h.run("CLUSTER INFO");
    assert!(info.contains("cluster_state:ok\r\n") && info.contains("cluster_slots_fail:0\r\n"), "{info}");
    assert!(!h.run("CLUSTER GETTOPOLOGY").contains("fail"));
}
