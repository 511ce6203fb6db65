//! Pod construction from a validated [`Task`], with the operator's exact semantics
//! (`KubernetesPodOperator.build_pod_request_obj`). Pure: it never connects to a cluster;
//! it reads only the kubeconfig and the in-cluster namespace file, for the namespace.
//!
//! Steps, in the operator's order:
//! 1. the operator's own pod from the parameters (base container `base` unless renamed,
//!    `restartPolicy: Never`);
//! 2. the base: the pod template (file, else dict) reconciled with `full_pod_spec`, or
//!    `full_pod_spec` alone, or an empty pod; then the operator pod reconciled on top
//!    (`merge`);
//! 3. the name (task id when none; the random suffix) and the namespace (`namespace`);
//! 4. secrets, then the XCom sidecar ([`attach`]);
//! 5. podrun's task-identity labels `podrun.dev/task-id`, `podrun.dev/run-id`,
//!    `podrun.dev/try-number` (label-safe values) over user and template labels.
//!
//! The result is the pod manifest as the operator's client would serialise it:
//! `null` fields dropped, explicitly set empty lists and maps kept, resource quantities
//! exactly as given. It is a `serde_json::Value` rather than a `k8s_openapi` `Pod` because
//! a typed `Pod` cannot hold `cpu: 0.25` as a number or a `null` quantity; [`typed`] gives
//! the typed view (quantities as strings, which the API server reads the same way).
//!
//! For the runner: [`find_pod_selector`] is the operator's reattach selector, and
//! [`labels::ALREADY_CHECKED`] the label it patches on a handled pod.

pub mod attach;
mod merge;
pub mod name;
mod namespace;

use std::path::PathBuf;

use k8s_openapi::api::core::v1::Pod;
use serde_json::{json, Map, Value};

use crate::spec::{names, Task};

/// Label keys podrun puts on every pod it builds.
pub mod labels {
    /// The task id (label-safe).
    pub const TASK_ID: &str = "podrun.dev/task-id";
    /// The run id (label-safe).
    pub const RUN_ID: &str = "podrun.dev/run-id";
    /// The try number.
    pub const TRY_NUMBER: &str = "podrun.dev/try-number";
    /// Set to `"True"` by the runner once it has handled a pod (the operator's key).
    pub const ALREADY_CHECKED: &str = "already_checked";
}

/// Where the in-cluster service account's namespace is read from.
pub const INCLUSTER_NAMESPACE_FILE: &str =
    "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

/// Inputs to the build that do not come from the task file.
#[derive(Clone, Debug)]
pub struct Options {
    /// `--kubeconfig`: must exist. Takes precedence over the task's `config_file`.
    pub kubeconfig: Option<PathBuf>,
    /// Fallback kubeconfigs (`$KUBECONFIG` entries, else `~/.kube/config`); missing files
    /// are skipped. See [`Options::from_env`].
    pub default_kubeconfigs: Vec<PathBuf>,
    /// `--context`: takes precedence over the task's `cluster_context`.
    pub context: Option<String>,
    /// `--in-cluster`: takes precedence over the task's `in_cluster`; in-cluster
    /// configuration reads no kubeconfig.
    pub in_cluster: Option<bool>,
    /// The in-cluster namespace file ([`INCLUSTER_NAMESPACE_FILE`] by default; `None`
    /// skips that step).
    pub incluster_namespace_file: Option<PathBuf>,
    /// Overrides the XCom sidecar image (else the task's `xcom_sidecar_container_image`,
    /// else `alpine`).
    pub xcom_sidecar_image: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            kubeconfig: None,
            default_kubeconfigs: Vec::new(),
            context: None,
            in_cluster: None,
            incluster_namespace_file: Some(PathBuf::from(INCLUSTER_NAMESPACE_FILE)),
            xcom_sidecar_image: None,
        }
    }
}

impl Options {
    /// Defaults plus the kubeconfig fallbacks from the environment: the entries of
    /// `$KUBECONFIG`, else `$HOME/.kube/config`.
    pub fn from_env() -> Self {
        let default_kubeconfigs = match std::env::var_os("KUBECONFIG") {
            Some(v) if !v.is_empty() => std::env::split_paths(&v).collect(),
            _ => std::env::var_os("HOME")
                .map(|h| vec![PathBuf::from(h).join(".kube").join("config")])
                .unwrap_or_default(),
        };
        Options {
            default_kubeconfigs,
            ..Options::default()
        }
    }
}

