//! A loaded WASM hook: the typed calls of each point (fresh instance per admission-style
//! call), the log-filter session (one instance fed batches), output checks and error mapping.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;
use wasmtime::component::{
    ComponentExportIndex, ComponentNamedList, ComponentType, Func, InstancePre, Lift, Lower,
};
use wasmtime::Store;

use super::config::WasmLimits;
use super::engine::WasmEngine;
use super::error::{Error, Result};
use super::store::{HostState, LogRecord};
use super::Point;

/// Longest guest error message kept (the rest is cut, marked with "…").
const MAX_GUEST_MESSAGE: usize = 4096;

/// A log filter instance is replaced after this many batches, so a leaking guest cannot
/// grow without bound over a long task.
const RECYCLE_AFTER_BATCHES: u64 = 10_000;

/// A compiled component with its pre-linked instance and the points it exports.
pub(crate) struct Loaded {
    pub(crate) pre: InstancePre<HostState>,
    pub(crate) points: Vec<(Point, ComponentExportIndex)>,
    /// The component's import names (all allowed: checked at load).
    pub(crate) imports: Vec<String>,
}

/// What one call used.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Usage {
    /// Wall time, instantiation included.
    pub elapsed: Duration,
    /// Peak bytes of linear memory (all memories of the instance).
    pub peak_memory: usize,
    /// Fuel consumed, when the engine counts fuel.
    pub fuel_consumed: Option<u64>,
    /// What the guest logged (the `log` import, WASI stdout as info and stderr as warn).
    #[serde(skip)]
    pub logs: Vec<LogRecord>,
    /// Log messages dropped past [`WasmLimits::max_log_bytes`].
    pub logs_dropped: usize,
}

/// The answer of a `validate_pod` hook (WIT `validate-pod.verdict`).
#[derive(ComponentType, Lift, Lower, Clone, Debug, PartialEq, Eq, Serialize)]
#[component(record)]
pub struct Verdict {
    /// True admits the pod.
    pub allowed: bool,
    /// Why the pod is denied.
    pub reason: Option<String>,
    /// Warnings, whether allowed or not.
    pub warnings: Vec<String>,
}

/// What `filter_log` does with one line (WIT `filter-log.line-action`).
#[derive(ComponentType, Lift, Lower, Clone, Debug, PartialEq, Eq, Serialize)]
#[component(variant)]
#[serde(rename_all = "snake_case", tag = "action", content = "text")]
pub enum LineAction {
    /// Keep the line.
    #[component(name = "keep")]
    Keep,
    /// Drop the line.
    #[component(name = "drop")]
    Drop,
    /// Replace the line with this text.
    #[component(name = "replace")]
    Replace(String),
}

/// The decision of a `decide` hook (WIT `decide.decision`).
#[derive(ComponentType, Lift, Lower, Clone, Debug, PartialEq, Eq, Serialize)]
#[component(variant)]
#[serde(rename_all = "snake_case", tag = "decision", content = "reason")]
pub enum Decision {
    /// No opinion: podrun's own rules decide.
    #[component(name = "keep")]
    Keep,
    /// The task succeeded.
    #[component(name = "success")]
    Success,
    /// The task is skipped, with a reason.
    #[component(name = "skip")]
    Skip(String),
    /// The task failed, with a reason.
    #[component(name = "fail")]
    Fail(String),
}

/// A loaded hook component. Cheap to clone; calls may run concurrently from many threads.
///
/// Calls are synchronous and CPU-bound for up to their deadline: run them on blocking
/// threads (`tokio::task::spawn_blocking`), never on an async executor thread.
#[derive(Clone)]
pub struct WasmHook {
    engine: WasmEngine,
    loaded: std::sync::Arc<Loaded>,
    path: PathBuf,
    limits: WasmLimits,
}

impl WasmHook {
    pub(crate) fn new(
        engine: WasmEngine,
        loaded: std::sync::Arc<Loaded>,
        path: PathBuf,
        limits: WasmLimits,
    ) -> Self {
        let mut hook = WasmHook {
            engine,
            loaded,
            path,
            limits: WasmLimits::default(),
        };
        hook.set_limits(limits);
        hook
    }

