//! The hook pipeline end to end: tenant and platform layers, order, `on_error`, records,
//! log filtering, XCom and decide composition, the policy file, `apply_to_pod`, and the
//! `podrun hooks test|check` commands (run as the real binary).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use podrun::hooks::contract::{BaseResult, ContainerOutcome};
use podrun::hooks::{
    apply_hooks, Cause, Decision, Error, HookSource, HookSpec, Layer, Limit, LineAction, OnError,
    Outcome, Pipeline, Point, Policy, RecordResult, Runtime, TaskInfo,
};
use serde_json::{json, Value};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn data(name: &str) -> PathBuf {
    root().join("tests/hooks").join(name)
}

fn pod() -> Value {
    let text = std::fs::read_to_string(data("pod.json")).expect("pod.json");
    serde_json::from_str(&text).expect("pod json")
}

fn task() -> TaskInfo {
    TaskInfo {
        task_id: "hello".into(),
        run_id: "manual__1".into(),
        try_number: 1,
        namespace: String::new(),
        pod_name: String::new(),
        tenant: "acme".into(),
        params: json!({"day": "mon"}),
    }
}

fn inline(point: Point, name: &str, script: &str) -> HookSpec {
    HookSpec {
        point,
        source: HookSource::Script(script.into()),
        config: Value::Null,
        on_error: OnError::Fail,
        name: Some(name.into()),
    }
}

fn file(point: Point, script: &str, config: Value) -> HookSpec {
    HookSpec {
        point,
        source: HookSource::Rhai(root().join("scripts").join(script)),
        config,
        on_error: OnError::Fail,
        name: None,
    }
}

fn policy(hooks: Vec<HookSpec>) -> Policy {
    Policy {
        hooks,
        ..Policy::default()
    }
}

fn pipeline(tenant: Vec<HookSpec>, platform: Vec<HookSpec>) -> Pipeline {
    Pipeline::new(&Runtime::new(), task(), &tenant, &policy(platform))
        .unwrap_or_else(|e| panic!("pipeline: {e}"))
}

#[test]
fn tenant_mutates_then_platform_mutates_then_validates_the_final_pod() {
    let tenant = vec![file(
        Point::MutatePod,
        "label_injector.rhai",
        json!({"labels": {"team": "data"}}),
    )];
    // The platform mutator sees the tenant's label; the validator sees both changes.
    let platform = vec![
        inline(
            Point::MutatePod,
            "stamp",
            r#"fn mutate_pod(pod, ctx) {
                   pod.metadata.labels["platform/saw-team"] = pod.metadata.labels.team;
                   pod
               }"#,
        ),
        inline(
            Point::ValidatePod,
            "needs-team",
            r#"fn validate_pod(pod, ctx) {
                   if pod.metadata.labels["platform/saw-team"] != "data" { deny("order broken"); }
                   #{allowed: true, warnings: [`checked ${ctx.pod_name} in ${ctx.namespace}`]}
               }"#,
        ),
    ];
    let p = pipeline(tenant, platform);
    let (out, verdict) = p.mutate_and_validate(pod()).expect("pipeline");
    assert!(verdict.allowed, "{verdict:?}");
    assert_eq!(
        verdict.warnings,
        vec!["checked hello-x1y2z3a4 in default".to_owned()]
    );
    assert_eq!(
        out["metadata"]["labels"]["platform/saw-team"],
        json!("data")
    );
    assert_eq!(
        out["metadata"]["labels"]["podrun.dev/tenant"],
        json!("acme")
    );

    let records = p.records();
    assert_eq!(records.len(), 3);
    assert_eq!(records[0].hook.layer, Layer::Tenant);
    assert_eq!(
        records[0].result,
        RecordResult::Mutated {
            paths: vec![
                "metadata.labels.team".into(),
                "metadata.labels[\"podrun.dev/tenant\"]".into()
            ]
        }
    );
    assert_eq!(records[1].hook.layer, Layer::Platform);
    assert_eq!(records[2].result, RecordResult::Allowed);
    assert!(records.iter().all(|r| r.usage.operations.is_some()));
    // The record serializes for the run report.
    let report = serde_json::to_value(&records).expect("records json");
    assert_eq!(report[2]["result"], json!("allowed"));
    assert_eq!(report[0]["hook"]["name"], json!("label_injector.rhai"));
}

