//! Local clusters of real `shoal-node` processes for the cluster tests: each node gets its own
//! `dir` (node id and topology persist there), the test pushes a topology with `CLUSTER
//! SETTOPOLOGY` as a control plane would, and [`Router`] is a minimal cluster-aware client
//! that follows MOVED and records every other error, to prove clients see nothing else.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::client::RawClient;
use crate::resp::Value;
use crate::ShoalNode;

/// Slots in a cluster.
pub const SLOTS: u16 = 16384;

static UNIQUE: AtomicUsize = AtomicUsize::new(0);

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let n = UNIQUE.fetch_add(1, Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("shoal-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap_or_else(|e| panic!("creating {}: {e}", p.display()));
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One cluster-enabled node with its own directory.
pub struct ClusterNode {
    pub node: ShoalNode,
    pub id: String,
    pub dir: PathBuf,
}

impl ClusterNode {
    /// Starts a node in `dir` (`--port 0` unless `port` is given), reads its id.
    pub fn start(dir: &Path, port: Option<u16>, extra: &[&str]) -> ClusterNode {
        let d = dir.to_string_lossy().into_owned();
        let p = port.map(|p| p.to_string());
        let mut args = vec!["--cluster-enabled", "yes", "--dir", d.as_str()];
        if let Some(p) = &p {
            args.extend_from_slice(&["--port", p.as_str()]);
        }
        args.extend_from_slice(extra);
        let node = ShoalNode::start(&args);
        let mut c = node.connect();
        let id = match c.read_value_of(&["CLUSTER", "MYID"]) {
            Value::Blob(_, Some(id)) => String::from_utf8_lossy(&id).into_owned(),
            other => panic!("CLUSTER MYID: {other:?}"),
        };
        assert_eq!(id.len(), 40, "node id {id}");
        ClusterNode { node, id, dir: dir.to_path_buf() }
    }

    pub fn port(&self) -> u16 {
        self.node.port
    }

    /// Runs a command on this node and returns the reply text.
    pub fn run(&self, line: &str) -> String {
        self.node.connect().run(line)
    }
}

impl RawClient {
    /// Sends a command and parses its reply; panics on I/O errors (for test bodies).
    pub fn read_value_of<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Value {
        self.send_cmd(args).unwrap_or_else(|e| panic!("sending: {e}"));
        self.read_value().unwrap_or_else(|e| panic!("reading: {e}"))
    }
}

/// Who owns what: `(start, end, node index)` inclusive ranges.
pub type Assignment = Vec<(u16, u16, usize)>;

/// A cluster of primaries, one shard each.
pub struct Cluster {
    pub nodes: Vec<Option<ClusterNode>>,
    pub epoch: u64,
    pub assignment: Assignment,
    /// Node ids and ports, kept when a node is stopped.
    pub ids: Vec<String>,
    pub ports: Vec<u16>,
    pub dirs: Vec<TempDir>,
}

/// `n` near-equal contiguous ranges covering every slot.
pub fn even_split(n: usize) -> Assignment {
    let per = SLOTS as usize / n;
    (0..n)
        .map(|i| {
            let start = (i * per) as u16;
            let end = if i + 1 == n { SLOTS - 1 } else { ((i + 1) * per - 1) as u16 };
            (start, end, i)
        })
        .collect()
}

impl Cluster {
    /// Starts `n` nodes and pushes a topology giving each an even share of the slots.
    pub fn start(n: usize) -> Cluster {
        Cluster::start_with(n, &[])
    }

    /// As [`Cluster::start`], every node started with the `extra` arguments.
    pub fn start_with(n: usize, extra: &[&str]) -> Cluster {
        let dirs: Vec<TempDir> = (0..n).map(|_| TempDir::new("cluster")).collect();
        let nodes: Vec<ClusterNode> = dirs.iter().map(|d| ClusterNode::start(&d.0, None, extra)).collect();
        let mut c = Cluster {
            ids: nodes.iter().map(|n| n.id.clone()).collect(),
            ports: nodes.iter().map(|n| n.port()).collect(),
            nodes: nodes.into_iter().map(Some).collect(),
            epoch: 0,
            assignment: even_split(n),
            dirs,
        };
        c.push(even_split(n));
        c
    }

    pub fn node(&self, i: usize) -> &ClusterNode {
        self.nodes[i].as_ref().unwrap_or_else(|| panic!("node {i} is stopped"))
    }

    /// The topology JSON for an assignment, at the next epoch.
    pub fn topology(&self, assignment: &Assignment, epoch: u64) -> String {
        let shards: Vec<String> = (0..self.ids.len())
            .map(|i| {
                let slots: Vec<String> =
                    assignment.iter().filter(|a| a.2 == i).map(|a| format!("[{}, {}]", a.0, a.1)).collect();
                format!(
                    r#"{{"id": "{:040x}", "slots": [{}], "nodes": [{{"id": "{}", "ip": "127.0.0.1", "port": {}, "role": "primary"}}]}}"#,
                    i + 1,
                    slots.join(", "),
                    self.ids[i],
                    self.ports[i]
                )
            })
            .collect();
        format!(r#"{{"epoch": {epoch}, "shards": [{}]}}"#, shards.join(", "))
    }

    /// Pushes an assignment to every running node at the next epoch.
    pub fn push(&mut self, assignment: Assignment) {
        self.epoch += 1;
        let json = self.topology(&assignment, self.epoch);
        for n in self.nodes.iter().flatten() {
            let reply = n.node.connect().cmd(&["CLUSTER", "SETTOPOLOGY", json.as_str()]).expect("push");
            assert_eq!(
                reply,
                b"+OK\r\n",
                "SETTOPOLOGY on :{}: {}",
                n.port(),
                String::from_utf8_lossy(&reply)
            );
        }
        self.assignment = assignment;
    }

    /// The node index owning `slot` in the current assignment.
    pub fn owner(&self, slot: u16) -> usize {
        self.assignment.iter().find(|a| a.0 <= slot && slot <= a.1).map(|a| a.2).expect("assigned")
    }

    /// A router that starts from the first running node.
    pub fn router(&self) -> Router {
        let port = self.nodes.iter().flatten().next().expect("a running node").port();
        Router::new(port)
    }
}

/// A minimal cluster client: a slot map from CLUSTER SLOTS, one connection per port, MOVED
/// followed (and counted); any other error is returned to the caller.
pub struct Router {
    map: Vec<u16>,
    conns: HashMap<u16, RawClient>,
    pub moved: usize,
}

impl Router {
    pub fn new(seed: u16) -> Router {
        let mut r = Router { map: vec![seed; SLOTS as usize], conns: HashMap::new(), moved: 0 };
        r.refresh(seed);
        r
    }

    fn conn(&mut self, port: u16) -> &mut RawClient {
        self.conns.entry(port).or_insert_with(|| {
            let addr = crate::Addr::Tcp(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
            RawClient::connect(&addr).unwrap_or_else(|e| panic!("connecting to :{port}: {e}"))
        })
    }

    /// Reloads the slot map from a node's CLUSTER SLOTS.
    pub fn refresh(&mut self, port: u16) {
        let v = self.conn(port).read_value_of(&["CLUSTER", "SLOTS"]);
        let Value::Agg(_, Some(ranges)) = v else { panic!("CLUSTER SLOTS: {v:?}") };
        for r in ranges {
            let Value::Agg(_, Some(parts)) = r else { continue };
            let num = |v: &Value| match v {
                Value::Line(b':', t) => String::from_utf8_lossy(t).parse::<u16>().unwrap_or(0),
                _ => 0,
            };
            let (start, end) = (num(&parts[0]), num(&parts[1]));
            let Value::Agg(_, Some(primary)) = &parts[2] else { continue };
            let port = num(&primary[1]);
            for s in start..=end {
                self.map[s as usize] = port;
            }
        }
    }

    /// Runs a command routed by the slot of `key`; follows up to 5 MOVED redirections.
    /// Returns the reply, or `Err(text)` for any error other than MOVED.
    pub fn run(&mut self, key: &[u8], args: &[&[u8]]) -> Result<Value, String> {
        let slot = key_slot(key);
        for _ in 0..5 {
            let port = self.map[slot as usize];
            let c = self.conn(port);
            c.send_cmd(args).map_err(|e| format!("send to :{port}: {e}"))?;
            let v = c.read_value().map_err(|e| format!("read from :{port}: {e}"))?;
            if let Value::Line(b'-', text) = &v {
                let text = String::from_utf8_lossy(text).into_owned();
                if let Some(rest) = text.strip_prefix("MOVED ") {
                    let to =
                        rest.rsplit(':').next().and_then(|p| p.parse::<u16>().ok()).ok_or(text.clone())?;
                    self.map[slot as usize] = to;
                    self.moved += 1;
                    continue;
                }
                return Err(text);
            }
            return Ok(v);
        }
        Err("too many redirections".into())
    }
}

/// CRC16/XMODEM slot of a key with the hash-tag rule (independent of the node's code).
pub fn key_slot(key: &[u8]) -> u16 {
    let mut k = key;
    if let Some(open) = key.iter().position(|&b| b == b'{') {
        if let Some(len) = key[open + 1..].iter().position(|&b| b == b'}') {
            if len > 0 {
                k = &key[open + 1..open + 1 + len];
            }
        }
    }
    let mut crc: u16 = 0;
    for &b in k {
        crc ^= (b as u16) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
        }
    }
    crc & (SLOTS - 1)
}

/// A key whose slot is `slot` (`{tag}suffix` with a searched tag).
pub fn key_in_slot(slot: u16, suffix: &str) -> String {
    for i in 0u32.. {
        let tag = format!("t{i}");
        if key_slot(tag.as_bytes()) == slot {
            return format!("{{{tag}}}{suffix}");
        }
    }
    unreachable!()
}

/// Polls `f` until it returns `Some`, at most `timeout`; panics with `what` otherwise.
pub fn wait_for<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `field` of each map in a GETSLOTMIGRATIONS reply.
pub fn migrations(node: &ClusterNode) -> Vec<HashMap<String, String>> {
    let v = node.node.connect().read_value_of(&["CLUSTER", "GETSLOTMIGRATIONS"]);
    let Value::Agg(_, Some(jobs)) = v else { panic!("GETSLOTMIGRATIONS: {v:?}") };
    jobs.into_iter()
        .map(|j| {
            let Value::Agg(_, Some(kv)) = j else { panic!("entry: {j:?}") };
            kv.chunks(2)
                .map(|p| {
                    let text = |v: &Value| match v {
                        Value::Blob(_, Some(b)) | Value::Line(_, b) => {
                            String::from_utf8_lossy(b).into_owned()
                        }
                        other => format!("{other:?}"),
                    };
                    (text(&p[0]), text(&p[1]))
                })
                .collect()
        })
        .collect()
}