    /// The hook file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Names of the points the component exports (`mutate_pod`, `validate_pod`, ...).
    pub fn points(&self) -> Vec<&'static str> {
        self.loaded.points.iter().map(|(p, _)| p.as_str()).collect()
    }

    /// The component's imports (`podrun:hooks/host@0.1.0`, WASI interfaces), for `hooks check`.
    pub fn imports(&self) -> &[String] {
        &self.loaded.imports
    }

    /// Whether the component imports WASI (a language runtime such as CPython): it gets WASI
    /// with nothing granted.
    pub fn uses_wasi(&self) -> bool {
        self.loaded.imports.iter().any(|i| i.starts_with("wasi:"))
    }

    /// Whether the component exports `point`.
    pub fn implements(&self, point: Point) -> bool {
        self.loaded.points.iter().any(|(p, _)| *p == point)
    }

    /// This hook's limits.
    pub fn limits(&self) -> &WasmLimits {
        &self.limits
    }

    /// The same hook with other limits (memory capped by the engine's pool slot size).
    pub fn with_limits(mut self, limits: WasmLimits) -> Self {
        self.set_limits(limits);
        self
    }

    fn set_limits(&mut self, mut limits: WasmLimits) {
        let cap = self.engine.config().max_memory_size;
        limits.memory = limits.memory.min(cap);
        limits.log_memory = limits.log_memory.min(cap);
        self.limits = limits;
    }

    fn export(&self, point: Point) -> Result<&ComponentExportIndex> {
        self.loaded
            .points
            .iter()
            .find(|(p, _)| *p == point)
            .map(|(_, i)| i)
            .ok_or_else(|| Error::NotImplemented {
                path: self.path.clone(),
                point: point.as_str(),
                implemented: match self.points().join(", ") {
                    s if s.is_empty() => "none".into(),
                    s => s,
                },
            })
    }

    /// `mutate_pod`: returns the pod (JSON object text) to create.
    pub fn mutate_pod(&self, pod: &str, ctx: &str) -> Result<(String, Usage)> {
        let (r, usage) = self.call::<(&str, &str), (Result<String, String>,)>(
            Point::MutatePod,
            (pod, ctx),
            pod.len() + ctx.len(),
        )?;
        let out = self.guest_result(r.0)?;
        self.check_output(out.len())?;
        match serde_json::from_str::<serde_json::Value>(&out) {
            Ok(serde_json::Value::Object(_)) => Ok((out, usage)),
            Ok(_) => Err(Error::MalformedOutput {
                message: "mutate_pod must return a JSON object (the pod)".into(),
            }),
            Err(e) => Err(Error::MalformedOutput {
                message: format!("mutate_pod returned invalid JSON: {e}"),
            }),
        }
    }

    /// `validate_pod`: the verdict on the final pod.
    pub fn validate_pod(&self, pod: &str, ctx: &str) -> Result<(Verdict, Usage)> {
        let (r, usage) = self.call::<(&str, &str), (Result<Verdict, String>,)>(
            Point::ValidatePod,
            (pod, ctx),
            pod.len() + ctx.len(),
        )?;
        let v = self.guest_result(r.0)?;
        let size = v.reason.as_ref().map_or(0, String::len)
            + v.warnings.iter().map(String::len).sum::<usize>();
        self.check_output(size)?;
        Ok((v, usage))
    }

    /// `process_xcom`: the XCom value (JSON text) to push.
    pub fn process_xcom(&self, value: &str, ctx: &str) -> Result<(String, Usage)> {
        let (r, usage) = self.call::<(&str, &str), (Result<String, String>,)>(
            Point::ProcessXcom,
            (value, ctx),
            value.len() + ctx.len(),
        )?;
        let out = self.guest_result(r.0)?;
        self.check_output(out.len())?;
        serde_json::from_str::<serde::de::IgnoredAny>(&out).map_err(|e| {
            Error::MalformedOutput {
                message: format!("process_xcom returned invalid JSON: {e}"),
            }
        })?;
        Ok((out, usage))
    }

    /// `decide`: the decision on the task's outcome (JSON text).
    pub fn decide(&self, outcome: &str, ctx: &str) -> Result<(Decision, Usage)> {
        let (r, usage) = self.call::<(&str, &str), (Result<Decision, String>,)>(
            Point::Decide,
            (outcome, ctx),
            outcome.len() + ctx.len(),
        )?;
        let d = self.guest_result(r.0)?;
        if let Decision::Skip(s) | Decision::Fail(s) = &d {
            self.check_output(s.len())?;
        }
        Ok((d, usage))
    }

    /// Starts a `filter_log` session for one task: one instance, fed batches, replaced after
    /// any failure. No guest code runs until the first batch.
    pub fn log_filter(&self, ctx: &str) -> Result<LogFilterSession> {
        let index = *self.export(Point::FilterLog)?;
        if ctx.len() > self.limits.max_input {
            return Err(Error::InputTooLarge {
                size: ctx.len(),
                limit: self.limits.max_input,
            });
        }
        Ok(LogFilterSession {
            hook: self.clone(),
            index,
            ctx: ctx.to_string(),
            live: None,
            batches: 0,
        })
    }

    /// A fresh store with this hook's limits and a deadline starting now.
    fn new_store(&self, memory: usize, deadline: Duration) -> Store<HostState> {
        let mut store = Store::new(
            &self.engine.inner.engine,
            HostState::new(&self.limits, memory),
        );
        store.limiter(|s| &mut s.limiter);
        self.arm(&mut store, deadline);
        store
    }

    /// Sets the epoch deadline (and fuel) for the next call on `store`.
    fn arm(&self, store: &mut Store<HostState>, deadline: Duration) {
        let tick = self
            .engine
            .config()
            .epoch_tick
            .max(Duration::from_millis(1));
        // Round up, plus one tick: the current tick may be about to end.
        let ticks = deadline.as_nanos().div_ceil(tick.as_nanos()) as u64 + 1;
        store.set_epoch_deadline(ticks);
        // A blocking host call (a WASI sleep) wakes by then, and the epoch check traps.
        store.data_mut().call_deadline =
            std::time::Instant::now() + tick * u32::try_from(ticks).unwrap_or(u32::MAX);
        store.data_mut().slept_past_deadline = false;
        store.epoch_deadline_trap();
        if self.engine.config().consume_fuel {
            // Setting fuel only fails when fuel is off, which the condition excludes.
            let _ = store.set_fuel(self.limits.fuel.unwrap_or(u64::MAX));
        }
    }

    /// One admission-style call: fresh store and instance, typed call, usage.
    fn call<P, R>(&self, point: Point, params: P, input_len: usize) -> Result<(R, Usage)>
    where
        P: ComponentNamedList + Lower + Send + Sync,
        R: ComponentNamedList + Lift + Send + Sync + 'static,
    {
        let index = *self.export(point)?;
        if input_len > self.limits.max_input {
            return Err(Error::InputTooLarge {
                size: input_len,
                limit: self.limits.max_input,
            });
        }
        let start = Instant::now();
        let deadline = self.limits.deadline;
        let mut store = self.new_store(self.limits.memory, deadline);
        let instance = match self.loaded.pre.instantiate(&mut store) {
            Ok(i) => i,
            Err(e) => return Err(self.classify(e, store.data(), deadline, true)),
        };
        let func = instance
            .get_typed_func::<P, R>(&mut store, &index)
            .map_err(|e| Error::Instantiate {
                message: format!(
                    "{} has the wrong signature for podrun:hooks@{}: {e:#}",
                    point.as_str(),
                    super::WIT_VERSION
                ),
            })?;
        let result = func.call(&mut store, params);
        let usage = self.usage(&mut store, start);
        match result {
            Ok(_) if store.data().slept_past_deadline => Err(Error::Deadline { limit: deadline }),
            Ok(r) => Ok((r, usage)),
            Err(e) => Err(self.classify(e, store.data(), deadline, false)),
        }
    }

    fn usage(&self, store: &mut Store<HostState>, start: Instant) -> Usage {
        store.data_mut().drain_stdio();
        let fuel_consumed = if self.engine.config().consume_fuel {
            let given = self.limits.fuel.unwrap_or(u64::MAX);
            store.get_fuel().ok().map(|left| given - left)
        } else {
            None
        };
        let data = store.data_mut();
        let usage = Usage {
            elapsed: start.elapsed(),
            peak_memory: data.limiter.memory_peak,
            fuel_consumed,
            logs: std::mem::take(&mut data.logs),
            logs_dropped: std::mem::take(&mut data.logs_dropped),
        };
        data.reset_log_budget();
        usage
    }

    /// Maps a wasmtime failure to the cause the user needs to see.
    fn classify(
        &self,
        e: wasmtime::Error,
        state: &HostState,
        deadline: Duration,
        instantiating: bool,
    ) -> Error {
        if let Some((limit, requested)) = state.limiter.hit {
            return Error::MemoryLimit { limit, requested };
        }
        if let Some(trap) = e.downcast_ref::<wasmtime::Trap>() {
            return match trap {
                wasmtime::Trap::Interrupt => Error::Deadline { limit: deadline },
                wasmtime::Trap::OutOfFuel => Error::Fuel {
                    limit: self.limits.fuel.unwrap_or(u64::MAX),
                },
                wasmtime::Trap::StackOverflow => Error::Trap {
                    message: format!(
                        "stack overflow (wasm stack limit {} KiB)",
                        self.engine.config().max_wasm_stack / 1024
                    ),
                },
                _ => Error::Trap {
                    message: format!("{e:#}"),
                },
            };
        }
        if instantiating {
            Error::Instantiate {
                message: format!("{e:#}"),
            }
        } else {
            // Not a trap: lifting the result failed (bad variant tag, invalid UTF-8,
            // out-of-bounds pointer), i.e. the guest broke the canonical ABI.
            Error::MalformedOutput {
                message: format!("{e:#}"),
            }
        }
    }

    fn guest_result<T>(&self, r: std::result::Result<T, String>) -> Result<T> {
        r.map_err(|mut msg| {
            if msg.len() > MAX_GUEST_MESSAGE {
                let mut cut = MAX_GUEST_MESSAGE;
                while !msg.is_char_boundary(cut) {
                    cut -= 1;
                }
                msg.truncate(cut);
                msg.push('…');
            }
            Error::GuestError(msg)
        })
    }

    fn check_output(&self, size: usize) -> Result<()> {
        if size > self.limits.max_output {
            return Err(Error::OutputTooLarge {
                size,
                limit: self.limits.max_output,
            });
        }
        Ok(())
    }
}

