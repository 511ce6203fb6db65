//! The pod strategy: what the API server's defaulting, ServiceAccount admission, validation
//! and update rules do to a pod (`pkg/apis/core/v1/defaults.go`,
//! `plugin/pkg/admission/serviceaccount`, `pkg/apis/core/validation`, `pkg/registry/core/pod`).
//!
//! Pods are checked by round-tripping through the typed `k8s_openapi` `Pod` (type errors
//! become 400 BadRequest, unknown fields are dropped as the API server does) and then
//! defaulted as JSON, so every default is a plain "set if absent".

use k8s_openapi::api::core::v1::Pod;
use serde_json::{json, Map, Value};

use crate::sim::status::{ApiError, Cause, Result};
use crate::sim::store::meta;

/// Where the service account token volume is mounted in every container.
pub const TOKEN_MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// Decode `obj` as a Pod (type check) and re-encode it without unknown fields.
pub fn normalize(obj: Value) -> Result<Value> {
    let pod: Pod = serde_json::from_value(obj).map_err(|e| {
        ApiError::bad_request(format!(
            "Pod in version \"v1\" cannot be handled as a Pod: {e}"
        ))
    })?;
    serde_json::to_value(&pod).map_err(|e| ApiError::internal(e.to_string()))
}

/// The object at `key` in `v`, made an empty object if absent or of another type
/// (None only when `v` itself is not an object).
fn obj_mut<'a>(v: &'a mut Value, key: &str) -> Option<&'a mut Map<String, Value>> {
    let e = v
        .as_object_mut()?
        .entry(key.to_string())
        .or_insert_with(|| json!({}));
    if !e.is_object() {
        *e = json!({});
    }
    e.as_object_mut()
}

fn default(m: &mut Map<String, Value>, key: &str, value: Value) {
    if m.get(key).is_none_or(Value::is_null) {
        m.insert(key.to_string(), value);
    }
}

fn image_pull_policy(image: &str) -> &'static str {
    // Tag is after the last ':' that follows the last '/'; a digest pins the image.
    if image.contains('@') {
        return "IfNotPresent";
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.rsplit_once(':') {
        Some((_, tag)) if tag != "latest" => "IfNotPresent",
        _ => "Always",
    }
}

fn default_probe(p: &mut Value) {
    if let Some(m) = p.as_object_mut() {
        default(m, "timeoutSeconds", json!(1));
        default(m, "periodSeconds", json!(10));
        default(m, "successThreshold", json!(1));
        default(m, "failureThreshold", json!(3));
        if let Some(h) = m.get_mut("httpGet").and_then(Value::as_object_mut) {
            default(h, "path", json!("/"));
            default(h, "scheme", json!("HTTP"));
        }
    }
}

fn default_field_ref(v: &mut Value) {
    if let Some(f) = v.get_mut("fieldRef").and_then(Value::as_object_mut) {
        default(f, "apiVersion", json!("v1"));
    }
}

fn default_container(c: &mut Value) {
    let image = c
        .get("image")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let Some(m) = c.as_object_mut() else { return };
    default(m, "terminationMessagePath", json!("/dev/termination-log"));
    default(m, "terminationMessagePolicy", json!("File"));
    if !image.is_empty() {
        default(m, "imagePullPolicy", json!(image_pull_policy(&image)));
    }
    default(m, "resources", json!({}));
    // Requests default to limits for each resource that has a limit and no request.
    if let Some(res) = m.get_mut("resources").and_then(Value::as_object_mut) {
        if let Some(limits) = res.get("limits").and_then(Value::as_object).cloned() {
            let req = res.entry("requests").or_insert_with(|| json!({}));
            if let Some(req) = req.as_object_mut() {
                for (k, v) in limits {
                    req.entry(k).or_insert(v);
                }
            }
        }
    }
    if let Some(ports) = m.get_mut("ports").and_then(Value::as_array_mut) {
        for p in ports {
            if let Some(p) = p.as_object_mut() {
                default(p, "protocol", json!("TCP"));
            }
        }
    }
    if let Some(env) = m.get_mut("env").and_then(Value::as_array_mut) {
        for e in env {
            if let Some(vf) = e.get_mut("valueFrom") {
                default_field_ref(vf);
            }
        }
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = m.get_mut(probe) {
            default_probe(p);
        }
    }
}

