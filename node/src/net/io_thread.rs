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
    Io { token: usize, io: Box<ConnIo>, write: bool, read: bool },
    /// Run a non-blocking `epoll_wait` for the executor (poll offload).
    Poll(Box<PollJob>),
    /// Drop something large off the executor.
    Free(Box<dyn Send>),
}

/// The executor's poller, moved to an I/O thread while it runs `epoll_wait` there. Only one
/// exists, so at most one thread polls at a time.
pub struct PollJob {
    pub poll: mio::Poll,
    pub events: mio::Events,
}

/// A finished job coming home.
pub enum Done {
    /// A connection's I/O half.
    Io { token: usize, io: Box<ConnIo> },
    /// The poller, with the events it found.
    Poll(Box<PollJob>),
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
    pub polls: CachePadded<AtomicU64>,
}

struct Worker {
    ring: Arc<ArrayQueue<Job>>,
    parked: Arc<CachePadded<AtomicBool>>,
    thread: Thread,
    handle: Option<JoinHandle<()>>,
}

/// The pool of I/O threads, driven by the executor.
///
/// `limit` workers may exist (the `io-threads` setting minus the executor); of those, only
/// the first `active` receive jobs. The executor raises and lowers `active` with the load
/// (`exec::scaler`); idle workers are parked and cost nothing. `active` never exceeds the
/// cores this process may run on minus one, so an over-generous limit cannot make the node
/// slower by making threads fight over cores.
pub struct IoPool {
    workers: Vec<Worker>,
    done: Arc<ArrayQueue<Done>>,
    wake: Arc<ExecWake>,
    stop: Arc<AtomicBool>,
    pub stats: Arc<IoStats>,
    /// Jobs dispatched whose completion has not been collected yet.
    pub inflight: usize,
    limit: usize,
    cap: usize,
    active: usize,
}

/// Most I/O jobs in flight at once: every completion must fit the completion queue.
const MAX_INFLIGHT: usize = 16 * RING;

impl IoPool {
    /// A pool allowed `limit` workers, none active yet.
    pub fn new(limit: usize, wake: Arc<ExecWake>) -> std::io::Result<IoPool> {
        let cores = thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        let mut pool = IoPool {
            workers: Vec::new(),
            done: Arc::new(ArrayQueue::new(MAX_INFLIGHT)),
            wake,
            stop: Arc::new(AtomicBool::new(false)),
            stats: Arc::new(IoStats::default()),
            inflight: 0,
            limit: 0,
            cap: cores.saturating_sub(1),
            active: 0,
        };
        pool.set_limit(limit)?;
        Ok(pool)
    }

    /// Changes how many workers may be used (`CONFIG SET io-threads`). Raising it starts
    /// threads; lowering it only stops giving jobs to the extra ones, which park.
    pub fn set_limit(&mut self, limit: usize) -> std::io::Result<()> {
        while self.workers.len() < limit {
            self.spawn()?;
        }
        self.limit = limit;
        self.active = self.active.min(self.max_active());
        Ok(())
    }

    /// Overrides the core-count cap (tests use it to exercise scaling on any machine).
    pub fn set_cap(&mut self, cap: usize) -> std::io::Result<()> {
        self.cap = cap;
        self.set_limit(self.limit)
    }

    fn spawn(&mut self) -> std::io::Result<()> {
        let i = self.workers.len();
        let ring = Arc::new(ArrayQueue::new(RING));
        let parked = Arc::new(CachePadded::new(AtomicBool::new(false)));
        let ctx = WorkerCtx {
            ring: ring.clone(),
            parked: parked.clone(),
            done: self.done.clone(),
            wake: self.wake.clone(),
            stop: self.stop.clone(),
            stats: self.stats.clone(),
        };
        let handle = thread::Builder::new().name(format!("io_thd_{}", i + 1)).spawn(move || ctx.run())?;
        let thread = handle.thread().clone();
        self.workers.push(Worker { ring, parked, thread, handle: Some(handle) });
        Ok(())
    }

    /// Workers that may be active at most: the limit, capped by the cores available.
    pub fn max_active(&self) -> usize {
        self.limit.min(self.cap).min(self.workers.len())
    }

    /// Workers currently receiving jobs.
    pub fn active(&self) -> usize {
        self.active
    }

    /// Sets the number of active workers (clamped to `max_active`).
    pub fn set_active(&mut self, n: usize) {
        self.active = n.min(self.max_active());
    }

    /// Hands a client's I/O job to its worker (`client id % active`, so a client stays on one
    /// thread while the active count is unchanged). With no active worker, or a full ring, the
    /// job comes back and the executor does the work itself, as Valkey's main thread does.
    pub fn submit_io(&mut self, client_id: u64, job: Job) -> Result<(), Job> {
        if self.active == 0 || self.inflight >= MAX_INFLIGHT {
            return Err(job);
        }
        self.push((client_id % self.active as u64) as usize, job)?;
        self.inflight += 1;
        Ok(())
    }

