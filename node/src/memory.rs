//! Memory accounting: a counting wrapper around the global allocator, so `used_memory` (INFO,
//! and the `maxmemory` check the executor makes before every command) is a live figure that
//! costs a few relaxed loads to read.
//!
//! Why a global allocator and not per-value estimates: every thread allocates and frees (I/O
//! threads parse requests into buffers, build replies and drop garbage the executor hands
//! them), and Valkey's `used_memory` likewise counts everything `zmalloc` handed out. Counting
//! at the allocator sees all of it without any cooperation from the code that allocates.
//!
//! What is counted is the allocator's *chunk* size for each request, not the requested size:
//! with glibc a 100-byte request occupies a 112-byte chunk, and eviction that ignored that
//! would let RSS drift 10–20% past `maxmemory` on small keys (see `docs/eviction.md`).
//!
//! Each thread adds to its own cache-line-padded counter (threads are spread over
//! [`SLOTS`] counters; two threads sharing one stay correct because updates are atomic).
//! Memory freed on another thread than the one that allocated it makes one counter go down
//! and another up; only the sum means anything.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};

/// Counters threads are spread over.
const SLOTS: usize = 32;

#[repr(align(64))]
struct Padded(AtomicI64);

#[allow(clippy::declare_interior_mutable_const)]
const ZERO: Padded = Padded(AtomicI64::new(0));
static COUNTERS: [Padded; SLOTS] = [ZERO; SLOTS];
/// Counters handed out so far (only the first `min(NEXT, SLOTS)` can be non-zero).
static NEXT: AtomicUsize = AtomicUsize::new(0);
/// Set by the first allocation through [`Counting`]: the figure is live.
static ACTIVE: AtomicBool = AtomicBool::new(false);

std::thread_local! {
    /// This thread's counter (`usize::MAX`: not assigned yet). A const initializer and no
    /// destructor, so reading it never allocates (this runs inside the allocator).
    static SLOT: Cell<usize> = const { Cell::new(usize::MAX) };
}

fn slot() -> usize {
    SLOT.try_with(|s| {
        let v = s.get();
        if v != usize::MAX {
            return v;
        }
        let v = NEXT.fetch_add(1, Ordering::Relaxed) % SLOTS;
        s.set(v);
        v
    })
    // During thread teardown the thread-local may be gone: use the shared first counter.
    .unwrap_or(0)
}

#[inline]
fn add(n: i64) {
    COUNTERS[slot()].0.fetch_add(n, Ordering::Relaxed);
}

/// Bytes glibc's malloc takes for a request of `size` bytes: the 8-byte header, rounded up to
/// 16, at least 32 (`request2size`). Large requests are mmapped whole pages.
#[inline]
pub const fn chunk_size(size: usize) -> usize {
    const MMAP_THRESHOLD: usize = 128 * 1024;
    if size >= MMAP_THRESHOLD {
        return (size + 8 + 4095) & !4095;
    }
    let c = (size + 8 + 15) & !15;
    if c < 32 {
        32
    } else {
        c
    }
}

/// A global allocator that forwards to `A` and counts what it hands out.
pub struct Counting<A>(pub A);

// SAFETY: every method forwards to the wrapped allocator with the caller's arguments unchanged
// and only adds bookkeeping on atomics, so `A`'s guarantees carry over.
unsafe impl<A: GlobalAlloc> GlobalAlloc for Counting<A> {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is; the caller upholds `alloc`'s contract.
        let p = unsafe { self.0.alloc(layout) };
        if !p.is_null() {
            add(chunk_size(layout.size()) as i64);
        }
        p
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is.
        let p = unsafe { self.0.alloc_zeroed(layout) };
        if !p.is_null() {
            add(chunk_size(layout.size()) as i64);
        }
        p
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is; `ptr` came from this allocator with `layout`.
        unsafe { self.0.dealloc(ptr, layout) };
        add(-(chunk_size(layout.size()) as i64));
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded as is.
        let p = unsafe { self.0.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            add(chunk_size(new_size) as i64 - chunk_size(layout.size()) as i64);
        }
        p
    }
}

impl<A> Counting<A> {
    /// Wraps `inner`. Marks the accounting live on first use by the process.
    pub const fn new(inner: A) -> Self {
        Counting(inner)
    }
}

/// Marks the counting allocator as installed (the binary calls this first thing in `main`;
/// processes without it, like unit tests, fall back to the C allocator's statistics).
pub fn mark_installed() {
    ACTIVE.store(true, Ordering::Relaxed);
}

/// Whether [`used`] is the live count from [`Counting`].
pub fn is_live() -> bool {
    ACTIVE.load(Ordering::Relaxed)
}

/// Bytes allocated now, over every thread, as counted by [`Counting`] (0 when it is not the
/// global allocator).
#[inline]
pub fn counted() -> u64 {
    let n = NEXT.load(Ordering::Relaxed).min(SLOTS);
    let sum: i64 = COUNTERS[..n].iter().map(|c| c.0.load(Ordering::Relaxed)).sum();
    sum.max(0) as u64
}

/// `used_memory`: the live count when the counting allocator is installed, else what glibc
/// reports in use, else the RSS.
pub fn used() -> u64 {
    if is_live() {
        return counted();
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallinfo2 takes no arguments and only reads the allocator's statistics.
        let mi = unsafe { libc::mallinfo2() };
        let used = (mi.uordblks + mi.hblkhd) as u64;
        if used > 0 {
            return used;
        }
    }
    rss_bytes()
}

/// Resident set size from `/proc/self/statm` (0 where unavailable).
pub fn rss_bytes() -> u64 {
    let pages = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .unwrap_or(0);
    pages * page_size()
}

fn page_size() -> u64 {
    static PAGE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *PAGE.get_or_init(|| {
        // SAFETY: sysconf only reads a system constant.
        let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if n > 0 {
            n as u64
        } else {
            4096
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glibc_chunk_sizes() {
        assert_eq!(chunk_size(0), 32);
        assert_eq!(chunk_size(24), 32);
        assert_eq!(chunk_size(25), 48);
        assert_eq!(chunk_size(100), 112);
        assert_eq!(chunk_size(120), 128);
        assert_eq!(chunk_size(1 << 20), (1 << 20) + 4096);
    }

    #[test]
    fn counts_through_the_wrapper() {
        let a = Counting::new(std::alloc::System);
        let layout = Layout::from_size_align(1000, 8).expect("layout");
        let before = counted();
        // SAFETY: a plain allocation, freed below with the same layout.
        let p = unsafe { a.alloc(layout) };
        assert!(!p.is_null());
        // Other test threads may allocate meanwhile through the real global allocator, which
        // is not the wrapper here, so the count moves only by what this test does.
        assert_eq!(counted() - before, chunk_size(1000) as u64);
        // SAFETY: `p` came from `a.alloc(layout)`.
        let p = unsafe { a.realloc(p, layout, 5000) };
        assert_eq!(counted() - before, chunk_size(5000) as u64);
        // SAFETY: `p` is the reallocated block of 5000 bytes.
        unsafe { a.dealloc(p, Layout::from_size_align(5000, 8).expect("layout")) };
        assert_eq!(counted(), before);
    }
}