fn default_volume(v: &mut Value) {
    let Some(m) = v.as_object_mut() else { return };
    for (src, mode) in [("secret", true), ("configMap", true), ("downwardAPI", true)] {
        if let Some(s) = m.get_mut(src).and_then(Value::as_object_mut) {
            if mode {
                default(s, "defaultMode", json!(420));
            }
            if let Some(items) = s.get_mut("items").and_then(Value::as_array_mut) {
                for it in items {
                    default_field_ref(it);
                }
            }
        }
    }
    if let Some(s) = m.get_mut("projected").and_then(Value::as_object_mut) {
        default(s, "defaultMode", json!(420));
    }
    if let Some(s) = m.get_mut("hostPath").and_then(Value::as_object_mut) {
        default(s, "type", json!(""));
    }
}

/// Apply the API server's defaults to a normalized pod (idempotent; also run on updates).
pub fn apply_defaults(pod: &mut Value) {
    let Some(spec) = obj_mut(pod, "spec") else {
        return;
    };
    default(spec, "restartPolicy", json!("Always"));
    default(spec, "terminationGracePeriodSeconds", json!(30));
    default(spec, "dnsPolicy", json!("ClusterFirst"));
    default(spec, "securityContext", json!({}));
    default(spec, "schedulerName", json!("default-scheduler"));
    default(spec, "enableServiceLinks", json!(true));
    default(spec, "preemptionPolicy", json!("PreemptLowerPriority"));
    default(spec, "priority", json!(0));
    // The API server mirrors serviceAccountName into the deprecated serviceAccount field.
    if let Some(sa) = spec.get("serviceAccountName").cloned() {
        default(spec, "serviceAccount", sa);
    }
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        if let Some(cs) = spec.get_mut(list).and_then(Value::as_array_mut) {
            cs.iter_mut().for_each(default_container);
        }
    }
    if let Some(vs) = spec.get_mut("volumes").and_then(Value::as_array_mut) {
        vs.iter_mut().for_each(default_volume);
    }
    // DefaultTolerationSeconds admission: tolerate not-ready/unreachable for 300 s.
    let tolerations = spec.entry("tolerations").or_insert_with(|| json!([]));
    if let Some(ts) = tolerations.as_array_mut() {
        for key in [
            "node.kubernetes.io/not-ready",
            "node.kubernetes.io/unreachable",
        ] {
            let present = ts.iter().any(|t| {
                t.get("key").and_then(Value::as_str) == Some(key)
                    && t.get("effect")
                        .and_then(Value::as_str)
                        .is_none_or(|e| e == "NoExecute")
            }) || ts.iter().any(|t| {
                t.get("operator").and_then(Value::as_str) == Some("Exists")
                    && t.get("key").is_none()
                    && t.get("effect")
                        .and_then(Value::as_str)
                        .is_none_or(|e| e == "NoExecute")
            });
            if !present {
                ts.push(json!({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}));
            }
        }
    }
    if tolerations.as_array().is_some_and(Vec::is_empty) {
        spec.remove("tolerations");
    }
}

