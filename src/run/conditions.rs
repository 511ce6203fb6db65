//! Pure questions about a pod's state: is it scheduled, started, finished, failed early?
//!
//! Conditions add no timeouts and send no requests; the waits in `await_start.rs` and
//! `lifecycle.rs` apply them to each state the watch delivers.

use k8s_openapi::api::core::v1::{ContainerState, ContainerStateTerminated, ContainerStatus, Pod};

/// Waiting reasons that never resolve by themselves: the pod will not start.
pub const FATAL_WAITING_REASONS: &[&str] = &[
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "ErrImageNeverPull",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
];

/// Image-pull reasons, for which the operator's wording is kept.
const IMAGE_REASONS: &[&str] = &[
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "ErrImageNeverPull",
];

/// Why a pod will never start properly, found before any timeout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EarlyFailure {
    /// The Kubernetes reason (`ErrImagePull`, `Unschedulable`, `Unknown`...).
    pub reason: String,
    /// The operator-style message, including the pod's own message.
    pub message: String,
}

/// The pod's phase, `""` when it has none yet.
pub fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

/// `status.reason` (`Evicted`, `DeadlineExceeded`...).
pub fn pod_reason(pod: &Pod) -> Option<&str> {
    pod.status.as_ref().and_then(|s| s.reason.as_deref())
}

/// Whether the phase is Succeeded or Failed.
pub fn is_terminal(pod: &Pod) -> bool {
    matches!(phase(pod), "Succeeded" | "Failed")
}

/// Whether the pod counts as started: the operator's rule, any phase but Pending.
pub fn is_started(pod: &Pod) -> bool {
    !matches!(phase(pod), "Pending" | "")
}

/// Whether the `PodScheduled` condition is True.
pub fn is_scheduled(pod: &Pod) -> bool {
    pod_condition(pod, "PodScheduled").is_some_and(|c| c.status == "True")
}

fn pod_condition<'a>(
    pod: &'a Pod,
    kind: &str,
) -> Option<&'a k8s_openapi::api::core::v1::PodCondition> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == kind)
}

/// The status of a regular container by name.
pub fn container_status<'a>(pod: &'a Pod, name: &str) -> Option<&'a ContainerStatus> {
    pod.status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .iter()
        .find(|c| c.name == name)
}

/// The status of an init container by name.
pub fn init_container_status<'a>(pod: &'a Pod, name: &str) -> Option<&'a ContainerStatus> {
    pod.status
        .as_ref()?
        .init_container_statuses
        .as_ref()?
        .iter()
        .find(|c| c.name == name)
}

/// The status of any container (regular or init) by name.
pub fn any_container_status<'a>(pod: &'a Pod, name: &str) -> Option<&'a ContainerStatus> {
    container_status(pod, name).or_else(|| init_container_status(pod, name))
}

fn state(s: &ContainerStatus) -> Option<&ContainerState> {
    s.state.as_ref()
}

/// The terminated state of a container (regular or init), if it has ended.
pub fn terminated<'a>(pod: &'a Pod, name: &str) -> Option<&'a ContainerStateTerminated> {
    any_container_status(pod, name)
        .and_then(state)
        .and_then(|s| s.terminated.as_ref())
}

/// Whether a container (regular or init) is running.
pub fn is_running(pod: &Pod, name: &str) -> bool {
    any_container_status(pod, name)
        .and_then(state)
        .is_some_and(|s| s.running.is_some())
}

/// Whether a container has produced, or may produce, logs: running or terminated.
pub fn has_begun(pod: &Pod, name: &str) -> bool {
    any_container_status(pod, name)
        .and_then(state)
        .is_some_and(|s| s.running.is_some() || s.terminated.is_some())
}

/// Whether a container will never run again: terminated, or the pod itself is finished.
pub fn is_finished(pod: &Pod, name: &str) -> bool {
    terminated(pod, name).is_some() || is_terminal(pod)
}

/// The base container's exit code, once it terminated.
pub fn exit_code(pod: &Pod, base: &str) -> Option<i32> {
    container_status(pod, base)
        .and_then(state)
        .and_then(|s| s.terminated.as_ref())
        .map(|t| t.exit_code)
}

