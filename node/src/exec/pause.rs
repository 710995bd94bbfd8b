//! CLIENT PAUSE: hold clients' commands for a while, all of them or only those that write
//! (Valkey's `pauseActions`). A held request stays first in its client's queue (the same
//! `deferred` mechanism a slot hand-off uses) and runs when the pause ends. Replication links
//! are never held. While paused, keys do not expire (they only look expired), so a primary's
//! replication offset stands still: that is what a planned failover waits on.

use std::time::Instant;

use super::client::ClientState;
use super::server::Server;
use crate::command::Entry;
use crate::keyspace::Expiry;

/// A pause in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pause {
    pub until: Instant,
    /// ALL (every command) rather than WRITE.
    pub all: bool,
}

/// Starts or extends a pause (the later end and the stricter mode win, as in Valkey).
pub fn start(srv: &mut Server, until: Instant, all: bool) {
    let p = match srv.pause {
        Some(p) => Pause { until: p.until.max(until), all: p.all || all },
        None => Pause { until, all },
    };
    srv.pause = Some(p);
    if srv.master.is_none() {
        for db in &mut srv.dbs {
            db.expiry = Expiry::Hide;
        }
    }
}

/// Ends the pause (CLIENT UNPAUSE or its deadline); held clients run again.
pub fn end(srv: &mut Server) {
    if srv.pause.take().is_none() {
        return;
    }
    if srv.master.is_none() {
        for db in &mut srv.dbs {
            db.expiry = Expiry::Delete;
        }
    }
    srv.pause_ended = true;
}

/// Whether this command must wait for the pause to end.
pub fn holds(srv: &Server, st: &ClientState, entry: &Entry) -> bool {
    let Some(p) = srv.pause else { return false };
    if st.master || st.replica {
        return false;
    }
    let exec = entry.full_name == "exec";
    if st.multi.is_some() && !exec && !crate::command::txn::runs_in_multi(&entry.full_name) {
        // Queued, not run: EXEC is what waits.
        return false;
    }
    if p.all {
        return true;
    }
    let meta = entry.meta;
    meta.has_flag("write")
        || meta.has_flag("may_replicate")
        || (exec && crate::replication::gate::queued_write(srv, st))
}
