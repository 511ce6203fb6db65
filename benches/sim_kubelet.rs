//! Latency of the process kubelet, measured through the store as a client sees it:
//! create → phase Running for a trivial long-running pod, and create → phase Succeeded
//! for a pod whose process exits at once (so completion latency after the process exits
//! is bounded by the difference). Run with `cargo bench --bench sim_kubelet`.
//!
//! Needs bubblewrap (tools/setup-sim.sh) and root or unprivileged user namespaces.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};

use divan::Bencher;
use podrun::sim::kubelet::{Config, Kubelet};
use podrun::sim::runtime::Runtime;
use podrun::sim::store::{self, DeleteOptions, Since, Store};
use podrun::sim::Kind;
use serde_json::json;

fn main() {
    divan::main();
}

/// One store + kubelet for all iterations, on a runtime whose threads outlive the pods.
struct Bed {
    rt: tokio::runtime::Runtime,
    store: Arc<Store>,
    _kubelet: Kubelet,
    _dir: tempfile::TempDir,
}

static BED: LazyLock<Bed> = LazyLock::new(|| {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::new(store::Config::default());
    let kubelet = rt.block_on(async {
        let runtime =
            Runtime::new(dir.path().join("runtime")).expect("runtime (tools/setup-sim.sh)");
        let config = Config {
            root_dir: Some(dir.path().join("kubelet")),
            ..Config::default()
        };
        Kubelet::start(store.clone(), runtime, config).expect("kubelet")
    });
    Bed {
        rt,
        store,
        _kubelet: kubelet,
        _dir: dir,
    }
});

static N: AtomicU64 = AtomicU64::new(0);

/// Deletes the pod (grace 0) when dropped, outside the timed section.
struct Cleanup(String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let opts = DeleteOptions {
            grace_period_seconds: Some(0),
            ..DeleteOptions::default()
        };
        let _ = BED.store.delete(Kind::Pod, "default", &self.0, &opts);
    }
}

/// Creates a pod running `argv` and waits on a watch until its phase is `want`.
fn run_pod(argv: &[&str], want: &'static str) -> Cleanup {
    let name = format!("bench-{}", N.fetch_add(1, Ordering::Relaxed));
    let pod = json!({
        "metadata": {"name": name},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox:1.36", "command": argv}]}
    });
    BED.rt.block_on(async {
        let mut watch = BED
            .store
            .watch(Kind::Pod, Some("default"), Since::Now)
            .expect("watch");
        BED.store.create(Kind::Pod, "default", pod).expect("create");
        while let Some(c) = watch.next().await {
            if c.name == name && c.object["status"]["phase"] == want {
                break;
            }
        }
    });
    Cleanup(name)
}

#[divan::bench(sample_count = 40, sample_size = 1)]
fn create_to_running(b: Bencher) {
    b.bench(|| run_pod(&["sleep", "1000"], "Running"));
}

#[divan::bench(sample_count = 40, sample_size = 1)]
fn create_to_succeeded(b: Bencher) {
    b.bench(|| run_pod(&["true"], "Succeeded"));
}
