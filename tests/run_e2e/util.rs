//! Test harness: a fresh simulator per test, task files in a temp dir, and the real
//! `podrun` binary run against the simulator's kubeconfig.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use podrun::sim::faults::Fault;
use podrun::sim::{Config, Sim};
use serde_json::Value;

/// A simulator plus a scratch directory.
pub struct Env {
    pub sim: Sim,
    pub dir: tempfile::TempDir,
}

/// What a podrun process did.
#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub report: Value,
}

impl Out {
    /// The report's field, for short assertions.
    pub fn r(&self, key: &str) -> &Value {
        &self.report[key]
    }
}

impl Env {
    pub async fn start() -> Env {
        Env::with_faults(Vec::new()).await
    }

    pub async fn with_faults(faults: Vec<Fault>) -> Env {
        // The simulator runs its process kubelet by default.
        let sim = Sim::start(Config {
            faults,
            ..Config::default()
        })
        .await
        .expect("simulator starts (run tools/setup-sim.sh)");
        Env {
            sim,
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// Write a task file named `name` with `yaml`.
    pub fn task(&self, name: &str, yaml: &str) -> PathBuf {
        let p = self.dir.path().join(format!("{name}.yaml"));
        std::fs::write(&p, yaml).expect("write task file");
        p
    }

    pub fn kubeconfig(&self) -> String {
        self.sim.kubeconfig_path().display().to_string()
    }

    /// The `podrun` command with the simulator's kubeconfig.
    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_podrun"));
        cmd.args(args)
            .arg("--kubeconfig")
            .arg(self.kubeconfig())
            .env_remove("KUBECONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd
    }

    /// `podrun run TASK ARGS... --report FILE`, to completion (bounded).
    pub async fn run(&self, task: &std::path::Path, extra: &[&str]) -> Out {
        let report = self
            .dir
            .path()
            .join(format!("report-{}.json", rand_suffix()));
        let mut args = vec!["run", task.to_str().expect("utf-8 path")];
        args.extend_from_slice(extra);
        args.push("--report");
        let rp = report.display().to_string();
        args.push(&rp);
        let child = self.command(&args).spawn().expect("podrun starts");
        finish(child, &report).await
    }

    /// `podrun attach TARGET`.
    pub async fn attach(&self, target: &str) -> Out {
        let report = self
            .dir
            .path()
            .join(format!("report-{}.json", rand_suffix()));
        let rp = report.display().to_string();
        let child = self
            .command(&["attach", target, "--report", &rp])
            .spawn()
            .expect("podrun starts");
        finish(child, &report).await
    }

    /// Every pod in `default`.
    pub async fn pods(&self) -> Vec<Pod> {
        let client = self.sim.client().await.expect("client");
        Api::<Pod>::namespaced(client, "default")
            .list(&ListParams::default())
            .await
            .expect("list pods")
            .items
    }

    /// Sum of the simulator's request counters whose key starts with `prefix`.
    pub fn requests(&self, prefix: &str) -> u64 {
        self.sim
            .request_counts()
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(_, v)| *v)
            .sum()
    }
}

/// Requests counted against issue 4's per-task budget: all of them but the events watch,
/// which starts only for a pod still starting after a second (a loaded machine can cause
/// that).
pub fn budgeted_requests(counts: &std::collections::BTreeMap<String, u64>) -> u64 {
    counts
        .iter()
        .filter(|(k, _)| k.as_str() != "watch events")
        .map(|(_, v)| v)
        .sum()
}

fn rand_suffix() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Wait for the child (at most 3 minutes) and read its report.
pub async fn finish(child: tokio::process::Child, report: &std::path::Path) -> Out {
    let out = tokio::time::timeout(Duration::from_secs(180), child.wait_with_output())
        .await
        .expect("podrun finishes within 3 minutes")
        .expect("podrun output");
    let report = std::fs::read_to_string(report)
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or(Value::Null);
    let o = Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        report,
    };
    if std::env::var_os("PODRUN_TEST_VERBOSE").is_some() {
        eprintln!(
            "--- exit {}\n--- stdout\n{}\n--- stderr\n{}",
            o.code, o.stdout, o.stderr
        );
    }
    o
}

/// A task file body: `task_id`, a shell command for the base container, and extra keys.
pub fn sh_task(task_id: &str, script: &str, extra: &str) -> String {
    format!(
        "task_id: {task_id}\nimage: alpine\ncmds: [\"sh\", \"-c\"]\narguments: [{}]\n{extra}\n",
        serde_json::to_string(script).expect("json string")
    )
}

/// Every pod is gone, or at least being deleted (a sidecar may hold it in its grace period).
pub async fn assert_deleted(env: &Env) {
    for _ in 0..100 {
        let pods = env.pods().await;
        if pods.is_empty() {
            return;
        }
        if pods.iter().all(|p| p.metadata.deletion_timestamp.is_some()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "pods left undeleted: {:?}",
        env.pods()
            .await
            .iter()
            .map(|p| p.metadata.name.clone())
            .collect::<Vec<_>>()
    );
}
