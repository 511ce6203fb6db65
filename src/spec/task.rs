//! The validated task: what a task file means once parsed, rendered and checked.
//!
//! Pod-shaping parameters keep the operator's names and defaults. Kubernetes fragments are
//! checked against the k8s-openapi types but kept as `serde_json::Value` so that the pod
//! carries exactly what the operator would send (see `spec::kube`).

use std::path::PathBuf;

use serde_json::{Map, Value};

use super::hooks::HookDecl;
use super::lifecycle::Lifecycle;
use super::vars::RunIdentity;

/// A loaded, rendered and validated task file. Only this reaches `build`.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Task {
    /// The task file this came from.
    pub file: PathBuf,
    /// The task's id (`task_id:`); names the pod when no name is given.
    pub task_id: String,
    /// Run id, try number and logical date of this run.
    pub identity: RunIdentity,
    /// `params:` merged with `--param` overrides (as seen by templates).
    pub params: Map<String, Value>,
    /// Everything that shapes the pod.
    pub pod: PodParams,
    /// Lifecycle parameters for the runner.
    pub lifecycle: Lifecycle,
    /// How to reach the cluster (`in_cluster`, `cluster_context`, `config_file`).
    pub connection: Connection,
    /// `do_xcom_push`: add the XCom sidecar and read `/airflow/xcom/return.json`.
    pub do_xcom_push: bool,
    /// `execution_timeout` (seconds): the whole run's time limit, enforced by the runner.
    pub execution_timeout: Option<std::time::Duration>,
    /// `hooks:` declarations, in file order (not templated).
    pub hooks: Vec<HookDecl>,
    /// Non-fatal notes for the user (ignored operator parameters, dropped template keys).
    pub warnings: Vec<String>,
}

/// Operator parameters that shape the pod, with the operator's `__init__` normalisation
/// applied (`cmds or []`, dict `env_vars` to a list, `configmaps` appended to `env_from`,
/// comma-separated `image_pull_secrets` split, ...).
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct PodParams {
    /// `name` after the operator's `_set_name` (validated as an Airflow key of at most 220
    /// characters, lowercased, runs outside `[a-z0-9-]` replaced by `-`).
    pub name: Option<String>,
    /// `random_name_suffix` (default true): append `-` and 8 random `[a-z0-9]`.
    pub random_name_suffix: bool,
    /// `namespace`.
    pub namespace: Option<String>,
    /// `image`.
    pub image: Option<String>,
    /// `cmds` → base container `command`.
    pub cmds: Vec<String>,
    /// `arguments` → base container `args`.
    pub arguments: Vec<String>,
    /// `ports` (ContainerPort objects).
    pub ports: Vec<Value>,
    /// `volume_mounts` (VolumeMount objects).
    pub volume_mounts: Vec<Value>,
    /// `volumes` (Volume objects).
    pub volumes: Vec<Value>,
    /// `env_vars` as a list of EnvVar objects, followed by `pod_runtime_info_envs`.
    pub env: Vec<Value>,
    /// `env_from` (EnvFromSource objects) followed by one `configMapRef` per `configmaps` entry.
    pub env_from: Vec<Value>,
    /// `secrets`, applied in order after the merge.
    pub secrets: Vec<SecretDecl>,
    /// `labels` (user labels: not made label-safe, as in the operator; validated).
    pub labels: Map<String, Value>,
    /// `annotations`.
    pub annotations: Map<String, Value>,
    /// `container_resources` (ResourceRequirements), kept exactly as given.
    pub container_resources: Option<Value>,
    /// `affinity`; `{}` when not given, as in the operator.
    pub affinity: Value,
    /// `node_selector`.
    pub node_selector: Map<String, Value>,
    /// `tolerations`.
    pub tolerations: Vec<Value>,
    /// `image_pull_policy`.
    pub image_pull_policy: Option<String>,
    /// `image_pull_secrets` as LocalObjectReference objects.
    pub image_pull_secrets: Vec<Value>,
    /// `service_account_name`.
    pub service_account_name: Option<String>,
    /// `automount_service_account_token`.
    pub automount_service_account_token: Option<bool>,
    /// `hostnetwork` (default `false`, `None` only when written as `null`).
    pub hostnetwork: Option<bool>,
    /// `host_aliases`.
    pub host_aliases: Option<Vec<Value>>,
    /// `security_context` (PodSecurityContext); `{}` when not given.
    pub security_context: Value,
    /// `container_security_context` (SecurityContext).
    pub container_security_context: Option<Value>,
    /// `dnspolicy`.
    pub dnspolicy: Option<String>,
    /// `dns_config` (PodDNSConfig).
    pub dns_config: Option<Value>,
    /// `hostname`.
    pub hostname: Option<String>,
    /// `subdomain`.
    pub subdomain: Option<String>,
    /// `schedulername`.
    pub schedulername: Option<String>,
    /// `priority_class_name`.
    pub priority_class_name: Option<String>,
    /// `init_containers` (Container objects).
    pub init_containers: Vec<Value>,
    /// `termination_message_policy` (default `File`).
    pub termination_message_policy: Option<String>,
    /// `active_deadline_seconds`.
    pub active_deadline_seconds: Option<i64>,
    /// `termination_grace_period` → `terminationGracePeriodSeconds`; also the grace period
    /// when the runner deletes a pod on interrupt.
    pub termination_grace_period: Option<i64>,
    /// `full_pod_spec` (a Pod), as given.
    pub full_pod_spec: Option<Value>,
    /// The pod template (`pod_template_file`, else `pod_template_dict`), as the operator's
    /// deserialiser reads it.
    pub pod_template: Option<Value>,
    /// `base_container_name` (default `base`).
    pub base_container_name: String,
    /// `xcom_sidecar_container_image` (the operator's connection extra); default `alpine`.
    pub xcom_sidecar_image: Option<String>,
    /// `xcom_sidecar_container_resources` (connection extra): replaces the sidecar's
    /// whole `resources` object.
    pub xcom_sidecar_resources: Option<Value>,
    /// `xcom_sidecar_container_security_context` (newer operators: parameter or connection
    /// extra): the sidecar's `securityContext`, set whenever given (even `{}`).
    pub xcom_sidecar_security_context: Option<Value>,
    /// `runtime_class_name` (newer operators) → `spec.runtimeClassName`.
    pub runtime_class_name: Option<String>,
}

/// Where a secret goes: environment or a volume.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeployType {
    /// As an env var (with `key`) or all keys through `envFrom` (without).
    Env,
    /// As a read-only volume mounted at `deploy_target`.
    Volume,
}

/// One `secrets:` entry, the operator's `Secret(deploy_type, deploy_target, secret, key, items)`.
#[derive(Clone, Debug, PartialEq)]
pub struct SecretDecl {
    /// `env` or `volume`.
    pub deploy_type: DeployType,
    /// Env var name (uppercased, as the operator does) or mount path.
    pub deploy_target: Option<String>,
    /// Name of the Kubernetes Secret.
    pub secret: String,
    /// Key within the Secret.
    pub key: Option<String>,
    /// KeyToPath items for a volume secret.
    pub items: Vec<Value>,
}

/// Cluster connection parameters from the task file. The command line's `--kubeconfig`,
/// `--context` and `--in-cluster` take precedence.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Connection {
    /// `in_cluster`.
    pub in_cluster: Option<bool>,
    /// `cluster_context`: the kubeconfig context to use.
    pub cluster_context: Option<String>,
    /// `config_file`: kubeconfig path, resolved relative to the task file.
    pub config_file: Option<PathBuf>,
}
