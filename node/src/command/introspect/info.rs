//! The COMMAND INFO reply of one command (`addReplyCommandInfo`): name, arity, flags, the
//! legacy (first, last, step) key triple, ACL categories, tips, key specs and subcommands.
//! Flags and the legacy triple are derived from the key specs here, exactly as Valkey's
//! `populateCommandLegacyRangeSpec` does at startup, rather than trusted from the table.

use super::{subcommands, Entry};
use crate::command::meta::{BeginSearch, CommandMeta, FindKeys, KeySpec};
use crate::protocol::Reply;

/// Command flags COMMAND INFO shows, in Valkey's order. Others (`sentinel`, `may_replicate`,
/// `protected`, `only_sentinel`, `touches_arbitrary_keys`) are hidden on purpose.
const FLAG_ORDER: &[&str] = &[
    "write",
    "readonly",
    "denyoom",
    "module",
    "admin",
    "pubsub",
    "noscript",
    "blocking",
    "loading",
    "stale",
    "skip_monitor",
    "skip_slowlog",
    "asking",
    "fast",
    "no_auth",
    "no_mandatory_keys",
    "no_async_loading",
    "no_multi",
    "movablekeys",
    "allow_busy",
];

/// Key-spec flags as the table spells them and as replies show them, in Valkey's order.
const KEY_FLAGS: &[(&str, &str)] = &[
    ("RO", "RO"),
    ("RW", "RW"),
    ("OW", "OW"),
    ("RM", "RM"),
    ("ACCESS", "access"),
    ("UPDATE", "update"),
    ("INSERT", "insert"),
    ("DELETE", "delete"),
    ("NOT_KEY", "not_key"),
    ("INCOMPLETE", "incomplete"),
    ("VARIABLE_FLAGS", "variable_flags"),
];

/// The legacy key triple and whether the command has movable keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Legacy {
    pub first: i32,
    pub last: i32,
    pub step: i32,
    pub movable: bool,
}

fn is_range(s: &KeySpec) -> Option<(i32, i32, i32)> {
    match (s.begin, s.find) {
        (BeginSearch::Index(pos), FindKeys::Range { lastkey, step, .. }) => Some((pos, lastkey, step)),
        _ => None,
    }
}

/// `populateCommandLegacyRangeSpec`: the union of consecutive plain range specs; any other
/// spec (or an incomplete one) makes the keys movable.
pub fn legacy(meta: &CommandMeta) -> Legacy {
    let specs = meta.key_specs;
    let none = Legacy { first: 0, last: 0, step: 0, movable: false };
    if specs.is_empty() {
        return none;
    }
    if let ([only], Some((pos, lastkey, step))) = (specs, specs.first().and_then(is_range)) {
        return Legacy {
            first: pos,
            last: if lastkey >= 0 { pos + lastkey } else { lastkey },
            step,
            movable: only.flags.contains(&"INCOMPLETE"),
        };
    }
    let mut movable = false;
    let mut first = i32::MAX;
    // Compared as unsigned in Valkey, so a negative (relative to the end) last key wins.
    let mut last: u32 = 0;
    let mut prev_last: i32 = 0;
    for s in specs {
        let Some((pos, lastkey, step)) = is_range(s) else {
            movable = true;
            continue;
        };
        if step != 1 || (prev_last != 0 && prev_last != pos - 1) {
            movable = true;
            continue;
        }
        if s.flags.contains(&"INCOMPLETE") {
            movable = true;
        }
        first = first.min(pos);
        let abs = if lastkey >= 0 { lastkey + pos } else { lastkey };
        last = last.max(abs as u32);
        prev_last = last as i32;
    }
    if first == i32::MAX {
        return Legacy { movable: true, ..none };
    }
    Legacy { first, last: last as i32, step: 1, movable }
}

/// Writes a set of status replies.
fn statuses<'a>(out: &mut Reply, items: impl Iterator<Item = &'a str> + Clone) {
    out.set(items.clone().count());
    for s in items {
        out.simple(s);
    }
}

/// The key-spec flags of one key or spec, as a set of statuses in Valkey's order.
pub fn write_key_flags(out: &mut Reply, flags: &[&str]) {
    statuses(out, KEY_FLAGS.iter().filter(|(name, _)| flags.contains(name)).map(|&(_, shown)| shown));
}

fn write_key_specs(out: &mut Reply, specs: &[KeySpec]) {
    out.set(specs.len());
    for s in specs {
        out.map(3);
        out.bulk_str("flags");
        write_key_flags(out, s.flags);
        out.bulk_str("begin_search");
        out.map(2);
        out.bulk_str("type");
        match s.begin {
            BeginSearch::Index(pos) => {
                out.bulk_str("index");
                out.bulk_str("spec");
                out.map(1);
                out.bulk_str("index");
                out.int(pos.into());
            }
            BeginSearch::Keyword { keyword, startfrom } => {
                out.bulk_str("keyword");
                out.bulk_str("spec");
                out.map(2);
                out.bulk_str("keyword");
                out.bulk_str(keyword);
                out.bulk_str("startfrom");
                out.int(startfrom.into());
            }
            BeginSearch::Unknown => {
                out.bulk_str("unknown");
                out.bulk_str("spec");
                out.map(0);
            }
        }
        out.bulk_str("find_keys");
        out.map(2);
        out.bulk_str("type");
        match s.find {
            FindKeys::Range { lastkey, step, limit } => {
                out.bulk_str("range");
                out.bulk_str("spec");
                out.map(3);
                out.bulk_str("lastkey");
                out.int(lastkey.into());
                out.bulk_str("keystep");
                out.int(step.into());
                out.bulk_str("limit");
                out.int(limit.into());
            }
            FindKeys::Keynum { keynumidx, firstkey, step } => {
                out.bulk_str("keynum");
                out.bulk_str("spec");
                out.map(3);
                out.bulk_str("keynumidx");
                out.int(keynumidx.into());
                out.bulk_str("firstkey");
                out.int(firstkey.into());
                out.bulk_str("keystep");
                out.int(step.into());
            }
            FindKeys::Unknown => {
                out.bulk_str("unknown");
                out.bulk_str("spec");
                out.map(0);
            }
        }
    }
}

/// Writes the 10-element COMMAND INFO array of one command.
pub fn write(out: &mut Reply, e: &Entry) {
    let meta = e.meta;
    let legacy = legacy(meta);
    out.array(10);
    out.bulk_str(&e.full_name);
    out.int(meta.arity.into());
    statuses(
        out,
        FLAG_ORDER.iter().copied().filter(|f| {
            if *f == "movablekeys" {
                legacy.movable
            } else {
                meta.has_flag(f)
            }
        }),
    );
    out.int(legacy.first.into());
    out.int(legacy.last.into());
    out.int(legacy.step.into());
    out.set(meta.acl.len());
    for cat in meta.acl {
        out.raw(b"+@");
        out.raw(cat.as_bytes());
        out.raw(b"\r\n");
    }
    out.set(meta.tips.len());
    for tip in meta.tips {
        out.bulk_str(tip);
    }
    write_key_specs(out, meta.key_specs);
    if meta.subcommands.is_empty() {
        out.set(0);
    } else {
        let subs = subcommands(e);
        out.array(subs.len());
        for s in subs {
            write(out, s);
        }
    }
}
