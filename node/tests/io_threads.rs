//! The I/O-thread engine under load, against a real `shoal-node` process: threads are
//! activated and parked with the load, and `CONFIG SET io-threads` takes effect on a running
//! node without losing, duplicating or reordering a single reply.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Node {
    child: Child,
    port: u16,
}

impl Node {
    fn start(args: &[&str]) -> Node {
        let mut child = Command::new(env!("CARGO_BIN_EXE_shoal-node"))
            .args(["--port", "0", "--save", ""])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn shoal-node");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("port=").nth(1) {
                    let port: String = rest.chars().take_while(char::is_ascii_digit).collect();
                    let _ = tx.send(port.parse::<u16>().unwrap_or(0));
                }
            }
        });
        let port = rx.recv_timeout(Duration::from_secs(10)).expect("node did not report its port");
        Node { child, port }
    }

    fn connect(&self) -> Conn {
        let s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        s.set_nodelay(true).expect("nodelay");
        Conn { r: BufReader::new(s.try_clone().expect("clone")), w: s }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Conn {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

fn encode(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n{}\r\n", a.len(), a).as_bytes());
    }
    out
}

impl Conn {
    /// Reads one reply and returns it as text (bulk contents, integers, status, errors).
    fn read(&mut self) -> String {
        let mut line = String::new();
        self.r.read_line(&mut line).expect("read reply");
        let line = line.trim_end().to_string();
        match line.as_bytes().first() {
            Some(b'$') => {
                let n: i64 = line[1..].parse().expect("bulk len");
                if n < 0 {
                    return "(nil)".into();
                }
                let mut buf = vec![0; n as usize + 2];
                self.r.read_exact(&mut buf).expect("bulk body");
                String::from_utf8_lossy(&buf[..n as usize]).into_owned()
            }
            _ => line,
        }
    }

    fn cmd(&mut self, args: &[&str]) -> String {
        self.w.write_all(&encode(args)).expect("write");
        self.read()
    }

    fn info_field(&mut self, field: &str) -> String {
        let info = self.cmd(&["INFO", "everything"]);
        info.lines()
            .find_map(|l| l.strip_prefix(&format!("{field}:")).map(str::to_string))
            .unwrap_or_else(|| panic!("INFO has no {field}"))
    }
}

/// Clients that each INCR their own counter in pipelines and check every reply is the next
/// integer: any lost, duplicated or reordered reply fails.
fn spawn_counters(node: &Node, clients: usize, stop: Arc<AtomicBool>) -> Vec<std::thread::JoinHandle<u64>> {
    (0..clients)
        .map(|i| {
            let mut c = node.connect();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let key = format!("counter:{i}");
                let mut expect = 0u64;
                let deadline = Instant::now() + Duration::from_secs(30);
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    let depth = 1 + (expect % 17) as usize;
                    let batch: Vec<u8> = (0..depth).flat_map(|_| encode(&["INCR", &key])).collect();
                    c.w.write_all(&batch).expect("write pipeline");
                    for _ in 0..depth {
                        expect += 1;
                        assert_eq!(c.read(), format!(":{expect}"), "client {i} reply out of order");
                    }
                }
                expect
            })
        })
        .collect()
}

#[test]
fn runtime_io_threads_changes_under_load_lose_nothing() {
    // `events-per-io-thread 0` offloads all I/O to every allowed thread, as in Valkey's tests,
    // so each limit change really moves clients between threads.
    let node = Node::start(&["--io-threads", "1", "--events-per-io-thread", "0"]);
    let mut admin = node.connect();
    let stop = Arc::new(AtomicBool::new(false));
    let workers = spawn_counters(&node, 8, stop.clone());
    let mut seen_active = std::collections::BTreeSet::new();
    for limit in ["2", "4", "1", "3", "2", "1", "4"] {
        assert_eq!(admin.cmd(&["CONFIG", "SET", "io-threads", limit]), "+OK");
        let want = limit.parse::<usize>().unwrap_or(1) - 1;
        // The executor applies the limit at its next cron tick (hz 10): bounded wait.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let active: usize = admin.info_field("io_threads_active_count").parse().unwrap_or(usize::MAX);
            if active == want {
                seen_active.insert(active);
                break;
            }
            assert!(Instant::now() < deadline, "io-threads {limit} not applied (active {active})");
            std::thread::yield_now();
        }
    }
    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    for w in workers {
        total += w.join().expect("client thread panicked");
    }
    assert!(total > 0);
    assert_eq!(seen_active.into_iter().collect::<Vec<_>>(), vec![0, 1, 2, 3]);
    // Every counter holds exactly what its client counted.
    let sum: u64 =
        (0..8).map(|i| admin.cmd(&["GET", &format!("counter:{i}")]).parse::<u64>().unwrap_or(0)).sum();
    assert_eq!(sum, total);
    // Forced threads are not on trial: nothing was tried, nothing taken back.
    assert_eq!(admin.info_field("io_threads_trials"), "0");
}

#[test]
fn threads_start_under_load_and_park_when_idle() {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    if cores < 2 {
        eprintln!("skipped: needs 2 cores to allow an active I/O thread");
        return;
    }
    let node = Node::start(&["--io-threads", "2"]);
    let mut admin = node.connect();
    assert_eq!(admin.info_field("io_threads_active_count"), "0", "idle node must not run I/O threads");
    let stop = Arc::new(AtomicBool::new(false));
    let workers = spawn_counters(&node, 16, stop.clone());
    let deadline = Instant::now() + Duration::from_secs(20);
    while admin.info_field("io_threads_active_count") != "1" {
        assert!(Instant::now() < deadline, "no I/O thread activated under load");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Every thread the scaler adds is on trial (kept only if the command rate rises).
    let trials: u64 = admin.info_field("io_threads_trials").parse().expect("io_threads_trials");
    assert!(trials >= 1, "an activated thread is a trial: {trials}");
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().expect("client thread panicked");
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while admin.info_field("io_threads_active_count") != "0" {
        assert!(Instant::now() < deadline, "I/O thread not parked after the load stopped");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn pipelined_keys_are_prefetched_in_batches_and_answers_stay_right() {
    for (prefetch, io_threads) in [("16", "1"), ("0", "1"), ("16", "2")] {
        let node = Node::start(&["--io-threads", io_threads, "--prefetch-batch-max-size", prefetch]);
        let mut c = node.connect();
        let set: Vec<u8> =
            (0..64).flat_map(|i| encode(&["SET", &format!("k{i}"), &format!("v{i}")])).collect();
        c.w.write_all(&set).expect("write");
        for _ in 0..64 {
            assert_eq!(c.read(), "+OK");
        }
        let get: Vec<u8> = (0..64).rev().flat_map(|i| encode(&["GET", &format!("k{i}")])).collect();
        c.w.write_all(&get).expect("write");
        for i in (0..64).rev() {
            assert_eq!(c.read(), format!("v{i}"));
        }
        let batches: u64 = c.info_field("io_threaded_total_prefetch_batches").parse().expect("number");
        let entries: u64 = c.info_field("io_threaded_total_prefetch_entries").parse().expect("number");
        if prefetch == "0" {
            assert_eq!((batches, entries), (0, 0));
        } else {
            assert!(batches > 0 && entries >= 2 * batches, "batches={batches} entries={entries}");
        }
    }
}
