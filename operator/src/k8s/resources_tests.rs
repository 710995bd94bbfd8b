//! Golden tests of the object builders: each object for a representative cluster is compared with
//! a checked-in YAML file under `golden/`. A change to a builder shows up as a reviewable diff;
//! regenerate with `SHOAL_UPDATE_GOLDEN=1 cargo test -p shoal-operator golden`.

use std::path::PathBuf;

use serde::Serialize;
use serde_json::json;

use super::crd::ShoalCluster;
use super::resources::*;

fn full() -> ShoalCluster {
    let mut sc: ShoalCluster = serde_json::from_value(json!({
        "apiVersion": "shoal.dev/v1alpha1", "kind": "ShoalCluster",
        "metadata": {"name": "cache", "namespace": "prod", "uid": "0000-1111"},
        "spec": {
            "shards": 3,
            "image": "registry.example/shoal-node:1.2.3",
            "resources": {"requests": {"cpu": "2", "memory": "4Gi"}, "limits": {"memory": "4Gi"}},
            "maxmemoryPercent": 80,
            "maxmemoryPolicy": "allkeys-lfu",
            "ioThreads": {"min": 2, "max": 6, "auto": true},
            "config": {"hz": "20"},
            "auth": {"secretRef": {"name": "cache-auth"}},
            "tls": {"secretName": "cache-tls", "authClients": "optional"},
            "users": [{"name": "app", "rules": "~app:* +@all -@dangerous",
                       "passwordSecretRef": {"name": "app-pw"}}],
            "service": {"type": "LoadBalancer", "annotations": {
                "service.beta.kubernetes.io/aws-load-balancer-scheme": "internal"}},
            "metrics": {"enabled": true, "serviceMonitor": {"enabled": true, "interval": "30s",
                                                             "labels": {"release": "prom"}}},
            "scheduling": {"nodeSelector": {"kubernetes.io/arch": "arm64"}, "priorityClassName": "high"},
            "networkPolicy": {"enabled": true,
                "clients": [{"podSelector": {"matchLabels": {"app": "web"}}},
                            {"namespaceSelector": {"matchLabels": {"team": "payments"}},
                             "podSelector": {"matchLabels": {"role": "api"}}}],
                "metrics": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]},
        }
    }))
    .expect("cluster");
    sc.metadata.namespace = Some("prod".into());
    sc
}

fn golden<T: Serialize>(name: &str, obj: &T) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/k8s/golden").join(name);
    let got = yaml_serde::to_string(obj).expect("yaml");
    if std::env::var_os("SHOAL_UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().expect("dir")).expect("mkdir");
        std::fs::write(&path, &got).expect("write golden");
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (regenerate with SHOAL_UPDATE_GOLDEN=1)", path.display()));
    assert!(
        got == want,
        "{name} differs from its golden file; regenerate with SHOAL_UPDATE_GOLDEN=1 and review:\n{got}"
    );
}

#[test]
fn golden_statefulset() {
    golden("statefulset.yaml", &statefulset(&full(), 1, &Defaults::default()));
}

#[test]
fn golden_services_configmap_pdb_servicemonitor_networkpolicy() {
    let sc = full();
    golden("headless-service.yaml", &headless_service(&sc));
    golden("client-service.yaml", &client_service(&sc));
    golden("configmap.yaml", &config_map(&sc));
    golden("pdb.yaml", &pod_disruption_budget(&sc));
    golden("servicemonitor.yaml", &service_monitor(&sc).expect("enabled"));
    golden("networkpolicy.yaml", &network_policy(&sc, &Defaults::default()).expect("enabled"));
}

#[test]
fn node_config_sets_cluster_mode_hostnames_and_memory() {
    let conf = node_config(&full());
    for line in [
        // spec.tls: TLS on the client port, no plaintext port, links over TLS, reloads.
        "port 0",
        "tls-port 6379",
        "tls-auth-clients optional",
        "tls-cluster yes",
        "tls-replication yes",
        "tls-auto-reload-interval 30",
        "aclfile /etc/shoal/acl/users.acl",
        "cluster-enabled yes",
        "cluster-preferred-endpoint-type hostname",
        "maxmemory-policy allkeys-lfu",
        // 80% of 4Gi.
        "maxmemory 3435973760",
        "io-threads 2",
        "metrics-port 9121",
        "hz 20",
    ] {
        assert!(conf.lines().any(|l| l == line), "{line:?} missing from:\n{conf}");
    }
    // Without spec.tls: the plain port, no tls-* directive.
    let mut plain = full();
    plain.spec.tls = None;
    let conf = node_config(&plain);
    assert!(conf.lines().any(|l| l == "port 6379"), "{conf}");
    assert!(!conf.contains("tls-"), "{conf}");
}

