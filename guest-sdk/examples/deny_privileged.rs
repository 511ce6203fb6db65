//! Deny-privileged-pods policy (`validate_pod`): denies a pod any of whose containers
//! (init, regular or ephemeral) is privileged, allows privilege escalation, adds
//! capabilities in `config.forbidden_capabilities` (default `SYS_ADMIN`, `NET_ADMIN`,
//! `ALL`), or which uses the host's network, PID or IPC namespace. Warns when a container
//! does not set `runAsNonRoot`.

use podrun_guest::{Context, Hook, Value, Verdict};

struct DenyPrivileged;

fn containers(pod: &Value) -> impl Iterator<Item = &Value> {
    let spec = &pod["spec"];
    ["initContainers", "containers", "ephemeralContainers"]
        .into_iter()
        .filter_map(move |k| spec.get(k).and_then(|c| c.as_array()))
        .flatten()
}

impl Hook for DenyPrivileged {
    fn validate_pod(pod: &Value, ctx: &Context) -> Result<Verdict, String> {
        let forbidden: Vec<String> = match ctx.config.get("forbidden_capabilities") {
            Some(Value::Array(a)) => a.iter().filter_map(|v| v.as_str().map(String::from)).collect(),
            _ => vec!["SYS_ADMIN".into(), "NET_ADMIN".into(), "ALL".into()],
        };
        for key in ["hostNetwork", "hostPID", "hostIPC"] {
            if pod["spec"][key].as_bool() == Some(true) {
                return Ok(Verdict::deny(format!("spec.{key} is not allowed")));
            }
        }
        let mut warnings = Vec::new();
        for c in containers(pod) {
            let name = c["name"].as_str().unwrap_or("?");
            let sc = &c["securityContext"];
            if sc["privileged"].as_bool() == Some(true) {
                return Ok(Verdict::deny(format!("container {name:?} is privileged")));
            }
            if sc["allowPrivilegeEscalation"].as_bool() == Some(true) {
                return Ok(Verdict::deny(format!(
                    "container {name:?} allows privilege escalation"
                )));
            }
            if let Some(add) = sc["capabilities"]["add"].as_array() {
                for cap in add.iter().filter_map(|c| c.as_str()) {
                    if forbidden.iter().any(|f| f.eq_ignore_ascii_case(cap)) {
                        return Ok(Verdict::deny(format!(
                            "container {name:?} adds capability {cap}"
                        )));
                    }
                }
            }
            if sc["runAsNonRoot"].as_bool() != Some(true)
                && pod["spec"]["securityContext"]["runAsNonRoot"].as_bool() != Some(true)
            {
                warnings.push(format!("container {name:?} does not set runAsNonRoot"));
            }
        }
        let mut v = Verdict::allow();
        v.warnings = warnings;
        Ok(v)
    }
}

podrun_guest::export!(DenyPrivileged: validate_pod);
