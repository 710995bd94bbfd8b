//! Cluster vocabulary shared by the planner, the autoscaler, the driver and the infrastructure
//! layers (local processes, Kubernetes). These types are serde-serializable so the Kubernetes
//! layer can put them in CRD status, and free of I/O so they can be built in tests.
