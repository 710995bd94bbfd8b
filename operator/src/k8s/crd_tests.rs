//! The generated CRD: its schema bounds, printer columns and `/scale`, and its CEL rules evaluated
//! offline with kube's interpreter against whole objects, as the API server would.

use kube::core::cel::Validator;
use kube::CustomResourceExt;
use serde_json::{json, Value};

use super::crd::{ShoalCluster, RESERVED_DIRECTIVES};

fn schema() -> Value {
    let crd = ShoalCluster::crd();
    let v = &crd.spec.versions[0];
    serde_json::to_value(v.schema.as_ref().and_then(|s| s.open_api_v3_schema.as_ref()).expect("schema"))
        .expect("json")
}

fn object(spec: Value) -> Value {
    json!({"apiVersion": "shoal.dev/v1alpha1", "kind": "ShoalCluster",
           "metadata": {"name": "c", "namespace": "default"}, "spec": spec})
}

/// The messages of the CEL rules `spec` breaks (on update from `old`, if given).
fn violations(spec: Value, old: Option<Value>) -> Vec<String> {
    let old = old.map(object);
    match Validator::new().validate(&schema(), &object(spec), old.as_ref()) {
        Ok(()) => vec![],
        Err(e) => e.into_vec().into_iter().map(|e| e.message).collect(),
    }
}

#[test]
fn identity_scope_and_short_name() {
    let crd = ShoalCluster::crd();
    assert_eq!(crd.metadata.name.as_deref(), Some("shoalclusters.shoal.dev"));
    assert_eq!(crd.spec.group, "shoal.dev");
    assert_eq!(crd.spec.scope, "Namespaced");
    assert_eq!(crd.spec.names.short_names, Some(vec!["shoal".to_string()]));
    assert_eq!(crd.spec.versions.len(), 1);
    assert_eq!(crd.spec.versions[0].name, "v1alpha1");
}

#[test]
fn scale_subresource_points_at_shards() {
    let crd = ShoalCluster::crd();
    let sub = crd.spec.versions[0].subresources.as_ref().expect("subresources");
    assert!(sub.status.is_some());
    let scale = sub.scale.as_ref().expect("/scale");
    assert_eq!(scale.spec_replicas_path, ".spec.shards");
    assert_eq!(scale.status_replicas_path, ".status.shards");
    assert_eq!(scale.label_selector_path.as_deref(), Some(".status.selector"));
}

#[test]
fn printer_columns() {
    let crd = ShoalCluster::crd();
    let cols: Vec<String> =
        crd.spec.versions[0].additional_printer_columns.iter().flatten().map(|c| c.name.clone()).collect();
    assert_eq!(cols, ["Shards", "Current", "Ready", "Phase", "Slots", "Epoch", "Age"]);
}

#[test]
fn schema_bounds() {
    let s = schema();
    let p = &s["properties"]["spec"]["properties"];
    assert_eq!((p["shards"]["minimum"].as_f64(), p["shards"]["maximum"].as_f64()), (Some(1.0), Some(1024.0)));
    assert_eq!(p["port"]["maximum"].as_f64(), Some(65535.0));
    assert_eq!(p["maxmemoryPercent"]["minimum"].as_f64(), Some(10.0));
    let a = &p["autoscaling"]["properties"];
    assert_eq!(a["targetCPUPercent"]["maximum"].as_f64(), Some(95.0));
    assert_eq!(a["scaleInCooldownSeconds"]["maximum"].as_f64(), Some(86400.0));
    let req: Vec<&str> = s["properties"]["spec"]["required"]
        .as_array()
        .expect("required")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(req, ["shards"]);
    assert!(p["maxmemoryPolicy"]["enum"].as_array().expect("enum").contains(&json!("allkeys-lru")));
    assert!(p["maxmemory"]["pattern"].is_string());
}

#[test]
fn a_minimal_and_a_full_spec_pass_every_rule() {
    assert_eq!(violations(json!({"shards": 3}), None), Vec::<String>::new());
    let full = json!({
        "shards": 4, "replicasPerShard": 0, "port": 6379, "maxmemoryPercent": 70,
        "ioThreads": {"min": 1, "max": 4, "auto": true},
        "autoscaling": {"enabled": true, "minShards": 2, "maxShards": 8, "targetCPUPercent": 60},
        "config": {"timeout": "300"},
    });
    assert_eq!(violations(full, None), Vec::<String>::new());
}

#[test]
fn replicas_per_shard_is_zero_to_five() {
    for n in 0..=5 {
        assert!(violations(json!({"shards": 3, "replicasPerShard": n}), None).is_empty(), "{n}");
    }
    // The bounds are in the schema (range), which the API server checks before CEL.
    let s = schema();
    let r = &s["properties"]["spec"]["properties"]["replicasPerShard"];
    assert_eq!((r["minimum"].as_f64(), r["maximum"].as_f64()), (Some(0.0), Some(5.0)), "{r}");
}

#[test]
fn shards_must_lie_within_the_autoscaling_bounds() {
    let a = json!({"enabled": true, "minShards": 2, "maxShards": 4, "targetCPUPercent": 60});
    assert!(violations(json!({"shards": 3, "autoscaling": a}), None).is_empty());
    let v = violations(json!({"shards": 5, "autoscaling": a}), None);
    assert!(v.iter().any(|m| m.contains("minShards..maxShards")), "{v:?}");
    let v = violations(json!({"shards": 1, "autoscaling": a}), None);
    assert!(v.iter().any(|m| m.contains("minShards..maxShards")), "{v:?}");
    // Disabled autoscaling does not constrain shards.
    let off = json!({"enabled": false, "minShards": 2, "maxShards": 4, "targetCPUPercent": 60});
    assert!(violations(json!({"shards": 9, "autoscaling": off}), None).is_empty());
}