/// ServiceAccount admission: default the account name, check it exists (403 otherwise, with
/// the admission plugin's text), and add the projected token volume and its mounts.
///
/// `sa_lookup` returns the ServiceAccount object if it exists.
pub fn admit_service_account(
    pod: &mut Value,
    namespace: &str,
    name: &str,
    sa_lookup: impl Fn(&str) -> Option<Value>,
) -> Result<()> {
    let Some(spec) = obj_mut(pod, "spec") else {
        return Ok(());
    };
    let sa_name = spec
        .get("serviceAccountName")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .or_else(|| spec.get("serviceAccount").and_then(Value::as_str))
        .filter(|s| !s.is_empty())
        .unwrap_or("default")
        .to_string();
    spec.insert("serviceAccountName".into(), json!(sa_name));
    spec.insert("serviceAccount".into(), json!(sa_name));
    let Some(sa) = sa_lookup(&sa_name) else {
        return Err(ApiError::forbidden(
            "pods",
            name,
            &format!(
                "error looking up service account {namespace}/{sa_name}: serviceaccount \"{sa_name}\" not found"
            ),
        ));
    };
    let automount = spec
        .get("automountServiceAccountToken")
        .and_then(Value::as_bool)
        .or_else(|| {
            sa.get("automountServiceAccountToken")
                .and_then(Value::as_bool)
        })
        .unwrap_or(true);
    if !automount {
        return Ok(());
    }
    // A pod that already mounts something at the token path keeps its own.
    let mounted = ["initContainers", "containers"].iter().any(|l| {
        spec.get(*l).and_then(Value::as_array).is_some_and(|cs| {
            cs.iter().any(|c| {
                c.get("volumeMounts")
                    .and_then(Value::as_array)
                    .is_some_and(|ms| {
                        ms.iter().any(|m| {
                            m.get("mountPath").and_then(Value::as_str) == Some(TOKEN_MOUNT_PATH)
                        })
                    })
            })
        })
    });
    if mounted {
        return Ok(());
    }
    let vol_name = format!("kube-api-access-{}", meta::random_suffix());
    let volume = json!({
        "name": vol_name,
        "projected": {
            "sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}
            ],
            "defaultMode": 420
        }
    });
    let vols = spec.entry("volumes").or_insert_with(|| json!([]));
    if let Some(vs) = vols.as_array_mut() {
        vs.push(volume);
    }
    for list in ["initContainers", "containers"] {
        if let Some(cs) = spec.get_mut(list).and_then(Value::as_array_mut) {
            for c in cs {
                let Some(cm) = c.as_object_mut() else {
                    continue;
                };
                let mounts = cm.entry("volumeMounts").or_insert_with(|| json!([]));
                if let Some(ms) = mounts.as_array_mut() {
                    ms.push(
                        json!({"name": vol_name, "readOnly": true, "mountPath": TOKEN_MOUNT_PATH}),
                    );
                }
            }
        }
    }
    Ok(())
}

fn str_at<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn validate_containers(
    spec: &Value,
    list: &str,
    required: bool,
    causes: &mut Vec<Cause>,
    names: &mut Vec<String>,
) {
    let cs = spec.get(list).and_then(Value::as_array);
    let Some(cs) = cs.filter(|c| !c.is_empty()) else {
        if required {
            causes.push(Cause::required(format!("spec.{list}")));
        }
        return;
    };
    for (i, c) in cs.iter().enumerate() {
        let path = format!("spec.{list}[{i}]");
        let name = str_at(c, "name");
        if name.is_empty() {
            causes.push(Cause::required(format!("{path}.name")));
        } else if !meta::is_dns_label(name) {
            causes.extend(meta::label_name_errors(&format!("{path}.name"), name));
        } else if names.iter().any(|n| n == name) {
            causes.push(Cause::duplicate(format!("{path}.name"), name));
        } else {
            names.push(name.to_string());
        }
        let image = str_at(c, "image");
        if image.trim().is_empty() {
            causes.push(Cause::required(format!("{path}.image")));
        }
        let policy = str_at(c, "imagePullPolicy");
        if !["Always", "IfNotPresent", "Never", ""].contains(&policy) {
            causes.push(Cause::unsupported(
                format!("{path}.imagePullPolicy"),
                policy,
                &["Always", "IfNotPresent", "Never"],
            ));
        }
        let tmp = str_at(c, "terminationMessagePolicy");
        if !["File", "FallbackToLogsOnError", ""].contains(&tmp) {
            causes.push(Cause::unsupported(
                format!("{path}.terminationMessagePolicy"),
                tmp,
                &["File", "FallbackToLogsOnError"],
            ));
        }
        if let Some(mounts) = c.get("volumeMounts").and_then(Value::as_array) {
            let vols: Vec<&str> = spec
                .get("volumes")
                .and_then(Value::as_array)
                .map(|vs| vs.iter().map(|v| str_at(v, "name")).collect())
                .unwrap_or_default();
            for (j, m) in mounts.iter().enumerate() {
                let n = str_at(m, "name");
                if !vols.contains(&n) {
                    causes.push(Cause {
                        reason: "FieldValueNotFound",
                        field: format!("{path}.volumeMounts[{j}].name"),
                        message: format!("Not found: {n:?}"),
                    });
                }
                if str_at(m, "mountPath").is_empty() {
                    causes.push(Cause::required(format!(
                        "{path}.volumeMounts[{j}].mountPath"
                    )));
                }
            }
        }
        if let Some(env) = c.get("env").and_then(Value::as_array) {
            for (j, e) in env.iter().enumerate() {
                if str_at(e, "name").is_empty() {
                    causes.push(Cause::required(format!("{path}.env[{j}].name")));
                }
            }
        }
    }
}

