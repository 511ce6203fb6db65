//! Detach and attach (the operator's deferrable mode).

use crate::util::{finish, sh_task, Env};

#[tokio::test]
async fn detach_returns_a_handle_and_attach_finishes_the_run() {
    let env = Env::start().await;
    let task = env.task(
        "t",
        &sh_task("later", "echo one; sleep 2; echo two", "do_xcom_push: true"),
    );
    let report = env.dir.path().join("d.json");
    let child = env
        .command(&[
            "run",
            task.to_str().expect("utf-8"),
            "--detach",
            "--report",
            report.to_str().expect("utf-8"),
        ])
        .spawn()
        .expect("spawn");
    let out = finish(child, &report).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let handle = out.stdout.trim().to_string();
    assert!(handle.starts_with("default/later-"), "{handle}");
    assert_eq!(env.pods().await.len(), 1, "pod left running");

    let out = env.attach(&handle).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "[base] one\n[base] two\n");
    assert_eq!(out.r("xcom"), &serde_json::Value::Null);
    crate::util::assert_deleted(&env).await;
}

#[tokio::test]
async fn attach_by_task_file_and_run_id() {
    let env = Env::start().await;
    let task = env.task("t", &sh_task("bytask", "sleep 1; echo via task", ""));
    let path = task.to_str().expect("utf-8");
    let report = env.dir.path().join("d.json");
    let child = env
        .command(&[
            "run",
            path,
            "--detach",
            "--run-id",
            "r7",
            "--report",
            report.to_str().expect("utf-8"),
        ])
        .spawn()
        .expect("spawn");
    assert_eq!(finish(child, &report).await.code, 0);
    let report = env.dir.path().join("a.json");
    let child = env
        .command(&[
            "attach",
            path,
            "--run-id",
            "r7",
            "--report",
            report.to_str().expect("utf-8"),
        ])
        .spawn()
        .expect("spawn");
    let out = finish(child, &report).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "[base] via task\n");
}