#[test]
fn a_deny_is_a_verdict_naming_the_hook_and_all_validators_run() {
    let tenant = vec![inline(
        Point::ValidatePod,
        "tenant-ok",
        "fn validate_pod(pod, ctx) { #{allowed: true, warnings: [\"tenant warns\"]} }",
    )];
    let platform = vec![
        file(Point::ValidatePod, "deny_privileged.rhai", Value::Null),
        inline(
            Point::ValidatePod,
            "second",
            "fn validate_pod(pod, ctx) { #{allowed: false, reason: \"second says no\"} }",
        ),
    ];
    let p = pipeline(tenant, platform);
    let mut bad = pod();
    bad["spec"]["containers"][0]["securityContext"] = json!({"privileged": true});
    let (_, verdict) = p.mutate_and_validate(bad).expect("pipeline");
    assert!(!verdict.allowed);
    assert_eq!(
        verdict.reason.as_deref(),
        Some("container \"base\" is privileged")
    );
    assert!(
        verdict
            .denied_by
            .as_deref()
            .is_some_and(|d| d.contains("deny_privileged.rhai")),
        "{verdict:?}"
    );
    assert_eq!(verdict.warnings, vec!["tenant warns".to_owned()]);
    let denied: Vec<_> = p
        .records()
        .into_iter()
        .filter(|r| matches!(r.result, RecordResult::Denied { .. }))
        .collect();
    assert_eq!(denied.len(), 2);
}

#[test]
fn on_error_ignore_skips_and_records_but_validate_always_fails_closed() {
    let mut broken = inline(
        Point::MutatePod,
        "broken",
        "fn mutate_pod(pod, ctx) { loop {} }",
    );
    broken.on_error = OnError::Ignore;
    let tenant = vec![
        broken,
        file(Point::MutatePod, "label_injector.rhai", Value::Null),
    ];
    let p = pipeline(tenant, vec![]);
    let (out, verdict) = p.mutate_and_validate(pod()).expect("ignored failure");
    assert!(verdict.allowed);
    assert_eq!(
        out["metadata"]["labels"]["podrun.dev/tenant"],
        json!("acme")
    );
    let records = p.records();
    assert!(
        matches!(&records[0].result, RecordResult::Ignored { error } if error.contains("limit exceeded")),
        "{:?}",
        records[0]
    );

    // on_error: fail (the default) stops with the hook's error.
    let p = pipeline(
        vec![inline(
            Point::MutatePod,
            "broken",
            "fn mutate_pod(pod, ctx) { pod.x.y }",
        )],
        vec![],
    );
    let err = p.mutate_and_validate(pod()).expect_err("fail");
    assert!(matches!(err.cause(), Some(Cause::Script { .. })), "{err}");
    assert_eq!(err.exit_code(), podrun::exit::HOOK_FAILED);
    assert!(err.to_string().contains("tenant hook \"broken\""), "{err}");

    // A failing validate hook fails even with on_error: ignore.
    let mut validate = inline(Point::ValidatePod, "v", "fn validate_pod(pod, ctx) { 42 }");
    validate.on_error = OnError::Ignore;
    let p = pipeline(vec![], vec![validate]);
    let err = p.mutate_and_validate(pod()).expect_err("fail closed");
    assert!(
        matches!(err.cause(), Some(Cause::MalformedOutput(_))),
        "{err}"
    );
}

