//! I/O threads: stateless workers that read + parse and write for the executor, and drop
//! garbage it hands them. Each worker has its own bounded job ring (the executor is the only
//! producer, so a client's jobs run in order on one thread); completions go back through one
//! shared bounded queue. Waiting is spin-then-park on both sides, and a side is woken only
//! when it has parked, so a busy pipeline costs no wakeups at all.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle, Thread};
use std::time::{Duration, Instant};

use crossbeam_queue::ArrayQueue;
use crossbeam_utils::CachePadded;

use super::conn::ConnIo;

/// Jobs one worker's ring holds (Valkey's `IO_JOB_QUEUE_SIZE`).
pub const RING: usize = 2048;
/// How long a worker spins for more work before it parks.
const WORKER_SPIN: Duration = Duration::from_micros(50);

/// Work for an I/O thread.
pub enum Job {
    /// Write pending replies (if `write`), then read and parse (if `read`).
    Io {
        token: usize,
        io: Box<ConnIo>,
        write: bool,
        read: bool,
    },
    /// Drop something large off the executor.
    Free(Box<dyn Send>),
}

/// A finished I/O job: the connection's I/O half comes home.
pub struct Done {
    pub token: usize,
    pub io: Box<ConnIo>,
}

/// What the executor needs to be woken when it sleeps.
pub struct ExecWake {
    pub sleeping: CachePadded<AtomicBool>,
    pub waker: mio::Waker,
}

/// Counters shared with INFO.
#[derive(Default)]
pub struct IoStats {
    pub reads: CachePadded<AtomicU64>,
    pub writes: CachePadded<AtomicU64>,
    pub freed: CachePadded<AtomicU64>,
}

struct Worker {
    ring: Arc<ArrayQueue<Job>>,
    parked: Arc<CachePadded<AtomicBool>>,
    thread: Thread,
    handle: Option<JoinHandle<()>>,
}

/// The pool of I/O threads, driven by the executor.
pub struct IoPool {
    workers: Vec<Worker>,
    done: Arc<ArrayQueue<Done>>,
    wake: Arc<ExecWake>,
    stop: Arc<AtomicBool>,
    pub stats: Arc<IoStats>,
    /// Jobs dispatched whose completion has not been collected yet.
    pub inflight: usize,
}

impl IoPool {
    /// Starts `n` worker threads (`io-threads` minus the executor).
    pub fn new(n: usize, wake: Arc<ExecWake>) -> std::io::Result<IoPool> {
        let done = Arc::new(ArrayQueue::new((n.max(1)) * RING));
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(IoStats::default());
        let mut workers = Vec::with_capacity(n);
        for i in 0..n {
            let ring = Arc::new(ArrayQueue::new(RING));
            let parked = Arc::new(CachePadded::new(AtomicBool::new(false)));
            let ctx = WorkerCtx {
                ring: ring.clone(),
                parked: parked.clone(),
                done: done.clone(),
                wake: wake.clone(),
                stop: stop.clone(),
                stats: stats.clone(),
            };
            let handle = thread::Builder::new()
                .name(format!("io_thd_{}", i + 1))
                .spawn(move || ctx.run())?;
            let thread = handle.thread().clone();
            workers.push(Worker {
                ring,
                parked,
                thread,
                handle: Some(handle),
            });
        }
        Ok(IoPool {
            workers,
            done,
            wake,
            stop,
            stats,
            inflight: 0,
        })
    }

    /// Number of worker threads.
    pub fn len(&self) -> usize {
        self.workers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.workers.is_empty()
    }

    /// Hands a job to worker `w`. On a full ring the job is returned and the caller does the
    /// work itself, as Valkey's main thread does.
    pub fn submit(&mut self, w: usize, job: Job) -> Result<(), Job> {
        let is_io = matches!(job, Job::Io { .. });
        if is_io && self.inflight >= self.done.capacity() {
            return Err(job);
        }
        let worker = &self.workers[w % self.workers.len()];
        worker.ring.push(job)?;
        if is_io {
            self.inflight += 1;
        }
        // Pairs with the fence in `WorkerCtx::park`: either the worker sees the job before it
        // parks, or we see `parked` and wake it.
        std::sync::atomic::fence(Ordering::SeqCst);
        if worker.parked.load(Ordering::Relaxed) {
            worker.parked.store(false, Ordering::Relaxed);
            worker.thread.unpark();
        }
        Ok(())
    }

    /// Collects finished jobs.
    pub fn collect(&mut self, mut f: impl FnMut(Done)) -> usize {
        let mut n = 0;
        while let Some(d) = self.done.pop() {
            self.inflight -= 1;
            n += 1;
            f(d);
        }
        n
    }

    /// True when completions are waiting.
    pub fn has_done(&self) -> bool {
        !self.done.is_empty()
    }

    /// The executor is about to block in `epoll_wait`: returns false if a completion is already
    /// waiting (then it must not block). Call [`IoPool::awake`] after the wait.
    pub fn prepare_sleep(&self) -> bool {
        self.wake.sleeping.store(true, Ordering::SeqCst);
        std::sync::atomic::fence(Ordering::SeqCst);
        if self.has_done() {
            self.wake.sleeping.store(false, Ordering::Relaxed);
            return false;
        }
        true
    }

    pub fn awake(&self) {
        self.wake.sleeping.store(false, Ordering::Relaxed);
    }
}

impl Drop for IoPool {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for w in &mut self.workers {
            w.thread.unpark();
            if let Some(h) = w.handle.take() {
                let _ = h.join();
            }
        }
    }
}

struct WorkerCtx {
    ring: Arc<ArrayQueue<Job>>,
    parked: Arc<CachePadded<AtomicBool>>,
    done: Arc<ArrayQueue<Done>>,
    wake: Arc<ExecWake>,
    stop: Arc<AtomicBool>,
    stats: Arc<IoStats>,
}

impl WorkerCtx {
    fn run(self) {
        let mut idle_since: Option<Instant> = None;
        while !self.stop.load(Ordering::Relaxed) {
            match self.ring.pop() {
                Some(job) => {
                    idle_since = None;
                    self.handle(job);
                }
                None => {
                    let since = *idle_since.get_or_insert_with(Instant::now);
                    if since.elapsed() < WORKER_SPIN {
                        std::hint::spin_loop();
                    } else {
                        self.park();
                        idle_since = None;
                    }
                }
            }
        }
    }

    fn park(&self) {
        self.parked.store(true, Ordering::SeqCst);
        std::sync::atomic::fence(Ordering::SeqCst);
        while self.ring.is_empty() && !self.stop.load(Ordering::Relaxed) {
            thread::park();
        }
        self.parked.store(false, Ordering::Relaxed);
    }

    fn handle(&self, job: Job) {
        match job {
            Job::Io {
                token,
                mut io,
                write,
                read,
            } => {
                if write {
                    io.write();
                    self.stats.writes.fetch_add(1, Ordering::Relaxed);
                }
                if read {
                    io.read_and_parse();
                    self.stats.reads.fetch_add(1, Ordering::Relaxed);
                }
                // Cannot fail: the executor never has more jobs in flight than this queue holds.
                let mut item = Done { token, io };
                while let Err(back) = self.done.push(item) {
                    item = back;
                    std::hint::spin_loop();
                }
                std::sync::atomic::fence(Ordering::SeqCst);
                if self.wake.sleeping.load(Ordering::Relaxed) {
                    self.wake.sleeping.store(false, Ordering::Relaxed);
                    let _ = self.wake.waker.wake();
                }
            }
            Job::Free(garbage) => {
                drop(garbage);
                self.stats.freed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}
