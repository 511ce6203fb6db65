//! How the API server's logs and exec endpoints find a pod's containers: a lookup by
//! namespace, pod and container name that the kubelet provides (its registry implements
//! [`Lookup`]); the API side knows nothing else of the kubelet.

use std::path::PathBuf;

use crate::sim::runtime;

/// One run of a container, as the logs/exec endpoints need it.
#[derive(Clone)]
pub struct Run {
    /// The runtime handle: exec, log progress.
    pub container: runtime::Container,
    /// Its CRI log file.
    pub log_path: PathBuf,
    /// Whether the process has exited (the log is complete).
    pub exited: bool,
}

/// Finds container runs; implemented by the kubelet's registry.
pub trait Lookup: Send + Sync {
    /// The latest run of the container (or with `previous`, the one before it).
    fn lookup(&self, namespace: &str, pod: &str, container: &str, previous: bool) -> Option<Run>;
}
