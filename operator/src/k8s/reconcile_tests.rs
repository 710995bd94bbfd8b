//! Reconcile scenarios against the fake API server (`fixtures.rs`): create, scale out, scale in
//! after drain, autoscaling recorded in status, deletion with the finalizer, errors and requeue.

use std::sync::Arc;

use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::Action;
use serde_json::{json, Value};

use super::crd::ShoalCluster;
use super::fixtures::{bounded, cluster, cluster_path, FakeApi, Sim};
use super::metrics::Metrics;
use super::reconcile::{error_policy, reconcile, Context, FINALIZER, REQUEUE_ERROR};
use super::resources::Defaults;

pub(super) const NS: &str = "/api/v1/namespaces/default";
pub(super) const APPS: &str = "/apis/apps/v1/namespaces/default";

pub(super) fn clock() -> Timestamp {
    "2026-01-01T00:00:00Z".parse().expect("timestamp")
}

pub(super) struct Harness {
    pub(super) ctx: Arc<Context>,
    pub(super) api: FakeApi,
    pub(super) sim: Sim,
    name: String,
}

impl Harness {
    pub(super) fn new(sc: ShoalCluster) -> Harness {
        let sim = Sim::default();
        let factory = sim.factory();
        Harness::with_factory(sc, sim, factory)
    }

    /// A harness whose control plane comes from `factory` (`sim` is then only a bystander).
    pub(super) fn with_factory(
        sc: ShoalCluster,
        sim: Sim,
        factory: Box<super::control::ControlFactory>,
    ) -> Harness {
        let (client, api) = FakeApi::start();
        let name = sc.metadata.name.clone().expect("name");
        api.put(&cluster_path("default", &name), serde_json::to_value(&sc).expect("json"));
        let ctx = Context::new(client, Arc::new(Metrics::default()), Defaults::default(), factory)
            .with_clock(clock);
        Harness { ctx: Arc::new(ctx), api, sim, name }
    }

    pub(super) fn path(&self) -> String {
        cluster_path("default", &self.name)
    }

    pub(super) fn stored(&self) -> ShoalCluster {
        serde_json::from_value(self.api.get(&self.path()).expect("cluster stored")).expect("cluster parses")
    }

    pub(super) fn edit(&self, f: impl FnOnce(&mut Value)) {
        let mut v = self.api.get(&self.path()).expect("cluster stored");
        f(&mut v);
        let g = v["metadata"]["generation"].as_i64().unwrap_or(1);
        v["metadata"]["generation"] = json!(g + 1);
        self.api.put(&self.path(), v);
    }

    pub(super) async fn once(&self) -> Result<Action, super::error::Error> {
        bounded(reconcile(Arc::new(self.stored()), self.ctx.clone())).await
    }

    /// Reconciles until the status says converged (Progressing False), at most `max` times.
    pub(super) async fn converge(&self, max: usize) -> usize {
        for i in 1..=max {
            self.once().await.expect("reconcile");
            if condition(&self.stored(), "Progressing").as_deref() == Some("False") {
                return i;
            }
        }
        panic!("not converged after {max} reconciles; sim layout {:?}", self.sim.layout());
    }

    pub(super) fn lines(&self) -> Vec<String> {
        self.api.requests().iter().map(|r| r.line()).collect()
    }

    pub(super) fn events(&self, reason: &str) -> Vec<Value> {
        self.api
            .requests()
            .into_iter()
            .filter(|r| r.path.starts_with("/apis/events.k8s.io/v1/"))
            .filter(|r| r.body["reason"] == reason)
            .map(|r| r.body)
            .collect()
    }
}

pub(super) fn condition(sc: &ShoalCluster, t: &str) -> Option<String> {
    sc.status.as_ref()?.conditions.iter().find(|c| c.type_ == t).map(|c| c.status.clone())
}

pub(super) fn sts(i: u32) -> String {
    format!("{APPS}/statefulsets/c-{i}")
}

