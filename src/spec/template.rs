//! Jinja rendering of the operator's template fields, with the operator's reach: which
//! fields are templated and, inside Kubernetes objects, which nested fields
//! (`V1EnvVar.name/value`, `V1Volume.name`, `persistentVolumeClaim.claimName`, ...).
//!
//! Undefined variables are errors (strict undefined). The environment has no loader, no
//! filesystem and no host environment: the only inputs are the [`RunIdentity`], `params`
//! and `vars`.

use minijinja::{Environment, UndefinedBehavior};
use serde_json::{Map, Value};

use super::error::Problem;
use super::path::KeyPath;
use super::vars::RunIdentity;

/// The operator's `template_fields` (plus `configmaps`, which the operator folds into the
/// templated `env_from` before rendering).
pub(crate) const TEMPLATE_FIELDS: &[&str] = &[
    "image",
    "name",
    "hostname",
    "cmds",
    "annotations",
    "arguments",
    "env_vars",
    "labels",
    "config_file",
    "pod_template_file",
    "pod_template_dict",
    "namespace",
    "container_resources",
    "volumes",
    "volume_mounts",
    "cluster_context",
    "env_from",
    "configmaps",
    "node_selector",
    "kubernetes_conn_id",
    "base_container_name",
    "trigger_kwargs",
];

/// Renders strings against one run's variables.
pub(crate) struct Renderer {
    env: Environment<'static>,
    ctx: minijinja::Value,
}

impl Renderer {
    /// A renderer for `identity` with the given `params` and `vars`.
    pub fn new(
        identity: &RunIdentity,
        params: &Map<String, Value>,
        vars: &Map<String, Value>,
    ) -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        let ts_nodash = identity.logical_date.strftime("%Y%m%dT%H%M%S").to_string();
        let ctx = minijinja::context! {
            task_id => identity.task_id.clone(),
            run_id => identity.run_id.clone(),
            try_number => identity.try_number,
            ds => identity.ds.clone(),
            ds_nodash => identity.ds.replace('-', ""),
            ts => identity.ts.clone(),
            ts_nodash => ts_nodash,
            params => minijinja::Value::from_serialize(params),
            vars => minijinja::Value::from_serialize(vars),
        };
        Renderer { env, ctx }
    }

    fn render_str(&self, text: &str, path: &KeyPath) -> Result<String, Problem> {
        self.env.render_str(text, &self.ctx).map_err(|e| {
            let hint = if e.kind() == minijinja::ErrorKind::UndefinedError {
                "; the variables are task_id, run_id, try_number, ds, ds_nodash, ts, ts_nodash, params.KEY (params: or --param) and vars.KEY (--var)"
            } else {
                ""
            };
            Problem {
                path: path.clone(),
                message: format!("template error in {text:?}: {}{hint}", describe(&e)),
            }
        })
    }

    /// Airflow's generic `render_template`: strings rendered, lists item by item, maps by
    /// value (keys are not rendered), other scalars untouched.
    fn render_all(&self, v: &mut Value, path: &KeyPath, problems: &mut Vec<Problem>) {
        match v {
            Value::String(s) => match self.render_str(s, path) {
                Ok(r) => *s = r,
                Err(p) => problems.push(p),
            },
            Value::Array(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    self.render_all(item, &path.index(i), problems);
                }
            }
            Value::Object(map) => {
                for (k, item) in map.iter_mut() {
                    self.render_all(item, &path.key(k), problems);
                }
            }
            _ => {}
        }
    }

    /// Renders the nested field `keys` (a chain) of every object in the list `v`.
    fn render_nested(
        &self,
        v: &mut Value,
        path: &KeyPath,
        keys: &[&str],
        problems: &mut Vec<Problem>,
    ) {
        if let Value::Array(items) = v {
            for (i, item) in items.iter_mut().enumerate() {
                let mut cur = Some(item);
                let mut p = path.index(i);
                for k in keys {
                    p = p.key(k);
                    cur = cur.and_then(|c| c.get_mut(*k));
                }
                if let Some(target) = cur {
                    self.render_all(target, &p, problems);
                }
            }
        }
    }

    /// Renders one top-level task-file key the way the operator renders that template field.
    pub fn render_field(&self, key: &str, v: &mut Value, problems: &mut Vec<Problem>) {
        let path = KeyPath::root().key(key);
        match key {
            // dict env_vars become V1EnvVar(name=k, value=v) before rendering, so keys are
            // rendered too.
            "env_vars" if v.is_object() => {
                let Value::Object(map) = std::mem::take(v) else {
                    return;
                };
                let mut out = Map::new();
                for (k, mut item) in map {
                    let name = match self.render_str(&k, &path.key(&k)) {
                        Ok(n) => n,
                        Err(p) => {
                            problems.push(p);
                            k.clone()
                        }
                    };
                    self.render_all(&mut item, &path.key(&k), problems);
                    out.insert(name, item);
                }
                *v = Value::Object(out);
            }
            // A list holds EnvVar objects: the operator's nested rendering reaches only
            // their `name` and `value` (not `valueFrom`).
            "env_vars" => {
                self.render_nested(v, &path, &["name"], problems);
                self.render_nested(v, &path, &["value"], problems);
            }
            "volumes" => {
                self.render_nested(v, &path, &["name"], problems);
                self.render_nested(v, &path, &["persistentVolumeClaim", "claimName"], problems);
                self.render_nested(v, &path, &["configMap", "name"], problems);
            }
            "volume_mounts" => {
                self.render_nested(v, &path, &["name"], problems);
                self.render_nested(v, &path, &["subPath"], problems);
            }
            "env_from" => self.render_nested(v, &path, &["configMapRef", "name"], problems),
            "container_resources" => {
                for part in ["limits", "requests"] {
                    if let Some(target) = v.get_mut(part) {
                        self.render_all(target, &path.key(part), problems);
                    }
                }
            }
            _ => self.render_all(v, &path, problems),
        }
    }
}

