//! One loaded hook, whatever its engine: load it from its declaration, list its points,
//! call it on JSON. The engine registry ([`Runtime`]) gives each tenant its own engine.
//!
//! This is the layer `podrun hooks test` uses directly; [`super::Pipeline`] orders many.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use super::rhai::{RhaiEngine, RhaiHook};
use super::wasm::{self, WasmEngine, WasmHook};
use super::{Cause, Error, HookRef, HookSource, HookSpec, Layer, Limit, Limits, LineAction, Point};

/// Resources one call (or, in a filter record, all batches) used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// Wall-clock time in microseconds.
    pub elapsed_us: u64,
    /// Rhai operations, for Rhai hooks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operations: Option<u64>,
    /// Wasm fuel consumed, when metering is on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fuel: Option<u64>,
    /// Wasm linear memory at the end of the call, in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<u64>,
}

impl Usage {
    /// A Rhai call's usage.
    pub fn rhai(elapsed: Duration, operations: u64) -> Self {
        Usage {
            elapsed_us: elapsed.as_micros() as u64,
            operations: Some(operations),
            fuel: None,
            memory_bytes: None,
        }
    }

    /// Add another call's usage (for aggregated records).
    pub fn add(&mut self, other: &Usage) {
        fn sum(a: Option<u64>, b: Option<u64>) -> Option<u64> {
            match (a, b) {
                (None, None) => None,
                (a, b) => Some(a.unwrap_or(0).saturating_add(b.unwrap_or(0))),
            }
        }
        self.elapsed_us = self.elapsed_us.saturating_add(other.elapsed_us);
        self.operations = sum(self.operations, other.operations);
        self.fuel = sum(self.fuel, other.fuel);
        self.memory_bytes = self.memory_bytes.max(other.memory_bytes);
    }
}

/// The process's hook engines: one Rhai engine per (tenant, limits), so tenants never
/// share an engine, a cache or limits. Engines are immutable; sharing one between tasks of
/// the same tenant shares only compiled scripts. One wasmtime engine serves every tenant
/// (code is immutable; every call or log session has its own store, with its tenant's
/// limits), as sandbox.md 7.3 recommends.
#[derive(Default)]
pub struct Runtime {
    rhai: Mutex<HashMap<(String, Limits), Arc<RhaiEngine>>>,
    wasm: OnceLock<Result<WasmEngine, String>>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").finish_non_exhaustive()
    }
}

impl Runtime {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// The process-wide registry used by the commands.
    pub fn global() -> &'static Runtime {
        static GLOBAL: OnceLock<Runtime> = OnceLock::new();
        GLOBAL.get_or_init(Runtime::new)
    }

    /// The Rhai engine of `tenant` with `limits`, built on first use.
    pub fn rhai_engine(&self, tenant: &str, limits: &Limits) -> Arc<RhaiEngine> {
        let mut engines = self
            .rhai
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        engines
            .entry((tenant.to_owned(), limits.clone()))
            .or_insert_with(|| Arc::new(RhaiEngine::new(limits)))
            .clone()
    }

    /// The process's wasm engine, started on first use.
    pub fn wasm_engine(&self) -> Result<&WasmEngine, String> {
        self.wasm
            .get_or_init(|| WasmEngine::new(wasm::WasmConfig::default()).map_err(|e| e.to_string()))
            .as_ref()
            .map_err(Clone::clone)
    }
}

/// `hooks::Limits` as the wasm engine's per-call limits.
fn wasm_limits(limits: &Limits) -> wasm::WasmLimits {
    wasm::WasmLimits {
        deadline: limits.call_deadline,
        log_batch_deadline: limits.log_batch_deadline,
        memory: limits.wasm_max_memory_bytes,
        log_memory: limits.wasm_log_max_memory_bytes,
        max_input: limits.max_input_bytes,
        max_output: limits.max_output_bytes,
        max_log_bytes: limits.max_log_bytes_per_call,
        fuel: limits.wasm_fuel,
        ..wasm::WasmLimits::default()
    }
}