#[test]
fn filter_log_chains_tenant_then_platform_and_fails_open() {
    let tenant = vec![file(
        Point::FilterLog,
        "log_redactor.rhai",
        json!({"drop_containing": ["healthcheck"]}),
    )];
    let platform = vec![
        inline(
            Point::FilterLog,
            "tag",
            // Sees the tenant's redaction, never the dropped line.
            "fn filter_log(lines, ctx) { lines.map(|l| `[${ctx.container}] ${l}`) }",
        ),
        inline(
            Point::FilterLog,
            "flaky",
            "fn filter_log(lines, ctx) { if lines.len() > 2 { throw \"too many\" } lines.map(|l| true) }",
        ),
    ];
    let p = pipeline(tenant, platform);
    let lines = ["hello", "password=abc", "healthcheck ok"];
    let actions = p.filter_log("base", &lines);
    assert_eq!(
        actions,
        vec![
            LineAction::Replace("[base] hello".into()),
            LineAction::Replace("[base] password=***".into()),
            LineAction::Drop,
        ]
    );
    // A batch of 3 surviving lines makes `flaky` fail: the lines are kept and counted.
    let actions = p.filter_log("base", &["a", "b", "c"]);
    assert_eq!(actions[2], LineAction::Replace("[base] c".into()));
    let records = p.records();
    let flaky = records
        .iter()
        .find(|r| r.hook.name == "flaky")
        .expect("flaky record");
    match &flaky.result {
        RecordResult::Filtered {
            batches,
            failed_lines,
            last_error,
            ..
        } => {
            assert_eq!((*batches, *failed_lines), (2, 3));
            assert!(last_error
                .as_deref()
                .is_some_and(|e| e.contains("too many")));
        }
        other => panic!("{other:?}"),
    }
    let redactor = records
        .iter()
        .find(|r| r.hook.name == "log_redactor.rhai")
        .expect("redactor record");
    assert!(
        matches!(
            redactor.result,
            RecordResult::Filtered {
                lines: 6,
                dropped: 1,
                replaced: 1,
                ..
            }
        ),
        "{:?}",
        redactor.result
    );
}

#[test]
fn filter_log_splits_large_batches_and_cuts_long_lines() {
    let p = pipeline(
        vec![inline(
            Point::FilterLog,
            "len",
            "fn filter_log(lines, ctx) { lines.map(|l| `${l.len()}`) }",
        )],
        vec![],
    );
    let mut lines: Vec<String> = (0..250).map(|i| format!("{i:03}")).collect();
    lines.push("é".repeat(40_000)); // 80,000 bytes: cut to 65,536 at a char boundary.
    let actions = p.filter_log("base", &lines);
    assert_eq!(actions.len(), 251);
    assert_eq!(actions[0], LineAction::Replace("3".into()));
    assert_eq!(actions[250], LineAction::Replace("32768".into()));
    match &p.records()[0].result {
        RecordResult::Filtered {
            batches, truncated, ..
        } => assert_eq!((*batches, *truncated), (3, 1)),
        other => panic!("{other:?}"),
    }
    // No filter hooks: everything is kept without running anything.
    let empty = pipeline(vec![], vec![]);
    assert_eq!(empty.filter_log("base", &["x"]), vec![LineAction::Keep]);
}

#[test]
fn process_xcom_chains_tenant_then_platform() {
    let tenant = vec![file(
        Point::ProcessXcom,
        "xcom_transformer.rhai",
        json!({"keep": ["rows"]}),
    )];
    let platform = vec![inline(
        Point::ProcessXcom,
        "audit",
        "fn process_xcom(v, ctx) { v.audited_by = ctx.layer; v }",
    )];
    let p = pipeline(tenant, platform);
    let out = p
        .process_xcom(json!({"rows": 5, "noise": true}))
        .expect("xcom");
    assert_eq!(
        out,
        json!({"value": {"rows": 5}, "task_id": "hello", "try_number": 1, "audited_by": "platform"})
    );
    assert!(p
        .records()
        .iter()
        .all(|r| r.result == RecordResult::Xcom { changed: true }));
}

fn outcome(exit_code: i32, reason: &str) -> Outcome {
    Outcome {
        result: BaseResult::Failed,
        exit_code: Some(exit_code),
        reason: Some(reason.into()),
        message: Some("termination message".into()),
        phase: Some("Failed".into()),
        containers: vec![ContainerOutcome {
            name: "base".into(),
            state: "terminated".into(),
            exit_code: Some(exit_code),
            reason: Some(reason.into()),
        }],
        xcom: Value::Null,
    }
}

