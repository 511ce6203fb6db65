//! `podrun run TASK` and `podrun attach HANDLE`: load and build the task (bad input exits 2
//! before any request), connect, run the lifecycle, print and write the report, and map
//! the result to an exit code.
//!
//! `--local` starts an embedded simulator, runs the task against it and stops it. Signals
//! are turned into the lifecycle's interrupt here: the first SIGINT/SIGTERM deletes the pod
//! and ends as failed (130), a second one exits at once.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::{Args as ClapArgs, ValueEnum};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};

use crate::build;
use crate::cli::render::TaskArgs;
use crate::cli::{Error, Result};
use crate::exit;
use crate::run::{
    self, identity, Connection, ContainerSelection, Hooks, Kube, Mode, NoHooks, Params, Report, Ui,
};
use crate::spec::{self, Task};

/// Output format of the run's result.
#[derive(Debug, Clone, Copy, ValueEnum, Default, PartialEq, Eq)]
pub enum Output {
    /// Container output on stdout, podrun's messages on stderr (default).
    #[default]
    Text,
    /// The run report as JSON on stdout at the end; container output goes to stderr.
    Json,
}

/// `podrun run` arguments.
#[derive(Debug, Clone, ClapArgs)]
pub struct Args {
    #[command(flatten)]
    pub task: TaskArgs,
    /// Return once the pod has started, printing its handle `namespace/pod` (the
    /// operator's deferrable mode); resume with `podrun attach`.
    #[arg(long)]
    pub detach: bool,
    /// Write the run report (JSON) to this file.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// Start an embedded simulator, run the task against it, then stop it.
    #[arg(long)]
    pub local: bool,
}

/// `podrun attach` arguments.
#[derive(Debug, Clone, ClapArgs)]
pub struct AttachArgs {
    /// `namespace/pod` as printed by `podrun run --detach`, or the same task file (with
    /// the same `--run-id`).
    pub target: String,
    /// Run id (task-file form).
    #[arg(long)]
    pub run_id: Option<String>,
    /// Try number (task-file form).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub try_number: Option<u32>,
    /// Override a `params:` entry (task-file form).
    #[arg(long = "param", value_name = "KEY=VALUE")]
    pub params: Vec<String>,
    /// Kubeconfig file.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context.
    #[arg(long)]
    pub context: Option<String>,
    /// Use in-cluster configuration.
    #[arg(long)]
    pub in_cluster: bool,
    /// Platform policy file (with a task file as target): hooks the task cannot disable.
    #[arg(long, env = "PODRUN_POLICY", value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// The tenant the task runs for (with a task file as target).
    #[arg(long, env = "PODRUN_TENANT", default_value = "default")]
    pub tenant: String,
    /// Write the run report (JSON) to this file.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

/// The lifecycle parameters of a loaded task, with command-line connection overrides.
pub fn params_from_task(task: &Task, args: &TaskArgs) -> Params {
    let lc = &task.lifecycle;
    let mut p = Params::new(task.task_id.clone());
    p.base_container.clone_from(&task.pod.base_container_name);
    p.startup_timeout = lc.startup_timeout;
    p.schedule_timeout = Some(lc.schedule_timeout);
    p.container_logs = if !lc.get_logs {
        ContainerSelection::None
    } else {
        selection(&lc.container_logs)
    };
    p.init_container_logs = lc
        .init_container_logs
        .as_ref()
        .map(selection)
        .unwrap_or(ContainerSelection::None);
    p.log_prefix = lc.container_name_log_prefix_enabled;
    p.log_events_on_failure = lc.log_events_on_failure;
    p.log_pod_spec_on_failure = lc.log_pod_spec_on_failure;
    p.reattach_on_restart = lc.reattach_on_restart;
    p.on_finish_action = match lc.on_finish_action {
        spec::OnFinishAction::KeepPod => run::OnFinishAction::KeepPod,
        spec::OnFinishAction::DeletePod => run::OnFinishAction::DeletePod,
        spec::OnFinishAction::DeleteSucceededPod => run::OnFinishAction::DeleteSucceededPod,
        spec::OnFinishAction::DeleteActivePod => run::OnFinishAction::DeleteActivePod,
    };
    p.skip_on_exit_code.clone_from(&lc.skip_on_exit_code);
    p.do_xcom_push = task.do_xcom_push;
    p.termination_grace_period = task.pod.termination_grace_period;
    p.execution_timeout = task.execution_timeout;
    p.connection = Connection {
        in_cluster: args.in_cluster || task.connection.in_cluster.unwrap_or(false),
        kubeconfig: args
            .kubeconfig
            .clone()
            .or_else(|| task.connection.config_file.clone()),
        context: args
            .context
            .clone()
            .or_else(|| task.connection.cluster_context.clone()),
    };
    p
}

fn selection(c: &spec::ContainerLogs) -> ContainerSelection {
    match c {
        spec::ContainerLogs::All => ContainerSelection::All,
        spec::ContainerLogs::Names(n) => ContainerSelection::Names(n.clone()),
    }
}

/// Debug tracing on stderr when `PODRUN_LOG` is set (e.g. `PODRUN_LOG=podrun=debug`).
fn init_tracing() {
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_env("PODRUN_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .try_init();
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    init_tracing();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::new(exit::INFRASTRUCTURE, e))
}

/// The first SIGINT or SIGTERM; a second one ends the process at once.
async fn first_signal() -> run::Interrupt {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return std::future::pending().await;
    };
    let name = tokio::select! {
        _ = int.recv() => "SIGINT",
        _ = term.recv() => "SIGTERM",
    };
    tokio::spawn(async move {
        tokio::select! {
            _ = int.recv() => {},
            _ = term.recv() => {},
        }
        eprintln!("podrun: second signal; exiting now without waiting for cleanup");
        std::process::exit(i32::from(exit::INTERRUPTED));
    });
    run::Interrupt::Signal(name.into())
}

