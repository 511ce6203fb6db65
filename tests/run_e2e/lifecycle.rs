//! The operator's system tests (reference section 3) that apply to a standalone runner, and
//! the start / completion / outcome / cleanup behaviour of issue 4.

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};

use crate::util::{sh_task, Env};

fn label<'a>(p: &'a Pod, k: &str) -> Option<&'a str> {
    p.metadata.labels.as_ref()?.get(k).map(String::as_str)
}

/// #3 test_working_pod, #5 test_delete_operator_pod: succeeds, logs prefixed, pod deleted,
/// report complete, few requests.
#[tokio::test]
async fn working_pod_succeeds_and_is_deleted() {
    let env = Env::start().await;
    let task = env.task("t", &sh_task("working", "echo 10", ""));
    let out = env.run(&task, &[]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "[base] 10\n");
    let counts = env.sim.request_counts();
    assert_eq!(out.r("status"), "success");
    assert_eq!(out.r("exit_code"), 0);
    assert_eq!(out.r("cleanup"), "deleted");
    assert_eq!(out.r("log_lines")["base"], 1);
    for k in ["created", "started", "finished", "cleaned"] {
        assert!(
            out.r("timestamps")[k].is_string(),
            "timestamp {k}: {}",
            out.report
        );
    }
    assert!(out.r("uid").is_string());
    crate::util::assert_deleted(&env).await;
    // Event-driven: one pod watch, no polling reads.
    assert_eq!(counts.get("watch pods"), Some(&1), "{counts:?}");
    assert_eq!(counts.get("get pods"), None, "{counts:?}");
    assert_eq!(counts.get("create pods"), Some(&1), "{counts:?}");
    // One log stream: a clean end after the container finished is the log's end.
    assert_eq!(counts.get("get pods/log"), Some(&1), "{counts:?}");
    // The budget (issue 4): 5 requests.
    let total = crate::util::budgeted_requests(&counts);
    assert!(total <= 5, "requests for a trivial task: {counts:?}");
}

/// #6 test_skip_on_specified_exit_code, and a list containing 0.
#[tokio::test]
async fn skip_on_exit_code_skips_with_the_operators_message() {
    let env = Env::start().await;
    let task = env.task("t", &sh_task("skipper", "exit 42", "skip_on_exit_code: 42"));
    let out = env.run(&task, &[]).await;
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert_eq!(out.r("status"), "skipped");
    let name = out.r("pod_name").as_str().expect("pod name").to_string();
    assert!(
        out.stderr
            .contains(&format!("Pod {name} returned exit code 42. Skipping.")),
        "{}",
        out.stderr
    );

    let task = env.task("z", &sh_task("zero", "true", "skip_on_exit_code: [0, 5]"));
    let out = env.run(&task, &[]).await;
    assert_eq!(out.code, 3, "0 is a legal skip code: {}", out.stderr);
}

/// #7 test_already_checked_on_success.
#[tokio::test]
async fn keep_pod_success_is_marked_checked() {
    let env = Env::start().await;
    let task = env.task(
        "t",
        &sh_task("keeper", "echo ok", "on_finish_action: keep_pod"),
    );
    let out = env.run(&task, &[]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.r("cleanup"), "kept");
    let pods = env.pods().await;
    assert_eq!(pods.len(), 1);
    assert_eq!(label(&pods[0], "already_checked"), Some("True"));
}

/// #8 test_already_checked_on_failure, #22 test_pod_failure: failure message, reason Error,
/// termination message included.
#[tokio::test]
async fn keep_pod_failure_is_marked_checked_with_the_failure_message() {
    let env = Env::start().await;
    let task = env.task(
        "t",
        &sh_task(
            "failer",
            "echo the reason > /dev/termination-log; exit 1",
            "on_finish_action: keep_pod\nlog_pod_spec_on_failure: false",
        ),
    );
    let out = env.run(&task, &[]).await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    let name = out.r("pod_name").as_str().expect("name").to_string();
    assert_eq!(out.r("status"), "failed");
    assert_eq!(
        out.r("message"),
        &format!("Pod {name} returned a failure.\nthe reason")
    );
    assert_eq!(out.r("reason"), "Error");
    assert!(out
        .stderr
        .contains(&format!("Pod {name} returned a failure.")));
    let pods = env.pods().await;
    assert_eq!(label(&pods[0], "already_checked"), Some("True"));
}

