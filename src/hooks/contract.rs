//! The JSON contract of each hook point: the `ctx` every hook gets, and the output shapes
//! of `validate_pod`, `filter_log` and `decide`, with their strict parsers.
//!
//! Both engines speak these shapes (Rhai through `rhai::serde`, wasm as JSON text), so the
//! pipeline parses every hook's answer the same way. `docs/HOOKS.md` shows examples.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::Layer;

/// What a hook is told about the task. Never host environment variables or secret values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Ctx {
    /// The task's `task_id`.
    pub task_id: String,
    /// The run id (`--run-id`, or generated).
    pub run_id: String,
    /// The try number (1 on the first try).
    pub try_number: u32,
    /// The pod's namespace (from the pod being mutated, when known).
    pub namespace: String,
    /// The pod's name.
    pub pod_name: String,
    /// The tenant the task belongs to.
    pub tenant: String,
    /// The layer of the hook being called.
    pub layer: Option<Layer>,
    /// The point being run.
    pub point: Option<super::Point>,
    /// The hook entry's own `config` (null when none).
    pub config: Value,
    /// The task's `params`.
    pub params: Value,
    /// `filter_log` only: the container whose lines these are.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
}

/// `validate_pod`'s answer, and the pipeline's combined verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// False when any validate hook denied.
    pub allowed: bool,
    /// The (first) deny reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Warnings from every validate hook (a warning never denies).
    #[serde(default)]
    pub warnings: Vec<String>,
    /// The hook that denied, as `layer hook "name"` (pipeline verdicts only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub denied_by: Option<String>,
}

impl Verdict {
    /// An allowing verdict with no warnings.
    pub fn allow() -> Self {
        Verdict {
            allowed: true,
            reason: None,
            warnings: Vec::new(),
            denied_by: None,
        }
    }

    /// Parse `{allowed: bool, reason?: string, warnings?: [string]}`. A deny needs a
    /// non-empty reason so the user learns why.
    pub fn from_output(value: &Value) -> Result<Self, String> {
        let obj = value
            .as_object()
            .ok_or_else(|| format!("validate_pod must return a map, got {}", kind(value)))?;
        check_keys(obj, &["allowed", "reason", "warnings"])?;
        let allowed = obj
            .get("allowed")
            .and_then(Value::as_bool)
            .ok_or("validate_pod's result needs `allowed: true|false`")?;
        let reason = match obj.get("reason") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => return Err(format!("`reason` must be a string, got {}", kind(other))),
        };
        let warnings = match obj.get("warnings") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|w| {
                    w.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| format!("`warnings` must hold strings, got {}", kind(w)))
                })
                .collect::<Result<_, _>>()?,
            Some(other) => return Err(format!("`warnings` must be an array, got {}", kind(other))),
        };
        if !allowed && reason.as_deref().is_none_or(str::is_empty) {
            return Err("a deny (`allowed: false`) needs a non-empty `reason`".into());
        }
        Ok(Verdict {
            allowed,
            reason,
            warnings,
            denied_by: None,
        })
    }
}

/// What `filter_log` does with one line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LineAction {
    /// Write the line unchanged (`true`).
    Keep,
    /// Do not write the line (`false`).
    Drop,
    /// Write this text instead (a string).
    Replace(String),
}

impl LineAction {
    /// Parse one element of `filter_log`'s array: `true`, `false` or a string.
    pub fn from_output(value: &Value) -> Result<Self, String> {
        match value {
            Value::Bool(true) => Ok(LineAction::Keep),
            Value::Bool(false) => Ok(LineAction::Drop),
            Value::String(s) => Ok(LineAction::Replace(s.clone())),
            other => Err(format!(
                "filter_log must return true, false or a string per line, got {}",
                kind(other)
            )),
        }
    }

