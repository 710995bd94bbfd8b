//! The checked-in Kubernetes artifacts agree with the code, without any external tool:
//! `manifests/crd.yaml` and the chart's CRD are exactly `shoal-operator crd`; `install.yaml`
//! parses, carries that CRD and grants least privilege; every example is a valid ShoalCluster
//! (types and CEL rules). scripts/k8s-check.sh additionally lints and renders the chart with Helm
//! and validates against the Kubernetes schemas.

use std::path::PathBuf;

use kube::core::cel::Validator;
use kube::CustomResourceExt;
use serde_json::Value;
use shoal_operator::k8s::crd::ShoalCluster;
use shoal_operator::k8s::crd_yaml;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn docs(text: &str) -> Vec<Value> {
    text.split("\n---\n")
        .map(|d| yaml_serde::from_str::<Value>(d).unwrap_or_else(|e| panic!("bad YAML document: {e}\n{d}")))
        .filter(|v| !v.is_null())
        .collect()
}

const STALE: &str = "is stale: run scripts/k8s-check.sh --write";

#[test]
fn crd_files_match_the_code() {
    let crd = crd_yaml();
    assert!(read("manifests/crd.yaml") == crd, "manifests/crd.yaml {STALE}");
    assert!(
        read("charts/shoal-operator/crds/shoalclusters.shoal.dev.yaml") == crd,
        "the chart's CRD {STALE}"
    );
    assert!(read("manifests/install.yaml").contains(&crd), "manifests/install.yaml {STALE}");
}

#[test]
fn install_yaml_has_every_object_and_least_privilege_rbac() {
    let all = docs(&read("manifests/install.yaml"));
    let kinds: Vec<&str> = all.iter().filter_map(|d| d["kind"].as_str()).collect();
    for k in [
        "Namespace",
        "CustomResourceDefinition",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "Deployment",
        "Service",
        "NetworkPolicy",
    ] {
        assert!(kinds.contains(&k), "{k} missing from install.yaml: {kinds:?}");
    }
    assert!(!kinds.contains(&"Pod"), "the chart test pod is not part of the install");
    for role in all.iter().filter(|d| d["kind"] == "ClusterRole" || d["kind"] == "Role") {
        for rule in role["rules"].as_array().expect("rules") {
            let strs = |k: &str| -> Vec<String> {
                rule[k]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            };
            let (res, verbs) = (strs("resources"), strs("verbs"));
            assert!(!res.iter().any(|r| r == "*" || r == "pods/exec"), "{res:?}");
            // Secrets: `get`/`patch` (the ones a cluster names, and the operator's own ACL
            // Secrets) and `create` (the operator's own, once); never list or watch, which
            // would expose every Secret in scope.
            if res.iter().any(|r| r == "secrets") {
                assert_eq!(res, ["secrets"], "secrets share a rule with nothing else");
                assert!(verbs == ["get", "patch"] || verbs == ["create"], "secrets: {verbs:?}");
            }
            assert!(!verbs.iter().any(|v| v == "*" || v == "escalate" || v == "bind"), "{verbs:?}");
            if res.iter().any(|r| r == "pods") {
                assert!(
                    verbs.iter().all(|v| ["get", "list", "watch"].contains(&v.as_str())),
                    "pods: {verbs:?}"
                );
            }
        }
    }
    let dep = all.iter().find(|d| d["kind"] == "Deployment").expect("deployment");
    let c = &dep["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["args"][0], "run");
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(dep["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"], true);
    let env: Vec<&str> =
        c["env"].as_array().expect("env").iter().filter_map(|e| e["name"].as_str()).collect();
    for e in ["POD_NAME", "POD_NAMESPACE", "SHOAL_LEADER_ELECT", "SHOAL_METRICS_ADDR", "SHOAL_NODE_IMAGE"] {
        assert!(env.contains(&e), "{e} not set: {env:?}");
    }
}

#[test]
fn examples_are_valid_shoalclusters() {
    let crd = ShoalCluster::crd();
    let schema = serde_json::to_value(
        crd.spec.versions[0].schema.as_ref().and_then(|s| s.open_api_v3_schema.as_ref()),
    )
    .expect("schema");
    let dir = root().join("manifests/examples");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("examples dir") {
        let path = entry.expect("entry").path();
        for doc in docs(&std::fs::read_to_string(&path).expect("read")) {
            let sc: ShoalCluster = serde_json::from_value(doc.clone())
                .unwrap_or_else(|e| panic!("{}: not a ShoalCluster: {e}", path.display()));
            assert!(sc.spec.shards >= 1);
            if let Err(e) = Validator::new().validate(&schema, &doc, None) {
                panic!("{}: CEL rules: {:?}", path.display(), e.into_vec());
            }
            n += 1;
        }
    }
    assert!(n >= 2, "expected at least two examples, found {n}");
}
