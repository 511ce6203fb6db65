//! Hooks through the real lifecycle: `podrun run --local` with tenant hooks at every run-time
//! point, and a platform policy that denies a pod before anything is created.

use std::path::{Path, PathBuf};
use std::process::Command;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/run_hooks")
        .join(name)
}

fn podrun() -> Command {
    Command::new(env!("CARGO_BIN_EXE_podrun"))
}

#[test]
fn tenant_hooks_filter_logs_transform_xcom_and_decide() {
    let dir = tempfile::tempdir().expect("tempdir");
    let report = dir.path().join("report.json");
    let out = podrun()
        .arg("run")
        .arg(data("task.yaml"))
        .args(["--local", "--report"])
        .arg(&report)
        .output()
        .expect("run podrun");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // decide: exit code 99 becomes a skip, with the hook's reason.
    assert_eq!(
        out.status.code(),
        Some(3),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    // filter_log: the secret is redacted before it is written; other lines untouched.
    assert!(stdout.contains("[base] password=*** ok"), "{stdout}");
    assert!(stdout.contains("[base] plain line"), "{stdout}");
    assert!(!stdout.contains("hunter2"), "{stdout}");

    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report).expect("report")).expect("json");
    assert_eq!(report["status"], "skipped");
    assert_eq!(report["exit_code"], 99);
    assert_eq!(report["message"], "exit code 99 means nothing to do");
    // process_xcom: only `rows` kept, wrapped with provenance.
    assert_eq!(
        report["xcom"],
        serde_json::json!({"value": {"rows": 42}, "task_id": "hooked", "try_number": 1})
    );
    // Every hook's decision is in the report, mutate_pod with the paths it changed.
    let hooks = report["hooks"].as_array().expect("hooks array");
    let point = |p: &str| {
        hooks
            .iter()
            .find(|h| h["point"] == p && h["hook"].is_object())
    };
    let mutate = point("mutate_pod").expect("mutate_pod record");
    assert!(mutate["paths"]
        .as_array()
        .expect("paths")
        .iter()
        .any(|p| p == "metadata.labels.team"));
    assert_eq!(
        point("filter_log").expect("filter_log record")["replaced"],
        1
    );
    assert!(point("process_xcom").is_some());
    assert!(point("decide").is_some());
}

#[test]
fn platform_policy_denies_before_anything_is_created() {
    let out = podrun()
        .arg("run")
        .arg(data("denied.yaml"))
        .arg("--local")
        .arg("--policy")
        .arg(data("policy.yaml"))
        .output()
        .expect("run podrun");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(4),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stderr.contains("privileged"), "{stderr}");
    // Nothing ran: the container's output never appears.
    assert!(!stdout.contains("should never run"), "{stdout}");
}