#[test]
fn maxmemory_from_spec_or_limit() {
    let mut sc = full();
    assert_eq!(maxmemory_bytes(&sc), Some(4 * 1024 * 1024 * 1024 / 100 * 80));
    sc.spec.maxmemory_percent = None;
    assert_eq!(maxmemory_bytes(&sc), Some(4 * 1024 * 1024 * 1024 / 100 * 75));
    sc.spec.maxmemory = Some("512mb".into());
    assert_eq!(maxmemory_bytes(&sc), Some(512 << 20));
    sc.spec.maxmemory = None;
    sc.spec.resources = None;
    assert_eq!(maxmemory_bytes(&sc), None);
    assert_eq!(quantity_bytes("1.5Gi"), Some(1610612736));
    assert_eq!(quantity_bytes("500M"), Some(500_000_000));
    assert_eq!(quantity_bytes("lots"), None);
}

#[test]
fn endpoints_are_per_pod_dns_names_and_ids_are_stable() {
    let sc = full();
    let (id, addr) = desired_shard(&sc, 2, &Defaults::default());
    assert_eq!(addr.hostname.as_deref(), Some("cache-2-0.cache-nodes.prod.svc.cluster.local"));
    assert_eq!(addr.port, 6379);
    assert_eq!(id, desired_shard(&sc, 2, &Defaults::default()).0);
    assert_ne!(id, desired_shard(&sc, 1, &Defaults::default()).0);
}

#[test]
fn replicas_are_pods_of_the_shard_statefulset_kept_apart() {
    let mut sc = full();
    sc.spec.replicas_per_shard = 2;
    sc.spec.scheduling = None;
    let nodes = desired_nodes(&sc, 1, &Defaults::default());
    let hosts: Vec<&str> = nodes.iter().filter_map(|a| a.hostname.as_deref()).collect();
    assert_eq!(
        hosts,
        vec![
            "cache-1-0.cache-nodes.prod.svc.cluster.local",
            "cache-1-1.cache-nodes.prod.svc.cluster.local",
            "cache-1-2.cache-nodes.prod.svc.cluster.local"
        ]
    );
    assert_eq!(nodes[0], desired_shard(&sc, 1, &Defaults::default()).1, "pod 0 is the first primary");
    let s = statefulset(&sc, 1, &Defaults::default());
    let spec = s.spec.as_ref().expect("spec");
    assert_eq!(spec.replicas, Some(3));
    let pod = spec.template.spec.as_ref().expect("pod spec");
    let anti = pod.affinity.as_ref().and_then(|a| a.pod_anti_affinity.as_ref()).expect("anti-affinity");
    let terms = anti.preferred_during_scheduling_ignored_during_execution.as_ref().expect("preferred");
    let keys: Vec<&str> = terms.iter().map(|t| t.pod_affinity_term.topology_key.as_str()).collect();
    assert_eq!(keys, vec!["kubernetes.io/hostname", "topology.kubernetes.io/zone"]);
    let sel = terms[0]
        .pod_affinity_term
        .label_selector
        .as_ref()
        .and_then(|l| l.match_labels.as_ref())
        .expect("labels");
    assert_eq!(sel.get("shoal.dev/shard").map(String::as_str), Some("1"), "apart from its own shard's pods");
    let args = pod.containers[0].args.as_ref().expect("args");
    assert!(args.iter().any(|a| a == "$(POD_NAME).cache-nodes.prod.svc.cluster.local"), "{args:?}");
    // No replicas: no anti-affinity added.
    sc.spec.replicas_per_shard = 0;
    let s = statefulset(&sc, 1, &Defaults::default());
    assert!(s.spec.and_then(|s| s.template.spec).and_then(|p| p.affinity).is_none());
}

