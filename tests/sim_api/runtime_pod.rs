//! Test helper shared by tests/sim_api.rs and tests/sim_clients.rs: a simulator whose pod
//! runs a real container started on the runtime by the test itself (playing the kubelet's
//! part), for logs and exec without depending on the kubelet's scheduling.

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use podrun::sim::{Config, Sim};
use serde_json::json;

mod runs {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    use podrun::sim::containers::{Lookup, Run};

    #[derive(Default)]
    pub struct Table(pub Mutex<HashMap<(String, String, String), Vec<Run>>>);

    impl Lookup for Table {
        fn lookup(&self, ns: &str, pod: &str, container: &str, previous: bool) -> Option<Run> {
            let t = self.0.lock().expect("lock");
            let runs = t.get(&(ns.to_string(), pod.to_string(), container.to_string()))?;
            runs.get(runs.len().checked_sub(if previous { 2 } else { 1 })?)
                .cloned()
        }
    }

    pub fn new() -> Arc<Table> {
        Arc::new(Table::default())
    }
}

/// A simulator whose pod `name` runs `script` in container `base` on the real runtime.
pub async fn with_running_pod(
    name: &str,
    script: &str,
) -> (
    Sim,
    Api<Pod>,
    podrun::sim::runtime::Runtime,
    tempfile::TempDir,
) {
    use podrun::sim::runtime::{ContainerConfig, Runtime};
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = Runtime::new(dir.path().join("rt"))
        .expect("container isolation available (tools/setup-sim.sh)");
    let table = runs::new();
    let sim = Sim::start(Config {
        containers: Some(table.clone()),
        kubelet: None,
        ..Config::default()
    })
    .await
    .expect("sim");
    let pods: Api<Pod> = Api::namespaced(sim.client().await.expect("client"), "default");
    let spec: Pod = serde_json::from_value(json!({"metadata": {"name": name},
        "spec": {"containers": [{"name": "base", "image": "busybox", "command": ["sh", "-c", script]}]}}))
    .expect("pod literal");
    let p = pods
        .create(&PostParams::default(), &spec)
        .await
        .expect("create");
    let uid = p.metadata.uid.expect("uid");
    sim.store()
        .bind_pod("default", name, &uid, "sim-node")
        .expect("bind");
    let log_path = dir.path().join(format!("{name}.log"));
    let cfg = ContainerConfig {
        id: format!("default_{name}_base"),
        argv: vec!["sh".into(), "-c".into(), script.into()],
        env: vec![("GREETING".into(), "hi".into())],
        working_dir: None,
        mounts: Vec::new(),
        hostname: name.into(),
        log_path: log_path.clone(),
    };
    let container = runtime.start(cfg).await.expect("start container");
    table.0.lock().expect("lock").insert(
        ("default".into(), name.into(), "base".into()),
        vec![podrun::sim::containers::Run {
            container,
            log_path,
            exited: false,
        }],
    );
    sim.store()
        .modify_status(podrun::sim::Kind::Pod, "default", name, Some(&uid), |st| {
            st["phase"] = json!("Running");
            st["containerStatuses"] = json!([{"name": "base", "ready": true, "restartCount": 0,
                "image": "busybox", "imageID": "", "started": true,
                "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}]);
            Ok(())
        })
        .expect("status");
    (sim, pods, runtime, dir)
}
