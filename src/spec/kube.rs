//! Checks Kubernetes manifest fragments (camelCase, as in a pod manifest) against the
//! k8s-openapi types, without losing what the operator would send.
//!
//! The fragments stay `serde_json::Value`s because the operator serialises exactly what it
//! was given: a float `cpu: 0.25` stays a number and a `"nvidia.com/gpu": null` request stays
//! `null`, which no typed `Quantity` map can hold. So the typed structs are used to *check*
//! (types, required fields, unknown keys with their exact key path) and, for pod templates,
//! to reproduce the Python client's deserialisation (`ApiClient.__deserialize_model`):
//! scalars coerced with Python's `str()`/`int()`/`bool()`, unknown keys dropped.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use super::error::Problem;
use super::path::KeyPath;

/// How a fragment is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// An operator argument written in the task file: the Python user built the object
    /// themselves, so it is sent as given (minus `null` fields); wrong types and unknown
    /// keys are bad input.
    AsGiven,
    /// A pod template (`pod_template_file`, `pod_template_dict`): the operator runs it through
    /// the Python client's deserialiser, which coerces scalars and drops unknown keys; the
    /// typed round trip reproduces that. `unknown_is_error` says whether a dropped key is a
    /// problem (task file) or only a warning (external template file).
    Deserialized { unknown_is_error: bool },
}

/// Outcome of checking one fragment.
pub(crate) struct Checked {
    /// The value to use in the pod.
    pub value: Value,
    /// Non-fatal notes (keys the operator would silently drop from a template file).
    pub warnings: Vec<String>,
}

/// Checks `value` as a `T` at `path`.
pub(crate) fn check<T>(value: &Value, path: &KeyPath, mode: Mode) -> Result<Checked, Problem>
where
    T: DeserializeOwned + Serialize,
{
    let mut input = value.clone();
    // A `null` quantity is legal for the operator (kept in the request), but not for the
    // typed map; check without it.
    strip_null_quantities(&mut input);
    let coerce = matches!(mode, Mode::Deserialized { .. });
    // Each round fixes one coercible scalar; the bound only guards against a loop.
    let mut rounds = 0usize;
    let typed: T = loop {
        match serde_path_to_error::deserialize::<_, T>(&input) {
            Ok(t) => break t,
            Err(err) => {
                rounds += 1;
                let inner = err.inner().to_string();
                if coerce && rounds < 10_000 {
                    if let Some(slot) = value_at_mut(&mut input, err.path()) {
                        if let Some(fixed) = python_coerce(slot, &inner) {
                            *slot = fixed;
                            continue;
                        }
                    }
                }
                return Err(Problem {
                    path: path.join_serde(err.path()),
                    message: explain(&inner),
                });
            }
        }
    };
    let round_trip = serde_json::to_value(&typed).map_err(|e| Problem {
        path: path.clone(),
        message: format!("cannot be represented as a Kubernetes object: {e}"),
    })?;
    let mut unknown = Vec::new();
    find_dropped(&input, &round_trip, path, &mut unknown);
    let mut warnings = Vec::new();
    match mode {
        Mode::AsGiven
        | Mode::Deserialized {
            unknown_is_error: true,
        } => {
            if let Some(first) = unknown.into_iter().next() {
                return Err(Problem {
                    path: first,
                    message: "unknown field: not part of this Kubernetes object".to_string(),
                });
            }
        }
        Mode::Deserialized {
            unknown_is_error: false,
        } => {
            for p in unknown {
                warnings.push(format!(
                    "{p}: unknown field, dropped (as the operator's deserialiser does)"
                ));
            }
        }
    }
    // k8s-openapi fills a missing required field with its default instead of failing;
    // the Python client refuses `None` there, and so does the API server.
    let mut missing = Vec::new();
    find_added(&input, &round_trip, path, true, &mut missing);
    if let Some(first) = missing.into_iter().next() {
        return Err(Problem {
            path: first,
            message: "missing required field".to_string(),
        });
    }
    let value = match mode {
        Mode::AsGiven => without_nulls(value),
        Mode::Deserialized { .. } => round_trip,
    };
    Ok(Checked { value, warnings })
}

/// Serde's messages, rephrased where they are unclear to someone writing YAML.
fn explain(inner: &str) -> String {
    if let Some(field) = inner.strip_prefix("missing field ") {
        return format!("missing required field {field}");
    }
    inner
        .replace("invalid type: ", "wrong type: ")
        .replace("expected i32", "expected an integer")
        .replace("expected i64", "expected an integer")
        .replace("expected a sequence", "expected a list")
}

/// Removes `null` entries from `limits`/`requests` maps (see [`check`]).
fn strip_null_quantities(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                if (k == "limits" || k == "requests" || k == "overhead") && child.is_object() {
                    if let Value::Object(q) = child {
                        q.retain(|_, x| !x.is_null());
                    }
                } else {
                    strip_null_quantities(child);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(strip_null_quantities),
        _ => {}
    }
}

/// `v` with `null` fields of objects removed (Python's serialiser drops `None` attributes),
/// except inside resource maps, where the operator keeps a `None` value as `null`.
pub(crate) fn without_nulls(v: &Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, x)| !x.is_null())
                .map(|(k, x)| {
                    if (k == "limits" || k == "requests") && x.is_object() {
                        (k.clone(), x.clone())
                    } else {
                        (k.clone(), without_nulls(x))
                    }
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

fn value_at_mut<'a>(v: &'a mut Value, path: &serde_path_to_error::Path) -> Option<&'a mut Value> {
    let mut cur = v;
    for seg in path.iter() {
        cur = match seg {
            serde_path_to_error::Segment::Seq { index } => cur.get_mut(*index)?,
            serde_path_to_error::Segment::Map { key } => cur.get_mut(key.as_str())?,
            _ => return None,
        };
    }
    Some(cur)
}

