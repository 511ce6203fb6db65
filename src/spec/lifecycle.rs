//! Lifecycle parameters: parsed and validated here, acted on by the runner. Defaults are
//! the operator's.

use std::time::Duration;

/// How the pod's lifecycle is followed. Every field documents the operator default.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Lifecycle {
    /// `startup_timeout_seconds` (default 120): time allowed from scheduling to the
    /// containers running.
    pub startup_timeout: Duration,
    /// `schedule_timeout_seconds` (default: the startup timeout; the operator's
    /// `schedule_timeout_seconds or startup_timeout_seconds`, so 0 also means the default).
    pub schedule_timeout: Duration,
    /// `startup_check_interval_seconds` (default 5).
    pub startup_check_interval: Duration,
    /// `get_logs` (default true): stream container logs.
    pub get_logs: bool,
    /// `container_logs` (default: the base container): which containers' logs to stream.
    pub container_logs: ContainerLogs,
    /// `init_container_logs` (default none): which init containers' logs to stream.
    pub init_container_logs: Option<ContainerLogs>,
    /// `log_events_on_failure` (default false).
    pub log_events_on_failure: bool,
    /// `log_pod_spec_on_failure` (default true).
    pub log_pod_spec_on_failure: bool,
    /// `reattach_on_restart` (default true): adopt a running pod of the same task/run.
    /// Newer operators call it `durable`, which wins when both are given.
    pub reattach_on_restart: bool,
    /// `log_events_on_startup` (default true, newer operators): log the pod's events while
    /// waiting for it to start.
    pub log_events_on_startup: bool,
    /// `on_kill_action` (default `delete_pod`, newer operators): what an interrupt does to
    /// the pod.
    pub on_kill_action: OnKillAction,
    /// `on_finish_action` (default `delete_pod`).
    pub on_finish_action: OnFinishAction,
    /// `skip_on_exit_code` (default none): base-container exit codes that mean "skipped".
    /// An int or a list, normalised to a list; 0 is allowed.
    pub skip_on_exit_code: Vec<i32>,
    /// `deferrable` (default false). podrun's runner is event-driven either way; kept for
    /// the runner to report.
    pub deferrable: bool,
    /// `poll_interval` (default 2 s).
    pub poll_interval: Duration,
    /// `logging_interval` (default none).
    pub logging_interval: Option<Duration>,
    /// `container_name_log_prefix_enabled` (default true): prefix log lines with `[name] `.
    pub container_name_log_prefix_enabled: bool,
}

impl Lifecycle {
    /// The operator's defaults, with `base` as the base container name.
    pub fn defaults(base_container_name: &str) -> Self {
        Lifecycle {
            startup_timeout: Duration::from_secs(120),
            schedule_timeout: Duration::from_secs(120),
            startup_check_interval: Duration::from_secs(5),
            get_logs: true,
            container_logs: ContainerLogs::Names(vec![base_container_name.to_string()]),
            init_container_logs: None,
            log_events_on_failure: false,
            log_pod_spec_on_failure: true,
            reattach_on_restart: true,
            log_events_on_startup: true,
            on_kill_action: OnKillAction::DeletePod,
            on_finish_action: OnFinishAction::DeletePod,
            skip_on_exit_code: Vec::new(),
            deferrable: false,
            poll_interval: Duration::from_secs(2),
            logging_interval: None,
            container_name_log_prefix_enabled: true,
        }
    }
}

/// Which containers' logs to stream (`True`, one name, or a list of names).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ContainerLogs {
    /// `true`: every container, in spec order.
    All,
    /// The listed containers.
    Names(Vec<String>),
}

/// What to do with the pod when the task ends (`on_finish_action`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnFinishAction {
    /// `keep_pod`: never delete.
    KeepPod,
    /// `delete_pod`: always delete (default).
    DeletePod,
    /// `delete_succeeded_pod`: delete only when the pod (or base container) succeeded.
    DeleteSucceededPod,
    /// `delete_active_pod`: delete only a pod still Pending or Running.
    DeleteActivePod,
}

impl OnFinishAction {
    /// The accepted spellings, as in the operator.
    pub const NAMES: &'static [&'static str] = &[
        "keep_pod",
        "delete_pod",
        "delete_succeeded_pod",
        "delete_active_pod",
    ];

    /// Parses the operator's string value.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "keep_pod" => OnFinishAction::KeepPod,
            "delete_pod" => OnFinishAction::DeletePod,
            "delete_succeeded_pod" => OnFinishAction::DeleteSucceededPod,
            "delete_active_pod" => OnFinishAction::DeleteActivePod,
            _ => return None,
        })
    }
}

/// What to do with the pod when podrun is interrupted (`on_kill_action`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnKillAction {
    /// `delete_pod` (default): delete it, with `termination_grace_period` when set.
    DeletePod,
    /// `keep_pod`: leave it running.
    KeepPod,
}

impl OnKillAction {
    /// The accepted spellings, as in the operator.
    pub const NAMES: &'static [&'static str] = &["delete_pod", "keep_pod"];

    /// Parses the operator's string value.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "delete_pod" => Some(OnKillAction::DeletePod),
            "keep_pod" => Some(OnKillAction::KeepPod),
            _ => None,
        }
    }
}