#[test]
fn one_statefulset_per_shard_with_its_own_selector() {
    let sc = full();
    let a = statefulset(&sc, 0, &Defaults::default());
    let b = statefulset(&sc, 1, &Defaults::default());
    let sel = |s: &k8s_openapi::api::apps::v1::StatefulSet| {
        s.spec.as_ref().and_then(|s| s.selector.match_labels.clone())
    };
    assert_ne!(sel(&a), sel(&b), "selectors must not overlap, or one StatefulSet adopts the other's pods");
    let spec = a.spec.expect("spec");
    assert_eq!(spec.replicas, Some(1));
    assert_eq!(spec.service_name.as_deref(), Some("cache-nodes"));
    let pod = spec.template.spec.expect("pod");
    assert_eq!(pod.readiness_gates.expect("gates")[0].condition_type, SLOTS_READINESS_GATE);
    assert_eq!(pod.automount_service_account_token, Some(false));
}

#[test]
fn config_hash_follows_the_config() {
    let mut sc = full();
    let h1 = config_hash(&node_config(&sc));
    sc.spec.config.insert("hz".into(), "50".into());
    assert_ne!(h1, config_hash(&node_config(&sc)));
}

/// Whether `selector`'s `matchLabels` select a pod with `labels` (the PDB uses no expressions).
fn selects(
    selector: &k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector,
    labels: &std::collections::BTreeMap<String, String>,
) -> bool {
    assert!(selector.match_expressions.is_none(), "only matchLabels are evaluated here");
    selector.match_labels.iter().flatten().all(|(k, v)| labels.get(k) == Some(v))
}

#[test]
fn the_pdb_holds_only_serving_pods_and_lets_unready_ones_go() {
    let sc = full();
    let spec = pod_disruption_budget(&sc).spec.expect("spec");
    assert_eq!(spec.max_unavailable, Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(0)));
    assert_eq!(spec.min_available, None, "maxUnavailable and minAvailable are exclusive");
    assert_eq!(spec.unhealthy_pod_eviction_policy.as_deref(), Some("AlwaysAllow"));
    let selector = spec.selector.expect("selector");
    // A shard pod as its StatefulSet creates it, then as the operator labels it.
    let template = statefulset(&sc, 1, &Defaults::default()).spec.expect("spec").template;
    let mut pod = template.metadata.and_then(|m| m.labels).expect("pod labels");
    assert!(!selects(&selector, &pod), "a new pod serves nothing yet: evictable");
    pod.insert(SERVING_LABEL.into(), "true".into());
    assert!(selects(&selector, &pod), "a serving pod is protected");
    pod.insert(SERVING_LABEL.into(), "false".into());
    assert!(!selects(&selector, &pod), "a drained pod is evictable");
    // Another cluster's serving pod in the same namespace is not this budget's business.
    pod.insert(SERVING_LABEL.into(), "true".into());
    pod.insert("app.kubernetes.io/instance".into(), "other".into());
    assert!(!selects(&selector, &pod));
}

#[test]
fn probes_ask_the_executor_through_healthz_even_with_metrics_off() {
    let mut sc = full();
    sc.spec.metrics = None;
    // The node listens on the metrics port whatever `metrics.enabled` says ...
    assert!(node_config(&sc).lines().any(|l| l == format!("metrics-port {METRICS_PORT}")));
    let pod = statefulset(&sc, 0, &Defaults::default()).spec.expect("spec").template.spec.expect("pod");
    let c = &pod.containers[0];
    let named =
        |n: &str| c.ports.iter().flatten().find(|p| p.name.as_deref() == Some(n)).map(|p| p.container_port);
    // ... the container declares it, so the probes' named port resolves ...
    assert_eq!(named("metrics"), Some(METRICS_PORT));
    assert_eq!(named("client"), Some(6379));
    for (what, probe) in [("liveness", &c.liveness_probe), ("readiness", &c.readiness_probe)] {
        let probe = probe.as_ref().unwrap_or_else(|| panic!("{what} probe"));
        assert!(probe.tcp_socket.is_none() && probe.exec.is_none(), "{what}: {probe:?}");
        let get = probe.http_get.as_ref().unwrap_or_else(|| panic!("{what}: no httpGet"));
        assert_eq!(get.path.as_deref(), Some(HEALTH_PATH), "{what}");
        assert_eq!(
            get.port,
            k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String("metrics".into())
        );
        // `/healthz` may wait 2 s for the executor: the kubelet's 1 s default would flap.
        assert!(probe.timeout_seconds.is_some_and(|t| t > 2), "{what}: {:?}", probe.timeout_seconds);
        assert!(probe.timeout_seconds <= probe.period_seconds, "{what}");
    }
    // ... but only `metrics.enabled` puts the port on the Service Prometheus discovers.
    let ports = |sc: &ShoalCluster| -> Vec<String> {
        headless_service(sc).spec.and_then(|s| s.ports).into_iter().flatten().filter_map(|p| p.name).collect()
    };
    assert_eq!(ports(&sc), ["client"]);
    assert_eq!(ports(&full()), ["client", "metrics"]);
}

