//! The pod's events, streamed by one watch (no periodic listing) for the status line, the
//! stderr messages while the pod starts, `log_events_on_failure`, and the report.
//!
//! The watch starts only when the pod is still starting after [`DELAY`]: a pod that starts
//! at once costs no events request (its events are listed on failure when
//! `log_events_on_failure` asks). Events are best effort: a failing events watch never
//! fails the run. The first watch
//! request carries no resourceVersion, so the server sends the existing events first;
//! later requests resume from the last version; events are de-duplicated by uid.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, ListParams, WatchEvent, WatchParams};

use super::connect::{self, Kube};
use super::report::{EventRecord, Ui};
use super::retry::Backoff;
use super::watch::Owned;

/// Events seen so far, shared with the task that collects them.
#[derive(Clone, Default)]
pub struct Seen {
    /// The events, in arrival order.
    pub list: Arc<Mutex<Vec<EventRecord>>>,
    /// Print each new event on stderr (while the pod is starting).
    pub echo: Arc<AtomicBool>,
}

impl Seen {
    /// A copy of the events seen.
    pub fn snapshot(&self) -> Vec<EventRecord> {
        self.list.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

/// The running events watch.
pub struct EventWatch {
    /// What it has seen.
    pub seen: Seen,
    _task: Owned,
}

fn selector(ns: &str, name: &str) -> String {
    format!("involvedObject.name={name},involvedObject.namespace={ns}")
}

fn record(e: &Event) -> EventRecord {
    EventRecord {
        type_: e.type_.clone().unwrap_or_default(),
        reason: e.reason.clone().unwrap_or_default(),
        message: e.message.clone().unwrap_or_default(),
    }
}

/// How long the pod may take to start before its events are watched.
pub const DELAY: Duration = Duration::from_secs(1);

/// Collect the events of pod `ns/name` if it is still starting (`echo` still set) after
/// [`DELAY`].
pub fn spawn(kube: Kube, ns: &str, name: &str, ui: Arc<Ui>) -> EventWatch {
    let seen = Seen::default();
    seen.echo.store(true, Ordering::Relaxed);
    let (ns, name, s) = (ns.to_string(), name.to_string(), seen.clone());
    let task = tokio::spawn(async move {
        tokio::time::sleep(DELAY).await;
        if s.echo.load(Ordering::Relaxed) {
            run(kube, ns, name, ui, s).await;
        }
    });
    EventWatch {
        seen,
        _task: Owned(task),
    }
}

async fn run(kube: Kube, ns: String, name: String, ui: Arc<Ui>, seen: Seen) {
    let wp = WatchParams::default()
        .fields(&selector(&ns, &name))
        .timeout(290);
    let mut uids: HashSet<String> = HashSet::new();
    let mut rv = String::new();
    let mut backoff = Backoff::new(
        Duration::from_millis(200),
        Duration::from_secs(10),
        Some(10),
    );
    loop {
        let opened = kube
            .call(|c| {
                let (wp, ns, rv) = (wp.clone(), ns.clone(), rv.clone());
                async move {
                    Api::<Event>::namespaced(c, &ns)
                        .watch(&wp, &rv)
                        .await
                        .map(|s| s.boxed())
                }
            })
            .await;
        let mut stream = match opened {
            Ok(s) => s,
            Err(e) => {
                if connect::api_code(&e) == Some(410) {
                    rv.clear();
                    continue;
                }
                tracing::debug!(error = %e, "events watch failed to open");
                match backoff.next_delay() {
                    Some(d) => {
                        tokio::time::sleep(d).await;
                        continue;
                    }
                    None => return,
                }
            }
        };
        while let Some(item) = stream.next().await {
            match item {
                Ok(WatchEvent::Added(e)) | Ok(WatchEvent::Modified(e)) => {
                    backoff.reset();
                    if let Some(v) = &e.metadata.resource_version {
                        rv = v.clone();
                    }
                    let uid = e.metadata.uid.clone().unwrap_or_default();
                    if uids.insert(uid) {
                        let r = record(&e);
                        if seen.echo.load(Ordering::Relaxed) {
                            ui.message(&format!(
                                "Pod event: {} {}: {}",
                                r.type_, r.reason, r.message
                            ));
                        }
                        if let Ok(mut l) = seen.list.lock() {
                            l.push(r);
                        }
                    }
                }
                Ok(WatchEvent::Bookmark(b)) => rv = b.metadata.resource_version,
                Ok(WatchEvent::Error(s)) if s.code == 410 => {
                    rv.clear();
                    break;
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        if let Some(d) = backoff.next_delay() {
            tokio::time::sleep(d).await;
        } else {
            return;
        }
    }
}

/// List the pod's events now (for `log_events_on_failure` when no watch ran).
pub async fn list(kube: &Kube, ns: &str, name: &str) -> Vec<EventRecord> {
    let lp = ListParams::default().fields(&selector(ns, name));
    kube.call(|c| {
        let lp = lp.clone();
        async move { Api::<Event>::namespaced(c, ns).list(&lp).await }
    })
    .await
    .map(|l| l.items.iter().map(record).collect())
    .unwrap_or_default()
}
