//! MONITOR: clients that watch every command the node runs, as Valkey's
//! `replicationFeedMonitors` shows them: `+<unix time with µs> [<db> <client>] "arg" ...`,
//! secrets redacted, admin commands left out, the commands a script calls shown from `lua`.

use bytes::Bytes;
use slab::Slab;

use super::client::Client;
use super::server::Server;

/// The client ids of the monitors, by slab index.
#[derive(Default)]
pub struct Monitors {
    pub clients: Vec<(usize, u64)>,
}

impl Monitors {
    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }

    pub fn add(&mut self, idx: usize, id: u64) {
        if !self.clients.contains(&(idx, id)) {
            self.clients.push((idx, id));
        }
    }

    pub fn remove(&mut self, idx: usize) {
        self.clients.retain(|&(i, _)| i != idx);
    }
}

/// `sdscatrepr`: the argument in double quotes with C escapes.
fn quote(out: &mut Vec<u8>, a: &[u8]) {
    out.push(b'"');
    for &b in a {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            7 => out.extend_from_slice(b"\\a"),
            8 => out.extend_from_slice(b"\\b"),
            0x20..=0x7e => out.push(b),
            _ => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
        }
    }
    out.push(b'"');
}

/// Sends the command client `idx` ran (or, `before`, is about to run) to every monitor. The
/// scripting commands (`skip_monitor`) are shown before they run, so their calls follow them
/// as in Valkey; the others after; admin commands never.
pub fn feed(
    srv: &mut Server,
    clients: &mut Slab<Client>,
    idx: usize,
    meta: &crate::command::meta::CommandMeta,
    args: &[Bytes],
    before: bool,
) {
    if meta.has_flag("skip_monitor") != before || meta.has_flag("admin") {
        return;
    }
    let Some(c) = clients.get(idx) else { return };
    let who = if c.st.id == crate::scripting::eval::SCRIPT_CLIENT_ID { "lua" } else { c.st.addr.as_str() };
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or(0);
    let mut line =
        format!("+{}.{:06} [{} {who}]", micros / 1_000_000, micros % 1_000_000, c.st.db).into_bytes();
    let secret = super::observe::slowlog::redacted(args);
    for (i, a) in args.iter().enumerate() {
        line.push(b' ');
        if secret.contains(&i) {
            quote(&mut line, b"(redacted)");
        } else {
            quote(&mut line, a);
        }
    }
    line.extend_from_slice(b"\r\n");
    let line = Bytes::from(line);
    let mut gone = Vec::new();
    for &(m, id) in &srv.monitors.clients {
        match clients.get_mut(m).filter(|c| c.st.id == id) {
            Some(c) => {
                c.send(line.clone());
                srv.pubsub.dirty.push(m);
            }
            None => gone.push(m),
        }
    }
    for m in gone {
        srv.monitors.remove(m);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_quoted_like_sdscatrepr() {
        let mut out = Vec::new();
        quote(&mut out, b"a \"b\"\\\n\x01\xff");
        assert_eq!(out, b"\"a \\\"b\\\"\\\\\\n\\x01\\xff\"".to_vec());
    }
}
