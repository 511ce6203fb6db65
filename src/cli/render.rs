//! `podrun render TASK`: print the pod `podrun run` would create, without any network call
//! (the operator's `dry_run`). Also home of [`TaskArgs`], the task-loading flags shared
//! with `podrun run`.

use std::path::PathBuf;

use clap::{Args as ClapArgs, ValueEnum};
use serde_json::Value;

use crate::build;
use crate::cli::{Error, Result};
use crate::exit;
use crate::spec::{self, RenderVars, Task};

/// Flags that locate, render and build a task: shared by `render` and `run`.
#[derive(Debug, Clone, ClapArgs)]
pub struct TaskArgs {
    /// The task file (YAML, or JSON with a `.json` extension).
    pub task: PathBuf,
    /// Override a `params:` entry (repeatable): `--param key=value`.
    #[arg(long = "param", value_name = "KEY=VALUE")]
    pub params: Vec<String>,
    /// Set a template variable `vars.KEY` (repeatable): `--var key=value`.
    #[arg(long = "var", value_name = "KEY=VALUE")]
    pub vars: Vec<String>,
    /// Run id (default `manual__<logical date>`).
    #[arg(long)]
    pub run_id: Option<String>,
    /// Try number (default 1).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub try_number: Option<u32>,
    /// Logical date, RFC 3339 or YYYY-MM-DD (default now, UTC).
    #[arg(long)]
    pub logical_date: Option<String>,
    /// Kubeconfig file (default: the task's `config_file`, else $KUBECONFIG, else
    /// ~/.kube/config). Read only for the namespace by `render`.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context (default: the task's `cluster_context`, else current-context).
    #[arg(long)]
    pub context: Option<String>,
    /// Use in-cluster configuration (overrides the task's `in_cluster`).
    #[arg(long)]
    pub in_cluster: bool,
    /// XCom sidecar image (default: the task's `xcom_sidecar_container_image`, else alpine).
    #[arg(long)]
    pub xcom_sidecar_image: Option<String>,
    /// Platform policy file: hooks the task cannot disable, and hook limits.
    #[arg(long, env = "PODRUN_POLICY", value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// The tenant the task runs for (hook engines and limits are per tenant).
    #[arg(long, env = "PODRUN_TENANT", default_value = "default")]
    pub tenant: String,
}

impl TaskArgs {
    /// The render variables these flags describe.
    pub fn render_vars(&self) -> std::result::Result<RenderVars, spec::Error> {
        Ok(RenderVars {
            run_id: self.run_id.clone(),
            try_number: self.try_number,
            logical_date: self
                .logical_date
                .as_deref()
                .map(RenderVars::parse_logical_date)
                .transpose()?,
            params: self
                .params
                .iter()
                .map(|p| RenderVars::parse_pair(p))
                .collect::<std::result::Result<_, _>>()?,
            vars: self
                .vars
                .iter()
                .map(|p| RenderVars::parse_pair(p))
                .collect::<std::result::Result<_, _>>()?,
        })
    }

    /// The build options these flags describe (kubeconfig fallbacks from the environment).
    pub fn build_options(&self) -> build::Options {
        build::Options {
            kubeconfig: self.kubeconfig.clone(),
            context: self.context.clone(),
            in_cluster: self.in_cluster.then_some(true),
            xcom_sidecar_image: self.xcom_sidecar_image.clone(),
            ..build::Options::from_env()
        }
    }

    /// Loads the task and builds its pod; warnings go to stderr. Errors are bad input.
    pub fn load_and_build(&self) -> Result<(Task, Value)> {
        let vars = self
            .render_vars()
            .map_err(|e| Error::new(exit::BAD_INPUT, e))?;
        let task = spec::load(&self.task, &vars).map_err(|e| Error::new(exit::BAD_INPUT, e))?;
        for w in &task.warnings {
            eprintln!("warning: {}: {w}", task.file.display());
        }
        let pod = build::build_pod(&task, &self.build_options())
            .map_err(|e| Error::new(exit::BAD_INPUT, e))?;
        Ok((task, pod))
    }
}

impl TaskArgs {
    /// Runs the task's and the policy's `mutate_pod` and `validate_pod` hooks on the built
    /// pod. A broken hook file is bad input (2), a failing hook 5, a deny 4 with its reason.
    pub fn apply_hooks(&self, task: &Task, pod: Value) -> Result<crate::hooks::Applied> {
        let hook_error = |e: crate::hooks::Error| Error::new(e.exit_code(), e);
        let policy = match &self.policy {
            Some(path) => crate::hooks::Policy::load(path).map_err(hook_error)?,
            None => crate::hooks::Policy::default(),
        };
        let applied =
            crate::hooks::apply_to_pod(pod, task, &policy, &self.tenant).map_err(hook_error)?;
        if let Some(denial) = applied.denial() {
            return Err(Error::new(exit::DENIED, denial));
        }
        Ok(applied)
    }
}

/// Output format.
#[derive(Debug, Clone, Copy, ValueEnum, Default)]
pub enum Format {
    /// YAML (default).
    #[default]
    Yaml,
    /// JSON, pretty-printed.
    Json,
}

/// `podrun render` arguments.
#[derive(Debug, Clone, ClapArgs)]
pub struct Args {
    #[command(flatten)]
    pub task: TaskArgs,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Yaml)]
    pub output: Format,
}

/// Keys sorted at every level, as the operator's `yaml.dump` prints them.
fn sorted(v: Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, x)| (k, sorted(x))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

/// Prints the pod to stdout.
pub fn run(args: Args) -> Result {
    let (task, pod) = args.task.load_and_build()?;
    let pod = sorted(args.task.apply_hooks(&task, pod)?.pod);
    let text = match args.output {
        Format::Yaml => {
            serde_yaml_ng::to_string(&pod).map_err(|e| Error::new(exit::BAD_INPUT, e))?
        }
        Format::Json => {
            let mut s =
                serde_json::to_string_pretty(&pod).map_err(|e| Error::new(exit::BAD_INPUT, e))?;
            s.push('\n');
            s
        }
    };
    print!("{text}");
    Ok(exit::SUCCESS)
}
