//! Serving other clients from inside a busy script (Valkey's `processEventsWhileBlocked`).
//!
//! A script past `busy-reply-threshold` calls [`serve_while_busy`] from its instruction hook,
//! deep inside the EVAL/FCALL command the executor is running. The server state and the
//! clients are reachable there only through the command's context (`Ctx`), so this module
//! takes them from the caller and reaches the rest of the loop, the [`Loop`], through a pointer
//! the executor leaves before each command: the two are disjoint parts of the executor.
//!
//! One call is one non-blocking turn: poll, collect I/O that came home, and run what ready
//! clients sent. Dispatch refuses everything but the `allow_busy` commands with `-BUSY` (see
//! `dispatch`), so nothing here can touch the keyspace. Reads and writes are done inline; the
//! script's caller, blocked clients, replicas and the primary's link wait for the script, as
//! do closing connections: their turn comes in the executor's loop.

use std::cell::Cell;
use std::time::Duration;

use slab::Slab;

use super::{events, Executor, Loop};
use crate::exec::client::Client;
use crate::exec::server::Server;
use crate::net::{Done, PollJob};

/// Requests run per client per turn, so one pipelining client cannot hold the script up.
const REQUESTS_PER_TURN: usize = 64;

std::thread_local! {
    /// The executor's loop while it runs a command (null otherwise).
    static LOOP: Cell<*mut Loop> = const { Cell::new(std::ptr::null_mut()) };
}

impl Executor {
    /// Leaves the loop where a busy script finds it, for the command about to run.
    pub(super) fn lend_loop(&mut self) {
        LOOP.set(&raw mut self.lp);
    }

    /// The command returned: the loop is the executor's alone again.
    pub(super) fn take_loop_back(&mut self) {
        LOOP.set(std::ptr::null_mut());
    }
}

/// One turn of serving other clients while the command of client `caller` runs a script.
/// `entering`: the first turn, which also picks up the clients the executor had ready when the
/// script started (their events were consumed; the executor's list of them is out of reach).
pub fn serve_while_busy(srv: &mut Server, clients: &mut Slab<Client>, caller: usize, entering: bool) {
    let p = LOOP.get();
    if p.is_null() {
        return;
    }
    // SAFETY: `lend_loop` stored this pointer from the executor's `&mut self` right before the
    // running command was dispatched, and `take_loop_back` clears it when that command returns;
    // until then the executor touches neither `lp` nor anything else but through the command's
    // own `&mut Server` / `&mut Slab<Client>`, which are other fields. This runs on the executor
    // thread inside that command, and not re-entrantly (nothing below runs a script), so this
    // is the only reference to the loop.
    let lp = unsafe { &mut *p };
    if let Some(mut poller) = lp.poller.take() {
        let PollJob { poll, events } = &mut *poller;
        let _ = poll.poll(events, Some(Duration::ZERO));
        lp.handle_events(&poller.events, srv, clients);
        lp.poller = Some(poller);
    }
    lp.collect(srv, clients);
    if entering {
        for (idx, c) in clients.iter_mut() {
            let pending = c.io.as_ref().is_some_and(|io| !io.parsed.is_empty() || io.has_output());
            if !c.queued && (c.readable || c.writable || pending) {
                c.queued = true;
                lp.ready.push(idx);
            }
        }
    }
    let ready = std::mem::take(&mut lp.ready);
    for idx in ready {
        let done = idx != caller && serve_client(lp, srv, clients, idx);
        match clients.get_mut(idx) {
            Some(_) if !done => lp.ready.push(idx),
            Some(c) => c.queued = false,
            None => {}
        }
    }
}

/// Runs what one client sent and does its I/O inline. Returns false when the client still has
/// work for the executor's loop (it then stays in the ready list).
fn serve_client(lp: &mut Loop, srv: &mut Server, clients: &mut Slab<Client>, idx: usize) -> bool {
    let Some(c) = clients.get_mut(idx) else { return true };
    if c.st.master || c.st.replica || c.st.blocked || c.st.close_asap || c.st.close_after_reply {
        return false;
    }
    let Some(io) = c.io.as_mut() else { return false };
    if io.proto_error.is_some() || io.eof || io.qbuf_exceeded {
        return false;
    }
    c.flush_pending();
    for _ in 0..REQUESTS_PER_TURN {
        let c = &mut clients[idx];
        if c.st.close_after_reply || c.st.close_asap || c.st.deferred {
            break;
        }
        let Some(req) = c.io.as_mut().and_then(|io| io.parsed.pop_front()) else { break };
        let authed = c.st.authenticated;
        crate::exec::dispatch::dispatch_parsed(
            srv,
            clients,
            &mut lp.busy_reply,
            idx,
            &req.args,
            req.cmd,
            req.key,
        );
        let c = &mut clients[idx];
        if c.st.deferred {
            if let Some(io) = c.io.as_mut() {
                io.parsed.push_front(req);
            }
            break;
        }
        if c.st.authenticated != authed || !c.st.authenticated {
            // As in the executor: the gate follows AUTH, and unauthenticated requests are
            // parsed one at a time.
            let gate = events::read_gate(srv, !c.st.authenticated);
            if let Some(io) = c.io.as_mut() {
                io.gate = gate;
                io.parse();
            }
        }
    }
    let c = &mut clients[idx];
    let Some(io) = c.io.as_mut() else { return false };
    if !lp.busy_reply.is_empty() {
        let chunk = lp.busy_reply.buf.split().freeze();
        srv.stats.net_output_bytes += chunk.len() as u64;
        io.queue(chunk);
    }
    if io.has_output() && (!io.write_blocked || c.writable) {
        c.writable = false;
        io.write();
    }
    if c.readable && io.parsed.is_empty() && !io.read_closed() && !c.st.close_after_reply {
        c.readable = false;
        io.read_and_parse();
        if io.more_to_read {
            c.readable = true;
        }
    }
    // Done for now unless something is left: requests (served next turn), output, a close.
    io.parsed.is_empty()
        && !io.has_output()
        && !c.readable
        && !io.eof
        && io.proto_error.is_none()
        && !c.st.close_after_reply
        && !c.st.close_asap
}

impl Loop {
    /// Takes home the I/O jobs (and the poller) the I/O threads finished.
    pub(super) fn collect(&mut self, srv: &mut Server, clients: &mut Slab<Client>) {
        let mut polled = None;
        let ready = &mut self.ready;
        self.io.collect(|done| match done {
            Done::Io { token, io } => {
                if let Some(c) = clients.get_mut(token) {
                    if io.more_to_read {
                        c.readable = true;
                    }
                    c.io = Some(io);
                    if !c.queued {
                        c.queued = true;
                        ready.push(token);
                    }
                }
            }
            Done::Poll(p) => polled = Some(p),
        });
        if let Some(poller) = polled {
            self.handle_events(&poller.events, srv, clients);
            self.poller = Some(poller);
        }
    }
}
