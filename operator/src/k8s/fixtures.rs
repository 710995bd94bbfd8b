//! Test fixtures for the reconciler: an in-process fake Kubernetes API server behind kube's
//! `Client` (over `tower_test::mock`, as controller-rs does), and a simulated control plane.
//!
//! The fake API server is a small object store rather than a fixed script of expected requests:
//! it answers GET/LIST (with label selectors), server-side apply, merge, strategic and JSON
//! patches (the finalizer's), `/status` and `/scale`, DELETE and POST, and records every request.
//! Tests then assert on the objects it holds and the requests it saw, so they pin down behaviour
//! (what was created, patched, deleted) without depending on incidental request order.
//!
//! The simulated control plane stands in for shard nodes, which cannot run behind a mocked API
//! server's DNS names. It uses the real planner, so layouts and moves are the production ones; it
//! completes a migration one step after starting it and removes drained shards one step later,
//! the same sequence the real driver follows. Every desired node of a shard is in the topology
//! (the first a primary, the rest in-sync replicas) and answers; a test may mark a replica
//! syncing; a planned failover swaps the roles at the next epoch.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use http::{Request, Response};
use kube::client::Body;
use kube::Client;
use serde_json::{json, Value};

use super::control::NodeControl;
use super::crd::{ShoalCluster, ShoalClusterSpec};
use crate::controlplane::credentials::Credentials;
use crate::controlplane::driver::{DesiredShard, DriverError, Phase, StepReport};
use crate::controlplane::failover::{Cause, FailoverRecord};
use crate::controlplane::model::{
    MigrationJob, MigrationOperation, MigrationState, NodeAddr, NodeId, NodeMetrics, ObservedNode,
    ObservedState, ReplicationInfo, Role, ShardId, Topology, TopologyNode, TopologyShard,
};
use crate::controlplane::planner::{plan, PlanError, PlanInput, PlanOptions, SlotMove};
use crate::controlplane::users::{DesiredUsers, UsersReport};

/// One request the fake API server received.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: String,
    pub content_type: String,
    pub body: Value,
}

