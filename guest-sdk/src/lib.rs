//! `podrun-guest`: write podrun hooks in Rust.
//!
//! A hook is a type implementing [`Hook`]; every method has a pass-through default
//! (mutate and process_xcom return their input, validate allows, filter_log keeps every
//! line, decide keeps podrun's own decision). [`export!`] exports the points you name, and
//! only those: `podrun hooks check` lists exactly them.
//!
//! ```ignore
//! use podrun_guest::{Context, Hook, Value};
//!
//! struct AddTeamLabel;
//!
//! impl Hook for AddTeamLabel {
//!     fn mutate_pod(mut pod: Value, ctx: &Context) -> Result<Value, String> {
//!         pod["metadata"]["labels"]["team"] = ctx.config["team"].clone();
//!         Ok(pod)
//!     }
//! }
//!
//! podrun_guest::export!(AddTeamLabel: mutate_pod);
//! ```
//!
//! Build for `wasm32-unknown-unknown` (or `wasm32-wasip2`) as a `cdylib`, then turn the core
//! module into a component with `wasm-tools component new`. The bindings come from the WIT
//! package `podrun:hooks@0.1.0` in the repository's `wit/` directory; see `ABI.md`.

use serde::{Deserialize, Serialize};

// The generated code names this crate by its absolute path, from inside and outside it.
extern crate self as podrun_guest;

pub use serde_json::{self, json, Map, Value};

/// Generated WIT bindings. Not a stable API: use the types and [`export!`] instead.
#[doc(hidden)]
pub mod bindings {
    /// The `host` import (the `log` function), bound once and shared by every point world.
    pub mod logger {
        wit_bindgen::generate!({
            path: "../wit",
            world: "podrun:hooks/logger@0.1.0",
            runtime_path: "::podrun_guest::__rt",
        });
    }
    /// Export glue for `mutate_pod`.
    pub mod mutator {
        wit_bindgen::generate!({
            path: "../wit",
            world: "podrun:hooks/mutator@0.1.0",
            with: { "podrun:hooks/host@0.1.0": crate::bindings::logger::podrun::hooks::host },
            pub_export_macro: true,
            export_macro_name: "export_mutator",
            default_bindings_module: "::podrun_guest::bindings::mutator",
            runtime_path: "::podrun_guest::__rt",
        });
    }
    /// Export glue for `validate_pod`.
    pub mod validator {
        wit_bindgen::generate!({
            path: "../wit",
            world: "podrun:hooks/validator@0.1.0",
            with: { "podrun:hooks/host@0.1.0": crate::bindings::logger::podrun::hooks::host },
            pub_export_macro: true,
            export_macro_name: "export_validator",
            default_bindings_module: "::podrun_guest::bindings::validator",
            runtime_path: "::podrun_guest::__rt",
        });
    }
    /// Export glue for `filter_log`.
    pub mod log_filter {
        wit_bindgen::generate!({
            path: "../wit",
            world: "podrun:hooks/log-filter@0.1.0",
            with: { "podrun:hooks/host@0.1.0": crate::bindings::logger::podrun::hooks::host },
            pub_export_macro: true,
            export_macro_name: "export_log_filter",
            default_bindings_module: "::podrun_guest::bindings::log_filter",
            runtime_path: "::podrun_guest::__rt",
        });
    }
    /// Export glue for `process_xcom`.
    pub mod xcom_processor {
        wit_bindgen::generate!({
            path: "../wit",
            world: "podrun:hooks/xcom-processor@0.1.0",
            with: { "podrun:hooks/host@0.1.0": crate::bindings::logger::podrun::hooks::host },
            pub_export_macro: true,
            export_macro_name: "export_xcom_processor",
            default_bindings_module: "::podrun_guest::bindings::xcom_processor",
            runtime_path: "::podrun_guest::__rt",
        });
    }
    /// Export glue for `decide`.
    pub mod decider {
        wit_bindgen::generate!({
            path: "../wit",
            world: "podrun:hooks/decider@0.1.0",
            with: { "podrun:hooks/host@0.1.0": crate::bindings::logger::podrun::hooks::host },
            pub_export_macro: true,
            export_macro_name: "export_decider",
            default_bindings_module: "::podrun_guest::bindings::decider",
            runtime_path: "::podrun_guest::__rt",
        });
    }
}

/// The wit-bindgen runtime the generated code uses (so guests need not depend on it).
#[doc(hidden)]
pub use wit_bindgen::rt as __rt;

use bindings::logger::podrun::hooks::host;

/// Severity of a [`log`] message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// Very detailed tracing.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal progress information.
    Info,
    /// Something unexpected that the hook handled.
    Warn,
    /// Something the hook could not handle.
    Error,
}

/// Writes one message to podrun's log (the only thing a hook can do outside itself).
pub fn log(level: Level, message: &str) {
    let level = match level {
        Level::Trace => host::Level::Trace,
        Level::Debug => host::Level::Debug,
        Level::Info => host::Level::Info,
        Level::Warn => host::Level::Warn,
        Level::Error => host::Level::Error,
    };
    host::log(level, message);
}

