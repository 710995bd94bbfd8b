//! Types of the command table: what `COMMAND INFO` / `COMMAND DOCS` report and what the
//! dispatcher checks (arity, flags, key positions). The data itself is in `table.rs`.

/// Where a key-spec starts looking for keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BeginSearch {
    /// Keys start at this argument index.
    Index(i32),
    /// Keys start after `keyword`, searching from `startfrom` (negative: from the end).
    Keyword {
        keyword: &'static str,
        startfrom: i32,
    },
    Unknown,
}

/// How a key-spec finds keys once it has begun.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FindKeys {
    /// `lastkey` relative to the start (-1: to the end), every `step`, at most `limit`.
    Range {
        lastkey: i32,
        step: i32,
        limit: i32,
    },
    /// The number of keys is at `keynumidx` (relative), keys start at `firstkey`.
    Keynum {
        keynumidx: i32,
        firstkey: i32,
        step: i32,
    },
    Unknown,
}

/// One key specification, as in Valkey's command JSON.
#[derive(Debug, Clone, Copy)]
pub struct KeySpec {
    /// Flags such as `RW`, `ACCESS`, `UPDATE`, `INSERT`, `DELETE`, `OW`, `RO`.
    pub flags: &'static [&'static str],
    pub begin: BeginSearch,
    pub find: FindKeys,
}

/// One argument of a command, for COMMAND DOCS.
#[derive(Debug, Clone, Copy)]
pub struct Arg {
    pub name: &'static str,
    /// `key`, `string`, `integer`, `double`, `pattern`, `unix-time`, `pure-token`, `oneof`, `block`.
    pub kind: &'static str,
    pub token: Option<&'static str>,
    pub optional: bool,
    pub multiple: bool,
    pub args: &'static [Arg],
}

/// A command or subcommand.
#[derive(Debug)]
pub struct CommandMeta {
    /// Lower-case name; for a subcommand, only the subcommand part (`get` of `config|get`).
    pub name: &'static str,
    /// Valkey's arity: positive = exact argument count (with the name), negative = minimum.
    pub arity: i32,
    /// COMMAND INFO flags, lower case (`write`, `readonly`, `denyoom`, `fast`, `noauth`, ...).
    pub flags: &'static [&'static str],
    /// ACL categories without the `@`.
    pub acl: &'static [&'static str],
    pub tips: &'static [&'static str],
    pub key_specs: &'static [KeySpec],
    /// The legacy (first, last, step) key triple COMMAND INFO shows.
    pub first_key: i32,
    pub last_key: i32,
    pub step: i32,
    pub group: &'static str,
    pub since: &'static str,
    pub summary: &'static str,
    pub complexity: &'static str,
    pub args: &'static [Arg],
    pub subcommands: &'static [CommandMeta],
}

impl CommandMeta {
    pub fn has_flag(&self, flag: &str) -> bool {
        self.flags.contains(&flag)
    }

    /// True when key positions cannot be computed from (first, last, step) alone.
    pub fn movable_keys(&self) -> bool {
        self.key_specs
            .iter()
            .any(|k| !matches!(k.begin, BeginSearch::Index(_)) || !matches!(k.find, FindKeys::Range { .. }))
    }
}
