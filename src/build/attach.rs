//! Post-merge additions to the pod, in the operator's order: secrets (`Secret.attach_to_pod`)
//! and the XCom sidecar (`add_xcom_sidecar`). Both act on `containers[0]`, which after the
//! merge is the operator's base container.

use serde_json::{json, Map, Value};

use crate::spec::{DeployType, SecretDecl};

/// Where the base container writes its XCom value.
pub const XCOM_MOUNT_PATH: &str = "/airflow/xcom";
/// The sidecar's container name (cluster policies written for the operator expect it).
pub const SIDECAR_CONTAINER_NAME: &str = "airflow-xcom-sidecar";
/// The sidecar's default image.
pub const SIDECAR_DEFAULT_IMAGE: &str = "alpine";
/// The sidecar's command: sleep until interrupted (the runner sends INT after reading XCom).
pub const XCOM_CMD: &str = r#"trap "exit 0" INT; while true; do sleep 1; done;"#;

fn spec_mut(pod: &mut Map<String, Value>) -> &mut Map<String, Value> {
    let spec = pod
        .entry("spec")
        .or_insert_with(|| Value::Object(Map::new()));
    if !spec.is_object() {
        *spec = Value::Object(Map::new());
    }
    match spec {
        Value::Object(m) => m,
        _ => unreachable!("spec was just made an object"),
    }
}

/// `obj[field]` as a list, created empty when absent or null.
fn list_mut<'a>(obj: &'a mut Map<String, Value>, field: &str) -> &'a mut Vec<Value> {
    let v = obj.entry(field).or_insert_with(|| Value::Array(Vec::new()));
    if !v.is_array() {
        *v = Value::Array(Vec::new());
    }
    match v {
        Value::Array(a) => a,
        _ => unreachable!("field was just made a list"),
    }
}

/// `containers[0]` as an object; the build checks beforehand that it exists.
fn base_container(spec: &mut Map<String, Value>) -> Option<&mut Map<String, Value>> {
    spec.get_mut("containers")?
        .as_array_mut()?
        .first_mut()?
        .as_object_mut()
}

/// `Secret.attach_to_pod` for each secret, in order.
pub(crate) fn attach_secrets(pod: &mut Map<String, Value>, secrets: &[SecretDecl]) {
    for s in secrets {
        let spec = spec_mut(pod);
        match (s.deploy_type, &s.key) {
            (DeployType::Volume, _) => {
                let vol_id = format!("secretvol{}", uuid::Uuid::new_v4());
                let mut secret = json!({ "secretName": s.secret });
                if !s.items.is_empty() {
                    secret["items"] = Value::Array(s.items.clone());
                }
                list_mut(spec, "volumes").push(json!({"name": vol_id, "secret": secret}));
                if let Some(c) = base_container(spec) {
                    let mut mount = Map::new();
                    if let Some(t) = &s.deploy_target {
                        mount.insert("mountPath".into(), json!(t));
                    }
                    mount.insert("name".into(), json!(vol_id));
                    mount.insert("readOnly".into(), json!(true));
                    list_mut(c, "volumeMounts").push(Value::Object(mount));
                }
            }
            (DeployType::Env, Some(key)) => {
                if let Some(c) = base_container(spec) {
                    list_mut(c, "env").push(json!({
                        "name": s.deploy_target,
                        "valueFrom": {"secretKeyRef": {"name": s.secret, "key": key}},
                    }));
                }
            }
            (DeployType::Env, None) => {
                if let Some(c) = base_container(spec) {
                    list_mut(c, "envFrom").push(json!({"secretRef": {"name": s.secret}}));
                }
            }
        }
    }
}

/// `add_xcom_sidecar`: the `xcom` emptyDir first in `volumes`, its mount first in the base
/// container, and the sidecar appended last.
pub(crate) fn add_xcom_sidecar(
    pod: &mut Map<String, Value>,
    image: &str,
    resources: Option<&Value>,
    security_context: Option<&Value>,
) {
    let spec = spec_mut(pod);
    list_mut(spec, "volumes").insert(0, json!({"name": "xcom", "emptyDir": {}}));
    let mount = json!({"name": "xcom", "mountPath": XCOM_MOUNT_PATH});
    if let Some(c) = base_container(spec) {
        list_mut(c, "volumeMounts").insert(0, mount.clone());
    }
    let resources = resources
        .filter(|r| r.as_object().is_some_and(|m| !m.is_empty()))
        .cloned()
        .unwrap_or_else(|| json!({"requests": {"cpu": "1m", "memory": "10Mi"}}));
    let mut sidecar = json!({
        "name": SIDECAR_CONTAINER_NAME,
        "command": ["sh", "-c", XCOM_CMD],
        "image": image,
        "volumeMounts": [mount],
        "resources": resources,
    });
    if let Some(sc) = security_context {
        sidecar["securityContext"] = sc.clone();
    }
    list_mut(spec, "containers").push(sidecar);
}
