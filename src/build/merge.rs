//! The operator's pod merge (`PodGenerator.reconcile_pods` and friends), on manifests.
//!
//! The rule, as in every released 10.x provider: a base field is copied over the client's
//! when the client's value is falsy (`None`, `False`, `0`, `""`, `[]`, `{}`) and the base's
//! is not `None` (`merge_objects`: `not client_val and base_val is not None`); a truthy
//! client value replaces the base value whole. Only some lists are appended instead
//! (`volumes`; per container `volumeMounts`, `env`, `envFrom`, `ports`, `volumeDevices`;
//! in metadata `managedFields`, `finalizers`, `ownerReferences`), init containers are
//! appended or, when both sides have some, merged by name (providers 10.16 and later),
//! labels and annotations are dict-merged, and containers are merged by position.
//!
//! One Python subtlety matters for the output: a Kubernetes *model* object is truthy even
//! when empty (`full_pod_spec`'s `securityContext: V1PodSecurityContext()`), while a plain
//! dict is falsy when empty (the operator's own default `security_context={}`). So each
//! merge knows whether its client came from models (`full_pod_spec` over a template) or
//! from the operator's arguments.
//!
//! (The reference's wording, "base value truthy", is an older form of the rule; the two
//! differ only when both sides are falsy, e.g. a template's `hostNetwork: false` under an
//! operator `hostnetwork=None`, which the released operator keeps.)

use serde_json::{Map, Value};

/// Which object a merge is looking at, to tell map-typed fields from model-typed ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Level {
    Pod,
    Meta,
    Spec,
    Container,
}

/// Fields at `level` that are plain dicts in the Python client (falsy when empty).
fn is_dict_field(level: Level, key: &str) -> bool {
    match level {
        Level::Meta => matches!(key, "labels" | "annotations"),
        Level::Spec => matches!(key, "nodeSelector" | "overhead"),
        Level::Pod | Level::Container => false,
    }
}

/// Python truthiness of a plain value (dicts and lists falsy when empty).
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(m) => !m.is_empty(),
    }
}

/// Python truthiness of a field read from a deserialised model: an object-valued field is
/// a model (always truthy) unless it is dict-typed.
fn truthy_model_field(level: Level, key: &str, v: &Value) -> bool {
    match v {
        Value::Object(m) => !m.is_empty() || !is_dict_field(level, key),
        other => truthy(other),
    }
}

/// Where the client side of a merge came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Client {
    /// Deserialised Kubernetes models (`full_pod_spec` over a template).
    Models,
    /// The operator's own arguments (plain dicts where the operator uses dicts).
    Operator,
}

fn client_truthy(client: Client, level: Level, key: &str, v: Option<&Value>) -> bool {
    match (v, client) {
        (None, _) => false,
        (Some(v), Client::Models) => truthy_model_field(level, key, v),
        (Some(v), Client::Operator) => truthy(v),
    }
}

/// `merge_objects` for two model objects: every base field the client leaves falsy, and
/// that is not `None` in the base, is copied from the base.
fn merge_model(
    base: &Map<String, Value>,
    mut client: Map<String, Value>,
    level: Level,
    who: Client,
) -> Map<String, Value> {
    for (k, bv) in base {
        if !client_truthy(who, level, k, client.get(k)) && !bv.is_null() {
            client.insert(k.clone(), bv.clone());
        }
    }
    client
}

/// `merge_objects` for two dicts: falsy sides give way, otherwise base updated by client.
fn merge_dicts(base: Option<&Value>, client: Option<&Value>) -> Option<Value> {
    let b = base.filter(|v| truthy(v));
    let c = client.filter(|v| truthy(v));
    match (b, c) {
        (None, _) => client.cloned(),
        (Some(b), None) => Some(b.clone()),
        (Some(Value::Object(b)), Some(Value::Object(c))) => {
            let mut out = b.clone();
            for (k, v) in c {
                out.insert(k.clone(), v.clone());
            }
            Some(Value::Object(out))
        }
        (Some(_), Some(c)) => Some(c.clone()),
    }
}

/// `extend_object_field`: base list + client list (base first); an empty side gives way.
fn extend(base: &Map<String, Value>, client: &mut Map<String, Value>, field: &str) {
    let b = base
        .get(field)
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty());
    let Some(b) = b else {
        return;
    };
    match client
        .get(field)
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
    {
        None => {
            client.insert(field.to_string(), Value::Array(b.clone()));
        }
        Some(c) => {
            let mut all = b.clone();
            all.extend(c.iter().cloned());
            client.insert(field.to_string(), Value::Array(all));
        }
    }
}

/// A present, non-null object field.
fn object<'a>(m: &'a Map<String, Value>, key: &str) -> Option<&'a Map<String, Value>> {
    m.get(key).and_then(Value::as_object)
}

