//! The compact form behind the `listpack` encoding of small hashes and sets: every element
//! in one byte buffer, each as a LEB128 length followed by its bytes. One allocation per
//! collection instead of one or two per element, which is what makes millions of small
//! hashes (sessions, objects) cheap. Lookups scan linearly, so this form is only used below
//! the `*-max-listpack-*` thresholds (128 elements of at most 64 bytes by default).

/// A sequence of byte strings packed into one buffer.
#[derive(Debug, Clone, Default)]
pub struct Packed {
    buf: Vec<u8>,
    len: usize,
}

fn read_len(buf: &[u8], at: usize) -> (usize, usize) {
    let (mut n, mut shift, mut i) = (0usize, 0, at);
    loop {
        let b = buf[i];
        n |= ((b & 0x7f) as usize) << shift;
        i += 1;
        if b & 0x80 == 0 {
            return (n, i);
        }
        shift += 7;
    }
}

fn write_len(out: &mut Vec<u8>, mut n: usize) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

impl Packed {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Elements in order, each with the byte offset where its entry starts.
    pub fn entries(&self) -> Entries<'_> {
        Entries { buf: &self.buf, at: 0 }
    }

    /// Elements in order.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        self.entries().map(|(_, e)| e)
    }

    /// Appends an element.
    pub fn push(&mut self, e: &[u8]) {
        write_len(&mut self.buf, e.len());
        self.buf.extend_from_slice(e);
        self.len += 1;
    }

    /// The end offset of the entry starting at `at`.
    fn entry_end(&self, at: usize) -> usize {
        let (n, body) = read_len(&self.buf, at);
        body + n
    }

    /// Replaces the entry starting at `at` with `e`.
    pub fn replace_at(&mut self, at: usize, e: &[u8]) {
        let end = self.entry_end(at);
        let mut new = Vec::with_capacity(e.len() + 5);
        write_len(&mut new, e.len());
        new.extend_from_slice(e);
        self.buf.splice(at..end, new);
    }

    /// Removes `count` consecutive entries starting at offset `at`.
    pub fn remove_at(&mut self, at: usize, count: usize) {
        let mut end = at;
        for _ in 0..count {
            end = self.entry_end(end);
        }
        self.buf.drain(at..end);
        self.len -= count;
        if self.buf.capacity() > 2 * self.buf.len() + 64 {
            self.buf.shrink_to_fit();
        }
    }

    /// Heap bytes held.
    pub fn heap_size(&self) -> usize {
        self.buf.capacity()
    }
}

/// Iterator over `(offset, element)`.
pub struct Entries<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Iterator for Entries<'a> {
    type Item = (usize, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        if self.at >= self.buf.len() {
            return None;
        }
        let start = self.at;
        let (n, body) = read_len(self.buf, start);
        self.at = body + n;
        Some((start, &self.buf[body..body + n]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_replace_remove() {
        let mut p = Packed::default();
        let long = vec![7u8; 300];
        for e in [&b"a"[..], b"", &long, b"zz"] {
            p.push(e);
        }
        assert_eq!(p.iter().collect::<Vec<_>>(), [&b"a"[..], b"", &long, b"zz"]);
        let offs: Vec<usize> = p.entries().map(|(o, _)| o).collect();
        p.replace_at(offs[2], b"short");
        assert_eq!(p.iter().collect::<Vec<_>>(), [&b"a"[..], b"", b"short", b"zz"]);
        let offs: Vec<usize> = p.entries().map(|(o, _)| o).collect();
        p.remove_at(offs[1], 2);
        assert_eq!(p.iter().collect::<Vec<_>>(), [&b"a"[..], b"zz"]);
        assert_eq!(p.len(), 2);
        p.remove_at(0, 2);
        assert!(p.is_empty() && p.iter().next().is_none());
    }
}
