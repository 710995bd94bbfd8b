//! The checks Valkey's `processCommand` makes for replication, in its order: not enough good
//! replicas for a write (`-NOREPLICAS`), a write on a read-only replica (`-READONLY`), a
//! replica whose link is down and told not to serve stale data (`-MASTERDOWN`), and a full
//! sync being loaded (`-LOADING`); and, before those, CLIENT CAPA redirect's `-REDIRECT`. Only consulted while one of them can apply, so a primary
//! without `min-replicas-to-write` pays one branch per command.

use std::borrow::Cow;

use crate::command::Entry;
use crate::exec::client::ClientState;
use crate::exec::Server;

pub const NOREPLICAS: &str = "NOREPLICAS Not enough good replicas to write.";
pub const READONLY: &str = "READONLY You can't write against a read only replica.";
pub const MASTERDOWN: &str =
    "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.";
pub const LOADING: &str = "LOADING Valkey is loading the dataset in memory";

/// The error that refuses this command, if any.
pub fn refuses(srv: &Server, st: &ClientState, entry: &Entry) -> Option<Cow<'static, str>> {
    if st.master {
        return None;
    }
    let meta = entry.meta;
    let exec = entry.full_name == "exec";
    let write = meta.has_flag("write") || (exec && queued_write(srv, st));
    if let (Some(m), true, None) = (srv.master.as_ref(), st.capa_redirect, srv.cluster.as_ref()) {
        // CLIENT CAPA redirect (Valkey 8): a standalone replica sends the client to its primary
        // for writes, and for reads unless the client said READONLY (inside MULTI too, which
        // dooms the transaction; an EXEC of queued writes is redirected as well).
        let read = meta.has_flag("readonly") || (exec && queued_read(srv, st));
        if write || (read && !st.readonly) {
            return Some(Cow::Owned(format!("REDIRECT {}:{}", m.host, m.port)));
        }
    }
    refusal(srv, meta, write).map(Cow::Borrowed)
}

fn refusal(srv: &Server, meta: &crate::command::meta::CommandMeta, write: bool) -> Option<&'static str> {
    if write
        && srv.master.is_none()
        && srv.repl.min_replicas > 0
        && srv.repl.good_replicas < srv.repl.min_replicas
    {
        return Some(NOREPLICAS);
    }
    if let Some(m) = srv.master.as_ref() {
        if write && srv.config.get_bool("replica-read-only") {
            return Some(READONLY);
        }
        if m.state != crate::replication::replica::LinkState::Connected
            && !srv.config.get_bool("replica-serve-stale-data")
            && !meta.has_flag("stale")
        {
            return Some(MASTERDOWN);
        }
    }
    if srv.loading && !meta.has_flag("loading") {
        return Some(LOADING);
    }
    None
}

/// EXEC counts as a write when a queued command is one.
pub fn queued_write(srv: &Server, st: &ClientState) -> bool {
    queued_flag(srv, st, "write")
}

/// EXEC counts as a read when a queued command is one.
fn queued_read(srv: &Server, st: &ClientState) -> bool {
    queued_flag(srv, st, "readonly")
}

fn queued_flag(srv: &Server, st: &ClientState, flag: &str) -> bool {
    let Some(m) = st.multi.as_ref() else { return false };
    m.commands.iter().any(|args| {
        let Some(e) = args.first().and_then(|n| srv.registry.lookup(n)) else { return false };
        let e = match (e.subs.is_empty(), args.get(1)) {
            (false, Some(sub)) => e.sub(sub).unwrap_or(e),
            _ => e,
        };
        e.meta.has_flag(flag)
    })
}
