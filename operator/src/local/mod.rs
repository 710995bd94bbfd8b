//! Local mode: runs a self-managing Shoal cluster as `shoal-node` processes on this machine,
//! driven by the same control plane as the Kubernetes operator.
