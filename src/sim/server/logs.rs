//! `GET pods/{name}/log`: picks the container run like the kubelet does from the pod's
//! status (current, last terminated, or `previous`), answers the API server's 400s for
//! ambiguous or not-yet-started containers, and streams the CRI log through the runtime's
//! reader (`follow`, `timestamps`, `sinceTime`, `sinceSeconds`, `tailLines`, `limitBytes`),
//! applying the cut-log fault.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde_json::Value;

use crate::sim::faults::FaultKind;
use crate::sim::runtime::{logs, LogOptions, LogProgress};
use crate::sim::server::api::{Query, Route};
use crate::sim::server::AppState;
use crate::sim::status::{ApiError, Cause, Result};

/// Container names of a pod's list (`containers` or `initContainers`).
pub fn names(pod: &Value, list: &str) -> Vec<String> {
    pod.pointer(&format!("/spec/{list}"))
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .filter_map(|c| c["name"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// The container a logs/exec request means, with the API server's 400 texts.
pub fn pick_container(pod: &Value, name: &str, asked: Option<&str>) -> Result<String> {
    let main = names(pod, "containers");
    let init = names(pod, "initContainers");
    let eph = names(pod, "ephemeralContainers");
    match asked.filter(|c| !c.is_empty()) {
        Some(c) => {
            if main.iter().chain(&init).chain(&eph).any(|n| n == c) {
                Ok(c.to_string())
            } else {
                let mut msg = format!("container {c} is not valid for pod {name}");
                if main.len() > 1 {
                    msg = format!("container {c} is not valid for pod {name}");
                }
                Err(ApiError::bad_request(msg))
            }
        }
        None if main.len() == 1 => Ok(main[0].clone()),
        None => {
            let mut msg = format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                main.join(" ")
            );
            if !init.is_empty() {
                msg.push_str(&format!(
                    " or one of the init containers: [{}]",
                    init.join(" ")
                ));
            }
            Err(ApiError::bad_request(msg))
        }
    }
}

/// The container's status entry, from whichever status list holds it.
pub fn container_status<'a>(pod: &'a Value, container: &str) -> Option<&'a Value> {
    [
        "containerStatuses",
        "initContainerStatuses",
        "ephemeralContainerStatuses",
    ]
    .iter()
    .filter_map(|l| {
        pod.pointer(&format!("/status/{l}"))
            .and_then(Value::as_array)
    })
    .flatten()
    .find(|s| s["name"] == container)
}

fn parse_options(q: &Query, pod: &str) -> Result<LogOptions> {
    let mut causes = Vec::new();
    let since_time = match q.get("sinceTime").filter(|s| !s.is_empty()) {
        Some(t) => Some(t.parse::<jiff::Timestamp>().map_err(|_| {
            ApiError::bad_request(format!(
                "parsing time {t:?} as \"2006-01-02T15:04:05Z07:00\": cannot parse {t:?} as \"2006\""
            ))
        })?),
        None => None,
    };
    let since_seconds = q.int("sinceSeconds")?;
    let tail = q.int("tailLines")?;
    let limit = q.int("limitBytes")?;
    if since_time.is_some() && since_seconds.is_some() {
        causes.push(Cause::forbidden(
            "",
            "at most one of `sinceTime` or `sinceSeconds` may be specified",
        ));
    }
    if since_seconds.is_some_and(|s| s < 1) {
        causes.push(Cause::invalid(
            "sinceSeconds",
            &since_seconds.into(),
            "must be greater than 0",
        ));
    }
    if tail.is_some_and(|t| t < 0) {
        causes.push(Cause::invalid(
            "tailLines",
            &tail.into(),
            "must be greater than or equal to 0",
        ));
    }
    if limit.is_some_and(|l| l < 1) {
        causes.push(Cause::invalid(
            "limitBytes",
            &limit.into(),
            "must be greater than 0",
        ));
    }
    if !causes.is_empty() {
        return Err(ApiError::invalid("PodLogOptions", pod, causes));
    }
    Ok(LogOptions {
        follow: q.flag("follow"),
        timestamps: q.flag("timestamps"),
        since_time,
        since_seconds,
        tail_lines: tail.map(|t| t as u64),
        limit_bytes: limit.map(|l| l as u64),
    })
}

