//! Pure status arithmetic ported from the kubelet: pod phase (`getPhase`), the pod
//! conditions (`status/generate.go`) and container state values.
//!
//! Nothing here does I/O; the pod worker keeps container statuses and calls these to
//! derive everything else, so every written status is consistent by construction.

use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStateRunning, ContainerStateTerminated,
    ContainerStateWaiting, ContainerStatus, PodCondition, PodSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// Pod phases.
pub const PENDING: &str = "Pending";
/// Pod phase Running.
pub const RUNNING: &str = "Running";
/// Pod phase Succeeded.
pub const SUCCEEDED: &str = "Succeeded";
/// Pod phase Failed.
pub const FAILED: &str = "Failed";

/// Whether an init container is a native sidecar (`restartPolicy: Always`).
pub fn is_sidecar(c: &Container) -> bool {
    c.restart_policy.as_deref() == Some("Always")
}

/// `state: waiting` with a reason and optional message.
pub fn waiting(reason: &str, message: Option<String>) -> ContainerState {
    ContainerState {
        waiting: Some(ContainerStateWaiting {
            reason: Some(reason.to_string()),
            message,
        }),
        ..ContainerState::default()
    }
}

/// `state: running` since `started_at`.
pub fn running(started_at: Time) -> ContainerState {
    ContainerState {
        running: Some(ContainerStateRunning {
            started_at: Some(started_at),
        }),
        ..ContainerState::default()
    }
}

/// A terminated state with the kubelet's reason for the exit code.
pub fn terminated(
    exit_code: i32,
    reason: Option<&str>,
    message: Option<String>,
    started_at: Option<Time>,
    finished_at: Time,
    container_id: Option<String>,
) -> ContainerState {
    let reason = reason
        .unwrap_or(if exit_code == 0 { "Completed" } else { "Error" })
        .to_string();
    ContainerState {
        terminated: Some(ContainerStateTerminated {
            exit_code,
            reason: Some(reason),
            message: message.filter(|m| !m.is_empty()),
            started_at,
            finished_at: Some(finished_at),
            container_id,
            signal: None,
        }),
        ..ContainerState::default()
    }
}

fn find<'a>(statuses: &'a [ContainerStatus], name: &str) -> Option<&'a ContainerStatus> {
    statuses.iter().find(|s| s.name == name)
}

fn state(s: &ContainerStatus) -> (bool, bool, bool) {
    let st = s.state.as_ref();
    (
        st.is_some_and(|x| x.running.is_some()),
        st.is_some_and(|x| x.terminated.is_some()),
        st.is_some_and(|x| x.waiting.is_some()),
    )
}

fn exit_code(s: &ContainerStatus) -> Option<i32> {
    s.state
        .as_ref()
        .and_then(|x| x.terminated.as_ref())
        .map(|t| t.exit_code)
}

fn last_exit_code(s: &ContainerStatus) -> Option<i32> {
    s.last_state
        .as_ref()
        .and_then(|x| x.terminated.as_ref())
        .map(|t| t.exit_code)
}

/// The pod phase from container statuses (`getPhase` in kubelet_pods.go).
///
/// `terminal` is true once the kubelet has decided the pod will run nothing more
/// (deleted, evicted, past its deadline); then all-stopped means Succeeded or Failed
/// regardless of the restart policy.
pub fn phase(
    spec: &PodSpec,
    init: &[ContainerStatus],
    app: &[ContainerStatus],
    terminal: bool,
) -> &'static str {
    let restart = spec.restart_policy.as_deref().unwrap_or("Always");
    let (mut pending_init, mut pending_sidecars, mut failed_init) = (0, 0, 0);
    for c in spec
        .init_containers
        .iter()
        .flatten()
        .filter(|c| !is_sidecar(c))
    {
        let Some(s) = find(init, &c.name) else {
            pending_init += 1;
            continue;
        };
        match state(s) {
            (true, _, _) => pending_init += 1,
            (_, true, _) => {
                if exit_code(s) != Some(0) {
                    failed_init += 1;
                }
            }
            (_, _, true) => match last_exit_code(s) {
                Some(code) if code != 0 => failed_init += 1,
                Some(_) => {}
                None => pending_init += 1,
            },
            _ => pending_init += 1,
        }
    }
    let (mut unknown, mut running, mut waiting, mut stopped, mut succeeded) = (0, 0, 0, 0, 0);
    for c in spec
        .init_containers
        .iter()
        .flatten()
        .filter(|c| is_sidecar(c))
    {
        let Some(s) = find(init, &c.name) else {
            unknown += 1;
            continue;
        };
        match state(s) {
            (true, _, _) => {
                if s.started != Some(true) {
                    pending_sidecars += 1;
                }
                running += 1;
            }
            (_, true, _) => {}
            (_, _, true) => {
                if last_exit_code(s).is_none() {
                    pending_sidecars += 1;
                    waiting += 1;
                }
            }
            _ => {
                pending_sidecars += 1;
                unknown += 1;
            }
        }
    }
    for c in &spec.containers {
        let Some(s) = find(app, &c.name) else {
            unknown += 1;
            continue;
        };
        match state(s) {
            (true, _, _) => running += 1,
            (_, true, _) => {
                stopped += 1;
                if exit_code(s) == Some(0) {
                    succeeded += 1;
                }
            }
            (_, _, true) => {
                if last_exit_code(s).is_some() {
                    stopped += 1;
                } else {
                    waiting += 1;
                }
            }
            _ => unknown += 1,
        }
    }
    if failed_init > 0 && restart == "Never" {
        return FAILED;
    }
    if pending_init > 0 || (pending_sidecars > 0 && stopped == 0) || waiting > 0 {
        return PENDING;
    }
    if running > 0 && unknown == 0 {
        return RUNNING;
    }
    if running == 0 && stopped > 0 && unknown == 0 {
        if terminal {
            return if stopped == succeeded {
                SUCCEEDED
            } else {
                FAILED
            };
        }
        if restart == "Always" {
            return RUNNING;
        }
        if stopped == succeeded {
            return SUCCEEDED;
        }
        if restart == "Never" {
            return FAILED;
        }
        return RUNNING;
    }
    PENDING
}

