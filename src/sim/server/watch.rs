//! `?watch=true`: a streaming body of newline-delimited watch events fed from the store's
//! fan-out, filtered by label/field selectors the way the watch cache does (an object that
//! stops matching is sent as DELETED, one that starts matching as ADDED), with BOOKMARKs,
//! `timeoutSeconds`, `sendInitialEvents`, 410 Expired as an ERROR event, and the
//! close-watch fault.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::sim::faults::FaultKind;
use crate::sim::kind::Kind;
use crate::sim::selector::{FieldSelector, LabelSelector};
use crate::sim::server::AppState;
use crate::sim::store::{Change, ChangeType, Since, Watch};

/// What the handler parsed from the query.
pub struct Params {
    /// Kind watched.
    pub kind: Kind,
    /// Namespace, or all.
    pub namespace: Option<String>,
    /// Where to start.
    pub since: Since,
    /// Send BOOKMARK events.
    pub bookmarks: bool,
    /// Send the initial-events-end bookmark after the initial ADDED events.
    pub initial_events_end: bool,
    /// Stream length.
    pub timeout: Duration,
    /// Selectors.
    pub labels: LabelSelector,
    /// Selectors.
    pub fields: FieldSelector,
    /// Render objects as meta.k8s.io Tables (kubectl get -w).
    pub table: bool,
    /// Request path, for faults.
    pub path: String,
}

struct Stream {
    app: Arc<AppState>,
    watch: Watch,
    p: Params,
    out: VecDeque<Bytes>,
    deadline: Instant,
    close_at: Option<Instant>,
    close_after: Option<u64>,
    sent: u64,
    bookmark: Option<tokio::time::Interval>,
    ended: bool,
}

fn line(kind: &str, object: &[u8]) -> Bytes {
    let mut v = Vec::with_capacity(object.len() + 32);
    v.extend_from_slice(b"{\"type\":\"");
    v.extend_from_slice(kind.as_bytes());
    v.extend_from_slice(b"\",\"object\":");
    v.extend_from_slice(object);
    v.extend_from_slice(b"}\n");
    Bytes::from(v)
}

impl Stream {
    fn selected(&self, obj: &Value) -> bool {
        self.p.labels.matches(obj) && self.p.fields.matches(obj)
    }

    /// The event type this watcher sees for a change, if any.
    fn translate(&self, c: &Change) -> Option<&'static str> {
        let now = self.selected(&c.object);
        let before = c.prev.as_deref().is_some_and(|p| self.selected(p));
        match c.change {
            ChangeType::Added => now.then_some("ADDED"),
            ChangeType::Modified => match (before, now) {
                (true, true) => Some("MODIFIED"),
                (false, true) => Some("ADDED"),
                (true, false) => Some("DELETED"),
                (false, false) => None,
            },
            ChangeType::Deleted => now.then_some("DELETED"),
        }
    }

    fn encode(&self, c: &Change) -> Option<Bytes> {
        let ty = self.translate(c)?;
        if self.p.table {
            let t =
                crate::sim::server::api::table(self.p.kind, std::slice::from_ref(&c.object), c.rv);
            let bytes = serde_json::to_vec(&t).unwrap_or_default();
            return Some(line(ty, &bytes));
        }
        Some(line(ty, c.object_json()))
    }

    fn bookmark_line(&self, initial_end: bool) -> Bytes {
        let mut meta = json!({"resourceVersion": self.watch.progress().to_string()});
        if initial_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let obj = json!({"kind": self.p.kind.kind(), "apiVersion": "v1", "metadata": meta});
        line("BOOKMARK", &serde_json::to_vec(&obj).unwrap_or_default())
    }

    async fn next(&mut self) -> Option<Bytes> {
        loop {
            if let Some(b) = self.out.pop_front() {
                return Some(b);
            }
            if self.ended {
                return None;
            }
            if self.close_after.is_some_and(|n| self.sent >= n) {
                self.app.faults.count(&FaultKind::CloseWatch {
                    after_events: None,
                    after: None,
                });
                return None;
            }
            let close_at = self.close_at.unwrap_or(self.deadline).min(self.deadline);
            let tick = async {
                match self.bookmark.as_mut() {
                    Some(i) => {
                        i.tick().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                c = self.watch.next() => match c {
                    Some(c) => {
                        if let Some(b) = self.encode(&c) {
                            self.sent += 1;
                            return Some(b);
                        }
                    }
                    None => return None,
                },
                _ = tokio::time::sleep_until(close_at) => {
                    if self.close_at.is_some_and(|c| c <= self.deadline) {
                        self.app.faults.count(&FaultKind::CloseWatch { after_events: None, after: None });
                    }
                    return None;
                }
                _ = tick => return Some(self.bookmark_line(false)),
                _ = self.app.shutdown.cancelled() => return None,
            }
        }
    }
}

/// Start a watch stream for `p`.
pub fn serve(app: Arc<AppState>, p: Params) -> Response {
    let watch = match app.store.watch(p.kind, p.namespace.as_deref(), p.since) {
        Ok(w) => w,
        Err(e) => {
            // Like the API server: 200, then one ERROR event carrying the Status.
            let body = line(
                "ERROR",
                &serde_json::to_vec(&e.to_status()).unwrap_or_default(),
            );
            return (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                body,
            )
                .into_response();
        }
    };
    let fault = app.faults.take("watch", &p.path, |k| {
        matches!(k, FaultKind::CloseWatch { .. })
    });
    let (close_after, close_at) = match fault {
        Some(FaultKind::CloseWatch {
            after_events,
            after,
        }) => (after_events, after.map(|d| Instant::now() + d)),
        _ => (None, None),
    };
    let bookmark = p.bookmarks.then(|| {
        let every = app.settings.bookmark_interval;
        let mut i = tokio::time::interval_at(Instant::now() + every, every);
        i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        i
    });
    let mut s = Stream {
        deadline: Instant::now() + p.timeout,
        app,
        out: VecDeque::new(),
        close_at,
        close_after,
        sent: 0,
        bookmark,
        ended: false,
        watch,
        p,
    };
    if s.p.initial_events_end {
        let pending = s.watch.take_pending();
        for c in &pending {
            if let Some(b) = s.encode(c) {
                s.out.push_back(b);
            }
        }
        let end = s.bookmark_line(true);
        s.out.push_back(end);
    }
    let stream = futures::stream::unfold(s, |mut s| async move {
        let b = s.next().await?;
        Some((Ok::<_, std::convert::Infallible>(b), s))
    });
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(stream),
    )
        .into_response()
}