/// Which run's log to read, or the kubelet's error (`validateContainerLogStatus`).
fn choose_run(status: Option<&Value>, container: &str, pod: &str, previous: bool) -> Result<bool> {
    let st = status.map(|s| &s["state"]);
    let last_terminated = status.is_some_and(|s| s["lastState"]["terminated"].is_object());
    let waiting = st.and_then(|s| s["waiting"].as_object());
    if previous {
        if !last_terminated {
            return Err(ApiError::bad_request(format!(
                "previous terminated container \"{container}\" in pod \"{pod}\" not found"
            )));
        }
        // While waiting to restart, the last run is the previous one.
        return Ok(waiting.is_none());
    }
    let running = st.is_some_and(|s| s["running"].is_object());
    let terminated = st.is_some_and(|s| s["terminated"].is_object());
    if running || terminated || last_terminated {
        return Ok(false);
    }
    let reason = waiting
        .and_then(|w| w.get("reason"))
        .and_then(Value::as_str)
        .unwrap_or("ContainerCreating");
    let why = match reason {
        "ErrImagePull" => "image can't be pulled".to_string(),
        "ImagePullBackOff" => "trying and failing to pull image".to_string(),
        r => r.to_string(),
    };
    Err(ApiError::bad_request(format!(
        "container \"{container}\" in pod \"{pod}\" is waiting to start: {why}"
    )))
}

/// Serve a pod log request.
pub async fn serve(app: Arc<AppState>, route: &Route, q: &Query) -> Result<Response> {
    let ns = route.namespace.as_deref().unwrap_or_default();
    let name = route.name.as_deref().unwrap_or_default();
    let pod = app.store.get(route.kind, ns, name)?;
    let container = pick_container(&pod, name, q.get("container"))?;
    let opts = parse_options(q, name)?;
    let text =
        |b: Body| (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], b).into_response();
    if pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .is_empty()
    {
        // Not scheduled: the API server has no kubelet to ask and answers empty.
        return Ok(text(Body::empty()));
    }
    let previous = q.flag("previous");
    let use_previous = choose_run(
        container_status(&pod, &container),
        &container,
        name,
        previous,
    )?;
    let run = app
        .containers
        .as_ref()
        .and_then(|r| r.lookup(ns, name, &container, use_previous))
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "container \"{container}\" in pod \"{name}\" is waiting to start - no logs yet"
            ))
        })?;
    let progress = if run.exited || use_previous {
        LogProgress::finished()
    } else {
        run.container.log_progress()
    };
    let path = route_path(ns, name);
    let cut = app
        .faults
        .take("get", &path, |k| matches!(k, FaultKind::CutLog { .. }));
    let stream = logs::read(run.log_path.clone(), opts, progress);
    let shutdown = app.shutdown.clone();
    let stream = stream.take_until(async move { shutdown.cancelled().await });
    let body = match cut {
        Some(
            kind @ FaultKind::CutLog {
                after_lines,
                after_bytes,
                ..
            },
        ) => Body::from_stream(cut_stream(
            stream,
            (after_lines, after_bytes),
            kind,
            path,
            app.clone(),
        )),
        _ => Body::from_stream(stream),
    };
    Ok(text(body))
}

fn route_path(ns: &str, name: &str) -> String {
    format!("/api/v1/namespaces/{ns}/pods/{name}/log")
}

