//! The Rhai engine through the real loading and calling path (`hooks::Hook`): the
//! example scripts, the helpers, and the hostile-hook suite. Each hostile test asserts the
//! specific cause named in the error.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use podrun::hooks::{
    Cause, Error, Hook, HookSource, HookSpec, Layer, Limit, Limits, OnError, Point, Runtime,
};
use serde_json::{json, Value};

fn spec(point: Point, script: &str) -> HookSpec {
    HookSpec {
        point,
        source: HookSource::Script(script.to_owned()),
        config: Value::Null,
        on_error: OnError::Fail,
        name: Some("test-hook".into()),
    }
}

fn load_with(point: Point, script: &str, tenant: &str, limits: &Limits) -> Result<Hook, Error> {
    Hook::load(
        &Runtime::new(),
        &spec(point, script),
        0,
        Layer::Tenant,
        tenant,
        limits,
    )
}

fn load(point: Point, script: &str) -> Hook {
    match load_with(point, script, "acme", &Limits::default()) {
        Ok(h) => h,
        Err(e) => panic!("load failed: {e}"),
    }
}

/// Default limits but a long deadline, for tests aimed at another limit: Rhai's size
/// checks walk the whole value on every change, which is slow in unoptimised test builds,
/// and with the default 250 ms deadline the deadline would fire first.
fn load_slow(point: Point, script: &str) -> Hook {
    let limits = Limits {
        call_deadline: Duration::from_secs(60),
        ..Limits::default()
    };
    match load_with(point, script, "acme", &limits) {
        Ok(h) => h,
        Err(e) => panic!("load failed: {e}"),
    }
}

fn script_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("scripts")
        .join(name)
}

fn load_file(point: Point, name: &str, config: Value) -> Hook {
    let spec = HookSpec {
        point,
        source: HookSource::Rhai(script_file(name)),
        config,
        on_error: OnError::Fail,
        name: None,
    };
    Hook::load(
        &Runtime::new(),
        &spec,
        0,
        Layer::Tenant,
        "acme",
        &Limits::default(),
    )
    .unwrap_or_else(|e| panic!("load {name}: {e}"))
}

fn ctx(config: Value) -> Value {
    json!({"task_id": "t1", "run_id": "r1", "try_number": 1, "namespace": "ns",
           "pod_name": "p", "tenant": "acme", "layer": "tenant", "config": config,
           "params": {}})
}

/// The call's error cause, panicking with the output if it succeeded.
fn call_err(hook: &Hook, point: Point, input: Value) -> Cause {
    match hook.call(point, &input, &ctx(Value::Null)) {
        Ok((out, _)) => panic!("expected a failure, got {out}"),
        Err(Error::Call {
            cause, point: p, ..
        }) => {
            assert_eq!(p, point);
            cause
        }
        Err(other) => panic!("expected a call error, got {other}"),
    }
}

fn compile_err(point: Point, script: &str) -> (String, usize, Option<Limit>) {
    match load_with(point, script, "acme", &Limits::default()) {
        Ok(_) => panic!("expected a compile error"),
        Err(Error::Compile {
            message,
            line,
            limit,
            ..
        }) => (message, line, limit),
        Err(other) => panic!("expected a compile error, got {other}"),
    }
}

fn pod() -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "p", "namespace": "ns", "labels": {"app": "x"}},
           "spec": {"containers": [{"name": "base", "image": "busybox"}]}})
}

// ---- the example scripts --------------------------------------------------------------

#[test]
fn label_injector_adds_config_labels_and_tenant() {
    let hook = load_file(Point::MutatePod, "label_injector.rhai", Value::Null);
    assert_eq!(hook.points(), &[Point::MutatePod]);
    let (out, usage) = hook
        .call(
            Point::MutatePod,
            &pod(),
            &ctx(json!({"labels": {"team": "data"}})),
        )
        .expect("mutate");
    assert_eq!(
        out["metadata"]["labels"],
        json!({"app": "x", "team": "data", "podrun.dev/tenant": "acme"})
    );
    assert!(usage.operations.is_some_and(|o| o > 0));
    let cause = match hook.call(Point::MutatePod, &pod(), &ctx(json!({"labels": {"n": 1}}))) {
        Err(Error::Call { cause, .. }) => cause,
        other => panic!("expected an error, got {other:?}"),
    };
    assert!(
        matches!(&cause, Cause::Script { message, .. } if message.contains("config.labels.n must be a string")),
        "{cause}"
    );
}

