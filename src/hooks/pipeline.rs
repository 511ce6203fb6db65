//! The hook pipeline of one task: tenant hooks (task file) and platform hooks (policy
//! file), in the documented order, with `on_error`, and a [`Record`] of every decision.
//!
//! Order: `mutate_pod` tenant then platform; `validate_pod` tenant then platform, all must
//! allow (every validate hook runs so all warnings are seen; the first deny's reason is
//! reported); `filter_log`, `process_xcom` and `decide` tenant first, platform last, each
//! hook seeing the previous one's result, so the platform has the last word.
//!
//! Calls are synchronous and CPU-bound (bounded by [`super::Limits`]); async callers run
//! them on a blocking thread. Methods take `&self`, so one `Arc<Pipeline>` serves several
//! containers' log streams at once.

use std::borrow::Cow;
use std::sync::Mutex;

use serde::Serialize;
use serde_json::Value;

use super::contract::{BaseResult, Ctx, Decision, LineAction, Outcome, Verdict};
use super::diff::changed_paths;
use super::hook::{Hook, Runtime, Usage};
use super::{Error, HookRef, HookSpec, Layer, Limits, OnError, Point, Policy, Result};

/// What the pipeline knows of the task, for `ctx`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskInfo {
    /// `task_id`.
    pub task_id: String,
    /// The run id.
    pub run_id: String,
    /// The try number.
    pub try_number: u32,
    /// Namespace; when empty, taken from the pod's metadata.
    pub namespace: String,
    /// Pod name; when empty, taken from the pod's metadata.
    pub pod_name: String,
    /// The tenant whose task this is (engines and limits are per tenant).
    pub tenant: String,
    /// The task's `params`.
    pub params: Value,
}

/// What one hook decided, for the run report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Record {
    /// Which hook.
    pub hook: HookRef,
    /// At which point.
    pub point: Point,
    /// What it did.
    #[serde(flatten)]
    pub result: RecordResult,
    /// Warnings (validate warnings, or the error of an ignored failure).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Time and resources used.
    pub usage: Usage,
}

/// The result part of a [`Record`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum RecordResult {
    /// `mutate_pod` changed these JSON paths (empty: nothing changed).
    Mutated {
        /// Changed paths, e.g. `metadata.labels.team`.
        paths: Vec<String>,
    },
    /// `validate_pod` allowed.
    Allowed,
    /// `validate_pod` denied.
    Denied {
        /// The reason given.
        reason: String,
    },
    /// `process_xcom` ran.
    Xcom {
        /// Whether the value changed.
        changed: bool,
    },
    /// `decide` answered.
    Decided {
        /// Its decision.
        decision: Decision,
    },
    /// `filter_log` totals over the task (one record per hook).
    Filtered {
        /// Batches (calls).
        batches: u64,
        /// Lines seen.
        lines: u64,
        /// Lines dropped.
        dropped: u64,
        /// Lines replaced.
        replaced: u64,
        /// Lines kept because the hook failed on their batch.
        failed_lines: u64,
        /// Lines cut to `max_log_line_bytes` before filtering.
        truncated: u64,
        /// The last failure, if any.
        #[serde(skip_serializing_if = "Option::is_none")]
        last_error: Option<String>,
    },
    /// The hook failed and `on_error: ignore` skipped it.
    Ignored {
        /// The failure.
        error: String,
    },
    /// The hook failed and failed the task.
    Failed {
        /// The failure.
        error: String,
    },
}

/// Running totals of one filter hook.
#[derive(Debug, Default, Clone)]
struct FilterStats {
    batches: u64,
    lines: u64,
    dropped: u64,
    replaced: u64,
    failed_lines: u64,
    truncated: u64,
    last_error: Option<String>,
    usage: Usage,
}

/// The loaded hooks of one task, in run order, and what they did.
#[derive(Debug)]
pub struct Pipeline {
    task: TaskInfo,
    limits: Limits,
    /// Tenant hooks first, then platform hooks, each in declaration order.
    hooks: Vec<Hook>,
    records: Mutex<Vec<Record>>,
    /// Per hook (same index as `hooks`); only filter hooks use theirs.
    filters: Mutex<Vec<FilterStats>>,
}

