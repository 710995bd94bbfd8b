//! What the node tells about its own behaviour beyond counters: error replies by code (INFO
//! errorstats), per-command latency histograms (INFO latencystats, LATENCY HISTOGRAM), the slow
//! log and the latency monitor. Dispatch calls [`after_command`] with each command's measured
//! duration; with the defaults that is a histogram increment and two comparisons.

pub mod errors;
pub mod histogram;
pub mod latency;
pub mod slowlog;

use bytes::Bytes;
use slab::Slab;

use super::client::Client;
use super::server::Server;
use crate::command::Entry;

/// The observers' state and the configuration they read per command.
#[derive(Default)]
pub struct Observe {
    pub errors: errors::ErrorStats,
    /// Indexed by `command::Entry::id`.
    pub histograms: Vec<Option<Box<histogram::Histogram>>>,
    pub slowlog: slowlog::SlowLog,
    pub latency: latency::LatencyMonitor,
    /// `slowlog-log-slower-than` (µs; negative: off), `slowlog-max-len`,
    /// `latency-monitor-threshold` (ms; 0: off), `latency-tracking`.
    pub slowlog_us: i64,
    pub slowlog_max: usize,
    pub monitor_ms: u64,
    pub histograms_on: bool,
}

impl Observe {
    pub fn configure(&mut self, config: &crate::config::Config) {
        self.slowlog_us = config.get_i64("slowlog-log-slower-than");
        self.slowlog_max = config.get_i64("slowlog-max-len").max(0) as usize;
        self.monitor_ms = config.get_i64("latency-monitor-threshold").max(0) as u64;
        self.histograms_on = config.get_bool("latency-tracking");
        if self.slowlog_max < self.slowlog.entries.len() {
            self.slowlog.entries.truncate(self.slowlog_max);
        }
    }

    /// Whether commands must be timed at all.
    pub fn timing(&self) -> bool {
        self.histograms_on || self.slowlog_us >= 0 || self.monitor_ms > 0
    }

    pub fn histogram(&self, id: usize) -> Option<&histogram::Histogram> {
        self.histograms.get(id).and_then(|h| h.as_deref())
    }

    /// CONFIG RESETSTAT.
    pub fn reset(&mut self) {
        self.errors.reset();
        self.histograms.clear();
    }
}

/// A command ran for `nanos`: histogram, slow log, latency monitor.
pub fn after_command(
    srv: &mut Server,
    clients: &Slab<Client>,
    idx: usize,
    entry: &Entry,
    args: &[Bytes],
    nanos: u64,
) {
    let ob = &mut srv.observe;
    if ob.histograms_on {
        if entry.id >= ob.histograms.len() {
            ob.histograms.resize_with(entry.id + 1, || None);
        }
        ob.histograms[entry.id].get_or_insert_with(Default::default).record(nanos);
    }
    let micros = nanos / 1000;
    let slow = ob.slowlog_us >= 0 && micros >= ob.slowlog_us as u64;
    let spike = ob.monitor_ms > 0 && micros / 1000 >= ob.monitor_ms;
    if !slow && !spike {
        return;
    }
    let now = srv.now_ms / 1000;
    // Commands a script runs are part of its EVAL, which is logged as a whole.
    let Some(c) = clients.get(idx).filter(|c| c.st.id != crate::scripting::eval::SCRIPT_CLIENT_ID) else {
        return;
    };
    if slow && !entry.meta.has_flag("skip_slowlog") {
        let name = c.st.name.as_ref();
        ob.slowlog.push(args, micros, now, &c.st.addr, name, ob.slowlog_max);
    }
    if spike {
        let event = if entry.meta.has_flag("fast") { "fast-command" } else { "command" };
        ob.latency.add(event, now, micros / 1000);
    }
}