#[tokio::test]
async fn create_adds_the_finalizer_first_then_owned_objects_and_status() {
    let h = Harness::new(cluster("c", 3));
    // First pass: only the finalizer (a JSON patch guarded by a test op), nothing else.
    assert!(matches!(h.once().await, Ok(a) if a == Action::await_change()));
    let reqs = h.api.requests();
    assert_eq!(reqs.len(), 1, "{:?}", h.lines());
    assert_eq!(reqs[0].method, "PATCH");
    assert!(reqs[0].content_type.starts_with("application/json-patch"));
    assert_eq!(h.stored().metadata.finalizers, Some(vec![FINALIZER.to_string()]));

    h.api.clear_requests();
    let action = h.once().await.expect("reconcile");
    assert_eq!(action, Action::requeue(super::reconcile::REQUEUE_BUSY));
    for p in [
        format!("{NS}/configmaps/c-config"),
        format!("{NS}/services/c-nodes"),
        format!("{NS}/services/c"),
        "/apis/policy/v1/namespaces/default/poddisruptionbudgets/c".into(),
        sts(0),
        sts(1),
        sts(2),
    ] {
        let obj = h.api.get(&p).unwrap_or_else(|| panic!("{p} not created"));
        assert_eq!(obj["metadata"]["ownerReferences"][0]["uid"], "uid-c", "{p}");
        assert_eq!(obj["metadata"]["ownerReferences"][0]["controller"], true, "{p}");
    }
    assert!(h.api.get(&sts(3)).is_none());
    // Every object write is server-side apply under one field manager, forced.
    for r in h.api.requests().iter().filter(|r| r.method == "PATCH" && !r.path.contains("events")) {
        assert!(r.content_type.starts_with("application/apply-patch"), "{} {}", r.line(), r.content_type);
        assert!(
            r.query.contains("fieldManager=shoal-operator") && r.query.contains("force=true"),
            "{}",
            r.query
        );
    }
    assert_eq!(h.events("ShardAdded").len(), 3);
    assert_eq!(h.events("TopologyPushed").len(), 1);
    assert_eq!(h.sim.log().steps, vec![(3, 0)]);

    let st = h.stored().status.expect("status written");
    assert_eq!(st.observed_generation, Some(1));
    assert_eq!(st.slots_assigned, 16384);
    assert_eq!(st.shards, 3);
    assert_eq!(st.shard_status.len(), 3);
    assert_eq!(st.selector, "app.kubernetes.io/name=shoal,app.kubernetes.io/instance=c");
    let types: Vec<&str> = st.conditions.iter().map(|c| c.type_.as_str()).collect();
    assert_eq!(types, super::status::CONDITIONS);
    assert_eq!(condition(&h.stored(), "Ready").as_deref(), Some("True"));
    assert_eq!(condition(&h.stored(), "Progressing").as_deref(), Some("True"));
    // The next pass finds nothing to do.
    assert_eq!(h.once().await.expect("reconcile"), Action::requeue(super::reconcile::REQUEUE_IDLE));
    assert_eq!(condition(&h.stored(), "Progressing").as_deref(), Some("False"));
    assert_eq!(h.events("ShardAdded").len(), 3, "existing shards are not announced again");
}

#[tokio::test]
async fn scale_out_adds_a_statefulset_and_moves_slots_to_it() {
    let h = Harness::new(cluster("c", 2));
    h.converge(5).await;
    h.api.clear_requests();
    h.edit(|v| v["spec"]["shards"] = json!(3));
    let n = h.converge(10).await;
    assert!(n >= 3, "a scale-out takes add, migrate, fold steps; took {n}");
    assert!(h.api.get(&sts(2)).is_some());
    let layout = h.sim.layout();
    assert_eq!(layout.len(), 3);
    for (_, slots) in &layout {
        assert!((5461..=5462).contains(slots), "{layout:?}");
    }
    assert!(!h.events("MigrationStarted").is_empty());
    assert_eq!(h.events("Resized").len(), 1);
    let text = h.ctx.metrics.encode();
    assert!(text.contains("shoal_operator_shards_added_total 3"), "{text}");
    assert!(!text.contains("shoal_operator_slots_moved_total 0"), "{text}");
    let st = h.stored().status.expect("status");
    assert_eq!((st.shards, st.observed_generation), (3, Some(2)));
    assert!(!h.lines().iter().any(|l| l.starts_with("DELETE")));
}

