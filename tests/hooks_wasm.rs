//! WASM hook engine tests through the real engine: hand-written WAT components (well-behaved
//! and hostile, in tests/hooks_wasm/), the guest-sdk Rust examples and the Python example
//! (built into target/guests/ by tools/build-guests.sh).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use podrun::hooks::wasm::{
    Decision, Error, LineAction, LogLevel, Point, WasmConfig, WasmEngine, WasmHook, WasmLimits,
};

/// One engine for the whole test binary. Its disk cache lives in target/ so the big guests
/// (the Python one is ~40 MB) are compiled by the debug-built Cranelift only once per build.
fn engine() -> &'static WasmEngine {
    static ENGINE: OnceLock<WasmEngine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        WasmEngine::new(WasmConfig {
            cache_dir: Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("target/hooks-wasm-cache")),
            ..WasmConfig::default()
        })
        .expect("engine")
    })
}

fn wat(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/hooks_wasm")
        .join(name)
}

fn load(name: &str) -> WasmHook {
    engine()
        .load(&wat(name))
        .unwrap_or_else(|e| panic!("load {name}: {e}"))
}

/// A built guest from target/guests/, or None (with a loud message) if it was not built.
fn guest(name: &str) -> Option<WasmHook> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/guests")
        .join(name);
    if !path.exists() {
        eprintln!(
            "\n\n*** SKIPPED: {} is missing; run tools/setup-hooks.sh && tools/build-guests.sh ***\n",
            path.display()
        );
        return None;
    }
    Some(
        engine()
            .load(&path)
            .unwrap_or_else(|e| panic!("load {name}: {e}")),
    )
}

/// A `ctx` as the pipeline builds it (src/hooks/contract.rs `Ctx`).
const CTX: &str = r#"{"task_id":"t1","run_id":"r1","try_number":1,"namespace":"ns","pod_name":"p-1","tenant":"acme","layer":"tenant","config":{},"params":{}}"#;

fn ctx_with(config: &str) -> String {
    CTX.replace(r#""config":{}"#, &format!(r#""config":{config}"#))
}

fn pod() -> String {
    serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p-1", "namespace": "ns", "labels": {"app": "x"}},
        "spec": {"containers": [{"name": "base", "image": "busybox"}]}
    })
    .to_string()
}

