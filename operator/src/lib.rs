//! Shoal's operator crate: the control plane that decides which shard owns which hash slot, moves
//! slots between shards, and resizes the cluster (shards and per-node I/O threads) from the
//! metrics the nodes report.
//!
//! ```text
//!                 ┌──────────────────────── controlplane (no Kubernetes types) ───────────────────┐
//!  nodes ──INFO──▶│ observe ─▶ ObservedState ─▶ autoscale (pure) ─▶ desired shards / io-threads   │
//!  (RESP)         │                             └▶ plan (pure) ─▶ Plan { layout, ordered moves }  │
//!        ◀────────│ act: SETTOPOLOGY (epoch+1), MIGRATESLOTS, GETSLOTMIGRATIONS, CONFIG SET      │
//!                 └───────────────▲──────────────────────────────────────────▲───────────────────┘
//!                                 │ nodes to talk to, shards to create/remove │
//!                     local/ (processes on this machine)            k8s/ (StatefulSets, CRD status)
//! ```
//!
//! Dependency rules: `controlplane` knows nothing of processes or Kubernetes; the planner and the
//! autoscaler are pure functions (no I/O, no clock: time is an argument) so they are unit and
//! property tested; `local` and `k8s` are the two infrastructure layers that create and remove
//! nodes and feed the same control plane.

pub mod controlplane;
pub mod k8s;
pub mod local;

/// The crate's error type at its edges: each module has its own typed errors.
pub use local::LocalError;