#[tokio::test]
async fn scale_in_deletes_a_statefulset_only_after_its_shard_is_drained() {
    let h = Harness::new(cluster("c", 3));
    h.converge(5).await;
    let gone_id = h.sim.layout()[2].0.clone();
    h.edit(|v| v["spec"]["shards"] = json!(2));
    let mut deleted_at = None;
    for i in 0..10 {
        h.api.clear_requests();
        h.once().await.expect("reconcile");
        let deleted = h.lines().contains(&format!("DELETE {}", sts(2)));
        let in_topology = h.sim.layout().iter().any(|(id, _)| *id == gone_id);
        if !deleted {
            assert!(h.api.get(&sts(2)).is_some(), "StatefulSet vanished without a DELETE");
            if in_topology {
                let st = h.stored().status.expect("status");
                let s2 = st.shard_status.iter().find(|s| s.ordinal == 2).expect("draining shard listed");
                assert!(s2.draining);
            }
        } else {
            assert!(!in_topology, "deleted while the topology still names the shard");
            deleted_at = Some(i);
            break;
        }
    }
    assert!(deleted_at.is_some_and(|i| i >= 2), "drain, then delete: {deleted_at:?}");
    assert!(h.api.get(&sts(2)).is_none());
    assert_eq!(h.events("ShardRemoved").len(), 1);
    h.converge(3).await;
    let st = h.stored().status.expect("status");
    assert_eq!((st.shards, st.slots_assigned, st.shard_status.len()), (2, 16384, 2));
}

fn autoscaled(recommend_only: bool) -> ShoalCluster {
    let mut sc = cluster("c", 2);
    sc.spec.autoscaling = Some(
        serde_json::from_value(json!({
            "enabled": true, "minShards": 1, "maxShards": 8, "targetCPUPercent": 50,
            "recommendOnly": recommend_only,
        }))
        .expect("autoscaling"),
    );
    sc
}

#[tokio::test]
async fn autoscaler_scales_out_through_the_scale_subresource_and_records_it() {
    let h = Harness::new(autoscaled(false));
    h.sim.set_busy(0.9);
    h.converge(5).await;
    let mut scaled = None;
    for _ in 0..6 {
        h.once().await.expect("reconcile");
        scaled = h.api.requests().into_iter().find(|r| r.method == "PATCH" && r.path.ends_with("/scale"));
        if scaled.is_some() {
            break;
        }
    }
    let scaled = scaled.expect("no /scale patch after a sustained breach");
    // 2 shards at 90% against a 50% target want ceil(2 × 90 / 50) = 4.
    assert_eq!(scaled.body, json!({"spec": {"replicas": 4}}));
    assert_eq!(h.stored().spec.shards, 4);
    let st = h.stored().status.expect("status");
    let d = st.autoscaling.and_then(|a| a.last_decision).expect("decision in status");
    assert_eq!((d.action.as_str(), d.from_shards, d.to_shards, d.applied), ("ScaleOut", 2, 4, true));
    assert!(d.figures.iter().any(|f| f.contains("Cpu 90.0%")), "{:?}", d.figures);
    assert_eq!(h.events("AutoscaleResize").len(), 1);
    assert!(h
        .ctx
        .metrics
        .encode()
        .contains("autoscale_decisions_total{action=\"scale_out\",applied=\"true\"} 1"));
    // The operator then follows its own spec change like any other.
    h.converge(10).await;
    assert_eq!(h.sim.layout().len(), 4);
}

#[tokio::test]
async fn recommend_only_records_the_decision_without_resizing() {
    let h = Harness::new(autoscaled(true));
    h.sim.set_busy(0.9);
    h.converge(5).await;
    for _ in 0..6 {
        h.once().await.expect("reconcile");
    }
    assert!(!h.lines().iter().any(|l| l.ends_with("/scale")));
    assert_eq!(h.stored().spec.shards, 2);
    let a = h.stored().status.and_then(|s| s.autoscaling).expect("autoscaling status");
    let d = a.last_decision.expect("decision");
    assert_eq!((d.to_shards, d.applied), (4, false));
    assert_eq!(a.recommended_shards, Some(4));
    assert_eq!(h.events("AutoscaleRecommendation").len(), 1, "a repeated recommendation is announced once");
    assert_eq!(condition(&h.stored(), "Autoscaling").as_deref(), Some("True"));
}

