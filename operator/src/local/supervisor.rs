//! Spawns and supervises `shoal-node` processes: per shard ordinal, member 0 and `replicas`
//! more members, each with its own data directory (where the node persists its id and
//! topology). Member 0 starts as the shard's primary, the others as its replicas; after a
//! failover any member may be the primary, so nothing here assumes a role. A node that dies is
//! restarted on the same port and directory, so it comes back with its identity (a restarted
//! primary of a shard with replicas comes back fenced, and the control plane promotes a
//! replica). Startup waits for the node's own `port=N` log line, bounded; nothing sleeps to
//! synchronise.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

use crate::controlplane::driver::DesiredShard;
use crate::controlplane::model::{NodeAddr, ShardId};

/// How long a node may take to print its port.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A failure to run a node.
#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    #[error("creating {path}: {source}")]
    Dir { path: PathBuf, source: std::io::Error },
    #[error("starting {bin}: {source}")]
    Spawn { bin: PathBuf, source: std::io::Error },
    #[error("node {ordinal}/{member} did not report its port within {timeout:?} (see {log})")]
    NoPort { ordinal: u32, member: u32, timeout: Duration, log: PathBuf },
}

/// How to run nodes.
#[derive(Clone, Debug)]
pub struct NodeTemplate {
    pub bin: PathBuf,
    /// Parent of the per-node directories (`node-<ordinal>`).
    pub dir: PathBuf,
    /// Port of ordinal 0; member m of ordinal i listens on `port_base + 100 m + i`. `None`:
    /// ephemeral ports.
    pub port_base: Option<u16>,
    pub host: String,
    /// Prometheus port of ordinal 0 (`metrics-port`); member m of ordinal i serves on
    /// `base + 100 m + i`.
    pub metrics_port_base: Option<u16>,
    /// Replicas per shard (members 1..=replicas).
    pub replicas: u32,
    /// Extra `--name value` arguments for every node.
    pub args: Vec<String>,
    /// Bumped by every change of `args`: a node started at an older generation is outdated
    /// and is rolled (drained, restarted, given its slots back) by the local control loop.
    pub generation: u64,
}

/// One running node.
#[derive(Debug)]
pub struct NodeProc {
    pub ordinal: u32,
    /// 0: started as the shard's primary; 1..: started as replicas.
    pub member: u32,
    pub addr: NodeAddr,
    pub dir: PathBuf,
    child: Child,
    pub restarts: u32,
    /// The template generation the node runs.
    pub generation: u64,
}

impl NodeProc {
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }
}

/// The node processes of one local cluster.
#[derive(Debug)]
pub struct Supervisor {
    pub template: NodeTemplate,
    pub cluster: String,
    nodes: BTreeMap<(u32, u32), NodeProc>,
}

impl Supervisor {
    pub fn new(template: NodeTemplate, cluster: impl Into<String>) -> Supervisor {
        Supervisor { template, cluster: cluster.into(), nodes: BTreeMap::new() }
    }

    /// The shard id of ordinal `i`.
    pub fn shard_id(&self, i: u32) -> ShardId {
        ShardId::for_ordinal(&self.cluster, i)
    }

    /// Running nodes, by ordinal then member.
    pub fn nodes(&self) -> impl Iterator<Item = &NodeProc> {
        self.nodes.values()
    }

    /// Member 0 of shard `ordinal` (its first primary).
    pub fn node(&self, ordinal: u32) -> Option<&NodeProc> {
        self.member(ordinal, 0)
    }

    pub fn member(&self, ordinal: u32, member: u32) -> Option<&NodeProc> {
        self.nodes.get(&(ordinal, member))
    }

    /// The members of shard `ordinal`.
    pub fn shard_nodes(&self, ordinal: u32) -> impl Iterator<Item = &NodeProc> {
        self.nodes.range((ordinal, 0)..=(ordinal, u32::MAX)).map(|(_, p)| p)
    }

    /// The desired shards: ordinals `0..n` that run, member 0 first.
    pub fn desired(&self, n: u32) -> Vec<DesiredShard> {
        (0..n)
            .filter(|&i| self.node(i).is_some())
            .map(|i| DesiredShard {
                id: self.shard_id(i),
                nodes: self.shard_nodes(i).map(|p| p.addr.clone()).collect(),
            })
            .collect()
    }

    /// Endpoints of running nodes of ordinals `n..`.
    pub fn beyond(&self, n: u32) -> Vec<NodeAddr> {
        self.nodes().filter(|p| p.ordinal >= n).map(|p| p.addr.clone()).collect()
    }

