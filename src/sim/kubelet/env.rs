//! A container's environment, command and args, resolved the way the kubelet's
//! `makeEnvironmentVariables` does: envFrom first, then env in order, `$(VAR)`
//! expanded against what came before, valueFrom read from the pod, its node, Secrets
//! and ConfigMaps.
//!
//! Failures carry the kubelet's own words, shown as `CreateContainerConfigError`:
//! `secret "x" not found`, `couldn't find key k in ConfigMap ns/x`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    ConfigMap, Container, ObjectFieldSelector, Pod, ResourceFieldSelector, Secret,
};

use super::expand::expand;
use super::quantity::{self, Milli};

/// Read access to the Secrets and ConfigMaps of the API store.
pub trait Objects {
    /// The Secret `namespace/name`, if it exists.
    fn secret(&self, namespace: &str, name: &str) -> Option<Secret>;
    /// The ConfigMap `namespace/name`, if it exists.
    fn config_map(&self, namespace: &str, name: &str) -> Option<ConfigMap>;
}

/// Facts about where the pod runs that the downward API can expose.
#[derive(Debug, Clone)]
pub struct Placement<'a> {
    /// `status.hostIP`.
    pub host_ip: &'a str,
    /// `status.podIP`.
    pub pod_ip: &'a str,
    /// Node allocatable, the default for unset limits in `resourceFieldRef`.
    pub allocatable: &'a BTreeMap<String, Milli>,
    /// Service variables every container starts with (the `kubernetes` service's
    /// `KUBERNETES_SERVICE_HOST`...); the pod's own env overrides them.
    pub service_env: &'a [(String, String)],
}

