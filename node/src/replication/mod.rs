//! Primary/replica replication. Only the RDB codec exists so far: a full sync ships the
//! primary's keyspace as an RDB stream, so the codec lives in [`rdb`], apart from the protocol
//! (PSYNC, the replication backlog) that will drive it.

pub mod rdb;
