//! The executor: the single thread that owns the keyspace, runs every command and drives the
//! I/O threads. See `lib.rs` for the thread model.

pub mod blocking;
pub mod client;
pub mod ctx;
pub mod dispatch;
pub mod evict;
pub mod executor;
mod listen;
pub mod monitor;
pub mod notify;
pub mod observe;
pub mod pause;
pub mod pubsub;
pub mod scaler;
pub mod server;
pub mod testing;
pub mod tls_config;
pub mod tracking;

pub use client::{Client, ClientState, ReplyMode};
pub use ctx::{Ctx, WRONGTYPE};
pub use executor::{Executor, StartError};
pub use server::{CmdStat, Server, Shutdown, Stats};
