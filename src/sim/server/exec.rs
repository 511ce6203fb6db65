//! `pods/{name}/exec`: the WebSocket remote-command protocol, subprotocols
//! `v5.channel.k8s.io` and `v4.channel.k8s.io`
//! (`k8s.io/apimachinery/pkg/util/remotecommand/constants.go`): every binary message starts
//! with its channel byte — stdin 0, stdout 1, stderr 2, error/status 3 (a `metav1.Status`
//! JSON since v4), resize 4, and in v5 close 255 (`[255, channel]` closes that stream).
//! The command runs through the runtime inside the container's namespaces.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Request};
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::sim::containers::Run;
use crate::sim::faults::FaultKind;
use crate::sim::runtime::ExecConfig;
use crate::sim::server::api::{Query, Route};
use crate::sim::server::logs::{container_status, pick_container};
use crate::sim::server::AppState;
use crate::sim::status::{ApiError, Result};

const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const STATUS: u8 = 3;
const CLOSE: u8 = 255;

/// The v4+ status message for an exit code (what the kubelet writes on channel 3).
pub fn exit_status(argv: &[String], code: i32) -> Value {
    if code == 0 {
        return json!({"metadata": {}, "status": "Success"});
    }
    json!({
        "metadata": {},
        "status": "Failure",
        "message": format!("command terminated with non-zero exit code: error executing command [{}], exit code {code}", argv.join(" ")),
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]}
    })
}

/// Serve an exec request: validate, then upgrade to a WebSocket.
pub async fn serve(app: Arc<AppState>, route: &Route, q: &Query, req: Request) -> Result<Response> {
    let ns = route.namespace.as_deref().unwrap_or_default().to_string();
    let name = route.name.as_deref().unwrap_or_default().to_string();
    let pod = app.store.get(route.kind, &ns, &name)?;
    let container = pick_container(&pod, &name, q.get("container"))?;
    let argv = q.all("command");
    if argv.is_empty() {
        return Err(ApiError::bad_request(
            "you must specify at least one command for the container",
        ));
    }
    if pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .is_empty()
    {
        return Err(ApiError::bad_request(format!(
            "pod {name} does not have a host assigned"
        )));
    }
    let phase = pod
        .pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if phase == "Succeeded" || phase == "Failed" {
        return Err(ApiError::bad_request(format!(
            "cannot exec into a container in a completed pod; current phase is {phase}"
        )));
    }
    let path = format!("/api/v1/namespaces/{ns}/pods/{name}/exec");
    if app
        .faults
        .take("create", &path, |k| matches!(k, FaultKind::FailExec))
        .is_some()
    {
        return Err(ApiError::internal(
            "error dialing backend: injected exec handshake failure",
        ));
    }
    let running =
        container_status(&pod, &container).is_some_and(|s| s["state"]["running"].is_object());
    let run = app
        .containers
        .as_ref()
        .and_then(|r| r.lookup(&ns, &name, &container, false))
        .filter(|r| running && !r.exited)
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "unable to upgrade connection: container not found (\"{container}\")"
            ))
        })?;
    let tty = q.flag("tty");
    let stdin = q.flag("stdin");
    let (mut parts, _body) = req.into_parts();
    let ws = WebSocketUpgrade::from_request_parts(&mut parts, &())
        .await
        .map_err(|_| ApiError::bad_request("Upgrade request required"))?;
    let ws = ws.protocols(["v5.channel.k8s.io", "v4.channel.k8s.io"]);
    let v5 = ws
        .selected_protocol()
        .is_some_and(|p| p == "v5.channel.k8s.io");
    if ws.selected_protocol().is_none() {
        return Err(ApiError::bad_request(
            "websocket subprotocol v5.channel.k8s.io or v4.channel.k8s.io required",
        ));
    }
    let shutdown = app.shutdown.clone();
    Ok(ws
        .on_upgrade(move |socket| async move {
            tokio::select! {
                _ = session(socket, run, argv, stdin, tty, v5) => {}
                _ = shutdown.cancelled() => {}
            }
        })
        .into_response())
}

fn frame(channel: u8, data: &[u8]) -> Message {
    let mut v = Vec::with_capacity(data.len() + 1);
    v.push(channel);
    v.extend_from_slice(data);
    Message::Binary(Bytes::from(v))
}

