//! The replication backlog: the last `repl-backlog-size` bytes of the replication stream, so
//! a replica that lost its link for a moment continues with `+CONTINUE` from its offset
//! instead of a full sync. Offsets are Valkey's: the stream's n-th byte has offset n, and a
//! replica asks for the first byte it has not processed (`PSYNC <replid> <offset + 1>`).

use std::collections::VecDeque;

/// A bounded window over the replication stream.
#[derive(Debug)]
pub struct Backlog {
    buf: VecDeque<u8>,
    capacity: usize,
    /// Offset of the first byte in `buf` (Valkey's `repl_backlog->offset`).
    start: u64,
}

impl Backlog {
    /// An empty backlog whose next byte will have offset `next`.
    pub fn new(capacity: usize, next: u64) -> Backlog {
        Backlog { buf: VecDeque::new(), capacity: capacity.max(1), start: next }
    }

    /// Appends stream bytes, dropping the oldest past the capacity.
    pub fn append(&mut self, data: &[u8]) {
        if data.len() >= self.capacity {
            let skip = data.len() - self.capacity;
            self.start += (self.buf.len() + skip) as u64;
            self.buf.clear();
            self.buf.extend(&data[skip..]);
            return;
        }
        let over = (self.buf.len() + data.len()).saturating_sub(self.capacity);
        if over > 0 {
            self.buf.drain(..over);
            self.start += over as u64;
        }
        self.buf.extend(data);
    }

    /// Offset of the oldest byte held.
    pub fn first_offset(&self) -> u64 {
        self.start
    }

    /// Bytes held (INFO `repl_backlog_histlen`).
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Changes the capacity (CONFIG SET repl-backlog-size), keeping the newest bytes.
    pub fn resize(&mut self, capacity: usize) {
        self.capacity = capacity.max(1);
        let over = self.buf.len().saturating_sub(self.capacity);
        if over > 0 {
            self.buf.drain(..over);
            self.start += over as u64;
        }
    }

    /// Every byte from offset `from` on, or `None` when the backlog no longer (or does not
    /// yet) hold it. `from` one past the last byte is an empty continuation.
    pub fn since(&self, from: u64) -> Option<Vec<u8>> {
        let end = self.start + self.buf.len() as u64;
        if from < self.start || from > end {
            return None;
        }
        let skip = (from - self.start) as usize;
        let (a, b) = self.buf.as_slices();
        let mut out = Vec::with_capacity(self.buf.len() - skip);
        if skip < a.len() {
            out.extend_from_slice(&a[skip..]);
            out.extend_from_slice(b);
        } else {
            out.extend_from_slice(&b[skip - a.len()..]);
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_bytes_and_answers_ranges() {
        let mut b = Backlog::new(8, 1);
        b.append(b"abcd");
        assert_eq!(b.since(1).as_deref(), Some(&b"abcd"[..]));
        assert_eq!(b.since(3).as_deref(), Some(&b"cd"[..]));
        assert_eq!(b.since(5).as_deref(), Some(&b""[..]), "one past the end: nothing to send");
        assert_eq!(b.since(6), None, "ahead of the stream");
        b.append(b"efghij");
        assert_eq!(b.first_offset(), 3);
        assert_eq!(b.since(2), None, "dropped");
        assert_eq!(b.since(3).as_deref(), Some(&b"cdefghij"[..]));
        b.append(b"0123456789");
        assert_eq!(b.first_offset(), 13);
        assert_eq!(b.since(13).as_deref(), Some(&b"23456789"[..]));
        b.resize(4);
        assert_eq!(b.since(17).as_deref(), Some(&b"6789"[..]));
        assert_eq!(b.len(), 4);
    }
}
