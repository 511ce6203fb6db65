//! Lifecycle and connection parameters, with the operator's defaults and normalisation
//! (`schedule_timeout_seconds or startup_timeout_seconds`, `skip_on_exit_code` to a list,
//! `container_logs or base_container_name`, `durable` over `reattach_on_restart`).

use serde_json::Value;

use super::{found, Ctx};
use crate::spec::keys;
use crate::spec::lifecycle::{ContainerLogs, Lifecycle, OnFinishAction, OnKillAction};
use crate::spec::path::KeyPath;
use crate::spec::task::Connection;

/// `True`, a name, or a list of names; `falsy` (false, null, "", []) gives `None`.
fn container_logs(cx: &mut Ctx, key: &str) -> Option<ContainerLogs> {
    match cx.get(key)? {
        Value::Bool(true) => Some(ContainerLogs::All),
        Value::Bool(false) => None,
        Value::String(s) if s.is_empty() => None,
        Value::String(s) => Some(ContainerLogs::Names(vec![s])),
        Value::Array(items) if items.is_empty() => None,
        Value::Array(_) => Some(ContainerLogs::Names(cx.string_list(key))),
        other => {
            cx.wrong(
                key,
                "true, a container name or a list of container names",
                &other,
            );
            None
        }
    }
}

pub(super) fn lifecycle(cx: &mut Ctx, base: &str) -> Lifecycle {
    let mut l = Lifecycle::defaults(base);
    if let Some(d) = cx.seconds("startup_timeout_seconds") {
        l.startup_timeout = d;
    }
    // `schedule_timeout_seconds or startup_timeout_seconds`: 0 also falls back.
    l.schedule_timeout = cx
        .seconds("schedule_timeout_seconds")
        .filter(|d| !d.is_zero())
        .unwrap_or(l.startup_timeout);
    if let Some(d) = cx.seconds("startup_check_interval_seconds") {
        l.startup_check_interval = d;
    }
    l.get_logs = cx.boolean("get_logs", true);
    if let Some(c) = container_logs(cx, "container_logs") {
        l.container_logs = c;
    }
    l.init_container_logs = container_logs(cx, "init_container_logs");
    l.log_events_on_failure = cx.boolean("log_events_on_failure", false);
    l.log_pod_spec_on_failure = cx.boolean("log_pod_spec_on_failure", true);
    l.reattach_on_restart = cx.boolean("reattach_on_restart", true);
    // Newer operators: `durable` takes precedence over `reattach_on_restart`.
    if cx.doc.contains_key("durable") {
        l.reattach_on_restart = cx.boolean("durable", true);
    }
    l.log_events_on_startup = cx.boolean("log_events_on_startup", true);
    if let Some(s) = cx.string("on_kill_action") {
        match OnKillAction::parse(&s) {
            Some(a) => l.on_kill_action = a,
            None => cx.problem(
                KeyPath::root().key("on_kill_action"),
                format!(
                    "expected one of {}, found {s:?}",
                    OnKillAction::NAMES.join(", ")
                ),
            ),
        }
    }
    if let Some(s) = cx.string("on_finish_action") {
        match OnFinishAction::parse(&s) {
            Some(a) => l.on_finish_action = a,
            None => {
                let msg = format!(
                    "expected one of {}, found {s:?}{}",
                    OnFinishAction::NAMES.join(", "),
                    keys::closest(&s, OnFinishAction::NAMES.iter().copied())
                        .map(|k| format!("; did you mean `{k}`?"))
                        .unwrap_or_default()
                );
                cx.problem(KeyPath::root().key("on_finish_action"), msg);
            }
        }
    }
    l.skip_on_exit_code = match cx.get("skip_on_exit_code") {
        None => Vec::new(),
        Some(v) if v.is_i64() => exit_code(cx, &v, KeyPath::root().key("skip_on_exit_code"))
            .into_iter()
            .collect(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .filter_map(|(i, v)| {
                exit_code(cx, v, KeyPath::root().key("skip_on_exit_code").index(i))
            })
            .collect(),
        Some(other) => {
            cx.wrong(
                "skip_on_exit_code",
                "an exit code or a list of exit codes",
                &other,
            );
            Vec::new()
        }
    };
    l.deferrable = cx.boolean("deferrable", false);
    if let Some(d) = cx.seconds("poll_interval") {
        l.poll_interval = d;
    }
    l.logging_interval = cx.seconds("logging_interval");
    l.container_name_log_prefix_enabled = cx.boolean("container_name_log_prefix_enabled", true);
    l
}

fn exit_code(cx: &mut Ctx, v: &Value, path: KeyPath) -> Option<i32> {
    match v.as_i64().and_then(|n| i32::try_from(n).ok()) {
        Some(n) if (0..=255).contains(&n) => Some(n),
        _ => {
            cx.problem(
                path,
                format!("expected an exit code (0-255), found {}", found(v)),
            );
            None
        }
    }
}

pub(super) fn connection(cx: &mut Ctx) -> Connection {
    let in_cluster = cx.opt_bool("in_cluster");
    let cluster_context = cx.string("cluster_context").filter(|s| !s.is_empty());
    let config_file = cx
        .string("config_file")
        .filter(|s| !s.is_empty())
        .map(|s| cx.dir.join(s));
    if in_cluster == Some(true) && config_file.is_some() {
        cx.problem(
            KeyPath::root().key("config_file"),
            "conflicts with `in_cluster: true` (in-cluster configuration reads no kubeconfig)",
        );
    }
    if in_cluster == Some(true) && cluster_context.is_some() {
        cx.warnings.push(
            "cluster_context: ignored because in_cluster is true (as the operator does)"
                .to_string(),
        );
    }
    Connection {
        in_cluster,
        cluster_context,
        config_file,
    }
}
