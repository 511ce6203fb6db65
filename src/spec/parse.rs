//! From a parsed document to a validated [`Task`]: key check, templating, then every
//! parameter checked and normalised the way the operator's `__init__` does. Problems are
//! collected, not returned one by one, so a user sees them all at once.

use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::core::v1 as k8s;
use serde_json::{Map, Value};

use super::error::{Error, Problem};
use super::hooks::{HookDecl, HookPoint, HookSource, OnError};
use super::keys;
use super::kube::{self, Mode};
use super::lifecycle::{ContainerLogs, Lifecycle, OnFinishAction};
use super::names;
use super::path::KeyPath;
use super::task::{Connection, DeployType, PodParams, SecretDecl, Task};
use super::template::{Renderer, TEMPLATE_FIELDS};
use super::vars::RenderVars;

/// Parses `text` as JSON (for `.json` files) or YAML (anything else).
pub(crate) fn parse_document(file: &Path, text: &str) -> Result<Value, Error> {
    let is_json = file
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    if is_json {
        serde_json::from_str(text).map_err(|e| Error::Syntax {
            file: file.to_path_buf(),
            format: "JSON",
            message: e.to_string(),
        })
    } else {
        // An empty YAML document is `null`.
        serde_yaml_ng::from_str::<Option<Value>>(text)
            .map(|v| v.unwrap_or(Value::Null))
            .map_err(|e| Error::Syntax {
                file: file.to_path_buf(),
                format: "YAML",
                message: e.to_string(),
            })
    }
}

/// What a value is, for messages: `a string ("x")`, `a list`, ...
fn found(v: &Value) -> String {
    match v {
        Value::Null => "null".to_string(),
        Value::Bool(b) => format!("a boolean ({b})"),
        Value::Number(n) => format!("a number ({n})"),
        Value::String(s) if s.chars().count() > 40 => "a string".to_string(),
        Value::String(s) => format!("a string ({s:?})"),
        Value::Array(_) => "a list".to_string(),
        Value::Object(_) => "a map".to_string(),
    }
}

/// Validation state for one task file.
struct Ctx {
    dir: PathBuf,
    problems: Vec<Problem>,
    warnings: Vec<String>,
    doc: Map<String, Value>,
}

impl Ctx {
    fn problem(&mut self, path: KeyPath, message: impl Into<String>) {
        self.problems.push(Problem {
            path,
            message: message.into(),
        });
    }

    fn wrong(&mut self, key: &str, expected: &str, v: &Value) {
        self.problem(
            KeyPath::root().key(key),
            format!("expected {expected}, found {}", found(v)),
        );
    }

    /// The raw value of `key`, `None` when absent or `null`.
    fn get(&self, key: &str) -> Option<Value> {
        self.doc.get(key).filter(|v| !v.is_null()).cloned()
    }

    fn string(&mut self, key: &str) -> Option<String> {
        match self.get(key)? {
            Value::String(s) => Some(s),
            other => {
                self.wrong(key, "a string", &other);
                None
            }
        }
    }

    fn one_of(&mut self, key: &str, allowed: &[&str]) -> Option<String> {
        let s = self.string(key)?;
        if allowed.contains(&s.as_str()) {
            Some(s)
        } else {
            let list = allowed.join(", ");
            self.problem(
                KeyPath::root().key(key),
                format!("expected one of {list}, found {s:?}"),
            );
            None
        }
    }