#[test]
fn decide_lets_the_platform_have_the_last_word() {
    let tenant = vec![file(
        Point::Decide,
        "skip_decider.rhai",
        json!({"skip_exit_codes": [99]}),
    )];
    let platform = vec![inline(
        Point::Decide,
        "no-skips-on-monday",
        r#"fn decide(outcome, ctx) {
               if outcome.result == "skipped" && ctx.params.day == "mon" {
                   return #{fail: "skips are not allowed on monday"};
               }
               "keep"
           }"#,
    )];
    let p = pipeline(tenant, platform);
    assert_eq!(
        p.decide(&outcome(99, "Error")).expect("decide"),
        Decision::Fail("skips are not allowed on monday".into())
    );
    assert_eq!(
        p.decide(&outcome(137, "OOMKilled")).expect("decide"),
        Decision::Fail("container was OOMKilled: raise its memory limit".into())
    );
    assert_eq!(
        p.decide(&outcome(1, "Error")).expect("decide"),
        Decision::Keep
    );

    let bad = pipeline(
        vec![inline(
            Point::Decide,
            "bad",
            "fn decide(o, c) { \"maybe\" }",
        )],
        vec![],
    );
    let err = bad.decide(&outcome(1, "Error")).expect_err("malformed");
    assert!(
        matches!(err.cause(), Some(Cause::MalformedOutput(m)) if m.contains("maybe")),
        "{err}"
    );
}

#[test]
fn policy_file_loads_hooks_relative_to_itself_with_limits() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(
        root().join("scripts/deny_privileged.rhai"),
        dir.path().join("deny.rhai"),
    )
    .expect("copy");
    let path = dir.path().join("policy.yaml");
    std::fs::write(
        &path,
        "hooks:\n  - point: validate_pod\n    rhai: deny.rhai\n    name: no-privileged\n\
         \x20 - point: mutate_pod\n    script: |\n      fn mutate_pod(pod, ctx) { pod.metadata.labels.policy = \"v1\"; pod }\n\
         limits:\n  call_deadline: 100\n  rhai_max_operations: 5000\n",
    )
    .expect("write");
    let policy = Policy::load(&path).expect("policy");
    assert_eq!(policy.limits.rhai_max_operations, 5000);
    assert_eq!(
        policy.limits.call_deadline,
        std::time::Duration::from_millis(100)
    );
    assert_eq!(
        policy.hooks[0].source,
        HookSource::Rhai(dir.path().join("deny.rhai"))
    );

    let applied = apply_hooks(pod(), &[], &policy, task()).expect("apply");
    assert_eq!(applied.pod["metadata"]["labels"]["policy"], json!("v1"));
    assert!(applied.denial().is_none());

    let mut bad = pod();
    bad["spec"]["hostPID"] = json!(true);
    let applied = apply_hooks(bad, &[], &policy, task()).expect("apply");
    let denial = applied.denial().expect("denied");
    assert!(
        denial.contains("platform hook \"no-privileged\""),
        "{denial}"
    );
    assert!(denial.ends_with("spec.hostPID is not allowed"), "{denial}");

    // The policy's limits apply to tenant hooks as well.
    let looping = inline(
        Point::MutatePod,
        "loop",
        "fn mutate_pod(pod, ctx) { loop {} }",
    );
    let err = apply_hooks(pod(), &[looping], &policy, task()).expect_err("limit");
    assert!(err.to_string().contains("budget 5000"), "{err}");
}

#[test]
fn malformed_declarations_name_the_key() {
    let err = Policy::parse(
        "hooks:\n  - point: mutate_pod\n    rhia: x.rhai\n",
        Path::new("p.yaml"),
    )
    .expect_err("typo");
    let text = err.to_string();
    assert!(text.starts_with("p.yaml: hooks[0]"), "{text}");
    assert!(text.contains("rhia"), "{text}");
    let err = Policy::parse(
        "hooks:\n  - point: mutate_pod\n    rhai: a.rhai\n    script: x\n",
        Path::new("p.yaml"),
    )
    .expect_err("two sources");
    assert!(err.to_string().contains("exactly one of"), "{err}");
    let err = Policy::parse(
        "hooks:\n  - point: mutate\n    rhai: a.rhai\n",
        Path::new("p.yaml"),
    )
    .expect_err("bad point");
    assert!(err.to_string().contains("mutate_pod"), "{err}");
    // A hook file that does not exist, or does not compile, is bad input (exit 2).
    let missing = file(Point::MutatePod, "nope.rhai", Value::Null);
    let err = Pipeline::new(&Runtime::new(), task(), &[missing], &Policy::default())
        .expect_err("missing file");
    assert!(matches!(err, Error::ReadHook { .. }), "{err}");
    assert_eq!(err.exit_code(), podrun::exit::BAD_INPUT);
}

