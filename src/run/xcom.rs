//! Reading the XCom result from the `airflow-xcom-sidecar` container, and running short
//! commands in containers (exec) in general.
//!
//! The read is length-checked: the sidecar prints the file's size (`wc -c`), then the
//! file; the value is accepted only when exactly that many bytes arrived, so a result cut
//! by the exec transport fails loudly (and the read is retried) instead of being parsed
//! partially. An empty or missing file is the operator's sentinel and becomes `null`.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, AttachParams};
use serde_json::Value;
use tokio::io::AsyncReadExt;

use super::conditions;
use super::connect::Kube;
use super::watch::{wait_for, StateRx};

/// The sidecar's container name.
pub const SIDECAR: &str = "airflow-xcom-sidecar";
/// The result file.
pub const RETURN_FILE: &str = "/airflow/xcom/return.json";
/// What the read prints for an empty or missing file (the operator's sentinel).
pub const EMPTY_SENTINEL: &str = "__airflow_xcom_result_empty__";

/// Attempts at the read before giving up.
const READ_ATTEMPTS: u32 = 3;

/// Why no XCom value could be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The sidecar ended before it could be read.
    #[error(
        "Xcom sidecar container is already terminated! Not possible to read xcom output of task."
    )]
    SidecarTerminated,
    /// The sidecar did not reach Running in time.
    #[error("Xcom sidecar container did not start within {0} seconds.")]
    SidecarNotStarted(u64),
    /// The pod went away before the read.
    #[error("pod was deleted before its XCom result was read")]
    PodGone,
    /// The exec failed every attempt.
    #[error("Failed to extract xcom from pod: {pod}: {why}")]
    Exec {
        /// Pod name.
        pod: String,
        /// Last failure.
        why: String,
    },
    /// Fewer or more bytes arrived than the file holds.
    #[error("XCom result was cut in transit: expected {expected} bytes, got {got}")]
    Truncated {
        /// Size announced by `wc -c`.
        expected: usize,
        /// Bytes received.
        got: usize,
    },
    /// The file is not JSON.
    #[error("XCom result in {RETURN_FILE} is not valid JSON: {0}")]
    InvalidJson(String),
}

/// The command that prints `<size>\n<content>`, or the sentinel for an empty file.
pub fn read_command() -> Vec<String> {
    vec![
        "/bin/sh".into(),
        "-c".into(),
        format!(
            "if [ -s {RETURN_FILE} ]; then wc -c < {RETURN_FILE}; cat {RETURN_FILE}; else echo {EMPTY_SENTINEL}; fi"
        ),
    ]
}

/// The command that stops the sidecar: SIGINT to its shell (PID 1), which traps it and
/// exits 0. podrun does not use the operator's `pgrep -f sh` form, which also signals every
/// other shell of the same user in a shared process namespace.
pub fn stop_command() -> Vec<String> {
    vec!["/bin/sh".into(), "-c".into(), "kill -INT 1".into()]
}

/// Parse the read's output into the value (`None` for the empty sentinel).
pub fn parse_output(out: &[u8]) -> Result<Option<Value>, Error> {
    if String::from_utf8_lossy(out).trim_end() == EMPTY_SENTINEL {
        return Ok(None);
    }
    let nl = out
        .iter()
        .position(|b| *b == b'\n')
        .ok_or(Error::Truncated {
            expected: 0,
            got: out.len(),
        })?;
    let expected: usize = String::from_utf8_lossy(&out[..nl])
        .trim()
        .parse()
        .map_err(|_| Error::Truncated {
            expected: 0,
            got: out.len(),
        })?;
    let body = &out[nl + 1..];
    if body.len() != expected {
        return Err(Error::Truncated {
            expected,
            got: body.len(),
        });
    }
    serde_json::from_slice(body)
        .map(Some)
        .map_err(|e| Error::InvalidJson(e.to_string()))
}

/// What an exec produced.
#[derive(Debug, Clone, Default)]
pub struct ExecOutput {
    /// Everything written to stdout.
    pub stdout: Vec<u8>,
    /// Everything written to stderr.
    pub stderr: Vec<u8>,
    /// Whether the command exited 0 (the server's status said Success).
    pub success: bool,
    /// The server's status message when it did not.
    pub status: Option<String>,
}

