//! The Rhai engine for untrusted hook scripts: one hardened, immutable engine per tenant
//! (and limits), scripts compiled once and cached by content hash, a fresh scope per call.
//!
//! Calling convention: a script defines functions named after the points it implements,
//! each taking `(input, ctx)`:
//!
//! - `fn mutate_pod(pod, ctx)` returns the (changed) pod map;
//! - `fn validate_pod(pod, ctx)` returns `#{allowed: bool, reason: "..", warnings: [..]}`,
//!   or calls `deny(reason)`, which ends the script with a deny;
//! - `fn filter_log(lines, ctx)` returns an array with one element per line: `true`
//!   (keep), `false` (drop) or a string (replace);
//! - `fn process_xcom(value, ctx)` returns the new value;
//! - `fn decide(outcome, ctx)` returns `"keep"`, `"success"`, `#{skip: reason}` or
//!   `#{fail: reason}`.
//!
//! Top-level statements are not run (only functions are called), and nothing survives a
//! call: each call gets a new scope, the AST is immutable, and Rhai functions cannot see
//! any variable outside their parameters.

mod convert;
mod errors;
mod harden;
mod helpers;
mod worker;

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rhai::{Array, CallFnOptions, Dynamic, Engine, Scope, AST};
use serde_json::Value;
use sha2::{Digest, Sha256};

pub use harden::{harden, hardened_engine};
pub use worker::run as run_on_hook_thread;

use self::errors::{compile_failure, eval_failure, Failure};
use self::harden::CallGuard;
use super::{Cause, Error, HookRef, Limit, Limits, LineAction, Point, Usage};

/// A tenant's Rhai engine: immutable after construction, shared by all of its hooks.
pub struct RhaiEngine {
    engine: Engine,
    limits: Limits,
    /// Compiled scripts by sha256 of their text.
    asts: Mutex<HashMap<[u8; 32], Arc<AST>>>,
}

impl std::fmt::Debug for RhaiEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RhaiEngine")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// A compiled Rhai hook.
#[derive(Debug, Clone)]
pub struct RhaiHook {
    hook: HookRef,
    name: Arc<str>,
    ast: Arc<AST>,
    points: Vec<Point>,
}

impl RhaiHook {
    /// The points this script defines a function for.
    pub fn points(&self) -> &[Point] {
        &self.points
    }

    /// Whether the script defines `point`.
    pub fn implements(&self, point: Point) -> bool {
        self.points.contains(&point)
    }

    /// Which hook this is.
    pub fn hook_ref(&self) -> &HookRef {
        &self.hook
    }
}

impl RhaiEngine {
    /// A hardened engine with these limits.
    pub fn new(limits: &Limits) -> Self {
        let mut engine = hardened_engine(limits);
        helpers::register(&mut engine, limits);
        RhaiEngine {
            engine,
            limits: limits.clone(),
            asts: Mutex::new(HashMap::new()),
        }
    }

