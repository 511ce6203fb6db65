//! Label injector (`mutate_pod`): adds the labels in its config to the pod's metadata, plus
//! `podrun.dev/tenant` when the hook belongs to a tenant.
//!
//! Config: `{"labels": {"team": "data", ...}}`. Existing labels with the same key are
//! overwritten; a non-string config value is an error.

use podrun_guest::{log, Context, Hook, Level, Map, Value};

struct LabelInjector;

impl Hook for LabelInjector {
    fn mutate_pod(mut pod: Value, ctx: &Context) -> Result<Value, String> {
        let mut add = Map::new();
        if let Some(cfg) = ctx.config.get("labels") {
            let cfg = cfg
                .as_object()
                .ok_or_else(|| "config.labels must be an object".to_string())?;
            for (k, v) in cfg {
                let v = v
                    .as_str()
                    .ok_or_else(|| format!("config.labels.{k} must be a string"))?;
                add.insert(k.clone(), Value::String(v.to_string()));
            }
        }
        if !ctx.tenant.is_empty() {
            add.insert("podrun.dev/tenant".into(), Value::String(ctx.tenant.clone()));
        }
        let meta = pod
            .as_object_mut()
            .ok_or_else(|| "pod is not an object".to_string())?
            .entry("metadata")
            .or_insert_with(|| Value::Object(Map::new()));
        let labels = meta
            .as_object_mut()
            .ok_or_else(|| "pod.metadata is not an object".to_string())?
            .entry("labels")
            .or_insert_with(|| Value::Object(Map::new()))
            .as_object_mut()
            .ok_or_else(|| "pod.metadata.labels is not an object".to_string())?;
        let n = add.len();
        labels.extend(add);
        log(Level::Debug, &format!("label-injector: set {n} labels"));
        Ok(pod)
    }
}

podrun_guest::export!(LabelInjector: mutate_pod);
