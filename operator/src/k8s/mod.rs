//! The Kubernetes layer: the `ShoalCluster` resource and the operator that turns one into
//! StatefulSets, Services and a running cluster. It creates and removes pods; the topology,
//! slot migrations and autoscaling decisions come from `controlplane`, the same code local mode
//! runs against real nodes.

pub mod control;
pub mod crd;
pub mod crd_security;
pub mod error;
pub mod metrics;
pub mod pods;
pub mod reconcile;
pub mod resources;
pub mod rollout;
pub mod rollout_run;
pub mod run;
pub mod security;
pub mod security_run;
pub mod status;

#[cfg(test)]
mod crd_tests;
#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod reconcile_tests;
#[cfg(test)]
mod replica_tests;
#[cfg(test)]
mod resources_tests;
#[cfg(test)]
mod rollout_tests;
#[cfg(test)]
#[path = "../../tests/sim/mod.rs"]
mod sim;

use kube::CustomResourceExt;

/// The CustomResourceDefinition as YAML (what `shoal-operator crd` prints).
pub fn crd_yaml() -> String {
    let crd = crd::ShoalCluster::crd();
    // Serializing a CRD built from our own types cannot fail.
    yaml_serde::to_string(&crd).expect("the CRD serializes to YAML")
}

#[cfg(test)]
mod tests {
    #[test]
    fn crd_yaml_round_trips() {
        let yaml = super::crd_yaml();
        let back: k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition =
            yaml_serde::from_str(&yaml).expect("the printed CRD parses back");
        assert_eq!(back, <super::crd::ShoalCluster as kube::CustomResourceExt>::crd());
    }
}
