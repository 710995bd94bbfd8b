//! The COMMAND DOCS reply of one command (`addReplyCommandDocs`): a map with summary, since,
//! group, complexity, deprecation and history fields, the argument tree and the subcommands.
//!
//! The table does not yet carry every documentation field Valkey reports (history,
//! doc_flags, deprecated_since, replaced_by, per-argument display text, since and
//! deprecation). They are read through [`Extras`], which returns "absent" for now, so adding
//! them to the table only needs a change here.

use super::{subcommands, Entry};
use crate::command::meta::{Arg, CommandMeta};
use crate::protocol::Reply;

/// Documentation fields not (yet) in the command table.
#[derive(Default)]
struct Extras {
    history: &'static [(&'static str, &'static str)],
    doc_flags: &'static [&'static str],
    deprecated_since: Option<&'static str>,
    replaced_by: Option<&'static str>,
}

impl Extras {
    fn of(_meta: &CommandMeta) -> Extras {
        Extras::default()
    }
}

/// Per-argument fields not (yet) in the command table.
#[derive(Default)]
struct ArgExtras {
    display: Option<&'static str>,
    since: Option<&'static str>,
    deprecated_since: Option<&'static str>,
    multiple_token: bool,
}

impl ArgExtras {
    fn of(_arg: &Arg) -> ArgExtras {
        ArgExtras::default()
    }
}

fn opt(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

/// Writes the docs map of one command (without its name).
pub fn write(out: &mut Reply, e: &Entry) {
    let meta = e.meta;
    let x = Extras::of(meta);
    let summary = opt(meta.summary);
    let since = opt(meta.since);
    let complexity = opt(meta.complexity);
    let has_subs = !meta.subcommands.is_empty();
    let len = 1
        + summary.is_some() as usize
        + since.is_some() as usize
        + complexity.is_some() as usize
        + !x.doc_flags.is_empty() as usize
        + x.deprecated_since.is_some() as usize
        + x.replaced_by.is_some() as usize
        + !x.history.is_empty() as usize
        + !meta.args.is_empty() as usize
        + has_subs as usize;
    out.map(len);
    if let Some(s) = summary {
        out.bulk_str("summary");
        out.bulk_str(s);
    }
    if let Some(s) = since {
        out.bulk_str("since");
        out.bulk_str(s);
    }
    out.bulk_str("group");
    out.bulk_str(meta.group);
    if let Some(s) = complexity {
        out.bulk_str("complexity");
        out.bulk_str(s);
    }
    if !x.doc_flags.is_empty() {
        out.bulk_str("doc_flags");
        out.set(x.doc_flags.len());
        for f in x.doc_flags {
            out.simple(f);
        }
    }
    if let Some(s) = x.deprecated_since {
        out.bulk_str("deprecated_since");
        out.bulk_str(s);
    }
    if let Some(s) = x.replaced_by {
        out.bulk_str("replaced_by");
        out.bulk_str(s);
    }
    if !x.history.is_empty() {
        out.bulk_str("history");
        out.set(x.history.len());
        for (version, change) in x.history {
            out.array(2);
            out.bulk_str(version);
            out.bulk_str(change);
        }
    }
    if !meta.args.is_empty() {
        out.bulk_str("arguments");
        let keys = count_key_args(meta.args);
        let mut seen = 0;
        write_args(out, meta.args, keys == meta.key_specs.len(), &mut seen);
    }
    if has_subs {
        out.bulk_str("subcommands");
        let subs = subcommands(e);
        out.map(subs.len());
        for s in subs {
            out.bulk_str(&s.full_name);
            write(out, s);
        }
    }
}

fn count_key_args(args: &[Arg]) -> usize {
    args.iter().map(|a| (a.kind == "key") as usize + count_key_args(a.args)).sum()
}

/// The argument tree (`addReplyCommandArgList`). A key argument's `key_spec_index` is its
/// rank among the key arguments when there is one spec per key argument, otherwise 0 (one
/// spec covers them all, as in LCS or MSET); this holds for every command in the table.
fn write_args(out: &mut Reply, args: &[Arg], one_spec_per_key: bool, seen: &mut usize) {
    out.array(args.len());
    for a in args {
        let x = ArgExtras::of(a);
        let nested = a.kind == "oneof" || a.kind == "block";
        let is_key = a.kind == "key";
        let flags = a.optional as usize + a.multiple as usize + x.multiple_token as usize;
        let len = 2
            + !nested as usize
            + is_key as usize
            + a.token.is_some() as usize
            + x.since.is_some() as usize
            + x.deprecated_since.is_some() as usize
            + (flags > 0) as usize
            + nested as usize;
        out.map(len);
        out.bulk_str("name");
        out.bulk_str(a.name);
        out.bulk_str("type");
        out.bulk_str(a.kind);
        if !nested {
            out.bulk_str("display_text");
            out.bulk_str(x.display.unwrap_or(a.name));
        }
        if is_key {
            out.bulk_str("key_spec_index");
            out.int(if one_spec_per_key { *seen as i64 } else { 0 });
            *seen += 1;
        }
        if let Some(t) = a.token {
            out.bulk_str("token");
            out.bulk_str(t);
        }
        if let Some(s) = x.since {
            out.bulk_str("since");
            out.bulk_str(s);
        }
        if let Some(s) = x.deprecated_since {
            out.bulk_str("deprecated_since");
            out.bulk_str(s);
        }
        if flags > 0 {
            out.bulk_str("flags");
            out.set(flags);
            if a.optional {
                out.simple("optional");
            }
            if a.multiple {
                out.simple("multiple");
            }
            if x.multiple_token {
                out.simple("multiple_token");
            }
        }
        if nested {
            out.bulk_str("arguments");
            write_args(out, a.args, one_spec_per_key, seen);
        }
    }
}
