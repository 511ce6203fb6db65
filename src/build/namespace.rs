//! Namespace resolution after the merge, when neither the `namespace` parameter nor the
//! template gave one: the kubeconfig context's namespace, then the in-cluster service
//! account file, then `default`.
//!
//! This reads files only (the kubeconfig and the namespace file); it never connects.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{Error, Options};
use crate::spec::Task;

/// One kubeconfig file, read as YAML.
struct Kubeconfig {
    path: PathBuf,
    doc: Value,
}

fn read_kubeconfig(path: &Path, must_exist: bool) -> Result<Option<Kubeconfig>, Error> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if !must_exist && e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(Error::ReadKubeconfig {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let doc = serde_yaml_ng::from_str::<Option<Value>>(&text)
        .map_err(|e| Error::ParseKubeconfig {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?
        .unwrap_or(Value::Null);
    Ok(Some(Kubeconfig {
        path: path.to_path_buf(),
        doc,
    }))
}

/// The kubeconfig files in effect: `--kubeconfig`, else the task's `config_file` (both must
/// exist), else `$KUBECONFIG` / `~/.kube/config` (skipped when missing).
fn kubeconfigs(task: &Task, opts: &Options) -> Result<Vec<Kubeconfig>, Error> {
    let explicit = opts
        .kubeconfig
        .clone()
        .or_else(|| task.connection.config_file.clone());
    if let Some(p) = explicit {
        return Ok(read_kubeconfig(&p, true)?.into_iter().collect());
    }
    let mut out = Vec::new();
    for p in &opts.default_kubeconfigs {
        if let Some(k) = read_kubeconfig(p, false)? {
            out.push(k);
        }
    }
    Ok(out)
}

/// The namespace of the selected kubeconfig context, if any.
fn context_namespace(task: &Task, opts: &Options) -> Result<Option<String>, Error> {
    let files = kubeconfigs(task, opts)?;
    let wanted = opts
        .context
        .clone()
        .or_else(|| task.connection.cluster_context.clone());
    let name = match &wanted {
        Some(n) => n.clone(),
        None => {
            // The first file that sets current-context decides, as kubectl merges them.
            let current = files.iter().find_map(|k| {
                k.doc
                    .get("current-context")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
            });
            match current {
                Some(c) => c,
                None => return Ok(None),
            }
        }
    };
    for k in &files {
        let contexts = k.doc.get("contexts").and_then(Value::as_array);
        for c in contexts.into_iter().flatten() {
            if c.get("name").and_then(Value::as_str) == Some(name.as_str()) {
                return Ok(c
                    .get("context")
                    .and_then(|x| x.get("namespace"))
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string));
            }
        }
    }
    if wanted.is_some() {
        return Err(Error::ContextNotFound {
            context: name,
            files: files.iter().map(|k| k.path.clone()).collect(),
        });
    }
    Ok(None)
}

/// The namespace for a pod whose merge left none.
pub(crate) fn resolve(task: &Task, opts: &Options) -> Result<String, Error> {
    let in_cluster = opts
        .in_cluster
        .or(task.connection.in_cluster)
        .unwrap_or(false);
    if !in_cluster {
        if let Some(ns) = context_namespace(task, opts)? {
            return Ok(ns);
        }
    }
    if let Some(file) = &opts.incluster_namespace_file {
        if let Ok(text) = std::fs::read_to_string(file) {
            let ns = text.trim();
            if !ns.is_empty() {
                return Ok(ns.to_string());
            }
        }
    }
    Ok("default".to_string())
}
