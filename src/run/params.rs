//! What a run needs to know besides the pod: the operator's lifecycle parameters, typed.
//!
//! The CLI glue fills this from the validated task file (`spec::Task`); the defaults are the
//! operator's. Kept as plain data so a detached run can store it on the pod and `attach`
//! can read it back.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::connect::Connection;

/// `on_finish_action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnFinishAction {
    /// Always delete the pod (default).
    #[default]
    DeletePod,
    /// Delete only when the pod succeeded (or its base container exited 0).
    DeleteSucceededPod,
    /// Delete when the pod is still Pending or Running.
    DeleteActivePod,
    /// Never delete.
    KeepPod,
}

/// Which containers' logs to follow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContainerSelection {
    /// None of them.
    None,
    /// Every container of that kind (the XCom sidecar excepted).
    All,
    /// These names; absent names are reported, not fatal.
    Names(Vec<String>),
}

/// The lifecycle parameters of one run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Params {
    /// The task id (for messages; identity is carried by the pod's labels).
    pub task_id: String,
    /// Name of container[0].
    pub base_container: String,
    /// `startup_timeout_seconds` (120).
    pub startup_timeout: Duration,
    /// `schedule_timeout_seconds`; `None` means the startup timeout.
    pub schedule_timeout: Option<Duration>,
    /// `get_logs` and `container_logs` combined: which containers to follow.
    pub container_logs: ContainerSelection,
    /// `init_container_logs`.
    pub init_container_logs: ContainerSelection,
    /// `container_name_log_prefix_enabled` (true).
    pub log_prefix: bool,
    /// `log_events_on_failure` (false).
    pub log_events_on_failure: bool,
    /// `log_pod_spec_on_failure` (true).
    pub log_pod_spec_on_failure: bool,
    /// `reattach_on_restart` (true).
    pub reattach_on_restart: bool,
    /// `on_finish_action`.
    pub on_finish_action: OnFinishAction,
    /// `skip_on_exit_code`, normalised to a list (0 allowed).
    pub skip_on_exit_code: Vec<i32>,
    /// `do_xcom_push` (false).
    pub do_xcom_push: bool,
    /// `termination_grace_period` in seconds, for deletes on kill and timeout.
    pub termination_grace_period: Option<i64>,
    /// `execution_timeout`, enforced by podrun from the start of the run.
    pub execution_timeout: Option<Duration>,
    /// How long to wait for the XCom sidecar to be running (the operator: 15 minutes).
    pub xcom_sidecar_timeout: Duration,
    /// Bound on each wait after the base container ended (sidecar stop, pod finishing).
    pub completion_timeout: Duration,
    /// A log stream silent this long while its container is known to have ended is
    /// re-opened from its cursor; while it runs, after 10× this.
    pub log_stall_timeout: Duration,
    /// How to reach the API server.
    pub connection: Connection,
}

impl Params {
    /// The operator's defaults for a task.
    pub fn new(task_id: impl Into<String>) -> Self {
        Params {
            task_id: task_id.into(),
            base_container: "base".into(),
            startup_timeout: Duration::from_secs(120),
            schedule_timeout: None,
            container_logs: ContainerSelection::Names(vec!["base".into()]),
            init_container_logs: ContainerSelection::None,
            log_prefix: true,
            log_events_on_failure: false,
            log_pod_spec_on_failure: true,
            reattach_on_restart: true,
            on_finish_action: OnFinishAction::DeletePod,
            skip_on_exit_code: Vec::new(),
            do_xcom_push: false,
            termination_grace_period: None,
            execution_timeout: None,
            xcom_sidecar_timeout: Duration::from_secs(900),
            completion_timeout: Duration::from_secs(60),
            log_stall_timeout: Duration::from_secs(30),
            connection: Connection::default(),
        }
    }

    /// The schedule timeout in force.
    pub fn schedule_timeout(&self) -> Duration {
        self.schedule_timeout.unwrap_or(self.startup_timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_operators() {
        let p = Params::new("t");
        assert_eq!(p.startup_timeout, Duration::from_secs(120));
        assert_eq!(p.schedule_timeout(), p.startup_timeout);
        assert_eq!(p.on_finish_action, OnFinishAction::DeletePod);
        assert!(p.reattach_on_restart && p.log_pod_spec_on_failure && p.log_prefix);
        let json = serde_json::to_string(&p).expect("params serialise");
        let back: Params = serde_json::from_str(&json).expect("params deserialise");
        assert_eq!(back.container_logs, p.container_logs);
    }
}
