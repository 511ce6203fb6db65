//! `podrun sim`: run the local Kubernetes simulator until Ctrl-C, print the kubeconfig to
//! use, and one status line per pod change.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::cli;
use crate::exit;
use crate::sim::faults::{Fault, FaultKind};
use crate::sim::store::{ChangeType, Since};
use crate::sim::{Config, Kind, Sim};

/// Run the local Kubernetes simulator (API server on 127.0.0.1 plus a process kubelet).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Port on 127.0.0.1 (default: a free one).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Write the kubeconfig here (mode 0600) instead of the simulator's temp dir.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// A fault rule: comma-separated key=value pairs, e.g.
    /// `kind=429,verb=create,path=/api/v1/namespaces/*/pods,times=2,retry_after=1`.
    /// kinds: 429 500 503 504 delay hang drop_response close_watch cut_log fail_exec evict;
    /// keys: verb path times fraction retry_after seconds after_events after_lines after_bytes
    /// clean (cut_log: end the response normally instead of aborting the connection).
    #[arg(long = "fault", value_name = "SPEC")]
    pub faults: Vec<String>,
    /// Close every watch after this many events.
    #[arg(long, value_name = "N")]
    pub close_watch_after_events: Option<u64>,
    /// Close every watch after this many seconds.
    #[arg(long, value_name = "SECONDS")]
    pub close_watch_after: Option<f64>,
    /// Cut every log stream after this many lines (the connection is aborted).
    #[arg(long, value_name = "N")]
    pub cut_logs_after_lines: Option<u64>,
    /// Cut every log stream after this many bytes, possibly mid-line (the connection is
    /// aborted).
    #[arg(long, value_name = "N")]
    pub cut_logs_after_bytes: Option<u64>,
    /// Refuse every exec handshake.
    #[arg(long)]
    pub fail_exec: bool,
    /// Images whose pull fails (ErrImagePull, then ImagePullBackOff): a glob such as
    /// `*missing*`, or a regex prefixed `re:`. Repeatable.
    #[arg(long = "image-pull-failure", value_name = "PATTERN")]
    pub image_pull_failures: Vec<String>,
    /// Serve the API only: no kubelet, pods stay Pending (works without container isolation).
    #[arg(long)]
    pub no_kubelet: bool,
}

/// Bad command-line input.
#[derive(Debug, thiserror::Error)]
#[error("--fault {spec:?}: {reason}")]
struct BadFault {
    spec: String,
    reason: String,
}

fn faults(args: &Args) -> Result<Vec<Fault>, BadFault> {
    let mut out = Vec::new();
    for spec in &args.faults {
        out.push(Fault::parse(spec).map_err(|reason| BadFault {
            spec: spec.clone(),
            reason,
        })?);
    }
    if args.close_watch_after_events.is_some() || args.close_watch_after.is_some() {
        out.push(Fault::new(FaultKind::CloseWatch {
            after_events: args.close_watch_after_events,
            after: args.close_watch_after.map(Duration::from_secs_f64),
        }));
    }
    if args.cut_logs_after_lines.is_some() || args.cut_logs_after_bytes.is_some() {
        out.push(Fault::new(FaultKind::CutLog {
            after_lines: args.cut_logs_after_lines,
            after_bytes: args.cut_logs_after_bytes,
            clean: false,
        }));
    }
    if args.fail_exec {
        out.push(Fault::new(FaultKind::FailExec));
    }
    Ok(out)
}

/// One status line for a pod: `default/web Running base=running`.
pub fn status_line(change: ChangeType, pod: &Value) -> String {
    let s = |p: &str| pod.pointer(p).and_then(Value::as_str).unwrap_or_default();
    let name = format!("{}/{}", s("/metadata/namespace"), s("/metadata/name"));
    if change == ChangeType::Deleted {
        return format!("{name} deleted");
    }
    let mut phase = s("/status/phase").to_string();
    if pod.pointer("/metadata/deletionTimestamp").is_some() {
        phase.push_str(" (terminating)");
    }
    let containers: Vec<String> = pod
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    let st = &c["state"];
                    let what = if let Some(r) = st["waiting"]["reason"].as_str() {
                        r.to_string()
                    } else if st["running"].is_object() {
                        "running".to_string()
                    } else if st["terminated"].is_object() {
                        format!("exited {}", st["terminated"]["exitCode"])
                    } else {
                        "waiting".to_string()
                    };
                    format!("{}={what}", c["name"].as_str().unwrap_or_default())
                })
                .collect()
        })
        .unwrap_or_default();
    format!("{name} {phase} {}", containers.join(" "))
        .trim_end()
        .to_string()
}

/// Run the simulator until Ctrl-C (SIGINT) or SIGTERM.
pub fn run(args: Args) -> cli::Result {
    let faults = faults(&args).map_err(|e| cli::Error::new(exit::BAD_INPUT, e))?;
    let rt =
        tokio::runtime::Runtime::new().map_err(|e| cli::Error::new(exit::INFRASTRUCTURE, e))?;
    rt.block_on(async move {
        let kubelet = (!args.no_kubelet).then(|| crate::sim::kubelet::Config {
            image_pull_failures: args.image_pull_failures.clone(),
            ..crate::sim::kubelet::Config::default()
        });
        let config = Config {
            port: args.port,
            kubeconfig: args.kubeconfig.clone(),
            faults,
            kubelet,
            ..Config::default()
        };
        let sim = Sim::start(config).await.map_err(|e| {
            // Say plainly when it is isolation that is missing, and what still works.
            if matches!(e, crate::sim::Error::Runtime(_)) {
                eprintln!("podrun sim: containers cannot be isolated on this machine; run as root or enable unprivileged user namespaces, or use --no-kubelet to serve the API only");
            }
            cli::Error::new(exit::INFRASTRUCTURE, e)
        })?;
        let path = sim.kubeconfig_path().display().to_string();
        println!("podrun sim serving {} (Ctrl-C to stop)", sim.base_url());
        println!("kubeconfig: {path}");
        println!("export KUBECONFIG={path}");
        let mut watch = sim
            .store()
            .watch(Kind::Pod, None, Since::Now)
            .map_err(|e| cli::Error::new(exit::INFRASTRUCTURE, e))?;
        let mut last = std::collections::HashMap::new();
        // Registered once: a listener made afresh in each turn of the loop would miss a
        // signal that arrives between two turns (and tokio has replaced the default
        // action, so the process would not stop at all).
        let signal = |kind| {
            tokio::signal::unix::signal(kind).map_err(|e| cli::Error::new(exit::INFRASTRUCTURE, e))
        };
        let mut sigint = signal(tokio::signal::unix::SignalKind::interrupt())?;
        let mut sigterm = signal(tokio::signal::unix::SignalKind::terminate())?;
        loop {
            tokio::select! {
                _ = sigint.recv() => break,
                _ = sigterm.recv() => break,
                c = watch.next() => match c {
                    Some(c) => {
                        let line = status_line(c.change, &c.object);
                        let key = (c.namespace.clone(), c.name.clone());
                        // Print only when the visible status changed.
                        if last.get(&key) != Some(&line) {
                            println!("{line}");
                            last.insert(key, line);
                        }
                    }
                    None => {
                        watch = sim
                            .store()
                            .watch(Kind::Pod, None, Since::Now)
                            .map_err(|e| cli::Error::new(exit::INFRASTRUCTURE, e))?;
                    }
                },
            }
        }
        println!("stopping");
        sim.shutdown().await;
        Ok(exit::SUCCESS)
    })
}
