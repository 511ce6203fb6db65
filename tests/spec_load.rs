//! `spec::load`: the typed task the runner and hooks build on — lifecycle parameters with
//! the operator's defaults and normalisation, hook declarations, render variables.

use std::path::{Path, PathBuf};
use std::time::Duration;

use podrun::spec::{
    self, ContainerLogs, HookPoint, HookSource, OnError, OnFinishAction, OnKillAction, RenderVars,
};

fn task_file(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("task.yaml");
    std::fs::write(&p, text).expect("write task");
    p
}

fn load(text: &str) -> spec::Task {
    let dir = tempfile::tempdir().expect("tempdir");
    spec::load(&task_file(dir.path(), text), &RenderVars::default()).expect("valid task")
}

#[test]
fn lifecycle_defaults_are_the_operators() {
    let t = load("task_id: t\nimage: busybox\n");
    let l = &t.lifecycle;
    assert_eq!(l.startup_timeout, Duration::from_secs(120));
    assert_eq!(l.schedule_timeout, Duration::from_secs(120));
    assert_eq!(l.startup_check_interval, Duration::from_secs(5));
    assert!(l.get_logs);
    assert_eq!(l.container_logs, ContainerLogs::Names(vec!["base".into()]));
    assert_eq!(l.init_container_logs, None);
    assert!(!l.log_events_on_failure);
    assert!(l.log_pod_spec_on_failure);
    assert!(l.reattach_on_restart);
    assert!(l.log_events_on_startup);
    assert_eq!(l.on_finish_action, OnFinishAction::DeletePod);
    assert_eq!(l.on_kill_action, OnKillAction::DeletePod);
    assert!(l.skip_on_exit_code.is_empty());
    assert!(!l.deferrable);
    assert_eq!(l.poll_interval, Duration::from_secs(2));
    assert_eq!(l.logging_interval, None);
    assert!(l.container_name_log_prefix_enabled);
    assert!(!t.do_xcom_push);
    assert_eq!(t.execution_timeout, None);
    assert!(t.hooks.is_empty());
    assert_eq!(t.pod.base_container_name, "base");
}

#[test]
fn lifecycle_values_are_normalised_like_the_operator() {
    let t = load(
        "task_id: t\nimage: busybox\nbase_container_name: main\nstartup_timeout_seconds: 30\n\
         schedule_timeout_seconds: 0\nstartup_check_interval_seconds: 0.5\nget_logs: false\n\
         init_container_logs: true\nskip_on_exit_code: 0\non_finish_action: delete_active_pod\n\
         reattach_on_restart: true\ndurable: false\non_kill_action: keep_pod\npoll_interval: 1.5\n\
         logging_interval: 10\nexecution_timeout: 90\nlog_events_on_startup: false\n",
    );
    let l = &t.lifecycle;
    assert_eq!(l.startup_timeout, Duration::from_secs(30));
    // `schedule_timeout_seconds or startup_timeout_seconds`: 0 falls back.
    assert_eq!(l.schedule_timeout, Duration::from_secs(30));
    assert_eq!(l.startup_check_interval, Duration::from_millis(500));
    assert!(!l.get_logs);
    // container_logs defaults to the (renamed) base container.
    assert_eq!(l.container_logs, ContainerLogs::Names(vec!["main".into()]));
    assert_eq!(l.init_container_logs, Some(ContainerLogs::All));
    // A single int is a list; 0 is a legal skip code.
    assert_eq!(l.skip_on_exit_code, vec![0]);
    assert_eq!(l.on_finish_action, OnFinishAction::DeleteActivePod);
    // `durable` wins over `reattach_on_restart`.
    assert!(!l.reattach_on_restart);
    assert_eq!(l.on_kill_action, OnKillAction::KeepPod);
    assert!(!l.log_events_on_startup);
    assert_eq!(l.poll_interval, Duration::from_millis(1500));
    assert_eq!(l.logging_interval, Some(Duration::from_secs(10)));
    assert_eq!(t.execution_timeout, Some(Duration::from_secs(90)));

    let t = load("task_id: t\nimage: busybox\ncontainer_logs: [a, b]\ninit_container_logs: one\nskip_on_exit_code: [1, 2]\n");
    assert_eq!(
        t.lifecycle.container_logs,
        ContainerLogs::Names(vec!["a".into(), "b".into()])
    );
    assert_eq!(
        t.lifecycle.init_container_logs,
        Some(ContainerLogs::Names(vec!["one".into()]))
    );
    assert_eq!(t.lifecycle.skip_on_exit_code, vec![1, 2]);
    // Falsy container_logs falls back to the base container, as `container_logs or base`.
    let t = load("task_id: t\nimage: busybox\ncontainer_logs: false\n");
    assert_eq!(
        t.lifecycle.container_logs,
        ContainerLogs::Names(vec!["base".into()])
    );
}