#[tokio::test]
async fn deletion_runs_cleanup_and_removes_the_finalizer() {
    let h = Harness::new(cluster("c", 1));
    h.converge(5).await;
    assert_eq!(h.ctx.known_clusters(), vec!["default/c".to_string()]);
    let mut v = h.api.get(&h.path()).expect("stored");
    v["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
    h.api.put(&h.path(), v);
    h.api.clear_requests();
    assert_eq!(h.once().await.expect("cleanup"), Action::await_change());
    assert_eq!(h.stored().metadata.finalizers.unwrap_or_default(), Vec::<String>::new());
    assert!(h.ctx.known_clusters().is_empty());
    assert_eq!(h.events("Deleting").len(), 1);
    // Owned objects are left to the garbage collector (owner references), not deleted here.
    assert!(!h.lines().iter().any(|l| l.starts_with("DELETE")), "{:?}", h.lines());
}

#[tokio::test]
async fn api_errors_fail_the_reconcile_and_requeue_with_a_labelled_metric() {
    let h = Harness::new(cluster("c", 2));
    h.once().await.expect("finalizer");
    h.api.fail_next("PATCH", "/configmaps/", 500);
    let err = h.once().await.expect_err("injected failure");
    assert_eq!(err.metric_label(), "kube");
    assert!(h.api.get(&sts(0)).is_none(), "nothing after the failed step is applied");
    let action = error_policy(Arc::new(h.stored()), &err, h.ctx.clone());
    assert_eq!(action, Action::requeue(REQUEUE_ERROR));
    assert!(h.ctx.metrics.encode().contains("reconcile_errors_total{kind=\"kube\"} 1"));
    // The retry succeeds.
    h.converge(5).await;
}

#[tokio::test]
async fn control_plane_errors_are_reported_as_degraded_in_status() {
    let h = Harness::new(cluster("c", 2));
    h.converge(5).await;
    h.sim.fail_next();
    let err = h.once().await.expect_err("planning failure");
    assert_eq!(err.metric_label(), "control_plane");
    let sc = h.stored();
    assert_eq!(condition(&sc, "Degraded").as_deref(), Some("True"));
    assert_eq!(condition(&sc, "Ready").as_deref(), Some("False"));
    let deg =
        sc.status.expect("status").conditions.into_iter().find(|c| c.type_ == "Degraded").expect("cond");
    assert_eq!(deg.reason, "ReconcileError");
    h.converge(3).await;
    assert_eq!(condition(&h.stored(), "Degraded").as_deref(), Some("False"));
}

#[tokio::test]
async fn primary_pods_get_the_slot_ownership_readiness_condition_once() {
    let h = Harness::new(cluster("c", 2));
    h.converge(5).await;
    for i in 0..2 {
        h.api.put(
            &format!("{NS}/pods/c-{i}-0"),
            json!({"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": format!("c-{i}-0"), "namespace": "default",
                                "labels": {"app.kubernetes.io/instance": "c", "shoal.dev/shard": i.to_string()}},
                   "status": {"conditions": []}}),
        );
    }
    h.api.clear_requests();
    h.once().await.expect("reconcile");
    for i in 0..2 {
        let pod = h.api.get(&format!("{NS}/pods/c-{i}-0")).expect("pod");
        let c = &pod["status"]["conditions"][0];
        assert_eq!((c["type"].as_str(), c["status"].as_str()), (Some("shoal.dev/slots-owned"), Some("True")));
    }
    let patches =
        |h: &Harness| h.lines().iter().filter(|l| l.ends_with("/status") && l.contains("/pods/")).count();
    assert_eq!(patches(&h), 2);
    h.api.clear_requests();
    h.once().await.expect("reconcile");
    assert_eq!(patches(&h), 0, "an unchanged condition is not patched again");
}