fn wasm(point: Point, name: &str) -> HookSpec {
    HookSpec {
        point,
        source: HookSource::Wasm(root().join("tests/hooks_wasm").join(name)),
        config: Value::Null,
        on_error: OnError::Fail,
        name: None,
    }
}

#[test]
fn wasm_and_rhai_hooks_share_one_pipeline() {
    // Tenant Rhai, platform wasm (a hand-written component implementing every point).
    let tenant = vec![
        file(
            Point::MutatePod,
            "label_injector.rhai",
            json!({"labels": {"team": "data"}}),
        ),
        file(Point::FilterLog, "log_redactor.rhai", Value::Null),
    ];
    let platform = vec![
        wasm(Point::MutatePod, "all_points.wat"),
        wasm(Point::ValidatePod, "all_points.wat"),
        wasm(Point::FilterLog, "all_points.wat"),
        wasm(Point::ProcessXcom, "all_points.wat"),
        wasm(Point::Decide, "all_points.wat"),
    ];
    let p = pipeline(tenant, platform);
    let (out, verdict) = p.mutate_and_validate(pod()).expect("pipeline");
    // The component echoes the pod, so the Rhai label survives it.
    assert_eq!(out["metadata"]["labels"]["team"], json!("data"));
    assert!(!verdict.allowed);
    assert_eq!(verdict.reason.as_deref(), Some("no"));
    assert_eq!(verdict.warnings, vec!["careful".to_owned()]);
    assert!(verdict
        .denied_by
        .as_deref()
        .is_some_and(|d| d.contains("all_points.wat")));

    // Rhai redacts, then the component drops "x…" lines, replaces "r…" lines, and traps on
    // "boom": that batch is kept as the Rhai filter left it, and a new instance serves on.
    let actions = p.filter_log("base", &["keep", "xdrop", "rline", "token=abc"]);
    assert_eq!(
        actions,
        vec![
            LineAction::Keep,
            LineAction::Drop,
            LineAction::Replace("R".into()),
            LineAction::Replace("token=***".into()),
        ]
    );
    assert_eq!(
        p.filter_log("base", &["boom", "password=1"])[1],
        LineAction::Replace("password=***".into())
    );
    assert_eq!(p.filter_log("base", &["xafter"]), vec![LineAction::Drop]);

    assert_eq!(
        p.process_xcom(json!({"rows": 3})).expect("xcom"),
        json!({"rows": 3})
    );
    assert_eq!(
        p.decide(&outcome(0, "Completed")).expect("decide"),
        Decision::Skip("why".into())
    );
    let records = p.records();
    let wasm_filter = records
        .iter()
        .find(|r| r.point == Point::FilterLog && r.hook.name == "all_points.wat")
        .expect("wasm filter record");
    assert!(
        matches!(&wasm_filter.result, RecordResult::Filtered { batches: 3, failed_lines: 2, last_error: Some(e), .. } if e.contains("trap")),
        "{:?}",
        wasm_filter.result
    );
    assert!(wasm_filter.usage.memory_bytes.is_some());
}