/// A template error in one line: its kind and detail, without the source dump.
fn describe(e: &minijinja::Error) -> String {
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn renderer() -> Renderer {
        let id = RunIdentity {
            task_id: "t1".into(),
            run_id: "r1".into(),
            try_number: 2,
            logical_date: "2016-01-01T00:00:00Z".parse().expect("ts"),
            ds: "2016-01-01".into(),
            ts: "2016-01-01T00:00:00+00:00".into(),
        };
        let params = json!({"who": "world"});
        let Value::Object(params) = params else {
            unreachable!()
        };
        Renderer::new(&id, &params, &Map::new())
    }

    #[test]
    fn renders_variables_and_strips_one_trailing_newline() {
        let r = renderer();
        let mut v = json!([
            "{{ task_id }}-{{ try_number }}",
            "{{ params.who }} {{ ds }}\n",
            3
        ]);
        let mut problems = Vec::new();
        r.render_field("arguments", &mut v, &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(v, json!(["t1-2", "world 2016-01-01", 3]));
    }

    #[test]
    fn undefined_is_an_error_with_its_path() {
        let r = renderer();
        let mut v = json!(["ok", "{{ nope }}"]);
        let mut problems = Vec::new();
        r.render_field("cmds", &mut v, &mut problems);
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].path.to_string(), "cmds[1]");
    }

    #[test]
    fn env_var_objects_render_name_and_value_only() {
        let r = renderer();
        let mut v = json!([{"name": "{{ task_id }}", "value": "{{ ds }}"},
                           {"name": "B", "valueFrom": {"fieldRef": {"fieldPath": "{{ literal }}"}}}]);
        let mut problems = Vec::new();
        r.render_field("env_vars", &mut v, &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(v[0], json!({"name": "t1", "value": "2016-01-01"}));
        assert_eq!(
            v[1]["valueFrom"]["fieldRef"]["fieldPath"],
            json!("{{ literal }}")
        );
    }

    #[test]
    fn volumes_render_only_the_operator_fields() {
        let r = renderer();
        let mut v = json!([{"name": "{{ task_id }}", "hostPath": {"path": "/{{ x }}"},
                            "persistentVolumeClaim": {"claimName": "{{ ds }}"}}]);
        let mut problems = Vec::new();
        r.render_field("volumes", &mut v, &mut problems);
        assert!(problems.is_empty());
        assert_eq!(v[0]["name"], json!("t1"));
        assert_eq!(v[0]["hostPath"]["path"], json!("/{{ x }}"));
        assert_eq!(
            v[0]["persistentVolumeClaim"]["claimName"],
            json!("2016-01-01")
        );
    }
}