#[tokio::test]
async fn a_missing_servicemonitor_kind_is_a_warning_not_a_failure() {
    let mut sc = cluster("c", 1);
    sc.spec.metrics = Some(
        serde_json::from_value(json!({"enabled": true, "serviceMonitor": {"enabled": true}})).expect("m"),
    );
    let h = Harness::new(sc);
    h.once().await.expect("finalizer");
    h.api.fail_next("PATCH", "/servicemonitors/", 404);
    h.once().await.expect("reconcile succeeds without prometheus-operator");
    assert_eq!(h.events("ServiceMonitorUnavailable").len(), 1);
    assert!(h.api.get(&sts(0)).is_some());
    h.once().await.expect("reconcile");
    assert!(h.api.get("/apis/monitoring.coreos.com/v1/namespaces/default/servicemonitors/c").is_some());
}

#[tokio::test]
async fn statefulsets_of_another_owner_are_not_drained() {
    let h = Harness::new(cluster("c", 1));
    // A leftover StatefulSet with our labels but another owner (a deleted same-named cluster).
    h.api.put(
        &sts(5),
        json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
               "metadata": {"name": "c-5", "namespace": "default",
                            "labels": {"app.kubernetes.io/instance": "c", "app.kubernetes.io/component": "node", "shoal.dev/shard": "5"},
                            "ownerReferences": [{"apiVersion": "shoal.dev/v1alpha1", "kind": "ShoalCluster", "name": "c", "uid": "old"}]}}),
    );
    h.converge(5).await;
    assert_eq!(h.sim.log().steps.iter().map(|s| s.1).max(), Some(0));
    assert!(h.api.get(&sts(5)).is_some());
}

#[tokio::test]
async fn the_auth_secret_reaches_the_control_plane_and_a_missing_one_is_degraded() {
    let mut sc = cluster("c", 2);
    sc.spec.auth = Some(serde_json::from_value(json!({"secretRef": {"name": "c-auth"}})).expect("auth"));
    let h = Harness::new(sc);
    h.once().await.expect("finalizer");
    // No Secret yet: the reconcile fails with the kube label and the status says why.
    let err = h.once().await.expect_err("secret missing");
    assert_eq!(err.metric_label(), "kube");
    assert_eq!(condition(&h.stored(), "Degraded").as_deref(), Some("True"));
    // A Secret without the key: a clear error of its own.
    h.api.put(
        &format!("{NS}/secrets/c-auth"),
        json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "c-auth", "namespace": "default"}, "data": {"other": "eA=="}}),
    );
    let err = h.once().await.expect_err("key missing");
    assert_eq!(err.metric_label(), "auth_secret");
    assert!(err.to_string().contains("default/c-auth") && err.to_string().contains("password"), "{err}");
    // With the password (base64 of "s3cret:\n", a trailing newline as `kubectl create secret
    // --from-file` leaves it), every step gets it without the newline.
    h.api.put(
        &format!("{NS}/secrets/c-auth"),
        json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "c-auth", "namespace": "default"}, "data": {"password": "czNjcmV0Ogo="}}),
    );
    h.converge(5).await;
    let pws = h.sim.log().passwords;
    assert!(!pws.is_empty());
    assert!(pws.iter().all(|p| p.as_deref() == Some("s3cret:")), "{pws:?}");
    assert_eq!(condition(&h.stored(), "Degraded").as_deref(), Some("False"));
}

const NETPOL: &str = "/apis/networking.k8s.io/v1/namespaces/default/networkpolicies/c";