/// Run `cmd` in `container` of pod `ns/pod` to completion, draining both outputs.
pub async fn exec(
    kube: &Kube,
    ns: &str,
    pod: &str,
    container: &str,
    cmd: Vec<String>,
) -> Result<ExecOutput, kube::Error> {
    kube.call(|c| {
        let cmd = cmd.clone();
        async move {
            let ap = AttachParams::default()
                .container(container)
                .stdin(false)
                .stdout(true)
                .stderr(true)
                .max_stdout_buf_size(1 << 20);
            let mut proc = Api::<Pod>::namespaced(c, ns).exec(pod, cmd, &ap).await?;
            let mut out = Vec::new();
            let mut err = Vec::new();
            let stdout = proc.stdout();
            let stderr = proc.stderr();
            let status = proc.take_status();
            // Drain both pipes while the command runs: an undrained pipe would block it.
            let read_out = async {
                if let Some(mut s) = stdout {
                    let _ = s.read_to_end(&mut out).await;
                }
            };
            let read_err = async {
                if let Some(mut s) = stderr {
                    let _ = s.read_to_end(&mut err).await;
                }
            };
            tokio::join!(read_out, read_err);
            let status = match status {
                Some(s) => s.await,
                None => None,
            };
            let _ = proc.join().await;
            let success = status
                .as_ref()
                .is_some_and(|s| s.status.as_deref() == Some("Success"));
            Ok(ExecOutput {
                stdout: out,
                stderr: err,
                success,
                status: status.and_then(|s| s.message),
            })
        }
    })
    .await
}

/// Wait (bounded) for the sidecar to run, then read the value, retrying only the read.
pub async fn read(
    kube: &Kube,
    ns: &str,
    pod: &str,
    rx: &mut StateRx,
    wait: Duration,
) -> Result<Option<Value>, Error> {
    let ready = tokio::time::timeout(
        wait,
        wait_for(rx, |s| {
            s.gone
                || s.failed.is_some()
                || s.pod.as_deref().is_some_and(|p| {
                    conditions::is_running(p, SIDECAR)
                        || conditions::terminated(p, SIDECAR).is_some()
                })
        }),
    )
    .await
    .map_err(|_| Error::SidecarNotStarted(wait.as_secs()))?;
    if ready.gone {
        return Err(Error::PodGone);
    }
    if !ready
        .pod
        .as_deref()
        .is_some_and(|p| conditions::is_running(p, SIDECAR))
    {
        return Err(Error::SidecarTerminated);
    }
    let mut last = String::new();
    for attempt in 0..READ_ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
        }
        match exec(kube, ns, pod, SIDECAR, read_command()).await {
            Ok(out) if out.success => match parse_output(&out.stdout) {
                Ok(v) => return Ok(v),
                // A cut transfer is worth another read; bad JSON is not.
                Err(e @ Error::Truncated { .. }) => last = e.to_string(),
                Err(e) => return Err(e),
            },
            Ok(out) => {
                last = format!(
                    "{} {}",
                    out.status.unwrap_or_else(|| "read command failed".into()),
                    String::from_utf8_lossy(&out.stderr).trim()
                )
            }
            Err(e) => last = e.to_string(),
        }
    }
    Err(Error::Exec {
        pod: pod.into(),
        why: last,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_sentinel_is_null() {
        assert_eq!(parse_output(b"__airflow_xcom_result_empty__\n"), Ok(None));
    }

    #[test]
    fn length_checked_value_parses() {
        assert_eq!(
            parse_output(b"18\n{\"hello\": \"world\"}"),
            Ok(Some(serde_json::json!({"hello": "world"})))
        );
        assert_eq!(
            parse_output(b"  4\n[1]\n"),
            Ok(Some(serde_json::json!([1])))
        );
    }

    #[test]
    fn cut_value_and_bad_json_are_errors() {
        assert_eq!(
            parse_output(b"18\n{\"hello\": \"wo"),
            Err(Error::Truncated {
                expected: 18,
                got: 13
            })
        );
        assert!(matches!(
            parse_output(b"4\nnope"),
            Err(Error::InvalidJson(_))
        ));
    }

    #[test]
    fn large_value_round_trips() {
        let big = serde_json::json!({"data": "x".repeat(5 * 1024 * 1024)});
        let body = serde_json::to_vec(&big).expect("serialise");
        let mut out = format!("{}\n", body.len()).into_bytes();
        out.extend_from_slice(&body);
        assert_eq!(parse_output(&out), Ok(Some(big)));
    }
}