    /// A boolean; `null` is Python's `None`, which the operator treats as false.
    fn boolean(&mut self, key: &str, default: bool) -> bool {
        match self.doc.get(key) {
            None => default,
            Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                let other = other.clone();
                self.wrong(key, "true or false", &other);
                default
            }
        }
    }

    fn opt_bool(&mut self, key: &str) -> Option<bool> {
        match self.get(key)? {
            Value::Bool(b) => Some(b),
            other => {
                self.wrong(key, "true or false", &other);
                None
            }
        }
    }

    fn seconds(&mut self, key: &str) -> Option<Duration> {
        let v = self.get(key)?;
        match v.as_f64() {
            Some(f) if f >= 0.0 && f.is_finite() => Some(Duration::from_secs_f64(f)),
            _ => {
                self.wrong(key, "a number of seconds (0 or more)", &v);
                None
            }
        }
    }

    fn integer(&mut self, key: &str, min: i64) -> Option<i64> {
        let v = self.get(key)?;
        match v.as_i64() {
            Some(n) if n >= min => Some(n),
            _ => {
                let what = if min == 0 {
                    "an integer, 0 or more".to_string()
                } else {
                    format!("an integer, {min} or more")
                };
                self.wrong(key, &what, &v);
                None
            }
        }
    }

    fn string_list(&mut self, key: &str) -> Vec<String> {
        let Some(v) = self.get(key) else {
            return Vec::new();
        };
        let Value::Array(items) = v else {
            self.wrong(key, "a list of strings", &v);
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            match item {
                Value::String(s) => out.push(s.clone()),
                other => self.problem(
                    KeyPath::root().key(key).index(i),
                    format!("expected a string, found {}", found(other)),
                ),
            }
        }
        out
    }

    /// A list of Kubernetes objects of type `T`.
    fn objects<T>(&mut self, key: &str, mode: Mode) -> Vec<Value>
    where
        T: serde::de::DeserializeOwned + serde::Serialize,
    {
        let Some(v) = self.get(key) else {
            return Vec::new();
        };
        let Value::Array(items) = v else {
            self.wrong(key, "a list", &v);
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let path = KeyPath::root().key(key).index(i);
            if !item.is_object() {
                self.problem(path, format!("expected a map, found {}", found(item)));
                continue;
            }
            if let Some(v) = self.fragment::<T>(item, path, mode) {
                out.push(v);
            }
        }
        out
    }

    /// One Kubernetes object of type `T` at `key`.
    fn object<T>(&mut self, key: &str, mode: Mode) -> Option<Value>
    where
        T: serde::de::DeserializeOwned + serde::Serialize,
    {
        let v = self.get(key)?;
        if !v.is_object() {
            self.wrong(key, "a map", &v);
            return None;
        }
        self.fragment::<T>(&v, KeyPath::root().key(key), mode)
    }

    fn fragment<T>(&mut self, v: &Value, path: KeyPath, mode: Mode) -> Option<Value>
    where
        T: serde::de::DeserializeOwned + serde::Serialize,
    {
        match kube::check::<T>(v, &path, mode) {
            Ok(c) => {
                self.warnings.extend(c.warnings);
                Some(c.value)
            }
            Err(p) => {
                self.problems.push(p);
                None
            }
        }
    }

    /// A map of string values (labels, annotations, node selector). `null` values become
    /// `""` where the operator does so (`labels`).
    fn string_map(&mut self, key: &str, null_to_empty: bool) -> Map<String, Value> {
        let Some(v) = self.get(key) else {
            return Map::new();
        };
        let Value::Object(map) = v else {
            self.wrong(key, "a map of strings", &v);
            return Map::new();
        };
        let mut out = Map::new();
        for (k, item) in map {
            match item {
                Value::String(_) => {
                    out.insert(k, item);
                }
                Value::Null if null_to_empty => {
                    out.insert(k, Value::String(String::new()));
                }
                other => self.problem(
                    KeyPath::root().key(key).key(&k),
                    format!(
                        "expected a string (quote numbers and booleans), found {}",
                        found(&other)
                    ),
                ),
            }
        }
        out
    }
}

/// Checks a pod (template, template dict, full pod spec) as a k8s `Pod`. `apiVersion` and
/// `kind` are not checked against `v1`/`Pod`: the operator does not either.
fn check_pod(v: &Value, path: KeyPath, mode: Mode) -> Result<kube::Checked, Problem> {
    let Value::Object(map) = v else {
        return Err(Problem {
            path,
            message: format!("expected a pod manifest (a map), found {}", found(v)),
        });
    };
    let mut body = map.clone();
    let api_version = body.remove("apiVersion");
    let kind = body.remove("kind");
    for (k, val) in [("apiVersion", &api_version), ("kind", &kind)] {
        if let Some(val) = val {
            if !val.is_string() && !val.is_null() {
                return Err(Problem {
                    path: path.key(k),
                    message: format!("expected a string, found {}", found(val)),
                });
            }
        }
    }
    let mut checked = kube::check::<k8s::Pod>(&Value::Object(body), &path, mode)?;
    if let (Mode::AsGiven, Value::Object(out)) = (mode, &mut checked.value) {
        // Python keeps what the user set; the typed round trip (Deserialized mode) always
        // says v1/Pod, like the operator's own pod, which wins the merge anyway.
        let mut with_type = Map::new();
        for (k, val) in [("apiVersion", api_version), ("kind", kind)] {
            if let Some(val @ Value::String(_)) = val {
                with_type.insert(k.to_string(), val);
            }
        }
        with_type.extend(std::mem::take(out));
        *out = with_type;
    }
    Ok(checked)
}

