//! podrun's memory stays bounded while hostile hooks of both engines hit their limits over
//! and over (issue 3's acceptance: "podrun's RSS stays bounded"). One test in its own
//! binary, so this process's peak RSS (`VmHWM`) is this test's alone.

use std::path::PathBuf;
use std::time::Duration;

use podrun::hooks::{Error, Hook, HookSource, HookSpec, Layer, Limits, OnError, Point, Runtime};
use serde_json::{json, Value};

/// A `/proc/self/status` field in KiB.
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} missing"))
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn load(runtime: &Runtime, point: Point, source: HookSource, limits: &Limits) -> Hook {
    let spec = HookSpec {
        point,
        source,
        config: Value::Null,
        on_error: OnError::Fail,
        name: None,
    };
    Hook::load(runtime, &spec, 0, Layer::Tenant, "mallory", limits).expect("load")
}

#[test]
fn hostile_hooks_leave_podrun_memory_bounded() {
    let runtime = Runtime::new();
    // A long deadline, so that the memory limits (not the clock) stop these hooks even in
    // an unoptimised build.
    let limits = Limits {
        call_deadline: Duration::from_secs(60),
        ..Limits::default()
    };
    let rhai = |point, script: &str| {
        load(
            &runtime,
            point,
            HookSource::Script(script.to_owned()),
            &limits,
        )
    };
    let wasm = |point, file: &str| {
        load(
            &runtime,
            point,
            HookSource::Wasm(root().join("tests/hooks_wasm").join(file)),
            &limits,
        )
    };
    let hostile = [
        (
            Point::MutatePod,
            rhai(
                Point::MutatePod,
                r#"fn mutate_pod(pod, ctx) { let s = "xxxxxxxx"; loop { s += s; } }"#,
            ),
        ),
        (
            Point::MutatePod,
            rhai(
                Point::MutatePod,
                "fn mutate_pod(pod, ctx) { let a = []; loop { a.push(1); } }",
            ),
        ),
        (
            Point::MutatePod,
            rhai(
                Point::MutatePod,
                "fn mutate_pod(pod, ctx) { let a = [1]; loop { a = [a, a]; } }",
            ),
        ),
        (
            Point::MutatePod,
            rhai(
                Point::MutatePod,
                "fn mutate_pod(pod, ctx) { let m = #{x: 1}; loop { m = #{a: m, b: m}; } }",
            ),
        ),
        (
            Point::ProcessXcom,
            rhai(
                Point::ProcessXcom,
                r#"fn process_xcom(v, ctx) { let s = "x"; for i in 0..20 { s += s; } let a = []; for i in 0..80 { a.push(s); } a }"#,
            ),
        ),
        (Point::MutatePod, wasm(Point::MutatePod, "memory_bomb.wat")),
        (
            Point::MutatePod,
            wasm(Point::MutatePod, "deep_recursion.wat"),
        ),
        (
            Point::ProcessXcom,
            wasm(Point::ProcessXcom, "huge_output.wat"),
        ),
    ];
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"name": "base", "image": "alpine"}]}});
    let ctx = json!({"task_id": "t", "run_id": "r", "try_number": 1, "tenant": "mallory", "config": {}, "params": {}});
    let input = |point: Point| {
        if point == Point::ProcessXcom {
            json!(null)
        } else {
            pod.clone()
        }
    };

    let mut after_first_round = 0;
    for round in 1..=5 {
        for (i, (point, hook)) in hostile.iter().enumerate() {
            match hook.call(*point, &input(*point), &ctx) {
                Err(Error::Call { .. }) => {}
                Ok((out, _)) => panic!("hostile hook {i} succeeded: {out}"),
                Err(other) => panic!("hostile hook {i}: unexpected error {other}"),
            }
        }
        if round == 1 {
            after_first_round = status_kib("VmRSS:");
        }
    }
    let (rss, peak) = (status_kib("VmRSS:"), status_kib("VmHWM:"));
    eprintln!("RSS {rss} KiB (after one round {after_first_round} KiB), peak {peak} KiB");
    // Each limit caps one call's memory (64 MiB of linear memory, Rhai's string, array and
    // map sizes): the peak is bounded by about one hook's worth, not the sum of 40 calls.
    assert!(peak < 256 * 1024, "peak RSS {peak} KiB");
    // And nothing accumulates between calls: four more rounds cost (almost) nothing.
    assert!(
        rss < after_first_round + 64 * 1024,
        "RSS grew from {after_first_round} KiB after one round to {rss} KiB after five"
    );
}