/// The `ctx` argument of every hook point: who is calling and the hook's own config.
///
/// Never holds host environment variables or secret values. Unknown fields are kept in
/// `extra` so a newer podrun can add fields without breaking older guests.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Context {
    /// The task's id.
    pub task_id: String,
    /// The run's id.
    pub run_id: String,
    /// The try number, starting at 1.
    pub try_number: i64,
    /// The namespace the pod runs in.
    pub namespace: String,
    /// The pod's name.
    pub pod_name: String,
    /// The tenant the task belongs to (empty when none).
    pub tenant: String,
    /// The layer of this hook: `tenant` (task file) or `platform` (policy file).
    pub layer: Option<String>,
    /// The hook's own `config` from the task or policy file (null when none).
    pub config: Value,
    /// The task's params.
    pub params: Value,
    /// `filter_log` only: the container whose lines these are.
    pub container: Option<String>,
    /// Fields this SDK version does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The answer of a `validate_pod` hook.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    /// True admits the pod.
    pub allowed: bool,
    /// Why the pod is denied.
    pub reason: Option<String>,
    /// Warnings shown to the user whether allowed or not.
    pub warnings: Vec<String>,
}

impl Verdict {
    /// Admits the pod.
    pub fn allow() -> Self {
        Verdict {
            allowed: true,
            reason: None,
            warnings: Vec::new(),
        }
    }
    /// Denies the pod with a reason.
    pub fn deny(reason: impl Into<String>) -> Self {
        Verdict {
            allowed: false,
            reason: Some(reason.into()),
            warnings: Vec::new(),
        }
    }
    /// Adds a warning.
    pub fn warn(mut self, warning: impl Into<String>) -> Self {
        self.warnings.push(warning.into());
        self
    }
}

/// What `filter_log` does with one line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LineAction {
    /// Keep the line.
    Keep,
    /// Drop the line.
    Drop,
    /// Replace the line with this text.
    Replace(String),
}

/// The decision of a `decide` hook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// No opinion: podrun's own rules decide.
    Keep,
    /// The task succeeded.
    Success,
    /// The task is skipped, with a reason.
    Skip(String),
    /// The task failed, with a reason.
    Fail(String),
}

/// How the task's pod ended: the `outcome` argument of `decide`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Outcome {
    /// podrun's base decision (after `skip_on_exit_code`, and after earlier `decide`
    /// hooks): `success`, `skipped` or `failed`.
    pub result: String,
    /// The base container's exit code, if it terminated.
    pub exit_code: Option<i64>,
    /// The termination reason (e.g. `OOMKilled`, `DeadlineExceeded`, `Error`).
    pub reason: Option<String>,
    /// The base container's termination message.
    pub message: Option<String>,
    /// The pod's phase (`Succeeded`, `Failed`, ...).
    pub phase: Option<String>,
    /// Every container's final state.
    pub containers: Vec<ContainerOutcome>,
    /// The XCom value (after `process_xcom`), null when none.
    pub xcom: Value,
    /// Fields this SDK version does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One container's final state in an [`Outcome`].
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerOutcome {
    /// Container name.
    pub name: String,
    /// `waiting`, `running` or `terminated`.
    pub state: String,
    /// Exit code when terminated.
    pub exit_code: Option<i64>,
    /// Kubernetes reason (`Completed`, `Error`, `OOMKilled`, ...).
    pub reason: Option<String>,
}

/// A podrun hook. Implement the points you need; export them with [`export!`].
pub trait Hook {
    /// `mutate_pod`: returns the pod to create. Default: unchanged.
    fn mutate_pod(pod: Value, ctx: &Context) -> Result<Value, String> {
        let _ = ctx;
        Ok(pod)
    }
    /// `validate_pod`: admits or denies the final pod. Default: allow.
    fn validate_pod(pod: &Value, ctx: &Context) -> Result<Verdict, String> {
        let _ = (pod, ctx);
        Ok(Verdict::allow())
    }
    /// `filter_log`: one action per line of the batch. Default: [`Hook::filter_line`] per line.
    fn filter_log(lines: Vec<String>, ctx: &Context) -> Result<Vec<LineAction>, String> {
        Ok(lines.iter().map(|l| Self::filter_line(l, ctx)).collect())
    }
    /// One line of `filter_log`. Default: keep.
    fn filter_line(line: &str, ctx: &Context) -> LineAction {
        let _ = (line, ctx);
        LineAction::Keep
    }
    /// `process_xcom`: returns the XCom value to push. Default: unchanged.
    fn process_xcom(value: Value, ctx: &Context) -> Result<Value, String> {
        let _ = ctx;
        Ok(value)
    }
    /// `decide`: the task's final state. Default: keep podrun's own decision.
    fn decide(outcome: &Outcome, ctx: &Context) -> Result<Decision, String> {
        let _ = (outcome, ctx);
        Ok(Decision::Keep)
    }
}