async fn pump(mut r: impl tokio::io::AsyncRead + Unpin, channel: u8, tx: mpsc::Sender<Message>) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if tx.send(frame(channel, &buf[..n])).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Exec, allowing a just-started container a moment to finish setting up its root: the
/// runtime reports a container once its PID 1 exists, which can be before its mounts are
/// in place, and a client may exec the instant the pod shows Running.
async fn exec_when_ready(
    run: &Run,
    cfg: ExecConfig,
) -> std::result::Result<crate::sim::runtime::ExecProcess, crate::sim::runtime::Error> {
    let young = || {
        let age = jiff::Timestamp::now().duration_since(run.container.started_at());
        age < jiff::SignedDuration::from_secs(5)
    };
    let mut tries = 0;
    loop {
        match run.container.exec(cfg.clone()).await {
            Err(crate::sim::runtime::Error::ExecutableNotFound { .. }) if tries < 20 && young() => {
                tries += 1;
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            other => return other,
        }
    }
}

/// One exec session on an upgraded socket.
async fn session(
    socket: WebSocket,
    run: Run,
    argv: Vec<String>,
    want_stdin: bool,
    tty: bool,
    v5: bool,
) {
    let (mut sink, mut source) = socket.split();
    let cfg = ExecConfig {
        argv: argv.clone(),
        tty,
        ..ExecConfig::default()
    };
    let mut proc = match exec_when_ready(&run, cfg).await {
        Ok(p) => p,
        Err(e) => {
            let st = json!({"metadata": {}, "status": "Failure", "message": e.to_string(), "reason": "InternalError",
                            "details": {"causes": [{"message": e.to_string()}]}});
            let _ = sink.send(frame(STATUS, st.to_string().as_bytes())).await;
            let _ = sink.send(normal_close()).await;
            return;
        }
    };
    let (tx, mut rx) = mpsc::channel::<Message>(64);
    let mut pumps = tokio::task::JoinSet::new();
    if let Some(out) = proc.stdout.take() {
        pumps.spawn(pump(out, STDOUT, tx.clone()));
    }
    if let Some(err) = proc.stderr.take() {
        pumps.spawn(pump(err, STDERR, tx.clone()));
    }
    drop(tx);
    let mut stdin = proc.stdin.take().filter(|_| want_stdin);
    // Feed stdin from the socket until the client closes it (v5 close frame or EOF).
    let input = async {
        while let Some(Ok(msg)) = source.next().await {
            let data = match msg {
                Message::Binary(b) => b,
                // The Python client sends str data as text frames ("\u{0}data").
                Message::Text(t) => Bytes::copy_from_slice(t.as_str().as_bytes()),
                Message::Close(_) => break,
                _ => continue,
            };
            match data.first() {
                Some(&STDIN) => {
                    if let Some(w) = stdin.as_mut() {
                        if w.write_all(&data[1..]).await.is_err() {
                            stdin = None;
                        }
                    }
                }
                Some(&CLOSE) if v5 && data.get(1) == Some(&STDIN) => {
                    stdin = None;
                }
                // Resize (4) has no effect without a TTY.
                _ => {}
            }
        }
        drop(stdin);
        std::future::pending::<()>().await;
    };
    let output = async {
        while let Some(m) = rx.recv().await {
            if sink.send(m).await.is_err() {
                break;
            }
        }
    };
    // Output ends when both pipes close (the command exited or closed them).
    tokio::select! {
        _ = output => {}
        _ = input => {}
    }
    // `input` owned stdin; dropping it above closed the command's stdin.
    let code = proc.wait().await.unwrap_or(-1);
    while pumps.join_next().await.is_some() {}
    let st = exit_status(&argv, code);
    let _ = sink.send(frame(STATUS, st.to_string().as_bytes())).await;
    let _ = sink.send(normal_close()).await;
}

/// A close frame with 1000 (normal closure): client-go reads anything else (even a close
/// without a code, 1005) as an error on the stream.
fn normal_close() -> Message {
    Message::Close(Some(CloseFrame {
        code: 1000,
        reason: "".into(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_reports_exit_code_like_the_kubelet() {
        assert_eq!(exit_status(&["true".into()], 0)["status"], "Success");
        let s = exit_status(&["sh".into(), "-c".into(), "exit 3".into()], 3);
        assert_eq!(s["reason"], "NonZeroExitCode");
        assert_eq!(
            s["details"]["causes"][0],
            json!({"reason": "ExitCode", "message": "3"})
        );
        assert_eq!(s["message"], "command terminated with non-zero exit code: error executing command [sh -c exit 3], exit code 3");
    }
}