#[test]
fn hooks_are_typed_and_files_resolved_next_to_the_task() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("hooks")).expect("mkdir");
    std::fs::write(dir.path().join("hooks/policy.rhai"), "true").expect("write");
    std::fs::write(dir.path().join("hooks/filter.wasm"), b"\0asm").expect("write");
    let file = task_file(
        dir.path(),
        "task_id: t\nimage: busybox\nhooks:\n\
         - {point: validate_pod, rhai: hooks/policy.rhai, config: {max_cpu: 2}}\n\
         - {point: filter_log, wasm: hooks/filter.wasm, on_error: ignore, name: redact}\n\
         - point: decide\n  script: |\n    if exit_code == 3 { \"skip\" } else { () }\n",
    );
    let t = spec::load(&file, &RenderVars::default()).expect("valid task");
    assert_eq!(t.hooks.len(), 3);
    let h = &t.hooks[0];
    assert_eq!(h.point, HookPoint::ValidatePod);
    assert_eq!(
        h.source,
        HookSource::RhaiFile(dir.path().join("hooks/policy.rhai"))
    );
    assert_eq!(h.config, serde_json::json!({"max_cpu": 2}));
    assert_eq!(h.on_error, OnError::Fail);
    assert_eq!(h.name, None);
    let h = &t.hooks[1];
    assert_eq!(h.point, HookPoint::FilterLog);
    assert_eq!(
        h.source,
        HookSource::Wasm(dir.path().join("hooks/filter.wasm"))
    );
    assert_eq!(h.on_error, OnError::Ignore);
    assert_eq!(h.name.as_deref(), Some("redact"));
    assert_eq!(h.config, serde_json::json!({}));
    let h = &t.hooks[2];
    assert_eq!(h.point, HookPoint::Decide);
    // Hook sources are not templated.
    assert!(matches!(&h.source, HookSource::RhaiInline(s) if s.contains("exit_code == 3")));
}

#[test]
fn render_variables_params_and_identity() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = task_file(
        dir.path(),
        "task_id: t\nimage: busybox\nparams: {who: file, keep: 1}\narguments: ['{{ params.who }} {{ params.keep }} {{ vars.x }} {{ run_id }} {{ try_number }}']\n",
    );
    let vars = RenderVars {
        run_id: Some("r-1".into()),
        try_number: Some(4),
        logical_date: Some(RenderVars::parse_logical_date("2021-03-04").expect("date")),
        params: vec![RenderVars::parse_pair("who=cli").expect("pair")],
        vars: vec![RenderVars::parse_pair("x=y").expect("pair")],
    };
    let t = spec::load(&file, &vars).expect("valid task");
    assert_eq!(t.pod.arguments, vec!["cli 1 y r-1 4".to_string()]);
    assert_eq!(t.identity.run_id, "r-1");
    assert_eq!(t.identity.try_number, 4);
    assert_eq!(t.identity.ds, "2021-03-04");
    assert_eq!(t.identity.ts, "2021-03-04T00:00:00+00:00");
    assert_eq!(t.params["who"], serde_json::json!("cli"));
}

#[test]
fn ignored_operator_parameters_only_warn() {
    let t = load("task_id: t\nimage: busybox\ncallbacks: [x]\nlog_formatter: f\n");
    assert_eq!(t.warnings.len(), 2);
    assert!(t.warnings[0].starts_with("callbacks: operator parameter ignored by podrun"));
}

#[test]
fn connection_parameters_resolve_relative_to_the_task() {
    let t = load("task_id: t\nimage: busybox\nconfig_file: kube/config\ncluster_context: prod\nin_cluster: false\n");
    assert!(t
        .connection
        .config_file
        .expect("config_file")
        .ends_with("kube/config"));
    assert_eq!(t.connection.cluster_context.as_deref(), Some("prod"));
    assert_eq!(t.connection.in_cluster, Some(false));
}

#[test]
fn find_pod_selector_follows_the_operator() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = task_file(
        dir.path(),
        "task_id: My_Task\nimage: busybox\nlabels: {team: data, app: x}\n",
    );
    let vars = RenderVars {
        run_id: Some("manual__2016-01-01T00:00:00+00:00".into()),
        try_number: Some(3),
        ..RenderVars::default()
    };
    let t = spec::load(&file, &vars).expect("valid task");
    assert_eq!(
        podrun::build::find_pod_selector(&t, true),
        "app=x,podrun.dev/run-id=manual__2016-01-01T0000000000-2b88d1d57,podrun.dev/task-id=My_Task,team=data,already_checked!=True,!airflow-worker"
    );
    assert!(!podrun::build::find_pod_selector(&t, false).contains("already_checked"));
}
