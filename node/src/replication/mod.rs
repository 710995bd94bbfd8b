//! Primary/replica replication, wire-compatible with Valkey's: the backlog, the primary's
//! side of PSYNC (a fork-less snapshot plus the command stream, [`primary`]), the replica's
//! side (the link thread [`link`] and the executor half [`replica`]), the commands (REPLICAOF,
//! REPLCONF, PSYNC, SYNC, ROLE, WAIT), the checks they add to every command ([`gate`]), and
//! the RDB codec a full sync speaks ([`rdb`]).

pub mod backlog;
pub mod commands;
pub mod follow;
pub mod gate;
pub mod limits;
pub mod link;
pub mod primary;
pub mod propagate;
pub mod rdb;
pub mod replica;
pub mod reply;
