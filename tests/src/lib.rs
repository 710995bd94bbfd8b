//! Helpers shared by the end-to-end tests: start real `shoal-node` (and `redis-server`)
//! processes on port 0 and talk to them.
//!
//! Unit tests of a command family run in-process (`shoal_node::exec::testing::Harness`); this
//! crate covers what only a real process shows: sockets, the I/O threads, the wire protocol,
//! real client programs, signals, and byte-for-byte agreement with the reference server.

pub mod client;
pub mod cluster;
pub mod diff;
pub mod process;
pub mod resp;
pub mod tls;

pub use client::{Addr, RawClient};
pub use process::{run_with_timeout, Output, RedisRef, Server, ShoalNode};

/// Declares a test that runs once per I/O thread setting (`io-threads 1`: the executor does
/// its own I/O; `io-threads 2`: one I/O thread). The body gets the thread count. With a leading
/// `reference`, it also runs with 0, which [`process::Server::start`] maps to the reference
/// redis-server: this checks that the test's expectations are Redis's own.
///
/// ```ignore
/// io_threads_test!(reference fn pings(n) { let srv = Server::start(n, &[]); /* ... */ });
/// ```
#[macro_export]
macro_rules! io_threads_test {
    (reference fn $name:ident($n:ident) $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            fn body($n: usize) $body
            #[test]
            fn io_threads_1() {
                body(1)
            }
            #[test]
            fn io_threads_2() {
                body(2)
            }
            #[test]
            fn reference() {
                body(0)
            }
        }
    };
    (fn $name:ident($n:ident) $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            fn body($n: usize) $body
            #[test]
            fn io_threads_1() {
                body(1)
            }
            #[test]
            fn io_threads_2() {
                body(2)
            }
        }
    };
}
