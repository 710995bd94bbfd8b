//! Requests held back and run later: writes to a slot whose migration is handing over, and
//! commands held by CLIENT PAUSE (`exec::pause`). Both keep the request first in its
//! client's queue (`deferred`); here the executor puts those clients back in the ready list
//! when the hand-off or the pause ends. A child module of the executor.

use std::time::Instant;

use super::Executor;

impl Executor {
    /// Slot migration work; when a hand-off ends, clients whose requests were deferred run
    /// them again.
    pub(super) fn cluster_tick(&mut self) {
        if self.srv.cluster.is_none() {
            return;
        }
        let handed_over = crate::cluster::migrate::tick(&mut self.srv, &self.clients);
        crate::cluster::bus::announce_handoffs(&mut self.srv);
        if handed_over {
            self.requeue_deferred();
        }
    }

    /// CLIENT PAUSE ended (its deadline, or UNPAUSE): the held requests run.
    pub(super) fn pause_tick(&mut self) {
        if self.srv.pause.is_some_and(|p| Instant::now() >= p.until) {
            crate::exec::pause::end(&mut self.srv);
        }
        if std::mem::take(&mut self.srv.pause_ended) {
            self.requeue_deferred();
        }
    }

    /// Clients whose request was deferred (slot hand-off, pause) try it again.
    fn requeue_deferred(&mut self) {
        for (idx, c) in self.clients.iter_mut() {
            if c.st.deferred {
                c.st.deferred = false;
                if !c.queued {
                    c.queued = true;
                    self.lp.ready.push(idx);
                }
            }
        }
    }
}
