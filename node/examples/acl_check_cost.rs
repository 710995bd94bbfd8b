//! What the ACL check costs per command, measured in a tight loop (CPU time, so much less
//! sensitive to a busy machine than redis-benchmark's throughput): the restricted user of
//! `bench/acl.py` (`~cache:* ~key:* resetchannels +@all -@dangerous`) checking GET and SET.
//!
//! ```text
//! cargo run --release -p shoal-node --example acl_check_cost
//! ```

use std::hint::black_box;
use std::time::Instant;

use bytes::Bytes;
use shoal_node::acl::{check, user};

fn main() {
    let registry = shoal_node::command::registry();
    let rules: Vec<&[u8]> =
        [&b"on"[..], b"~cache:*", b"~key:*", b"resetchannels", b"+@all", b"-@dangerous"].to_vec();
    let u = user::set_user(registry, None, b"bench", &rules, false).expect("rules");
    for cmd in [&["GET", "key:000000012345"][..], &["SET", "key:000000012345", "xxx"][..]] {
        let args: Vec<Bytes> = cmd.iter().map(|a| Bytes::copy_from_slice(a.as_bytes())).collect();
        let entry = registry.lookup(&args[0]).expect("command");
        assert!(check::check_command(&u, entry, &args).is_ok());
        let n = 5_000_000u32;
        let mut best = f64::MAX;
        for _ in 0..5 {
            let t = Instant::now();
            for _ in 0..n {
                black_box(check::check_command(black_box(&u), entry, black_box(&args))).ok();
            }
            best = best.min(t.elapsed().as_nanos() as f64 / f64::from(n));
        }
        println!("{:4} restricted user: {best:.1} ns per check (best of 5 x {n})", cmd[0]);
    }
}