    /// Sends the poller to the last active worker (threads are activated lowest first, so the
    /// last one is likely the least busy), as Valkey's `trySendPollJobToIOThreads` does.
    pub fn submit_poll(&mut self, job: Box<PollJob>) -> Result<(), Box<PollJob>> {
        if self.active == 0 || self.inflight >= MAX_INFLIGHT {
            return Err(job);
        }
        match self.push(self.active - 1, Job::Poll(job)) {
            Ok(()) => {
                self.inflight += 1;
                Ok(())
            }
            Err(Job::Poll(job)) => Err(job),
            // `push` hands back exactly the job it was given.
            Err(_) => unreachable!("ring returned a different job"),
        }
    }

    /// Hands garbage to a worker to drop; returns it when no worker is active.
    pub fn submit_free(&mut self, n: usize, job: Job) -> Result<(), Job> {
        if self.active == 0 {
            return Err(job);
        }
        self.push(n % self.active, job)
    }

    fn push(&mut self, w: usize, job: Job) -> Result<(), Job> {
        let worker = &self.workers[w];
        worker.ring.push(job)?;
        // Pairs with the fence in `WorkerCtx::park`: either the worker sees the job before it
        // parks, or we see `parked` and wake it.
        std::sync::atomic::fence(Ordering::SeqCst);
        if worker.parked.swap(false, Ordering::SeqCst) {
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

    /// A one-line picture of the pool, for stall diagnostics.
    pub fn describe(&self) -> String {
        let rings: Vec<String> = self
            .workers
            .iter()
            .map(|w| format!("{}{}", w.ring.len(), if w.parked.load(Ordering::Relaxed) { "p" } else { "" }))
            .collect();
        format!(
            "active={} limit={} cap={} inflight={} done={} rings=[{}]",
            self.active,
            self.limit,
            self.cap,
            self.inflight,
            self.done.len(),
            rings.join(",")
        )
    }

    /// True when completions are waiting.
    pub fn has_done(&self) -> bool {
        !self.done.is_empty()
    }

    /// Jobs waiting in the rings of active workers (the scaler's queue-depth signal).
    pub fn queued(&self) -> usize {
        self.workers[..self.active].iter().map(|w| w.ring.len()).sum()
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

    /// Sleeps until a job arrives. The flag is raised again before *every* sleep: a wakeup
    /// meant for an earlier sleep (the executor clears the flag when it unparks) may arrive
    /// late and end this one, and sleeping again with the flag down would make the next push
    /// skip the unpark and strand its job.
    fn park(&self) {
        loop {
            self.parked.store(true, Ordering::SeqCst);
            std::sync::atomic::fence(Ordering::SeqCst);
            if !self.ring.is_empty() || self.stop.load(Ordering::Relaxed) {
                break;
            }
            thread::park();
        }
        self.parked.store(false, Ordering::Relaxed);
    }

    fn complete(&self, done: Done) {
        // Cannot fail for long: the executor never has more jobs in flight than this queue
        // holds.
        let mut item = done;
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

    fn handle(&self, job: Job) {
        match job {
            Job::Io { token, mut io, write, read } => {
                if write {
                    io.write();
                    self.stats.writes.fetch_add(1, Ordering::Relaxed);
                }
                if read {
                    io.read_and_parse();
                    self.stats.reads.fetch_add(1, Ordering::Relaxed);
                }
                self.complete(Done::Io { token, io });
            }
            Job::Poll(mut job) => {
                let PollJob { poll, events } = &mut *job;
                if poll.poll(events, Some(std::time::Duration::ZERO)).is_err() {
                    events.clear();
                }
                self.stats.polls.fetch_add(1, Ordering::Relaxed);
                self.complete(Done::Poll(job));
            }
            Job::Free(garbage) => {
                drop(garbage);
                self.stats.freed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hands a poll job to one worker thousands of times with gaps around the spin window, so
    /// the worker keeps crossing between spinning, parking and waking: every job must come
    /// back (a lost wakeup strands it in the ring).
    #[test]
    fn no_job_is_stranded_across_park_and_wake() {
        let poll = mio::Poll::new().expect("poll");
        let waker = mio::Waker::new(poll.registry(), mio::Token(0)).expect("waker");
        let wake = Arc::new(ExecWake { sleeping: Default::default(), waker });
        let mut pool = IoPool::new(1, wake).expect("pool");
        pool.set_cap(1).expect("cap");
        pool.set_active(1);
        let mut job = Box::new(PollJob { poll, events: mio::Events::with_capacity(8) });
        for i in 0..3000u64 {
            // Gaps from none to twice the spin window.
            let gap = Duration::from_micros((i * 37) % (2 * WORKER_SPIN.as_micros() as u64 + 1));
            let until = Instant::now() + gap;
            while Instant::now() < until {
                std::hint::spin_loop();
            }
            assert!(pool.submit_poll(job).is_ok(), "ring full with one job in flight");
            let deadline = Instant::now() + Duration::from_secs(5);
            let mut back = None;
            while back.is_none() {
                pool.collect(|d| {
                    if let Done::Poll(p) = d {
                        back = Some(p);
                    }
                });
                assert!(Instant::now() < deadline, "job {i} stranded: {}", pool.describe());
            }
            job = back.expect("returned");
        }
    }
}