#[tokio::test]
async fn the_network_policy_is_applied_while_enabled_and_deleted_when_turned_off() {
    let mut sc = cluster("c", 2);
    sc.spec.network_policy = Some(
        serde_json::from_value(
            json!({"enabled": true, "clients": [{"podSelector": {"matchLabels": {"app": "web"}}}]}),
        )
        .expect("networkPolicy"),
    );
    let h = Harness::new(sc);
    h.converge(5).await;
    let np = h.api.get(NETPOL).expect("NetworkPolicy applied");
    assert_eq!(np["metadata"]["ownerReferences"][0]["uid"], "uid-c");
    let from = &np["spec"]["ingress"][0]["from"];
    assert_eq!(from[0]["podSelector"]["matchLabels"]["app.kubernetes.io/instance"], "c");
    assert_eq!(from[1]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"], "shoal-system");
    assert_eq!(from[2]["podSelector"]["matchLabels"]["app"], "web");
    let applied = h.api.requests().into_iter().find(|r| r.path == NETPOL).expect("a request for it");
    assert_eq!(applied.method, "PATCH");
    assert!(applied.content_type.starts_with("application/apply-patch"), "{}", applied.content_type);

    // Turned off: the next reconcile deletes it (only ours, by uid), says so, and stops looking.
    h.edit(|v| v["spec"]["networkPolicy"]["enabled"] = json!(false));
    h.api.clear_requests();
    h.once().await.expect("reconcile");
    assert!(h.api.get(NETPOL).is_none(), "still there: {:?}", h.lines());
    let delete = h.api.requests().into_iter().find(|r| r.method == "DELETE" && r.path == NETPOL);
    assert_eq!(delete.expect("DELETE").body["preconditions"]["uid"], np["metadata"]["uid"]);
    assert_eq!(h.events("NetworkPolicyRemoved").len(), 1);
    h.api.clear_requests();
    h.once().await.expect("reconcile");
    assert!(!h.lines().iter().any(|l| l.contains("/networkpolicies/")), "{:?}", h.lines());
}

#[tokio::test]
async fn without_a_network_policy_one_is_neither_made_nor_someone_elses_deleted() {
    let h = Harness::new(cluster("c", 1));
    // A same-named policy the cluster does not own (a user's, or a deleted namesake's).
    h.api.put(
        NETPOL,
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
               "metadata": {"name": "c", "namespace": "default", "uid": "np-1",
                            "ownerReferences": [{"apiVersion": "shoal.dev/v1alpha1", "kind": "ShoalCluster", "name": "c", "uid": "old"}]},
               "spec": {"podSelector": {}}}),
    );
    h.converge(5).await;
    assert_eq!(h.api.get(NETPOL).expect("left alone")["metadata"]["uid"], "np-1");
    let np_requests: Vec<String> =
        h.lines().into_iter().filter(|l| l.contains("/networkpolicies/")).collect();
    assert_eq!(np_requests, [format!("GET {NETPOL}")], "one look per operator lifetime");
    assert!(h.events("NetworkPolicyRemoved").is_empty());
}

fn secret(name: &str, data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": "default"}, "data": data})
}

/// Base64, as a Secret's `data` holds it (through k8s-openapi's own codec).
fn b64(s: &str) -> Value {
    serde_json::to_value(k8s_openapi::ByteString(s.as_bytes().to_vec())).expect("base64")
}

fn unb64(v: &Value) -> String {
    let b: k8s_openapi::ByteString = serde_json::from_value(v.clone()).expect("base64");
    String::from_utf8(b.0).expect("utf8")
}