    /// Starts the members of ordinals `0..n` that are not running (member 0 first, so a new
    /// shard's replicas start after its primary).
    pub async fn ensure(&mut self, n: u32) -> Result<Vec<String>, SupervisorError> {
        let mut done = Vec::new();
        for i in 0..n {
            for m in 0..=self.template.replicas {
                if self.member(i, m).is_none() {
                    let p = start(&self.template, i, m, None).await?;
                    done.push(format!("started node {i}/{m} on {} (pid {})", p.addr, p.pid().unwrap_or(0)));
                    self.nodes.insert((i, m), p);
                }
            }
        }
        Ok(done)
    }

    /// Restarts nodes that exited, on their port and directory. Returns what it did.
    pub async fn check(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        for p in self.nodes.values_mut() {
            let Ok(Some(status)) = p.child.try_wait() else { continue };
            let (ordinal, member, port, restarts) = (p.ordinal, p.member, p.addr.port, p.restarts);
            out.push(format!("node {ordinal}/{member} on {} exited ({status}); restarting", p.addr));
            // Same port first (clients and the topology know it); any port if it is taken.
            let r = match start(&self.template, ordinal, member, Some(port)).await {
                Ok(p) => Ok(p),
                Err(_) => start(&self.template, ordinal, member, None).await,
            };
            match r {
                Ok(mut np) => {
                    np.restarts = restarts + 1;
                    out.push(format!("node {ordinal}/{member} back on {}", np.addr));
                    *p = np;
                }
                Err(e) => out.push(format!("restarting node {ordinal}/{member}: {e}")),
            }
        }
        for l in &out {
            tracing::warn!("{l}");
        }
        out
    }

    /// Replaces the nodes' extra arguments; running nodes keep theirs until restarted.
    pub fn set_args(&mut self, args: Vec<String>) -> bool {
        if args == self.template.args {
            return false;
        }
        self.template.args = args;
        self.template.generation += 1;
        true
    }

    /// Ordinals `0..n` with a member that runs an older template generation.
    pub fn outdated(&self, n: u32) -> Vec<u32> {
        let mut v: Vec<u32> = self.outdated_nodes(n).into_iter().map(|(i, _)| i).collect();
        v.dedup();
        v
    }

    /// `(ordinal, member)` of every node of ordinals `0..n` on an older template generation.
    pub fn outdated_nodes(&self, n: u32) -> Vec<(u32, u32)> {
        self.nodes
            .iter()
            .filter(|((i, _), p)| *i < n && p.generation < self.template.generation)
            .map(|(k, _)| *k)
            .collect()
    }

    /// Stops member 0 of shard `ordinal` and starts it again (see [`Supervisor::restart_member`]).
    pub async fn restart(&mut self, ordinal: u32, grace: Duration) -> Result<String, SupervisorError> {
        self.restart_member(ordinal, 0, grace).await
    }

    /// Stops a node gracefully (SIGTERM, SIGKILL after `grace`) and starts it again with the
    /// current template, on its port and directory (so with its node id).
    pub async fn restart_member(
        &mut self,
        ordinal: u32,
        member: u32,
        grace: Duration,
    ) -> Result<String, SupervisorError> {
        let Some(mut p) = self.nodes.remove(&(ordinal, member)) else {
            let np = start(&self.template, ordinal, member, None).await?;
            let line = format!("started node {ordinal}/{member} on {}", np.addr);
            self.nodes.insert((ordinal, member), np);
            return Ok(line);
        };
        stop(&mut p.child, grace).await;
        let np = match start(&self.template, ordinal, member, Some(p.addr.port)).await {
            Ok(np) => np,
            Err(_) => start(&self.template, ordinal, member, None).await?,
        };
        let line = format!(
            "restarted node {ordinal}/{member} on {} with configuration generation {}",
            np.addr, np.generation
        );
        self.nodes.insert((ordinal, member), NodeProc { restarts: p.restarts + 1, ..np });
        Ok(line)
    }

    /// Stops (SIGTERM, then SIGKILL after `grace`) and forgets the nodes of ordinals `n..`.
    pub async fn stop_beyond(&mut self, n: u32, grace: Duration) -> Vec<String> {
        let mut out = Vec::new();
        let keys: Vec<(u32, u32)> = self.nodes.range((n, 0)..).map(|(k, _)| *k).collect();
        for k in keys {
            if let Some(mut p) = self.nodes.remove(&k) {
                stop(&mut p.child, grace).await;
                out.push(format!("stopped node {}/{} on {}", p.ordinal, p.member, p.addr));
            }
        }
        out
    }

