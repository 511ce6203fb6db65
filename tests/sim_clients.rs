//! Clients nobody here wrote, against the simulator: kubectl v1.32 and the Python
//! `kubernetes` client (install both with tools/setup-sim-clients.sh). Each test starts its
//! own simulator and points the client at its 0600 kubeconfig.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use podrun::sim::{Config, Sim};

/// The API server alone: pods stay unscheduled and Pending, deletes are immediate.
fn api_only() -> Config {
    Config {
        kubelet: None,
        ..Config::default()
    }
}
use serde_json::Value;
use tokio::process::Command;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sim_clients")
        .join(name)
}

async fn kubectl(sim: &Sim, args: &[&str]) -> Output {
    Command::new("kubectl")
        .args(args)
        .env("KUBECONFIG", sim.kubeconfig_path())
        .kill_on_drop(true)
        .output()
        .await
        .expect("kubectl v1.32 must be installed (tools/setup-sim-clients.sh)")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

async fn ok(sim: &Sim, args: &[&str]) -> String {
    let o = kubectl(sim, args).await;
    assert!(o.status.success(), "kubectl {args:?} failed: {}", text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[tokio::test]
async fn kubectl_create_get_delete() {
    let sim = Sim::start(api_only()).await.expect("sim");
    let pod = data("pod.yaml");
    let pod = pod.to_str().expect("utf-8 path");
    assert_eq!(
        ok(&sim, &["create", "-f", pod, "--validate=false"])
            .await
            .trim(),
        "pod/kubectl-pod created"
    );
    let again = kubectl(&sim, &["create", "-f", pod, "--validate=false"]).await;
    assert!(!again.status.success());
    assert!(
        text(&again).contains("Error from server (AlreadyExists): error when creating"),
        "{}",
        text(&again)
    );
    assert!(text(&again).contains("pods \"kubectl-pod\" already exists"));

    let table = ok(&sim, &["get", "pods"]).await;
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().expect("header").split_whitespace().collect();
    assert_eq!(header, ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]);
    assert!(lines.next().expect("row").starts_with("kubectl-pod "));

    let json: Value =
        serde_json::from_str(&ok(&sim, &["get", "pod", "kubectl-pod", "-o", "json"]).await)
            .expect("json");
    assert_eq!(json["spec"]["dnsPolicy"], "ClusterFirst");
    assert_eq!(
        json["spec"]["containers"][0]["imagePullPolicy"],
        "IfNotPresent"
    );
    assert_eq!(json["metadata"]["labels"]["app"], "kubectl");

    assert_eq!(
        ok(&sim, &["get", "pods", "-l", "app=kubectl", "-o", "name"])
            .await
            .trim(),
        "pod/kubectl-pod"
    );
    assert_eq!(
        ok(&sim, &["get", "pods", "-l", "app!=kubectl", "-o", "name"])
            .await
            .trim(),
        ""
    );

    let missing = kubectl(&sim, &["get", "pod", "nope"]).await;
    assert_eq!(
        text(&missing).trim(),
        "Error from server (NotFound): pods \"nope\" not found"
    );

    // The pod is never scheduled here (no kubelet), so delete is immediate.
    assert_eq!(
        ok(&sim, &["delete", "pod", "kubectl-pod"]).await.trim(),
        "pod \"kubectl-pod\" deleted"
    );
    let gone = kubectl(&sim, &["get", "pod", "kubectl-pod"]).await;
    assert!(text(&gone).contains("NotFound"));
}

#[tokio::test]
async fn kubectl_typed_creates_and_namespaces() {
    let sim = Sim::start(api_only()).await.expect("sim");
    assert_eq!(
        ok(&sim, &["create", "namespace", "team"]).await.trim(),
        "namespace/team created"
    );
    ok(
        &sim,
        &[
            "create",
            "secret",
            "generic",
            "creds",
            "-n",
            "team",
            "--from-literal=user=me",
        ],
    )
    .await;
    let b64 = ok(
        &sim,
        &[
            "get",
            "secret",
            "creds",
            "-n",
            "team",
            "-o",
            "jsonpath={.data.user}",
        ],
    )
    .await;
    assert_eq!(b64, "bWU=");
    ok(
        &sim,
        &[
            "create",
            "configmap",
            "conf",
            "-n",
            "team",
            "--from-literal=k=v",
        ],
    )
    .await;
    ok(&sim, &["create", "serviceaccount", "robot", "-n", "team"]).await;
    let names = ok(&sim, &["get", "sa", "-n", "team", "-o", "name"]).await;
    assert_eq!(
        names.lines().collect::<Vec<_>>(),
        ["serviceaccount/default", "serviceaccount/robot"]
    );
    let ns = ok(
        &sim,
        &["get", "ns", "team", "-o", "jsonpath={.status.phase}"],
    )
    .await;
    assert_eq!(ns, "Active");
    ok(&sim, &["delete", "namespace", "team"]).await;
    assert!(text(&kubectl(&sim, &["get", "ns", "team"]).await).contains("NotFound"));
}

#[tokio::test]
async fn kubectl_get_watch_follows_changes() {
    let sim = Sim::start(api_only()).await.expect("sim");
    let pod = data("pod.yaml");
    let mut child = Command::new("kubectl")
        .args([
            "get",
            "pods",
            "-w",
            "--output-watch-events",
            "-o",
            "custom-columns=EVENT:.type,NAME:.object.metadata.name",
            "--request-timeout=20s",
        ])
        .env("KUBECONFIG", sim.kubeconfig_path())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("kubectl");
    tokio::time::sleep(Duration::from_millis(700)).await;
    ok(
        &sim,
        &[
            "create",
            "-f",
            pod.to_str().expect("path"),
            "--validate=false",
        ],
    )
    .await;
    ok(&sim, &["label", "pod", "kubectl-pod", "step=2"]).await;
    ok(&sim, &["delete", "pod", "kubectl-pod"]).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    child.start_kill().expect("kill");
    let out = child.wait_with_output().await.expect("output");
    let text = String::from_utf8_lossy(&out.stdout);
    let events: Vec<(String, String)> = text
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            Some((w.next()?.to_string(), w.next()?.to_string()))
        })
        .filter(|(_, n)| n == "kubectl-pod")
        .collect();
    let kinds: Vec<&str> = events.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(kinds, ["ADDED", "MODIFIED", "DELETED"], "{text}");
}