#[test]
fn log_redactor_masks_secrets_and_drops_noise() {
    let hook = load_file(Point::FilterLog, "log_redactor.rhai", Value::Null);
    let lines = [
        "starting job",
        "login password=hunter2 ok",
        "Authorization: Bearer abc.def",
        "healthcheck ok",
    ];
    let mut c = ctx(json!({"drop_containing": ["healthcheck"], "patterns": ["[0-9]{4}-[0-9]{4}"]}));
    c["container"] = json!("base");
    let (actions, _) = hook.filter_log(&lines, &c).expect("filter");
    use podrun::hooks::LineAction::*;
    assert_eq!(
        actions,
        vec![
            Keep,
            Replace("login password=*** ok".into()),
            Replace("Authorization: Bearer ***".into()),
            Drop
        ]
    );
    let (actions, _) = hook.filter_log(&["card 1234-5678"], &c).expect("filter");
    assert_eq!(actions, vec![Replace("card ***".into())]);
}

#[test]
fn xcom_transformer_wraps_and_keeps_keys() {
    let hook = load_file(Point::ProcessXcom, "xcom_transformer.rhai", Value::Null);
    let (out, _) = hook
        .call(
            Point::ProcessXcom,
            &json!({"rows": 3, "status": "ok", "debug": [1, 2]}),
            &ctx(json!({"keep": ["rows", "status"]})),
        )
        .expect("xcom");
    assert_eq!(
        out,
        json!({"value": {"rows": 3, "status": "ok"}, "task_id": "t1", "try_number": 1})
    );
    let (out, _) = hook
        .call(Point::ProcessXcom, &Value::Null, &ctx(Value::Null))
        .expect("xcom");
    assert_eq!(out, Value::Null);
}

#[test]
fn skip_decider_skips_fails_and_keeps() {
    let hook = load_file(Point::Decide, "skip_decider.rhai", Value::Null);
    let outcome = |code: i64, reason: &str, xcom: Value| {
        json!({"result": "failed", "exit_code": code, "reason": reason, "message": null,
               "phase": "Failed", "containers": [], "xcom": xcom})
    };
    let cfg = ctx(json!({"skip_exit_codes": [99]}));
    let decide = |input: Value| hook.call(Point::Decide, &input, &cfg).expect("decide").0;
    assert_eq!(
        decide(outcome(99, "Error", Value::Null)),
        json!({"skip": "exit code 99 means nothing to do"})
    );
    assert_eq!(
        decide(outcome(137, "OOMKilled", Value::Null)),
        json!({"fail": "container was OOMKilled: raise its memory limit"})
    );
    assert_eq!(
        decide(outcome(0, "Completed", json!({"skip": "no data"}))),
        json!({"skip": "no data"})
    );
    assert_eq!(decide(outcome(1, "Error", Value::Null)), json!("keep"));
}

#[test]
fn deny_privileged_denies_and_warns() {
    let hook = load_file(Point::ValidatePod, "deny_privileged.rhai", Value::Null);
    let (out, _) = hook
        .call(Point::ValidatePod, &pod(), &ctx(Value::Null))
        .expect("validate");
    assert_eq!(
        out,
        json!({"allowed": true, "warnings": ["container \"base\" does not set runAsNonRoot"]})
    );
    let mut bad = pod();
    bad["spec"]["containers"][0]["securityContext"] = json!({"privileged": true});
    let (out, _) = hook
        .call(Point::ValidatePod, &bad, &ctx(Value::Null))
        .expect("validate");
    assert_eq!(
        out,
        json!({"allowed": false, "reason": "container \"base\" is privileged"})
    );
    let mut host = pod();
    host["spec"]["hostNetwork"] = json!(true);
    let (out, _) = hook
        .call(Point::ValidatePod, &host, &ctx(Value::Null))
        .expect("validate");
    assert_eq!(out["reason"], json!("spec.hostNetwork is not allowed"));
}

// ---- helpers ---------------------------------------------------------------------------