fn lines(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn wat_component_runs_at_every_point() {
    let hook = load("all_points.wat");
    assert_eq!(
        hook.points(),
        vec![
            "mutate_pod",
            "process_xcom",
            "validate_pod",
            "decide",
            "filter_log"
        ]
    );
    let (out, usage) = hook.mutate_pod(&pod(), CTX).expect("mutate");
    assert_eq!(out, pod());
    assert_eq!(usage.logs.len(), 1);
    assert_eq!(usage.logs[0].level, LogLevel::Info);
    assert_eq!(usage.logs[0].message, "echo");
    assert!(usage.peak_memory >= 64 * 1024, "peak {}", usage.peak_memory);

    let (v, _) = hook.validate_pod(&pod(), CTX).expect("validate");
    assert!(!v.allowed);
    assert_eq!(v.reason.as_deref(), Some("no"));
    assert_eq!(v.warnings, vec!["careful".to_string()]);

    let (x, _) = hook.process_xcom(r#"{"rows":3}"#, CTX).expect("xcom");
    assert_eq!(x, r#"{"rows":3}"#);

    let (d, _) = hook.decide(r#"{"exit_code":1}"#, CTX).expect("decide");
    assert_eq!(d, Decision::Skip("why".into()));
}

#[test]
fn log_filter_session_recovers_after_a_trap() {
    let hook = load("all_points.wat");
    let mut s = hook.log_filter(CTX).expect("session");
    let (a, _) = s
        .filter(&lines(&["keep me", "xdrop", "rline", ""]))
        .expect("batch 1");
    assert_eq!(
        a,
        vec![
            LineAction::Keep,
            LineAction::Drop,
            LineAction::Replace("R".into()),
            LineAction::Keep
        ]
    );
    let err = s.filter(&lines(&["fine", "boom"])).expect_err("trap");
    assert!(matches!(err, Error::Trap { .. }), "{err}");
    // The trapped instance was discarded; a fresh one serves the next batch.
    let (a, _) = s.filter(&lines(&["after"])).expect("batch 3");
    assert_eq!(a, vec![LineAction::Keep]);
}

#[test]
fn infinite_loop_is_stopped_by_the_deadline() {
    let hook = load("infinite_loop.wat").with_limits(WasmLimits {
        deadline: Duration::from_millis(100),
        ..WasmLimits::default()
    });
    let err = hook.mutate_pod(&pod(), CTX).expect_err("must not finish");
    match err {
        Error::Deadline { limit } => assert_eq!(limit, Duration::from_millis(100)),
        other => panic!("expected deadline, got {other}"),
    }
    assert!(err_text(&hook).contains("exceeded its deadline of 100 ms"));
}

/// A WASI sleep blocks in the host, where epoch interruption cannot reach: podrun caps it
/// at the call's deadline, so an hour-long sleep ends as a deadline error.
#[test]
fn wasi_sleep_is_stopped_by_the_deadline() {
    let hook = load("sleep.wat").with_limits(WasmLimits {
        deadline: Duration::from_millis(200),
        ..WasmLimits::default()
    });
    let started = std::time::Instant::now();
    let err = hook.process_xcom("null", CTX).expect_err("must not finish");
    assert!(
        matches!(err, Error::Deadline { limit } if limit == Duration::from_millis(200)),
        "expected deadline, got {err}"
    );
    // Bounded by the deadline (plus scheduling), nowhere near the hour asked for.
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
}

fn err_text(hook: &WasmHook) -> String {
    hook.mutate_pod(&pod(), CTX)
        .map(|_| String::new())
        .unwrap_or_else(|e| e.to_string())
}

#[test]
fn deep_recursion_hits_the_stack_limit() {
    let err = load("deep_recursion.wat")
        .mutate_pod(&pod(), CTX)
        .expect_err("overflow");
    match &err {
        Error::Trap { message } => assert!(message.contains("stack overflow"), "{message}"),
        other => panic!("expected stack overflow trap, got {other}"),
    }
}

#[test]
fn memory_bomb_hits_the_memory_limit() {
    let err = load("memory_bomb.wat")
        .mutate_pod(&pod(), CTX)
        .expect_err("bomb");
    match err {
        Error::MemoryLimit { limit, requested } => {
            assert_eq!(limit, 64 * 1024 * 1024);
            assert!(requested > limit);
        }
        other => panic!("expected memory limit, got {other}"),
    }
    let small = load("memory_bomb.wat").with_limits(WasmLimits {
        memory: 8 * 1024 * 1024,
        ..WasmLimits::default()
    });
    let err = small.mutate_pod(&pod(), CTX).expect_err("bomb");
    assert!(
        matches!(err, Error::MemoryLimit { limit, .. } if limit == 8 * 1024 * 1024),
        "{err}"
    );
    assert!(err.to_string().contains("memory limit of 8388608 bytes"));
}

#[test]
fn huge_output_is_refused() {
    let err = load("huge_output.wat")
        .process_xcom("null", CTX)
        .expect_err("too large");
    assert!(
        matches!(
            err,
            Error::OutputTooLarge {
                size: 4194304,
                limit: 1048576
            }
        ),
        "{err}"
    );
}

#[test]
fn invalid_json_output_is_malformed() {
    let hook = load("bad_json.wat");
    let err = hook.mutate_pod(&pod(), CTX).expect_err("bad json");
    assert!(
        matches!(&err, Error::MalformedOutput { message } if message.contains("invalid JSON")),
        "{err}"
    );
    let err = hook.process_xcom("1", CTX).expect_err("bad json");
    assert!(matches!(err, Error::MalformedOutput { .. }), "{err}");
}

#[test]
fn invalid_variant_and_utf8_are_malformed() {
    let err = load("bad_variant.wat")
        .decide("{}", CTX)
        .expect_err("bad variant");
    assert!(matches!(err, Error::MalformedOutput { .. }), "{err}");
    let err = load("bad_utf8.wat")
        .mutate_pod(&pod(), CTX)
        .expect_err("bad utf8");
    assert!(matches!(err, Error::MalformedOutput { .. }), "{err}");
}

#[test]
fn unreachable_traps_with_a_clear_message() {
    let err = load("trap.wat").mutate_pod(&pod(), CTX).expect_err("trap");
    match &err {
        Error::Trap { message } => assert!(message.contains("unreachable"), "{message}"),
        other => panic!("expected trap, got {other}"),
    }
}

#[test]
fn guest_error_is_reported_as_the_hooks_own() {
    let err = load("guest_error.wat")
        .mutate_pod(&pod(), CTX)
        .expect_err("err");
    assert!(
        matches!(&err, Error::GuestError(m) if m == "tenant config missing"),
        "{err}"
    );
}

#[test]
fn no_state_survives_between_admission_calls() {
    let hook = load("stateful.wat");
    for _ in 0..3 {
        let (n, _) = hook.process_xcom("null", CTX).expect("call");
        assert_eq!(n, "1", "a fresh instance per call must see its first call");
    }
}

#[test]
fn forbidden_import_is_rejected_at_load() {
    let err = engine()
        .load(&wat("forbidden_import.wat"))
        .err()
        .expect("must be rejected");
    match &err {
        Error::ForbiddenImport { name, .. } => assert_eq!(name, "evil:net/socket@1.0.0"),
        other => panic!("expected forbidden import, got {other}"),
    }
    assert!(err.to_string().contains("forbidden_import.wat"));
}

#[test]
fn other_wit_version_is_rejected_naming_both() {
    let err = engine()
        .load(&wat("wrong_version.wat"))
        .err()
        .expect("must be rejected");
    let text = err.to_string();
    assert!(matches!(err, Error::Version { .. }), "{text}");
    assert!(
        text.contains("podrun:hooks/mutate-pod@0.2.0") && text.contains("podrun:hooks@0.1.0"),
        "{text}"
    );
}

#[test]
fn wasi_environment_and_arguments_are_empty() {
    let (out, _) = load("wasi_probe.wat")
        .process_xcom("null", CTX)
        .expect("probe");
    // The test process has environment variables; the guest must see none of them.
    assert!(std::env::vars().count() > 0);
    assert_eq!(out, r#"{"env":0,"args":0}"#);
}

#[test]
fn oversized_input_is_refused_before_running() {
    let big = format!(r#"{{"x":"{}"}}"#, "a".repeat(1024 * 1024));
    let err = load("all_points.wat")
        .mutate_pod(&big, CTX)
        .expect_err("too big");
    assert!(matches!(err, Error::InputTooLarge { .. }), "{err}");
    let mut s = load("all_points.wat").log_filter(CTX).expect("session");
    let err = s.filter(&[big]).expect_err("too big");
    assert!(matches!(err, Error::InputTooLarge { .. }), "{err}");
}

#[test]
fn calling_a_point_the_hook_lacks_names_what_it_has() {
    let hook = load("trap.wat");
    assert!(!hook.implements(Point::Decide));
    let err = hook.decide("{}", CTX).expect_err("not implemented");
    assert_eq!(
        err.to_string(),
        format!(
            "WASM hook {} does not implement decide (it implements: mutate_pod)",
            wat("trap.wat").display()
        )
    );
}

#[test]
fn well_behaved_hook_completes_while_a_hostile_one_spins() {
    let hostile = load("infinite_loop.wat").with_limits(WasmLimits {
        deadline: Duration::from_secs(3),
        ..WasmLimits::default()
    });
    let good = load("all_points.wat");
    let spinner = std::thread::spawn(move || hostile.mutate_pod(&pod(), CTX));
    // Let the hostile call start spinning first.
    std::thread::sleep(Duration::from_millis(50));
    for _ in 0..200 {
        let (out, _) = good.mutate_pod(&pod(), CTX).expect("good hook");
        assert_eq!(out, pod());
    }
    assert!(
        !spinner.is_finished(),
        "the good hook's 200 calls should finish inside the hostile hook's 3 s deadline"
    );
    let err = spinner.join().expect("join").expect_err("hostile");
    assert!(matches!(err, Error::Deadline { .. }), "{err}");
}

#[test]
fn compiled_components_are_cached_on_disk_privately() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("temp");
    let cache = dir.path().join("cache");
    let config = WasmConfig {
        cache_dir: Some(cache.clone()),
        max_instances: 4,
        ..WasmConfig::default()
    };
    let e1 = WasmEngine::new(config.clone()).expect("engine");
    e1.load(&wat("stateful.wat")).expect("load");
    let mode = std::fs::metadata(&cache).expect("dir").permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
    let entries: Vec<_> = std::fs::read_dir(&cache)
        .expect("read")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    let entry = &entries[0];
    assert!(entry.to_string_lossy().ends_with(".cwasm"));
    assert_eq!(
        std::fs::metadata(entry).expect("file").permissions().mode() & 0o777,
        0o600
    );

    // A damaged entry is detected by its checksum, not deserialised, and rewritten.
    let mut bytes = std::fs::read(entry).expect("read entry");
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(entry, &bytes).expect("corrupt");
    let e2 = WasmEngine::new(config.clone()).expect("engine 2");
    let (n, _) = e2
        .load(&wat("stateful.wat"))
        .expect("load after corruption")
        .process_xcom("null", CTX)
        .expect("call");
    assert_eq!(n, "1");
    assert_ne!(std::fs::read(entry).expect("reread"), bytes);

    // A directory others can write is not used.
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    std::fs::remove_file(entry).expect("rm");
    let e3 = WasmEngine::new(config).expect("engine 3");
    e3.load(&wat("stateful.wat")).expect("load without cache");
    assert_eq!(std::fs::read_dir(&cache).expect("read").count(), 0);
}

#[test]
fn sdk_label_injector_mutates_the_pod() {
    let Some(hook) = guest("label_injector.wasm") else {
        return;
    };
    assert_eq!(hook.points(), vec!["mutate_pod"]);
    let ctx = ctx_with(r#"{"labels":{"team":"data","app":"override"}}"#);
    let (out, usage) = hook.mutate_pod(&pod(), &ctx).expect("mutate");
    let out: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(
        out["metadata"]["labels"],
        serde_json::json!({"app": "override", "team": "data", "podrun.dev/tenant": "acme"})
    );
    assert_eq!(
        out["spec"],
        serde_json::from_str::<serde_json::Value>(&pod()).expect("pod")["spec"]
    );
    assert!(usage
        .logs
        .iter()
        .any(|l| l.message.contains("set 3 labels")));
    let err = hook
        .mutate_pod(&pod(), &ctx_with(r#"{"labels":{"n":1}}"#))
        .expect_err("bad config");
    assert!(
        matches!(&err, Error::GuestError(m) if m == "config.labels.n must be a string"),
        "{err}"
    );
}

#[test]
fn sdk_deny_privileged_policy_validates() {
    let Some(hook) = guest("deny_privileged.wasm") else {
        return;
    };
    assert_eq!(hook.points(), vec!["validate_pod"]);
    let (v, _) = hook.validate_pod(&pod(), CTX).expect("validate");
    assert!(v.allowed);
    assert_eq!(
        v.warnings,
        vec![r#"container "base" does not set runAsNonRoot"#]
    );
    let mut p: serde_json::Value = serde_json::from_str(&pod()).expect("pod");
    p["spec"]["containers"][0]["securityContext"] = serde_json::json!({"privileged": true});
    let (v, _) = hook.validate_pod(&p.to_string(), CTX).expect("validate");
    assert!(!v.allowed);
    assert_eq!(
        v.reason.as_deref(),
        Some(r#"container "base" is privileged"#)
    );
    p["spec"]["containers"][0]["securityContext"] =
        serde_json::json!({"capabilities": {"add": ["NET_ADMIN"]}});
    let (v, _) = hook.validate_pod(&p.to_string(), CTX).expect("validate");
    assert_eq!(
        v.reason.as_deref(),
        Some(r#"container "base" adds capability NET_ADMIN"#)
    );
    p["spec"]["hostNetwork"] = serde_json::json!(true);
    let (v, _) = hook.validate_pod(&p.to_string(), CTX).expect("validate");
    assert_eq!(v.reason.as_deref(), Some("spec.hostNetwork is not allowed"));
}

#[test]
fn sdk_log_redactor_filters_batches() {
    let Some(hook) = guest("log_redactor.wasm") else {
        return;
    };
    assert_eq!(hook.points(), vec!["filter_log"]);
    let ctx =
        ctx_with(r#"{"drop_containing":["healthz"],"patterns":["\\d{4}-\\d{4}-\\d{4}-\\d{4}"]}"#);
    let mut s = hook.log_filter(&ctx).expect("session");
    let (a, _) = s
        .filter(&lines(&[
            "starting job",
            "GET /healthz 200",
            "login password=hunter2 ok",
            "Authorization: Bearer abc.def",
            "card 1234-5678-9012-3456 charged",
        ]))
        .expect("filter");
    assert_eq!(
        a,
        vec![
            LineAction::Keep,
            LineAction::Drop,
            LineAction::Replace("login password=*** ok".into()),
            LineAction::Replace("Authorization: Bearer ***".into()),
            LineAction::Replace("card *** charged".into()),
        ]
    );
    // The same instance serves later batches of the task.
    let (a, _) = s.filter(&lines(&["token: xyz"])).expect("filter 2");
    assert_eq!(a, vec![LineAction::Replace("token: ***".into())]);
}

#[test]
fn sdk_xcom_transformer_and_skip_decider() {
    let Some(xcom) = guest("xcom_transformer.wasm") else {
        return;
    };
    let (out, _) = xcom
        .process_xcom(
            r#"{"rows":3,"debug":"x","status":"ok"}"#,
            &ctx_with(r#"{"keep":["rows","status"]}"#),
        )
        .expect("xcom");
    let out: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(
        out,
        serde_json::json!({"value": {"rows": 3, "status": "ok"}, "task_id": "t1", "try_number": 1})
    );
    let Some(decider) = guest("skip_decider.wasm") else {
        return;
    };
    let ctx = ctx_with(r#"{"skip_exit_codes":[99]}"#);
    let decide = |outcome: &str| decider.decide(outcome, &ctx).expect("decide").0;
    assert_eq!(
        decide(r#"{"exit_code":99,"phase":"Failed","result":"failed"}"#),
        Decision::Skip("exit code 99 means nothing to do".into())
    );
    assert_eq!(
        decide(r#"{"exit_code":137,"reason":"OOMKilled","phase":"Failed","result":"failed"}"#),
        Decision::Fail("container was OOMKilled: raise its memory limit".into())
    );
    assert_eq!(
        decide(
            r#"{"exit_code":0,"phase":"Succeeded","result":"success","xcom":{"skip":"no new data"}}"#
        ),
        Decision::Skip("no new data".into())
    );
    assert_eq!(
        decide(r#"{"exit_code":0,"phase":"Succeeded","result":"success"}"#),
        Decision::Keep
    );
}

#[test]
fn python_example_runs_at_every_point() {
    let Some(hook) = guest("python_hooks.wasm") else {
        return;
    };
    let mut points = hook.points();
    points.sort_unstable();
    assert_eq!(
        points,
        vec![
            "decide",
            "filter_log",
            "mutate_pod",
            "process_xcom",
            "validate_pod"
        ]
    );
    let ctx = ctx_with(r#"{"annotations":{"owner":"team-a"}}"#);
    let (out, usage) = hook.mutate_pod(&pod(), &ctx).expect("mutate");
    let out: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(
        out["metadata"]["annotations"],
        serde_json::json!({"podrun.dev/checked-by": "python", "owner": "team-a"})
    );
    assert!(usage
        .logs
        .iter()
        .any(|l| l.message == "python: annotated pod p-1"));

    let (v, _) = hook.validate_pod(&pod(), CTX).expect("validate");
    assert!(!v.allowed);
    assert_eq!(
        v.reason.as_deref(),
        Some("container 'base' uses a floating image tag: busybox")
    );
    let pinned = pod().replace("busybox", "busybox:1.36");
    assert!(hook.validate_pod(&pinned, CTX).expect("validate").0.allowed);

    let mut s = hook.log_filter(CTX).expect("session");
    let (a, _) = s
        .filter(&lines(&["hello", "", "mail bob@example.com now"]))
        .expect("filter");
    assert_eq!(
        a,
        vec![
            LineAction::Keep,
            LineAction::Drop,
            LineAction::Replace("mail <email> now".into())
        ]
    );
    let (x, _) = hook.process_xcom(r#"[1,2]"#, CTX).expect("xcom");
    assert_eq!(x, r#"{"python": [1, 2]}"#);
    let (d, _) = hook.decide(r#"{"exit_code":3}"#, CTX).expect("decide");
    assert_eq!(d, Decision::Skip("python says nothing to do".into()));
    let err = hook.mutate_pod("not json", CTX).expect_err("bad input");
    assert!(
        matches!(&err, Error::GuestError(m) if m.starts_with("invalid pod JSON")),
        "{err}"
    );
}

#[test]
fn python_guest_gets_no_files_environment_or_network() {
    let Some(hook) = guest("python_probe.wasm") else {
        return;
    };
    assert_eq!(hook.points(), vec!["process_xcom"]);
    let (out, usage) = hook.process_xcom("null", CTX).expect("probe");
    let report: serde_json::Value = serde_json::from_str(&out).expect("json");
    for key in ["read_passwd", "list_root", "list_cwd", "connect", "resolve"] {
        assert!(
            report[key].get("error").is_some(),
            "{key} must fail inside the sandbox: {report}"
        );
    }
    assert_eq!(report["environ"], 0, "{report}");
    assert_eq!(report["argv"], 0, "{report}");
    let logged: Vec<_> = usage
        .logs
        .iter()
        .map(|l| (l.level, l.message.as_str()))
        .collect();
    assert!(
        logged.contains(&(LogLevel::Info, "probe: hello from stdout")),
        "{logged:?}"
    );
    assert!(
        logged.contains(&(LogLevel::Warn, "probe: hello from stderr")),
        "{logged:?}"
    );
}

#[test]
fn check_reports_points_and_imports_without_running() {
    let hook = load("all_points.wat");
    assert_eq!(hook.imports(), ["podrun:hooks/host@0.1.0"]);
    assert!(!hook.uses_wasi());
    // Loading the infinite loop returns at once: no guest code runs at load.
    let spin = load("infinite_loop.wat");
    assert_eq!(spin.points(), vec!["mutate_pod"]);
    assert!(spin.imports().is_empty());
    let probe = load("wasi_probe.wat");
    assert!(probe.uses_wasi());
    assert!(probe.instantiate_once().is_ok());
}