/// `podrun run`: the task's and the policy's hooks serve the run-time hook points.
pub fn run(args: Args) -> Result {
    run_with_hooks(args, None)
}

/// `podrun run` with `hooks` serving the run-time hook points instead of the pipeline built
/// from the task file and policy (`None`: that pipeline).
pub fn run_with_hooks(mut args: Args, hooks: Option<Arc<dyn Hooks>>) -> Result {
    let rt = runtime()?;
    rt.block_on(async move {
        // The embedded simulator lives as long as this run.
        let sim = if args.local {
            let sim = crate::sim::Sim::start(crate::sim::Config::default())
                .await
                .map_err(|e| Error::new(exit::INFRASTRUCTURE, e))?;
            args.task.kubeconfig = Some(sim.kubeconfig_path().to_path_buf());
            args.task.context = None;
            Some(sim)
        } else {
            None
        };
        // Bad input ends here, before any request.
        let (task, manifest) = args.task.load_and_build()?;
        // Hooks mutate and validate before anything is sent; a deny ends here (exit 4).
        let applied = args.task.apply_hooks(&task, manifest)?;
        let pod = build::typed(&applied.pod).map_err(|e| Error::new(exit::BAD_INPUT, e))?;
        let params = params_from_task(&task, &args.task);
        let hooks = hooks.unwrap_or_else(|| pipeline_hooks(applied, &params));
        let ui = new_ui(args.output);
        let kube = Kube::connect(&params.connection)
            .await
            .map_err(|e| Error::new(exit::INFRASTRUCTURE, run::Error::Connect(e)))?;
        let mode = if args.detach { Mode::Detach } else { Mode::Run };
        let result =
            run::execute(&kube, pod, &params, hooks, ui.clone(), mode, first_signal()).await;
        let code = finish(result, &ui, args.output, args.report.as_deref());
        if let Some(sim) = sim {
            sim.shutdown().await;
        }
        code
    })
}

fn new_ui(output: Output) -> Arc<Ui> {
    let ui = Ui::new(output == Output::Text);
    Arc::new(if output == Output::Json {
        ui.logs_to_stderr()
    } else {
        ui
    })
}

/// Print and write the report; the exit code.
fn finish(result: run::Result<Report>, ui: &Ui, output: Output, file: Option<&Path>) -> Result {
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            // No pod came to exist; the report still says why, for machines.
            let code = e.exit_code();
            let failed = Report {
                error: Some(chain(&e)),
                exit_code_podrun: code,
                ..Report::default()
            };
            let json = serde_json::to_string_pretty(&failed).unwrap_or_default();
            if let Some(path) = file {
                let _ = std::fs::write(path, format!("{json}\n"));
            }
            if output == Output::Json {
                ui.data(&json);
            }
            return Err(Error::new(code, e));
        }
    };
    let json = serde_json::to_string_pretty(&report).unwrap_or_default();
    if let Some(path) = file {
        std::fs::write(path, format!("{json}\n")).map_err(|e| {
            Error::new(
                exit::INFRASTRUCTURE,
                format!("cannot write the report to {}: {e}", path.display()),
            )
        })?;
    }
    if output == Output::Json {
        ui.data(&json);
    }
    if let Some(err) = &report.error {
        ui.message(&format!("error: {err}"));
    }
    Ok(report.exit_code_podrun)
}

/// An error and its causes on one line.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let part = c.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        cur = c.source();
    }
    text
}

