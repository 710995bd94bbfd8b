//! Shoal shard node: a Valkey-compatible cache built on the Valkey 8 thread model.
//!
//! ```text
//!               accept / poll                    ┌──────────── executor thread ─────────────┐
//!  sockets ───▶ (executor)                   ───▶│ owns the keyspace, client exec state,     │
//!                                                │ config, expiry; runs every command        │
//!        ┌── jobs (bounded ring per I/O thread) ─│                                           │
//!        ▼                                       │ loop: poll → collect finished I/O →       │
//!  ┌───────────────┐  completions (one bounded   │ execute parsed requests → queue replies → │
//!  │ I/O thread k  │── queue, back to executor) ▶│ send each client out for write + read     │
//!  │ write, read,  │                             └───────────────────────────────────────────┘
//!  │ parse, free   │
//!  └───────────────┘  I/O threads never touch the keyspace.
//! ```
//!
//! Ownership rules:
//! - A connection's I/O half (`net::ConnIo`: socket, buffers, parser, pending replies) is
//!   *moved* into a job and moved back in the completion. While it is away the executor cannot
//!   touch it: the type system enforces what Valkey does with `io_read_state` flags.
//! - One job per client at a time, always on the same worker while the thread count is
//!   unchanged (`client id % workers`): a client's reads and writes never run concurrently.
//! - Hand-offs are batched and waits spin before parking; a side is woken only when parked.
//! - `io-threads 1` means no worker: the executor does its own I/O.
//!
//! Dependency rules: `protocol` depends on nothing internal; `keyspace` does no I/O; `net`
//! knows frames, not commands; only `exec` (and the command handlers it calls) touch the
//! keyspace.

pub mod acl;
pub mod cluster;
pub mod command;
pub mod config;
pub mod exec;
pub mod keyspace;
pub mod logging;
pub mod memory;
pub mod metrics;
pub mod net;
pub mod protocol;
pub mod replication;
pub mod scripting;
pub mod util;

/// Shoal's own version, reported as `shoal_version` in INFO.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The Redis version reported to clients, for compatibility checks in client libraries.
pub const REDIS_VERSION: &str = "7.2.4";
/// The Valkey version whose behaviour Shoal follows.
pub const VALKEY_VERSION: &str = "8.0.1";
