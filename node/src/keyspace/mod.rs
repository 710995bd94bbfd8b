//! The keyspace: databases of keys to typed values with millisecond expiry. No I/O, no
//! threads: only the executor owns it.

pub mod db;
pub mod evict;
pub mod hash;
pub mod node;
pub mod slot;
pub mod table;
pub mod types;
pub mod value;
pub mod watch;

pub use db::{Db, EntryMut, Expiry, KeyHint};
pub use node::{Node, ValueRef};
pub use value::Value;