#[test]
fn autoscaling_needs_ordered_bounds_and_a_target() {
    let v = violations(
        json!({"shards": 3, "autoscaling": {"minShards": 5, "maxShards": 4, "targetCPUPercent": 60}}),
        None,
    );
    assert!(v.iter().any(|m| m.contains("must not exceed autoscaling.maxShards")), "{v:?}");
    let v = violations(json!({"shards": 3, "autoscaling": {"minShards": 1, "maxShards": 4}}), None);
    assert!(v.iter().any(|m| m.contains("needs targetCPUPercent")), "{v:?}");
}

#[test]
fn io_threads_bounds_are_ordered() {
    let v = violations(json!({"shards": 1, "ioThreads": {"min": 8, "max": 2}}), None);
    assert!(v.iter().any(|m| m.contains("ioThreads.min")), "{v:?}");
}

#[test]
fn maxmemory_and_its_percentage_are_exclusive() {
    let v = violations(json!({"shards": 1, "maxmemory": "1gb", "maxmemoryPercent": 50}), None);
    assert!(v.iter().any(|m| m.contains("either maxmemory or maxmemoryPercent")), "{v:?}");
}

#[test]
fn config_may_not_override_managed_directives() {
    for d in RESERVED_DIRECTIVES {
        let v = violations(json!({"shards": 1, "config": {*d: "x"}}), None);
        assert!(v.iter().any(|m| m.contains("directive the operator manages")), "{d}: {v:?}");
    }
    assert!(violations(json!({"shards": 1, "config": {"hz": "20"}}), None).is_empty());
}

#[test]
fn port_is_immutable() {
    let v = violations(json!({"shards": 1, "port": 7000}), Some(json!({"shards": 1, "port": 6379})));
    assert!(v.iter().any(|m| m.contains("port is immutable")), "{v:?}");
    assert!(
        violations(json!({"shards": 2, "port": 6379}), Some(json!({"shards": 1, "port": 6379}))).is_empty()
    );
}

#[test]
fn defaults_fill_an_empty_spec() {
    let sc: ShoalCluster = serde_json::from_value(object(json!({"shards": 2}))).expect("parses");
    assert_eq!(sc.spec.port, 6379);
    assert_eq!(sc.spec.replicas_per_shard, 0);
    assert_eq!(sc.spec.maxmemory_policy.as_str(), "allkeys-lru");
    let a: super::crd::AutoscalingSpec =
        serde_json::from_value(json!({"maxShards": 4, "targetCPUPercent": 60})).expect("parses");
    assert_eq!((a.min_shards, a.scale_out_cooldown_seconds, a.scale_in_cooldown_seconds), (1, 300, 600));
}

#[test]
fn network_policy_peers_are_checked_at_admission() {
    let spec = |clients: Value, metrics: Value| json!({"shards": 1, "networkPolicy": {"enabled": true, "clients": clients, "metrics": metrics}});
    let ok = json!([
        {"podSelector": {"matchLabels": {"app": "web"}}},
        {"namespaceSelector": {}},
        {"namespaceSelector": {"matchLabels": {"team": "a"}}, "podSelector": {}},
        {"ipBlock": {"cidr": "10.0.0.0/16"}},
    ]);
    assert_eq!(violations(spec(ok.clone(), ok), None), Vec::<String>::new());
    assert!(violations(json!({"shards": 1, "networkPolicy": {"enabled": true}}), None).is_empty());
    for bad in [json!([{}]), json!([{"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}}])] {
        for s in [spec(bad.clone(), json!([])), spec(json!([]), bad.clone())] {
            let v = violations(s, None);
            assert!(v.iter().any(|m| m.contains("each peer sets podSelector")), "{bad}: {v:?}");
        }
    }
}

#[test]
fn users_carry_no_passwords_and_no_reserved_names() {
    let user =
        |name: &str, rules: &str| json!({"name": name, "rules": rules, "passwordSecretRef": {"name": "pw"}});
    let ok = violations(
        json!({"shards": 1, "users": [user("app", "~app:* &ev:* +@all -@dangerous (~o:* +get)")]}),
        None,
    );
    assert!(ok.is_empty(), "{ok:?}");
    for rules in [
        ">secret +@all",
        "~* <old",
        "#abcd",
        "!abcd",
        "nopass",
        "+@all resetpass",
        "reset ~*",
        "on",
        "~* off",
    ] {
        let v = violations(json!({"shards": 1, "users": [user("app", rules)]}), None);
        assert!(v.iter().any(|m| m.contains("may not hold passwords")), "{rules}: {v:?}");
    }
    // Tokens that merely contain those words are rules, not passwords.
    assert!(violations(json!({"shards": 1, "users": [user("app", "~on:* ~reset* +@all")]}), None).is_empty());
    for name in ["default", "shoal-operator"] {
        let v = violations(json!({"shards": 1, "users": [user(name, "+@all")]}), None);
        assert!(v.iter().any(|m| m.contains("may not be named")), "{name}: {v:?}");
    }
    let dup = violations(json!({"shards": 1, "users": [user("a", ""), user("a", "")]}), None);
    assert!(dup.iter().any(|m| m.contains("unique")), "{dup:?}");
}

#[test]
fn tls_defaults() {
    let sc: ShoalCluster =
        serde_json::from_value(object(json!({"shards": 1, "tls": {"secretName": "t"}}))).expect("parses");
    let tls = sc.spec.tls.expect("tls");
    assert_eq!(
        (tls.auth_clients.as_str(), tls.plaintext_port, tls.reload_interval_seconds),
        ("no", None, 30)
    );
}