#[test]
fn wasm_hooks_that_misbehave_fail_with_their_cause() {
    let p = pipeline(vec![wasm(Point::MutatePod, "infinite_loop.wat")], vec![]);
    let err = p.mutate_and_validate(pod()).expect_err("deadline");
    assert!(
        matches!(err.cause(), Some(c) if c.limit() == Some(Limit::Deadline)),
        "{err}"
    );
    assert_eq!(err.exit_code(), podrun::exit::HOOK_FAILED);
    // A component importing what podrun does not offer is refused at load: bad input.
    let err = Pipeline::new(
        &Runtime::new(),
        task(),
        &[wasm(Point::MutatePod, "forbidden_import.wat")],
        &Policy::default(),
    )
    .expect_err("forbidden import");
    assert!(matches!(err, Error::Compile { .. }), "{err}");
    assert_eq!(err.exit_code(), podrun::exit::BAD_INPUT);
}

#[test]
fn tenants_get_separate_engines_with_their_own_limits() {
    let runtime = Runtime::new();
    let small = podrun::hooks::Limits {
        rhai_max_operations: 100,
        ..Default::default()
    };
    let a = runtime.rhai_engine("a", &small);
    let b = runtime.rhai_engine("b", &small);
    assert!(!std::sync::Arc::ptr_eq(&a, &b));
    assert!(std::sync::Arc::ptr_eq(
        &a,
        &runtime.rhai_engine("a", &small)
    ));
}

// ---- the commands ------------------------------------------------------------------------