/// The log-filter sessions of one wasm hook in one pipeline: one instance per container
/// stream, kept across batches (the wasm engine replaces it after a failure).
type Sessions = Arc<Mutex<HashMap<String, Arc<Mutex<wasm::LogFilterSession>>>>>;

/// The engine-specific part of a loaded hook.
#[derive(Clone)]
enum Imp {
    Rhai {
        engine: Arc<RhaiEngine>,
        hook: RhaiHook,
    },
    Wasm {
        hook: WasmHook,
        points: Vec<Point>,
        sessions: Sessions,
    },
}

impl std::fmt::Debug for Imp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Imp::Rhai { hook, .. } => f.debug_tuple("Rhai").field(hook).finish(),
            Imp::Wasm { hook, .. } => f.debug_tuple("Wasm").field(&hook.path()).finish(),
        }
    }
}

/// A loaded (compiled) hook with its declaration.
#[derive(Debug, Clone)]
pub struct Hook {
    r: HookRef,
    spec: HookSpec,
    imp: Imp,
}

impl Hook {
    /// Load the hook declared by `spec` (entry `index` of its list) for `tenant`.
    /// Reading and compiling happen here, never on a call.
    pub fn load(
        runtime: &Runtime,
        spec: &HookSpec,
        index: usize,
        layer: Layer,
        tenant: &str,
        limits: &Limits,
    ) -> Result<Self, Error> {
        let r = HookRef {
            tenant: tenant.to_owned(),
            layer,
            name: spec.display_name(index),
            file: spec.source.file().map(ToOwned::to_owned),
        };
        let imp = compile(runtime, &r, &spec.source, limits)?;
        let hook = Hook {
            r,
            spec: spec.clone(),
            imp,
        };
        if !hook.points().contains(&spec.point) {
            return Err(Error::Compile {
                hook: Box::new(hook.r.clone()),
                message: format!(
                    "declared for {} but defines no `{}` function (it defines: {})",
                    spec.point,
                    spec.point,
                    list(hook.points())
                ),
                line: 0,
                column: 0,
                limit: None,
            });
        }
        Ok(hook)
    }

    /// Compile the code of `source` without running it and list the points it
    /// implements (`podrun hooks check`). Forbidden constructs fail here.
    pub fn check(
        runtime: &Runtime,
        r: &HookRef,
        source: &HookSource,
        limits: &Limits,
    ) -> Result<Vec<Point>, Error> {
        Ok(match compile(runtime, r, source, limits)? {
            Imp::Rhai { hook, .. } => hook.points().to_vec(),
            Imp::Wasm { points, .. } => points,
        })
    }

    /// Which hook this is.
    pub fn hook_ref(&self) -> &HookRef {
        &self.r
    }

    /// Its declaration.
    pub fn spec(&self) -> &HookSpec {
        &self.spec
    }

    /// The points the code implements (it runs only at the declared one).
    pub fn points(&self) -> &[Point] {
        match &self.imp {
            Imp::Rhai { hook, .. } => hook.points(),
            Imp::Wasm { points, .. } => points,
        }
    }

    /// Call an admission-style point on JSON; the output is not yet checked against the
    /// point's contract (see [`super::contract`]).
    pub fn call(&self, point: Point, input: &Value, ctx: &Value) -> Result<(Value, Usage), Error> {
        let result = match &self.imp {
            Imp::Rhai { engine, hook } => engine.call(hook, point, input, ctx),
            Imp::Wasm { hook, .. } => self.call_wasm(hook, point, input, ctx),
        };
        result.map_err(|cause| self.error(point, cause))
    }

    /// Call `filter_log` on one batch.
    pub fn filter_log<S: AsRef<str>>(
        &self,
        lines: &[S],
        ctx: &Value,
    ) -> Result<(Vec<LineAction>, Usage), Error> {
        let result = match &self.imp {
            Imp::Rhai { engine, hook } => engine.filter_log(hook, lines, ctx),
            Imp::Wasm { hook, sessions, .. } => self.filter_wasm(hook, sessions, lines, ctx),
        };
        result.map_err(|cause| self.error(Point::FilterLog, cause))
    }