/// Validates `doc` (the parsed task file at `file`) into a [`Task`].
pub(crate) fn task_from_document(
    file: &Path,
    doc: Value,
    vars: &RenderVars,
) -> Result<Task, Error> {
    let invalid = |problems| Error::Invalid {
        file: file.to_path_buf(),
        problems,
    };
    let Value::Object(doc) = doc else {
        return Err(invalid(vec![Problem {
            path: KeyPath::root(),
            message: format!(
                "expected a map of operator parameters (task_id, image, cmds, ...), found {}",
                found(&doc)
            ),
        }]));
    };
    let dir = file
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let mut cx = Ctx {
        dir,
        problems: Vec::new(),
        warnings: Vec::new(),
        doc,
    };

    // 1. Keys.
    let present: Vec<String> = cx.doc.keys().cloned().collect();
    for key in &present {
        if !keys::all().any(|k| k == key) {
            let msg = keys::unknown_message(key, keys::all());
            cx.problem(KeyPath::root().key(key), msg);
        }
        if let Some((_, why)) = keys::IGNORED_KEYS.iter().find(|(k, _)| k == key) {
            cx.warnings.push(format!(
                "{key}: operator parameter ignored by podrun ({why})"
            ));
        }
    }

    // 2. Identity, params, vars.
    let task_id = match cx.doc.get("task_id").cloned() {
        None | Some(Value::Null) => {
            cx.problem(
                KeyPath::root().key("task_id"),
                "required: the task's id (letters, digits, `_`, `.`, `-`; at most 250 characters)",
            );
            "task".to_string()
        }
        Some(Value::String(s)) => {
            if let Err(why) = names::validate_airflow_key(&s, 250) {
                cx.problem(
                    KeyPath::root().key("task_id"),
                    format!("invalid task id {s:?}: {why}"),
                );
            }
            s
        }
        Some(other) => {
            cx.wrong("task_id", "a string", &other);
            "task".to_string()
        }
    };
    let mut params = match cx.get("params") {
        None => Map::new(),
        Some(Value::Object(m)) => m,
        Some(other) => {
            cx.wrong("params", "a map", &other);
            Map::new()
        }
    };
    for (k, v) in &vars.params {
        params.insert(k.clone(), Value::String(v.clone()));
    }
    let var_map: Map<String, Value> = vars
        .vars
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let identity = vars.identity(&task_id);

    // 3. Templates: rendered before anything is interpreted, as the operator renders its
    // template fields at execute time.
    if cx.problems.is_empty() {
        let renderer = Renderer::new(&identity, &params, &var_map);
        for key in TEMPLATE_FIELDS {
            if let Some(v) = cx.doc.get_mut(*key) {
                let mut problems = Vec::new();
                renderer.render_field(key, v, &mut problems);
                cx.problems.extend(problems);
            }
        }
    }

    // 4. Parameters.
    let pod = pod_params(&mut cx);
    let lifecycle = lifecycle(&mut cx, &pod.base_container_name);
    let connection = connection(&mut cx);
    let hooks = hooks(&mut cx);
    let do_xcom_push = cx.boolean("do_xcom_push", false);
    let execution_timeout = cx.seconds("execution_timeout");

    if !cx.problems.is_empty() {
        return Err(invalid(cx.problems));
    }
    Ok(Task {
        file: file.to_path_buf(),
        task_id,
        identity,
        params,
        pod,
        lifecycle,
        connection,
        do_xcom_push,
        execution_timeout,
        hooks,
        warnings: cx.warnings,
    })
}

