//! RESP2/RESP3 wire format: the request parser and the reply encoder. Pure code, no I/O, no
//! dependency on the rest of the node, so it can be fuzzed and reused by clients.

pub mod parse;
pub mod reply;

pub use parse::{Frame, Limits, Parser};
pub use reply::Reply;

/// A malformed request. The text is what Valkey replies before closing the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("Protocol error: invalid multibulk length")]
    InvalidMultibulkLength,
    #[error("Protocol error: invalid bulk length")]
    InvalidBulkLength,
    #[error("Protocol error: expected '$', got '{}'", char::from(*.0))]
    ExpectedDollar(u8),
    #[error("Protocol error: too big inline request")]
    BigInline,
    #[error("Protocol error: too big mbulk count string")]
    BigCount,
    #[error("Protocol error: too big bulk count string")]
    BigBulkCount,
    #[error("Protocol error: unbalanced quotes in request")]
    UnbalancedQuotes,
    #[error("Protocol error: unauthenticated multibulk length")]
    UnauthenticatedMultibulkLength,
    #[error("Protocol error: unauthenticated bulk length")]
    UnauthenticatedBulkLength,
}
