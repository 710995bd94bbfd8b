//! The collection types a key can hold besides strings. Each lives boxed behind its node
//! (see `node.rs`), so the common small string stays inline and a collection can grow in
//! place. Each type owns its file: its representation, its encodings (`OBJECT ENCODING`)
//! and its size estimate.

pub mod dict;
pub mod hash;
pub mod list;
pub mod packed;
pub mod set;
pub mod stream;
pub mod zset;

pub use hash::HashValue;
pub use list::ListValue;
pub use set::SetValue;
pub use stream::StreamValue;
pub use zset::ZSetValue;