fn podrun(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_podrun"))
        .args(args)
        .env_remove("PODRUN_POLICY")
        .current_dir(root())
        .output()
        .expect("run podrun");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn hooks_test_prints_output_and_usage() {
    let (code, stdout, stderr) = podrun(&[
        "hooks",
        "test",
        "scripts/label_injector.rhai",
        "--point",
        "mutate_pod",
        "--input",
        "tests/hooks/pod.json",
        "--config",
        r#"{"labels":{"team":"data"}}"#,
    ]);
    assert_eq!(code, 0, "{stderr}");
    let out: Value = serde_json::from_str(&stdout).expect("json output");
    assert_eq!(out["metadata"]["labels"]["team"], json!("data"));
    // Shown in the input's key order.
    let keys: Vec<&String> = out.as_object().expect("object").keys().collect();
    assert_eq!(keys, ["apiVersion", "kind", "metadata", "spec"]);
    assert!(
        stderr.contains("time: ") && stderr.contains("operations: "),
        "{stderr}"
    );

    let (code, stdout, stderr) = podrun(&[
        "hooks",
        "test",
        "scripts/deny_privileged.rhai",
        "--point",
        "validate_pod",
        "--input",
        "tests/hooks/privileged_pod.yaml",
    ]);
    assert_eq!(code, 4, "{stderr}");
    assert!(stdout.contains("\"allowed\": false"), "{stdout}");
    assert!(
        stderr.contains("denied: container \"base\" is privileged"),
        "{stderr}"
    );

    let (code, stdout, _) = podrun(&[
        "hooks",
        "test",
        "scripts/log_redactor.rhai",
        "--point",
        "filter_log",
        "--input",
        "tests/hooks/lines.txt",
        "--config",
        r#"{"drop_containing":["healthcheck"]}"#,
    ]);
    assert_eq!(code, 0);
    let out: Value = serde_json::from_str(&stdout).expect("json output");
    assert_eq!(out, json!([true, "login password=*** ok", false]));

    let (code, stdout, _) = podrun(&[
        "hooks",
        "test",
        "scripts/skip_decider.rhai",
        "--point",
        "decide",
        "--input",
        "tests/hooks/outcome.json",
        "--config",
        r#"{"skip_exit_codes":[99]}"#,
    ]);
    assert_eq!(code, 0);
    assert!(
        stdout.contains("exit code 99 means nothing to do"),
        "{stdout}"
    );
}

#[test]
fn hooks_test_exit_codes_for_failures_and_bad_input() {
    let dir = tempfile::tempdir().expect("tempdir");
    let looping = dir.path().join("loop.rhai");
    std::fs::File::create(&looping)
        .and_then(|mut f| f.write_all(b"fn mutate_pod(pod, ctx) { loop {} }"))
        .expect("write");
    let looping = looping.to_str().expect("utf-8 path");
    let (code, _, stderr) = podrun(&[
        "hooks",
        "test",
        looping,
        "--point",
        "mutate_pod",
        "--input",
        "tests/hooks/pod.json",
    ]);
    assert_eq!(code, 5, "{stderr}");
    // The operation budget or, on a loaded machine, the deadline.
    assert!(
        stderr.contains("failed at mutate_pod: ") && stderr.contains("limit exceeded"),
        "{stderr}"
    );

    let (code, _, stderr) = podrun(&[
        "hooks",
        "test",
        "scripts/label_injector.rhai",
        "--point",
        "mutate_pod",
        "--input",
        "tests/hooks/nope.json",
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("nope.json"), "{stderr}");

    let (code, _, stderr) = podrun(&[
        "hooks",
        "test",
        "scripts/label_injector.rhai",
        "--point",
        "decide",
        "--input",
        "tests/hooks/outcome.json",
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("defines no `decide` function"), "{stderr}");
}

#[test]
fn hooks_test_and_check_run_wasm_components() {
    let (code, stdout, stderr) = podrun(&[
        "hooks",
        "test",
        "tests/hooks_wasm/all_points.wat",
        "--point",
        "validate_pod",
        "--input",
        "tests/hooks/pod.json",
    ]);
    assert_eq!(code, 4, "{stderr}");
    assert!(stdout.contains("\"reason\": \"no\""), "{stdout}");
    assert!(stderr.contains("memory: "), "{stderr}");
    let (code, stdout, stderr) = podrun(&["hooks", "check", "tests/hooks_wasm/all_points.wat"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("mutate_pod") && stdout.contains("filter_log"),
        "{stdout}"
    );
    let (code, _, stderr) = podrun(&["hooks", "check", "tests/hooks_wasm/forbidden_import.wat"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("evil:net/socket"), "{stderr}");
}

#[test]
fn hooks_check_lists_points_and_rejects_forbidden_constructs() {
    let (code, stdout, _) = podrun(&["hooks", "check", "scripts/deny_privileged.rhai"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("implements: validate_pod"), "{stdout}");
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, text, expect) in [
        (
            "imp.rhai",
            "import \"fs\" as fs;\nfn mutate_pod(p, c) { p }",
            "`import` is not allowed",
        ),
        ("ev.rhai", "fn mutate_pod(p, c) {\n eval(\"p\")\n}", "eval"),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        let (code, _, stderr) = podrun(&["hooks", "check", path.to_str().expect("utf-8")]);
        assert_eq!(code, 2, "{stderr}");
        assert!(stderr.contains(expect), "{stderr}");
    }
    let (code, _, stderr) = podrun(&[
        "hooks",
        "check",
        "scripts/deny_privileged.rhai",
        "--point",
        "mutate_pod",
    ]);
    assert_eq!(code, 2, "{stderr}");
}

#[test]
fn render_shows_mutations_and_a_deny_exits_4() {
    let (code, stdout, stderr) = podrun(&[
        "render",
        "tests/hooks/render_task.yaml",
        "--policy",
        "tests/hooks/policy.yaml",
        "-o",
        "json",
        "--tenant",
        "acme",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let pod: Value = serde_json::from_str(&stdout).expect("json pod");
    let labels = &pod["metadata"]["labels"];
    assert_eq!(labels["team"], json!("data"));
    assert_eq!(labels["podrun.dev/tenant"], json!("acme"));
    assert_eq!(labels["platform/policy"], json!("v1"));

    let (code, stdout, stderr) = podrun(&[
        "render",
        "tests/hooks/render_privileged.yaml",
        "--policy",
        "tests/hooks/policy.yaml",
    ]);
    assert_eq!(code, 4, "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains("denied by platform hook \"no-privileged\"")
            && stderr.contains("container \"base\" is privileged"),
        "{stderr}"
    );
    // Without the policy the same task renders.
    let (code, _, stderr) = podrun(&["render", "tests/hooks/render_privileged.yaml"]);
    assert_eq!(code, 0, "{stderr}");

    let (code, _, stderr) = podrun(&["render", "tests/hooks/render_failing.yaml"]);
    assert_eq!(code, 5, "{stderr}");
    assert!(stderr.contains("failed at mutate_pod"), "{stderr}");
}
