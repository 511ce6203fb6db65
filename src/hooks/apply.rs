//! The one call `podrun render` and `podrun run` make after building the pod: load the
//! task's and the platform's hooks, run `mutate_pod` then `validate_pod`.
//!
//! A deny is returned as a verdict; the command exits with `exit::DENIED` and the reason.
//! The runner keeps the [`Pipeline`] for the later points (logs, XCom, decide).

use serde_json::Value;

use super::hook::Runtime;
use super::{Error, HookSpec, Pipeline, Policy, Record, Result, TaskInfo, Verdict};

/// The pod after hooks, the combined verdict, and what every hook did.
#[derive(Debug)]
pub struct Applied {
    /// The pod after every `mutate_pod` hook.
    pub pod: Value,
    /// The combined `validate_pod` verdict.
    pub verdict: Verdict,
    /// The pipeline, for the later points and the run report.
    pub pipeline: Pipeline,
}

impl Applied {
    /// The hook records so far.
    pub fn records(&self) -> Vec<Record> {
        self.pipeline.records()
    }

    /// The deny message (`denied by <hook>: <reason>`), when a validate hook denied.
    pub fn denial(&self) -> Option<String> {
        if self.verdict.allowed {
            return None;
        }
        Some(format!(
            "pod denied by {}: {}",
            self.verdict
                .denied_by
                .as_deref()
                .unwrap_or("a validate_pod hook"),
            self.verdict.reason.as_deref().unwrap_or("no reason given")
        ))
    }
}

/// What the hooks know of `task` as `tenant`'s task (namespace and pod name come from the
/// pod itself).
pub fn task_info(task: &crate::spec::Task, tenant: &str) -> TaskInfo {
    TaskInfo {
        task_id: task.task_id.clone(),
        run_id: task.identity.run_id.clone(),
        try_number: task.identity.try_number,
        namespace: String::new(),
        pod_name: String::new(),
        tenant: tenant.to_owned(),
        params: Value::Object(task.params.clone()),
    }
}

/// Run the task's hooks and the policy's on the pod `build` made for `task`: the call
/// `podrun render` and `podrun run` make. See [`apply_hooks`].
///
/// # Errors
/// As [`apply_hooks`].
pub fn apply_to_pod(
    pod: Value,
    task: &crate::spec::Task,
    policy: &Policy,
    tenant: &str,
) -> Result<Applied> {
    let hooks: Vec<HookSpec> = task.hooks.iter().map(HookSpec::from).collect();
    apply_hooks(pod, &hooks, policy, task_info(task, tenant))
}

/// Load the hooks (tenant from the task, platform from `policy`) and run mutate and
/// validate on `pod`, using the process-wide engine registry.
///
/// # Errors
/// A hook that cannot be read or compiled (`Error::is_bad_input`, exit 2) or that fails
/// while running with `on_error: fail` or at `validate_pod` (exit 5); see
/// [`super::Error::exit_code`].
pub fn apply_hooks(
    pod: Value,
    tenant_hooks: &[HookSpec],
    policy: &Policy,
    task: TaskInfo,
) -> Result<Applied> {
    let pipeline = Pipeline::new(Runtime::global(), task, tenant_hooks, policy)?;
    // All the calls on one hook thread: one hand-off instead of one per hook (waking a
    // hook thread costs more than a typical Rhai call; calls made there run inline).
    let (pipeline, result) = super::run_on_hook_thread(move || {
        let result = pipeline.mutate_and_validate(pod);
        (pipeline, result)
    })
    .map_err(|message| Error::HookThread { message })?;
    let (pod, verdict) = result?;
    for warning in &verdict.warnings {
        tracing::warn!("validate_pod warning: {warning}");
    }
    Ok(Applied {
        pod,
        verdict,
        pipeline,
    })
}
