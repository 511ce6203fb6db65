//! One watch on the run's pod, shared by every wait through a `tokio::sync::watch` channel.
//!
//! The watch selects the pod by `metadata.name`, starts from the resourceVersion of the
//! object we already have (the create or list response, so no extra list), resumes from
//! the last resourceVersion seen (bookmarks included) whenever the stream ends or breaks,
//! and re-lists on 410 Gone. Absence is an event: a Deleted event, or a re-list that no
//! longer finds the pod, sets [`PodState::gone`].
//!
//! The task is owned by [`PodWatch`] and aborted when it is dropped.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, WatchEvent, WatchParams};
use tokio::sync::watch;

use super::connect::{self, Kube};
use super::retry::Backoff;

/// The latest known state of the pod.
#[derive(Debug, Clone, Default)]
pub struct PodState {
    /// The newest object seen (kept after deletion: the last state before it went away).
    pub pod: Option<Arc<Pod>>,
    /// The pod no longer exists.
    pub gone: bool,
    /// The watch gave up (retries exhausted); the message says why.
    pub failed: Option<String>,
}

/// Receiver side of the pod state.
pub type StateRx = watch::Receiver<PodState>;

/// Server-side timeout asked of each watch request (the API server ends it then).
const WATCH_TIMEOUT_SECS: u32 = 290;
/// No event (not even a bookmark) for this long: the connection is presumed dead.
const IDLE: Duration = Duration::from_secs(WATCH_TIMEOUT_SECS as u64 + 15);

/// A spawned task aborted on drop.
pub struct Owned(pub tokio::task::JoinHandle<()>);

impl Drop for Owned {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The running pod watch.
pub struct PodWatch {
    /// Subscribe to state changes.
    pub rx: StateRx,
    _task: Owned,
}

/// Start watching `pod` (a server copy: its resourceVersion is the starting point).
pub fn spawn(kube: Kube, pod: &Pod) -> PodWatch {
    let initial = PodState {
        pod: Some(Arc::new(pod.clone())),
        gone: false,
        failed: None,
    };
    let (tx, rx) = watch::channel(initial);
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let name = pod.metadata.name.clone().unwrap_or_default();
    let rv = pod.metadata.resource_version.clone();
    let task = tokio::spawn(run(kube, ns, name, rv, tx));
    PodWatch {
        rx,
        _task: Owned(task),
    }
}

/// What the next step of the loop does.
enum State {
    /// No usable resourceVersion: list the pod by name, then watch from the list's version.
    Relist,
    /// Open a watch from this resourceVersion.
    Watch(String),
}

async fn run(
    kube: Kube,
    ns: String,
    name: String,
    rv: Option<String>,
    tx: watch::Sender<PodState>,
) {
    let field = format!("metadata.name={name}");
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5), Some(30));
    let mut state = match rv {
        Some(rv) if !rv.is_empty() => State::Watch(rv),
        _ => State::Relist,
    };
    loop {
        state = match state {
            State::Relist => {
                let lp = ListParams::default().fields(&field);
                let res = kube
                    .call(|c| {
                        let lp = lp.clone();
                        let ns = ns.clone();
                        async move { Api::<Pod>::namespaced(c, &ns).list(&lp).await }
                    })
                    .await;
                match res {
                    Ok(list) => {
                        backoff.reset();
                        match list.items.into_iter().next() {
                            Some(p) => {
                                tx.send_modify(|s| s.pod = Some(Arc::new(p)));
                            }
                            None => {
                                tx.send_modify(|s| s.gone = true);
                                return;
                            }
                        }
                        State::Watch(list.metadata.resource_version.unwrap_or_default())
                    }
                    Err(e) => match backoff.next_delay() {
                        Some(d) => {
                            tracing::debug!(error = %e, "pod re-list failed; retrying");
                            tokio::time::sleep(d).await;
                            State::Relist
                        }
                        None => {
                            tx.send_modify(|s| {
                                s.failed = Some(format!("cannot list pod {name}: {e}"))
                            });
                            return;
                        }
                    },
                }
            }
            State::Watch(rv) => {
                let wp = WatchParams::default()
                    .fields(&field)
                    .timeout(WATCH_TIMEOUT_SECS);
                let opened = kube
                    .call(|c| {
                        let wp = wp.clone();
                        let ns = ns.clone();
                        let rv = rv.clone();
                        async move {
                            Api::<Pod>::namespaced(c, &ns)
                                .watch(&wp, &rv)
                                .await
                                .map(|s| s.boxed())
                        }
                    })
                    .await;
                let mut stream = match opened {
                    Ok(s) => s,
                    Err(e) if connect::api_code(&e) == Some(410) => {
                        state = State::Relist;
                        continue;
                    }
                    Err(e) => {
                        match backoff.next_delay() {
                            Some(d) => {
                                tracing::debug!(error = %e, "pod watch failed to open; retrying");
                                tokio::time::sleep(d).await;
                            }
                            None => {
                                tx.send_modify(|s| {
                                    s.failed = Some(format!("cannot watch pod {name}: {e}"))
                                });
                                return;
                            }
                        }
                        state = State::Watch(rv);
                        continue;
                    }
                };
                let mut rv = rv;
                let next = loop {
                    let item = match tokio::time::timeout(IDLE, stream.next()).await {
                        Ok(item) => item,
                        Err(_) => break State::Watch(rv),
                    };
                    match item {
                        Some(Ok(WatchEvent::Added(p))) | Some(Ok(WatchEvent::Modified(p))) => {
                            backoff.reset();
                            if let Some(v) = &p.metadata.resource_version {
                                rv = v.clone();
                            }
                            tx.send_modify(|s| s.pod = Some(Arc::new(p)));
                        }
                        Some(Ok(WatchEvent::Deleted(p))) => {
                            tx.send_modify(|s| {
                                s.pod = Some(Arc::new(p));
                                s.gone = true;
                            });
                            return;
                        }
                        Some(Ok(WatchEvent::Bookmark(b))) => rv = b.metadata.resource_version,
                        Some(Ok(WatchEvent::Error(status))) if status.code == 410 => {
                            break State::Relist
                        }
                        Some(Ok(WatchEvent::Error(status))) => {
                            tracing::debug!(?status, "pod watch error event");
                            if let Some(d) = backoff.next_delay() {
                                tokio::time::sleep(d).await;
                            }
                            break State::Watch(rv);
                        }
                        Some(Err(e)) => {
                            tracing::debug!(error = %e, "pod watch stream broke; resuming");
                            if let Some(d) = backoff.next_delay() {
                                tokio::time::sleep(d).await;
                            }
                            break State::Watch(rv);
                        }
                        // The server ended the watch (its timeout): resume at once.
                        None => break State::Watch(rv),
                    }
                };
                next
            }
        };
    }
}

/// Wait until `pred` holds for the state, returning that state. Returns the last state
/// when the watch task ended without it holding (the sender was dropped).
pub async fn wait_for(rx: &mut StateRx, mut pred: impl FnMut(&PodState) -> bool) -> PodState {
    loop {
        {
            let s = rx.borrow_and_update();
            if pred(&s) {
                return s.clone();
            }
        }
        if rx.changed().await.is_err() {
            return rx.borrow().clone();
        }
    }
}
