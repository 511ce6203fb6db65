//! Task files: the model, Jinja templating and validation. Pure: reads the task file and
//! its pod template file, nothing else; no network, no hooks.
//!
//! A task file is YAML or JSON whose top-level keys are the KubernetesPodOperator's
//! constructor parameters (snake_case) plus `task_id`, `params`, `hooks`,
//! `execution_timeout` and the XCom sidecar settings; Kubernetes objects inside are written
//! as in a pod manifest (camelCase). See `docs/TASKFILE.md`.
//!
//! What callers get: [`load`] gives a [`Task`] — `task.pod` ([`PodParams`], consumed by
//! `build::build_pod`), `task.lifecycle` ([`Lifecycle`]: timeouts, log selection,
//! `on_finish_action`, `skip_on_exit_code`, ...), `task.connection` ([`Connection`]),
//! `task.hooks` ([`HookDecl`]s), `task.identity` ([`RunIdentity`]: run id, try number,
//! logical date), `task.execution_timeout` and `task.warnings` (print them). Nothing in a
//! `Task` needs more validation.
//!
//! # Usage
//!
//! ```no_run
//! let vars = podrun::spec::RenderVars::default();
//! let task = podrun::spec::load(std::path::Path::new("examples/hello.yaml"), &vars)?;
//! let pod = podrun::build::build_pod(&task, &podrun::build::Options::default())?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Errors
//!
//! Every [`Error`] is bad input (exit code 2) and names the file, the key path and what was
//! expected; all problems of a file are reported together.

mod error;
mod hooks;
mod keys;
mod kube;
mod lifecycle;
pub mod names;
mod parse;
mod path;
mod task;
mod template;
mod vars;

use std::path::Path;

pub use error::{Error, Problem, Result};
pub use hooks::{HookDecl, HookPoint, HookSource, OnError};
pub use keys::{IGNORED_KEYS, LIFECYCLE_KEYS, PODRUN_KEYS, POD_KEYS};
pub use lifecycle::{ContainerLogs, Lifecycle, OnFinishAction, OnKillAction};
pub use path::KeyPath;
pub use task::{Connection, DeployType, PodParams, SecretDecl, Task};
pub use vars::{RenderVars, RunIdentity};

/// Reads, renders and validates the task file at `path`.
pub fn load(path: &Path, vars: &RenderVars) -> Result<Task> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        file: path.to_path_buf(),
        source,
    })?;
    load_str(path, &text, vars)
}

/// Like [`load`], with the file's text already read. `path` names the file in messages,
/// decides YAML vs JSON (`.json`), and anchors relative paths (`pod_template_file`,
/// `config_file`, hook files).
pub fn load_str(path: &Path, text: &str, vars: &RenderVars) -> Result<Task> {
    let doc = parse::parse_document(path, text)?;
    parse::task_from_document(path, doc, vars)
}