impl Pipeline {
    /// Load the tenant's hooks and the policy's platform hooks. Every hook is read and
    /// compiled now, so a broken hook fails before anything is created.
    pub fn new(
        runtime: &Runtime,
        task: TaskInfo,
        tenant_hooks: &[HookSpec],
        policy: &Policy,
    ) -> Result<Self> {
        let limits = policy.limits.clone();
        let mut hooks = Vec::new();
        for (layer, specs) in [
            (Layer::Tenant, tenant_hooks),
            (Layer::Platform, &policy.hooks),
        ] {
            for (index, spec) in specs.iter().enumerate() {
                hooks.push(Hook::load(
                    runtime,
                    spec,
                    index,
                    layer,
                    &task.tenant,
                    &limits,
                )?);
            }
        }
        let filters = Mutex::new(vec![FilterStats::default(); hooks.len()]);
        Ok(Pipeline {
            task,
            limits,
            hooks,
            records: Mutex::new(Vec::new()),
            filters,
        })
    }

    /// Whether any hook runs at `point` (callers can skip work, e.g. log batching).
    pub fn has(&self, point: Point) -> bool {
        self.hooks.iter().any(|h| h.spec().point == point)
    }

    /// The hooks at `point` in run order, with their index.
    fn at(&self, point: Point) -> impl Iterator<Item = (usize, &Hook)> {
        self.hooks
            .iter()
            .enumerate()
            .filter(move |(_, h)| h.spec().point == point)
    }