    /// The limits this engine enforces.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Compile `source` (or take it from the cache) and list the points it implements.
    /// Forbidden constructs (`import`, `eval`) and compile-time limits fail here.
    pub fn load(&self, hook: HookRef, source: &str) -> Result<RhaiHook, Error> {
        let compile_error = |message: String, line, column, limit| Error::Compile {
            hook: Box::new(hook.clone()),
            message,
            line,
            column,
            limit,
        };
        if source.len() > self.limits.max_input_bytes {
            return Err(compile_error(
                format!(
                    "script is {} bytes, more than {}",
                    source.len(),
                    self.limits.max_input_bytes
                ),
                0,
                0,
                Some(Limit::InputSize),
            ));
        }
        let digest: [u8; 32] = Sha256::digest(source.as_bytes()).into();
        let cached = self
            .asts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&digest)
            .cloned();
        let ast = match cached {
            Some(ast) => ast,
            None => {
                let ast = self.engine.compile(source).map_err(|e| {
                    let f = compile_failure(&e, &self.limits);
                    compile_error(f.message, f.line, f.column, f.limit)
                })?;
                let ast = Arc::new(ast);
                self.asts
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .insert(digest, ast.clone());
                ast
            }
        };
        let mut points = Vec::new();
        for f in ast.iter_functions() {
            let Ok(point) = f.name.parse::<Point>() else {
                continue;
            };
            if f.params.len() != 2 {
                return Err(compile_error(
                    format!(
                        "fn {}({}) must take two parameters (input, ctx)",
                        f.name,
                        f.params.join(", ")
                    ),
                    0,
                    0,
                    None,
                ));
            }
            if !points.contains(&point) {
                points.push(point);
            }
        }
        points.sort_by_key(|p| Point::ALL.iter().position(|q| q == p));
        Ok(RhaiHook {
            name: Arc::from(hook.name.as_str()),
            hook,
            ast,
            points,
        })
    }

    /// Run an admission-style point (`mutate_pod`, `validate_pod`, `process_xcom`,
    /// `decide`) on JSON input. A `deny(reason)` in `validate_pod` comes back as
    /// `{allowed: false, reason}`; the output is otherwise the function's JSON value,
    /// unparsed (the pipeline checks it against the point's contract).
    pub fn call(
        self: &Arc<Self>,
        hook: &RhaiHook,
        point: Point,
        input: &Value,
        ctx: &Value,
    ) -> Result<(Value, Usage), Cause> {
        let started = Instant::now();
        check_input(input, &self.limits)?;
        // Inputs are converted here: they come from podrun (bounded depth), so the caller's
        // stack is enough, and moving the converted values saves cloning the JSON.
        let dynamic = to_dynamic(input)?;
        let ctx = to_dynamic(ctx)?;
        let engine = self.clone();
        let rhai_hook = hook.clone();
        let output =
            worker::run(move || engine.call_here(&rhai_hook, point, dynamic, ctx, started))
                .unwrap_or_else(|panic| {
                    Err(Cause::Trap(format!("the Rhai engine panicked: {panic}")))
                })?;
        // Rhai maps come back sorted by key; callers that show a pod restore the original
        // order with `hooks::diff::reorder_like` (render sorts keys anyway).
        Ok(output)
    }

    /// [`RhaiEngine::call`] on the current (hook) thread: the output is converted and
    /// checked here, because it may be arbitrarily deep until checked.
    fn call_here(
        &self,
        hook: &RhaiHook,
        point: Point,
        input: Dynamic,
        ctx: Dynamic,
        started: Instant,
    ) -> Result<(Value, Usage), Cause> {
        let (result, operations) = self.invoke(hook, point, input, ctx, 1, started)?;
        let output = match result {
            Ok(value) => from_dynamic(&value)?,
            Err(reason) if point == Point::ValidatePod => {
                serde_json::json!({"allowed": false, "reason": reason})
            }
            Err(_) => {
                return Err(Cause::Script {
                    message: format!("deny() can only be used in validate_pod, not {point}"),
                    line: 0,
                    column: 0,
                })
            }
        };
        check_output(&output, &self.limits)?;
        Ok((output, Usage::rhai(started.elapsed(), operations)))
    }

    /// Run `filter_log` on one batch of lines (the pipeline keeps batches within
    /// `max_log_batch_lines`). Returns one action per line.
    pub fn filter_log<S: AsRef<str>>(
        self: &Arc<Self>,
        hook: &RhaiHook,
        lines: &[S],
        ctx: &Value,
    ) -> Result<(Vec<LineAction>, Usage), Cause> {
        let started = Instant::now();
        let bytes: usize = lines.iter().map(|l| l.as_ref().len()).sum();
        if bytes > self.limits.max_input_bytes {
            return Err(Cause::Limit {
                limit: Limit::InputSize,
                detail: format!("batch of {bytes} bytes"),
            });
        }
        let array: Array = lines
            .iter()
            .map(|l| Dynamic::from(rhai::ImmutableString::from(l.as_ref())))
            .collect();
        let count = lines.len();
        let ctx = to_dynamic(ctx)?;
        let (engine, hook) = (self.clone(), hook.clone());
        worker::run(move || {
            let (result, operations) =
                engine.invoke(&hook, Point::FilterLog, array.into(), ctx, count, started)?;
            let value = result.map_err(|_| Cause::Script {
                message: "deny() can only be used in validate_pod, not filter_log".into(),
                line: 0,
                column: 0,
            })?;
            let actions = line_actions(value, count)?;
            Ok((actions, Usage::rhai(started.elapsed(), operations)))
        })
        .unwrap_or_else(|panic| Err(Cause::Trap(format!("the Rhai engine panicked: {panic}"))))
    }

    /// Call the point's function with a fresh scope under the call guard. The inner
    /// `Err(reason)` is a `deny(reason)`.
    fn invoke(
        &self,
        hook: &RhaiHook,
        point: Point,
        input: Dynamic,
        ctx: Dynamic,
        lines: usize,
        started: Instant,
    ) -> Result<(Result<Dynamic, String>, u64), Cause> {
        if !hook.implements(point) {
            return Err(Cause::MissingPoint(point));
        }
        let guard = CallGuard::enter(
            hook.name.clone(),
            started + self.limits.deadline(point),
            self.limits.rhai_operations(point, lines),
            self.limits.max_log_bytes_per_call,
        );
        let mut scope = Scope::new();
        // eval_ast(false): top-level statements are not run on every call (they would cost
        // time and could only compute constants anyway).
        let options = CallFnOptions::new().eval_ast(false).rewind_scope(true);
        let result = self.engine.call_fn_with_options::<Dynamic>(
            options,
            &mut scope,
            &hook.ast,
            point.as_str(),
            (input, ctx),
        );
        let operations = guard.operations();
        drop(guard);
        match result {
            Ok(value) => Ok((Ok(value), operations)),
            Err(err) => match eval_failure(&err, &self.limits, point) {
                Failure::Deny(reason) => Ok((Err(reason), operations)),
                Failure::Cause(cause) => Err(cause),
            },
        }
    }
}

