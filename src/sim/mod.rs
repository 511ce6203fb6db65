//! The local Kubernetes simulator: API server on loopback plus a process kubelet.
//!
//! - [`store`]: the object store (resourceVersion, bookkeeping, watch fan-out); the one
//!   interface both the HTTP API and the kubelet use.
//! - [`server`]: the HTTPS API server (`router`, `serve`), discovery, watch, patch.
//! - [`containers`]: the lookup the logs/exec endpoints use to reach the kubelet's runs.
//! - [`faults`]: fault injection and request counters.
//! - [`status`]: [`ApiError`], every failure as the API server's `Status`.
//! - [`selector`]: label and field selectors.
//! - [`kind`]: the served resource kinds.
//! - [`kubelet`]: the scheduler and process kubelet (branch sim-kubelet), started by [`Sim`].
//! - [`runtime`]: isolated container processes, CRI logs, exec (branch sim-runtime).
//! - [`Sim`]: a running simulator (start, kubeconfig, counters, faults, shutdown).

pub mod containers;
pub mod faults;
mod instance;
pub mod kind;
pub mod kubeconfig;
pub mod kubelet;
pub mod runtime;
pub mod selector;
pub mod server;
pub mod status;
pub mod store;

pub use instance::{Config, Error, Sim};
pub use kind::Kind;
pub use server::router;
pub use status::ApiError;
