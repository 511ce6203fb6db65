//! The pod-shaping parameters: each checked and normalised as the operator's `__init__`
//! does (dict `env_vars` to a list, `configmaps` into `env_from`, comma-separated
//! `image_pull_secrets`, `_set_name`), plus the pod template and `secrets`.

use k8s_openapi::api::core::v1 as k8s;
use serde_json::{Map, Value};

use super::{check_pod, found, read_yaml, Ctx};
use crate::spec::kube::Mode;
use crate::spec::names;
use crate::spec::path::KeyPath;
use crate::spec::task::{DeployType, PodParams, SecretDecl};

pub(super) fn pod_params(cx: &mut Ctx) -> PodParams {
    let as_given = Mode::AsGiven;
    let converted = Mode::Deserialized {
        unknown_is_error: true,
    };

    let name = cx
        .string("name")
        .and_then(|n| match names::validate_airflow_key(&n, 220) {
            Ok(()) => Some(names::set_name(&n)),
            Err(why) => {
                cx.problem(
                    KeyPath::root().key("name"),
                    format!("invalid pod name {n:?}: {why}"),
                );
                None
            }
        });
    let namespace = cx.string("namespace").filter(|s| !s.is_empty());
    if let Some(ns) = &namespace {
        if !names::is_dns1123_label(ns) {
            cx.problem(
                KeyPath::root().key("namespace"),
                format!("invalid namespace {ns:?}: expected at most 63 lowercase letters, digits and `-`, starting and ending with a letter or digit"),
            );
        }
    }

    // env_vars: a dict becomes name/value pairs in insertion order; a list holds EnvVar
    // objects (each needs `value` or `valueFrom`).
    let mut env = Vec::new();
    match cx.get("env_vars") {
        None => {}
        Some(Value::Object(map)) => {
            for (k, v) in map {
                match v {
                    Value::String(_) => env.push(serde_json::json!({"name": k, "value": v})),
                    Value::Null => env.push(serde_json::json!({ "name": k })),
                    other => cx.problem(
                        KeyPath::root().key("env_vars").key(&k),
                        format!(
                            "expected a string (quote numbers and booleans), found {}",
                            found(&other)
                        ),
                    ),
                }
            }
        }
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let path = KeyPath::root().key("env_vars").index(i);
                if !item.is_object() {
                    cx.problem(
                        path,
                        format!(
                            "expected an EnvVar map (name, value or valueFrom), found {}",
                            found(item)
                        ),
                    );
                    continue;
                }
                if item.get("value").is_none() && item.get("valueFrom").is_none() {
                    cx.problem(path, "expected `value` or `valueFrom`");
                    continue;
                }
                if let Some(v) = cx.fragment::<k8s::EnvVar>(item, path, as_given) {
                    env.push(v);
                }
            }
        }
        Some(other) => cx.wrong(
            "env_vars",
            "a map of names to values, or a list of EnvVar objects",
            &other,
        ),
    }
    env.extend(cx.objects::<k8s::EnvVar>("pod_runtime_info_envs", as_given));

    let mut env_from = cx.objects::<k8s::EnvFromSource>("env_from", as_given);
    for name in cx.string_list("configmaps") {
        env_from.push(serde_json::json!({"configMapRef": {"name": name}}));
    }

    let secrets = secrets(cx);

    let labels = cx.string_map("labels", true);
    for (k, v) in &labels {
        let path = KeyPath::root().key("labels").key(k);
        if let Err(why) = names::validate_label_key(k) {
            cx.problem(path.clone(), format!("invalid label key: {why}"));
        }
        if let Err(why) = names::validate_label_value(v.as_str().unwrap_or_default()) {
            cx.problem(path, format!("invalid label value {v}: {why}"));
        }
    }
    let annotations = cx.string_map("annotations", false);
    for k in annotations.keys() {
        if let Err(why) = names::validate_label_key(k) {
            cx.problem(
                KeyPath::root().key("annotations").key(k),
                format!("invalid annotation key: {why}"),
            );
        }
    }

    let image_pull_secrets = match cx.get("image_pull_secrets") {
        None => Vec::new(),
        // Split on "," with no trimming, exactly as the operator does.
        Some(Value::String(s)) if s.is_empty() => Vec::new(),
        Some(Value::String(s)) => s
            .split(',')
            .map(|n| serde_json::json!({ "name": n }))
            .collect(),
        Some(Value::Array(items)) => {
            let mut out = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let path = KeyPath::root().key("image_pull_secrets").index(i);
                match item {
                    Value::String(n) => out.push(serde_json::json!({ "name": n })),
                    Value::Object(_) => {
                        if let Some(v) =
                            cx.fragment::<k8s::LocalObjectReference>(item, path, as_given)
                        {
                            out.push(v);
                        }
                    }
                    other => cx.problem(
                        path,
                        format!(
                            "expected a secret name or {{name: ...}}, found {}",
                            found(other)
                        ),
                    ),
                }
            }
            out
        }
        Some(other) => {
            cx.wrong(
                "image_pull_secrets",
                "a list or a comma-separated string of secret names",
                &other,
            );
            Vec::new()
        }
    };

    let affinity = match cx.get("affinity") {
        Some(Value::Object(m)) if m.is_empty() => Value::Object(Map::new()),
        Some(_) => cx
            .object::<k8s::Affinity>("affinity", converted)
            .unwrap_or_default(),
        None => Value::Object(Map::new()),
    };
    let security_context = cx
        .object::<k8s::PodSecurityContext>("security_context", as_given)
        .unwrap_or_else(|| Value::Object(Map::new()));

    let hostnetwork = match cx.doc.get("hostnetwork") {
        None => Some(false),
        Some(_) => cx.opt_bool("hostnetwork"),
    };
    let termination_message_policy = match cx.doc.get("termination_message_policy") {
        None => Some("File".to_string()),
        Some(_) => cx.one_of(
            "termination_message_policy",
            &["File", "FallbackToLogsOnError"],
        ),
    };
    let host_aliases = if cx.get("host_aliases").is_some() {
        Some(cx.objects::<k8s::HostAlias>("host_aliases", as_given))
    } else {
        None
    };

    let base_container_name = cx
        .string("base_container_name")
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "base".to_string());
    if !names::is_dns1123_label(&base_container_name) {
        cx.problem(
            KeyPath::root().key("base_container_name"),
            format!("invalid container name {base_container_name:?}: expected at most 63 lowercase letters, digits and `-`, starting and ending with a letter or digit"),
        );
    }

    let full_pod_spec = cx.get("full_pod_spec").and_then(|v| {
        // The operator needs a V1Pod here; built from data it goes through the client's
        // deserialiser, like a template (scalars coerced), but unknown keys are errors.
        match check_pod(&v, KeyPath::root().key("full_pod_spec"), converted) {
            Ok(c) => Some(c.value),
            Err(p) => {
                cx.problems.push(p);
                None
            }
        }
    });
    let pod_template = pod_template(cx);

    let xcom_sidecar_resources = match cx.get("xcom_sidecar_container_resources") {
        // The operator reads this connection extra as a JSON string.
        Some(Value::String(s)) => match serde_json::from_str::<Value>(&s) {
            Ok(v) if v.is_object() => cx.fragment::<k8s::ResourceRequirements>(
                &v,
                KeyPath::root().key("xcom_sidecar_container_resources"),
                as_given,
            ),
            _ => {
                cx.problem(
                    KeyPath::root().key("xcom_sidecar_container_resources"),
                    "expected a ResourceRequirements map, or a JSON string holding one",
                );
                None
            }
        },
        Some(_) => {
            cx.object::<k8s::ResourceRequirements>("xcom_sidecar_container_resources", as_given)
        }
        None => None,
    };

    let xcom_sidecar_security_context = match cx.get("xcom_sidecar_container_security_context") {
        // A connection extra is a JSON string; the operator parameter is an object.
        Some(Value::String(s)) => match serde_json::from_str::<Value>(&s) {
            Ok(v) if v.is_object() => cx.fragment::<k8s::SecurityContext>(
                &v,
                KeyPath::root().key("xcom_sidecar_container_security_context"),
                as_given,
            ),
            _ => {
                cx.problem(
                    KeyPath::root().key("xcom_sidecar_container_security_context"),
                    "expected a SecurityContext map, or a JSON string holding one",
                );
                None
            }
        },
        Some(_) => {
            cx.object::<k8s::SecurityContext>("xcom_sidecar_container_security_context", as_given)
        }
        None => None,
    };

    PodParams {
        name,
        random_name_suffix: cx.boolean("random_name_suffix", true),
        namespace,
        image: cx.string("image"),
        cmds: cx.string_list("cmds"),
        arguments: cx.string_list("arguments"),
        ports: cx.objects::<k8s::ContainerPort>("ports", as_given),
        volume_mounts: cx.objects::<k8s::VolumeMount>("volume_mounts", as_given),
        volumes: cx.objects::<k8s::Volume>("volumes", as_given),
        env,
        env_from,
        secrets,
        labels,
        annotations,
        container_resources: cx
            .object::<k8s::ResourceRequirements>("container_resources", as_given),
        affinity,
        node_selector: cx.string_map("node_selector", false),
        tolerations: cx.objects::<k8s::Toleration>("tolerations", converted),
        image_pull_policy: cx.one_of("image_pull_policy", &["Always", "IfNotPresent", "Never"]),
        image_pull_secrets,
        service_account_name: cx.string("service_account_name"),
        automount_service_account_token: cx.opt_bool("automount_service_account_token"),
        hostnetwork,
        host_aliases,
        security_context,
        container_security_context: cx
            .object::<k8s::SecurityContext>("container_security_context", as_given),
        dnspolicy: cx.one_of(
            "dnspolicy",
            &["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"],
        ),
        dns_config: cx.object::<k8s::PodDNSConfig>("dns_config", as_given),
        hostname: cx.string("hostname"),
        subdomain: cx.string("subdomain"),
        schedulername: cx.string("schedulername"),
        priority_class_name: cx.string("priority_class_name"),
        init_containers: cx.objects::<k8s::Container>("init_containers", as_given),
        termination_message_policy,
        active_deadline_seconds: cx.integer("active_deadline_seconds", 1),
        termination_grace_period: cx.integer("termination_grace_period", 0),
        full_pod_spec,
        pod_template,
        base_container_name,
        xcom_sidecar_image: cx
            .string("xcom_sidecar_container_image")
            .filter(|s| !s.is_empty()),
        xcom_sidecar_resources,
        xcom_sidecar_security_context,
        runtime_class_name: cx.string("runtime_class_name"),
    }
}

