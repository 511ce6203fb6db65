//! JSON ⇄ Rhai values, directly (no serde round trip): the fixed cost of every hook call
//! is converting the pod in and out, and going through `rhai::serde` doubled it.
//!
//! The mapping is `rhai::serde`'s: null ⇄ `()`, integers that fit `i64` ⇄ `INT`, other
//! numbers ⇄ `FLOAT`, strings, arrays and maps as such. Out of Rhai, a `char` becomes a
//! one-character string and a blob an array of byte values; a non-finite float becomes
//! null (as `serde_json` does); anything else (function pointers, timestamps, custom
//! types) is an error naming the type and where it is.
//!
//! Both directions recurse. Inputs come from podrun, whose JSON parser limits nesting;
//! outputs are converted on a hook thread, whose stack holds any depth Rhai can build.

use rhai::{Array, Dynamic, Map, FLOAT, INT};
use serde_json::{Number, Value};

/// A JSON value as a Rhai value.
pub(crate) fn to_dynamic(value: &Value) -> Dynamic {
    match value {
        Value::Null => Dynamic::UNIT,
        Value::Bool(b) => Dynamic::from_bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Dynamic::from_int(i as INT),
            None => Dynamic::from_float(n.as_f64().unwrap_or(FLOAT::NAN) as FLOAT),
        },
        Value::String(s) => Dynamic::from(rhai::ImmutableString::from(s.as_str())),
        Value::Array(items) => Dynamic::from_array(items.iter().map(to_dynamic).collect::<Array>()),
        Value::Object(map) => Dynamic::from_map(
            map.iter()
                .map(|(k, v)| (k.as_str().into(), to_dynamic(v)))
                .collect::<Map>(),
        ),
    }
}

/// A Rhai value as JSON; the error says which part cannot be JSON.
pub(crate) fn from_dynamic(value: &Dynamic) -> Result<Value, String> {
    from_dynamic_at(value).map_err(|(type_name, mut path)| {
        // Segments were collected innermost first, while the error travelled out.
        path.reverse();
        let at = path.concat();
        let at = at.trim_start_matches('.');
        if at.is_empty() {
            format!("a {type_name} cannot be turned into JSON")
        } else {
            format!("a {type_name} cannot be turned into JSON (at {at})")
        }
    })
}

/// The conversion; an error carries the offending type and the path to it, innermost
/// segment first (built only on failure, so the common case pays nothing for it).
fn from_dynamic_at(value: &Dynamic) -> Result<Value, (&'static str, Vec<String>)> {
    if value.is_unit() {
        return Ok(Value::Null);
    }
    if let Ok(b) = value.as_bool() {
        return Ok(Value::Bool(b));
    }
    if let Ok(i) = value.as_int() {
        return Ok(Value::Number(Number::from(i)));
    }
    if let Ok(f) = value.as_float() {
        return Ok(Number::from_f64(f).map_or(Value::Null, Value::Number));
    }
    if let Ok(c) = value.as_char() {
        return Ok(Value::String(c.to_string()));
    }
    if let Some(s) = value.read_lock::<rhai::ImmutableString>() {
        return Ok(Value::String(s.as_str().to_owned()));
    }
    if let Some(items) = value.read_lock::<Array>() {
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            out.push(from_dynamic_at(item).map_err(|(t, mut path)| {
                path.push(format!("[{i}]"));
                (t, path)
            })?);
        }
        return Ok(Value::Array(out));
    }
    if let Some(map) = value.read_lock::<Map>() {
        let mut out = serde_json::Map::with_capacity(map.len());
        for (k, v) in map.iter() {
            let v = from_dynamic_at(v).map_err(|(t, mut path)| {
                path.push(format!(".{k}"));
                (t, path)
            })?;
            out.insert(k.to_string(), v);
        }
        return Ok(Value::Object(out));
    }
    if let Some(blob) = value.read_lock::<rhai::Blob>() {
        return Ok(Value::Array(
            blob.iter().map(|b| Value::Number((*b).into())).collect(),
        ));
    }
    Err((value.type_name(), Vec::new()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn sample() -> Value {
        json!({
            "apiVersion": "v1",
            "metadata": {"name": "p", "labels": {"a": "b"}, "annotations": {}},
            "spec": {"containers": [{"name": "base", "args": ["x", "y"], "ports": [{"containerPort": 8080}]}],
                     "ratio": 0.25, "big": 18446744073709551615u64, "neg": -3, "flag": true, "none": null}
        })
    }

    #[test]
    fn matches_rhai_serde_both_ways() {
        let v = sample();
        let ours = to_dynamic(&v);
        let theirs: Dynamic = rhai::serde::to_dynamic(&v).expect("rhai serde");
        assert_eq!(ours.to_string(), theirs.to_string());
        let back = from_dynamic(&ours).expect("back");
        let theirs_back: Value = rhai::serde::from_dynamic(&theirs).expect("rhai serde back");
        assert_eq!(back, theirs_back);
    }

    #[test]
    fn chars_and_blobs_become_json_and_functions_do_not() {
        let mut m = Map::new();
        m.insert("c".into(), Dynamic::from_char('x'));
        m.insert("b".into(), Dynamic::from_blob(vec![1, 2]));
        let v = from_dynamic(&Dynamic::from_map(m)).expect("json");
        assert_eq!(v, json!({"b": [1, 2], "c": "x"}));

        let mut inner = Map::new();
        inner.insert(
            "f".into(),
            Dynamic::from(rhai::FnPtr::new("x").expect("fn ptr")),
        );
        let arr: Array = vec![Dynamic::from_map(inner)];
        let mut outer = Map::new();
        outer.insert("list".into(), Dynamic::from_array(arr));
        let err = from_dynamic(&Dynamic::from_map(outer)).expect_err("fn ptr");
        assert_eq!(err, "a Fn cannot be turned into JSON (at list[0].f)");
    }
}
