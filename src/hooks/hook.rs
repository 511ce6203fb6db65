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
use super::{Cause, Error, HookRef, HookSource, HookSpec, Layer, Limits, LineAction, Point};

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
/// the same tenant shares only compiled scripts.
#[derive(Debug, Default)]
pub struct Runtime {
    rhai: Mutex<HashMap<(String, Limits), Arc<RhaiEngine>>>,
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
}

/// The engine-specific part of a loaded hook.
#[derive(Debug, Clone)]
enum Imp {
    Rhai {
        engine: Arc<RhaiEngine>,
        hook: RhaiHook,
    },
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
        }
    }

    /// The limits the hook runs under.
    pub fn limits(&self) -> &Limits {
        match &self.imp {
            Imp::Rhai { engine, .. } => engine.limits(),
        }
    }

    /// Call an admission-style point on JSON; the output is not yet checked against the
    /// point's contract (see [`super::contract`]).
    pub fn call(&self, point: Point, input: &Value, ctx: &Value) -> Result<(Value, Usage), Error> {
        let result = match &self.imp {
            Imp::Rhai { engine, hook } => engine.call(hook, point, input, ctx),
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
        };
        result.map_err(|cause| self.error(Point::FilterLog, cause))
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
        HookSource::Wasm(_) => Err(Error::Unsupported {
            hook: Box::new(r.clone()),
            message: "wasm hooks are not built in this build".into(),
        }),
    }
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
            limit: Some(super::Limit::InputSize),
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
