//! `podrun hooks test` and `podrun hooks check`: the hook author's loop.
//!
//! `test` runs one hook at one point on one input file and prints its output (stdout,
//! JSON) and the time and resources used (stderr). `check` compiles a hook without
//! running it, rejects forbidden constructs and lists the points it implements.
//!
//! Exit codes: 0 ok; 2 bad input (unreadable or malformed input, config or ctx; a hook
//! that does not compile or uses `import`/`eval`); 4 a `validate_pod` test denied; 5 the
//! hook failed (a limit, a trap, a script error, malformed output).

use std::path::{Path, PathBuf};

use clap::{Args as ClapArgs, Subcommand};
use serde_json::{json, Map, Value};

use super::{Error, Result};
use crate::exit;
use crate::hooks::{
    Decision, Hook, HookRef, HookSource, HookSpec, Layer, Limits, LineAction, OnError, Point,
    Policy, Runtime, Usage, Verdict,
};

/// Arguments of `podrun hooks`.
#[derive(Debug, ClapArgs)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one hook on one input and print its output, time and resource use.
    Test(TestArgs),
    /// Compile a hook without running it and list the points it implements.
    Check(CheckArgs),
}

/// Arguments of `podrun hooks test`.
#[derive(Debug, ClapArgs)]
pub struct TestArgs {
    /// The hook file: `.rhai` (Rhai script) or `.wasm` (component).
    hook: PathBuf,
    /// The point to run: mutate_pod, validate_pod, filter_log, process_xcom or decide.
    #[arg(long, value_parser = parse_point)]
    point: Point,
    /// The input: a Pod (JSON or YAML) for mutate_pod/validate_pod, the XCom value for
    /// process_xcom, the outcome for decide; for filter_log a JSON array of strings or a
    /// text file (one line per line).
    #[arg(long)]
    input: PathBuf,
    /// The hook's `config` (JSON).
    #[arg(long)]
    config: Option<String>,
    /// Fields of `ctx` to set (a JSON object merged over the defaults).
    #[arg(long)]
    ctx: Option<String>,
    /// Policy file whose `limits` apply (default: the built-in limits).
    #[arg(long, env = "PODRUN_POLICY")]
    policy: Option<PathBuf>,
}

/// Arguments of `podrun hooks check`.
#[derive(Debug, ClapArgs)]
pub struct CheckArgs {
    /// The hook file: `.rhai` (Rhai script) or `.wasm` (component).
    hook: PathBuf,
    /// Also require that the hook implements this point.
    #[arg(long, value_parser = parse_point)]
    point: Option<Point>,
}

fn parse_point(s: &str) -> std::result::Result<Point, String> {
    s.parse()
}

/// Run `podrun hooks ...`.
pub fn run(args: Args) -> Result {
    // Hook `log`/`print`/`debug` output is what an author wants to see here; ignore the
    // error if the binary already installed a subscriber.
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .try_init();
    match args.command {
        Command::Test(a) => test(a),
        Command::Check(a) => check(a),
    }
}

fn bad_input(message: String) -> Error {
    Error::new(exit::BAD_INPUT, message)
}

fn hook_error(err: crate::hooks::Error) -> Error {
    Error::new(err.exit_code(), err)
}

/// The hook's kind, from its file extension.
fn source_of(path: &Path) -> Result<HookSource> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("rhai") => Ok(HookSource::Rhai(path.to_owned())),
        // `.wat`: the text form of a component, handy for tests and hand-written hooks.
        Some("wasm" | "wat") => Ok(HookSource::Wasm(path.to_owned())),
        _ => Err(bad_input(format!(
            "{}: expected a .rhai script or a .wasm component",
            path.display()
        ))),
    }
}

fn hook_ref(path: &Path) -> HookRef {
    HookRef {
        tenant: "test".into(),
        layer: Layer::Tenant,
        name: path.file_name().map_or_else(
            || path.display().to_string(),
            |f| f.to_string_lossy().into_owned(),
        ),
        file: Some(path.to_owned()),
    }
}

fn check(args: CheckArgs) -> Result {
    let source = source_of(&args.hook)?;
    let r = hook_ref(&args.hook);
    let points =
        Hook::check(Runtime::global(), &r, &source, &Limits::default()).map_err(hook_error)?;
    if let Some(point) = args.point {
        if !points.contains(&point) {
            return Err(bad_input(format!(
                "{}: does not define `{point}` (it defines: {})",
                args.hook.display(),
                crate::hooks::hook::list(&points)
            )));
        }
    }
    println!(
        "{}: ok; implements: {}",
        args.hook.display(),
        crate::hooks::hook::list(&points)
    );
    Ok(exit::SUCCESS)
}

fn parse_json_arg(name: &str, text: &str) -> Result<Value> {
    serde_json::from_str(text).map_err(|e| bad_input(format!("--{name}: invalid JSON: {e}")))
}

