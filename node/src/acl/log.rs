//! The ACL log (ACL LOG): recent refusals and failed authentications, newest first. As in
//! Valkey, a refusal like one of the last ten entries (same reason, context, object and user,
//! within 60 s) bumps that entry's count and moves it to the front instead of adding one.

use std::collections::VecDeque;

use super::Denied;
use crate::protocol::Reply;

/// Entries closer than this are grouped (Valkey's `ACL_LOG_GROUPING_MAX_TIME_DELTA`).
const GROUPING_MS: i64 = 60_000;

/// Where the refused command ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    Toplevel,
    Multi,
    Lua,
}

impl Context {
    fn name(self) -> &'static str {
        match self {
            Context::Toplevel => "toplevel",
            Context::Multi => "multi",
            Context::Lua => "lua",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub count: u64,
    pub reason: Denied,
    pub context: Context,
    pub object: Vec<u8>,
    pub username: Vec<u8>,
    /// Last update, Unix ms.
    pub ctime: i64,
    pub cinfo: String,
    pub entry_id: i64,
    pub created: i64,
}

#[derive(Debug)]
pub struct AclLog {
    entries: VecDeque<Entry>,
    next_id: i64,
    /// `acllog-max-len`.
    pub max_len: usize,
}

impl Default for AclLog {
    fn default() -> Self {
        AclLog { entries: VecDeque::new(), next_id: 0, max_len: 128 }
    }
}

impl AclLog {
    /// Adds or merges an entry (Valkey's `addACLLogEntry`).
    pub fn add(&mut self, e: Entry) {
        let found = self.entries.iter().take(10).position(|c| {
            c.reason == e.reason
                && c.context == e.context
                && (c.ctime - e.ctime).abs() <= GROUPING_MS
                && c.object == e.object
                && c.username == e.username
        });
        if let Some(i) = found {
            let Some(mut m) = self.entries.remove(i) else { return };
            m.cinfo = e.cinfo;
            m.ctime = e.ctime;
            m.count += 1;
            self.entries.push_front(m);
            return;
        }
        let mut e = e;
        e.entry_id = self.next_id;
        self.next_id += 1;
        self.entries.push_front(e);
        self.entries.truncate(self.max_len);
    }

    pub fn reset(&mut self) {
        self.entries.clear();
    }

    pub fn trim(&mut self) {
        self.entries.truncate(self.max_len);
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// ACL LOG [count]: the newest `count` entries as maps of ten fields.
    pub fn reply(&self, out: &mut Reply, count: usize, now_ms: i64) {
        let n = count.min(self.entries.len());
        out.array(n);
        for e in self.entries.iter().take(n) {
            out.map(10);
            out.bulk(b"count");
            out.int(e.count as i64);
            out.bulk(b"reason");
            out.bulk(e.reason.reason().as_bytes());
            out.bulk(b"context");
            out.bulk(e.context.name().as_bytes());
            out.bulk(b"object");
            out.bulk(&e.object);
            out.bulk(b"username");
            out.bulk(&e.username);
            out.bulk(b"age-seconds");
            out.double((now_ms - e.ctime) as f64 / 1000.0);
            out.bulk(b"client-info");
            out.bulk(e.cinfo.as_bytes());
            out.bulk(b"entry-id");
            out.int(e.entry_id);
            out.bulk(b"timestamp-created");
            out.int(e.created);
            out.bulk(b"timestamp-last-updated");
            out.int(e.ctime);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(obj: &[u8], t: i64) -> Entry {
        Entry {
            count: 1,
            reason: Denied::Cmd,
            context: Context::Toplevel,
            object: obj.to_vec(),
            username: b"u".to_vec(),
            ctime: t,
            cinfo: String::new(),
            entry_id: 0,
            created: t,
        }
    }

    #[test]
    fn groups_similar_entries() {
        let mut log = AclLog::default();
        log.add(entry(b"get", 0));
        log.add(entry(b"set", 1));
        log.add(entry(b"get", 2));
        assert_eq!(log.len(), 2);
        assert_eq!(log.entries[0].count, 2);
        assert_eq!(log.entries[0].entry_id, 0);
        log.add(entry(b"get", 100_000));
        assert_eq!(log.len(), 3);
        assert_eq!(log.entries[0].entry_id, 2);
    }
}