/// Whether the run's main work is over: the base container terminated, or the pod is
/// terminal without it (evicted, deadline exceeded).
pub fn is_complete(pod: &Pod, base: &str) -> bool {
    exit_code(pod, base).is_some() || is_terminal(pod)
}

/// Names of `spec.containers` and `spec.initContainers`, in spec order.
pub fn container_names(pod: &Pod) -> (Vec<String>, Vec<String>) {
    let spec = pod.spec.as_ref();
    let main = spec
        .map(|s| s.containers.iter().map(|c| c.name.clone()).collect())
        .unwrap_or_default();
    let init = spec
        .and_then(|s| s.init_containers.as_ref())
        .map(|v| v.iter().map(|c| c.name.clone()).collect())
        .unwrap_or_default();
    (main, init)
}

/// Why the pod can never start, if it is already clear: a fatal waiting reason on any
/// container, a failed init container, phase Unknown, or an Unschedulable pod.
pub fn early_failure(pod: &Pod) -> Option<EarlyFailure> {
    let status = pod.status.as_ref()?;
    if phase(pod) == "Unknown" {
        return Some(EarlyFailure {
            reason: "Unknown".into(),
            message: format!(
                "Pod phase is Unknown: the node lost contact with the control plane{}",
                status
                    .message
                    .as_deref()
                    .map(|m| format!("\n{m}"))
                    .unwrap_or_default()
            ),
        });
    }
    let all = status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten());
    for cs in all {
        let Some(w) = state(cs).and_then(|s| s.waiting.as_ref()) else {
            continue;
        };
        let reason = w.reason.as_deref().unwrap_or("");
        if FATAL_WAITING_REASONS.contains(&reason) {
            let msg = w.message.as_deref().unwrap_or("");
            let message = if IMAGE_REASONS.contains(&reason) {
                format!("Pod docker image cannot be pulled, unable to start: {reason}\n{msg}")
            } else {
                format!("Container {} cannot start: {reason}\n{msg}", cs.name)
            };
            return Some(EarlyFailure {
                reason: reason.into(),
                message,
            });
        }
    }
    for cs in status.init_container_statuses.iter().flatten() {
        if let Some(t) = state(cs).and_then(|s| s.terminated.as_ref()) {
            if t.exit_code != 0 {
                return Some(EarlyFailure {
                    reason: t.reason.clone().unwrap_or_else(|| "Error".into()),
                    message: format!(
                        "Init container {} failed with exit code {}{}",
                        cs.name,
                        t.exit_code,
                        t.message
                            .as_deref()
                            .map(|m| format!("\n{m}"))
                            .unwrap_or_default()
                    ),
                });
            }
        }
    }
    if let Some(c) = pod_condition(pod, "PodScheduled") {
        if c.status == "False" && c.reason.as_deref() == Some("Unschedulable") {
            return Some(EarlyFailure {
                reason: "Unschedulable".into(),
                message: format!(
                    "Pod cannot be scheduled: {}",
                    c.message.as_deref().unwrap_or("Unschedulable")
                ),
            });
        }
    }
    None
}