async fn python(sim: &Sim, script: &str) -> Value {
    let out = Command::new("python3")
        .arg(data(script))
        .env("KUBECONFIG", sim.kubeconfig_path())
        .kill_on_drop(true)
        .output()
        .await
        .expect("python3");
    assert!(
        out.status.success(),
        "{script} failed (install the client with tools/setup-sim-clients.sh): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or_default()).expect("one JSON line")
}

#[tokio::test]
async fn python_client_crud_errors_and_watch() {
    let sim = Sim::start(api_only()).await.expect("sim");
    let got = python(&sim, "api.py").await;
    assert_eq!(
        got["namespaces"],
        serde_json::json!(["default", "kube-node-lease", "kube-public", "kube-system"])
    );
    assert_eq!(got["dns_policy"], "ClusterFirst");
    assert_eq!(got["qos"], "BestEffort");
    assert_eq!(got["conflict"], serde_json::json!([409, "AlreadyExists"]));
    assert_eq!(
        got["not_found"],
        serde_json::json!([404, "pods \"missing\" not found"])
    );
    // Watching from the list taken after the create: only the later changes.
    assert_eq!(got["watch"], serde_json::json!(["MODIFIED", "DELETED"]));
}

#[path = "sim_api/runtime_pod.rs"]
mod runtime_pod;

#[tokio::test]
async fn kubectl_logs_and_exec() {
    let (sim, _pods, _rt, _dir) =
        runtime_pod::with_running_pod("kx", "echo one; echo two; sleep 2; echo three; sleep 30")
            .await;
    let follow = Command::new("kubectl")
        .args(["logs", "-f", "kx", "--request-timeout=20s"])
        .env("KUBECONFIG", sim.kubeconfig_path())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("kubectl logs -f");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(ok(&sim, &["logs", "kx"]).await, "one\ntwo\nthree\n");
    assert_eq!(ok(&sim, &["logs", "kx", "--tail=1"]).await, "three\n");
    let mut follow = follow;
    follow.start_kill().expect("stop following");
    let out = follow.wait_with_output().await.expect("output");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "one\ntwo\nthree\n");

    assert_eq!(
        ok(
            &sim,
            &["exec", "kx", "--", "sh", "-c", "echo exec $GREETING"]
        )
        .await,
        "exec hi\n"
    );
    let failed = kubectl(
        &sim,
        &["exec", "kx", "--", "sh", "-c", "echo bad >&2; exit 3"],
    )
    .await;
    assert_eq!(failed.status.code(), Some(3), "{}", text(&failed));
    assert!(String::from_utf8_lossy(&failed.stderr).contains("bad"));
    let mut child = Command::new("kubectl")
        .args(["exec", "-i", "kx", "--", "cat"])
        .env("KUBECONFIG", sim.kubeconfig_path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("kubectl exec -i");
    {
        use tokio::io::AsyncWriteExt;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(b"piped through\n").await.expect("write");
    }
    let out = tokio::time::timeout(Duration::from_secs(15), child.wait_with_output())
        .await
        .expect("exec -i ends at stdin EOF")
        .expect("output");
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "piped through\n");
}

