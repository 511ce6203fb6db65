//! PATCH bodies: JSON merge patch (RFC 7386), JSON patch (RFC 6902) and strategic merge
//! patch for the core/v1 fields the simulator serves (lists merged by their `patchMergeKey`,
//! `$patch: delete|replace` directives, `$retainKeys`/`$setElementOrder` accepted and ignored).

use serde_json::{Map, Value};

use crate::sim::status::ApiError;

/// The three patch types the API server accepts for built-in kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// `application/merge-patch+json`.
    Merge,
    /// `application/json-patch+json`.
    Json,
    /// `application/strategic-merge-patch+json`.
    Strategic,
    /// `application/apply-patch+yaml` (server-side apply, applied as a strategic merge).
    Apply,
}

impl PatchType {
    /// The patch type for a Content-Type header (415 for anything else).
    pub fn from_content_type(ct: &str) -> Result<PatchType, ApiError> {
        let base = ct.split(';').next().unwrap_or_default().trim();
        match base {
            "application/merge-patch+json" => Ok(PatchType::Merge),
            "application/json-patch+json" => Ok(PatchType::Json),
            "application/strategic-merge-patch+json" => Ok(PatchType::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+cbor" => Ok(PatchType::Apply),
            other => Err(ApiError::unsupported_media_type(other)),
        }
    }
}

/// Apply `body` of type `ty` to `doc` in place.
pub fn apply(doc: &mut Value, ty: PatchType, body: &[u8]) -> Result<(), ApiError> {
    match ty {
        PatchType::Json => {
            let p: json_patch::Patch = serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
            json_patch::patch(doc, &p).map_err(|e| {
                let mut err = ApiError::invalid_generic(e.to_string());
                err.message =
                    format!("the server rejected our request due to an error in our request: {e}");
                err
            })
        }
        PatchType::Merge => {
            let p: Value = serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
            if !p.is_object() {
                return Err(ApiError::bad_request(
                    "json: cannot unmarshal non-object into Go value of type map[string]interface {}",
                ));
            }
            json_patch::merge(doc, &p);
            Ok(())
        }
        PatchType::Strategic | PatchType::Apply => {
            let p: Value = if ty == PatchType::Apply {
                serde_yaml_ng::from_slice(body)
                    .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?
            } else {
                serde_json::from_slice(body)
                    .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?
            };
            let Value::Object(p) = p else {
                return Err(ApiError::bad_request(
                    "json: cannot unmarshal non-object into Go value of type map[string]interface {}",
                ));
            };
            strategic(doc, &p, "");
            Ok(())
        }
    }
}

/// The merge key of a list at `path` (dot-joined field names), if it is merged by key.
fn merge_key(path: &str) -> Option<&'static str> {
    let last = path.rsplit('.').next().unwrap_or(path);
    match last {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "env"
        | "imagePullSecrets"
        | "hostAliases"
        | "readinessGates"
        | "resourceClaims" => match last {
            "hostAliases" => Some("ip"),
            "readinessGates" => Some("conditionType"),
            _ => Some("name"),
        },
        "volumeMounts" => Some("mountPath"),
        "volumeDevices" => Some("devicePath"),
        "ports" => Some("containerPort"),
        "conditions" => Some("type"),
        "ownerReferences" => Some("uid"),
        "containerStatuses" | "initContainerStatuses" | "ephemeralContainerStatuses" => {
            Some("name")
        }
        "podIPs" | "hostIPs" => Some("ip"),
        _ => None,
    }
}

/// Lists merged as sets of scalars.
fn is_set_list(path: &str) -> bool {
    path.ends_with("metadata.finalizers")
}

fn strategic(doc: &mut Value, patch: &Map<String, Value>, path: &str) {
    if patch.get("$patch").and_then(Value::as_str) == Some("replace") {
        let mut p = patch.clone();
        p.remove("$patch");
        *doc = Value::Object(p);
        return;
    }
    if !doc.is_object() {
        *doc = Value::Object(Map::new());
    }
    let Some(d) = doc.as_object_mut() else { return };
    for (k, v) in patch {
        if k.starts_with('$') || k.starts_with("$setElementOrder/") {
            continue;
        }
        let sub = if path.is_empty() {
            k.clone()
        } else {
            format!("{path}.{k}")
        };
        match v {
            Value::Null => {
                d.remove(k);
            }
            Value::Object(pm) => {
                if pm.get("$patch").and_then(Value::as_str) == Some("delete") {
                    d.remove(k);
                    continue;
                }
                let entry = d.entry(k.clone()).or_insert(Value::Null);
                strategic(entry, pm, &sub);
            }
            Value::Array(items) => {
                let key = merge_key(&sub);
                match (key, d.get_mut(k)) {
                    (Some(key), Some(Value::Array(existing))) => {
                        merge_list(existing, items, key, &sub)
                    }
                    (None, Some(Value::Array(existing))) if is_set_list(&sub) => {
                        for it in items {
                            if !existing.contains(it) {
                                existing.push(it.clone());
                            }
                        }
                    }
                    _ => {
                        let cleaned: Vec<Value> = items
                            .iter()
                            .filter(|i| i.get("$patch").is_none())
                            .cloned()
                            .collect();
                        d.insert(k.clone(), Value::Array(cleaned));
                    }
                }
            }
            other => {
                d.insert(k.clone(), other.clone());
            }
        }
    }
}

fn merge_list(existing: &mut Vec<Value>, items: &[Value], key: &str, path: &str) {
    for it in items {
        let Some(kv) = it.get(key).cloned() else {
            existing.push(it.clone());
            continue;
        };
        let pos = existing.iter().position(|e| e.get(key) == Some(&kv));
        let directive = it.get("$patch").and_then(Value::as_str);
        match (pos, directive) {
            (Some(i), Some("delete")) => {
                existing.remove(i);
            }
            (None, Some("delete")) => {}
            (Some(i), _) => {
                if let Value::Object(m) = it {
                    strategic(&mut existing[i], m, path);
                }
            }
            (None, _) => {
                let mut v = it.clone();
                if let Some(m) = v.as_object_mut() {
                    m.remove("$patch");
                }
                existing.push(v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strategic_merges_containers_by_name() {
        let mut doc = json!({"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]},
                             "metadata": {"labels": {"k": "v", "drop": "me"}}});
        let p = json!({"spec": {"containers": [{"name": "b", "image": "z"}]},
                       "metadata": {"labels": {"drop": null, "new": "1"}}});
        apply(&mut doc, PatchType::Strategic, p.to_string().as_bytes()).expect("patch");
        assert_eq!(doc["spec"]["containers"][0]["image"], "x");
        assert_eq!(doc["spec"]["containers"][1]["image"], "z");
        assert_eq!(doc["metadata"]["labels"], json!({"k": "v", "new": "1"}));
    }

    #[test]
    fn merge_patch_replaces_lists() {
        let mut doc = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}});
        apply(
            &mut doc,
            PatchType::Merge,
            br#"{"spec":{"containers":[{"name":"c"}]}}"#,
        )
        .expect("patch");
        assert_eq!(doc["spec"]["containers"], json!([{"name": "c"}]));
    }

    #[test]
    fn json_patch_failure_is_invalid() {
        let mut doc = json!({"metadata": {}});
        let e = apply(
            &mut doc,
            PatchType::Json,
            br#"[{"op":"replace","path":"/metadata/labels/x","value":"1"}]"#,
        )
        .expect_err("missing path");
        assert_eq!(e.code, 422);
        let e = apply(&mut doc, PatchType::Json, b"{").expect_err("malformed");
        assert_eq!(e.code, 400);
    }
}
