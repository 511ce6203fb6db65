//! Rhai hook benchmarks (divan): `cargo bench --bench hooks_rhai`.
//!
//! Targets (issue 3): mutate_pod on a typical pod p50 ≤ 30 µs; filter_log with a simple
//! predicate ≥ 800,000 lines/s; with a regex redaction ≥ 500,000 lines/s. Everything runs
//! through the real path (`Pipeline`, hook threads, limits on). Figures go in BENCHMARKS.md.

use std::path::PathBuf;

use divan::counter::ItemsCount;
use divan::{black_box, Bencher};
use podrun::hooks::{HookSource, HookSpec, OnError, Pipeline, Point, Policy, Runtime, TaskInfo};
use serde_json::{json, Value};

// The podrun binary's allocator (src/main.rs), so figures match what it runs.
podrun::allocator!();

/// With `PODRUN_BENCH_ON_HOOK_THREAD=1` every benchmark runs on a podrun hook thread, so hook
/// calls run inline: the engine's own cost, without the hand-off each call from an
/// ordinary thread pays (what a runner pays once when it makes its calls on a hook thread
/// through `hooks::run_on_hook_thread`).
fn main() {
    if std::env::var_os("PODRUN_BENCH_ON_HOOK_THREAD").is_some_and(|v| v == "1") {
        podrun::hooks::run_on_hook_thread(divan::main).expect("hook thread");
    } else {
        divan::main();
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn pod() -> Value {
    let text = std::fs::read_to_string(root().join("tests/hooks/pod.json")).expect("pod.json");
    serde_json::from_str(&text).expect("pod")
}

fn task() -> TaskInfo {
    TaskInfo {
        task_id: "bench".into(),
        run_id: "r".into(),
        try_number: 1,
        tenant: "bench".into(),
        params: json!({}),
        ..TaskInfo::default()
    }
}

fn pipeline(point: Point, source: HookSource, config: Value) -> Pipeline {
    let spec = HookSpec {
        point,
        source,
        config,
        on_error: OnError::Fail,
        name: None,
    };
    Pipeline::new(&Runtime::new(), task(), &[spec], &Policy::default()).expect("pipeline")
}

/// 1,000 log lines of about 60 bytes; every 10th holds "DEBUG", every 20th a password.
fn lines() -> Vec<String> {
    (0..1000)
        .map(|i| {
            if i % 20 == 0 {
                format!(
                    "2026-11-27T10:00:{:02}Z worker-3 login user=ann password=s3cr{i}",
                    i % 60
                )
            } else if i % 10 == 0 {
                format!(
                    "2026-11-27T10:00:{:02}Z worker-3 DEBUG cache hit key=item-{i}",
                    i % 60
                )
            } else {
                format!(
                    "2026-11-27T10:00:{:02}Z worker-3 INFO processed batch {i} ok",
                    i % 60
                )
            }
        })
        .collect()
}

/// The label injector example on the 2-container pod of `tests/hooks/pod.json`, through
/// `Pipeline::mutate_and_validate` (JSON → Rhai → JSON, diff, record).
#[divan::bench]
fn mutate_pod_label_injector(bencher: Bencher) {
    let p = pipeline(
        Point::MutatePod,
        HookSource::Rhai(root().join("scripts/label_injector.rhai")),
        json!({"labels": {"team": "data", "cost-center": "cc-42"}}),
    );
    let pod = pod();
    // The input pod is cloned outside the timing: the call consumes it.
    bencher
        .with_inputs(|| pod.clone())
        .bench_local_values(|pod| p.mutate_and_validate(black_box(pod)).expect("mutate"));
}

/// A mutate hook that returns the pod unchanged: the fixed cost of a call (JSON to Rhai and
/// back, limits, diff, record).
#[divan::bench]
fn mutate_pod_noop(bencher: Bencher) {
    let p = pipeline(
        Point::MutatePod,
        HookSource::Script("fn mutate_pod(pod, ctx) { pod }".into()),
        Value::Null,
    );
    let pod = pod();
    // The input pod is cloned outside the timing: the call consumes it.
    bencher
        .with_inputs(|| pod.clone())
        .bench_local_values(|pod| p.mutate_and_validate(black_box(pod)).expect("mutate"));
}

/// Simple predicate: drop lines containing "DEBUG".
#[divan::bench]
fn filter_log_simple_predicate(bencher: Bencher) {
    let p = pipeline(
        Point::FilterLog,
        HookSource::Script(
            "fn filter_log(lines, ctx) { let out = []; for l in lines { out.push(!l.contains(\"DEBUG\")); } out }"
                .into(),
        ),
        Value::Null,
    );
    let lines = lines();
    bencher
        .counter(ItemsCount::new(lines.len()))
        .bench_local(|| p.filter_log("base", black_box(&lines)));
}

/// Regex redaction: mask `password=...` with one pattern (compiled once, cached).
#[divan::bench]
fn filter_log_regex_redaction(bencher: Bencher) {
    let p = pipeline(
        Point::FilterLog,
        HookSource::Script(
            r#"fn filter_log(lines, ctx) {
                   let out = [];
                   for l in lines {
                       out.push(regex_replace(l, "(password=)[^ ]+", "${1}***"));
                   }
                   out
               }"#
            .into(),
        ),
        Value::Null,
    );
    let lines = lines();
    bencher
        .counter(ItemsCount::new(lines.len()))
        .bench_local(|| p.filter_log("base", black_box(&lines)));
}

/// The full log redactor example (two built-in patterns, a drop list).
#[divan::bench]
fn filter_log_redactor_example(bencher: Bencher) {
    let p = pipeline(
        Point::FilterLog,
        HookSource::Rhai(root().join("scripts/log_redactor.rhai")),
        json!({"drop_containing": ["DEBUG"]}),
    );
    let lines = lines();
    bencher
        .counter(ItemsCount::new(lines.len()))
        .bench_local(|| p.filter_log("base", black_box(&lines)));
}
