//! Glue between the hook pipeline and the lifecycle: [`PipelineHooks`] implements
//! `run::Hooks` with a `hooks::Pipeline`, so `run` needs no knowledge of the hook engines
//! and `hooks` none of Kubernetes.

use k8s_openapi::api::core::v1::{ContainerState, Pod};
use serde_json::Value;

use crate::hooks::contract::{BaseResult, ContainerOutcome};
use crate::hooks::{self, LineAction};
use crate::run::{self, Status};

/// The run-time hook points (filter_log, process_xcom, decide) served by a pipeline.
pub struct PipelineHooks {
    pipeline: hooks::Pipeline,
    base_container: String,
}

impl PipelineHooks {
    /// Serve the run-time points of `pipeline`; `base_container` names the container whose
    /// exit code and termination message `decide` sees.
    pub fn new(pipeline: hooks::Pipeline, base_container: impl Into<String>) -> Self {
        PipelineHooks {
            pipeline,
            base_container: base_container.into(),
        }
    }
}

impl run::Hooks for PipelineHooks {
    fn filter_log(
        &self,
        container: &str,
        lines: Vec<String>,
    ) -> Result<Vec<Option<String>>, String> {
        // A failing filter keeps its lines (the pipeline records it), so this never errs.
        let actions = self.pipeline.filter_log(container, &lines);
        Ok(lines
            .into_iter()
            .zip(actions)
            .map(|(line, action)| match action {
                LineAction::Keep => Some(line),
                LineAction::Drop => None,
                LineAction::Replace(text) => Some(text),
            })
            .collect())
    }

    fn process_xcom(&self, value: Value) -> Result<Value, String> {
        self.pipeline.process_xcom(value).map_err(|e| e.to_string())
    }

    fn decide(
        &self,
        outcome: &run::Outcome,
        pod: Option<&Pod>,
        xcom: Option<&Value>,
    ) -> Result<Option<run::Decision>, String> {
        let input = decide_input(outcome, pod, xcom, &self.base_container);
        let decision = self.pipeline.decide(&input).map_err(|e| e.to_string())?;
        Ok(match decision {
            hooks::Decision::Keep => None,
            hooks::Decision::Success => Some(run::Decision {
                status: Status::Success,
                message: Some(String::new()),
            }),
            hooks::Decision::Skip(reason) => Some(run::Decision {
                status: Status::Skipped,
                message: Some(reason),
            }),
            hooks::Decision::Fail(reason) => Some(run::Decision {
                status: Status::Failed,
                message: Some(reason),
            }),
        })
    }

    fn records(&self) -> Vec<Value> {
        self.pipeline
            .records()
            .into_iter()
            .filter_map(|r| serde_json::to_value(r).ok())
            .collect()
    }
}

/// `decide`'s input (docs/HOOKS.md) from the lifecycle's outcome and the last pod state.
fn decide_input(
    outcome: &run::Outcome,
    pod: Option<&Pod>,
    xcom: Option<&Value>,
    base: &str,
) -> hooks::Outcome {
    let statuses: Vec<_> = pod
        .and_then(|p| p.status.as_ref())
        .into_iter()
        .flat_map(|s| s.container_statuses.iter().flatten())
        .collect();
    let base_terminated = statuses
        .iter()
        .find(|cs| cs.name == base)
        .and_then(|cs| cs.state.as_ref())
        .and_then(|s| s.terminated.as_ref());
    hooks::Outcome {
        result: match outcome.status {
            Status::Success => BaseResult::Success,
            Status::Skipped => BaseResult::Skipped,
            Status::Failed => BaseResult::Failed,
        },
        exit_code: outcome.exit_code,
        reason: outcome.reason.clone(),
        message: base_terminated.and_then(|t| t.message.clone()),
        phase: pod
            .and_then(|p| p.status.as_ref())
            .and_then(|s| s.phase.clone()),
        containers: statuses
            .iter()
            .map(|cs| container_outcome(&cs.name, cs.state.as_ref()))
            .collect(),
        xcom: xcom.cloned().unwrap_or(Value::Null),
    }
}

fn container_outcome(name: &str, state: Option<&ContainerState>) -> ContainerOutcome {
    let (state, exit_code, reason) = match state {
        Some(ContainerState {
            terminated: Some(t),
            ..
        }) => ("terminated", Some(t.exit_code), t.reason.clone()),
        Some(ContainerState {
            running: Some(_), ..
        }) => ("running", None, None),
        Some(ContainerState {
            waiting: Some(w), ..
        }) => ("waiting", None, w.reason.clone()),
        _ => ("waiting", None, None),
    };
    ContainerOutcome {
        name: name.to_string(),
        state: state.to_string(),
        exit_code,
        reason,
    }
}