/// A live log-filter instance for one task and hook.
struct Live {
    store: Store<HostState>,
    func: Func,
}

/// `filter_log` for one task: one instance fed batches of lines; after any failure the
/// instance is discarded and the next batch gets a fresh one.
pub struct LogFilterSession {
    hook: WasmHook,
    index: ComponentExportIndex,
    ctx: String,
    live: Option<Live>,
    batches: u64,
}

impl LogFilterSession {
    /// Filters one batch of lines (no trailing newlines): one action per line, in order.
    pub fn filter<S: AsRef<str>>(&mut self, lines: &[S]) -> Result<(Vec<LineAction>, Usage)> {
        let limits = &self.hook.limits;
        let lines: Vec<&str> = lines.iter().map(AsRef::as_ref).collect();
        let size = self.ctx.len() + lines.iter().map(|l| l.len()).sum::<usize>();
        if size > limits.max_input {
            return Err(Error::InputTooLarge {
                size,
                limit: limits.max_input,
            });
        }
        let deadline = limits.log_batch_deadline;
        let start = Instant::now();
        if self.batches >= RECYCLE_AFTER_BATCHES {
            self.live = None;
            self.batches = 0;
        }
        let mut live = match self.live.take() {
            Some(mut live) => {
                self.hook.arm(&mut live.store, deadline);
                live
            }
            None => self.instantiate(deadline)?,
        };
        let func = live
            .func
            .typed::<(&[&str], &str), (Result<Vec<LineAction>, String>,)>(&live.store)
            .map_err(|e| Error::Instantiate {
                message: format!("filter_log has the wrong signature: {e:#}"),
            })?;
        let result = func.call(&mut live.store, (lines.as_slice(), self.ctx.as_str()));
        let usage = self.hook.usage(&mut live.store, start);
        let (r,) = match result {
            Ok(r) => r,
            // The instance is dropped here (not put back): never reuse a trapped store.
            Err(e) => return Err(self.hook.classify(e, live.store.data(), deadline, false)),
        };
        if live.store.data().slept_past_deadline {
            // Dropped like a trapped instance.
            return Err(Error::Deadline { limit: deadline });
        }
        self.batches += 1;
        self.live = Some(live);
        let actions = self.hook.guest_result(r)?;
        if actions.len() != lines.len() {
            return Err(Error::MalformedOutput {
                message: format!(
                    "filter_log returned {} actions for {} lines",
                    actions.len(),
                    lines.len()
                ),
            });
        }
        let out: usize = actions
            .iter()
            .map(|a| match a {
                LineAction::Replace(s) => s.len(),
                _ => 0,
            })
            .sum();
        self.hook.check_output(out)?;
        Ok((actions, usage))
    }

    fn instantiate(&self, deadline: Duration) -> Result<Live> {
        let mut store = self.hook.new_store(self.hook.limits.log_memory, deadline);
        let instance = match self.hook.loaded.pre.instantiate(&mut store) {
            Ok(i) => i,
            Err(e) => return Err(self.hook.classify(e, store.data(), deadline, true)),
        };
        let func = instance
            .get_func(&mut store, self.index)
            .ok_or_else(|| Error::Instantiate {
                message: "filter_log export missing from the instance".into(),
            })?;
        Ok(Live { store, func })
    }
}

impl WasmHook {
    /// Creates one instance (fresh store, this hook's limits) and drops it, calling nothing.
    /// Shows that the hook instantiates within its limits (start functions run); used by
    /// `podrun hooks check` and the instantiation benchmark.
    pub fn instantiate_once(&self) -> Result<Duration> {
        let start = Instant::now();
        let mut store = self.new_store(self.limits.memory, self.limits.deadline);
        match self.loaded.pre.instantiate(&mut store) {
            Ok(_) => Ok(start.elapsed()),
            Err(e) => Err(self.classify(e, store.data(), self.limits.deadline, true)),
        }
    }
}