/// The variables the kubelet defines for the `kubernetes` service, pointing at `api`.
pub fn service_env(api: std::net::SocketAddr) -> Vec<(String, String)> {
    let (host, port) = (api.ip().to_string(), api.port());
    let url = format!("tcp://{host}:{port}");
    [
        ("KUBERNETES_SERVICE_HOST", host.clone()),
        ("KUBERNETES_SERVICE_PORT", port.to_string()),
        ("KUBERNETES_SERVICE_PORT_HTTPS", port.to_string()),
        ("KUBERNETES_PORT", url.clone()),
        (&*format!("KUBERNETES_PORT_{port}_TCP"), url),
        (
            &*format!("KUBERNETES_PORT_{port}_TCP_PROTO"),
            "tcp".to_string(),
        ),
        (
            &*format!("KUBERNETES_PORT_{port}_TCP_PORT"),
            port.to_string(),
        ),
        (&*format!("KUBERNETES_PORT_{port}_TCP_ADDR"), host),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// Why a container's config cannot be generated (reason `CreateContainerConfigError`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// `PATH` a container gets when the pod does not set one (images usually set it).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Resolves the container's environment, in first-definition order.
pub fn environment(
    pod: &Pod,
    container: &Container,
    objects: &dyn Objects,
    placement: &Placement<'_>,
) -> Result<Vec<(String, String)>, ConfigError> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let mut env: Vec<(String, String)> = placement.service_env.to_vec();
    let set = |env: &mut Vec<(String, String)>, k: String, v: String| match env
        .iter_mut()
        .find(|(name, _)| *name == k)
    {
        Some(slot) => slot.1 = v,
        None => env.push((k, v)),
    };
    for from in container.env_from.iter().flatten() {
        let prefix = from.prefix.as_deref().unwrap_or("");
        if let Some(r) = &from.config_map_ref {
            let optional = r.optional.unwrap_or(false);
            match objects.config_map(ns, &r.name) {
                Some(cm) => {
                    for (k, v) in cm.data.iter().flatten() {
                        set(&mut env, format!("{prefix}{k}"), v.clone());
                    }
                }
                None if optional => {}
                None => return Err(ConfigError(format!("configmap \"{}\" not found", r.name))),
            }
        }
        if let Some(r) = &from.secret_ref {
            let optional = r.optional.unwrap_or(false);
            match objects.secret(ns, &r.name) {
                Some(s) => {
                    for (k, v) in secret_data(&s) {
                        set(&mut env, format!("{prefix}{k}"), lossy(&v));
                    }
                }
                None if optional => {}
                None => return Err(ConfigError(format!("secret \"{}\" not found", r.name))),
            }
        }
    }
    for var in container.env.iter().flatten() {
        let value = var.value.as_deref().unwrap_or("");
        let resolved = if !value.is_empty() {
            let snapshot = &env;
            expand(value, |name| lookup(snapshot, name))
        } else if let Some(from) = &var.value_from {
            if let Some(f) = &from.field_ref {
                field_value(pod, f, placement)?
            } else if let Some(r) = &from.resource_field_ref {
                resource_value(pod, container, r, placement)?
            } else if let Some(r) = &from.config_map_key_ref {
                let optional = r.optional.unwrap_or(false);
                match objects.config_map(ns, &r.name) {
                    None if optional => continue,
                    None => return Err(ConfigError(format!("configmap \"{}\" not found", r.name))),
                    Some(cm) => match cm.data.as_ref().and_then(|d| d.get(&r.key)) {
                        Some(v) => v.clone(),
                        None => match cm.binary_data.as_ref().and_then(|d| d.get(&r.key)) {
                            Some(b) => lossy(&b.0),
                            None if optional => continue,
                            None => {
                                return Err(ConfigError(format!(
                                    "couldn't find key {} in ConfigMap {ns}/{}",
                                    r.key, r.name
                                )))
                            }
                        },
                    },
                }
            } else if let Some(r) = &from.secret_key_ref {
                let optional = r.optional.unwrap_or(false);
                match objects.secret(ns, &r.name) {
                    None if optional => continue,
                    None => return Err(ConfigError(format!("secret \"{}\" not found", r.name))),
                    Some(s) => match secret_data(&s).remove(&r.key) {
                        Some(v) => lossy(&v),
                        None if optional => continue,
                        None => {
                            return Err(ConfigError(format!(
                                "couldn't find key {} in Secret {ns}/{}",
                                r.key, r.name
                            )))
                        }
                    },
                }
            } else {
                String::new()
            }
        } else {
            String::new()
        };
        set(&mut env, var.name.clone(), resolved);
    }
    Ok(env)
}

/// Command and args with `$(VAR)` expanded against the final environment.
///
/// The sim has no images, so there is no ENTRYPOINT: `command` is the program, and a
/// container with only `args` runs its args (as Docker does for an image without an
/// ENTRYPOINT). `None` means there is nothing to run.
pub fn argv(container: &Container, env: &[(String, String)]) -> Option<Vec<String>> {
    let ex = |s: &String| expand(s, |name| lookup(env, name));
    let mut argv: Vec<String> = container.command.iter().flatten().map(ex).collect();
    argv.extend(container.args.iter().flatten().map(ex));
    (!argv.is_empty()).then_some(argv)
}

fn lookup(env: &[(String, String)], name: &str) -> Option<String> {
    env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
}

/// A Secret's data, with `stringData` folded in as the API server would.
pub fn secret_data(s: &Secret) -> BTreeMap<String, Vec<u8>> {
    let mut out: BTreeMap<String, Vec<u8>> = s
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect();
    for (k, v) in s.string_data.iter().flatten() {
        out.insert(k.clone(), v.clone().into_bytes());
    }
    out
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `podFieldSelectorRuntimeValue` / `ExtractFieldPathAsString` for env and downward API.
pub fn field_value(
    pod: &Pod,
    f: &ObjectFieldSelector,
    placement: &Placement<'_>,
) -> Result<String, ConfigError> {
    let meta = &pod.metadata;
    let spec = pod.spec.as_ref();
    let path = f.field_path.as_str();
    let map_key = |prefix: &str| -> Option<String> {
        let rest = path
            .strip_prefix(prefix)?
            .strip_prefix("['")?
            .strip_suffix("']")?;
        Some(rest.to_string())
    };
    Ok(match path {
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => meta.namespace.clone().unwrap_or_default(),
        "metadata.uid" => meta.uid.clone().unwrap_or_default(),
        "metadata.labels" => format_map(meta.labels.as_ref()),
        "metadata.annotations" => format_map(meta.annotations.as_ref()),
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()).unwrap_or_default(),
        "spec.serviceAccountName" => spec
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_default(),
        "status.hostIP" | "status.hostIPs" => placement.host_ip.to_string(),
        "status.podIP" | "status.podIPs" => placement.pod_ip.to_string(),
        _ => {
            if let Some(k) = map_key("metadata.labels") {
                meta.labels
                    .as_ref()
                    .and_then(|m| m.get(&k).cloned())
                    .unwrap_or_default()
            } else if let Some(k) = map_key("metadata.annotations") {
                meta.annotations
                    .as_ref()
                    .and_then(|m| m.get(&k).cloned())
                    .unwrap_or_default()
            } else {
                return Err(ConfigError(format!("unsupported fieldPath: {path}")));
            }
        }
    })
}

/// `fieldpath.FormatMap`: sorted `key="value"` lines, values quoted like Go's `%q`.
pub fn format_map(m: Option<&BTreeMap<String, String>>) -> String {
    m.into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", go_quote(v)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Go's `strconv.Quote` for the characters labels and annotations can hold.
fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `resourceFieldRef` for `container` (or the one it names), limits defaulting to the
/// node's allocatable, divided by the divisor and rounded up.
pub fn resource_value(
    pod: &Pod,
    container: &Container,
    r: &ResourceFieldSelector,
    placement: &Placement<'_>,
) -> Result<String, ConfigError> {
    let target = match r.container_name.as_deref().filter(|n| !n.is_empty()) {
        None => container,
        Some(name) => pod
            .spec
            .iter()
            .flat_map(|s| {
                s.containers
                    .iter()
                    .chain(s.init_containers.iter().flatten())
            })
            .find(|c| c.name == name)
            .ok_or_else(|| ConfigError(format!("container {name} not found")))?,
    };
    let (kind, resource) = r
        .resource
        .split_once('.')
        .ok_or_else(|| ConfigError(format!("unsupported container resource : {}", r.resource)))?;
    let res = target.resources.as_ref();
    let pick =
        |m: Option<&BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>| {
            m.and_then(|m| m.get(resource))
                .and_then(|q| quantity::parse(&q.0).ok())
        };
    let value = match kind {
        "limits" => pick(res.and_then(|r| r.limits.as_ref()))
            .or_else(|| placement.allocatable.get(resource).copied())
            .unwrap_or_default(),
        "requests" => pick(res.and_then(|r| r.requests.as_ref()))
            .or_else(|| pick(res.and_then(|r| r.limits.as_ref())))
            .unwrap_or_default(),
        _ => {
            return Err(ConfigError(format!(
                "unsupported container resource : {}",
                r.resource
            )))
        }
    };
    let divisor = r
        .divisor
        .as_ref()
        .and_then(|q| quantity::parse(&q.0).ok())
        .filter(|d| d.0 > 0)
        .unwrap_or(Milli(1000));
    let n = if resource == "cpu" {
        quantity::ceil_div(value.0, divisor.0)
    } else {
        quantity::ceil_div(value.ceil_units(), divisor.ceil_units().max(1))
    };
    Ok(n.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Store {
        secrets: Vec<Secret>,
        config_maps: Vec<ConfigMap>,
    }

    impl Objects for Store {
        fn secret(&self, ns: &str, name: &str) -> Option<Secret> {
            self.secrets
                .iter()
                .find(|s| {
                    s.metadata.name.as_deref() == Some(name)
                        && s.metadata.namespace.as_deref() == Some(ns)
                })
                .cloned()
        }
        fn config_map(&self, ns: &str, name: &str) -> Option<ConfigMap> {
            self.config_maps
                .iter()
                .find(|s| {
                    s.metadata.name.as_deref() == Some(name)
                        && s.metadata.namespace.as_deref() == Some(ns)
                })
                .cloned()
        }
    }

    fn store() -> Store {
        Store {
            secrets: vec![serde_yaml_ng::from_str(
                "metadata: {name: creds, namespace: ns}\ndata: {user: YWRtaW4=, pass: czNjcjN0}",
            )
            .expect("secret parses")],
            config_maps: vec![serde_yaml_ng::from_str(
                "metadata: {name: settings, namespace: ns}\ndata: {MODE: fast, LEVEL: '3'}",
            )
            .expect("configmap parses")],
        }
    }

    fn pod() -> Pod {
        serde_yaml_ng::from_str(
            r#"
metadata: {name: p, namespace: ns, uid: u-1, labels: {app: web, tier: "a\"b"}, annotations: {note: hi}}
spec:
  nodeName: podrun-sim
  serviceAccountName: default
  containers:
  - name: main
    image: busybox
    command: [sh, -c, "echo $(GREETING) $$(GREETING) $(MISSING)"]
    args: ["$(CFG_MODE)"]
    resources: {limits: {memory: 64Mi}, requests: {cpu: 250m}}
    envFrom:
    - {configMapRef: {name: settings}, prefix: CFG_}
    - {secretRef: {name: creds}}
    env:
    - {name: NAME, value: world}
    - {name: GREETING, value: "hello $(NAME) $(user)"}
    - {name: POD, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
    - {name: APP, valueFrom: {fieldRef: {fieldPath: "metadata.labels['app']"}}}
    - {name: NODE, valueFrom: {fieldRef: {fieldPath: spec.nodeName}}}
    - {name: IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
    - {name: MEM, valueFrom: {resourceFieldRef: {resource: limits.memory, divisor: 1Mi}}}
    - {name: CPU, valueFrom: {resourceFieldRef: {resource: requests.cpu, divisor: 1m}}}
    - {name: CPU_LIMIT, valueFrom: {resourceFieldRef: {resource: limits.cpu}}}
    - {name: PASS, valueFrom: {secretKeyRef: {name: creds, key: pass}}}
    - {name: LEVEL, valueFrom: {configMapKeyRef: {name: settings, key: LEVEL}}}
    - {name: OPT, valueFrom: {secretKeyRef: {name: nope, key: x, optional: true}}}
"#,
        )
        .expect("pod parses")
    }

    #[test]
    fn resolves_env_from_every_source_in_order() {
        let p = pod();
        let alloc = BTreeMap::from([("cpu".to_string(), Milli(4000))]);
        let placement = Placement {
            host_ip: "127.0.0.1",
            pod_ip: "127.0.0.1",
            allocatable: &alloc,
            service_env: &[],
        };
        let c = &p.spec.as_ref().expect("spec").containers[0];
        let env = environment(&p, c, &store(), &placement).expect("resolves");
        let got: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(
            got,
            [
                "CFG_LEVEL=3",
                "CFG_MODE=fast",
                "pass=s3cr3t",
                "user=admin",
                "NAME=world",
                "GREETING=hello world admin",
                "POD=p",
                "APP=web",
                "NODE=podrun-sim",
                "IP=127.0.0.1",
                "MEM=64",
                "CPU=250",
                "CPU_LIMIT=4",
                "PASS=s3cr3t",
                "LEVEL=3",
            ]
        );
        assert_eq!(
            argv(c, &env),
            Some(vec![
                "sh".to_string(),
                "-c".to_string(),
                "echo hello world admin $(GREETING) $(MISSING)".to_string(),
                "fast".to_string(),
            ])
        );
    }

    #[test]
    fn missing_objects_have_the_kubelet_messages() {
        let alloc = BTreeMap::new();
        let placement = Placement {
            host_ip: "127.0.0.1",
            pod_ip: "127.0.0.1",
            allocatable: &alloc,
            service_env: &[],
        };
        let cases = [
            (
                "{name: X, valueFrom: {secretKeyRef: {name: gone, key: k}}}",
                "secret \"gone\" not found",
            ),
            (
                "{name: X, valueFrom: {secretKeyRef: {name: creds, key: k}}}",
                "couldn't find key k in Secret ns/creds",
            ),
            (
                "{name: X, valueFrom: {configMapKeyRef: {name: gone, key: k}}}",
                "configmap \"gone\" not found",
            ),
            (
                "{name: X, valueFrom: {configMapKeyRef: {name: settings, key: k}}}",
                "couldn't find key k in ConfigMap ns/settings",
            ),
        ];
        for (var, want) in cases {
            let p: Pod = serde_yaml_ng::from_str(&format!(
                "metadata: {{name: p, namespace: ns}}\nspec: {{containers: [{{name: c, image: b, env: [{var}]}}]}}"
            ))
            .expect("pod parses");
            let c = &p.spec.as_ref().expect("spec").containers[0];
            assert_eq!(
                environment(&p, c, &store(), &placement),
                Err(ConfigError(want.to_string()))
            );
        }
    }

    #[test]
    fn format_map_quotes_like_go() {
        let p = pod();
        assert_eq!(
            format_map(p.metadata.labels.as_ref()),
            "app=\"web\"\ntier=\"a\\\"b\""
        );
    }
}