/// #20 test_faulty_image and the early failures the operator misses: they fail at once,
/// with the reason and message, not after the startup timeout.
#[tokio::test]
async fn unstartable_pods_fail_early_with_their_reason() {
    let env = Env::start().await;
    let task = env.task(
        "t",
        "task_id: badimage\nimage: \"Not A Valid Image!\"\ncmds: [sh, -c, 'true']\nstartup_timeout_seconds: 100\n",
    );
    let start = std::time::Instant::now();
    let out = env.run(&task, &[]).await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(out.r("reason"), "InvalidImageName");
    assert!(out
        .r("message")
        .as_str()
        .expect("msg")
        .contains("returned a failure."));
    assert!(
        start.elapsed().as_secs() < 30,
        "no wait for the startup timeout"
    );

    let task = env.task(
        "c",
        "task_id: badsecret\nimage: alpine\ncmds: [sh, -c, 'true']\nenv_vars: [{name: X, valueFrom: {secretKeyRef: {name: nope, key: k}}}]\n",
    );
    let out = env.run(&task, &[]).await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(out.r("reason"), "CreateContainerConfigError");
    crate::util::assert_deleted(&env).await;
}

/// #43 active_deadline_seconds passes through: deadline exceeded fails.
#[tokio::test]
async fn active_deadline_exceeded_fails() {
    let env = Env::start().await;
    let task = env.task(
        "t",
        &sh_task(
            "deadline",
            "sleep 20",
            "active_deadline_seconds: 2\non_finish_action: keep_pod",
        ),
    );
    let out = env.run(&task, &[]).await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    let pods = env.pods().await;
    let st = pods[0].status.as_ref().expect("status");
    assert_eq!(st.phase.as_deref(), Some("Failed"));
    assert_eq!(st.reason.as_deref(), Some("DeadlineExceeded"));
}

/// #35-#38: a renamed base container: logs, completion and termination message from it,
/// and fast containers with get_logs false do not hang (#26796).
#[tokio::test]
async fn renamed_base_container_with_and_without_logs() {
    let env = Env::start().await;
    let task = env.task(
        "t",
        &sh_task("apple", "echo sauce", "base_container_name: apple-sauce"),
    );
    let out = env.run(&task, &[]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "[apple-sauce] sauce\n");

    let task = env.task(
        "n",
        &sh_task(
            "apple2",
            "true",
            "base_container_name: apple-sauce\nget_logs: false",
        ),
    );
    let out = env.run(&task, &[]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "");

    let task = env.task(
        "f",
        &sh_task(
            "apple3",
            "echo from apple > /dev/termination-log; exit 2",
            "base_container_name: apple-sauce\nget_logs: false\nlog_pod_spec_on_failure: false",
        ),
    );
    let out = env.run(&task, &[]).await;
    assert_eq!(out.code, 1);
    assert!(
        out.r("message")
            .as_str()
            .expect("msg")
            .ends_with("\nfrom apple"),
        "{}",
        out.report
    );
}

