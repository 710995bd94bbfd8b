//! Commands: the table (data: name, arity, flags, keys), one module per command family with
//! the handlers, and the registry the dispatcher looks names up in.

pub mod meta;
pub mod table;

pub mod acl_cmd;
pub mod bitmap;
pub mod client_cmd;
pub mod cluster_cmd;
pub mod config_cmd;
pub mod connection;
pub mod debug;
pub mod dump;
pub mod geo;
pub mod hash;
pub mod hll;
pub mod info;
pub mod introspect;
pub mod keys;
pub mod keys_of;
pub mod list;
pub mod pubsub;
pub mod server;
pub mod set;
pub mod sort;
pub mod stream;
pub mod string;
pub mod txn;
pub mod zset;

use std::collections::HashMap;

use bytes::Bytes;

use crate::exec::Ctx;
use meta::CommandMeta;

/// A command implementation. Errors are replies, written to `ctx.out`.
pub type Handler = fn(&mut Ctx, &[Bytes]);

/// A registered command: its metadata, handler and subcommands.
pub struct Entry {
    /// Dense index of this command or subcommand in its registry (per-command statistics).
    pub id: usize,
    pub meta: &'static CommandMeta,
    /// `get`, or `config|get` for a subcommand.
    pub full_name: String,
    pub handler: Option<Handler>,
    pub subs: Names<Entry>,
}

type Names<T> = HashMap<String, T, foldhash::fast::RandomState>;

/// Every command the node runs, by lower-case name.
pub struct Registry {
    pub commands: Names<Entry>,
    /// Number of entries, subcommands included: every `Entry::id` is below it.
    pub len: usize,
}

/// The registry of this build, shared by the executor and the I/O threads (which resolve
/// each request's command while parsing it).
pub fn registry() -> &'static Registry {
    static REGISTRY: std::sync::OnceLock<Registry> = std::sync::OnceLock::new();
    REGISTRY.get_or_init(Registry::build)
}

fn handler(full: &str) -> Option<Handler> {
    connection::handler(full)
        .or_else(|| acl_cmd::handler(full))
        .or_else(|| server::handler(full))
        .or_else(|| debug::handler(full))
        .or_else(|| keys::handler(full))
        .or_else(|| string::handler(full))
        .or_else(|| client_cmd::handler(full))
        .or_else(|| config_cmd::handler(full))
        .or_else(|| info::handler(full))
        .or_else(|| introspect::handler(full))
        .or_else(|| cluster_cmd::handler(full))
        .or_else(|| dump::handler(full))
        .or_else(|| txn::handler(full))
        .or_else(|| crate::scripting::eval::handler(full))
        .or_else(|| bitmap::handler(full))
        .or_else(|| hll::handler(full))
        .or_else(|| hash::handler(full))
        .or_else(|| set::handler(full))
        .or_else(|| pubsub::handler(full))
        .or_else(|| list::handler(full))
        .or_else(|| sort::handler(full))
        .or_else(|| geo::handler(full))
        .or_else(|| zset::handler(full))
        .or_else(|| stream::handler(full))
        .or_else(|| crate::replication::commands::handler(full))
}

impl Registry {
    /// Builds the registry from the table, attaching each command's handler.
    pub fn build() -> Registry {
        let mut commands = Names::default();
        let mut next_id = 0;
        let mut id = || {
            next_id += 1;
            next_id - 1
        };
        for meta in table::COMMANDS {
            let subs = meta
                .subcommands
                .iter()
                .map(|s| {
                    let full = format!("{}|{}", meta.name, s.name);
                    let entry = Entry {
                        id: id(),
                        meta: s,
                        handler: handler(&full),
                        full_name: full,
                        subs: Names::default(),
                    };
                    (s.name.to_string(), entry)
                })
                .collect();
            let entry =
                Entry { id: id(), meta, full_name: meta.name.to_string(), handler: handler(meta.name), subs };
            commands.insert(meta.name.to_string(), entry);
        }
        Registry { commands, len: next_id }
    }

    /// Every entry, subcommands included, in no particular order.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.commands.values().flat_map(|e| std::iter::once(e).chain(e.subs.values()))
    }

    /// Case-insensitive lookup of a command name.
    pub fn lookup(&self, name: &[u8]) -> Option<&Entry> {
        let mut buf = [0u8; 32];
        if name.len() <= buf.len() {
            let b = &mut buf[..name.len()];
            b.copy_from_slice(name);
            b.make_ascii_lowercase();
            let s = std::str::from_utf8(b).ok()?;
            self.commands.get(s)
        } else {
            None
        }
    }
}

impl Entry {
    /// Case-insensitive lookup of a subcommand.
    pub fn sub(&self, name: &[u8]) -> Option<&Entry> {
        let s = String::from_utf8_lossy(name).to_ascii_lowercase();
        self.subs.get(&s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_entry_has_a_handler() {
        let r = Registry::build();
        for e in r.commands.values() {
            if e.subs.is_empty() {
                assert!(e.handler.is_some(), "no handler for {}", e.full_name);
            }
            for s in e.subs.values() {
                assert!(s.handler.is_some(), "no handler for {}", s.full_name);
            }
        }
    }

    #[test]
    fn entry_ids_are_dense_and_unique() {
        let r = Registry::build();
        let mut ids: Vec<usize> = r.entries().map(|e| e.id).collect();
        ids.sort_unstable();
        assert_eq!(ids, (0..r.len).collect::<Vec<_>>());
    }
}
