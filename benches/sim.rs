//! Simulator benchmarks (`cargo bench --bench sim`): pod create → Running latency through
//! the real HTTPS API and process kubelet; 500 concurrently running pods with one watch each
//! (no watch errors allowed), reporting the simulator process's own RSS; and API-only
//! create/list latency. Targets from issue 5: create → Running ≤ 50 ms median.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};
use kube::Client;
use podrun::sim::{Config, Sim};
use serde_json::json;

fn main() {
    divan::main();
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn pod(name: &str, seconds: u32) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 0,
                 "containers": [{"name": "base", "image": "busybox", "command": ["sleep", seconds.to_string()]}]}
    }))
    .expect("pod literal")
}

fn phase(p: &Pod) -> Option<&str> {
    p.status.as_ref().and_then(|s| s.phase.as_deref())
}

/// Create a pod and wait (by watch) until it is Running; like a real client, re-watch
/// from the last seen resourceVersion when the server ends a watch.
async fn create_running(pods: &Api<Pod>, name: &str) {
    let created = pods
        .create(&PostParams::default(), &pod(name, 600))
        .await
        .expect("create");
    let mut rv = created.metadata.resource_version.clone().expect("rv");
    let wp = WatchParams::default()
        .fields(&format!("metadata.name={name}"))
        .timeout(290);
    loop {
        let mut s = pods.watch(&wp, &rv).await.expect("watch").boxed();
        while let Some(ev) = s.try_next().await.expect("watch event") {
            match ev {
                WatchEvent::Modified(p) | WatchEvent::Added(p) => {
                    match phase(&p) {
                        Some("Running") => return,
                        Some("Failed") => panic!("pod failed: {:?}", p.status),
                        _ => {}
                    }
                    rv = p.metadata.resource_version.clone().unwrap_or(rv);
                }
                WatchEvent::Bookmark(b) => rv = b.metadata.resource_version,
                WatchEvent::Deleted(_) => panic!("{name} deleted"),
                WatchEvent::Error(e) => panic!("watch error for {name}: {e:?}"),
            }
        }
    }
}

#[divan::bench(sample_count = 30, sample_size = 1)]
fn create_to_running(bencher: divan::Bencher) {
    let rt = rt();
    let (sim, pods) = rt.block_on(async {
        let sim = Sim::start(Config::default()).await.expect("sim");
        let client = sim.client().await.expect("client");
        (sim, Api::<Pod>::namespaced(client, "default"))
    });
    let mut n = 0u32;
    bencher
        .with_inputs(|| {
            n += 1;
            format!("bench-{n}")
        })
        .bench_local_values(|name| rt.block_on(create_running(&pods, &name)));
    rt.block_on(sim.shutdown());
}

#[divan::bench(sample_count = 20, sample_size = 10)]
fn api_create_pod(bencher: divan::Bencher) {
    let rt = rt();
    let (sim, pods) = rt.block_on(async {
        let sim = Sim::start(Config {
            kubelet: None,
            ..Config::default()
        })
        .await
        .expect("sim");
        let client = sim.client().await.expect("client");
        (sim, Api::<Pod>::namespaced(client, "default"))
    });
    let mut n = 0u32;
    bencher
        .with_inputs(|| {
            n += 1;
            format!("api-{n}")
        })
        .bench_local_values(|name| {
            rt.block_on(async {
                pods.create(&PostParams::default(), &pod(&name, 1))
                    .await
                    .expect("create")
            })
        });
    rt.block_on(sim.shutdown());
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// 500 sleeping pods, one watch each, against a `podrun sim` process; reports its RSS.
#[divan::bench(sample_count = 1, sample_size = 1)]
fn pods_500_with_watches() {
    // SIM_BENCH_PODS overrides the count (e.g. for a quick run on a small machine). Under
    // `cargo test --all-targets` (no `--bench` argument) divan runs each benchmark once as a
    // smoke test: 20 pods then, so the test suite stays light.
    let bench_mode = std::env::args().any(|a| a == "--bench");
    let pods_wanted: usize = std::env::var("SIM_BENCH_PODS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if bench_mode { 500 } else { 20 });
    let rt = rt();
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_podrun"))
        .args(["sim", "--kubeconfig"])
        .arg(&kubeconfig)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("podrun sim");
    let pid = child.id();
    // Stops the simulator (like Ctrl-C) even if the benchmark panics.
    struct Stop(std::process::Child);
    impl Drop for Stop {
        fn drop(&mut self) {
            let pid = nix::unistd::Pid::from_raw(self.0.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT);
            let _ = self.0.wait();
        }
    }
    let _stop = Stop(child);
    rt.block_on(async {
        for _ in 0..100 {
            if kubeconfig.exists() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let kc = kube::config::Kubeconfig::read_from(&kubeconfig).expect("kubeconfig");
        let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await.expect("config");
        let client = Client::try_from(cfg).expect("client");
        let pods: Api<Pod> = Api::namespaced(client, "default");
        let idle_rss = rss_kib(pid);
        eprintln!("simulator pid {pid}, kubeconfig {}", kubeconfig.display());
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..pods_wanted {
            let pods = pods.clone();
            tasks.spawn(async move { create_running(&pods, &format!("many-{i}")).await });
        }
        let mut ok = 0;
        while let Some(r) = tasks.join_next().await {
            r.expect("pod reached Running with its watch open");
            ok += 1;
            if ok % 50 == 0 {
                eprintln!("{ok} pods Running, simulator RSS {} KiB", rss_kib(pid));
            }
        }
        let running = pods
            .list(&ListParams::default().fields("status.phase=Running"))
            .await
            .expect("list")
            .items
            .len();
        println!(
            "pods_500_with_watches: {ok}/{pods_wanted} watches saw Running, {running} pods Running; simulator RSS idle {idle_rss} KiB, with {pods_wanted} pods {} KiB",
            rss_kib(pid)
        );
    });
}
