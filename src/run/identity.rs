//! Which pod belongs to this task run: the identity labels, the reattach selector, and the
//! deterministic choice among several candidates. Pure.
//!
//! A run is (task id, run id, try number), carried as the `podrun.dev/*` labels that
//! `build` puts on the pod. The reattach selector leaves the try number out, as the
//! operator's does, so a retry can adopt the pod of an earlier try that is still running.

use k8s_openapi::api::core::v1::Pod;

use super::conditions;
use super::params::OnFinishAction;

/// Label carrying the task id.
pub const TASK_ID: &str = "podrun.dev/task-id";
/// Label carrying the run id.
pub const RUN_ID: &str = "podrun.dev/run-id";
/// Label carrying the try number.
pub const TRY_NUMBER: &str = "podrun.dev/try-number";
/// The operator's "this pod's result was already evaluated" label.
pub const CHECKED: &str = "already_checked";
/// Annotation holding the log cursors of a detached run (JSON: container -> cursor).
pub const CURSOR_ANNOTATION: &str = "podrun.dev/log-cursor";
/// Annotation holding a detached run's lifecycle parameters (JSON), read by `attach`.
pub const PARAMS_ANNOTATION: &str = "podrun.dev/run-params";

/// The identity labels of a pod, as (key, value) pairs present on it.
pub fn identity(pod: &Pod) -> Vec<(String, String)> {
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    [TASK_ID, RUN_ID, TRY_NUMBER]
        .iter()
        .filter_map(|k| labels.get(*k).map(|v| ((*k).to_string(), v.clone())))
        .collect()
}

/// Whether `found` carries exactly the identity labels of `wanted` (try number included).
pub fn same_identity(wanted: &Pod, found: &Pod) -> bool {
    let w = identity(wanted);
    !w.is_empty() && w == identity(found)
}

/// The label selector finding this run's pods: task and run id, not the try number, and
/// not already checked; `!airflow-worker` as the operator excludes executor workers.
pub fn find_selector(pod: &Pod, exclude_checked: bool) -> Option<String> {
    let labels = pod.metadata.labels.as_ref()?;
    let task = labels.get(TASK_ID)?;
    let run = labels.get(RUN_ID)?;
    // Sorted by key, like the operator's selector.
    let mut s = format!("{RUN_ID}={run},{TASK_ID}={task}");
    if exclude_checked {
        s.push_str(&format!(",{CHECKED}!=True"));
    }
    s.push_str(",!airflow-worker");
    Some(s)
}

/// Whether a found pod can still be adopted: not finished, not evicted, not being deleted.
pub fn is_live(pod: &Pod) -> bool {
    !conditions::is_terminal(pod)
        && !conditions::pod_reason(pod).is_some_and(|r| r.eq_ignore_ascii_case("evicted"))
        && pod.metadata.deletion_timestamp.is_none()
}

fn try_number(pod: &Pod) -> i64 {
    pod.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(TRY_NUMBER))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Sort key for candidates: live first, then the highest try, the newest, the largest name.
fn rank(pod: &Pod) -> (bool, i64, Option<jiff::Timestamp>, String) {
    (
        is_live(pod),
        try_number(pod),
        pod.metadata.creation_timestamp.as_ref().map(|t| t.0),
        pod.metadata.name.clone().unwrap_or_default(),
    )
}

/// What to do with the pods the selector found.
#[derive(Debug, Clone, PartialEq)]
pub enum Found {
    /// Nothing found: create the pod.
    None,
    /// Adopt this live pod; `extra` are duplicates to retire.
    Adopt { pod: Box<Pod>, extra: Vec<Pod> },
    /// A finished pod of this run that nobody evaluated: delete it (per
    /// `on_finish_action`) and create a new one, or, when it is kept, evaluate it again.
    Finished { pod: Box<Pod>, extra: Vec<Pod> },
}

/// Choose deterministically among candidates: the best-ranked one wins, the rest are
/// duplicates (marked checked, and deleted when live, by the caller).
pub fn choose(mut pods: Vec<Pod>) -> Found {
    pods.sort_by_key(|p| std::cmp::Reverse(rank(p)));
    let mut it = pods.into_iter();
    let Some(first) = it.next() else {
        return Found::None;
    };
    let extra: Vec<Pod> = it.collect();
    if is_live(&first) {
        Found::Adopt {
            pod: Box::new(first),
            extra,
        }
    } else {
        Found::Finished {
            pod: Box::new(first),
            extra,
        }
    }
}

