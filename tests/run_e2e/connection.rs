//! Connection, identity and API-fault behaviour of `podrun run`.

use std::time::{Duration, Instant};

use podrun::sim::faults::{Fault, FaultKind};

use crate::util::{sh_task, Env};

const PODS: &str = "/api/v1/namespaces/*/pods";

#[tokio::test]
async fn bad_input_exits_2_and_sends_nothing() {
    let env = Env::start().await;
    let task = env.task(
        "bad",
        "task_id: bad\nimage: alpine\nstartup_timeout_seconds: soon\n",
    );
    let before = env.requests("");
    let out = env.run(&task, &[]).await;
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("startup_timeout_seconds"),
        "{}",
        out.stderr
    );
    assert_eq!(env.requests(""), before, "no request may reach the cluster");
    assert!(env.pods().await.is_empty());
}

#[tokio::test]
async fn unreachable_api_server_is_an_infrastructure_failure() {
    let env = Env::start().await;
    // A kubeconfig naming a port nobody listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let text = std::fs::read_to_string(env.sim.kubeconfig_path()).expect("kubeconfig");
    let addr = env.sim.addr().to_string();
    let dead = env.dir.path().join("dead-kubeconfig");
    std::fs::write(&dead, text.replace(&addr, &format!("127.0.0.1:{port}"))).expect("write");
    let task = env.task("t", &sh_task("t", "echo hi", ""));
    let start = Instant::now();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_podrun"))
        .args(["run", task.to_str().expect("utf-8"), "--kubeconfig"])
        .arg(&dead)
        .output()
        .await
        .expect("podrun runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(6), "{stderr}");
    assert!(stderr.starts_with("error: cannot "), "{stderr}");
    assert!(stderr.contains("Connection refused"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one clear line: {stderr}");
    assert!(start.elapsed() < Duration::from_secs(30), "bounded retries");
}

#[tokio::test]
async fn lost_create_response_adopts_the_pod_it_created() {
    let env = Env::with_faults(vec![Fault::new(FaultKind::DropResponse)
        .verb("create")
        .path(PODS)
        .times(1)])
    .await;
    let task = env.task(
        "t",
        &sh_task("lost", "echo created once", "on_finish_action: keep_pod"),
    );
    let out = env.run(&task, &[]).await;
    assert!(out.stderr.contains("adopting"), "{}", out.stderr);
    assert_eq!(env.sim.fault_counts().get("drop_response"), Some(&1));
    assert_eq!(env.pods().await.len(), 1, "exactly one pod ever existed");
    assert_eq!(out.r("adopted"), true);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "[base] created once\n");
}

#[tokio::test]
async fn a_429_storm_is_ridden_out_with_retry_after() {
    let env = Env::with_faults(vec![
        Fault::new(FaultKind::Status {
            code: 429,
            retry_after: 1,
        })
        .verb("create")
        .path(PODS)
        .times(3),
        Fault::new(FaultKind::Status {
            code: 429,
            retry_after: 1,
        })
        .verb("watch")
        .times(2),
        Fault::new(FaultKind::Status {
            code: 503,
            retry_after: 0,
        })
        .verb("delete")
        .times(2),
    ])
    .await;
    let task = env.task("t", &sh_task("storm", "echo through the storm", ""));
    let start = Instant::now();
    let out = env.run(&task, &[]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "[base] through the storm\n");
    let faults = env.sim.fault_counts();
    assert_eq!(faults.get("status_429"), Some(&5), "{faults:?}");
    assert_eq!(faults.get("status_503"), Some(&2), "{faults:?}");
    // Retry-After: 1 was honoured for the three create attempts.
    assert!(start.elapsed() >= Duration::from_secs(3));
    // The pod was deleted after the 503s.
    crate::util::assert_deleted(&env).await;
}

/// A 401 makes the client rebuild itself from its config source and carry on.
#[tokio::test]
async fn unauthorized_refreshes_credentials_and_carries_on() {
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{Api, ListParams};
    use podrun::run::connect::{build_client, load_config};
    use podrun::run::{Connection, Kube};

    let env = Env::start().await;
    let text = std::fs::read_to_string(env.sim.kubeconfig_path()).expect("kubeconfig");
    let stale = env.dir.path().join("stale-kubeconfig");
    std::fs::write(&stale, text.replace(env.sim.token(), "expired-token")).expect("write");
    let stale_client = build_client(
        load_config(&Connection {
            kubeconfig: Some(stale.clone()),
            ..Connection::default()
        })
        .await
        .expect("stale config"),
    )
    .expect("client");
    // The source the process was configured with now holds fresh credentials.
    let kube = Kube::from_client(
        stale_client,
        Connection {
            kubeconfig: Some(env.sim.kubeconfig_path().to_path_buf()),
            ..Connection::default()
        },
    );
    let pods = kube
        .call(|c| async move {
            Api::<Pod>::namespaced(c, "default")
                .list(&ListParams::default())
                .await
        })
        .await
        .expect("list succeeds after the refresh");
    assert!(pods.items.is_empty());
    assert_eq!(kube.refreshes(), 1);
    // Later calls use the refreshed client without another 401.
    kube.call(|c| async move {
        Api::<Pod>::namespaced(c, "default")
            .list(&ListParams::default())
            .await
    })
    .await
    .expect("second list");
    assert_eq!(kube.refreshes(), 1);
}