#[tokio::test]
async fn python_client_logs_and_exec_stream() {
    let (sim, _pods, _rt, _dir) =
        runtime_pod::with_running_pod("px", "echo l1; echo l2; sleep 4").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let out = Command::new("python3")
        .arg(data("logs_exec.py"))
        .arg("px")
        .env("KUBECONFIG", sim.kubeconfig_path())
        .kill_on_drop(true)
        .output()
        .await
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let got: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default()).expect("json");
    assert_eq!(got["logs"], "l1\nl2\n");
    assert_eq!(got["tail"], "l2\n");
    assert_eq!(got["follow"], "l1\nl2\n");
    assert_eq!(got["exec_stdout"], "exec-out\n");
    assert_eq!(got["exec_stderr"], "exec-err\n");
    assert_eq!(got["exec_code"], 4);
    assert_eq!(got["stdin_echo"], "from python\n");
}

#[tokio::test]
async fn kubectl_with_the_process_kubelet() {
    let sim = Sim::start(Config::default())
        .await
        .expect("sim with kubelet");
    let ticker = data("ticker.yaml");
    ok(
        &sim,
        &[
            "create",
            "-f",
            ticker.to_str().expect("path"),
            "--validate=false",
        ],
    )
    .await;
    assert_eq!(
        ok(
            &sim,
            &[
                "wait",
                "--for=condition=Ready",
                "pod/ticker",
                "--timeout=30s"
            ]
        )
        .await
        .trim(),
        "pod/ticker condition met"
    );
    let wide = ok(
        &sim,
        &["get", "pod", "ticker", "-o", "wide", "--no-headers"],
    )
    .await;
    let cols: Vec<&str> = wide.split_whitespace().collect();
    assert_eq!(
        (cols[1], cols[2], cols[6]),
        ("1/1", "Running", "podrun-sim"),
        "{wide}"
    );
    assert!(ok(&sim, &["get", "nodes", "-o", "name"])
        .await
        .contains("node/podrun-sim"));
    let follow = kubectl(&sim, &["logs", "-f", "ticker", "--request-timeout=4s"]).await;
    assert!(
        String::from_utf8_lossy(&follow.stdout).starts_with("start\nmiddle\nend\n"),
        "{}",
        text(&follow)
    );
    assert_eq!(
        ok(
            &sim,
            &["exec", "ticker", "--", "sh", "-c", "echo $HOSTNAME"]
        )
        .await,
        "ticker\n"
    );
    let events = ok(
        &sim,
        &[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=ticker",
            "-o",
            "jsonpath={.items[*].reason}",
        ],
    )
    .await;
    for reason in ["Scheduled", "Pulled", "Created", "Started"] {
        assert!(
            events.split(' ').any(|r| r == reason),
            "{reason} missing in {events}"
        );
    }
    assert_eq!(
        ok(&sim, &["delete", "pod", "ticker", "--timeout=30s"])
            .await
            .trim(),
        "pod \"ticker\" deleted"
    );
    assert!(text(&kubectl(&sim, &["get", "pod", "ticker"]).await).contains("NotFound"));
}

#[tokio::test]
async fn python_client_with_the_process_kubelet() {
    let sim = Sim::start(Config::default())
        .await
        .expect("sim with kubelet");
    let got = python(&sim, "lifecycle.py").await;
    let phases: Vec<&str> = got["phases"]
        .as_array()
        .expect("phases")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(phases.first(), Some(&"Pending"));
    assert!(
        phases.contains(&"Running") && phases.last() == Some(&"Succeeded"),
        "{phases:?}"
    );
    assert_eq!(got["exec_stdout"], "from-exec\n");
    assert_eq!(got["exec_code"], 2);
    assert_eq!(got["follow"], "py-a\npy-b\n");
}