    /// Parse the whole answer for `lines` input lines: an array of exactly that length.
    pub fn parse_batch(value: &Value, lines: usize) -> Result<Vec<Self>, String> {
        let items = value
            .as_array()
            .ok_or_else(|| format!("filter_log must return an array, got {}", kind(value)))?;
        if items.len() != lines {
            return Err(format!(
                "filter_log returned {} actions for {lines} lines",
                items.len()
            ));
        }
        items.iter().map(LineAction::from_output).collect()
    }
}

/// `decide`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Keep the decision made so far (the base decision, or an earlier hook's).
    Keep,
    /// The task succeeded, whatever the exit code.
    Success,
    /// The task is skipped, with this reason.
    Skip(String),
    /// The task failed, with this reason.
    Fail(String),
}

impl Decision {
    /// Parse `"keep"`, `"success"`, `{"skip": reason}` or `{"fail": reason}`.
    pub fn from_output(value: &Value) -> Result<Self, String> {
        match value {
            Value::String(s) if s == "keep" => Ok(Decision::Keep),
            Value::String(s) if s == "success" => Ok(Decision::Success),
            Value::Object(obj) if obj.len() == 1 => {
                let (key, reason) = obj.iter().next().ok_or("empty map")?;
                let reason = reason
                    .as_str()
                    .filter(|r| !r.is_empty())
                    .ok_or_else(|| format!("`{key}` needs a non-empty reason string"))?
                    .to_owned();
                match key.as_str() {
                    "skip" => Ok(Decision::Skip(reason)),
                    "fail" => Ok(Decision::Fail(reason)),
                    other => Err(format!("unknown decision `{other}`; expected skip or fail")),
                }
            }
            other => Err(format!(
                "decide must return \"keep\", \"success\", #{{skip: reason}} or \
                 #{{fail: reason}}, got {}",
                short(other)
            )),
        }
    }
}

/// The base result the runner reached before `decide` hooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BaseResult {
    /// The base container succeeded.
    Success,
    /// `skip_on_exit_code` matched.
    Skipped,
    /// The pod failed.
    Failed,
}

/// One container's final state, as `decide` sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerOutcome {
    /// Container name.
    pub name: String,
    /// `waiting`, `running` or `terminated`.
    pub state: String,
    /// Exit code when terminated.
    #[serde(default)]
    pub exit_code: Option<i32>,
    /// Kubernetes reason (`Completed`, `Error`, `OOMKilled`, ...).
    #[serde(default)]
    pub reason: Option<String>,
}

/// `decide`'s input: the base decision and everything it was made from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// The base decision, including `skip_on_exit_code`; after a hook decided, later hooks
    /// see that hook's decision here.
    pub result: BaseResult,
    /// The base container's exit code.
    #[serde(default)]
    pub exit_code: Option<i32>,
    /// Kubernetes reason (e.g. `OOMKilled`, `DeadlineExceeded`).
    #[serde(default)]
    pub reason: Option<String>,
    /// The base container's termination message.
    #[serde(default)]
    pub message: Option<String>,
    /// The pod phase.
    #[serde(default)]
    pub phase: Option<String>,
    /// Every container's final state.
    #[serde(default)]
    pub containers: Vec<ContainerOutcome>,
    /// The XCom value (after `process_xcom`), null when none.
    #[serde(default)]
    pub xcom: Value,
}

fn check_keys(obj: &Map<String, Value>, allowed: &[&str]) -> Result<(), String> {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(format!(
            "unexpected key `{k}`; expected {}",
            allowed.join(", ")
        )),
        None => Ok(()),
    }
}

/// The JSON type name, for messages.
pub(crate) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null (did the function return nothing?)",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "a map",
    }
}

/// A value shortened for a message.
fn short(value: &Value) -> String {
    let text = value.to_string();
    if text.len() > 80 {
        let cut = (0..=80)
            .rev()
            .find(|i| text.is_char_boundary(*i))
            .unwrap_or(0);
        format!("{}...", &text[..cut])
    } else {
        text
    }
}
