//! Keyspace notifications (`notify-keyspace-events`): commands report what they did to which
//! key with `Ctx::notify`; this module turns that into `__keyspace@<db>__:<key>` and
//! `__keyevent@<db>__:<event>` messages for subscribers. The pub/sub family fills it in; until
//! then nothing is published.

use super::Ctx;

/// Event classes, as the letters of `notify-keyspace-events`.
pub mod class {
    pub const GENERIC: char = 'g';
    pub const STRING: char = '$';
    pub const LIST: char = 'l';
    pub const SET: char = 's';
    pub const HASH: char = 'h';
    pub const ZSET: char = 'z';
    pub const EXPIRED: char = 'x';
    pub const EVICTED: char = 'e';
}

/// Publishes a keyspace event (called only when notifications are enabled).
pub fn emit(_ctx: &mut Ctx, _class: char, _event: &str, _key: &[u8]) {}