/// #40 / #41 init container logs, in spec order, only the listed ones; #42 the prefix.
#[tokio::test]
async fn init_container_logs_and_prefix() {
    let env = Env::start().await;
    let yaml = r#"task_id: inits
image: alpine
cmds: ["sh", "-c", "echo main"]
init_containers:
  - {name: log-1, image: alpine, command: [sh, -c, "echo one"]}
  - {name: quiet, image: alpine, command: [sh, -c, "echo hidden"]}
  - {name: log-2, image: alpine, command: [sh, -c, "echo two"]}
init_container_logs: [log-2, log-1]
"#;
    let out = env.run(&env.task("t", yaml), &[]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "[log-1] one\n[log-2] two\n[base] main\n");

    let task = env.task(
        "p",
        &sh_task(
            "bare",
            "echo retrieved from mount",
            "container_name_log_prefix_enabled: false",
        ),
    );
    let out = env.run(&task, &[]).await;
    assert_eq!(out.stdout, "retrieved from mount\n");
}

/// Completion is judged by the base container: a sidecar that never ends does not hang
/// the run (#39693), and every selected container is streamed.
#[tokio::test]
async fn a_long_lived_sidecar_does_not_block_completion() {
    let env = Env::start().await;
    let yaml = r#"task_id: sidecar
image: alpine
cmds: ["sh", "-c", "echo work done"]
pod_template_dict:
  spec:
    containers:
      - {name: base}
      - {name: forever, image: alpine, command: [sh, -c, "echo side up; sleep 3600"]}
container_logs: true
"#;
    let start = std::time::Instant::now();
    let out = env.run(&env.task("t", yaml), &[]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("[base] work done\n"), "{}", out.stdout);
    assert!(out.stdout.contains("[forever] side up\n"), "{}", out.stdout);
    assert!(start.elapsed().as_secs() < 90);
    assert_eq!(out.r("cleanup"), "deleted");
    // The sidecar ignores SIGTERM, so the pod may still be terminating: it must be going.
    assert!(env
        .pods()
        .await
        .iter()
        .all(|p| p.metadata.deletion_timestamp.is_some()));
}

/// #34 test_reattach_failing_pod_once: a finished, kept, unchecked pod of the same run is
/// evaluated again (no new pod) and marked checked; the next run creates a fresh pod.
#[tokio::test]
async fn reattach_evaluates_a_failed_kept_pod_once() {
    let env = Env::start().await;
    let task = env.task(
        "t",
        &sh_task("reattach", "exit 1", "on_finish_action: keep_pod"),
    );
    let args = ["--run-id", "r-34"];
    // Run 1 is killed as soon as the pod exists, so nothing checks it.
    let report = env.dir.path().join("r1.json");
    let mut child = env
        .command(&[
            "run",
            task.to_str().expect("utf-8"),
            "--run-id",
            "r-34",
            "--report",
            report.to_str().expect("utf-8"),
        ])
        .spawn()
        .expect("spawn");
    let client = env.sim.client().await.expect("client");
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let failed = loop {
        let l = pods.list(&ListParams::default()).await.expect("list");
        if let Some(p) = l
            .items
            .into_iter()
            .find(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Failed"))
        {
            break p;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let _ = child.start_kill();
    let _ = child.wait().await;
    let name = failed.metadata.name.clone().expect("name");
    // Put the pod back the way an interrupted operator leaves it: unchecked.
    let fresh = pods.get(&name).await.expect("pod still there");
    if label(&fresh, "already_checked").is_some() {
        let patch = serde_json::json!({"metadata": {"labels": {"already_checked": null}}});
        pods.patch(
            &name,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await
        .expect("unlabel");
    }

    let creates_before = env.requests("create pods");
    let out = env.run(&task, &args).await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(out.r("pod_name"), name.as_str());
    assert_eq!(
        env.requests("create pods"),
        creates_before,
        "run 2 created nothing"
    );
    let p = pods.get(&name).await.expect("kept");
    assert_eq!(label(&p, "already_checked"), Some("True"));

    let out = env.run(&task, &args).await;
    assert_eq!(out.code, 1);
    assert_ne!(out.r("pod_name"), name.as_str());
    assert_eq!(
        env.requests("create pods"),
        creates_before + 1,
        "run 3 created exactly one pod"
    );
}
