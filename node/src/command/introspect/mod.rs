//! COMMAND and its subcommands: what clients (redis-cli hints, redis-py, cluster-aware
//! clients) learn about the node's commands. Everything is derived from the registry, so only
//! commands that actually run are reported; the replies follow Valkey 8's `server.c` field by
//! field, in its order and with its RESP3 types (sets for flags, maps for key specs and docs).
//!
//! Valkey iterates a hash table, so its order is unspecified (the commands carry the
//! `nondeterministic_output_order` tip); Shoal reports commands sorted by name.

mod docs;
mod info;
pub mod latency;
pub mod slowlog;

use bytes::Bytes;

use super::keys_of;
use super::{Entry, Handler, Registry};
use crate::exec::Ctx;

pub fn handler(name: &str) -> Option<Handler> {
    Some(match name {
        "command" => command,
        "command|count" => count,
        "command|info" => command_info,
        "command|list" => list,
        "command|docs" => command_docs,
        "command|getkeys" => getkeys,
        "command|getkeysandflags" => getkeys_and_flags,
        "command|help" => help,
        other => return slowlog::handler(other).or_else(|| latency::handler(other)),
    })
}

/// True when the entry can run: it has a handler, or (a container) a subcommand that has one.
fn registered(e: &Entry) -> bool {
    e.handler.is_some() || e.subs.values().any(|s| s.handler.is_some())
}

/// Registered top-level commands, by name.
fn commands(reg: &Registry) -> Vec<&Entry> {
    let mut v: Vec<&Entry> = reg.commands.values().filter(|e| registered(e)).collect();
    v.sort_unstable_by(|a, b| a.full_name.cmp(&b.full_name));
    v
}

/// Registered subcommands of a container, by name.
fn subcommands(e: &Entry) -> Vec<&Entry> {
    let mut v: Vec<&Entry> = e.subs.values().filter(|s| s.handler.is_some()).collect();
    v.sort_unstable_by(|a, b| a.full_name.cmp(&b.full_name));
    v
}

/// `lookupCommandBySds`: `name` or `container|sub`, case-insensitive; a `|` after a command
/// without subcommands, or more than one `|`, finds nothing.
fn lookup_by_name<'r>(reg: &'r Registry, name: &[u8]) -> Option<&'r Entry> {
    let mut parts = name.split(|&b| b == b'|');
    let base = reg.lookup(parts.next()?)?;
    let found = match (parts.next(), parts.next()) {
        (None, _) => base,
        (Some(sub), None) if !base.subs.is_empty() => base.sub(sub)?,
        _ => return None,
    };
    let ok = if found.subs.is_empty() { found.handler.is_some() } else { registered(found) };
    ok.then_some(found)
}

/// `lookupCommand` on an argument vector: a container followed by an argument is looked up
/// as its subcommand (and is not found when that subcommand does not exist).
fn lookup_argv<'r>(reg: &'r Registry, args: &[Bytes]) -> Option<&'r Entry> {
    let base = reg.lookup(args.first()?)?;
    let found = match args.get(1) {
        Some(sub) if !base.subs.is_empty() => base.sub(sub)?,
        _ => base,
    };
    registered(found).then_some(found)
}

/// COMMAND: info about every command.
fn command(ctx: &mut Ctx, _args: &[Bytes]) {
    let reg = ctx.srv.registry;
    let all = commands(reg);
    ctx.out.array(all.len());
    for e in all {
        info::write(ctx.out, e);
    }
}

/// COMMAND COUNT.
fn count(ctx: &mut Ctx, _args: &[Bytes]) {
    let reg = ctx.srv.registry;
    let n = reg.commands.values().filter(|e| registered(e)).count();
    ctx.out.int(n as i64);
}

/// COMMAND INFO [name ...]: every command without names; a null for each unknown name.
fn command_info(ctx: &mut Ctx, args: &[Bytes]) {
    let reg = ctx.srv.registry;
    if args.len() == 2 {
        return command(ctx, args);
    }
    ctx.out.array(args.len() - 2);
    for name in &args[2..] {
        match lookup_by_name(reg, name) {
            Some(e) => info::write(ctx.out, e),
            None => ctx.out.null(),
        }
    }
}

/// COMMAND DOCS [name ...]: a map of name to docs; unknown names are left out.
fn command_docs(ctx: &mut Ctx, args: &[Bytes]) {
    let reg = ctx.srv.registry;
    let found: Vec<&Entry> = if args.len() == 2 {
        commands(reg)
    } else {
        args[2..].iter().filter_map(|n| lookup_by_name(reg, n)).collect()
    };
    ctx.out.map(found.len());
    for e in found {
        ctx.out.bulk_str(&e.full_name);
        docs::write(ctx.out, e);
    }
}

/// A COMMAND LIST filter.
enum Filter<'a> {
    None,
    /// No modules exist, so a module filter matches nothing.
    Module,
    AclCat(&'a [u8]),
    /// Lower-cased pattern, matched against the lower-case full name.
    Pattern(Vec<u8>),
}