/// `pod_template_file` (relative to the task file) wins over `pod_template_dict`.
fn pod_template(cx: &mut Ctx) -> Option<Value> {
    let file = cx.string("pod_template_file").filter(|s| !s.is_empty());
    let dict = cx.get("pod_template_dict");
    if let Some(rel) = file {
        if dict.is_some() {
            cx.warnings.push(
                "pod_template_dict: ignored because pod_template_file is set (as the operator does)"
                    .to_string(),
            );
        }
        let path = cx.dir.join(&rel);
        let key = KeyPath::root().key("pod_template_file");
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                cx.problem(
                    key,
                    format!("cannot read pod template {}: {e}", path.display()),
                );
                return None;
            }
        };
        // The operator reads templates with yaml.safe_load whatever the extension.
        let doc = match read_yaml(&text) {
            Ok(Value::Null) => Value::Object(Map::new()),
            Ok(v) => v,
            Err(e) => {
                cx.problem(
                    key,
                    format!("pod template {} is not valid YAML: {e}", path.display()),
                );
                return None;
            }
        };
        let checked = check_pod(
            &doc,
            KeyPath::root(),
            Mode::Deserialized {
                unknown_is_error: false,
            },
        );
        return match checked {
            Ok(c) => {
                for w in c.warnings {
                    cx.warnings
                        .push(format!("pod_template_file {}: {w}", path.display()));
                }
                Some(c.value)
            }
            Err(p) => {
                cx.problem(key, format!("in pod template {}: {p}", path.display()));
                None
            }
        };
    }
    let dict = dict?;
    match check_pod(
        &dict,
        KeyPath::root().key("pod_template_dict"),
        Mode::Deserialized {
            unknown_is_error: true,
        },
    ) {
        Ok(c) => Some(c.value),
        Err(p) => {
            cx.problems.push(p);
            None
        }
    }
}

