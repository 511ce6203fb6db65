//! WASM hooks: WebAssembly components (WIT package `podrun:hooks@0.1.0`, in `wit/`) run on
//! wasmtime in a sandbox with deadlines, memory limits and no capabilities.
//!
//! # Public API (the pipeline's entry points)
//!
//! ```no_run
//! # fn main() -> Result<(), podrun::hooks::wasm::Error> {
//! use podrun::hooks::wasm::{WasmConfig, WasmEngine};
//! let engine = WasmEngine::new(WasmConfig::default())?;       // once per process
//! let hook = engine.load("label_injector.wasm".as_ref())?;     // compiled once, cached on disk
//! assert!(hook.points().contains(&"mutate_pod"));
//! let (pod, usage) = hook.mutate_pod(r#"{"metadata":{}}"#, r#"{"config":{}}"#)?;
//! let mut session = hook.log_filter(r#"{"config":{}}"#)?;      // per task (if implemented)
//! let (actions, _) = session.filter(&["a line".to_string()])?;
//! # Ok(()) }
//! ```
//!
//! * [`WasmEngine::new`]`(`[`WasmConfig`]`)`: one wasmtime engine (component model, epoch
//!   interruption with a 10 ms ticker thread, pooling allocator, `max_wasm_stack`, Cranelift
//!   `Speed`), the linker offering `podrun:hooks/host` (`log`) and an empty WASI 0.2.
//! * [`WasmEngine::load`]`(path)` → [`WasmHook`]: reads the component (or WAT), compiles it
//!   once per process (memory cache by sha256) and once per machine (disk cache by sha256 +
//!   wasmtime's compatibility hash, 0700 directory, digest re-checked before the unsafe
//!   deserialize), rejects imports podrun does not offer ([`Error::ForbiddenImport`]) and
//!   finds the exported points. No guest code runs, so it is also `podrun hooks check`.
//! * [`WasmHook::mutate_pod`], [`WasmHook::validate_pod`], [`WasmHook::process_xcom`],
//!   [`WasmHook::decide`]: JSON text in, typed result and [`Usage`] out. Each call gets a
//!   fresh store and instance from the `InstancePre` (nothing survives between calls),
//!   [`WasmLimits::deadline`] (250 ms) and [`WasmLimits::memory`] (64 MiB).
//! * [`WasmHook::log_filter`]`(ctx)` → [`LogFilterSession`]; [`LogFilterSession::filter`]
//!   feeds one batch to the task's instance ([`WasmLimits::log_batch_deadline`] 50 ms,
//!   [`WasmLimits::log_memory`] 16 MiB); an instance that failed is discarded.
//! * Errors: [`Error`], one variant per failed step, messages naming the cause.
//!
//! Calls are synchronous and CPU-bound up to their deadline: the pipeline runs them on
//! blocking threads, so a spinning hook never stalls the async executor, and the epoch
//! ticker (its own thread) interrupts it on time.

mod cache;
mod config;
mod engine;
mod error;
mod hook;
mod store;

pub use config::{WasmConfig, WasmLimits};
pub use engine::WasmEngine;
pub use error::{Error, Result};
pub use hook::{Decision, LineAction, LogFilterSession, Usage, Verdict, WasmHook};
pub use store::{LogLevel, LogRecord};

/// Version of the `podrun:hooks` WIT package this podrun implements.
pub const WIT_VERSION: &str = "0.1.0";

/// The hook points (shared with the rest of the pipeline).
pub use super::Point;

/// The WIT interface (and function) name of a hook point.
pub fn interface(point: Point) -> &'static str {
    match point {
        Point::MutatePod => "mutate-pod",
        Point::ValidatePod => "validate-pod",
        Point::FilterLog => "filter-log",
        Point::ProcessXcom => "process-xcom",
        Point::Decide => "decide",
    }
}

/// The hook point a WIT interface name exports, if any.
fn point_from_interface(name: &str) -> Option<Point> {
    Point::ALL.into_iter().find(|p| interface(*p) == name)
}