impl Filter<'_> {
    fn keeps(&self, e: &Entry) -> bool {
        match self {
            Filter::None => true,
            Filter::Module => false,
            Filter::AclCat(cat) => e.meta.acl.iter().any(|c| c.as_bytes().eq_ignore_ascii_case(cat)),
            Filter::Pattern(p) => crate::util::glob_match(p, e.full_name.as_bytes(), false),
        }
    }
}

/// COMMAND LIST [FILTERBY MODULE m | ACLCAT c | PATTERN p]: names of commands and their
/// subcommands (each container followed by its subcommands).
fn list(ctx: &mut Ctx, args: &[Bytes]) {
    let mut filter = Filter::None;
    let mut i = 2;
    while i < args.len() {
        let more = args.len() - 1 - i;
        if !args[i].eq_ignore_ascii_case(b"filterby") || more != 2 {
            return ctx.syntax_error();
        }
        let kind = &args[i + 1];
        let arg = &args[i + 2];
        filter = if kind.eq_ignore_ascii_case(b"module") {
            Filter::Module
        } else if kind.eq_ignore_ascii_case(b"aclcat") {
            Filter::AclCat(arg)
        } else if kind.eq_ignore_ascii_case(b"pattern") {
            // Valkey matches case-insensitively; lowering the pattern is equivalent (ranges
            // and escaped characters are lowered by the matcher too).
            Filter::Pattern(arg.to_ascii_lowercase())
        } else {
            return ctx.syntax_error();
        };
        i += 3;
    }
    let reg = ctx.srv.registry;
    let mut names: Vec<&str> = Vec::new();
    for e in commands(reg) {
        if filter.keeps(e) {
            names.push(&e.full_name);
        }
        for s in subcommands(e) {
            if filter.keeps(s) {
                names.push(&s.full_name);
            }
        }
    }
    ctx.out.array(names.len());
    for n in names {
        ctx.out.bulk_str(n);
    }
}

fn getkeys(ctx: &mut Ctx, args: &[Bytes]) {
    getkeys_impl(ctx, args, false);
}

fn getkeys_and_flags(ctx: &mut Ctx, args: &[Bytes]) {
    getkeys_impl(ctx, args, true);
}

/// COMMAND GETKEYS / GETKEYSANDFLAGS <command> [arg ...] (`getKeysSubcommandImpl`).
fn getkeys_impl(ctx: &mut Ctx, args: &[Bytes], with_flags: bool) {
    let reg = ctx.srv.registry;
    let cmd = &args[2..];
    let Some(e) = lookup_argv(reg, cmd) else {
        return ctx.out.err("Invalid command specified");
    };
    let meta = e.meta;
    if !keys_of::has_keys(meta) {
        return ctx.out.err("The command has no key arguments");
    }
    let n = cmd.len() as i64;
    let arity = meta.arity as i64;
    if (arity > 0 && arity != n) || n < -arity {
        return ctx.out.err("Invalid number of arguments specified for command");
    }
    let mut keys = keys_of::command_keys(meta, cmd);
    // Positions are inside the arguments by construction; never index past them regardless.
    keys.retain(|k| k.pos < cmd.len());
    if keys.is_empty() {
        if meta.has_flag("no_mandatory_keys") {
            ctx.out.array(0);
        } else {
            ctx.out.err("Invalid arguments specified for command");
        }
        return;
    }
    ctx.out.array(keys.len());
    for k in keys {
        if with_flags {
            ctx.out.array(2);
            ctx.out.bulk(&cmd[k.pos]);
            info::write_key_flags(ctx.out, k.flags);
        } else {
            ctx.out.bulk(&cmd[k.pos]);
        }
    }
}

/// Help lines of COMMAND HELP, as Valkey 8 words them.
const HELP: &[&str] = &[
    "(no subcommand)",
    "    Return details about all commands.",
    "COUNT",
    "    Return the total number of commands in this server.",
    "LIST",
    "    Return a list of all commands in this server.",
    "INFO [<command-name> ...]",
    "    Return details about multiple commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "DOCS [<command-name> ...]",
    "    Return documentation details about multiple commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "GETKEYS <full-command>",
    "    Return the keys from a full command.",
    "GETKEYSANDFLAGS <full-command>",
    "    Return the keys and the access flags from a full command.",
];

/// COMMAND HELP, in the layout of Valkey's `addReplyHelp`.
fn help(ctx: &mut Ctx, args: &[Bytes]) {
    let name = String::from_utf8_lossy(&args[0]).to_ascii_uppercase();
    ctx.out.array(HELP.len() + 3);
    ctx.out.simple(&format!("{name} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"));
    for line in HELP {
        ctx.out.simple(line);
    }
    ctx.out.simple("HELP");
    ctx.out.simple("    Print this help.");
}

#[cfg(test)]
mod tests;
