//! What keeps a bad replica from hurting its primary: `client-output-buffer-limit replica`
//! (unsent stream bytes over the hard limit, or over the soft limit for longer than its
//! seconds: Valkey's `checkClientOutputBufferLimits`) and `repl-timeout` (an online replica
//! that has not acknowledged for that long). Either closes the replica's connection; the
//! primary keeps serving, and the replica reconnects and resynchronizes (partially when the
//! backlog still holds its offset).

use std::time::Duration;

use slab::Slab;

use super::primary::LinkState;
use crate::exec::{Client, Server};

/// Once per loop while replicas are attached.
pub fn enforce(srv: &mut Server, clients: &mut Slab<Client>) {
    if srv.repl.replicas.is_empty() {
        return;
    }
    let limit = srv.pubsub.replica_limit;
    let timeout = Duration::from_secs(srv.config.get_i64("repl-timeout").max(1) as u64);
    let now = srv.now;
    let mut cut = Vec::new();
    for r in &mut srv.repl.replicas {
        let Some(c) = clients.get_mut(r.idx).filter(|c| c.st.id == r.client_id) else { continue };
        let used = (c.pending_out_bytes() + r.held_bytes) as u64;
        let hard_hit = limit.hard > 0 && used >= limit.hard;
        let mut soft_hit = false;
        if limit.soft > 0 && used >= limit.soft {
            match r.obuf_soft_since {
                None => r.obuf_soft_since = Some(now),
                Some(t) => soft_hit = now.saturating_duration_since(t).as_secs() > limit.soft_seconds,
            }
        } else {
            r.obuf_soft_since = None;
        }
        if hard_hit || soft_hit {
            log::warn!(
                "Client id={} addr={} (replica) scheduled to be closed ASAP for overcoming of output buffer limits ({used} bytes).",
                c.st.id,
                c.st.addr
            );
            srv.pubsub.limit_disconnections += 1;
            cut.push(r.idx);
        } else if r.state == LinkState::Online && now.saturating_duration_since(r.ack_at) > timeout {
            log::warn!("Disconnecting timedout replica (streaming sync): {}", c.st.addr);
            cut.push(r.idx);
        }
    }
    for idx in cut {
        if let Some(c) = clients.get_mut(idx) {
            c.st.close_asap = true;
            c.discard_pending();
            srv.kill_pending = true;
        }
        srv.repl.replicas.retain(|r| r.idx != idx);
    }
}
