//! Hook points and pipeline, with the Rhai and WASM engines and their limits.
//!
//! Tenant hooks (declared in the task file) and platform hooks (the policy file) run at
//! five points; each point's JSON contract is in [`contract`] and `docs/HOOKS.md`.
//! [`Pipeline`] orders the hooks, applies `on_error`, and records every decision in
//! [`Record`]s for the run report. This module knows nothing of Kubernetes clients: a Pod
//! is a `serde_json::Value`.
//!
//! - [`limits`]: every bound a hook runs under ([`Limits`]).
//! - [`error`]: [`Error`] and its [`Cause`] (limit, trap, script error, malformed output).
//! - [`contract`]: the per-point input and output types ([`Verdict`], [`LineAction`],
//!   [`Decision`], [`Outcome`], [`Ctx`]).
//! - [`decl`]: hook declarations ([`HookSpec`]) and the platform [`Policy`] file.
//! - [`hook`]: one loaded [`Hook`] of either engine, and the per-tenant engine [`Runtime`].
//! - [`pipeline`]: [`Pipeline`] and [`Record`].
//! - `rhai`: the hardened Rhai engine. `wasm`: the wasmtime component engine.
//! - [`diff`]: changed JSON paths for records, and restoring a pod's key order.
//! - [`apply`]: the one call `render` and `run` make to mutate and validate a pod.

pub mod apply;
pub mod contract;
pub mod decl;
pub mod diff;
pub mod error;
pub mod hook;
pub mod limits;
pub mod pipeline;
pub mod rhai;
pub mod wasm;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use apply::{apply_hooks, apply_to_pod, task_info, Applied};
pub use contract::{Ctx, Decision, LineAction, Outcome, Verdict};
pub use decl::{HookSource, HookSpec, OnError, Policy};
pub use error::{Cause, Error, HookRef, Limit, Result};
pub use hook::{Hook, Runtime, Usage};
pub use limits::Limits;
pub use pipeline::{Pipeline, Record, RecordResult, TaskInfo};
pub use rhai::run_on_hook_thread;

/// A hook point: where in a task's life a hook runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Point {
    /// After pod construction: `mutate_pod(pod, ctx) -> pod`.
    MutatePod,
    /// After all mutations: `validate_pod(pod, ctx) -> {allowed, reason?, warnings[]}`.
    ValidatePod,
    /// For each batch of one container's log lines: per line keep, drop or replace.
    FilterLog,
    /// On the XCom value: `process_xcom(value, ctx) -> value`.
    ProcessXcom,
    /// On the outcome: keep, success, skip(reason) or fail(reason).
    Decide,
}

impl Point {
    /// All points, in pipeline order.
    pub const ALL: [Point; 5] = [
        Point::MutatePod,
        Point::ValidatePod,
        Point::FilterLog,
        Point::ProcessXcom,
        Point::Decide,
    ];

    /// The name used in declarations and as the script function name.
    pub fn as_str(self) -> &'static str {
        match self {
            Point::MutatePod => "mutate_pod",
            Point::ValidatePod => "validate_pod",
            Point::FilterLog => "filter_log",
            Point::ProcessXcom => "process_xcom",
            Point::Decide => "decide",
        }
    }
}

impl fmt::Display for Point {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Point {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        Point::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown hook point {s:?}; expected one of mutate_pod, validate_pod, \
                     filter_log, process_xcom, decide"
                )
            })
    }
}

/// Who declared a hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layer {
    /// Declared in the task file.
    Tenant,
    /// Declared in the platform policy file; the task cannot disable or reorder it.
    Platform,
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Layer::Tenant => "tenant",
            Layer::Platform => "platform",
        })
    }
}