#[test]
fn json_and_regex_helpers_work() {
    let hook = load(
        Point::ProcessXcom,
        r#"fn process_xcom(value, ctx) {
               let parsed = parse_json(value.text);
               parsed.n += 1;
               #{json: to_json(parsed),
                 m: regex_match("abc123", "^[a-z]+[0-9]+$"),
                 r: regex_replace("a1b22c333", "([0-9]+)", "<$1>")}
           }"#,
    );
    let (out, _) = hook
        .call(
            Point::ProcessXcom,
            &json!({"text": "{\"n\": 1}"}),
            &ctx(Value::Null),
        )
        .expect("call");
    assert_eq!(
        out,
        json!({"json": "{\"n\":2}", "m": true, "r": "a<1>b<22>c<333>"})
    );
    let cause = call_err(
        &load(
            Point::ProcessXcom,
            r#"fn process_xcom(v, ctx) { regex_match("x", "(") }"#,
        ),
        Point::ProcessXcom,
        Value::Null,
    );
    assert!(
        matches!(&cause, Cause::Script { message, .. } if message.contains("invalid regex")),
        "{cause}"
    );
}

// ---- hostile hooks ---------------------------------------------------------------------

#[test]
fn infinite_loop_hits_the_operation_limit() {
    let hook = load_slow(Point::MutatePod, "fn mutate_pod(pod, ctx) { loop {} }");
    let cause = call_err(&hook, Point::MutatePod, pod());
    assert_eq!(cause.limit(), Some(Limit::Operations), "{cause}");
    assert!(cause.to_string().contains("1000000"), "{cause}");
}

#[test]
fn infinite_loop_hits_the_deadline_when_operations_allow_it() {
    let limits = Limits {
        rhai_max_operations: u64::MAX / 2,
        call_deadline: Duration::from_millis(100),
        ..Limits::default()
    };
    let hook = load_with(
        Point::MutatePod,
        "fn mutate_pod(pod, ctx) { let i = 0; loop { i += 1; } }",
        "acme",
        &limits,
    )
    .expect("load");
    let cause = call_err(&hook, Point::MutatePod, pod());
    assert_eq!(cause.limit(), Some(Limit::Deadline), "{cause}");
    assert!(cause.to_string().contains("100 ms"), "{cause}");
}

#[test]
fn log_batch_budget_is_per_line() {
    // 20,000 operations for one line exceeds the 10,000-per-line budget.
    // A long deadline: this test is about the operation budget, not time.
    let limits = Limits {
        log_batch_deadline: Duration::from_secs(60),
        ..Limits::default()
    };
    let hook = load_with(
        Point::FilterLog,
        "fn filter_log(lines, ctx) { let i = 0; while i < 5000 { i += 1; } lines.map(|l| true) }",
        "acme",
        &limits,
    )
    .expect("load");
    let err = hook
        .filter_log(&["one line"], &ctx(Value::Null))
        .expect_err("budget");
    assert_eq!(
        err.cause().and_then(Cause::limit),
        Some(Limit::Operations),
        "{err}"
    );
    // The same script is fine for a batch of 100 lines (1,000,000 operations).
    let lines: Vec<String> = (0..100).map(|i| format!("line {i}")).collect();
    let (actions, _) = hook
        .filter_log(&lines, &ctx(Value::Null))
        .expect("batch of 100");
    assert_eq!(actions.len(), 100);
}

#[test]
fn deep_recursion_hits_the_call_depth_limit() {
    let hook = load(
        Point::MutatePod,
        "fn down(n) { down(n + 1) }\nfn mutate_pod(pod, ctx) { down(0) }",
    );
    let cause = call_err(&hook, Point::MutatePod, pod());
    assert_eq!(cause.limit(), Some(Limit::CallDepth), "{cause}");
}

#[test]
fn string_bomb_hits_the_string_limit() {
    let hook = load_slow(
        Point::MutatePod,
        r#"fn mutate_pod(pod, ctx) { let s = "xxxxxxxx"; loop { s += s; } }"#,
    );
    assert_eq!(
        call_err(&hook, Point::MutatePod, pod()).limit(),
        Some(Limit::StringSize)
    );
    // Through a helper too: a replacement that grows every match.
    let hook = load_slow(
        Point::MutatePod,
        r#"fn mutate_pod(pod, ctx) {
               let s = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
               loop { s = regex_replace(s, "a", "aa"); }
           }"#,
    );
    assert_eq!(
        call_err(&hook, Point::MutatePod, pod()).limit(),
        Some(Limit::StringSize)
    );
}

