//! Per-slot usage for `CLUSTER SLOT-STATS` (Valkey 8): the CPU time, request bytes and reply
//! bytes of the commands that touch each slot, so an operator can find the hot slots to move.
//!
//! Valkey keeps these counters only while `cluster-slot-stats-enabled` is on, and so does
//! Shoal: the table (24 bytes per slot, 384 KiB) is allocated the first time it is turned on,
//! and while it is off a command costs one branch here. Key counts need no table: they come
//! from the per-slot keyspace tables.
//!
//! What is counted, as Valkey does: a command whose keys hash to one slot adds its execution
//! time, the RESP size of its request and the bytes of its reply to that slot (a command with
//! no key, or refused before it ran, adds nothing). The counters of a slot are cleared when
//! the slot leaves the node, and all of them by `CONFIG RESETSTAT`.

use bytes::Bytes;

use crate::command::keys_of::command_keys;
use crate::command::meta::CommandMeta;
use crate::exec::Server;
use crate::keyspace::slot::{key_slot, SLOTS};

/// One slot's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub cpu_ns: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

/// The counters of every slot, and whether they are being kept.
#[derive(Debug, Default)]
pub struct SlotStats {
    enabled: bool,
    table: Option<Box<[Usage]>>,
}

impl SlotStats {
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// `cluster-slot-stats-enabled`: turning it on allocates the table once; turning it off
    /// stops counting (and hides the counters, as Valkey).
    pub fn set_enabled(&mut self, on: bool) {
        self.enabled = on;
        if on && self.table.is_none() {
            self.table = Some(vec![Usage::default(); SLOTS].into_boxed_slice());
        }
    }

    pub fn usage(&self, slot: u16) -> Usage {
        self.table.as_ref().and_then(|t| t.get(slot as usize).copied()).unwrap_or_default()
    }

    fn add(&mut self, slot: u16, add: Usage) {
        if let Some(u) = self.table.as_mut().and_then(|t| t.get_mut(slot as usize)) {
            u.cpu_ns += add.cpu_ns;
            u.bytes_in += add.bytes_in;
            u.bytes_out += add.bytes_out;
        }
    }

    /// Clears one slot (it left this node).
    pub fn reset_slot(&mut self, slot: u16) {
        if let Some(u) = self.table.as_mut().and_then(|t| t.get_mut(slot as usize)) {
            *u = Usage::default();
        }
    }

    /// `CONFIG RESETSTAT`.
    pub fn reset(&mut self) {
        if let Some(t) = self.table.as_mut() {
            t.fill(Usage::default());
        }
    }
}

/// The RESP size of a request as a client sends it (`*<n>`, then `$<len>` and the bytes of
/// each argument).
fn request_bytes(args: &[Bytes]) -> u64 {
    let digits = |n: usize| itoa::Buffer::new().format(n).len() as u64;
    let head = 3 + digits(args.len());
    args.iter().map(|a| 5 + digits(a.len()) + a.len() as u64).sum::<u64>() + head
}

/// After a command ran: adds its time (`nanos`, when measured), request and reply bytes to
/// the slot of its keys. Commands without keys, or whose keys span slots, add nothing.
pub fn after_command(srv: &mut Server, meta: &CommandMeta, args: &[Bytes], nanos: Option<u64>, reply: usize) {
    let Some(cl) = srv.cluster.as_mut() else { return };
    if !cl.slot_stats.enabled() {
        return;
    }
    let mut keys = command_keys(meta, args).into_iter().map(|k| key_slot(&args[k.pos]));
    let Some(slot) = keys.next() else { return };
    if keys.any(|s| s != slot) {
        return;
    }
    let usage = Usage { cpu_ns: nanos.unwrap_or(0), bytes_in: request_bytes(args), bytes_out: reply as u64 };
    cl.slot_stats.add(slot, usage);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_size_is_the_resp_encoding() {
        let args: Vec<Bytes> = ["SET", "key", "0123456789"].iter().map(|s| Bytes::from(*s)).collect();
        let wire = "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$10\r\n0123456789\r\n";
        assert_eq!(request_bytes(&args), wire.len() as u64);
    }

    #[test]
    fn counters_are_kept_only_while_enabled() {
        let mut s = SlotStats::default();
        s.add(7, Usage { cpu_ns: 1, bytes_in: 2, bytes_out: 3 });
        assert_eq!(s.usage(7), Usage::default(), "nothing kept before the first enable");
        s.set_enabled(true);
        s.add(7, Usage { cpu_ns: 1, bytes_in: 2, bytes_out: 3 });
        s.add(7, Usage { cpu_ns: 1, bytes_in: 2, bytes_out: 3 });
        assert_eq!(s.usage(7), Usage { cpu_ns: 2, bytes_in: 4, bytes_out: 6 });
        s.reset_slot(7);
        assert_eq!(s.usage(7), Usage::default());
        s.add(9, Usage { cpu_ns: 5, bytes_in: 0, bytes_out: 0 });
        s.reset();
        assert_eq!(s.usage(9), Usage::default());
    }
}
