//! A simulated node for driver tests: a tokio RESP server on port 0 that implements the control
//! plane's side of the node interface in memory (`CLUSTER MYID/MYSHARDID/INFO/SHARDS/
//! SETTOPOLOGY/MIGRATESLOTS/GETSLOTMIGRATIONS`, `INFO`, `CONFIG GET/SET io-threads`). It is not
//! a stand-in for `shoal-node` in the end-to-end tests: it lets the driver's sequencing (epochs,
//! one migration per shard, drains, restarts mid-migration) be checked exhaustively and fast.
//! A migration completes after `polls_to_finish` GETSLOTMIGRATIONS calls on its source.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use serde_json::Value as Json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// A process-wide clock for `last_update_time`, so jobs on different nodes compare.
static CLOCK: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

fn tick() -> u64 {
    CLOCK.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
}

pub struct Job {
    pub name: String,
    pub source: String,
    pub target: String,
    pub ranges: String,
    pub polls_left: u32,
    pub state: String,
    pub updated: u64,
}

#[derive(Default)]
pub struct SimState {
    pub id: String,
    pub topology: Option<Json>,
    pub epoch: u64,
    pub jobs: Vec<Job>,
    pub used_memory: u64,
    pub maxmemory: u64,
    pub busy: f64,
    pub io_threads: u32,
    pub active_io: u32,
    pub polls_to_finish: u32,
    pub rejected_pushes: u32,
    pub migrations_started: u32,
    pub fail_next_migration: bool,
    /// Simulates a dead process: every request closes the connection.
    pub down: bool,
}

pub type Shared = Arc<Mutex<SimState>>;