#[test]
fn array_bomb_hits_the_array_limit() {
    let hook = load_slow(
        Point::MutatePod,
        "fn mutate_pod(pod, ctx) { let a = []; loop { a.push(1); } }",
    );
    assert_eq!(
        call_err(&hook, Point::MutatePod, pod()).limit(),
        Some(Limit::ArraySize)
    );
    // Nested doubling counts nested elements.
    let hook = load_slow(
        Point::MutatePod,
        "fn mutate_pod(pod, ctx) { let a = [1]; loop { a = [a, a]; } }",
    );
    assert_eq!(
        call_err(&hook, Point::MutatePod, pod()).limit(),
        Some(Limit::ArraySize)
    );
}

#[test]
fn map_bomb_hits_the_map_limit() {
    let hook = load_slow(
        Point::MutatePod,
        r#"fn mutate_pod(pod, ctx) { let m = #{}; for i in 0..20000 { m[`k${i}`] = i; } m }"#,
    );
    assert_eq!(
        call_err(&hook, Point::MutatePod, pod()).limit(),
        Some(Limit::MapSize)
    );
    // Nested doubling counts nested properties.
    let hook = load_slow(
        Point::MutatePod,
        "fn mutate_pod(pod, ctx) { let m = #{x: 1}; loop { m = #{a: m, b: m}; } }",
    );
    assert_eq!(
        call_err(&hook, Point::MutatePod, pod()).limit(),
        Some(Limit::MapSize)
    );
}

#[test]
fn too_many_variables_hits_the_variable_limit() {
    let limits = Limits {
        rhai_max_variables: 10,
        ..Limits::default()
    };
    let body: String = (0..20).map(|i| format!("let v{i} = {i};\n")).collect();
    let hook = load_with(
        Point::MutatePod,
        &format!("fn mutate_pod(pod, ctx) {{\n{body} pod }}"),
        "acme",
        &limits,
    )
    .expect("load");
    assert_eq!(
        call_err(&hook, Point::MutatePod, pod()).limit(),
        Some(Limit::Variables)
    );
}

#[test]
fn deep_expression_and_too_many_functions_fail_to_compile() {
    let deep = format!(
        "fn mutate_pod(pod, ctx) {{ {}1{} }}",
        "(".repeat(200),
        ")".repeat(200)
    );
    let (_, _, limit) = compile_err(Point::MutatePod, &deep);
    assert_eq!(limit, Some(Limit::ExpressionDepth));
    let many: String = (0..300).map(|i| format!("fn f{i}() {{ {i} }}\n")).collect();
    let (_, _, limit) = compile_err(Point::MutatePod, &many);
    assert_eq!(limit, Some(Limit::Functions));
}

#[test]
fn huge_output_hits_the_output_limit() {
    // 10,000 strings of 100 quote characters stay within Rhai's limits (1,000,000 string
    // bytes, 10,000 elements) but are about 2 MB once escaped as JSON.
    let hook = load_slow(
        Point::ProcessXcom,
        r#"fn process_xcom(value, ctx) {
               let s = ""; for i in 0..100 { s += "\""; }
               let out = []; for i in 0..9999 { out.push(s); }
               out
           }"#,
    );
    let cause = call_err(&hook, Point::ProcessXcom, Value::Null);
    assert_eq!(cause.limit(), Some(Limit::OutputSize), "{cause}");
}

#[test]
fn oversized_input_is_refused_before_running() {
    let hook = load(Point::ProcessXcom, "fn process_xcom(v, ctx) { v }");
    let big = Value::String("x".repeat(2 << 20));
    assert_eq!(
        call_err(&hook, Point::ProcessXcom, big).limit(),
        Some(Limit::InputSize)
    );
}

#[test]
fn invalid_output_is_malformed() {
    // Rhai values without a JSON form.
    let hook = load(
        Point::ProcessXcom,
        "fn process_xcom(v, ctx) { Fn(\"process_xcom\") }",
    );
    assert!(matches!(
        call_err(&hook, Point::ProcessXcom, Value::Null),
        Cause::MalformedOutput(_)
    ));
    // filter_log with the wrong number of actions or a wrong type.
    let hook = load(Point::FilterLog, "fn filter_log(lines, ctx) { [true] }");
    let err = hook
        .filter_log(&["a", "b"], &ctx(Value::Null))
        .expect_err("length");
    assert!(
        matches!(err.cause(), Some(Cause::MalformedOutput(m)) if m.contains("1 actions for 2 lines")),
        "{err}"
    );
    let hook = load(
        Point::FilterLog,
        "fn filter_log(lines, ctx) { lines.map(|l| 42) }",
    );
    let err = hook
        .filter_log(&["a"], &ctx(Value::Null))
        .expect_err("type");
    assert!(
        matches!(err.cause(), Some(Cause::MalformedOutput(_))),
        "{err}"
    );
}

