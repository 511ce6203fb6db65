//! The hook points the lifecycle calls, as a trait with pass-through defaults.
//!
//! `run` does not depend on the hook engines: the CLI glue implements [`Hooks`] with the
//! hook pipeline. Mutation and validation of the pod happen before `run` (in the glue),
//! so only the points that occur during a run are here.

use k8s_openapi::api::core::v1::Pod;
use serde_json::Value;

use super::outcome::{Outcome, Status};

/// A hook's decision overriding the outcome.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Decision {
    /// The status to end with.
    pub status: Status,
    /// Replaces the outcome message when given.
    pub message: Option<String>,
}

/// The run-time hook points. Every method defaults to "no change".
///
/// An `Err` is a hook failure (trap, limit, script error): the run ends with
/// `exit::HOOK_FAILED` after cleanup.
pub trait Hooks: Send + Sync {
    /// Filter a batch of log lines of one container: one entry per input line, `None`
    /// drops the line, `Some` replaces it.
    fn filter_log(
        &self,
        container: &str,
        lines: Vec<String>,
    ) -> Result<Vec<Option<String>>, String> {
        let _ = container;
        Ok(lines.into_iter().map(Some).collect())
    }

    /// Transform the XCom value before it is reported.
    fn process_xcom(&self, value: Value) -> Result<Value, String> {
        Ok(value)
    }

    /// Override the outcome, or `None` to keep it. `pod` is the last state seen of the pod
    /// (for phase and container states) and `xcom` the value after `process_xcom`.
    fn decide(
        &self,
        outcome: &Outcome,
        pod: Option<&Pod>,
        xcom: Option<&Value>,
    ) -> Result<Option<Decision>, String> {
        let _ = (outcome, pod, xcom);
        Ok(None)
    }

    /// Records of what the hooks did (for the run report's `hooks` field).
    fn records(&self) -> Vec<Value> {
        Vec::new()
    }
}

/// No hooks: everything passes through.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoHooks;

impl Hooks for NoHooks {}
