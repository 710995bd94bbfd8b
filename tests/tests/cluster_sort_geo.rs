//! SORT and GEO in cluster mode, on a 2-shard cluster of real nodes: SORT's BY and GET
//! patterns are refused unless every key they can form hashes to the sorted key's slot (a
//! `{tag}` before any wildcard), as Valkey 8 does; STORE destinations and GEO store keys take
//! part in routing and CROSSSLOT checks like any key.

use shoal_e2e::cluster::{key_slot, Cluster};

const BY_DENIED: &str = "-ERR BY option of SORT denied in Cluster mode when keys formed by the pattern may be in different slots.\r\n";
const GET_DENIED: &str = "-ERR GET option of SORT denied in Cluster mode when keys formed by the pattern may be in different slots.\r\n";
const CROSSSLOT: &str = "-CROSSSLOT Keys in request don't hash to the same slot\r\n";

#[test]
fn sort_patterns_and_store_keys_follow_slots() {
    let c = Cluster::start(2);
    let slot = key_slot(b"u");
    let owner = c.owner(slot);
    let mut n = c.node(owner).node.connect();
    assert_eq!(n.run("RPUSH {u}list 2 1 3"), ":3\r\n");
    assert_eq!(n.run("MSET {u}w_1 30 {u}w_2 20 {u}w_3 10 {u}n_1 one {u}n_2 two {u}n_3 three"), "+OK\r\n");
    // A pattern whose keys can be in any slot is refused, in argument order.
    assert_eq!(n.run("SORT {u}list BY w_*"), BY_DENIED);
    assert_eq!(n.run("SORT {u}list BY *{u}"), BY_DENIED);
    assert_eq!(n.run("SORT {u}list GET n_*"), GET_DENIED);
    assert_eq!(n.run("SORT {u}list GET n_* BY w_*"), GET_DENIED);
    assert_eq!(n.run("SORT {u}list BY w_* BADARG"), BY_DENIED);
    assert_eq!(n.run("SORT {u}list BADARG BY w_*"), "-ERR syntax error\r\n");
    assert_eq!(n.run("SORT_RO {u}list BY {other}w_*"), BY_DENIED);
    // A hash tag of the sorted key's slot makes the pattern safe.
    assert_eq!(n.run("SORT {u}list BY {u}w_*"), "*3\r\n$1\r\n3\r\n$1\r\n2\r\n$1\r\n1\r\n");
    assert_eq!(
        n.run("SORT_RO {u}list BY {u}w_* GET {u}n_* GET # LIMIT 0 1"),
        "*2\r\n$5\r\nthree\r\n$1\r\n3\r\n"
    );
    // Constant BY patterns and GET # name no key.
    assert_eq!(n.run("SORT {u}list BY nosort GET #"), "*3\r\n$1\r\n2\r\n$1\r\n1\r\n$1\r\n3\r\n");
    // STORE: the destination is a key of the command (routing, CROSSSLOT, COMMAND GETKEYS).
    assert_eq!(n.run("SORT {u}list STORE {u}dst"), ":3\r\n");
    assert_eq!(n.run("LRANGE {u}dst 0 -1"), "*3\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n");
    assert_eq!(n.run("SORT {u}list STORE dst"), CROSSSLOT);
    // Only the last STORE counts, for routing as for the command.
    assert_eq!(n.run("SORT {u}list LIMIT 0 1 GET # STORE {x}a STORE {u}b"), ":1\r\n");
    assert_eq!(n.run("SORT {u}list LIMIT 0 1 GET # STORE {u}b STORE {x}a"), CROSSSLOT);
    assert_eq!(
        n.run("COMMAND GETKEYS SORT {u}list LIMIT 0 1 STORE a STORE b"),
        "*2\r\n$7\r\n{u}list\r\n$1\r\nb\r\n"
    );
    let other = c.node(1 - owner).node.connect().run("SORT {u}list");
    assert!(other.starts_with(&format!("-MOVED {slot} ")), "{other}");
}

#[test]
fn geo_store_keys_follow_slots() {
    let c = Cluster::start(2);
    let owner = c.owner(key_slot(b"g"));
    let mut n = c.node(owner).node.connect();
    assert_eq!(n.run("GEOADD {g}pts 13.361389 38.115556 Palermo 15.087269 37.502669 Catania"), ":2\r\n");
    assert_eq!(n.run("GEOSEARCHSTORE {g}dst {g}pts FROMLONLAT 15 37 BYRADIUS 200 km"), ":2\r\n");
    assert_eq!(n.run("GEOSEARCHSTORE dst {g}pts FROMLONLAT 15 37 BYRADIUS 200 km"), CROSSSLOT);
    assert_eq!(n.run("GEORADIUS {g}pts 15 37 200 km STORE dst"), CROSSSLOT);
    assert_eq!(n.run("GEORADIUSBYMEMBER {g}pts Palermo 200 km STOREDIST dst"), CROSSSLOT);
    assert_eq!(n.run("GEORADIUS {g}pts 15 37 200 km STOREDIST {g}d"), ":2\r\n");
    assert_eq!(n.run("ZRANGE {g}d 0 -1"), "*2\r\n$7\r\nCatania\r\n$7\r\nPalermo\r\n");
    assert_eq!(n.run("GEORADIUS_RO {g}pts 15 37 100 km"), "*1\r\n$7\r\nCatania\r\n");
}
