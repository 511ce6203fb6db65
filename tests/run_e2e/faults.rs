//! Fault tests: watch drops, log-stream cuts over a long output, SIGKILL then rerun,
//! SIGTERM, execution_timeout, a pod deleted by someone else, eviction.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams};
use podrun::sim::faults::{Fault, FaultKind};

use crate::util::{finish, sh_task, Env};

/// Wait until a pod of `default` is Running; its name.
async fn running_pod(env: &Env) -> String {
    let client = env.sim.client().await.expect("client");
    let pods: Api<Pod> = Api::namespaced(client, "default");
    for _ in 0..3000 {
        let l = pods.list(&ListParams::default()).await.expect("list");
        if let Some(p) = l
            .items
            .iter()
            .find(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
        {
            return p.metadata.name.clone().expect("name");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no pod reached Running");
}

fn signal(child: &tokio::process::Child, sig: nix::sys::signal::Signal) {
    let pid = child.id().expect("child pid");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig).expect("signal");
}

#[tokio::test]
async fn watch_drops_are_resumed() {
    let env = Env::with_faults(vec![Fault::new(FaultKind::CloseWatch {
        after_events: Some(1),
        after: None,
    })
    .verb("watch")
    .path("/api/v1/namespaces/*/pods")
    .times(4)])
    .await;
    let task = env.task("t", &sh_task("watchdrop", "sleep 1; echo survived", ""));
    let out = env.run(&task, &[]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "[base] survived\n");
    assert!(
        env.sim
            .fault_counts()
            .get("close_watch")
            .copied()
            .unwrap_or(0)
            >= 1
    );
}

/// 200,000 lines, 50 cuts in the middle of a line: every line exactly once, in order.
///
/// The container writes at most 3,500 lines (about 133 kB with timestamps) a second. A
/// resume can only start at a whole second (`sinceTime`), so each cut is placed after more
/// bytes than one second of output, or no stream could ever get past it; and the output is
/// long enough (about a minute) for all 50 cuts to land.
#[tokio::test]
async fn fifty_log_cuts_over_200k_lines_lose_and_repeat_nothing() {
    let env = Env::with_faults(vec![Fault::new(FaultKind::CutLog {
        after_lines: None,
        after_bytes: Some(150_001),
        clean: false,
    })
    .path("/api/v1/namespaces/*/pods/*/log")
    .times(50)])
    .await;
    let script = r#"awk 'BEGIN { for (i = 1; i <= 200000; i++) { print i; if (i % 350 == 0) { fflush(); system("sleep 0.1") } } }'"#;
    let task = env.task(
        "t",
        &sh_task(
            "manylines",
            script,
            "container_name_log_prefix_enabled: false",
        ),
    );
    let out = env.run(&task, &[]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let mut expected = String::with_capacity(1_300_000);
    for i in 1..=200_000 {
        expected.push_str(&i.to_string());
        expected.push('\n');
    }
    if out.stdout != expected {
        let got: Vec<&str> = out.stdout.lines().collect();
        let first_bad = got
            .iter()
            .enumerate()
            .find(|(i, l)| **l != (i + 1).to_string())
            .map(|(i, l)| format!("line {} is {l:?}", i + 1));
        panic!("output differs: {} lines; {first_bad:?}", got.len());
    }
    assert_eq!(out.r("log_lines")["base"], 200_000);
    // The simulator uses a cut up only when it cuts a stream.
    assert_eq!(env.sim.fault_counts().get("cut_log"), Some(&50));
}

/// Streams that a proxy ends cleanly (no error) in the middle of the output, while the
/// container still writes: the runner does not take a clean end for the log's end. Each
/// cut comes after about two seconds of output (a resume starts at a whole second).
#[tokio::test]
async fn clean_log_cuts_while_running_lose_and_repeat_nothing() {
    let env = Env::with_faults(vec![Fault::new(FaultKind::CutLog {
        after_lines: None,
        after_bytes: Some(200_001),
        clean: true,
    })
    .path("/api/v1/namespaces/*/pods/*/log")
    .times(3)])
    .await;
    let script = r#"awk 'BEGIN { for (i = 1; i <= 20000; i++) { print i; if (i % 250 == 0) { fflush(); system("sleep 0.1") } } }'"#;
    let task = env.task(
        "t",
        &sh_task(
            "cleancuts",
            script,
            "container_name_log_prefix_enabled: false",
        ),
    );
    let out = env.run(&task, &[]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let expected: String = (1..=20_000).map(|i| format!("{i}\n")).collect();
    assert!(
        out.stdout == expected,
        "{} lines",
        out.stdout.lines().count()
    );
    assert_eq!(env.sim.fault_counts().get("cut_log"), Some(&3));
}

/// podrun SIGKILLed mid-run, run again with the same run id: it reattaches, and exactly one
/// pod ever existed.
#[tokio::test]
async fn sigkill_then_rerun_reattaches_to_the_same_pod() {
    let env = Env::start().await;
    let task = env.task("t", &sh_task("crashy", "echo start; sleep 3; echo end", ""));
    let path = task.to_str().expect("utf-8");
    let child = env
        .command(&["run", path, "--run-id", "k1"])
        .spawn()
        .expect("spawn");
    let first = running_pod(&env).await;
    signal(&child, nix::sys::signal::Signal::SIGKILL);
    let _ = child.wait_with_output().await;
    let out = env.run(&task, &["--run-id", "k1"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.r("pod_name"), first.as_str());
    assert_eq!(out.r("adopted"), true);
    assert!(out.stdout.ends_with("[base] end\n"), "{}", out.stdout);
    assert_eq!(
        env.requests("create pods"),
        1,
        "{:?}",
        env.sim.request_counts()
    );
    crate::util::assert_deleted(&env).await;
}

/// SIGTERM: the pod is deleted (even with keep_pod, as the operator's on_kill) and the run
/// ends failed with 130, never as success.
#[tokio::test]
async fn sigterm_deletes_the_pod_and_fails() {
    let env = Env::start().await;
    let task = env.task(
        "t",
        &sh_task(
            "termed",
            "sleep 600",
            "on_finish_action: keep_pod\ntermination_grace_period: 0",
        ),
    );
    let report = env.dir.path().join("r.json");
    let child = env
        .command(&[
            "run",
            task.to_str().expect("utf-8"),
            "--report",
            report.to_str().expect("utf-8"),
        ])
        .spawn()
        .expect("spawn");
    running_pod(&env).await;
    signal(&child, nix::sys::signal::Signal::SIGTERM);
    let out = finish(child, &report).await;
    assert_eq!(out.code, 130, "{}", out.stderr);
    assert_eq!(out.r("status"), "failed");
    assert_eq!(out.r("reason"), "Interrupted");
    assert_eq!(out.r("cleanup"), "deleted");
    for _ in 0..200 {
        if env.pods().await.is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("pod still exists after SIGTERM");
}

#[tokio::test]
async fn execution_timeout_deletes_the_pod() {
    let env = Env::start().await;
    let task = env.task(
        "t",
        &sh_task(
            "slow",
            "sleep 600",
            "execution_timeout: 3\ntermination_grace_period: 0",
        ),
    );
    let out = env.run(&task, &[]).await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(out.r("reason"), "ExecutionTimeout");
    assert_eq!(out.r("cleanup"), "deleted");
}

#[tokio::test]
async fn pod_deleted_by_someone_else_fails_the_run() {
    let env = Env::start().await;
    let task = env.task(
        "t",
        &sh_task(
            "victim",
            "echo before; sleep 600",
            "log_pod_spec_on_failure: false",
        ),
    );
    let report = env.dir.path().join("r.json");
    let child = env
        .command(&[
            "run",
            task.to_str().expect("utf-8"),
            "--report",
            report.to_str().expect("utf-8"),
        ])
        .spawn()
        .expect("spawn");
    let name = running_pod(&env).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let client = env.sim.client().await.expect("client");
    Api::<Pod>::namespaced(client, "default")
        .delete(&name, &DeleteParams::default().grace_period(0))
        .await
        .expect("delete");
    let out = finish(child, &report).await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(out.r("status"), "failed");
    assert!(out.stdout.contains("[base] before\n"));
}

#[tokio::test]
async fn eviction_fails_the_run_with_its_reason() {
    let env = Env::with_faults(vec![Fault::new(FaultKind::EvictRunning).path("default/*")]).await;
    let task = env.task(
        "t",
        &sh_task("evictee", "sleep 600", "log_pod_spec_on_failure: false"),
    );
    let out = env.run(&task, &[]).await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(out.r("status"), "failed");
    assert!(env.sim.fault_counts().get("evict").copied().unwrap_or(0) >= 1);
}