/// Validate a defaulted pod as the API server does on create.
pub fn validate(pod: &Value, name: &str) -> Result<()> {
    let mut causes = Vec::new();
    let spec = pod.get("spec").cloned().unwrap_or(json!({}));
    let mut names = Vec::new();
    validate_containers(&spec, "containers", true, &mut causes, &mut names);
    validate_containers(&spec, "initContainers", false, &mut causes, &mut names);
    let rp = str_at(&spec, "restartPolicy");
    if !["Always", "OnFailure", "Never"].contains(&rp) {
        causes.push(Cause::unsupported(
            "spec.restartPolicy",
            rp,
            &["Always", "OnFailure", "Never"],
        ));
    }
    let dns = str_at(&spec, "dnsPolicy");
    if !["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"].contains(&dns) {
        causes.push(Cause::unsupported(
            "spec.dnsPolicy",
            dns,
            &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"],
        ));
    }
    if let Some(vs) = spec.get("volumes").and_then(Value::as_array) {
        let mut seen: Vec<&str> = Vec::new();
        for (i, v) in vs.iter().enumerate() {
            let n = str_at(v, "name");
            if n.is_empty() {
                causes.push(Cause::required(format!("spec.volumes[{i}].name")));
            } else if seen.contains(&n) {
                causes.push(Cause::duplicate(format!("spec.volumes[{i}].name"), n));
            } else {
                seen.push(n);
            }
        }
    }
    if let Some(ads) = spec.get("activeDeadlineSeconds").and_then(Value::as_i64) {
        if ads <= 0 {
            causes.push(Cause::invalid(
                "spec.activeDeadlineSeconds",
                &json!(ads),
                "must be between 1 and 2147483647, inclusive",
            ));
        }
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid("Pod", name, causes))
    }
}

fn has_resources(c: &Value, which: &str) -> Option<Map<String, Value>> {
    c.pointer(&format!("/resources/{which}"))
        .and_then(Value::as_object)
        .cloned()
}

/// The pod's QoS class, computed from requests and limits like `qos.GetPodQOS`.
pub fn qos_class(spec: &Value) -> &'static str {
    let mut any = false;
    let mut guaranteed = true;
    for list in ["initContainers", "containers"] {
        let Some(cs) = spec.get(list).and_then(Value::as_array) else {
            continue;
        };
        for c in cs {
            let req = has_resources(c, "requests").unwrap_or_default();
            let lim = has_resources(c, "limits").unwrap_or_default();
            let relevant = |m: &Map<String, Value>| m.keys().any(|k| k == "cpu" || k == "memory");
            if relevant(&req) || relevant(&lim) {
                any = true;
            }
            for r in ["cpu", "memory"] {
                match (lim.get(r), req.get(r)) {
                    (Some(l), Some(q)) if l == q => {}
                    _ => guaranteed = false,
                }
            }
        }
    }
    match (any, guaranteed) {
        (false, _) => "BestEffort",
        (true, true) => "Guaranteed",
        (true, false) => "Burstable",
    }
}

