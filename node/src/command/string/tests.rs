//! Handler tests through the in-process harness (raw RESP2 replies).

use crate::exec::testing::Harness;

fn h() -> Harness {
    Harness::default()
}

#[test]
fn get_set_basics() {
    let mut h = h();
    assert_eq!(h.run("GET k"), "$-1\r\n");
    assert_eq!(h.run("SET k v"), "+OK\r\n");
    assert_eq!(h.run("GET k"), "$1\r\nv\r\n");
    assert_eq!(h.run("SET k 123"), "+OK\r\n");
    assert_eq!(h.run("GET k"), "$3\r\n123\r\n");
}
