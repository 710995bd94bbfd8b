//! Networking: connections' I/O halves and the I/O threads that move bytes for the executor.
//! This layer knows RESP frames, never commands or keys.

pub mod conn;
pub mod dial;
pub mod io_thread;
pub mod tls;
pub mod tls_io;

pub use conn::{ConnIo, ReadGate, Request};
pub use io_thread::{Done, ExecWake, IoPool, Job, PollJob};
