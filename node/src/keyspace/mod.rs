//! The keyspace: databases of keys to typed values with millisecond expiry. No I/O, no
//! threads: only the executor owns it.

pub mod db;
pub mod slot;
pub mod value;

pub use db::{Db, Entry};
pub use value::Value;
