//! Primary/replica replication, wire-compatible with Valkey's: the backlog, the primary's
//! side of PSYNC (a fork-less snapshot plus the command stream, [`primary`]), the commands
//! (REPLCONF, PSYNC, SYNC, ROLE, WAIT), and the RDB codec a full sync speaks ([`rdb`]).

pub mod backlog;
pub mod commands;
pub mod primary;
pub mod rdb;
pub mod reply;
