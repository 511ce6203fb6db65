//! The local Kubernetes simulator: API server on loopback plus a process kubelet.
//!
//! - [`store`]: the object store (resourceVersion, bookkeeping, watch fan-out); the one
//!   interface both the HTTP API and the kubelet use.
//! - [`status`]: [`ApiError`], every failure as the API server's `Status`.
//! - [`kind`]: the served resource kinds.

pub mod kind;
pub mod kubelet;
pub mod runtime;
pub mod status;
pub mod store;

pub use kind::Kind;
pub use status::ApiError;