/// Parses JSON text received from podrun, naming what it was on failure.
fn parse<T: for<'de> Deserialize<'de>>(what: &str, text: &str) -> Result<T, String> {
    serde_json::from_str(text).map_err(|e| format!("podrun-guest: invalid {what} JSON: {e}"))
}

/// Serialises a value returned to podrun.
fn print(value: &Value) -> Result<String, String> {
    serde_json::to_string(value).map_err(|e| format!("podrun-guest: cannot serialise JSON: {e}"))
}

// The blanket impls below connect `Hook` to each point's generated export trait; the
// export! macro decides which of them are actually exported from the component.

impl<T: Hook> bindings::mutator::exports::podrun::hooks::mutate_pod::Guest for T {
    fn mutate_pod(pod: String, ctx: String) -> Result<String, String> {
        let ctx: Context = parse("ctx", &ctx)?;
        let pod: Value = parse("pod", &pod)?;
        print(&T::mutate_pod(pod, &ctx)?)
    }
}

impl<T: Hook> bindings::validator::exports::podrun::hooks::validate_pod::Guest for T {
    fn validate_pod(
        pod: String,
        ctx: String,
    ) -> Result<bindings::validator::exports::podrun::hooks::validate_pod::Verdict, String> {
        let ctx: Context = parse("ctx", &ctx)?;
        let pod: Value = parse("pod", &pod)?;
        let v = T::validate_pod(&pod, &ctx)?;
        Ok(
            bindings::validator::exports::podrun::hooks::validate_pod::Verdict {
                allowed: v.allowed,
                reason: v.reason,
                warnings: v.warnings,
            },
        )
    }
}

impl<T: Hook> bindings::log_filter::exports::podrun::hooks::filter_log::Guest for T {
    fn filter_log(
        lines: Vec<String>,
        ctx: String,
    ) -> Result<Vec<bindings::log_filter::exports::podrun::hooks::filter_log::LineAction>, String>
    {
        use bindings::log_filter::exports::podrun::hooks::filter_log::LineAction as Wit;
        let ctx: Context = parse("ctx", &ctx)?;
        let actions = T::filter_log(lines, &ctx)?;
        Ok(actions
            .into_iter()
            .map(|a| match a {
                LineAction::Keep => Wit::Keep,
                LineAction::Drop => Wit::Drop,
                LineAction::Replace(s) => Wit::Replace(s),
            })
            .collect())
    }
}

impl<T: Hook> bindings::xcom_processor::exports::podrun::hooks::process_xcom::Guest for T {
    fn process_xcom(value: String, ctx: String) -> Result<String, String> {
        let ctx: Context = parse("ctx", &ctx)?;
        let value: Value = parse("xcom value", &value)?;
        print(&T::process_xcom(value, &ctx)?)
    }
}

impl<T: Hook> bindings::decider::exports::podrun::hooks::decide::Guest for T {
    fn decide(
        outcome: String,
        ctx: String,
    ) -> Result<bindings::decider::exports::podrun::hooks::decide::Decision, String> {
        use bindings::decider::exports::podrun::hooks::decide::Decision as Wit;
        let ctx: Context = parse("ctx", &ctx)?;
        let outcome: Outcome = parse("outcome", &outcome)?;
        Ok(match T::decide(&outcome, &ctx)? {
            Decision::Keep => Wit::Keep,
            Decision::Success => Wit::Success,
            Decision::Skip(r) => Wit::Skip(r),
            Decision::Fail(r) => Wit::Fail(r),
        })
    }
}

/// Exports a [`Hook`] type at the points named: `export!(MyHook: mutate_pod, validate_pod);`.
///
/// Points: `mutate_pod`, `validate_pod`, `filter_log`, `process_xcom`, `decide`. Only the
/// points listed are exported from the component.
#[macro_export]
macro_rules! export {
    ($ty:ident : $($point:ident),+ $(,)?) => {
        $( $crate::__export_point!($ty, $point); )+
    };
}

/// One point of [`export!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __export_point {
    ($ty:ident, mutate_pod) => {
        $crate::bindings::mutator::export_mutator!($ty with_types_in $crate::bindings::mutator);
    };
    ($ty:ident, validate_pod) => {
        $crate::bindings::validator::export_validator!($ty with_types_in $crate::bindings::validator);
    };
    ($ty:ident, filter_log) => {
        $crate::bindings::log_filter::export_log_filter!($ty with_types_in $crate::bindings::log_filter);
    };
    ($ty:ident, process_xcom) => {
        $crate::bindings::xcom_processor::export_xcom_processor!($ty with_types_in $crate::bindings::xcom_processor);
    };
    ($ty:ident, decide) => {
        $crate::bindings::decider::export_decider!($ty with_types_in $crate::bindings::decider);
    };
    ($ty:ident, $other:ident) => {
        compile_error!(concat!(
            "unknown podrun hook point `", stringify!($other),
            "`; expected mutate_pod, validate_pod, filter_log, process_xcom or decide"
        ));
    };
}