/// `podrun attach`.
pub fn attach(args: AttachArgs) -> Result {
    let rt = runtime()?;
    rt.block_on(async move {
        let conn = Connection {
            in_cluster: args.in_cluster,
            kubeconfig: args.kubeconfig.clone(),
            context: args.context.clone(),
        };
        let ui = new_ui(args.output);
        let target = Path::new(&args.target);
        let by_handle = !target.exists() && args.target.matches('/').count() == 1;
        // By handle there is no task file, so no tenant hooks; with a task file, the same
        // pipeline as `podrun run` serves the run-time points.
        let mut hooks: Arc<dyn Hooks> = Arc::new(NoHooks);
        let (kube, pod) = if by_handle {
            let kube = Kube::connect(&conn)
                .await
                .map_err(|e| Error::new(exit::INFRASTRUCTURE, run::Error::Connect(e)))?;
            let (ns, name) = args
                .target
                .split_once('/')
                .ok_or_else(|| Error::new(exit::BAD_INPUT, "expected namespace/pod"))?;
            let pod = kube
                .call(|c| async move { Api::<Pod>::namespaced(c, ns).get(name).await })
                .await
                .map_err(|source| {
                    Error::new(
                        exit::INFRASTRUCTURE,
                        run::Error::ReadPod {
                            name: name.into(),
                            source,
                        },
                    )
                })?;
            (kube, pod)
        } else {
            let task_args = TaskArgs {
                task: target.to_path_buf(),
                params: args.params.clone(),
                vars: Vec::new(),
                run_id: args.run_id.clone(),
                try_number: args.try_number,
                logical_date: None,
                kubeconfig: args.kubeconfig.clone(),
                context: args.context.clone(),
                in_cluster: args.in_cluster,
                xcom_sidecar_image: None,
                policy: args.policy.clone(),
                tenant: args.tenant.clone(),
            };
            let (task, manifest) = task_args.load_and_build()?;
            let applied = task_args.apply_hooks(&task, manifest)?;
            let built = build::typed(&applied.pod).map_err(|e| Error::new(exit::BAD_INPUT, e))?;
            let params = params_from_task(&task, &task_args);
            hooks = pipeline_hooks(applied, &params);
            let kube = Kube::connect(&params.connection)
                .await
                .map_err(|e| Error::new(exit::INFRASTRUCTURE, run::Error::Connect(e)))?;
            let pod = find_detached(&kube, &built).await?;
            (kube, pod)
        };
        let ann = pod.metadata.annotations.clone().unwrap_or_default();
        let mut params: Params = ann
            .get(identity::PARAMS_ANNOTATION)
            .and_then(|s| serde_json::from_str(s).ok())
            .ok_or_else(|| {
                Error::new(
                    exit::BAD_INPUT,
                    run::Error::Attach(format!(
                        "pod {} was not started by `podrun run --detach` (no {} annotation)",
                        pod.metadata.name.as_deref().unwrap_or(""),
                        identity::PARAMS_ANNOTATION
                    )),
                )
            })?;
        params.connection = conn;
        let cursors = ann
            .get(identity::CURSOR_ANNOTATION)
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or_default();
        let result = run::execute(
            &kube,
            pod,
            &params,
            hooks,
            ui.clone(),
            Mode::Attach(cursors),
            first_signal(),
        )
        .await;
        finish(result, &ui, args.output, args.report.as_deref())
    })
}

/// The run-time hook points served by the pipeline that mutated and validated the pod.
fn pipeline_hooks(applied: crate::hooks::Applied, params: &Params) -> Arc<dyn Hooks> {
    Arc::new(super::run_hooks::PipelineHooks::new(
        applied.pipeline,
        params.base_container.clone(),
    ))
}

/// The live, unchecked pod of the run that `built` describes.
async fn find_detached(kube: &Kube, built: &Pod) -> Result<Pod> {
    let ns = built.metadata.namespace.clone().unwrap_or_default();
    let selector = identity::find_selector(built, true)
        .ok_or_else(|| Error::new(exit::BAD_INPUT, "the built pod has no identity labels"))?;
    let lp = ListParams::default().labels(&selector);
    let list = kube
        .call(|c| {
            let (lp, ns) = (lp.clone(), ns.clone());
            async move { Api::<Pod>::namespaced(c, &ns).list(&lp).await }
        })
        .await
        .map_err(|e| Error::new(exit::INFRASTRUCTURE, run::Error::FindPod(e)))?;
    match identity::choose(list.items) {
        identity::Found::Adopt { pod, .. } | identity::Found::Finished { pod, .. } => Ok(*pod),
        identity::Found::None => Err(Error::new(
            exit::INFRASTRUCTURE,
            run::Error::Attach(format!("no unchecked pod matches {selector}")),
        )),
    }
}