fn to_dynamic(value: &Value) -> Result<Dynamic, Cause> {
    Ok(convert::to_dynamic(value))
}

fn from_dynamic(value: &Dynamic) -> Result<Value, Cause> {
    convert::from_dynamic(value).map_err(Cause::MalformedOutput)
}

/// One action per line from the script's array.
fn line_actions(value: Dynamic, lines: usize) -> Result<Vec<LineAction>, Cause> {
    let type_name = value.type_name();
    let Some(array) = value.try_cast::<Array>() else {
        return Err(Cause::MalformedOutput(format!(
            "filter_log must return an array, got {type_name}"
        )));
    };
    if array.len() != lines {
        return Err(Cause::MalformedOutput(format!(
            "filter_log returned {} actions for {lines} lines",
            array.len()
        )));
    }
    array
        .into_iter()
        .map(|item| {
            if let Ok(keep) = item.as_bool() {
                Ok(if keep {
                    LineAction::Keep
                } else {
                    LineAction::Drop
                })
            } else if item.is_string() {
                Ok(LineAction::Replace(item.to_string()))
            } else {
                Err(Cause::MalformedOutput(format!(
                    "filter_log must return true, false or a string per line, got {}",
                    item.type_name()
                )))
            }
        })
        .collect()
}

/// Bytes of `s` as a JSON string: quotes, and serde_json's escapes.
fn string_len(s: &str) -> usize {
    2 + s
        .bytes()
        .map(|b| match b {
            b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 2,
            0..=0x1f => 6,
            _ => 1,
        })
        .sum::<usize>()
}

/// Bytes of a JSON number as serde_json writes it.
fn number_len(n: &serde_json::Number) -> usize {
    if let Some(u) = n.as_u64() {
        u.checked_ilog10().map_or(1, |d| d as usize + 1)
    } else if let Some(i) = n.as_i64() {
        // Negative (non-negative ones are u64 above): the sign plus the digits.
        1 + i
            .unsigned_abs()
            .checked_ilog10()
            .map_or(1, |d| d as usize + 1)
    } else {
        n.to_string().len()
    }
}