/// Check an update of `old` to `new` (both defaulted) changes only what the API server
/// allows on a pod spec; returns whether the spec changed (to bump `generation`).
pub fn check_update(old: &Value, new: &Value, name: &str) -> Result<bool> {
    let old_spec = old.get("spec").cloned().unwrap_or(json!({}));
    let new_spec = new.get("spec").cloned().unwrap_or(json!({}));
    if old_spec == new_spec {
        return Ok(false);
    }
    // Copy the mutable fields from new into old; anything else different is forbidden.
    let mut masked = old_spec.clone();
    for list in ["containers", "initContainers"] {
        let (Some(o), Some(n)) = (
            masked.get_mut(list).and_then(Value::as_array_mut),
            new_spec.get(list).and_then(Value::as_array),
        ) else {
            continue;
        };
        if o.len() == n.len() {
            for (oc, nc) in o.iter_mut().zip(n) {
                if let Some(img) = nc.get("image") {
                    oc["image"] = img.clone();
                }
            }
        }
    }
    let mut causes = Vec::new();
    match (
        old_spec
            .get("activeDeadlineSeconds")
            .and_then(Value::as_i64),
        new_spec
            .get("activeDeadlineSeconds")
            .and_then(Value::as_i64),
    ) {
        (_, None) if old_spec.get("activeDeadlineSeconds").is_some() => {
            causes.push(Cause::invalid(
                "spec.activeDeadlineSeconds",
                &Value::Null,
                "must not update from a positive integer to nil value",
            ));
        }
        (Some(o), Some(n)) if n > o => causes.push(Cause::invalid(
            "spec.activeDeadlineSeconds",
            &json!(n),
            "must be less than or equal to previous value",
        )),
        _ => {}
    }
    if let Some(ads) = new_spec.get("activeDeadlineSeconds") {
        masked["activeDeadlineSeconds"] = ads.clone();
    } else if let Some(m) = masked.as_object_mut() {
        m.remove("activeDeadlineSeconds");
    }
    // Tolerations: only additions.
    let old_t = old_spec
        .get("tolerations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let new_t = new_spec
        .get("tolerations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if old_t.iter().all(|t| new_t.contains(t)) {
        if let Some(t) = new_spec.get("tolerations") {
            masked["tolerations"] = t.clone();
        }
    }
    if masked != new_spec && causes.is_empty() {
        causes.push(Cause::forbidden(
            "spec",
            "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
        ));
    }
    if causes.is_empty() {
        Ok(true)
    } else {
        Err(ApiError::invalid("Pod", name, causes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_policy_follows_the_tag() {
        assert_eq!(image_pull_policy("busybox"), "Always");
        assert_eq!(image_pull_policy("busybox:latest"), "Always");
        assert_eq!(image_pull_policy("busybox:1.36"), "IfNotPresent");
        assert_eq!(image_pull_policy("localhost:5000/busybox"), "Always");
        assert_eq!(
            image_pull_policy("localhost:5000/busybox:2"),
            "IfNotPresent"
        );
        assert_eq!(image_pull_policy("busybox@sha256:abc"), "IfNotPresent");
    }

    #[test]
    fn qos_classes() {
        let be = json!({"containers": [{"name": "a"}]});
        assert_eq!(qos_class(&be), "BestEffort");
        let g = json!({"containers": [{"name": "a", "resources": {
            "limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1", "memory": "1Gi"}}}]});
        assert_eq!(qos_class(&g), "Guaranteed");
        let b = json!({"containers": [{"name": "a", "resources": {"requests": {"cpu": "1"}}}]});
        assert_eq!(qos_class(&b), "Burstable");
    }

    #[test]
    fn defaults_add_tolerations_once() {
        let mut p = json!({"spec": {"containers": [{"name": "a", "image": "x:1"}]}});
        apply_defaults(&mut p);
        apply_defaults(&mut p);
        assert_eq!(p["spec"]["tolerations"].as_array().map(Vec::len), Some(2));
        assert_eq!(
            p["spec"]["containers"][0]["imagePullPolicy"],
            "IfNotPresent"
        );
    }

    #[test]
    fn spec_change_other_than_image_is_forbidden() {
        let mut old = json!({"spec": {"containers": [{"name": "a", "image": "x:1"}]}});
        apply_defaults(&mut old);
        let mut img = old.clone();
        img["spec"]["containers"][0]["image"] = json!("x:2");
        assert_eq!(check_update(&old, &img, "p"), Ok(true));
        let mut bad = old.clone();
        bad["spec"]["restartPolicy"] = json!("Never");
        let err = check_update(&old, &bad, "p").expect_err("restartPolicy is immutable");
        assert_eq!(err.code, 422);
        assert!(err.message.starts_with(
            "Pod \"p\" is invalid: spec: Forbidden: pod updates may not change fields"
        ));
    }
}