    /// Stops every node.
    pub async fn shutdown(&mut self, grace: Duration) {
        self.stop_beyond(0, grace).await;
    }
}

/// Starts member `member` of `ordinal` on `port` (or the template's port), waiting for its port
/// line.
async fn start(
    t: &NodeTemplate,
    ordinal: u32,
    member: u32,
    port: Option<u16>,
) -> Result<NodeProc, SupervisorError> {
    let dir = match member {
        0 => t.dir.join(format!("node-{ordinal}")),
        m => t.dir.join(format!("node-{ordinal}-r{m}")),
    };
    std::fs::create_dir_all(&dir).map_err(|source| SupervisorError::Dir { path: dir.clone(), source })?;
    let offset = (100 * member + ordinal) as u16;
    let port = port.or(t.port_base.map(|b| b + offset)).unwrap_or(0);
    let log_path = dir.join("node.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|source| SupervisorError::Dir { path: log_path.clone(), source })?;
    let mut cmd = Command::new(&t.bin);
    cmd.arg("--port")
        .arg(port.to_string())
        .args(["--bind", &t.host, "--cluster-enabled", "yes", "--dir"])
        .arg(&dir)
        .args(
            t.metrics_port_base
                .map(|b| ["--metrics-port".to_string(), (b + offset).to_string()])
                .into_iter()
                .flatten(),
        )
        .args(&t.args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|source| SupervisorError::Spawn { bin: t.bin.clone(), source })?;
    let stdout = child.stdout.take();
    let found = match stdout {
        Some(out) => {
            tokio::time::timeout(START_TIMEOUT, wait_port(out, log_path.clone())).await.ok().flatten()
        }
        None => None,
    };
    let Some(port) = found else {
        let _ = child.start_kill();
        return Err(SupervisorError::NoPort { ordinal, member, timeout: START_TIMEOUT, log: log_path });
    };
    let addr = NodeAddr { ip: t.host.clone(), hostname: None, port };
    Ok(NodeProc { ordinal, member, addr, dir, child, restarts: 0, generation: t.generation })
}

/// Reads the node's stdout until a `port=N` line, copies everything to `log`, and keeps
/// draining stdout in the background so the node never blocks on a full pipe.
async fn wait_port(out: tokio::process::ChildStdout, log: PathBuf) -> Option<u16> {
    let mut lines = BufReader::new(out).lines();
    let mut file = tokio::fs::OpenOptions::new().create(true).append(true).open(&log).await.ok();
    while let Ok(Some(line)) = lines.next_line().await {
        if let Some(f) = &mut file {
            let _ = f.write_all(format!("{line}\n").as_bytes()).await;
        }
        if let Some(port) = port_in(&line) {
            tokio::spawn(async move {
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Some(f) = &mut file {
                        let _ = f.write_all(format!("{line}\n").as_bytes()).await;
                    }
                }
            });
            return Some(port);
        }
    }
    None
}

/// The number after `port=` in a log line.
fn port_in(line: &str) -> Option<u16> {
    let at = line.find("port=")? + 5;
    let digits: String = line[at..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok().filter(|p| *p != 0)
}

async fn stop(child: &mut Child, grace: Duration) {
    if let Some(pid) = child.id() {
        // SIGTERM lets the node save and exit cleanly.
        // SAFETY: kill(2) has no memory-safety preconditions; `pid` is our own child, not yet
        // reaped (we hold its `Child`), so it cannot name another process.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
        if tokio::time::timeout(grace, child.wait()).await.is_ok() {
            return;
        }
    }
    let _ = child.kill().await;
}

/// The `shoal-node` binary: `SHOAL_NODE_BIN`, else next to this executable, else on `PATH`.
pub fn default_node_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("SHOAL_NODE_BIN") {
        return PathBuf::from(p);
    }
    let beside = std::env::current_exe().ok().and_then(|e| e.parent().map(|d| d.join("shoal-node")));
    match beside {
        Some(b) if b.exists() => b,
        _ => Path::new("shoal-node").to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn port_line() {
        assert_eq!(super::port_in("Running mode=cluster, port=7001."), Some(7001));
        assert_eq!(super::port_in("port=0"), None);
        assert_eq!(super::port_in("nothing"), None);
    }
}
