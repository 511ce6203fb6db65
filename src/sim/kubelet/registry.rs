//! Which runtime container backs each pod container, for the logs and exec endpoints.
//!
//! The kubelet records every container run here (current and previous, like the
//! kubelet's log directory keeps `0.log`, `1.log`...); the API layer looks them up by
//! namespace, pod and container name through [`Lookup`]. Entries go when the pod object
//! is gone.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

use crate::sim::containers::{Lookup, Run};
use crate::sim::runtime;

#[derive(Default)]
struct PodRuns {
    namespace: String,
    name: String,
    /// Container name -> runs in start order.
    containers: HashMap<String, Vec<Run>>,
}

/// The registry (see the module docs). Cheap to share behind an `Arc`.
#[derive(Default)]
pub struct Registry {
    pods: Mutex<HashMap<String, PodRuns>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").finish_non_exhaustive()
    }
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, PodRuns>> {
        // Each mutation is a single insert or flag flip, so a poisoned map is still sound.
        self.pods.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a new run of `container` in pod `uid`.
    pub fn started(
        &self,
        uid: &str,
        namespace: &str,
        pod: &str,
        container: &str,
        handle: runtime::Container,
        log_path: PathBuf,
    ) {
        let mut pods = self.lock();
        let entry = pods.entry(uid.to_string()).or_insert_with(|| PodRuns {
            namespace: namespace.to_string(),
            name: pod.to_string(),
            ..PodRuns::default()
        });
        entry
            .containers
            .entry(container.to_string())
            .or_default()
            .push(Run {
                container: handle,
                log_path,
                exited: false,
            });
    }

    /// Marks the latest run of `container` as exited.
    pub fn exited(&self, uid: &str, container: &str) {
        if let Some(run) = self
            .lock()
            .get_mut(uid)
            .and_then(|p| p.containers.get_mut(container))
            .and_then(|runs| runs.last_mut())
        {
            run.exited = true;
        }
    }

    /// Drops every run of the pod (the pod object is gone).
    pub fn forget_pod(&self, uid: &str) {
        self.lock().remove(uid);
    }
}

impl Lookup for Registry {
    /// The latest run (or with `previous`, the one before it) of a pod's container.
    fn lookup(&self, namespace: &str, pod: &str, container: &str, previous: bool) -> Option<Run> {
        let pods = self.lock();
        let p = pods
            .values()
            .find(|p| p.namespace == namespace && p.name == pod)?;
        let runs = p.containers.get(container)?;
        let idx = runs.len().checked_sub(if previous { 2 } else { 1 })?;
        runs.get(idx).cloned()
    }
}