/// `reconcile_pods(base, client)`: the client (higher precedence) merged over the base.
pub(crate) fn reconcile_pods(
    base: &Map<String, Value>,
    client: &Map<String, Value>,
    who: Client,
) -> Map<String, Value> {
    let mut c = client.clone();
    match reconcile_specs(object(base, "spec"), object(client, "spec"), who) {
        Some(spec) => c.insert("spec".into(), Value::Object(spec)),
        None => c.remove("spec"),
    };
    match reconcile_metadata(object(base, "metadata"), object(client, "metadata"), who) {
        Some(meta) => c.insert("metadata".into(), Value::Object(meta)),
        None => c.remove("metadata"),
    };
    merge_model(base, c, Level::Pod, who)
}

fn reconcile_metadata(
    base: Option<&Map<String, Value>>,
    client: Option<&Map<String, Value>>,
    who: Client,
) -> Option<Map<String, Value>> {
    match (base, client) {
        (Some(b), None) => Some(b.clone()),
        (None, Some(c)) => Some(c.clone()),
        (None, None) => None,
        (Some(b), Some(c)) => {
            let mut c = c.clone();
            for field in ["labels", "annotations"] {
                match merge_dicts(b.get(field), c.get(field)) {
                    Some(v) => c.insert(field.into(), v),
                    None => c.remove(field),
                };
            }
            for field in ["managedFields", "finalizers", "ownerReferences"] {
                extend(b, &mut c, field);
            }
            Some(merge_model(b, c, Level::Meta, who))
        }
    }
}

fn reconcile_specs(
    base: Option<&Map<String, Value>>,
    client: Option<&Map<String, Value>>,
    who: Client,
) -> Option<Map<String, Value>> {
    match (base, client) {
        (Some(b), None) => Some(b.clone()),
        (None, Some(c)) => Some(c.clone()),
        (None, None) => None,
        (Some(b), Some(client)) => {
            let mut c = client.clone();
            let merged = reconcile_containers(
                b.get("containers")
                    .and_then(Value::as_array)
                    .map(Vec::as_slice),
                c.get("containers")
                    .and_then(Value::as_array)
                    .map(Vec::as_slice),
                who,
            );
            match merged {
                Some(list) => c.insert("containers".into(), Value::Array(list)),
                None => c.remove("containers"),
            };
            extend(b, &mut c, "initContainers");
            let both_init = |m: &Map<String, Value>| {
                m.get("initContainers")
                    .and_then(Value::as_array)
                    .is_some_and(|a| !a.is_empty())
            };
            if both_init(b) && both_init(client) {
                let merged = reconcile_init_containers(
                    b.get("initContainers")
                        .and_then(Value::as_array)
                        .map(Vec::as_slice)
                        .unwrap_or_default(),
                    client
                        .get("initContainers")
                        .and_then(Value::as_array)
                        .map(Vec::as_slice)
                        .unwrap_or_default(),
                    who,
                );
                c.insert("initContainers".into(), Value::Array(merged));
            }
            extend(b, &mut c, "volumes");
            Some(merge_model(b, c, Level::Spec, who))
        }
    }
}

/// `reconcile_init_containers`: init containers with the same name are merged like
/// containers; the others are kept, base ones in place, unmatched client ones after.
fn reconcile_init_containers(base: &[Value], client: &[Value], who: Client) -> Vec<Value> {
    let name = |v: &Value| v.get("name").and_then(Value::as_str).map(str::to_string);
    let mut matched = std::collections::HashSet::new();
    let mut out = Vec::new();
    for b in base {
        // The operator builds a dict by name, so the last client container of a name wins.
        let found = name(b).and_then(|n| {
            client
                .iter()
                .rev()
                .find(|c| name(c).as_deref() == Some(n.as_str()))
        });
        match (found, b.as_object()) {
            (Some(c), Some(bm)) => {
                let mut cm = c.as_object().cloned().unwrap_or_default();
                for field in ["volumeMounts", "env", "envFrom", "ports", "volumeDevices"] {
                    extend(bm, &mut cm, field);
                }
                out.push(Value::Object(merge_model(bm, cm, Level::Container, who)));
                matched.extend(name(b));
            }
            _ => out.push(b.clone()),
        }
    }
    for c in client {
        if !name(c).is_some_and(|n| matched.contains(&n)) {
            out.push(c.clone());
        }
    }
    out
}

