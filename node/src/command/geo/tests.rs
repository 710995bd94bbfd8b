//! Known values from the Redis documentation (Palermo and Catania) through the in-process
//! harness, and the geohash primitives; tests/diff/geo.txt compares the rest with redis-server.

use super::hash;
use crate::exec::testing::Harness;

#[test]
fn scores_and_positions_match_the_documented_values() {
    assert_eq!(hash::score_of(13.361389, 38.115556), Some(3479099956230698));
    assert_eq!(hash::score_of(15.087269, 37.502669), Some(3479447370796909));
    assert_eq!(hash::score_of(200.0, 0.0), None);
    let mut h = Harness::default();
    assert_eq!(h.run("GEOADD Sicily 13.361389 38.115556 Palermo 15.087269 37.502669 Catania"), ":2\r\n");
    assert_eq!(h.run("GEODIST Sicily Palermo Catania"), "$11\r\n166274.1516\r\n");
    assert_eq!(h.run("GEODIST Sicily Palermo Catania km"), "$8\r\n166.2742\r\n");
    assert_eq!(h.run("GEOHASH Sicily Palermo Catania"), "*2\r\n$11\r\nsqc8b49rny0\r\n$11\r\nsqdtr74hyu0\r\n");
    assert_eq!(
        h.run("GEOPOS Sicily Palermo nope"),
        "*2\r\n*2\r\n$20\r\n13.36138933897018433\r\n$20\r\n38.11555639549629859\r\n*-1\r\n"
    );
    assert_eq!(
        h.run("GEORADIUS Sicily 15 37 200 km WITHDIST ASC"),
        "*2\r\n*2\r\n$7\r\nCatania\r\n$7\r\n56.4413\r\n*2\r\n$7\r\nPalermo\r\n$8\r\n190.4424\r\n"
    );
    assert_eq!(
        h.run("GEOADD Sicily 200 100 x"),
        "-ERR invalid longitude,latitude pair 200.000000,100.000000\r\n"
    );
    h.clients[0].st.resp3 = true;
    assert_eq!(
        h.run("GEOPOS Sicily Catania"),
        "*1\r\n*2\r\n,15.08726745843887329\r\n,37.50266842333162032\r\n"
    );
}

#[test]
fn huge_and_degenerate_searches_do_not_panic() {
    let mut h = Harness::default();
    h.run("GEOADD g 0 0 a 179.9 85 b -180 -85.05112878 c 180 85.05112878 d");
    for cmd in [
        "GEOSEARCH g FROMLONLAT 0 0 BYRADIUS inf km",
        "GEOSEARCH g FROMLONLAT 0 0 BYBOX inf inf m ASC",
        "GEOSEARCH g FROMLONLAT 180 85.05112878 BYRADIUS 0 m",
        "GEOSEARCH g FROMLONLAT 0 0 BYRADIUS 1e308 mi COUNT 9223372036854775807 ANY",
        "GEORADIUS g -180 -85.05112878 20000 km WITHHASH WITHCOORD DESC COUNT 2",
    ] {
        assert!(h.run(cmd).starts_with('*'), "{cmd}");
    }
    h.run("ZADD odd -1 m 1e300 n inf o");
    assert!(h.run("GEOPOS odd m n o").starts_with("*3\r\n*2"));
    assert!(h.run("GEOHASH odd m n o").starts_with("*3\r\n$11"));
    assert!(h.run("GEOSEARCH odd FROMMEMBER m BYRADIUS 100 km").starts_with('*'));
}

#[test]
fn stores_publish_their_events() {
    let mut h = Harness::default();
    let s = h.add_client();
    h.run("CONFIG SET notify-keyspace-events KEA");
    h.run_as(s, &[b"PSUBSCRIBE", b"__keyevent@0__:*"]);
    h.take_pending(s);
    h.run("GEOADD g 13.361389 38.115556 Palermo");
    assert!(h.take_pending(s).contains("__keyevent@0__:zadd\r\n$1\r\ng\r\n"));
    h.run("GEOSEARCHSTORE d g FROMMEMBER Palermo BYRADIUS 1 km");
    assert!(h.take_pending(s).contains("__keyevent@0__:geosearchstore\r\n$1\r\nd\r\n"));
    h.run("GEORADIUS g 13 38 100 km STORE d");
    assert!(h.take_pending(s).contains("__keyevent@0__:georadiusstore\r\n$1\r\nd\r\n"));
    h.run("GEORADIUS g 0 0 1 km STORE d");
    assert!(h.take_pending(s).contains("__keyevent@0__:del\r\n$1\r\nd\r\n"));
}

#[test]
fn stores_serve_clients_blocked_on_the_destination() {
    let mut h = Harness::default();
    let b = h.add_client();
    h.run("GEOADD g 13.361389 38.115556 Palermo");
    assert_eq!(h.run_as(b, &[b"BZPOPMIN", b"d1", b"0"]), b"");
    h.run("GEOSEARCHSTORE d1 g FROMMEMBER Palermo BYRADIUS 1 km");
    assert!(h.take_pending(b).contains("Palermo"));
    assert_eq!(h.run_as(b, &[b"BZPOPMIN", b"d2", b"0"]), b"");
    h.run("GEORADIUS g 13 38 100 km STOREDIST d2");
    assert!(h.take_pending(b).contains("Palermo"));
}