/// The inputs of the kubelet's condition generators.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    /// The pod spec.
    pub spec: &'a PodSpec,
    /// Init container statuses.
    pub init: &'a [ContainerStatus],
    /// App container statuses.
    pub app: &'a [ContainerStatus],
    /// Current phase.
    pub phase: &'a str,
    /// Whether the pod "sandbox" exists (false before setup and after the pod stopped).
    pub sandbox_ready: bool,
}

fn condition(type_: &str, ok: bool, reason: Option<&str>, message: Option<String>) -> PodCondition {
    PodCondition {
        type_: type_.to_string(),
        status: if ok { "True" } else { "False" }.to_string(),
        reason: reason.map(str::to_string),
        message,
        ..PodCondition::default()
    }
}

fn names(list: &[String]) -> String {
    format!("[{}]", list.join(" "))
}

/// PodReadyToStartContainers, Initialized, Ready and ContainersReady in the kubelet's
/// order; `lastTransitionTime` is kept from `previous` when the status did not change.
pub fn conditions(f: Facts<'_>, previous: &[PodCondition], now: &Time) -> Vec<PodCondition> {
    let containers_ready = containers_ready(f);
    let mut ready = containers_ready.clone();
    ready.type_ = "Ready".into();
    let list = [
        condition("PodReadyToStartContainers", f.sandbox_ready, None, None),
        initialized(f),
        ready,
        containers_ready,
    ];
    list.into_iter()
        .map(|mut c| {
            let prev = previous.iter().find(|p| p.type_ == c.type_);
            c.last_transition_time = match prev {
                Some(p) if p.status == c.status => p.last_transition_time.clone(),
                _ => Some(now.clone()),
            };
            c
        })
        .collect()
}

fn initialized(f: Facts<'_>) -> PodCondition {
    let inits: Vec<&Container> = f.spec.init_containers.iter().flatten().collect();
    if inits.is_empty() {
        return condition("Initialized", true, None, None);
    }
    let (mut unknown, mut incomplete) = (Vec::new(), Vec::new());
    for c in inits {
        let Some(s) = find(f.init, &c.name) else {
            unknown.push(c.name.clone());
            continue;
        };
        if is_sidecar(c) {
            if s.started != Some(true) {
                incomplete.push(c.name.clone());
            }
        } else if exit_code(s) != Some(0) {
            incomplete.push(c.name.clone());
        }
    }
    if unknown.is_empty() && incomplete.is_empty() {
        return condition("Initialized", true, Some("PodCompleted"), None);
    }
    let app_started = f.spec.containers.iter().any(|c| {
        find(f.app, &c.name).is_some_and(|s| {
            s.state
                .as_ref()
                .is_some_and(|x| x.running.is_some() || x.terminated.is_some())
                || s.last_state
                    .as_ref()
                    .is_some_and(|x| x.terminated.is_some())
        })
    });
    if app_started {
        return condition("Initialized", true, None, None);
    }
    let mut msgs = Vec::new();
    if !unknown.is_empty() {
        msgs.push(format!(
            "containers with unknown status: {}",
            names(&unknown)
        ));
    }
    if !incomplete.is_empty() {
        msgs.push(format!(
            "containers with incomplete status: {}",
            names(&incomplete)
        ));
    }
    condition(
        "Initialized",
        false,
        Some("ContainersNotInitialized"),
        Some(msgs.join(", ")),
    )
}