#[test]
fn script_error_names_line_and_column() {
    let hook = load(
        Point::MutatePod,
        "fn mutate_pod(pod, ctx) {\n    let x = 1;\n    let y = x + \"a\" * 2;\n    pod\n}",
    );
    match call_err(&hook, Point::MutatePod, pod()) {
        Cause::Script {
            line,
            column,
            message,
        } => {
            assert_eq!(line, 3, "{message}");
            assert!(column > 0, "{message}");
        }
        other => panic!("expected a script error, got {other}"),
    }
    let hook = load(
        Point::MutatePod,
        "fn helper() {\n  throw \"boom\";\n}\nfn mutate_pod(pod, ctx) { helper() }",
    );
    match call_err(&hook, Point::MutatePod, pod()) {
        Cause::Script { line, message, .. } => {
            assert_eq!(line, 2, "{message}");
            assert!(message.contains("boom"), "{message}");
        }
        other => panic!("expected a script error, got {other}"),
    }
    let (message, line, _) =
        compile_err(Point::MutatePod, "fn mutate_pod(pod, ctx) {\n  let = 3;\n}");
    assert_eq!(line, 2, "{message}");
}

#[test]
fn import_and_eval_are_rejected_at_compile_time() {
    let (message, line, _) = compile_err(
        Point::MutatePod,
        "import \"os\" as os;\nfn mutate_pod(pod, ctx) { pod }",
    );
    assert!(message.contains("import"), "{message}");
    assert_eq!(line, 1);
    let (message, line, _) = compile_err(
        Point::MutatePod,
        "fn mutate_pod(pod, ctx) {\n  eval(\"pod\")\n}",
    );
    assert!(message.contains("eval"), "{message}");
    assert_eq!(line, 2);
}

#[test]
fn host_access_functions_do_not_exist() {
    for call in [
        "open(\"/etc/passwd\")",
        "read_file(\"/etc/passwd\")",
        "env(\"HOME\")",
        "getenv(\"HOME\")",
        "sleep(10)",
        "timestamp()",
        "connect(\"example.com:80\")",
    ] {
        let hook = load(
            Point::ProcessXcom,
            &format!("fn process_xcom(v, ctx) {{\n  {call}\n}}"),
        );
        match call_err(&hook, Point::ProcessXcom, Value::Null) {
            Cause::Script { message, line, .. } => {
                assert!(
                    message.starts_with("function not found"),
                    "{call}: {message}"
                );
                assert_eq!(line, 2, "{call}");
            }
            other => panic!("{call}: expected function not found, got {other}"),
        }
    }
}

#[test]
fn print_and_log_do_not_fail_and_reach_no_stdout() {
    let hook = load(
        Point::ProcessXcom,
        "fn process_xcom(v, ctx) { print(\"p\"); debug(\"d\"); log(\"l\"); log(42); v }",
    );
    let (out, _) = hook
        .call(Point::ProcessXcom, &json!(1), &ctx(Value::Null))
        .expect("call");
    assert_eq!(out, json!(1));
}

#[test]
fn state_cannot_survive_between_calls() {
    // A top-level variable is invisible inside functions: a compile error, not shared state.
    let (message, _, _) = compile_err(
        Point::ProcessXcom,
        "let count = 0;\nfn process_xcom(v, ctx) { count += 1; count }",
    );
    assert!(message.contains("count"), "{message}");
    // Mutating the inputs (ctx.config, the value) does not carry over to the next call,
    // even through the cached AST and shared engine of one tenant.
    let runtime = Runtime::new();
    let s = spec(
        Point::ProcessXcom,
        "fn process_xcom(v, ctx) { ctx.config.seen.push(1); v.calls += 1; [ctx.config.seen.len(), v.calls] }",
    );
    let limits = Limits::default();
    let a = Hook::load(&runtime, &s, 0, Layer::Tenant, "acme", &limits).expect("a");
    let b = Hook::load(&runtime, &s, 0, Layer::Tenant, "acme", &limits).expect("b");
    let input = json!({"calls": 0});
    let c = ctx(json!({"seen": []}));
    for hook in [&a, &b, &a] {
        let (out, _) = hook.call(Point::ProcessXcom, &input, &c).expect("call");
        assert_eq!(out, json!([1, 1]));
    }
}