const SECRET_KEYS: &[&str] = &["deploy_type", "deploy_target", "secret", "key", "items"];

fn secrets(cx: &mut Ctx) -> Vec<SecretDecl> {
    let Some(v) = cx.get("secrets") else {
        return Vec::new();
    };
    let Value::Array(items) = v else {
        cx.wrong(
            "secrets",
            "a list of {deploy_type, deploy_target, secret, key, items}",
            &v,
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = KeyPath::root().key("secrets").index(i);
        let before = cx.problems.len();
        let Some(map) = cx.record(
            &path,
            item,
            "{deploy_type, deploy_target, secret, key, items}",
            SECRET_KEYS,
        ) else {
            continue;
        };
        let string_at = |cx: &mut Ctx, key: &str| cx.record_string(map, &path, key);
        let deploy_type = match string_at(cx, "deploy_type").as_deref() {
            Some("env") => Some(DeployType::Env),
            Some("volume") => Some(DeployType::Volume),
            Some(other) => {
                cx.problem(
                    path.key("deploy_type"),
                    format!("deploy_type must be env or volume, found {other:?}"),
                );
                None
            }
            None => {
                cx.problem(path.key("deploy_type"), "required: env or volume");
                None
            }
        };
        let deploy_target = string_at(cx, "deploy_target");
        let secret = string_at(cx, "secret");
        let key = string_at(cx, "key");
        if secret.is_none() && !map.contains_key("secret") {
            cx.problem(
                path.key("secret"),
                "required: the name of the Kubernetes Secret",
            );
        }
        if key.is_some() && deploy_target.is_none() {
            cx.problem(
                path.key("deploy_target"),
                "required when `key` is set (the env var name or mount path)",
            );
        }
        if deploy_type == Some(DeployType::Volume) && deploy_target.is_none() && key.is_none() {
            cx.problem(
                path.key("deploy_target"),
                "required for a volume secret (the mount path)",
            );
        }
        let mut item_values = Vec::new();
        match map.get("items") {
            None | Some(Value::Null) => {}
            Some(Value::Array(list)) => {
                for (j, it) in list.iter().enumerate() {
                    if let Some(v) =
                        cx.fragment::<k8s::KeyToPath>(it, path.key("items").index(j), Mode::AsGiven)
                    {
                        item_values.push(v);
                    }
                }
            }
            Some(other) => cx.problem(
                path.key("items"),
                format!("expected a list of {{key, path}}, found {}", found(other)),
            ),
        }
        if cx.problems.len() > before {
            continue;
        }
        let (Some(deploy_type), Some(secret)) = (deploy_type, secret) else {
            continue;
        };
        let deploy_target = match deploy_type {
            // The operator uppercases env targets.
            DeployType::Env => deploy_target.map(|t| t.to_uppercase()),
            DeployType::Volume => deploy_target,
        };
        out.push(SecretDecl {
            deploy_type,
            deploy_target,
            secret,
            key,
            items: item_values,
        });
    }
    out
}