#[tokio::test]
async fn users_and_tls_reach_the_nodes_and_rotate_without_a_restart() {
    let mut sc = cluster("c", 2);
    sc.spec.auth = Some(serde_json::from_value(json!({"secretRef": {"name": "c-auth"}})).expect("auth"));
    sc.spec.users = serde_json::from_value(json!([
        {"name": "app", "rules": "~app:* +@all -@dangerous", "passwordSecretRef": {"name": "app-pw"}},
        {"name": "ro", "rules": "~* +@read", "passwordSecretRef": {"name": "ro-pw", "key": "pw"}, "enabled": false}
    ]))
    .expect("users");
    sc.spec.tls =
        Some(serde_json::from_value(json!({"secretName": "c-tls", "authClients": "yes"})).expect("tls"));
    let h = Harness::new(sc);
    h.api.put(&format!("{NS}/secrets/c-auth"), secret("c-auth", json!({"password": b64("root")})));
    h.api.put(&format!("{NS}/secrets/app-pw"), secret("app-pw", json!({"password": b64("one\n")})));
    h.once().await.expect("finalizer");
    // A user's Secret missing: its own error, and Degraded.
    let err = h.once().await.expect_err("ro-pw missing");
    assert_eq!(err.metric_label(), "user_secret");
    assert!(err.to_string().contains("user ro") && err.to_string().contains("default/ro-pw"), "{err}");
    h.api.put(&format!("{NS}/secrets/ro-pw"), secret("ro-pw", json!({"pw": b64("two")})));
    // The TLS Secret missing its CA: its own error too.
    h.api.put(
        &format!("{NS}/secrets/c-tls"),
        secret("c-tls", json!({"tls.crt": b64("CERT"), "tls.key": b64("KEY")})),
    );
    let err = h.once().await.expect_err("ca.crt missing");
    assert_eq!(err.metric_label(), "tls_secret");
    assert!(err.to_string().contains("ca.crt"), "{err}");
    h.api.put(
        &format!("{NS}/secrets/c-tls"),
        secret("c-tls", json!({"tls.crt": b64("CERT"), "tls.key": b64("KEY"), "ca.crt": b64("CA")})),
    );
    h.converge(5).await;
    assert_eq!(condition(&h.stored(), "Degraded").as_deref(), Some("False"));

    // The operator's password: generated once, 64 hex digits, kept across reconciles.
    let op = h.api.get(&format!("{NS}/secrets/c-operator")).expect("operator secret");
    let op_pw = unb64(&op["data"]["password"]);
    assert!(op_pw.len() == 64 && op_pw.bytes().all(|b| b.is_ascii_hexdigit()), "{op_pw}");
    // The control plane connects as the operator, falls back to default's password, over TLS
    // with the CA and (authClients yes) the Secret's own certificate.
    let log = h.sim.log();
    let creds = log.credentials.last().expect("credentials").clone();
    assert_eq!(creds.user.as_deref(), Some("shoal-operator"));
    assert_eq!(creds.password.as_deref(), Some(op_pw.as_str()));
    assert_eq!(creds.fallback.as_deref(), Some("root"));
    let tls = creds.tls.expect("tls");
    assert_eq!(tls.ca_pem, b"CA");
    assert_eq!(tls.client, Some((b"CERT".to_vec(), b"KEY".to_vec())));
    // The users the nodes must have: the operator's and the spec's, passwords as hashes; the
    // default user is kept, never set (requirepass owns it).
    let users = log.users.last().expect("users").clone();
    let names: Vec<&str> = users.users.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["shoal-operator", "app", "ro"]);
    assert_eq!(users.keep, ["default"]);
    let app = &users.users[1].1;
    let one = super::security::sha256_hex(b"one");
    assert_eq!(app, &["reset", "on", &format!("#{one}"), "~app:*", "+@all", "-@dangerous"]);
    assert_eq!(users.users[2].1[1], "off");
    // The ACL file has the same, and `default` with requirepass's hash.
    let acl = h.api.get(&format!("{NS}/secrets/c-acl")).expect("acl secret");
    let file = unb64(&acl["data"]["users.acl"]);
    let root = super::security::sha256_hex(b"root");
    assert!(file.contains(&format!("user default on #{root} ~* &* +@all\n")), "{file}");
    assert!(file.contains(&format!("user app on #{one} ~app:* +@all -@dangerous\n")), "{file}");
    assert!(!file.contains("one\n") && !file.contains("root\n"), "a clear password in:\n{file}");

    // Rotation: a new password in the Secret reaches the next sync, no pod is touched.
    let sts_before = h.api.get(&format!("{APPS}/statefulsets/c-0")).expect("sts");
    h.api.put(&format!("{NS}/secrets/app-pw"), secret("app-pw", json!({"password": b64("uno")})));
    h.converge(2).await;
    let users = h.sim.log().users.last().expect("users").clone();
    let uno = super::security::sha256_hex(b"uno");
    assert_eq!(users.users[1].1[2], format!("#{uno}"));
    let sts_after = h.api.get(&format!("{APPS}/statefulsets/c-0")).expect("sts");
    assert_eq!(
        sts_before["spec"]["template"], sts_after["spec"]["template"],
        "a password rotation must not change the pod template"
    );
}
