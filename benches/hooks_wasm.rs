//! WASM hook engine benchmarks (divan): fresh instance from `InstancePre`, `mutate_pod` with
//! the Rust label injector, `filter_log` with a simple predicate and with regex redaction,
//! and loading a disk-cached component in a new engine and in a new process.
//!
//! Run `tools/build-guests.sh` first (the Rust guests come from target/guests/), then
//! `cargo bench --bench hooks_wasm`. Figures go to BENCHMARKS-WASM.md.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Instant;

use divan::counter::ItemsCount;
use divan::Bencher;
use podrun::hooks::wasm::{WasmConfig, WasmEngine, WasmHook};

// The podrun binary's allocator (src/main.rs), so figures match what it runs.
podrun::allocator!();

/// Lines per `filter_log` batch, as the pipeline sends them.
const BATCH: usize = 1024;

fn main() {
    // Child mode of `cached_load_new_process`: load one component from a warm disk cache in
    // this fresh process and print the microseconds it took.
    if let Ok(path) = std::env::var("HOOKS_WASM_BENCH_CHILD") {
        let engine = WasmEngine::new(config()).expect("engine");
        let start = Instant::now();
        engine.load(Path::new(&path)).expect("load");
        println!("{}", start.elapsed().as_micros());
        return;
    }
    divan::main();
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn config() -> WasmConfig {
    WasmConfig {
        cache_dir: Some(root().join("target/hooks-wasm-bench-cache")),
        ..WasmConfig::default()
    }
}

fn engine() -> &'static WasmEngine {
    static E: OnceLock<WasmEngine> = OnceLock::new();
    E.get_or_init(|| WasmEngine::new(config()).expect("engine"))
}

fn guest_path(name: &str) -> PathBuf {
    let p = root().join("target/guests").join(name);
    assert!(
        p.exists(),
        "{} missing: run tools/setup-hooks.sh && tools/build-guests.sh first",
        p.display()
    );
    p
}

fn guest(name: &str) -> WasmHook {
    engine().load(&guest_path(name)).expect("load guest")
}

const CTX: &str = r#"{"task_id":"etl","run_id":"manual__2026-11-27","try_number":1,"namespace":"data","pod_name":"etl-x7k2","tenant":"acme","layer":"tenant","config":{"labels":{"team":"data","cost-center":"42"},"drop":["DEBUG"]},"params":{}}"#;

/// A typical pod as podrun builds it (one container, env, resources, volumes).
fn typical_pod() -> String {
    serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": "etl-x7k2", "namespace": "data",
            "labels": {"dag_id": "etl", "task_id": "load", "run_id": "manual__2026-11-27",
                       "try_number": "1", "kubernetes_pod_operator": "True", "airflow_version": "2.10.0"},
            "annotations": {"podrun.dev/task-file": "etl.yaml"}
        },
        "spec": {
            "restartPolicy": "Never",
            "serviceAccountName": "etl",
            "securityContext": {"runAsNonRoot": true, "runAsUser": 1000},
            "containers": [{
                "name": "base", "image": "registry.example.com/etl:1.4.2",
                "command": ["python", "-m", "etl"], "args": ["--date", "2026-11-27", "--full"],
                "env": [{"name": "MODE", "value": "batch"}, {"name": "LOG_LEVEL", "value": "info"},
                        {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}],
                "resources": {"requests": {"cpu": "500m", "memory": "512Mi"},
                              "limits": {"cpu": "2", "memory": "2Gi"}},
                "volumeMounts": [{"name": "data", "mountPath": "/data"},
                                 {"name": "xcom", "mountPath": "/airflow/xcom"}],
                "securityContext": {"allowPrivilegeEscalation": false}
            }],
            "volumes": [{"name": "data", "emptyDir": {}}, {"name": "xcom", "emptyDir": {}}],
            "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "etl", "effect": "NoSchedule"}]
        }
    })
    .to_string()
}

/// ~60-byte log lines; every tenth is DEBUG, every fifth carries a secret.
fn log_lines() -> Vec<String> {
    (0..BATCH)
        .map(|i| match i % 10 {
            0 => format!(
                "2026-11-27T10:00:{:02}Z DEBUG cache miss for key {i}",
                i % 60
            ),
            5 => format!(
                "2026-11-27T10:00:{:02}Z INFO login user=svc password=s3cr{i}",
                i % 60
            ),
            _ => format!(
                "2026-11-27T10:00:{:02}Z INFO processed batch {i} rows=1000",
                i % 60
            ),
        })
        .collect()
}

/// A fresh store + instance from the `InstancePre` (pooling allocator), dropped unused.
#[divan::bench]
fn fresh_instance(b: Bencher) {
    let hook = guest("label_injector.wasm");
    b.bench(|| hook.instantiate_once().expect("instantiate"));
}

/// `mutate_pod` end to end (fresh instance, JSON in, label injection, JSON out).
#[divan::bench]
fn mutate_pod_label_injector(b: Bencher) {
    let hook = guest("label_injector.wasm");
    let pod = typical_pod();
    b.bench(|| hook.mutate_pod(&pod, CTX).expect("mutate"));
}

/// `filter_log`, simple predicate (drop lines containing DEBUG), batches of 1024 lines.
#[divan::bench]
fn filter_log_simple_predicate(b: Bencher) {
    let hook = guest("level_filter.wasm");
    let mut session = hook.log_filter(CTX).expect("session");
    let lines = log_lines();
    b.counter(ItemsCount::new(BATCH))
        .bench_local(|| session.filter(&lines).expect("filter"));
}

/// `filter_log`, regex redaction (two built-in secret patterns), batches of 1024 lines.
#[divan::bench]
fn filter_log_regex_redaction(b: Bencher) {
    let hook = guest("log_redactor.wasm");
    let mut session = hook.log_filter(CTX).expect("session");
    let lines = log_lines();
    b.counter(ItemsCount::new(BATCH))
        .bench_local(|| session.filter(&lines).expect("filter"));
}

/// Loading a disk-cached component into a new engine (empty in-memory cache): read,
/// digest check, deserialize, import check, `InstancePre`.
#[divan::bench(sample_count = 30, sample_size = 1)]
fn cached_load_new_engine(b: Bencher) {
    let path = guest_path("log_redactor.wasm");
    engine().load(&path).expect("warm the disk cache");
    b.with_inputs(|| WasmEngine::new(config()).expect("engine"))
        .bench_local_values(|e| e.load(&path).expect("load"));
}

/// Loading a disk-cached component in a new process: the child prints its `load` time
/// (µs); this reports the whole child run (process start, engine, load).
#[divan::bench(sample_count = 10, sample_size = 1)]
fn cached_load_new_process(b: Bencher) {
    let path = guest_path("log_redactor.wasm");
    engine().load(&path).expect("warm the disk cache");
    let exe = std::env::current_exe().expect("exe");
    let mut loads = Vec::new();
    b.bench_local(|| {
        let out = std::process::Command::new(&exe)
            .env("HOOKS_WASM_BENCH_CHILD", &path)
            .output()
            .expect("spawn");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        loads.push(
            String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse::<u64>()
                .expect("µs"),
        );
    });
    loads.sort_unstable();
    if let Some(median) = loads.get(loads.len() / 2) {
        eprintln!(
            "cached_load_new_process: load() in the child, median {median} µs over {} runs",
            loads.len()
        );
    }
}