impl Recorded {
    /// `METHOD path` — compact for assertions.
    pub fn line(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

#[derive(Default)]
struct ApiState {
    objects: BTreeMap<String, Value>,
    log: Vec<Recorded>,
    /// (method, path substring, status code): the next matching request fails once.
    failures: Vec<(String, String, u16)>,
    version: u64,
}

/// The fake API server's handle.
#[derive(Clone, Default)]
pub struct FakeApi {
    state: Arc<Mutex<ApiState>>,
}

const COLLECTIONS: &[&str] = &[
    "statefulsets",
    "pods",
    "services",
    "configmaps",
    "poddisruptionbudgets",
    "networkpolicies",
    "shoalclusters",
    "events",
    "servicemonitors",
    "nodes",
];

impl FakeApi {
    /// A client wired to a new fake server, whose task runs until the client is dropped.
    pub fn start() -> (Client, FakeApi) {
        let (svc, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let api = FakeApi::default();
        let server = api.clone();
        tokio::spawn(async move {
            while let Some((req, send)) = handle.next_request().await {
                let resp = server.handle(req).await;
                send.send_response(resp);
            }
        });
        (Client::new(svc, "default"), api)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ApiState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stores an object at its API path (e.g. a ShoalCluster as a user created it).
    pub fn put(&self, path: &str, obj: Value) {
        self.lock().objects.insert(path.to_string(), obj);
    }

    pub fn get(&self, path: &str) -> Option<Value> {
        self.lock().objects.get(path).cloned()
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.lock().log.clone()
    }

    pub fn clear_requests(&self) {
        self.lock().log.clear();
    }

    /// Makes the next `method` request whose path contains `path` fail with `code`.
    pub fn fail_next(&self, method: &str, path: &str, code: u16) {
        self.lock().failures.push((method.into(), path.into(), code));
    }

    async fn handle(&self, req: Request<Body>) -> Response<Body> {
        let (parts, body) = req.into_parts();
        let bytes = body.collect_bytes().await.unwrap_or_default();
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let rec = Recorded {
            method: parts.method.to_string(),
            path: parts.uri.path().to_string(),
            query: percent_decode(parts.uri.query().unwrap_or("")),
            content_type: parts
                .headers
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string(),
            body,
        };
        let mut st = self.lock();
        st.log.push(rec.clone());
        if let Some(i) =
            st.failures.iter().position(|(m, p, _)| *m == rec.method && rec.path.contains(p.as_str()))
        {
            let (_, _, code) = st.failures.remove(i);
            return status(code, "injected failure");
        }
        st.version += 1;
        let version = st.version;
        serve(&mut st.objects, &rec, version)
    }
}

fn percent_decode(s: &str) -> String {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn respond(code: u16, v: &Value) -> Response<Body> {
    Response::builder()
        .status(code)
        .body(Body::from(serde_json::to_vec(v).unwrap_or_default()))
        .expect("a valid response")
}

fn status(code: u16, msg: &str) -> Response<Body> {
    let reason = match code {
        404 => "NotFound",
        409 => "Conflict",
        422 => "Invalid",
        _ => "InternalError",
    };
    respond(
        code,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": msg, "reason": reason, "code": code}),
    )
}

/// Deep merge (JSON merge patch semantics; `conditions` lists merge by `type`, like the
/// strategic merge the API server does for them).
fn merge(a: &mut Value, b: &Value) {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                if v.is_null() {
                    a.remove(k);
                } else if k == "conditions" && v.is_array() && a.get(k).is_some_and(Value::is_array) {
                    let list = a.get_mut(k).and_then(Value::as_array_mut).expect("checked");
                    for c in v.as_array().expect("checked") {
                        match list.iter_mut().find(|x| x.get("type") == c.get("type")) {
                            Some(x) => *x = c.clone(),
                            None => list.push(c.clone()),
                        }
                    }
                } else {
                    merge(a.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (a, b) => *a = b.clone(),
    }
}

fn label_match(obj: &Value, query: &str) -> bool {
    let Some(sel) = query.split('&').find_map(|kv| kv.strip_prefix("labelSelector=")) else { return true };
    sel.split(',').filter(|t| !t.is_empty()).all(|term| {
        let (k, v) = term.split_once('=').unwrap_or((term, ""));
        obj.pointer("/metadata/labels").and_then(|l| l.get(k)).and_then(Value::as_str) == Some(v)
    })
}

fn serve(objects: &mut BTreeMap<String, Value>, rec: &Recorded, version: u64) -> Response<Body> {
    let (base, sub) = match rec.path.rsplit_once('/') {
        Some((b, s @ ("status" | "scale"))) => (b.to_string(), Some(s)),
        _ => (rec.path.clone(), None),
    };
    let is_collection = base.rsplit('/').next().is_some_and(|l| COLLECTIONS.contains(&l));
    match rec.method.as_str() {
        "GET" if is_collection => {
            let prefix = format!("{base}/");
            let items: Vec<Value> = objects
                .iter()
                .filter(|(k, _)| k.starts_with(&prefix) && !k[prefix.len()..].contains('/'))
                .map(|(_, v)| v.clone())
                .filter(|v| label_match(v, &rec.query))
                .collect();
            respond(
                200,
                &json!({"kind": "List", "apiVersion": "v1", "metadata": {"resourceVersion": version.to_string()}, "items": items}),
            )
        }
        "GET" => match objects.get(&base) {
            Some(o) => respond(200, o),
            None => status(404, "not found"),
        },
        "DELETE" => match objects.remove(&base) {
            Some(o) => respond(200, &o),
            None => status(404, "not found"),
        },
        "POST" => {
            let name = rec.body.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("generated");
            objects.insert(format!("{base}/{name}"), rec.body.clone());
            respond(201, &rec.body)
        }
        "PATCH" => {
            let apply = rec.content_type.starts_with("application/apply-patch");
            let existing = objects.get(&base).cloned();
            if sub == Some("scale") {
                let Some(mut o) = existing else { return status(404, "not found") };
                let replicas = rec.body.pointer("/spec/replicas").cloned().unwrap_or(Value::Null);
                o["spec"]["shards"] = replicas.clone();
                objects.insert(base, o.clone());
                return respond(
                    200,
                    &json!({"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": o["metadata"],
                            "spec": {"replicas": replicas}, "status": {"replicas": 0}}),
                );
            }
            let mut o = match (existing, apply) {
                (Some(o), _) => o,
                (None, true) if sub.is_none() => json!({}),
                (None, _) => return status(404, "not found"),
            };
            if rec.content_type.starts_with("application/json-patch") {
                // Like the API server (Go's json-patch), a `test` for null passes on a missing key.
                for op in rec.body.as_array().into_iter().flatten() {
                    let path = op["path"].as_str().unwrap_or("");
                    if op["op"] == "test" && op["value"].is_null() && o.pointer(path).is_none() {
                        if let Some((parent, key)) = path.rsplit_once('/') {
                            if let Some(obj) = o.pointer_mut(parent).and_then(Value::as_object_mut) {
                                obj.insert(key.to_string(), Value::Null);
                            }
                        }
                    }
                }
                let Ok(p) = serde_json::from_value::<json_patch::Patch>(rec.body.clone()) else {
                    return status(422, "bad json patch");
                };
                if let Err(e) = json_patch::patch(&mut o, &p) {
                    return status(422, &e.to_string());
                }
            } else {
                let mut body = rec.body.clone();
                if sub.is_none() {
                    // The status subresource is the only way to write status.
                    if let Some(b) = body.as_object_mut() {
                        b.remove("status");
                    }
                }
                merge(&mut o, &body);
            }
            o["metadata"]["resourceVersion"] = version.to_string().into();
            if o.pointer("/metadata/uid").is_none() {
                o["metadata"]["uid"] = format!("uid-{version}").into();
            }
            objects.insert(base, o.clone());
            respond(200, &o)
        }
        _ => status(500, "unsupported"),
    }
}

/// The API path of a ShoalCluster.
pub fn cluster_path(ns: &str, name: &str) -> String {
    format!("/apis/shoal.dev/v1alpha1/namespaces/{ns}/shoalclusters/{name}")
}

/// A ShoalCluster as a user would create it (with the uid and generation the API server adds).
pub fn cluster(name: &str, shards: i32) -> ShoalCluster {
    let spec: ShoalClusterSpec = serde_json::from_value(json!({ "shards": shards })).expect("spec");
    let mut sc = ShoalCluster::new(name, spec);
    sc.metadata.namespace = Some("default".into());
    sc.metadata.uid = Some(format!("uid-{name}"));
    sc.metadata.generation = Some(1);
    sc
}

/// What the simulated control plane was asked.
#[derive(Clone, Debug, Default)]
pub struct SimLog {
    /// Per step: desired shard count and drained-node count.
    pub steps: Vec<(usize, usize)>,
    pub io_threads: Vec<(NodeAddr, u32)>,
    /// The password handed over before each step.
    /// The `default` user's password (the credentials' fallback) of each step.
    pub passwords: Vec<Option<String>>,
    /// The credentials of each step.
    pub credentials: Vec<Credentials>,
    /// The users each sync asked for.
    pub users: Vec<DesiredUsers>,
    /// Planned failovers asked for: (shard, new primary).
    pub failovers: Vec<(ShardId, NodeId)>,
}

#[derive(Default)]
struct SimInner {
    topo: Option<Topology>,
    running: Vec<SlotMove>,
    done: Vec<MigrationJob>,
    addrs: HashMap<ShardId, NodeAddr>,
    /// Every desired node of each shard, in order.
    members: HashMap<ShardId, Vec<NodeAddr>>,
    /// Replicas loading a full sync (not in sync).
    syncing: HashSet<NodeAddr>,
    busy: f64,
    fail: bool,
    log: SimLog,
}

/// The simulated control plane's handle; clones share state.
#[derive(Clone, Default)]
pub struct Sim {
    inner: Arc<Mutex<SimInner>>,
}

impl Sim {
    fn lock(&self) -> std::sync::MutexGuard<'_, SimInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
    /// Sets every node's executor busy ratio (0..=1).
    pub fn set_busy(&self, ratio: f64) {
        self.lock().busy = ratio;
    }
    /// Makes the next step fail to plan.
    pub fn fail_next(&self) {
        self.lock().fail = true;
    }
    pub fn log(&self) -> SimLog {
        self.lock().log.clone()
    }
    /// Shards in the simulated topology and the slots each owns.
    pub fn layout(&self) -> Vec<(ShardId, usize)> {
        self.lock()
            .topo
            .as_ref()
            .map(|t| t.shards.iter().map(|s| (s.id.clone(), s.slot_count())).collect())
            .unwrap_or_default()
    }
    /// Makes the replica at `addr` report a full sync in progress (`true`) or in sync.
    pub fn set_syncing(&self, addr: &NodeAddr, syncing: bool) {
        let mut s = self.lock();
        if syncing {
            s.syncing.insert(addr.clone());
        } else {
            s.syncing.remove(addr);
        }
    }
    /// The simulated topology.
    pub fn topology(&self) -> Option<Topology> {
        self.lock().topo.clone()
    }
    /// A factory for `Context::new`.
    pub fn factory(&self) -> Box<super::control::ControlFactory> {
        let s = self.clone();
        Box::new(move || Box::new(s.clone()))
    }
}

fn node_id(id: &ShardId) -> NodeId {
    NodeId(format!("n{}", &id.0[..8.min(id.0.len())]))
}

/// The node id of desired node `i` of shard `id` (0: the shard's first primary).
fn member_id(id: &ShardId, i: usize) -> NodeId {
    if i == 0 {
        node_id(id)
    } else {
        NodeId(format!("r{i}{}", &id.0[..8.min(id.0.len())]))
    }
}

fn shard(
    id: &ShardId,
    members: &[NodeAddr],
    slots: Vec<crate::controlplane::model::SlotRange>,
) -> TopologyShard {
    let nodes = members
        .iter()
        .enumerate()
        .map(|(i, addr)| TopologyNode {
            id: member_id(id, i),
            ip: addr.ip.clone(),
            hostname: addr.hostname.clone(),
            port: addr.port,
            role: if i == 0 { Role::Primary } else { Role::Replica },
            fail: false,
        })
        .collect();
    TopologyShard { id: id.clone(), slots, nodes }
}

impl SimInner {
    fn step(&mut self, desired: &[DesiredShard], others: &[NodeAddr]) -> Result<StepReport, DriverError> {
        self.log.steps.push((desired.len(), others.len()));
        if std::mem::take(&mut self.fail) {
            return Err(DriverError::Plan(PlanError::NoShards));
        }
        for d in desired {
            self.addrs.insert(d.id.clone(), d.nodes[0].clone());
            self.members.insert(d.id.clone(), d.nodes.clone());
        }
        let ids: Vec<ShardId> = desired.iter().map(|d| d.id.clone()).collect();
        let opts = PlanOptions::default();
        let mut actions = Vec::new();
        let (phase, running) = match self.topo.take() {
            None => {
                let p = plan(&PlanInput { current: vec![], desired: ids }, &opts)?;
                let shards =
                    p.layout.iter().map(|s| shard(&s.id, &self.members[&s.id], s.slots.clone())).collect();
                self.topo = Some(Topology { epoch: 1, shards });
                actions.push("pushed topology epoch 1 to all node(s): claim unowned slots".to_string());
                (Phase::Progressing, vec![])
            }
            Some(mut t) => {
                let p = plan(&PlanInput::from_topology(&t, ids.clone()), &opts)?;
                if !self.running.is_empty() {
                    // Finish the running moves: the real driver folds finished jobs in likewise.
                    for m in std::mem::take(&mut self.running) {
                        for s in t.shards.iter_mut() {
                            if s.id == m.from {
                                let gone: std::collections::BTreeSet<u16> =
                                    m.slots.iter().flat_map(|r| r.slots()).collect();
                                let keep: Vec<u16> = s
                                    .slots
                                    .iter()
                                    .flat_map(|r| r.slots())
                                    .filter(|x| !gone.contains(x))
                                    .collect();
                                s.slots = crate::controlplane::model::ranges_of(keep);
                            }
                        }
                        for s in t.shards.iter_mut() {
                            if s.id == m.to {
                                let mut all: Vec<u16> = s.slots.iter().flat_map(|r| r.slots()).collect();
                                all.extend(m.slots.iter().flat_map(|r| r.slots()));
                                all.sort_unstable();
                                s.slots = crate::controlplane::model::ranges_of(all);
                            }
                        }
                        let mut job = job_of(&m, self.done.len());
                        job.state = MigrationState::Success;
                        self.done.push(job);
                    }
                    t.epoch += 1;
                    actions.push(format!(
                        "pushed topology epoch {} to all node(s): migrated slots change owner",
                        t.epoch
                    ));
                    self.topo = Some(t);
                    (Phase::Progressing, vec![])
                } else if !p.added.is_empty() || !p.claims.is_empty() {
                    for id in &p.added {
                        t.shards.push(shard(id, &self.members[id], vec![]));
                    }
                    t.epoch += 1;
                    actions.push(format!("pushed topology epoch {} to all node(s): add shards", t.epoch));
                    self.topo = Some(t);
                    (Phase::Progressing, vec![])
                } else if !p.moves.is_empty() {
                    self.running = p.moves.clone();
                    let jobs: Vec<MigrationJob> = self
                        .running
                        .iter()
                        .enumerate()
                        .map(|(i, m)| job_of(m, self.done.len() + i))
                        .collect();
                    self.topo = Some(t);
                    (Phase::Migrating, jobs)
                } else if !p.drained.is_empty() {
                    t.shards.retain(|s| !p.drained.contains(&s.id));
                    t.epoch += 1;
                    actions.push(format!(
                        "pushed topology epoch {} to all node(s): remove drained shards",
                        t.epoch
                    ));
                    self.topo = Some(t);
                    (Phase::Progressing, vec![])
                } else {
                    self.topo = Some(t);
                    (Phase::Converged, vec![])
                }
            }
        };
        let topo = self.topo.clone();
        let slots_to_move = topo
            .as_ref()
            .and_then(|t| {
                plan(&PlanInput::from_topology(t, desired.iter().map(|d| d.id.clone()).collect()), &opts).ok()
            })
            .map_or(0, |p| p.moved_slots());
        let mut nodes = Vec::new();
        let epoch = topo.as_ref().map_or(0, |t| t.epoch);
        let metrics =
            Some(NodeMetrics { executor_busy_ratio: self.busy, io_threads: 1, ..Default::default() });
        for d in desired {
            for (i, addr) in d.nodes.iter().enumerate() {
                // The id the topology holds at this address, else the one it will get.
                let entry = topo
                    .as_ref()
                    .and_then(|t| t.shard(&d.id))
                    .and_then(|s| s.nodes.iter().find(|n| n.ip == addr.ip && n.port == addr.port).cloned());
                let id = entry.as_ref().map_or_else(|| member_id(&d.id, i), |n| n.id.clone());
                let role =
                    entry.as_ref().map_or(if i == 0 { Role::Primary } else { Role::Replica }, |n| n.role);
                let replica = role == Role::Replica;
                nodes.push(ObservedNode {
                    addr: addr.clone(),
                    id: Some(id.clone()),
                    epoch,
                    metrics: metrics.clone(),
                    migrations: self.done.iter().filter(|j| j.source_node == id).cloned().collect(),
                    replication: Some(ReplicationInfo {
                        role: Some(role),
                        master_repl_offset: 1000,
                        replica_offset: replica.then_some(1000),
                        link_up: replica,
                        sync_in_progress: replica && self.syncing.contains(addr),
                        ..Default::default()
                    }),
                    error: None,
                });
            }
        }
        for a in others {
            let id = self.addrs.iter().find(|(_, v)| *v == a).map(|(k, _)| node_id(k));
            nodes.push(ObservedNode {
                addr: a.clone(),
                id: id.clone(),
                epoch,
                metrics: metrics.clone(),
                migrations: self
                    .done
                    .iter()
                    .filter(|j| Some(&j.source_node) == id.as_ref())
                    .cloned()
                    .collect(),
                replication: None,
                error: None,
            });
        }
        Ok(StepReport {
            phase,
            actions,
            observed: ObservedState { topology: topo, nodes },
            running,
            slots_to_move,
            unserved_slots: 0,
            membership: Vec::new(),
            stuck: Vec::new(),
            failovers: Vec::new(),
        })
    }
}

fn job_of(m: &SlotMove, n: usize) -> MigrationJob {
    MigrationJob {
        name: format!("job-{n}"),
        operation: MigrationOperation::Export,
        slots: m.slots.clone(),
        source_node: node_id(&m.from),
        target_node: node_id(&m.to),
        state: MigrationState::Running,
        message: String::new(),
        last_update: n as u64,
    }
}

impl NodeControl for Sim {
    fn step<'a>(
        &'a mut self,
        desired: &'a [DesiredShard],
        others: &'a [NodeAddr],
    ) -> BoxFuture<'a, Result<StepReport, DriverError>> {
        let r = self.lock().step(desired, others);
        Box::pin(async move { r })
    }

    fn set_io_threads<'a>(&'a mut self, addr: &'a NodeAddr, n: u32) -> BoxFuture<'a, Result<(), String>> {
        self.lock().log.io_threads.push((addr.clone(), n));
        Box::pin(async { Ok(()) })
    }

    fn set_credentials(&mut self, creds: Credentials) {
        let mut s = self.lock();
        s.log.passwords.push(creds.fallback.clone());
        s.log.credentials.push(creds);
    }

    fn sync_users<'a>(
        &'a mut self,
        addrs: &'a [NodeAddr],
        desired: &'a DesiredUsers,
    ) -> BoxFuture<'a, UsersReport> {
        self.lock().log.users.push(desired.clone());
        let updated = addrs.to_vec();
        Box::pin(async move { UsersReport { updated, ..UsersReport::default() } })
    }

    fn planned_failover<'a>(
        &'a mut self,
        _obs: &'a ObservedState,
        shard: &'a ShardId,
        to: &'a NodeId,
    ) -> BoxFuture<'a, Result<FailoverRecord, String>> {
        let mut s = self.lock();
        s.log.failovers.push((shard.clone(), to.clone()));
        let r = match s.topo.as_mut() {
            Some(t) => {
                let old = t.shard(shard).and_then(|x| x.primary()).map(|p| p.id.clone());
                match (old, crate::controlplane::failover::promote(t, shard, to)) {
                    (Some(old), Ok(_)) => {
                        t.epoch += 1;
                        Ok(FailoverRecord {
                            shard: shard.clone(),
                            old_primary: old,
                            new_primary: to.clone(),
                            cause: Cause::Planned,
                            epoch: t.epoch,
                            offset: 1000,
                            recovered_in: Duration::from_millis(30),
                        })
                    }
                    (_, Err(e)) => Err(e.to_string()),
                    (None, _) => Err("no primary".to_string()),
                }
            }
            None => Err("no topology".to_string()),
        };
        Box::pin(async move { r })
    }
}

/// Bounds a test future: a reconcile that hangs fails the test instead of the suite.
pub async fn bounded<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(10), f).await.expect("bounded: did not finish within 10 s")
}
