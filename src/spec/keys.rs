//! The top-level keys a task file may use: the operator's constructor parameters, the
//! ones podrun accepts but ignores, and podrun's own.

/// Operator parameters that shape the pod.
pub const POD_KEYS: &[&str] = &[
    "image",
    "name",
    "random_name_suffix",
    "namespace",
    "cmds",
    "arguments",
    "ports",
    "volume_mounts",
    "volumes",
    "env_vars",
    "env_from",
    "secrets",
    "configmaps",
    "pod_runtime_info_envs",
    "labels",
    "annotations",
    "container_resources",
    "affinity",
    "node_selector",
    "tolerations",
    "image_pull_policy",
    "image_pull_secrets",
    "service_account_name",
    "automount_service_account_token",
    "hostnetwork",
    "host_aliases",
    "security_context",
    "container_security_context",
    "dnspolicy",
    "dns_config",
    "hostname",
    "subdomain",
    "schedulername",
    "priority_class_name",
    "init_containers",
    "termination_message_policy",
    "active_deadline_seconds",
    "termination_grace_period",
    "full_pod_spec",
    "pod_template_file",
    "pod_template_dict",
    "do_xcom_push",
    "base_container_name",
    "runtime_class_name",
    "xcom_sidecar_container_security_context",
];

/// Operator lifecycle and connection parameters (used by the runner).
pub const LIFECYCLE_KEYS: &[&str] = &[
    "startup_timeout_seconds",
    "schedule_timeout_seconds",
    "startup_check_interval_seconds",
    "get_logs",
    "container_logs",
    "init_container_logs",
    "log_events_on_failure",
    "log_pod_spec_on_failure",
    "reattach_on_restart",
    "on_finish_action",
    "skip_on_exit_code",
    "in_cluster",
    "cluster_context",
    "config_file",
    "deferrable",
    "poll_interval",
    "logging_interval",
    "container_name_log_prefix_enabled",
    "durable",
    "log_events_on_startup",
    "on_kill_action",
];

/// Operator parameters that mean nothing for a standalone runner: accepted with a warning.
pub const IGNORED_KEYS: &[(&str, &str)] = &[
    ("kubernetes_conn_id", "podrun reads no Airflow connections; use --kubeconfig/--context or config_file/cluster_context"),
    ("callbacks", "Python callback classes cannot run in podrun; use hooks"),
    ("progress_callback", "Python callables cannot run in podrun; use a filter_log hook"),
    ("log_formatter", "Python callables cannot run in podrun; use a filter_log hook"),
    ("trigger_kwargs", "podrun has no triggerer"),
    ("is_delete_operator_pod", "the operator ignores it too; use on_finish_action"),
    ("base_container_status_polling_interval", "podrun watches the pod instead of polling"),
];

/// podrun's own keys.
pub const PODRUN_KEYS: &[&str] = &[
    "task_id",
    "params",
    "hooks",
    "execution_timeout",
    "xcom_sidecar_container_image",
    "xcom_sidecar_container_resources",
];

/// Every key a task file may contain.
pub fn all() -> impl Iterator<Item = &'static str> {
    POD_KEYS
        .iter()
        .chain(LIFECYCLE_KEYS)
        .chain(PODRUN_KEYS)
        .copied()
        .chain(IGNORED_KEYS.iter().map(|(k, _)| *k))
}

/// The known key closest to `unknown` (Jaro-Winkler similarity), for "did you mean".
pub fn closest<'a>(unknown: &str, known: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    known
        .map(|k| (strsim::jaro_winkler(unknown, k), k))
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}

/// The message for an unknown key.
pub fn unknown_message<'a>(unknown: &str, known: impl Iterator<Item = &'a str>) -> String {
    match closest(unknown, known) {
        Some(k) => format!("unknown key `{unknown}`; did you mean `{k}`?"),
        None => format!("unknown key `{unknown}`"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_the_closest_key() {
        assert_eq!(closest("imgae", all()), Some("image"));
        assert_eq!(closest("env_var", all()), Some("env_vars"));
        assert_eq!(
            closest("startup_timeout", all()),
            Some("startup_timeout_seconds")
        );
    }
}
