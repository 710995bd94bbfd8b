//! The command table (data).

use super::meta::*;

pub static COMMANDS: &[CommandMeta] = &[];