/// Whether `on_finish_action` deletes a pod in this state. `pod` must be a fresh read.
pub fn should_delete(action: OnFinishAction, pod: &Pod, base: &str) -> bool {
    match action {
        OnFinishAction::DeletePod => true,
        OnFinishAction::DeleteSucceededPod => {
            conditions::phase(pod) == "Succeeded" || conditions::exit_code(pod, base) == Some(0)
        }
        OnFinishAction::DeleteActivePod => matches!(conditions::phase(pod), "Pending" | "Running"),
        OnFinishAction::KeepPod => false,
    }
}

/// Whether cleanup labels the pod `already_checked=True` (the operator's rule: not
/// succeeded, or kept, or delete_active_pod). podrun skips it for a pod it is deleting.
pub fn should_mark_checked(action: OnFinishAction, pod: &Pod, deleting: bool) -> bool {
    !deleting
        && (conditions::phase(pod) != "Succeeded"
            || matches!(
                action,
                OnFinishAction::KeepPod | OnFinishAction::DeleteActivePod
            ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, try_n: &str, phase: &str, created: &str) -> Pod {
        serde_yaml_ng::from_str(&format!(
            r#"
metadata:
  name: {name}
  creationTimestamp: "{created}"
  labels: {{"podrun.dev/task-id": t, "podrun.dev/run-id": r1, "podrun.dev/try-number": "{try_n}", user: x}}
spec: {{containers: [{{name: base}}]}}
status: {{phase: {phase}}}
"#
        ))
        .expect("test pod")
    }

    #[test]
    fn selector_matches_the_operators_shape() {
        let p = pod("a", "1", "Running", "2026-01-01T00:00:00Z");
        assert_eq!(
            find_selector(&p, true).as_deref(),
            Some("podrun.dev/run-id=r1,podrun.dev/task-id=t,already_checked!=True,!airflow-worker")
        );
        assert_eq!(
            find_selector(&p, false).as_deref(),
            Some("podrun.dev/run-id=r1,podrun.dev/task-id=t,!airflow-worker")
        );
    }

    #[test]
    fn choice_is_deterministic_and_prefers_live_then_newest_try() {
        let a = pod("a", "1", "Running", "2026-01-01T00:00:00Z");
        let b = pod("b", "2", "Running", "2026-01-01T00:00:00Z");
        let c = pod("c", "3", "Failed", "2026-01-01T00:00:09Z");
        for order in [
            vec![a.clone(), b.clone(), c.clone()],
            vec![c.clone(), b.clone(), a.clone()],
        ] {
            match choose(order) {
                Found::Adopt { pod, extra } => {
                    assert_eq!(pod.metadata.name.as_deref(), Some("b"));
                    assert_eq!(extra.len(), 2);
                }
                other => panic!("expected adopt, got {other:?}"),
            }
        }
        assert!(matches!(choose(vec![c]), Found::Finished { .. }));
        assert_eq!(choose(vec![]), Found::None);
    }

    #[test]
    fn identity_includes_the_try_number() {
        let a = pod("a", "1", "Running", "2026-01-01T00:00:00Z");
        let b = pod("b", "2", "Running", "2026-01-01T00:00:00Z");
        assert!(same_identity(&a, &a.clone()));
        assert!(!same_identity(&a, &b));
    }

    #[test]
    fn deletion_rules_follow_on_finish_action() {
        let ok = pod("a", "1", "Succeeded", "2026-01-01T00:00:00Z");
        let failed = pod("a", "1", "Failed", "2026-01-01T00:00:00Z");
        let running = pod("a", "1", "Running", "2026-01-01T00:00:00Z");
        use OnFinishAction::*;
        assert!(should_delete(DeletePod, &failed, "base"));
        assert!(should_delete(DeleteSucceededPod, &ok, "base"));
        assert!(!should_delete(DeleteSucceededPod, &failed, "base"));
        assert!(should_delete(DeleteActivePod, &running, "base"));
        assert!(!should_delete(DeleteActivePod, &failed, "base"));
        assert!(!should_delete(KeepPod, &running, "base"));
        assert!(should_mark_checked(KeepPod, &ok, false));
        assert!(!should_mark_checked(DeleteSucceededPod, &ok, false));
        assert!(should_mark_checked(DeleteSucceededPod, &failed, false));
        assert!(!should_mark_checked(DeletePod, &failed, true));
    }
}