fn containers_ready(f: Facts<'_>) -> PodCondition {
    let (mut unknown, mut unready) = (Vec::new(), Vec::new());
    let sidecars = f
        .spec
        .init_containers
        .iter()
        .flatten()
        .filter(|c| is_sidecar(c));
    for (c, list) in sidecars
        .map(|c| (c, f.init))
        .chain(f.spec.containers.iter().map(|c| (c, f.app)))
    {
        match find(list, &c.name) {
            Some(s) if !s.ready => unready.push(c.name.clone()),
            Some(_) => {}
            None => unknown.push(c.name.clone()),
        }
    }
    if (f.phase == SUCCEEDED && unknown.is_empty()) || f.phase == FAILED {
        let reason = if f.phase == FAILED {
            "PodFailed"
        } else {
            "PodCompleted"
        };
        return condition("ContainersReady", false, Some(reason), None);
    }
    let mut msgs = Vec::new();
    if !unknown.is_empty() {
        msgs.push(format!(
            "containers with unknown status: {}",
            names(&unknown)
        ));
    }
    if !unready.is_empty() {
        msgs.push(format!(
            "containers with unready status: {}",
            names(&unready)
        ));
    }
    if msgs.is_empty() {
        return condition("ContainersReady", true, None, None);
    }
    condition(
        "ContainersReady",
        false,
        Some("ContainersNotReady"),
        Some(msgs.join(", ")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Pod;

    fn spec(yaml: &str) -> PodSpec {
        let p: Pod = serde_yaml_ng::from_str(yaml).expect("pod parses");
        p.spec.expect("spec")
    }

    fn status(name: &str, state: ContainerState, ready: bool) -> ContainerStatus {
        ContainerStatus {
            name: name.into(),
            state: Some(state),
            ready,
            ..ContainerStatus::default()
        }
    }

    fn now() -> Time {
        Time(jiff::Timestamp::from_second(1_700_000_000).expect("valid"))
    }

    fn done(code: i32) -> ContainerState {
        terminated(code, None, None, None, now(), None)
    }

    #[test]
    fn phase_follows_restart_policy() {
        let never = spec("spec: {restartPolicy: Never, containers: [{name: a}, {name: b}]}");
        let always = spec("spec: {restartPolicy: Always, containers: [{name: a}, {name: b}]}");
        let on_failure =
            spec("spec: {restartPolicy: OnFailure, containers: [{name: a}, {name: b}]}");
        let creating = [
            status("a", waiting("ContainerCreating", None), false),
            status("b", waiting("ContainerCreating", None), false),
        ];
        assert_eq!(phase(&never, &[], &creating, false), PENDING);
        let one_running = [
            status("a", running(now()), true),
            status("b", done(0), false),
        ];
        assert_eq!(phase(&never, &[], &one_running, false), RUNNING);
        let ok = [status("a", done(0), false), status("b", done(0), false)];
        let bad = [status("a", done(0), false), status("b", done(2), false)];
        assert_eq!(phase(&never, &[], &ok, false), SUCCEEDED);
        assert_eq!(phase(&never, &[], &bad, false), FAILED);
        assert_eq!(phase(&always, &[], &ok, false), RUNNING);
        assert_eq!(phase(&always, &[], &ok, true), SUCCEEDED);
        assert_eq!(phase(&on_failure, &[], &ok, false), SUCCEEDED);
        assert_eq!(phase(&on_failure, &[], &bad, false), RUNNING);
        assert_eq!(phase(&on_failure, &[], &bad, true), FAILED);
        assert_eq!(phase(&never, &[], &[], false), PENDING);
    }

    #[test]
    fn failed_init_container_fails_a_never_pod() {
        let s = spec(
            "spec: {restartPolicy: Never, initContainers: [{name: i}], containers: [{name: a}]}",
        );
        let init = [status("i", done(1), false)];
        let app = [status("a", waiting("PodInitializing", None), false)];
        assert_eq!(phase(&s, &init, &app, false), FAILED);
        let f = Facts {
            spec: &s,
            init: &init,
            app: &app,
            phase: FAILED,
            sandbox_ready: false,
        };
        let conds = conditions(f, &[], &now());
        let brief: Vec<(String, String, Option<String>, Option<String>)> = conds
            .into_iter()
            .map(|c| (c.type_, c.status, c.reason, c.message))
            .collect();
        assert_eq!(
            brief,
            [
                (
                    "PodReadyToStartContainers".into(),
                    "False".into(),
                    None,
                    None
                ),
                (
                    "Initialized".into(),
                    "False".into(),
                    Some("ContainersNotInitialized".into()),
                    Some("containers with incomplete status: [i]".into())
                ),
                (
                    "Ready".into(),
                    "False".into(),
                    Some("PodFailed".into()),
                    None
                ),
                (
                    "ContainersReady".into(),
                    "False".into(),
                    Some("PodFailed".into()),
                    None
                ),
            ]
        );
    }

    #[test]
    fn unready_containers_are_listed() {
        let s = spec("spec: {containers: [{name: b}, {name: a}]}");
        let app = [
            status("a", waiting("ContainerCreating", None), false),
            status("b", waiting("ContainerCreating", None), false),
        ];
        let f = Facts {
            spec: &s,
            init: &[],
            app: &app,
            phase: PENDING,
            sandbox_ready: false,
        };
        let c = &conditions(f, &[], &now())[2];
        assert_eq!(
            c.message.as_deref(),
            Some("containers with unready status: [b a]")
        );
    }
}
