//! The local Kubernetes simulator: API server on loopback plus a process kubelet.
pub mod kubelet;