/// Bytes of `value` as JSON text, without building the text.
pub(crate) fn json_len(value: &Value) -> usize {
    struct Count(usize);
    impl Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing to a counter cannot fail, and a `Value` always serializes.
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

fn check_input(input: &Value, limits: &Limits) -> Result<(), Cause> {
    let len = json_len(input);
    if len > limits.max_input_bytes {
        return Err(Cause::Limit {
            limit: Limit::InputSize,
            detail: format!("{len} bytes, at most {}", limits.max_input_bytes),
        });
    }
    Ok(())
}

fn check_output(output: &Value, limits: &Limits) -> Result<(), Cause> {
    // Depth first: deeper values would overflow the caller's (smaller) stack in serde,
    // diffing or drop. This runs on the hook thread, where the value is then dropped.
    let shape = json_shape(output);
    if shape.depth > limits.max_output_depth {
        return Err(Cause::Limit {
            limit: Limit::Depth,
            detail: format!(
                "{} levels, at most {}",
                shape.depth, limits.max_output_depth
            ),
        });
    }
    // Rhai misses maps grown key by key (`m[k] = v`); check the returned value as Rhai
    // would have.
    if shape.map_properties > limits.rhai_max_map_len {
        return Err(Cause::Limit {
            limit: Limit::MapSize,
            detail: format!("{} properties", limits.rhai_max_map_len),
        });
    }
    if shape.array_elements > limits.rhai_max_array_len {
        return Err(Cause::Limit {
            limit: Limit::ArraySize,
            detail: format!("{} elements", limits.rhai_max_array_len),
        });
    }
    let len = shape.json_bytes;
    if len > limits.max_output_bytes {
        return Err(Cause::Limit {
            limit: Limit::OutputSize,
            detail: format!("{len} bytes, at most {}", limits.max_output_bytes),
        });
    }
    Ok(())
}

/// Depth and nested element counts of a JSON value.
struct Shape {
    depth: usize,
    array_elements: usize,
    map_properties: usize,
    /// Length of the compact JSON text (exact for everything but floats, which are
    /// counted by formatting them).
    json_bytes: usize,
}

/// The [`Shape`] of a value (a scalar has depth 0), without recursion.
fn json_shape(value: &Value) -> Shape {
    let mut shape = Shape {
        depth: 0,
        array_elements: 0,
        map_properties: 0,
        json_bytes: 0,
    };
    let mut stack = vec![(value, 0usize)];
    while let Some((v, depth)) = stack.pop() {
        shape.depth = shape.depth.max(depth);
        shape.json_bytes += match v {
            Value::Null => 4,
            Value::Bool(b) => 4 + usize::from(!*b),
            Value::Number(n) => number_len(n),
            Value::String(s) => string_len(s),
            Value::Array(items) => {
                shape.array_elements += items.len();
                stack.extend(items.iter().map(|i| (i, depth + 1)));
                2 + items.len().saturating_sub(1)
            }
            Value::Object(map) => {
                shape.map_properties += map.len();
                stack.extend(map.values().map(|i| (i, depth + 1)));
                // Braces, commas, and per key its quoted text and a colon.
                2 + map.len().saturating_sub(1)
                    + map.keys().map(|k| string_len(k) + 1).sum::<usize>()
            }
        };
    }
    shape
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn shape_counts_json_bytes_exactly() {
        for value in [
            json!(null),
            json!({"a": [1, -20, 300, true, false, null], "b\"\n": "x\ty\u{1}é", "c": {}}),
            json!([
                [],
                {},
                "",
                0,
                -1,
                18446744073709551615u64,
                -9223372036854775808i64,
                1.5
            ]),
        ] {
            assert_eq!(json_shape(&value).json_bytes, json_len(&value), "{value}");
        }
        let shape = json_shape(&json!({"a": [[1, 2], {"b": 3}]}));
        assert_eq!(
            (shape.depth, shape.array_elements, shape.map_properties),
            (3, 4, 2)
        );
    }
}
