//! From a parsed document to a validated [`Task`]: key check, templating, then every
//! parameter checked and normalised the way the operator's `__init__` does. Problems are
//! collected, not returned one by one, so a user sees them all at once.

use std::path::{Path, PathBuf};
use std::time::Duration;

mod hooks;
mod lifecycle;
mod pod;

use k8s_openapi::api::core::v1 as k8s;
use serde_json::{Map, Value};

use super::error::{Error, Problem};
use super::keys;
use super::kube::{self, Mode};
use super::names;
use super::path::KeyPath;
use super::task::Task;
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
        read_yaml(text).map_err(|message| Error::Syntax {
            file: file.to_path_buf(),
            format: "YAML",
            message,
        })
    }
}

/// Reads YAML into JSON values: duplicate keys are an error (a second `image:` is almost
/// certainly a mistake), `<<` merge keys are applied, an empty document is `null`.
pub(crate) fn read_yaml(text: &str) -> Result<Value, String> {
    let mut doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).map_err(|e| e.to_string())?;
    doc.apply_merge().map_err(|e| e.to_string())?;
    serde_yaml_ng::from_value::<Option<Value>>(doc)
        .map(|v| v.unwrap_or(Value::Null))
        .map_err(|e| e.to_string())
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

    /// One entry of a list of records (`secrets`, `hooks`): the entry as a map, with every
    /// key outside `allowed` reported; `None` (and a problem naming `shape`) when it is not a
    /// map.
    fn record<'v>(
        &mut self,
        path: &KeyPath,
        item: &'v Value,
        shape: &str,
        allowed: &[&str],
    ) -> Option<&'v Map<String, Value>> {
        let Value::Object(map) = item else {
            self.problem(
                path.clone(),
                format!("expected a map {shape}, found {}", found(item)),
            );
            return None;
        };
        for k in map.keys() {
            if !allowed.contains(&k.as_str()) {
                self.problem(
                    path.key(k),
                    keys::unknown_message(k, allowed.iter().copied()),
                );
            }
        }
        Some(map)
    }

    /// The string at `key` of a record at `path`: `None` when absent or `null`, a problem when
    /// it is not a string.
    fn record_string(
        &mut self,
        map: &Map<String, Value>,
        path: &KeyPath,
        key: &str,
    ) -> Option<String> {
        match map.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                self.problem(
                    path.key(key),
                    format!("expected a string, found {}", found(other)),
                );
                None
            }
        }
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
    let pod = pod::pod_params(&mut cx);
    let lifecycle = lifecycle::lifecycle(&mut cx, &pod.base_container_name);
    let connection = lifecycle::connection(&mut cx);
    let hooks = hooks::hooks(&mut cx);
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