/// A one-line summary for the status line: phase, reason, and the base container's state.
pub fn summary(pod: &Pod, base: &str) -> String {
    let mut s = phase(pod).to_string();
    if s.is_empty() {
        s.push_str("Pending");
    }
    if let Some(r) = pod_reason(pod) {
        s.push_str(&format!(" ({r})"));
    }
    if let Some(st) = container_status(pod, base).and_then(state) {
        if let Some(w) = &st.waiting {
            s.push_str(&format!(
                ", {base}: {}",
                w.reason.as_deref().unwrap_or("waiting")
            ));
        } else if st.running.is_some() {
            s.push_str(&format!(", {base}: running"));
        } else if let Some(t) = &st.terminated {
            s.push_str(&format!(", {base}: exited {}", t.exit_code));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(yaml: &str) -> Pod {
        serde_yaml_ng::from_str(yaml).expect("test pod YAML")
    }

    const BASE: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers: [{name: base, image: x}, {name: airflow-xcom-sidecar, image: alpine}]
  initContainers: [{name: init-1, image: x}]
"#;

    fn with_status(status: &str) -> Pod {
        pod(&format!("{BASE}status:\n{status}"))
    }

    #[test]
    fn pending_unscheduled_is_neither_started_nor_scheduled() {
        let p = with_status("  phase: Pending\n");
        assert!(!is_started(&p) && !is_scheduled(&p) && early_failure(&p).is_none());
        assert_eq!(container_names(&p).1, vec!["init-1".to_string()]);
    }

    #[test]
    fn scheduled_condition_is_read() {
        let p =
            with_status("  phase: Pending\n  conditions: [{type: PodScheduled, status: 'True'}]\n");
        assert!(is_scheduled(&p) && !is_started(&p));
    }

    #[test]
    fn every_fatal_waiting_reason_fails_early() {
        for reason in FATAL_WAITING_REASONS {
            let p = with_status(&format!(
                "  phase: Pending\n  containerStatuses:\n  - name: base\n    image: x\n    imageID: ''\n    ready: false\n    restartCount: 0\n    state: {{waiting: {{reason: {reason}, message: boom}}}}\n"
            ));
            let f = early_failure(&p).expect("fatal reason detected");
            assert_eq!(f.reason, *reason);
            assert!(f.message.contains("boom"), "{}", f.message);
        }
        let p = with_status(
            "  phase: Pending\n  containerStatuses:\n  - {name: base, image: x, imageID: '', ready: false, restartCount: 0, state: {waiting: {reason: ErrImagePull, message: nope}}}\n",
        );
        assert_eq!(
            early_failure(&p).expect("image pull").message,
            "Pod docker image cannot be pulled, unable to start: ErrImagePull\nnope"
        );
    }

    #[test]
    fn container_creating_is_not_fatal() {
        let p = with_status(
            "  phase: Pending\n  containerStatuses:\n  - {name: base, image: x, imageID: '', ready: false, restartCount: 0, state: {waiting: {reason: ContainerCreating}}}\n",
        );
        assert!(early_failure(&p).is_none());
    }

    #[test]
    fn failed_init_container_unknown_phase_and_unschedulable_fail_early() {
        let p = with_status(
            "  phase: Pending\n  initContainerStatuses:\n  - {name: init-1, image: x, imageID: '', ready: false, restartCount: 0, state: {terminated: {exitCode: 3, reason: Error}}}\n",
        );
        let f = early_failure(&p).expect("init failure");
        assert!(f.message.contains("init-1") && f.message.contains("exit code 3"));
        assert_eq!(
            early_failure(&with_status("  phase: Unknown\n"))
                .expect("unknown")
                .reason,
            "Unknown"
        );
        let p = with_status(
            "  phase: Pending\n  conditions: [{type: PodScheduled, status: 'False', reason: Unschedulable, message: 0/1 nodes}]\n",
        );
        assert_eq!(
            early_failure(&p).expect("unschedulable").reason,
            "Unschedulable"
        );
    }

    #[test]
    fn completion_is_the_base_container_not_the_phase() {
        let p = with_status(
            "  phase: Running\n  containerStatuses:\n  - {name: base, image: x, imageID: '', ready: false, restartCount: 0, state: {terminated: {exitCode: 0}}}\n  - {name: airflow-xcom-sidecar, image: x, imageID: '', ready: true, restartCount: 0, state: {running: {}}}\n",
        );
        assert!(is_complete(&p, "base") && !is_terminal(&p));
        assert_eq!(exit_code(&p, "base"), Some(0));
        assert!(is_running(&p, "airflow-xcom-sidecar"));
        assert_eq!(summary(&p, "base"), "Running, base: exited 0");
        let evicted = with_status("  phase: Failed\n  reason: Evicted\n");
        assert!(is_complete(&evicted, "base") && exit_code(&evicted, "base").is_none());
    }
}
