//! The key hash. One seed per process, chosen at random on first use, so that the I/O threads
//! can hash keys while parsing and the executor's tables agree with them; a random seed keeps
//! an attacker from choosing keys that collide.

use std::hash::BuildHasher;
use std::sync::OnceLock;

static STATE: OnceLock<foldhash::fast::FixedState> = OnceLock::new();

fn state() -> &'static foldhash::fast::FixedState {
    STATE.get_or_init(|| foldhash::fast::FixedState::with_seed(fastrand::u64(..)))
}

/// The table hash of a key.
#[inline]
pub fn hash_key(key: &[u8]) -> u64 {
    state().hash_one(key)
}

#[cfg(test)]
mod tests {
    #[test]
    fn stable_within_the_process_and_spread() {
        assert_eq!(super::hash_key(b"a"), super::hash_key(b"a"));
        let tops: std::collections::HashSet<u64> =
            (0..1000).map(|i| super::hash_key(format!("k{i}").as_bytes()) >> 54).collect();
        assert!(tops.len() > 600, "top bits poorly spread: {}", tops.len());
    }
}