pub struct SimNode {
    pub port: u16,
    pub state: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SimNode {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SimNode {
    pub async fn start(id: String) -> SimNode {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let state = Arc::new(Mutex::new(SimState {
            id,
            io_threads: 1,
            maxmemory: 1 << 30,
            polls_to_finish: 2,
            ..SimState::default()
        }));
        let st = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let st = st.clone();
                tokio::spawn(async move {
                    let (r, mut w) = sock.into_split();
                    let mut r = BufReader::new(r);
                    while let Some(args) = read_command(&mut r).await {
                        if st.lock().unwrap().down {
                            // A dead process: the connection drops.
                            break;
                        }
                        let reply = handle(&st, &args);
                        if w.write_all(reply.as_bytes()).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        SimNode { port, state, task }
    }

    /// A restart without the data directory: a new id, no topology, no jobs.
    pub fn wipe_and_restart(&self, new_id: String) {
        let mut st = self.state.lock().unwrap();
        st.id = new_id;
        st.topology = None;
        st.epoch = 0;
        st.jobs.clear();
        st.down = false;
    }

    pub fn owned_slots(&self) -> usize {
        let st = self.state.lock().unwrap();
        let Some(t) = &st.topology else { return 0 };
        my_shard(t, &st.id).map_or(0, |s| {
            s["slots"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| (r[1].as_u64().unwrap() - r[0].as_u64().unwrap() + 1) as usize)
                .sum()
        })
    }
}

async fn read_command<R: tokio::io::AsyncBufRead + Unpin>(r: &mut R) -> Option<Vec<String>> {
    let mut line = String::new();
    if r.read_line(&mut line).await.ok()? == 0 {
        return None;
    }
    let n: usize = line.trim().strip_prefix('*')?.parse().ok()?;
    let mut args = Vec::with_capacity(n);
    for _ in 0..n {
        line.clear();
        r.read_line(&mut line).await.ok()?;
        let len: usize = line.trim().strip_prefix('$')?.parse().ok()?;
        let mut buf = vec![0u8; len + 2];
        r.read_exact(&mut buf).await.ok()?;
        buf.truncate(len);
        args.push(String::from_utf8(buf).ok()?);
    }
    Some(args)
}

fn bulk(s: &str) -> String {
    format!("${}\r\n{s}\r\n", s.len())
}

fn arr(items: &[String]) -> String {
    format!("*{}\r\n{}", items.len(), items.concat())
}

fn my_shard<'a>(t: &'a Json, id: &str) -> Option<&'a Json> {
    t["shards"]
        .as_array()?
        .iter()
        .find(|s| s["nodes"].as_array().is_some_and(|n| n.iter().any(|n| n["id"] == id)))
}

fn handle(st: &Shared, args: &[String]) -> String {
    let mut s = st.lock().unwrap();
    let up: Vec<String> = args.iter().map(|a| a.to_ascii_uppercase()).collect();
    let sub = up.get(1).map(String::as_str).unwrap_or("");
    match (up[0].as_str(), sub) {
        ("CLUSTER", "MYID") => bulk(&s.id),
        ("CLUSTER", "MYSHARDID") => match s.topology.as_ref().and_then(|t| my_shard(t, &s.id)) {
            Some(sh) => bulk(sh["id"].as_str().unwrap()),
            None => "-ERR No shard ID yet\r\n".into(),
        },
        ("CLUSTER", "INFO") => bulk(&format!("cluster_state:ok\r\ncluster_current_epoch:{}\r\n", s.epoch)),
        ("CLUSTER", "SETTOPOLOGY") => {
            let t: Json = serde_json::from_str(&args[2]).unwrap();
            let e = t["epoch"].as_u64().unwrap();
            if e < s.epoch || (e == s.epoch && s.topology.as_ref() != Some(&t)) {
                s.rejected_pushes += 1;
                return "-ERR stale epoch\r\n".into();
            }
            s.epoch = e;
            s.topology = Some(t);
            "+OK\r\n".into()
        }
        ("CLUSTER", "GETTOPOLOGY") => match &s.topology {
            Some(t) => bulk(&t.to_string()),
            None => "$-1\r\n".into(),
        },
        ("CLUSTER", "SHARDS") => {
            let Some(t) = &s.topology else { return "*0\r\n".into() };
            let shards: Vec<String> = t["shards"]
                .as_array()
                .unwrap()
                .iter()
                .map(|sh| {
                    let slots: Vec<String> = sh["slots"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .flat_map(|r| [format!(":{}\r\n", r[0]), format!(":{}\r\n", r[1])])
                        .collect();
                    let nodes: Vec<String> = sh["nodes"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|n| {
                            let role = if n["role"] == "primary" { "master" } else { "replica" };
                            let health = if n["fail"] == true { "fail" } else { "online" };
                            arr(&[
                                bulk("id"),
                                bulk(n["id"].as_str().unwrap()),
                                bulk("port"),
                                format!(":{}\r\n", n["port"]),
                                bulk("ip"),
                                bulk(n["ip"].as_str().unwrap()),
                                bulk("role"),
                                bulk(role),
                                bulk("health"),
                                bulk(health),
                            ])
                        })
                        .collect();
                    arr(&[bulk("slots"), arr(&slots), bulk("nodes"), arr(&nodes)])
                })
                .collect();
            arr(&shards)
        }
        ("CLUSTER", "MIGRATESLOTS") => {
            let node_at = up.iter().position(|a| a == "NODE").unwrap();
            let ranges: Vec<String> = args[3..node_at].chunks(2).map(|c| format!("{}-{}", c[0], c[1])).collect();
            if s.jobs.iter().any(|j| j.state == "running") {
                return "-ERR a migration is already running\r\n".into();
            }
            s.migrations_started += 1;
            let name = format!("{}-{}", &s.id[..6], s.migrations_started);
            let target = args[node_at + 1].clone();
            let id = s.id.clone();
            let polls = s.polls_to_finish;
            let state = if std::mem::take(&mut s.fail_next_migration) { "failed" } else { "running" };
            s.jobs.push(Job {
                name,
                source: id,
                target,
                ranges: ranges.join(" "),
                polls_left: polls,
                state: state.into(),
                updated: tick(),
            });
            "+OK\r\n".into()
        }
        ("CLUSTER", "GETSLOTMIGRATIONS") => {
            let mut out = Vec::new();
            for j in s.jobs.iter_mut() {
                if j.state == "running" {
                    j.polls_left = j.polls_left.saturating_sub(1);
                    if j.polls_left == 0 {
                        j.state = "success".into();
                        j.updated = tick();
                    }
                }
                out.push(arr(&[
                    bulk("name"),
                    bulk(&j.name),
                    bulk("operation"),
                    bulk("EXPORT"),
                    bulk("slot_ranges"),
                    bulk(&j.ranges),
                    bulk("source_node"),
                    bulk(&j.source),
                    bulk("target_node"),
                    bulk(&j.target),
                    bulk("state"),
                    bulk(&j.state),
                    bulk("last_update_time"),
                    bulk(&j.updated.to_string()),
                ]));
            }
            arr(&out)
        }
        ("INFO", _) => bulk(&format!(
            "# Server\r\nio_threads_active_count:{}\r\nexecutor_busy_ratio:{}\r\n# Memory\r\nused_memory:{}\r\nmaxmemory:{}\r\n",
            s.active_io, s.busy, s.used_memory, s.maxmemory
        )),
        ("CONFIG", "GET") => arr(&[bulk("io-threads"), bulk(&s.io_threads.to_string())]),
        ("CONFIG", "SET") => {
            s.io_threads = args[3].parse().unwrap();
            "+OK\r\n".into()
        }
        _ => "+OK\r\n".into(),
    }
}