/// Read `--input` for `point`.
fn read_input(path: &Path, point: Point) -> Result<Value> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| bad_input(format!("{}: cannot read the input: {e}", path.display())))?;
    if point == Point::FilterLog {
        if let Ok(Value::Array(items)) = serde_json::from_str::<Value>(&text) {
            if items.iter().all(Value::is_string) {
                return Ok(Value::Array(items));
            }
            return Err(bad_input(format!(
                "{}: a JSON input for filter_log must be an array of strings",
                path.display()
            )));
        }
        return Ok(Value::Array(
            text.lines().map(|l| Value::String(l.to_owned())).collect(),
        ));
    }
    // YAML is a superset of JSON: one parser takes both.
    serde_yaml_ng::from_str(&text)
        .map_err(|e| bad_input(format!("{}: invalid JSON or YAML: {e}", path.display())))
}

fn test(args: TestArgs) -> Result {
    let source = source_of(&args.hook)?;
    let input = read_input(&args.input, args.point)?;
    let config = match &args.config {
        Some(text) => parse_json_arg("config", text)?,
        None => Value::Null,
    };
    let mut ctx = json!({
        "task_id": "test", "run_id": "test", "try_number": 1,
        "namespace": input.pointer("/metadata/namespace").cloned().unwrap_or(json!("default")),
        "pod_name": input.pointer("/metadata/name").cloned().unwrap_or(json!("test")),
        "tenant": "test", "layer": "tenant", "point": args.point.as_str(),
        "config": config, "params": {},
    });
    if args.point == Point::FilterLog {
        ctx["container"] = json!("base");
    }
    if let Some(text) = &args.ctx {
        let Value::Object(extra) = parse_json_arg("ctx", text)? else {
            return Err(bad_input("--ctx must be a JSON object".into()));
        };
        if let Value::Object(base) = &mut ctx {
            merge(base, extra);
        }
    }
    let limits = match &args.policy {
        Some(p) => Policy::load(p).map_err(hook_error)?.limits,
        None => Limits::default(),
    };
    let spec = HookSpec {
        point: args.point,
        source,
        config: ctx["config"].clone(),
        on_error: OnError::Fail,
        name: None,
    };
    let tenant = ctx["tenant"].as_str().unwrap_or("test").to_owned();
    let hook = Hook::load(Runtime::global(), &spec, 0, Layer::Tenant, &tenant, &limits)
        .map_err(hook_error)?;
    let malformed =
        |m: String| hook_error(hook.error(args.point, crate::hooks::Cause::MalformedOutput(m)));

    let (output, usage, code) = match args.point {
        Point::FilterLog => {
            let lines: Vec<&str> = input
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let (actions, usage) = hook.filter_log(&lines, &ctx).map_err(hook_error)?;
            let out = actions
                .into_iter()
                .map(|a| match a {
                    LineAction::Keep => Value::Bool(true),
                    LineAction::Drop => Value::Bool(false),
                    LineAction::Replace(t) => Value::String(t),
                })
                .collect();
            (Value::Array(out), usage, exit::SUCCESS)
        }
        point => {
            let (out, usage) = hook.call(point, &input, &ctx).map_err(hook_error)?;
            let code = match point {
                Point::ValidatePod => {
                    let verdict = Verdict::from_output(&out).map_err(malformed)?;
                    if verdict.allowed {
                        exit::SUCCESS
                    } else {
                        exit::DENIED
                    }
                }
                Point::Decide => {
                    Decision::from_output(&out).map_err(malformed)?;
                    exit::SUCCESS
                }
                Point::MutatePod if !out.is_object() => {
                    return Err(malformed(format!(
                        "mutate_pod must return the pod map, got {out}"
                    )))
                }
                _ => exit::SUCCESS,
            };
            // Show a mutated pod in its original key order, easy to compare with the input.
            let out = if point == Point::MutatePod {
                crate::hooks::diff::reorder_like(&input, out)
            } else {
                out
            };
            (out, usage, code)
        }
    };
    let text =
        serde_json::to_string_pretty(&output).map_err(|e| Error::new(exit::HOOK_FAILED, e))?;
    println!("{text}");
    eprintln!("{}", describe(&usage));
    if code == exit::DENIED {
        eprintln!(
            "denied: {}",
            output["reason"].as_str().unwrap_or("no reason given")
        );
    }
    Ok(code)
}

fn merge(base: &mut Map<String, Value>, extra: Map<String, Value>) {
    for (k, v) in extra {
        base.insert(k, v);
    }
}

/// `time: 41 µs, operations: 812` (and fuel/memory for wasm).
fn describe(usage: &Usage) -> String {
    let mut parts = vec![format!("time: {} µs", usage.elapsed_us)];
    if let Some(ops) = usage.operations {
        parts.push(format!("operations: {ops}"));
    }
    if let Some(fuel) = usage.fuel {
        parts.push(format!("fuel: {fuel}"));
    }
    if let Some(mem) = usage.memory_bytes {
        parts.push(format!("memory: {mem} bytes"));
    }
    parts.join(", ")
}