/// Building the pod failed. All variants are bad input (exit code 2): nothing was sent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A kubeconfig named explicitly could not be read.
    #[error("cannot read kubeconfig {}", path.display())]
    ReadKubeconfig {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A kubeconfig is not valid YAML.
    #[error("kubeconfig {} is not valid YAML: {message}", path.display())]
    ParseKubeconfig {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// The requested context is in none of the kubeconfigs.
    #[error("kubeconfig context `{context}` not found in {}", files_list(files))]
    ContextNotFound {
        /// The context asked for.
        context: String,
        /// The files searched.
        files: Vec<PathBuf>,
    },
    /// The merged pod has no containers, or its base container has no image.
    #[error("{}: {message}", file.display())]
    Incomplete {
        /// The task file.
        file: PathBuf,
        /// What is missing.
        message: String,
    },
    /// The final pod name is not a valid Kubernetes name.
    #[error("{}: pod name {name:?} is not a valid Kubernetes name (lowercase letters, digits, `-` and `.`, at most 253 characters, starting and ending with a letter or digit){hint}", file.display())]
    InvalidName {
        /// The task file.
        file: PathBuf,
        /// The name.
        name: String,
        /// Where it came from.
        hint: String,
    },
    /// The built pod does not fit the typed `Pod` (see [`typed`]).
    #[error("the built pod is not a valid Pod: {0}")]
    Typed(#[source] serde_json::Error),
}

fn files_list(files: &[PathBuf]) -> String {
    if files.is_empty() {
        return "any kubeconfig (none found)".to_string();
    }
    files
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

fn opt<T: serde::Serialize>(v: &Option<T>) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// The pod the operator builds from its own parameters, before any template.
fn operator_pod(task: &Task) -> Map<String, Value> {
    let p = &task.pod;
    let container = json!({
        "image": p.image,
        "name": p.base_container_name,
        "command": p.cmds,
        "ports": p.ports,
        "imagePullPolicy": p.image_pull_policy,
        "resources": opt(&p.container_resources),
        "volumeMounts": p.volume_mounts,
        "args": p.arguments,
        "env": p.env,
        "envFrom": p.env_from,
        "securityContext": opt(&p.container_security_context),
        "terminationMessagePolicy": p.termination_message_policy,
    });
    let pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "namespace": p.namespace,
            "labels": p.labels,
            "name": p.name,
            "annotations": p.annotations,
        },
        "spec": {
            "runtimeClassName": p.runtime_class_name,
            "nodeSelector": p.node_selector,
            "affinity": p.affinity,
            "tolerations": p.tolerations,
            "initContainers": p.init_containers,
            "hostAliases": opt(&p.host_aliases),
            "containers": [container],
            "imagePullSecrets": p.image_pull_secrets,
            "serviceAccountName": p.service_account_name,
            "automountServiceAccountToken": p.automount_service_account_token,
            "hostNetwork": p.hostnetwork,
            "hostname": p.hostname,
            "subdomain": p.subdomain,
            "securityContext": p.security_context,
            "dnsPolicy": p.dnspolicy,
            "dnsConfig": opt(&p.dns_config),
            "schedulerName": p.schedulername,
            "restartPolicy": "Never",
            "priorityClassName": p.priority_class_name,
            "volumes": p.volumes,
            "activeDeadlineSeconds": p.active_deadline_seconds,
            "terminationGracePeriodSeconds": p.termination_grace_period,
        },
    });
    match pod {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// Drops `null` fields the way the Python client's `sanitize_for_serialization` drops
/// `None` attributes; `null` values inside resource maps are dict values and are kept.
fn prune_nulls(v: Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(_, x)| !x.is_null())
                .map(|(k, x)| {
                    if (k == "limits" || k == "requests") && x.is_object() {
                        (k, x)
                    } else {
                        (k, prune_nulls(x))
                    }
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(prune_nulls).collect()),
        other => other,
    }
}

/// Builds the pod for `task`: the manifest `podrun run` creates and `podrun render` prints.
pub fn build_pod(task: &Task, opts: &Options) -> Result<Value> {
    let p = &task.pod;
    let empty = Map::new();
    // Base selection: template (file wins over dict) reconciled with full_pod_spec, or
    // full_pod_spec alone, or an empty pod.
    let template = p.pod_template.as_ref().and_then(Value::as_object);
    let full = p.full_pod_spec.as_ref().and_then(Value::as_object);
    let base = match (template, full) {
        (Some(t), Some(f)) => merge::reconcile_pods(t, f, merge::Client::Models),
        (Some(t), None) => t.clone(),
        (None, Some(f)) => f.clone(),
        (None, None) => {
            let mut m = Map::new();
            m.insert("metadata".into(), Value::Object(empty.clone()));
            m
        }
    };
    let mut pod = merge::reconcile_pods(&base, &operator_pod(task), merge::Client::Operator);

    check_base_container(task, &pod)?;

    // Name.
    let meta = pod
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    let current = meta
        .get("name")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let (final_name, hint) = match current {
        None => (
            name::create_unique_id(&task.task_id, p.random_name_suffix),
            " (made from task_id)",
        ),
        Some(n) if p.random_name_suffix => (name::add_unique_suffix(&n), ""),
        Some(n) => (n, ""),
    };
    if !names::is_dns1123_subdomain(&final_name) {
        let from_template = p.name.is_none() && hint.is_empty();
        return Err(Error::InvalidName {
            file: task.file.clone(),
            name: final_name,
            hint: if from_template {
                " (from the pod template; the operator does not sanitise template names)".into()
            } else {
                hint.into()
            },
        });
    }
    meta["name"] = Value::String(final_name);

    // Namespace.
    let has_ns = meta
        .get("namespace")
        .and_then(Value::as_str)
        .is_some_and(|s| !s.is_empty());
    if !has_ns {
        meta["namespace"] = Value::String(namespace::resolve(task, opts)?);
    }

    attach::attach_secrets(&mut pod, &p.secrets);
    if task.do_xcom_push {
        let image = opts
            .xcom_sidecar_image
            .as_deref()
            .or(p.xcom_sidecar_image.as_deref())
            .unwrap_or(attach::SIDECAR_DEFAULT_IMAGE);
        attach::add_xcom_sidecar(
            &mut pod,
            image,
            p.xcom_sidecar_resources.as_ref(),
            p.xcom_sidecar_security_context.as_ref(),
        );
    }

    // Task-identity labels over user and template labels.
    let meta = pod
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !meta.get("labels").is_some_and(Value::is_object) {
        meta["labels"] = Value::Object(Map::new());
    }
    let id = &task.identity;
    for (k, v) in [
        (labels::TASK_ID, id.task_id.clone()),
        (labels::RUN_ID, id.run_id.clone()),
        (labels::TRY_NUMBER, id.try_number.to_string()),
    ] {
        meta["labels"][k] = Value::String(name::make_safe_label_value(&v));
    }

    Ok(prune_nulls(Value::Object(pod)))
}

/// The label selector that finds this task's pod from an earlier attempt (the operator's
/// `_build_find_pod_label_selector`, with podrun's identity labels in place of Airflow's):
/// the task file's `labels` plus `podrun.dev/task-id` and `podrun.dev/run-id` (not the try
/// number), sorted by key as `k=v` joined by `,`; then `,already_checked!=True` when
/// `exclude_checked`; then `,!airflow-worker`, which keeps executor worker pods out.
pub fn find_pod_selector(task: &Task, exclude_checked: bool) -> String {
    let mut labels: std::collections::BTreeMap<String, String> = task
        .pod
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect();
    labels.insert(
        labels::TASK_ID.to_string(),
        name::make_safe_label_value(&task.identity.task_id),
    );
    labels.insert(
        labels::RUN_ID.to_string(),
        name::make_safe_label_value(&task.identity.run_id),
    );
    let mut selector = labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    if exclude_checked {
        selector.push_str(&format!(",{}!=True", labels::ALREADY_CHECKED));
    }
    selector.push_str(",!airflow-worker");
    selector
}

/// The merged pod must have a base container with an image, or the API server rejects it.
fn check_base_container(task: &Task, pod: &Map<String, Value>) -> Result<()> {
    let c0 = pod
        .get("spec")
        .and_then(|s| s.get("containers"))
        .and_then(Value::as_array)
        .and_then(|l| l.first());
    let Some(c0) = c0 else {
        return Err(Error::Incomplete {
            file: task.file.clone(),
            message: "the pod has no containers".into(),
        });
    };
    let has_image = c0
        .get("image")
        .and_then(Value::as_str)
        .is_some_and(|s| !s.is_empty());
    if !has_image {
        return Err(Error::Incomplete {
            file: task.file.clone(),
            message: "image: required (set `image`, or give the first container of the pod template an image)".into(),
        });
    }
    Ok(())
}

/// The built manifest as a typed `Pod` (quantities become strings; `null` quantities are
/// dropped), for callers that need k8s-openapi types.
pub fn typed(manifest: &Value) -> Result<Pod> {
    let mut v = manifest.clone();
    strip_null_quantities(&mut v);
    serde_json::from_value(v).map_err(Error::Typed)
}

fn strip_null_quantities(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                match child {
                    Value::Object(q) if k == "limits" || k == "requests" => {
                        q.retain(|_, x| !x.is_null())
                    }
                    _ => strip_null_quantities(child),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(strip_null_quantities),
        _ => {}
    }
}