#[test]
fn the_network_policy_admits_clients_nodes_and_the_operator_only_where_needed() {
    use k8s_openapi::api::networking::v1::NetworkPolicyPeer;
    let mut sc = full();
    let d = Defaults::default();
    let spec = network_policy(&sc, &d).expect("enabled").spec.expect("spec");
    assert_eq!(spec.policy_types, Some(vec!["Ingress".to_string()]));
    assert!(spec.egress.is_none(), "egress is not restricted");
    // It selects this cluster's node pods, whatever their shard or serving state.
    let pod = statefulset(&sc, 2, &d).spec.expect("spec").template.metadata.and_then(|m| m.labels);
    assert!(selects(spec.pod_selector.as_ref().expect("podSelector"), &pod.expect("labels")));
    let rules = spec.ingress.expect("ingress");
    let port_of = |i: usize| {
        let ports = rules[i].ports.clone().expect("ports");
        assert_eq!(ports.len(), 1);
        (ports[0].port.clone(), ports[0].protocol.clone())
    };
    let int = k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int;
    assert_eq!(port_of(0), (Some(int(6379)), Some("TCP".into())));
    assert_eq!(port_of(1), (Some(int(METRICS_PORT)), Some("TCP".into())));
    let from = |i: usize| rules[i].from.clone().expect("from");
    let operator = NetworkPolicyPeer {
        namespace_selector: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector {
            match_labels: Some(
                [("kubernetes.io/metadata.name".to_string(), "shoal-system".to_string())].into(),
            ),
            ..Default::default()
        }),
        pod_selector: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector {
            match_labels: Some(d.operator_pod_labels.clone()),
            ..Default::default()
        }),
        ip_block: None,
    };
    let client_from = from(0);
    // The other nodes (migrations use the client port), the operator, then the listed clients.
    assert_eq!(client_from[0].pod_selector, spec.pod_selector);
    assert!(client_from[0].namespace_selector.is_none(), "nodes of this namespace only");
    assert_eq!(client_from[1], operator);
    assert_eq!(&client_from[2..], sc.spec.network_policy.as_ref().expect("np").clients.as_slice());
    // Metrics: the operator and the listed scrapers, not the other nodes or the clients.
    let metrics_from = from(1);
    assert_eq!(metrics_from[0], operator);
    assert_eq!(&metrics_from[1..], sc.spec.network_policy.as_ref().expect("np").metrics.as_slice());

    // Without the operator's pod labels, its whole namespace is admitted (never nobody).
    let bare = Defaults { operator_pod_labels: Default::default(), ..Defaults::default() };
    let spec = network_policy(&sc, &bare).expect("enabled").spec.expect("spec");
    let op = &spec.ingress.expect("ingress")[0].from.clone().expect("from")[1];
    assert!(op.pod_selector.is_none() && op.namespace_selector == operator.namespace_selector, "{op:?}");

    // Off, or absent: no policy.
    sc.spec.network_policy.as_mut().expect("np").enabled = false;
    assert!(network_policy(&sc, &d).is_none());
    sc.spec.network_policy = None;
    assert!(network_policy(&sc, &d).is_none());
}