/// Cut the stream after the fault's lines or bytes (mid-line): abort the connection, or
/// with `clean` end the response there. The fault is used up (and counted) only when a
/// cut happens; a stream that ends first passes through whole.
fn cut_stream(
    inner: impl futures::Stream<Item = std::io::Result<Bytes>> + Send + 'static,
    (after_lines, after_bytes): (Option<u64>, Option<u64>),
    kind: FaultKind,
    path: String,
    app: Arc<AppState>,
) -> impl futures::Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    enum State {
        Counting,
        /// The cut has been sent; abort the connection (an error) next.
        Abort,
        Done,
        /// The fault was used up by another stream: pass the rest through.
        PassThrough,
    }
    struct S<St> {
        inner: std::pin::Pin<Box<St>>,
        lines_left: Option<u64>,
        bytes_left: Option<u64>,
        state: State,
        kind: FaultKind,
        path: String,
        app: Arc<AppState>,
    }
    let s = S {
        inner: Box::pin(inner),
        lines_left: after_lines,
        bytes_left: after_bytes,
        state: State::Counting,
        kind,
        path,
        app,
    };
    futures::stream::unfold(s, |mut s| async move {
        match s.state {
            State::Done => return None,
            State::Abort => {
                s.state = State::Done;
                let e = std::io::Error::new(std::io::ErrorKind::ConnectionAborted, "log cut");
                return Some((Err(e), s));
            }
            State::PassThrough => {
                let next = s.inner.next().await?;
                return Some((next, s));
            }
            State::Counting => {}
        }
        let chunk = match s.inner.next().await? {
            Ok(c) => c,
            Err(e) => return Some((Err(e), s)),
        };
        let mut end = chunk.len();
        if let Some(left) = s.lines_left {
            let mut seen = 0;
            for (i, b) in chunk.iter().enumerate() {
                if *b == b'\n' {
                    seen += 1;
                    if seen == left {
                        end = end.min(i + 1);
                        break;
                    }
                }
            }
            s.lines_left = Some(left.saturating_sub(seen));
        }
        if let Some(left) = s.bytes_left {
            end = end.min(usize::try_from(left).unwrap_or(usize::MAX));
            s.bytes_left = Some(left.saturating_sub(end as u64));
        }
        if s.lines_left == Some(0) || s.bytes_left == Some(0) {
            if s.app.faults.claim("get", &s.path, &s.kind) {
                let clean = matches!(s.kind, FaultKind::CutLog { clean: true, .. });
                s.state = if clean { State::Done } else { State::Abort };
                return Some((Ok(chunk.slice(..end)), s));
            }
            s.state = State::PassThrough;
        }
        Some((Ok(chunk), s))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn container_must_be_named_when_several() {
        let pod = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}], "initContainers": [{"name": "i"}]}});
        let e = pick_container(&pod, "p", None).expect_err("ambiguous");
        assert_eq!(e.message, "a container name must be specified for pod p, choose one of: [a b] or one of the init containers: [i]");
        assert_eq!(pick_container(&pod, "p", Some("i")).expect("init"), "i");
        assert_eq!(
            pick_container(&pod, "p", Some("z"))
                .expect_err("bad")
                .message,
            "container z is not valid for pod p"
        );
    }

    #[test]
    fn waiting_containers_have_no_logs() {
        let st = json!({"name": "base", "state": {"waiting": {"reason": "ContainerCreating"}}});
        let e = choose_run(Some(&st), "base", "x", false).expect_err("waiting");
        assert_eq!(
            e.message,
            "container \"base\" in pod \"x\" is waiting to start: ContainerCreating"
        );
        let e = choose_run(Some(&st), "base", "x", true).expect_err("no previous");
        assert_eq!(
            e.message,
            "previous terminated container \"base\" in pod \"x\" not found"
        );
        let crash = json!({"state": {"waiting": {"reason": "CrashLoopBackOff"}}, "lastState": {"terminated": {"exitCode": 1}}});
        assert_eq!(choose_run(Some(&crash), "base", "x", false), Ok(false));
        assert_eq!(choose_run(Some(&crash), "base", "x", true), Ok(false));
    }
}