    fn call_wasm(
        &self,
        hook: &WasmHook,
        point: Point,
        input: &Value,
        ctx: &Value,
    ) -> Result<(Value, Usage), Cause> {
        let (input, ctx) = (input.to_string(), ctx.to_string());
        let (output, usage) = match point {
            Point::MutatePod => {
                let (out, usage) = hook.mutate_pod(&input, &ctx).map_err(wasm_cause)?;
                (parse_output(&out)?, usage)
            }
            Point::ProcessXcom => {
                let (out, usage) = hook.process_xcom(&input, &ctx).map_err(wasm_cause)?;
                (parse_output(&out)?, usage)
            }
            Point::ValidatePod => {
                let (v, usage) = hook.validate_pod(&input, &ctx).map_err(wasm_cause)?;
                let mut out = serde_json::json!({"allowed": v.allowed, "warnings": v.warnings});
                if let Some(reason) = v.reason {
                    out["reason"] = Value::String(reason);
                }
                (out, usage)
            }
            Point::Decide => {
                let (d, usage) = hook.decide(&input, &ctx).map_err(wasm_cause)?;
                let out = match d {
                    wasm::Decision::Keep => serde_json::json!("keep"),
                    wasm::Decision::Success => serde_json::json!("success"),
                    wasm::Decision::Skip(r) => serde_json::json!({ "skip": r }),
                    wasm::Decision::Fail(r) => serde_json::json!({ "fail": r }),
                };
                (out, usage)
            }
            Point::FilterLog => return Err(Cause::MissingPoint(Point::FilterLog)),
        };
        Ok((output, self.wasm_usage(usage)))
    }

    fn filter_wasm<S: AsRef<str>>(
        &self,
        hook: &WasmHook,
        sessions: &Sessions,
        lines: &[S],
        ctx: &Value,
    ) -> Result<(Vec<LineAction>, Usage), Cause> {
        let container = ctx
            .get("container")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let session = {
            let mut sessions = sessions
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match sessions.get(&container) {
                Some(s) => s.clone(),
                None => {
                    let s = hook.log_filter(&ctx.to_string()).map_err(wasm_cause)?;
                    let s = Arc::new(Mutex::new(s));
                    sessions.insert(container, s.clone());
                    s
                }
            }
        };
        let lines: Vec<String> = lines.iter().map(|l| l.as_ref().to_owned()).collect();
        let (actions, usage) = session
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .filter(&lines)
            .map_err(wasm_cause)?;
        let actions = actions
            .into_iter()
            .map(|a| match a {
                wasm::LineAction::Keep => LineAction::Keep,
                wasm::LineAction::Drop => LineAction::Drop,
                wasm::LineAction::Replace(t) => LineAction::Replace(t),
            })
            .collect();
        Ok((actions, self.wasm_usage(usage)))
    }

    /// Write the guest's log lines to podrun's log and keep the figures.
    fn wasm_usage(&self, usage: wasm::Usage) -> Usage {
        for record in &usage.logs {
            let message = &record.message;
            match record.level {
                wasm::LogLevel::Warn | wasm::LogLevel::Error => {
                    tracing::warn!(hook = %self.r.name, "{message}")
                }
                _ => tracing::info!(hook = %self.r.name, "{message}"),
            }
        }
        Usage {
            elapsed_us: usage.elapsed.as_micros() as u64,
            operations: None,
            fuel: usage.fuel_consumed,
            memory_bytes: Some(usage.peak_memory as u64),
        }
    }

    /// An error about this hook at `point`.
    pub fn error(&self, point: Point, cause: Cause) -> Error {
        Error::Call {
            hook: Box::new(self.r.clone()),
            point,
            cause,
        }
    }
}

