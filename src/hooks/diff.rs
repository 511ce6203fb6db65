//! The JSON paths a mutation changed, for the run report (`metadata.labels.team`,
//! `spec.containers[0].image`). Recursion stops at the first differing value, so a
//! replaced subtree is one path.

use serde_json::Value;

/// Paths (dotted keys, `[i]` indices) where `after` differs from `before`, sorted (so the
/// record does not depend on a hook engine's key order).
pub fn changed_paths(before: &Value, after: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk(before, after, &mut String::new(), &mut out);
    out.sort();
    out
}

/// Put `after`'s object keys in `before`'s order (new keys last), recursively where both
/// sides are objects. Rhai maps are sorted by key; this keeps a mutated pod readable next
/// to the original in `podrun render`.
pub fn reorder_like(before: &Value, after: Value) -> Value {
    match (before, after) {
        (Value::Object(b), Value::Object(mut a)) => {
            let mut out = serde_json::Map::with_capacity(a.len());
            for (key, bv) in b {
                if let Some(av) = a.remove(key) {
                    out.insert(key.clone(), reorder_like(bv, av));
                }
            }
            out.extend(a);
            Value::Object(out)
        }
        (Value::Array(b), Value::Array(a)) => Value::Array(
            a.into_iter()
                .enumerate()
                .map(|(i, av)| match b.get(i) {
                    Some(bv) => reorder_like(bv, av),
                    None => av,
                })
                .collect(),
        ),
        (_, after) => after,
    }
}

fn walk(before: &Value, after: &Value, path: &mut String, out: &mut Vec<String>) {
    match (before, after) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, va) in a {
                let len = path.len();
                push_key(path, key);
                match b.get(key) {
                    Some(vb) => walk(va, vb, path, out),
                    None => out.push(path.clone()),
                }
                path.truncate(len);
            }
            for key in b.keys().filter(|k| !a.contains_key(*k)) {
                let len = path.len();
                push_key(path, key);
                out.push(path.clone());
                path.truncate(len);
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (va, vb)) in a.iter().zip(b).enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                walk(va, vb, path, out);
                path.truncate(len);
            }
        }
        (a, b) if a == b => {}
        _ => out.push(if path.is_empty() {
            ".".into()
        } else {
            path.clone()
        }),
    }
}

fn push_key(path: &mut String, key: &str) {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if plain {
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(key);
    } else {
        // Label keys like `podrun.dev/task` contain dots: quote them.
        path.push_str(&format!("[{key:?}]"));
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn lists_added_changed_and_removed_paths() {
        let before = json!({"metadata": {"name": "a", "labels": {"x": "1"}},
                            "spec": {"containers": [{"image": "i:1"}]}});
        let after = json!({"metadata": {"name": "a", "labels": {"x": "1", "team.io/t": "b"}},
                           "spec": {"containers": [{"image": "i:2"}]}});
        assert_eq!(
            changed_paths(&before, &after),
            vec![
                "metadata.labels[\"team.io/t\"]".to_owned(),
                "spec.containers[0].image".to_owned()
            ]
        );
        assert!(changed_paths(&before, &before).is_empty());
    }

    #[test]
    fn reorder_keeps_original_key_order() {
        let before =
            json!({"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "a", "labels": {}}});
        let after = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"labels": {"x": "1"}, "name": "a"}, "extra": 1});
        let text = reorder_like(&before, after).to_string();
        assert_eq!(
            text,
            r#"{"kind":"Pod","apiVersion":"v1","metadata":{"name":"a","labels":{"x":"1"}},"extra":1}"#
        );
    }
}