#[test]
fn deny_outside_validate_is_an_error_and_inside_is_a_verdict() {
    let hook = load(Point::MutatePod, "fn mutate_pod(pod, ctx) { deny(\"no\") }");
    assert!(matches!(
        call_err(&hook, Point::MutatePod, pod()),
        Cause::Script { .. }
    ));
    let hook = load(
        Point::ValidatePod,
        "fn check(pod) { if pod.metadata.name == \"p\" { deny(\"name p is reserved\") } }\n\
         fn validate_pod(pod, ctx) { check(pod); #{allowed: true} }",
    );
    let (out, _) = hook
        .call(Point::ValidatePod, &pod(), &ctx(Value::Null))
        .expect("validate");
    assert_eq!(
        out,
        json!({"allowed": false, "reason": "name p is reserved"})
    );
}

#[test]
fn declared_point_must_be_defined_with_two_parameters() {
    let err = load_with(
        Point::Decide,
        "fn mutate_pod(pod, ctx) { pod }",
        "acme",
        &Limits::default(),
    )
    .expect_err("missing");
    assert!(
        err.to_string().contains("defines no `decide` function"),
        "{err}"
    );
    let (message, _, _) = compile_err(Point::MutatePod, "fn mutate_pod(pod) { pod }");
    assert!(message.contains("two parameters"), "{message}");
}

#[test]
fn hostile_tenant_does_not_disturb_a_concurrent_well_behaved_one() {
    let runtime = Arc::new(Runtime::new());
    let hostile_limits = Limits {
        rhai_max_operations: u64::MAX / 2,
        call_deadline: Duration::from_secs(3),
        ..Limits::default()
    };
    let hostile_done = Arc::new(AtomicBool::new(false));
    let hostile = {
        let runtime = runtime.clone();
        let done = hostile_done.clone();
        std::thread::spawn(move || {
            let hook = Hook::load(
                &runtime,
                &spec(
                    Point::MutatePod,
                    "fn mutate_pod(pod, ctx) { let s = []; loop { s.push(1); s.clear(); } }",
                ),
                0,
                Layer::Tenant,
                "evil",
                &hostile_limits,
            )
            .expect("load hostile");
            let result = hook.call(Point::MutatePod, &pod(), &ctx(Value::Null));
            done.store(true, Ordering::SeqCst);
            result
        })
    };
    let good = Hook::load(
        &runtime,
        &HookSpec {
            point: Point::MutatePod,
            source: HookSource::Rhai(script_file("label_injector.rhai")),
            config: Value::Null,
            on_error: OnError::Fail,
            name: None,
        },
        0,
        Layer::Tenant,
        "good",
        &Limits::default(),
    )
    .expect("load good");
    for i in 0..200 {
        let (out, _) = good
            .call(
                Point::MutatePod,
                &pod(),
                &ctx(json!({"labels": {"i": i.to_string()}})),
            )
            .expect("well-behaved call");
        assert_eq!(out["metadata"]["labels"]["i"], json!(i.to_string()));
    }
    assert!(
        !hostile_done.load(Ordering::SeqCst),
        "the well-behaved tenant finished only after the hostile one stopped"
    );
    let err = hostile
        .join()
        .expect("hostile thread")
        .expect_err("hostile must fail");
    assert_eq!(
        err.cause().and_then(Cause::limit),
        Some(Limit::Deadline),
        "{err}"
    );
    assert!(err.to_string().contains("\"evil\""), "{err}");
}

#[test]
fn nesting_bombs_stop_cleanly_without_overflowing_the_stack() {
    // Unbounded nesting: Rhai's size limits count elements, not depth, so this runs until
    // the deadline or operation budget; the process must survive (the call runs on a hook
    // thread with a large stack).
    let hook = load(
        Point::ProcessXcom,
        "fn process_xcom(v, ctx) { let m = #{}; loop { m = #{a: m}; } }",
    );
    let limit = call_err(&hook, Point::ProcessXcom, Value::Null).limit();
    assert!(
        matches!(
            limit,
            Some(Limit::Deadline | Limit::Operations | Limit::MapSize)
        ),
        "{limit:?}"
    );
    // A deep value that is returned is refused by depth before podrun touches it.
    let hook = load_slow(
        Point::ProcessXcom,
        "fn process_xcom(v, ctx) { let m = []; for i in 0..3000 { m = [m]; } m }",
    );
    let cause = call_err(&hook, Point::ProcessXcom, Value::Null);
    assert_eq!(cause.limit(), Some(Limit::Depth), "{cause}");
}