fn pod_params(cx: &mut Ctx) -> PodParams {
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
        match check_pod(&v, KeyPath::root().key("full_pod_spec"), as_given) {
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
        let doc = match serde_yaml_ng::from_str::<Option<Value>>(&text) {
            Ok(v) => v.unwrap_or_else(|| Value::Object(Map::new())),
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
        let Value::Object(map) = item else {
            cx.problem(
                path,
                format!(
                    "expected a map {{deploy_type, deploy_target, secret, key, items}}, found {}",
                    found(item)
                ),
            );
            continue;
        };
        let before = cx.problems.len();
        for k in map.keys() {
            if !SECRET_KEYS.contains(&k.as_str()) {
                cx.problem(
                    path.key(k),
                    keys::unknown_message(k, SECRET_KEYS.iter().copied()),
                );
            }
        }
        let string_at = |cx: &mut Ctx, key: &str| -> Option<String> {
            match map.get(key) {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s.clone()),
                Some(other) => {
                    cx.problem(
                        path.key(key),
                        format!("expected a string, found {}", found(other)),
                    );
                    None
                }
            }
        };
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

fn lifecycle(cx: &mut Ctx, base: &str) -> Lifecycle {
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

fn connection(cx: &mut Ctx) -> Connection {
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

const HOOK_KEYS: &[&str] = &[
    "point", "rhai", "script", "wasm", "config", "on_error", "name",
];

fn hooks(cx: &mut Ctx) -> Vec<HookDecl> {
    let Some(v) = cx.get("hooks") else {
        return Vec::new();
    };
    let Value::Array(items) = v else {
        cx.wrong("hooks", "a list of hook declarations", &v);
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = KeyPath::root().key("hooks").index(i);
        let Value::Object(map) = item else {
            cx.problem(
                path,
                format!(
                    "expected a map {{point, rhai|script|wasm, config, on_error, name}}, found {}",
                    found(item)
                ),
            );
            continue;
        };
        let before = cx.problems.len();
        for k in map.keys() {
            if !HOOK_KEYS.contains(&k.as_str()) {
                cx.problem(
                    path.key(k),
                    keys::unknown_message(k, HOOK_KEYS.iter().copied()),
                );
            }
        }
        let str_at = |cx: &mut Ctx, key: &str| -> Option<String> {
            match map.get(key) {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s.clone()),
                Some(other) => {
                    cx.problem(
                        path.key(key),
                        format!("expected a string, found {}", found(other)),
                    );
                    None
                }
            }
        };
        let point = match str_at(cx, "point") {
            None => {
                cx.problem(
                    path.key("point"),
                    format!("required: one of {}", HookPoint::NAMES.join(", ")),
                );
                None
            }
            Some(p) => match HookPoint::parse(&p) {
                Some(p) => Some(p),
                None => {
                    let hint = keys::closest(&p, HookPoint::NAMES.iter().copied())
                        .map(|k| format!("; did you mean `{k}`?"))
                        .unwrap_or_default();
                    cx.problem(
                        path.key("point"),
                        format!(
                            "expected one of {}, found {p:?}{hint}",
                            HookPoint::NAMES.join(", ")
                        ),
                    );
                    None
                }
            },
        };
        let sources: Vec<&str> = ["rhai", "script", "wasm"]
            .into_iter()
            .filter(|k| map.get(*k).is_some_and(|v| !v.is_null()))
            .collect();
        let source = match sources.as_slice() {
            [one] => {
                let text = str_at(cx, one);
                match (*one, text) {
                    (_, None) => None,
                    ("script", Some(s)) => Some(HookSource::RhaiInline(s)),
                    (kind, Some(rel)) => {
                        let file = cx.dir.join(&rel);
                        if !file.is_file() {
                            cx.problem(
                                path.key(kind),
                                format!("hook file {} does not exist", file.display()),
                            );
                            None
                        } else if kind == "rhai" {
                            Some(HookSource::RhaiFile(file))
                        } else {
                            Some(HookSource::Wasm(file))
                        }
                    }
                }
            }
            [] => {
                cx.problem(path.clone(), "expected exactly one of `rhai: FILE`, `script: SOURCE`, `wasm: FILE`; found none");
                None
            }
            many => {
                cx.problem(
                    path.clone(),
                    format!(
                        "expected exactly one of `rhai`, `script`, `wasm`; found {}",
                        many.join(", ")
                    ),
                );
                None
            }
        };
        let on_error = match str_at(cx, "on_error").as_deref() {
            None | Some("fail") => OnError::Fail,
            Some("ignore") => OnError::Ignore,
            Some(other) => {
                cx.problem(
                    path.key("on_error"),
                    format!("expected fail or ignore, found {other:?}"),
                );
                OnError::Fail
            }
        };
        let name = str_at(cx, "name");
        let config = match map.get("config") {
            None | Some(Value::Null) => Value::Object(Map::new()),
            Some(v) => v.clone(),
        };
        if cx.problems.len() > before {
            continue;
        }
        if let (Some(point), Some(source)) = (point, source) {
            out.push(HookDecl {
                name,
                point,
                source,
                config,
                on_error,
            });
        }
    }
    out
}