/// Python's `str(x)` for a float, as the client's deserialiser applies it.
pub(crate) fn python_float(f: f64) -> String {
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e16 {
        format!("{f:.1}")
    } else {
        format!("{f}")
    }
}

/// Python's `str()`, `int()` and `bool()` applied where the client's deserialiser would.
fn python_coerce(slot: &Value, message: &str) -> Option<Value> {
    if message.contains("expected a string") {
        return match slot {
            Value::Number(n) => Some(Value::String(match n.as_f64() {
                Some(f) if !n.is_i64() && !n.is_u64() => python_float(f),
                _ => n.to_string(),
            })),
            Value::Bool(b) => Some(Value::String(if *b { "True" } else { "False" }.into())),
            _ => None,
        };
    }
    if message.contains("expected a boolean") {
        return match slot {
            Value::String(s) => Some(Value::Bool(!s.is_empty())),
            Value::Number(n) => Some(Value::Bool(n.as_f64() != Some(0.0))),
            _ => None,
        };
    }
    if message.contains("expected i32") || message.contains("expected i64") {
        return match slot {
            Value::String(s) => s.trim().parse::<i64>().ok().map(Value::from),
            Value::Number(n) => n.as_f64().map(|f| Value::from(f.trunc() as i64)),
            Value::Bool(b) => Some(Value::from(i64::from(*b))),
            _ => None,
        };
    }
    None
}

/// Collects paths of keys present (non-null) in `given` but absent after the typed round
/// trip: keys the Kubernetes schema does not know.
fn find_dropped(given: &Value, typed: &Value, path: &KeyPath, out: &mut Vec<KeyPath>) {
    match (given, typed) {
        (Value::Object(g), Value::Object(t)) => {
            for (k, gv) in g {
                if gv.is_null() {
                    continue;
                }
                match t.get(k) {
                    Some(tv) => find_dropped(gv, tv, &path.key(k), out),
                    None => out.push(path.key(k)),
                }
            }
        }
        (Value::Array(g), Value::Array(t)) => {
            for (i, (gv, tv)) in g.iter().zip(t).enumerate() {
                find_dropped(gv, tv, &path.index(i), out);
            }
        }
        _ => {}
    }
}

/// Collects paths of keys the typed round trip produced but `given` lacks (or has as
/// `null`): required fields that k8s-openapi silently defaulted. A pod's `apiVersion`,
/// `kind` and `metadata` are always produced and are skipped at the root.
fn find_added(given: &Value, typed: &Value, path: &KeyPath, root: bool, out: &mut Vec<KeyPath>) {
    match (given, typed) {
        (Value::Object(g), Value::Object(t)) => {
            for (k, tv) in t {
                if root
                    && matches!(k.as_str(), "apiVersion" | "kind" | "metadata")
                    && !g.contains_key(k)
                {
                    continue;
                }
                match g.get(k) {
                    Some(gv) if !gv.is_null() => find_added(gv, tv, &path.key(k), false, out),
                    _ => out.push(path.key(k)),
                }
            }
        }
        (Value::Array(g), Value::Array(t)) => {
            for (i, (gv, tv)) in g.iter().zip(t).enumerate() {
                find_added(gv, tv, &path.index(i), false, out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, ResourceRequirements, Volume};
    use serde_json::json;

    #[test]
    fn as_given_keeps_float_and_null_quantities() {
        let v =
            json!({"limits": {"cpu": 0.25, "nvidia.com/gpu": null}, "requests": {"memory": "1Gi"}});
        let c = check::<ResourceRequirements>(&v, &KeyPath::root(), Mode::AsGiven)
            .expect("valid resources");
        assert_eq!(c.value, v);
    }

    #[test]
    fn unknown_key_is_named() {
        let v = json!({"name": "x", "persistentVolumeClaim": {"claimNmae": "c"}});
        let p = check::<Volume>(&v, &KeyPath::root().key("volumes").index(0), Mode::AsGiven)
            .err()
            .expect("unknown key");
        assert_eq!(
            p.path.to_string(),
            "volumes[0].persistentVolumeClaim.claimNmae"
        );
    }

    #[test]
    fn missing_required_field_is_named() {
        let v = json!({"emptyDir": {}});
        let p = check::<Volume>(&v, &KeyPath::root().key("volumes").index(0), Mode::AsGiven)
            .err()
            .expect("missing name");
        assert_eq!(p.path.to_string(), "volumes[0].name");
        assert_eq!(p.message, "missing required field");
    }

    #[test]
    fn template_scalars_are_coerced_like_python() {
        let v = json!({"name": "c", "command": ["sleep", 5], "resources": {"limits": {"cpu": 0.25}},
                       "ports": [{"containerPort": "80"}], "tty": "false"});
        let c = check::<Container>(
            &v,
            &KeyPath::root(),
            Mode::Deserialized {
                unknown_is_error: true,
            },
        )
        .expect("coercible");
        assert_eq!(c.value["command"], json!(["sleep", "5"]));
        assert_eq!(c.value["resources"]["limits"]["cpu"], json!("0.25"));
        assert_eq!(c.value["ports"][0]["containerPort"], json!(80));
        // Python's bool("false") is True.
        assert_eq!(c.value["tty"], json!(true));
    }
}