    fn ctx(&self, hook: &Hook, pod: Option<&Value>, container: Option<&str>) -> Value {
        let meta = |key: &str| {
            pod.and_then(|p| p.pointer(&format!("/metadata/{key}")))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let or_meta = |given: &str, key: &str| {
            if given.is_empty() {
                meta(key).unwrap_or_default()
            } else {
                given.to_owned()
            }
        };
        let ctx = Ctx {
            task_id: self.task.task_id.clone(),
            run_id: self.task.run_id.clone(),
            try_number: self.task.try_number,
            namespace: or_meta(&self.task.namespace, "namespace"),
            pod_name: or_meta(&self.task.pod_name, "name"),
            tenant: self.task.tenant.clone(),
            layer: Some(hook.hook_ref().layer),
            point: Some(hook.spec().point),
            config: hook.spec().config.clone(),
            params: self.task.params.clone(),
            container: container.map(str::to_owned),
        };
        // `Ctx` holds only strings, numbers and JSON values: serializing cannot fail.
        serde_json::to_value(ctx).unwrap_or(Value::Null)
    }

    fn record(
        &self,
        hook: &Hook,
        point: Point,
        result: RecordResult,
        warnings: Vec<String>,
        usage: Usage,
    ) {
        let record = Record {
            hook: hook.hook_ref().clone(),
            point,
            result,
            warnings,
            usage,
        };
        self.records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(record);
    }

    /// Apply the hook's `on_error`: `Ok(())` to skip it (ignored, recorded) or the error.
    fn on_failure(&self, hook: &Hook, point: Point, err: Error) -> Result<()> {
        let message = err.to_string();
        if hook.spec().on_error == OnError::Ignore && point != Point::ValidatePod {
            tracing::warn!("{message} (on_error: ignore, hook skipped)");
            self.record(
                hook,
                point,
                RecordResult::Ignored { error: message },
                Vec::new(),
                Usage::default(),
            );
            Ok(())
        } else {
            self.record(
                hook,
                point,
                RecordResult::Failed { error: message },
                Vec::new(),
                Usage::default(),
            );
            Err(err)
        }
    }

    /// Run every `mutate_pod` hook, then every `validate_pod` hook on the final pod.
    /// A deny is a verdict (not an error); a failing validate hook is an error whatever
    /// its `on_error` (fail closed).
    pub fn mutate_and_validate(&self, mut pod: Value) -> Result<(Value, Verdict)> {
        for (_, hook) in self.at(Point::MutatePod) {
            let ctx = self.ctx(hook, Some(&pod), None);
            let result = hook
                .call(Point::MutatePod, &pod, &ctx)
                .and_then(|(out, usage)| {
                    if out.is_object() {
                        Ok((out, usage))
                    } else {
                        Err(hook.error(
                            Point::MutatePod,
                            super::Cause::MalformedOutput(format!(
                                "mutate_pod must return the pod map, got {}",
                                super::contract::kind(&out)
                            )),
                        ))
                    }
                });
            match result {
                Ok((out, usage)) => {
                    let paths = changed_paths(&pod, &out);
                    self.record(
                        hook,
                        Point::MutatePod,
                        RecordResult::Mutated { paths },
                        Vec::new(),
                        usage,
                    );
                    pod = out;
                }
                Err(err) => self.on_failure(hook, Point::MutatePod, err)?,
            }
        }
        let mut verdict = Verdict::allow();
        for (_, hook) in self.at(Point::ValidatePod) {
            let ctx = self.ctx(hook, Some(&pod), None);
            let result = hook
                .call(Point::ValidatePod, &pod, &ctx)
                .and_then(|(out, usage)| {
                    Verdict::from_output(&out).map(|v| (v, usage)).map_err(|m| {
                        hook.error(Point::ValidatePod, super::Cause::MalformedOutput(m))
                    })
                });
            match result {
                Ok((v, usage)) => {
                    let result = if v.allowed {
                        RecordResult::Allowed
                    } else {
                        RecordResult::Denied {
                            reason: v.reason.clone().unwrap_or_default(),
                        }
                    };
                    self.record(hook, Point::ValidatePod, result, v.warnings.clone(), usage);
                    verdict.warnings.extend(v.warnings);
                    if !v.allowed && verdict.allowed {
                        verdict.allowed = false;
                        verdict.reason = v.reason;
                        verdict.denied_by = Some(hook.hook_ref().to_string());
                    }
                }
                Err(err) => self.on_failure(hook, Point::ValidatePod, err)?,
            }
        }
        Ok((pod, verdict))
    }

    /// Filter one batch of `container`'s lines through every `filter_log` hook; returns one
    /// action per input line. Never fails: a failing filter keeps its batch's lines and
    /// counts them. Lines longer than `max_log_line_bytes` are cut first (and come back as
    /// `Replace` with the cut text); batches are split to `max_log_batch_lines`.
    pub fn filter_log<S: AsRef<str>>(&self, container: &str, lines: &[S]) -> Vec<LineAction> {
        if !self.has(Point::FilterLog) {
            return vec![LineAction::Keep; lines.len()];
        }
        let max_line = self.limits.max_log_line_bytes;
        let mut truncated = 0u64;
        let mut texts: Vec<Cow<'_, str>> = lines
            .iter()
            .map(|l| {
                let l = l.as_ref();
                if l.len() > max_line {
                    truncated += 1;
                    let cut = (0..=max_line)
                        .rev()
                        .find(|i| l.is_char_boundary(*i))
                        .unwrap_or(0);
                    Cow::Owned(l[..cut].to_owned())
                } else {
                    Cow::Borrowed(l)
                }
            })
            .collect();
        let mut dropped = vec![false; lines.len()];
        let mut first = true;
        for (index, hook) in self.at(Point::FilterLog) {
            let ctx = self.ctx(hook, None, Some(container));
            let alive: Vec<usize> = (0..lines.len()).filter(|i| !dropped[*i]).collect();
            let mut stats = FilterStats {
                truncated: if first { truncated } else { 0 },
                ..FilterStats::default()
            };
            first = false;
            for chunk in alive.chunks(self.limits.max_log_batch_lines.max(1)) {
                let batch: Vec<&str> = chunk.iter().map(|i| texts[*i].as_ref()).collect();
                stats.batches += 1;
                stats.lines += batch.len() as u64;
                match hook.filter_log(&batch, &ctx) {
                    Ok((actions, usage)) => {
                        stats.usage.add(&usage);
                        for (i, action) in chunk.iter().zip(actions) {
                            match action {
                                LineAction::Keep => {}
                                LineAction::Drop => {
                                    stats.dropped += 1;
                                    dropped[*i] = true;
                                }
                                LineAction::Replace(text) => {
                                    stats.replaced += 1;
                                    texts[*i] = Cow::Owned(text);
                                }
                            }
                        }
                    }
                    Err(err) => {
                        let message = err.to_string();
                        tracing::warn!("{message} (log lines kept)");
                        stats.failed_lines += batch.len() as u64;
                        stats.last_error = Some(message);
                    }
                }
            }
            self.add_filter_stats(index, stats);
        }
        texts
            .into_iter()
            .zip(lines)
            .zip(dropped)
            .map(|((text, original), dropped)| {
                if dropped {
                    LineAction::Drop
                } else if text.as_ref() == original.as_ref() {
                    LineAction::Keep
                } else {
                    LineAction::Replace(text.into_owned())
                }
            })
            .collect()
    }

    fn add_filter_stats(&self, index: usize, add: FilterStats) {
        let mut filters = self
            .filters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(s) = filters.get_mut(index) {
            s.batches += add.batches;
            s.lines += add.lines;
            s.dropped += add.dropped;
            s.replaced += add.replaced;
            s.failed_lines += add.failed_lines;
            s.truncated += add.truncated;
            if add.last_error.is_some() {
                s.last_error = add.last_error;
            }
            s.usage.add(&add.usage);
        }
    }

    /// Run every `process_xcom` hook on the XCom value, in order.
    pub fn process_xcom(&self, mut value: Value) -> Result<Value> {
        for (_, hook) in self.at(Point::ProcessXcom) {
            let ctx = self.ctx(hook, None, None);
            match hook.call(Point::ProcessXcom, &value, &ctx) {
                Ok((out, usage)) => {
                    let changed = out != value;
                    self.record(
                        hook,
                        Point::ProcessXcom,
                        RecordResult::Xcom { changed },
                        Vec::new(),
                        usage,
                    );
                    value = out;
                }
                Err(err) => self.on_failure(hook, Point::ProcessXcom, err)?,
            }
        }
        Ok(value)
    }

    /// Run every `decide` hook. Each sees the outcome with `result` set to the decision so
    /// far; the last hook that does not answer `keep` decides. `Keep` means the base
    /// decision stands.
    pub fn decide(&self, outcome: &Outcome) -> Result<Decision> {
        let mut current = outcome.clone();
        let mut decision = Decision::Keep;
        for (_, hook) in self.at(Point::Decide) {
            let ctx = self.ctx(hook, None, None);
            // `Outcome` holds only strings, numbers and JSON values: serializing cannot fail.
            let input = serde_json::to_value(&current).unwrap_or(Value::Null);
            let result = hook
                .call(Point::Decide, &input, &ctx)
                .and_then(|(out, usage)| {
                    Decision::from_output(&out)
                        .map(|d| (d, usage))
                        .map_err(|m| hook.error(Point::Decide, super::Cause::MalformedOutput(m)))
                });
            match result {
                Ok((d, usage)) => {
                    self.record(
                        hook,
                        Point::Decide,
                        RecordResult::Decided {
                            decision: d.clone(),
                        },
                        Vec::new(),
                        usage,
                    );
                    match &d {
                        Decision::Keep => continue,
                        Decision::Success => current.result = BaseResult::Success,
                        Decision::Skip(_) => current.result = BaseResult::Skipped,
                        Decision::Fail(_) => current.result = BaseResult::Failed,
                    }
                    decision = d;
                }
                Err(err) => self.on_failure(hook, Point::Decide, err)?,
            }
        }
        Ok(decision)
    }

    /// Every decision so far, in order, followed by one totals record per filter hook.
    pub fn records(&self) -> Vec<Record> {
        let mut out = self
            .records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let filters = self
            .filters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (hook, s) in self.hooks.iter().zip(filters.iter()) {
            if hook.spec().point != Point::FilterLog || s.batches == 0 {
                continue;
            }
            out.push(Record {
                hook: hook.hook_ref().clone(),
                point: Point::FilterLog,
                result: RecordResult::Filtered {
                    batches: s.batches,
                    lines: s.lines,
                    dropped: s.dropped,
                    replaced: s.replaced,
                    failed_lines: s.failed_lines,
                    truncated: s.truncated,
                    last_error: s.last_error.clone(),
                },
                warnings: Vec::new(),
                usage: s.usage,
            });
        }
        out
    }
}
