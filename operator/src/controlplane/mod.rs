//! The Kubernetes-free control plane. The pure parts (`model`, `planner`, `autoscaler`) describe
//! a cluster and decide what it should become; the I/O parts (`client`, `observe`, `driver`) talk
//! RESP to real `shoal-node` processes. The nodes are the source of truth: the control plane keeps
//! no state of its own that it cannot rebuild by observing them, so it can be restarted at any
//! moment, even in the middle of a migration.

pub mod autoscaler;
pub mod backoff;
pub mod client;
pub mod credentials;
pub mod driver;
pub mod failover;
mod failover_run;
pub mod history;
pub mod membership;
pub mod model;
pub mod observe;
pub mod planner;
pub mod rollout;
pub mod users;