/// Positional container merge: `base[i]` with `client[i]`, extra containers of either side
/// kept after the merged ones.
fn reconcile_containers(
    base: Option<&[Value]>,
    client: Option<&[Value]>,
    who: Client,
) -> Option<Vec<Value>> {
    let b = base.filter(|l| !l.is_empty());
    let c = client.filter(|l| !l.is_empty());
    let (b, c) = match (b, c) {
        (None, _) => return client.map(<[Value]>::to_vec),
        (Some(_), None) => return base.map(<[Value]>::to_vec),
        (Some(b), Some(c)) => (b, c),
    };
    let empty = Map::new();
    let b0 = b[0].as_object().unwrap_or(&empty);
    let mut c0 = c[0].as_object().cloned().unwrap_or_default();
    for field in ["volumeMounts", "env", "envFrom", "ports", "volumeDevices"] {
        extend(b0, &mut c0, field);
    }
    let merged = merge_model(b0, c0, Level::Container, who);
    let mut out = vec![Value::Object(merged)];
    if let Some(rest) = reconcile_containers(Some(&b[1..]), Some(&c[1..]), who) {
        out.extend(rest);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().expect("object literal")
    }

    #[test]
    fn falsy_operator_values_do_not_override_the_template() {
        let base = obj(
            json!({"spec": {"hostNetwork": true, "securityContext": {"runAsUser": 5},
            "tolerations": [{"key": "a"}], "containers": [{"name": "ctr", "command": ["stress"], "image": "img"}]}}),
        );
        let client = obj(
            json!({"spec": {"hostNetwork": false, "securityContext": {}, "tolerations": [],
            "containers": [{"name": "base", "command": [], "image": null}]}}),
        );
        let out = reconcile_pods(&base, &client, Client::Operator);
        assert_eq!(out["spec"]["hostNetwork"], json!(true));
        assert_eq!(out["spec"]["securityContext"], json!({"runAsUser": 5}));
        assert_eq!(out["spec"]["tolerations"], json!([{"key": "a"}]));
        assert_eq!(out["spec"]["containers"][0]["name"], json!("base"));
        assert_eq!(out["spec"]["containers"][0]["command"], json!(["stress"]));
        assert_eq!(out["spec"]["containers"][0]["image"], json!("img"));
    }

    #[test]
    fn empty_model_in_template_beats_missing_operator_value() {
        let base = obj(json!({"spec": {"dnsConfig": {}, "hostNetwork": false, "subdomain": null}}));
        let client =
            obj(json!({"spec": {"dnsConfig": null, "hostNetwork": null, "subdomain": ""}}));
        let out = reconcile_pods(&base, &client, Client::Operator);
        assert_eq!(out["spec"]["dnsConfig"], json!({}));
        // A falsy base value that is not None still fills a falsy client value.
        assert_eq!(out["spec"]["hostNetwork"], json!(false));
        assert_eq!(out["spec"]["subdomain"], json!(""));
    }

    #[test]
    fn append_lists_and_positional_containers() {
        let base = obj(
            json!({"spec": {"volumes": [{"name": "t"}], "initContainers": [{"name": "i1"}],
            "containers": [{"name": "a", "env": [{"name": "X", "value": "1"}]}, {"name": "sidecar"}]}}),
        );
        let client = obj(
            json!({"spec": {"volumes": [{"name": "o"}], "initContainers": [],
            "containers": [{"name": "base", "env": [{"name": "Y", "value": "2"}]}]}}),
        );
        let out = reconcile_pods(&base, &client, Client::Operator);
        assert_eq!(
            out["spec"]["volumes"],
            json!([{"name": "t"}, {"name": "o"}])
        );
        assert_eq!(out["spec"]["initContainers"], json!([{"name": "i1"}]));
        assert_eq!(
            out["spec"]["containers"][0]["env"],
            json!([{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}])
        );
        assert_eq!(out["spec"]["containers"][1], json!({"name": "sidecar"}));
    }

    #[test]
    fn init_containers_with_the_same_name_merge() {
        let base = obj(
            json!({"spec": {"initContainers": [{"name": "a", "image": "t", "env": [{"name": "X"}]}, {"name": "b", "image": "t"}]}}),
        );
        let client = obj(
            json!({"spec": {"initContainers": [{"name": "c", "image": "o"}, {"name": "a", "env": [{"name": "Y"}]}]}}),
        );
        let out = reconcile_pods(&base, &client, Client::Operator);
        assert_eq!(
            out["spec"]["initContainers"],
            json!([{"name": "a", "image": "t", "env": [{"name": "X"}, {"name": "Y"}]}, {"name": "b", "image": "t"}, {"name": "c", "image": "o"}])
        );
    }

    #[test]
    fn labels_merge_client_wins() {
        let base = obj(
            json!({"metadata": {"labels": {"a": "1", "b": "1"}, "name": "tmpl", "namespace": "ns"}}),
        );
        let client = obj(
            json!({"metadata": {"labels": {"b": "2"}, "name": null, "namespace": null, "annotations": {}}}),
        );
        let out = reconcile_pods(&base, &client, Client::Operator);
        assert_eq!(out["metadata"]["labels"], json!({"a": "1", "b": "2"}));
        assert_eq!(out["metadata"]["name"], json!("tmpl"));
        assert_eq!(out["metadata"]["namespace"], json!("ns"));
        assert_eq!(out["metadata"]["annotations"], json!({}));
    }
}