/// Read and compile the hook's code with the tenant's engine.
fn compile(
    runtime: &Runtime,
    r: &HookRef,
    source: &HookSource,
    limits: &Limits,
) -> Result<Imp, Error> {
    match source {
        HookSource::Rhai(path) => {
            let text = read_hook(r, path, limits)?;
            let engine = runtime.rhai_engine(&r.tenant, limits);
            let hook = engine.load(r.clone(), &text)?;
            Ok(Imp::Rhai { engine, hook })
        }
        HookSource::Script(text) => {
            let engine = runtime.rhai_engine(&r.tenant, limits);
            let hook = engine.load(r.clone(), text)?;
            Ok(Imp::Rhai { engine, hook })
        }
        HookSource::Wasm(path) => {
            let engine = runtime
                .wasm_engine()
                .map_err(|message| Error::Unsupported {
                    hook: Box::new(r.clone()),
                    message: format!("the wasm engine could not start: {message}"),
                })?;
            let hook = engine
                .load(path)
                .map_err(|e| wasm_load_error(r, e))?
                .with_limits(wasm_limits(limits));
            let points = hook
                .points()
                .iter()
                .filter_map(|p| p.parse().ok())
                .collect();
            Ok(Imp::Wasm {
                hook,
                points,
                sessions: Arc::default(),
            })
        }
    }
}

/// A wasm load failure as a hooks error (all bad input but an engine failure).
fn wasm_load_error(r: &HookRef, err: wasm::Error) -> Error {
    let hook = Box::new(r.clone());
    match err {
        wasm::Error::Read { source, .. } => Error::ReadHook { hook, source },
        wasm::Error::Engine { message } => Error::Unsupported { hook, message },
        other => Error::Compile {
            hook,
            message: other.to_string(),
            line: 0,
            column: 0,
            limit: None,
        },
    }
}

/// A wasm call failure as a [`Cause`].
fn wasm_cause(err: wasm::Error) -> Cause {
    let limit = |limit: Limit, detail: String| Cause::Limit { limit, detail };
    match err {
        wasm::Error::Deadline { limit: d } => {
            limit(Limit::Deadline, format!("{} ms", d.as_millis()))
        }
        wasm::Error::Fuel { limit: f } => limit(Limit::Fuel, format!("{f} units")),
        wasm::Error::MemoryLimit {
            limit: l,
            requested,
        } => limit(Limit::Memory, format!("{l} bytes, asked for {requested}")),
        wasm::Error::InputTooLarge { size, limit: l } => {
            limit(Limit::InputSize, format!("{size} bytes, at most {l}"))
        }
        wasm::Error::OutputTooLarge { size, limit: l } => {
            limit(Limit::OutputSize, format!("{size} bytes, at most {l}"))
        }
        wasm::Error::MalformedOutput { message } => Cause::MalformedOutput(message),
        wasm::Error::GuestError(message) => Cause::Script {
            message,
            line: 0,
            column: 0,
        },
        wasm::Error::Trap { message } => Cause::Trap(message),
        other => Cause::Trap(other.to_string()),
    }
}

/// Parse a wasm hook's JSON text (already checked by the wasm engine).
fn parse_output(text: &str) -> Result<Value, Cause> {
    serde_json::from_str(text).map_err(|e| Cause::MalformedOutput(format!("invalid JSON: {e}")))
}

fn read_hook(r: &HookRef, path: &std::path::Path, limits: &Limits) -> Result<String, Error> {
    let meta = std::fs::metadata(path).map_err(|source| Error::ReadHook {
        hook: Box::new(r.clone()),
        source,
    })?;
    if meta.len() > limits.max_input_bytes as u64 {
        return Err(Error::Compile {
            hook: Box::new(r.clone()),
            message: format!(
                "hook file is {} bytes, more than {}",
                meta.len(),
                limits.max_input_bytes
            ),
            line: 0,
            column: 0,
            limit: Some(Limit::InputSize),
        });
    }
    std::fs::read_to_string(path).map_err(|source| Error::ReadHook {
        hook: Box::new(r.clone()),
        source,
    })
}

/// Points as a comma-separated list ("nothing" when empty).
pub(crate) fn list(points: &[Point]) -> String {
    if points.is_empty() {
        return "nothing".into();
    }
    points
        .iter()
        .map(|p| p.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
