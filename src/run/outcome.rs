//! Deciding a run's outcome from the final pod state: success, skipped or failed, with the
//! operator's messages. Pure.
//!
//! podrun judges the base container, not the pod phase: a base container that exited 0
//! succeeds even if a sidecar failed (the operator fails such a pod unless it runs istio).
//! The skip check comes first, as in the operator, so `skip_on_exit_code: 0` skips.

use k8s_openapi::api::core::v1::Pod;
use serde::{Deserialize, Serialize};

use super::conditions;

/// The three ends of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The base container exited 0 and nothing else went wrong.
    Success,
    /// The base container's exit code is in `skip_on_exit_code`.
    Skipped,
    /// Anything else.
    Failed,
}

impl Status {
    /// The process exit code for this status (see `crate::exit`).
    pub fn exit_code(self) -> u8 {
        match self {
            Status::Success => crate::exit::SUCCESS,
            Status::Skipped => crate::exit::SKIPPED,
            Status::Failed => crate::exit::TASK_FAILED,
        }
    }
}

/// A decided outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// Success, skipped or failed.
    pub status: Status,
    /// The base container's exit code, when it terminated.
    pub exit_code: Option<i32>,
    /// A short machine-readable reason (`Error`, `ErrImagePull`, `Evicted`, `Deleted`...).
    pub reason: Option<String>,
    /// The operator-style message; empty on success.
    pub message: String,
}

/// What went wrong outside the pod's own result (start failure, timeout, deletion, XCom).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Short reason for the report.
    pub reason: String,
    /// Human message, appended after the failure line.
    pub message: String,
}

impl Problem {
    /// A problem with a reason and message.
    pub fn new(reason: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            reason: reason.into(),
            message: message.into(),
        }
    }
}

/// Decide the outcome of pod `name` from its last known state.
pub fn decide(
    name: &str,
    pod: Option<&Pod>,
    base: &str,
    skip_on_exit_code: &[i32],
    problem: Option<&Problem>,
    log_pod_spec_on_failure: bool,
) -> Outcome {
    let exit_code = pod.and_then(|p| conditions::exit_code(p, base));
    if let Some(code) = exit_code {
        if skip_on_exit_code.contains(&code) {
            return Outcome {
                status: Status::Skipped,
                exit_code,
                reason: Some("SkipOnExitCode".into()),
                message: format!("Pod {name} returned exit code {code}. Skipping."),
            };
        }
    }
    if problem.is_none() && exit_code == Some(0) {
        return Outcome {
            status: Status::Success,
            exit_code,
            reason: None,
            message: String::new(),
        };
    }
    let terminated = pod.and_then(|p| conditions::terminated(p, base));
    let mut lines = vec![format!("Pod {name} returned a failure.")];
    if let Some(p) = problem {
        lines.push(p.message.clone());
    }
    if let Some(msg) = terminated.and_then(|t| t.message.as_deref()) {
        lines.push(msg.trim_end().to_string());
    }
    if problem.is_none() && exit_code.is_none() {
        if let Some(r) = pod.and_then(conditions::pod_reason) {
            let m = pod
                .and_then(|p| p.status.as_ref())
                .and_then(|s| s.message.as_deref())
                .unwrap_or("");
            lines.push(
                format!("Pod {r}: {m}")
                    .trim_end()
                    .trim_end_matches(':')
                    .to_string(),
            );
        }
    }
    if log_pod_spec_on_failure {
        if let Some(p) = pod {
            lines.push(format!(
                "remote_pod: {}",
                serde_json::to_string(p).unwrap_or_default()
            ));
        }
    }
    let reason = problem
        .map(|p| p.reason.clone())
        .or_else(|| terminated.and_then(|t| t.reason.clone()))
        .or_else(|| pod.and_then(conditions::pod_reason).map(str::to_string));
    Outcome {
        status: Status::Failed,
        exit_code,
        reason,
        message: lines
            .into_iter()
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ended(code: i32, message: &str) -> Pod {
        serde_yaml_ng::from_str(&format!(
            r#"
metadata: {{name: p}}
spec: {{containers: [{{name: base}}]}}
status:
  phase: Failed
  containerStatuses:
  - {{name: base, image: x, imageID: '', ready: false, restartCount: 0, state: {{terminated: {{exitCode: {code}, reason: Error, message: "{message}"}}}}}}
"#
        ))
        .expect("test pod")
    }

    #[test]
    fn success_skip_and_failure_messages() {
        let ok = decide("p", Some(&ended(0, "")), "base", &[], None, false);
        assert_eq!(ok.status, Status::Success);
        let skip = decide("p", Some(&ended(42, "")), "base", &[42], None, true);
        assert_eq!(skip.status, Status::Skipped);
        assert_eq!(skip.message, "Pod p returned exit code 42. Skipping.");
        let zero_skip = decide("p", Some(&ended(0, "")), "base", &[0], None, false);
        assert_eq!(zero_skip.status, Status::Skipped);
        let fail = decide(
            "p",
            Some(&ended(1, "bad thing")),
            "base",
            &[42],
            None,
            false,
        );
        assert_eq!(fail.status, Status::Failed);
        assert_eq!(fail.message, "Pod p returned a failure.\nbad thing");
        assert_eq!(fail.reason.as_deref(), Some("Error"));
        assert_eq!(fail.exit_code, Some(1));
    }

    #[test]
    fn pod_spec_is_appended_when_asked() {
        let fail = decide("p", Some(&ended(1, "")), "base", &[], None, true);
        assert!(fail
            .message
            .starts_with("Pod p returned a failure.\nremote_pod: {"));
    }

    #[test]
    fn a_problem_fails_even_a_zero_exit_and_leads_the_message() {
        let pr = Problem::new("XComInvalid", "XCom result is not valid JSON");
        let out = decide("p", Some(&ended(0, "")), "base", &[], Some(&pr), false);
        assert_eq!(out.status, Status::Failed);
        assert_eq!(
            out.message,
            "Pod p returned a failure.\nXCom result is not valid JSON"
        );
        assert_eq!(out.reason.as_deref(), Some("XComInvalid"));
        let gone = decide(
            "p",
            None,
            "base",
            &[],
            Some(&Problem::new("Deleted", "pod was deleted")),
            true,
        );
        assert_eq!(gone.message, "Pod p returned a failure.\npod was deleted");
    }

    #[test]
    fn evicted_pod_without_container_state_names_the_reason() {
        let p: Pod = serde_yaml_ng::from_str(
            "metadata: {name: p}\nstatus: {phase: Failed, reason: Evicted, message: low memory}\n",
        )
        .expect("test pod");
        let out = decide("p", Some(&p), "base", &[], None, false);
        assert_eq!(
            out.message,
            "Pod p returned a failure.\nPod Evicted: low memory"
        );
        assert_eq!(out.reason.as_deref(), Some("Evicted"));
    }
}
