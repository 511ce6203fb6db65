//! Per-call store state: the resource limiter (memory, tables, instances), the guest's log
//! (the `log` import and WASI stdout/stderr, both capped), an empty WASI context, and the
//! call's wall-clock deadline, which bounds WASI sleeps.

use std::time::{Duration, Instant};

use wasmtime::component::{ComponentType, Lift, Lower, Resource, ResourceTable};
use wasmtime::ResourceLimiter;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::p2::{DynPollable, Pollable};
use wasmtime_wasi::{HostMonotonicClock, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::config::WasmLimits;

/// Severity of a guest log message (WIT `podrun:hooks/host.level`).
#[derive(ComponentType, Lift, Lower, Clone, Copy, Debug, PartialEq, Eq)]
#[component(enum)]
#[repr(u8)]
pub enum LogLevel {
    /// Very detailed tracing.
    #[component(name = "trace")]
    Trace,
    /// Debugging detail.
    #[component(name = "debug")]
    Debug,
    /// Normal progress information.
    #[component(name = "info")]
    Info,
    /// Something the hook handled.
    #[component(name = "warn")]
    Warn,
    /// Something the hook could not handle.
    #[component(name = "error")]
    Error,
}

/// One message a guest logged (control characters escaped).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogRecord {
    /// Severity (`Info` for stdout, `Warn` for stderr).
    pub level: LogLevel,
    /// The text, control characters escaped.
    pub message: String,
}

/// Tracks memory and table growth against the call's limits and records the peak.
pub(crate) struct Limiter {
    memory_limit: usize,
    table_limit: usize,
    instances: usize,
    tables: usize,
    memories: usize,
    /// Bytes of all linear memories now (initial sizes count as growth from 0).
    pub(crate) memory_now: usize,
    /// Highest `memory_now` seen.
    pub(crate) memory_peak: usize,
    /// Set when a grow was refused: (limit, requested).
    pub(crate) hit: Option<(usize, usize)>,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self
            .memory_now
            .saturating_sub(current)
            .saturating_add(desired);
        if total > self.memory_limit {
            self.hit = Some((self.memory_limit, total));
            // An error (not `false`) traps the guest: a clear failure instead of -1 from
            // memory.grow that a guest allocator might retry or ignore.
            return Err(wasmtime::format_err!(
                "memory limit of {} bytes exceeded",
                self.memory_limit
            ));
        }
        self.memory_now = total;
        self.memory_peak = self.memory_peak.max(total);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.table_limit {
            self.hit = Some((self.table_limit, desired));
            return Err(wasmtime::format_err!(
                "table limit of {} elements exceeded",
                self.table_limit
            ));
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        self.instances
    }
    fn tables(&self) -> usize {
        self.tables
    }
    fn memories(&self) -> usize {
        self.memories
    }
}

/// WASI state for guests whose runtime imports WASI: nothing granted, output captured.
pub(crate) struct Wasi {
    ctx: WasiCtx,
    table: ResourceTable,
    stdout: MemoryOutputPipe,
    stderr: MemoryOutputPipe,
}

/// The data of one store: one call, or one log-filter session.
pub(crate) struct HostState {
    pub(crate) limiter: Limiter,
    pub(crate) logs: Vec<LogRecord>,
    log_bytes: usize,
    log_cap: usize,
    pub(crate) logs_dropped: usize,
    wasi: Option<Wasi>,
    /// When the current call must end: the wall-clock twin of the epoch deadline, for
    /// host calls that block (a WASI sleep runs no wasm, so no epoch check can stop it).
    pub(crate) call_deadline: Instant,
    /// Set when a WASI sleep was cut short at `call_deadline`: the call then ends as a
    /// deadline error even if the guest returns before its next epoch check.
    pub(crate) slept_past_deadline: bool,
    /// Origin of the guest's monotonic clock.
    clock_origin: Instant,
}

impl HostState {
    /// Fresh state for a store with `memory` bytes of linear memory allowed.
    pub(crate) fn new(limits: &WasmLimits, memory: usize) -> Self {
        HostState {
            limiter: Limiter {
                memory_limit: memory,
                table_limit: limits.table_elements,
                instances: limits.instances,
                tables: limits.tables,
                memories: limits.memories,
                memory_now: 0,
                memory_peak: 0,
                hit: None,
            },
            logs: Vec::new(),
            log_bytes: 0,
            log_cap: limits.max_log_bytes,
            logs_dropped: 0,
            wasi: None,
            call_deadline: Instant::now(),
            slept_past_deadline: false,
            clock_origin: Instant::now(),
        }
    }

    /// A pollable that becomes ready after `duration`, or at the call's deadline if that
    /// comes first; the guest then resumes and the epoch deadline traps it.
    pub(crate) fn capped_sleep(
        &mut self,
        duration: Duration,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        let wanted = Instant::now().checked_add(duration);
        let until = match wanted {
            Some(t) if t <= self.call_deadline => t,
            _ => {
                self.slept_past_deadline = true;
                self.call_deadline
            }
        };
        let table = self.ctx().table;
        let sleep = table.push(CappedSleep(tokio::time::Instant::from_std(until)))?;
        wasmtime_wasi::p2::subscribe(table, sleep)
    }

    /// [`HostState::capped_sleep`] until `when` on the guest's monotonic clock.
    pub(crate) fn capped_sleep_until(
        &mut self,
        when: u64,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        let now = Monotonic(self.clock_origin).now();
        self.capped_sleep(Duration::from_nanos(when.saturating_sub(now)))
    }

    /// Records one guest message, escaping control characters, within the byte cap.
    pub(crate) fn push_log(&mut self, level: LogLevel, message: &str) {
        if self.log_bytes.saturating_add(message.len()) > self.log_cap {
            self.logs_dropped += 1;
            return;
        }
        self.log_bytes += message.len();
        let message = escape(message);
        let lvl = match level {
            LogLevel::Trace => tracing::Level::TRACE,
            LogLevel::Debug => tracing::Level::DEBUG,
            LogLevel::Info => tracing::Level::INFO,
            LogLevel::Warn => tracing::Level::WARN,
            LogLevel::Error => tracing::Level::ERROR,
        };
        // tracing needs a constant level per call site.
        match lvl {
            tracing::Level::TRACE => {
                tracing::trace!(target: "podrun::hooks::wasm::guest", "{message}")
            }
            tracing::Level::DEBUG => {
                tracing::debug!(target: "podrun::hooks::wasm::guest", "{message}")
            }
            tracing::Level::INFO => {
                tracing::info!(target: "podrun::hooks::wasm::guest", "{message}")
            }
            tracing::Level::WARN => {
                tracing::warn!(target: "podrun::hooks::wasm::guest", "{message}")
            }
            _ => tracing::error!(target: "podrun::hooks::wasm::guest", "{message}"),
        }
        self.logs.push(LogRecord { level, message });
    }

    /// Moves captured WASI stdout/stderr into the log (at the end of a call).
    pub(crate) fn drain_stdio(&mut self) {
        let Some(w) = self.wasi.as_mut() else { return };
        let out = std::mem::replace(&mut w.stdout, MemoryOutputPipe::new(0)).contents();
        let err = std::mem::replace(&mut w.stderr, MemoryOutputPipe::new(0)).contents();
        for (level, bytes) in [(LogLevel::Info, out), (LogLevel::Warn, err)] {
            for line in String::from_utf8_lossy(&bytes).lines() {
                self.push_log(level, line);
            }
        }
    }
}

/// Escapes control characters so untrusted guest text cannot drive a terminal.
fn escape(s: &str) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_string();
    }
    s.chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

/// An empty-capability WASI context: no preopened directories, no environment, no
/// arguments, stdin closed, no TCP, UDP or name lookup; stdout/stderr go to bounded pipes
/// that end up in podrun's log.
fn empty_wasi(cap: usize, clock_origin: Instant) -> Wasi {
    let stdout = MemoryOutputPipe::new(cap);
    let stderr = MemoryOutputPipe::new(cap);
    let ctx = WasiCtxBuilder::new()
        .monotonic_clock(Monotonic(clock_origin))
        .stdout(stdout.clone())
        .stderr(stderr.clone())
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .build();
    Wasi {
        ctx,
        table: ResourceTable::new(),
        stdout,
        stderr,
    }
}

/// The guest's monotonic clock: nanoseconds since the store was made (as WASI's default
/// clock), with a known origin so that `subscribe-instant` can be capped too.
struct Monotonic(Instant);

impl HostMonotonicClock for Monotonic {
    fn resolution(&self) -> u64 {
        1
    }
    fn now(&self) -> u64 {
        u64::try_from(self.0.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// A sleep that ends at a fixed instant (already capped by the call's deadline).
struct CappedSleep(tokio::time::Instant);

#[wasmtime_wasi::async_trait]
impl Pollable for CappedSleep {
    async fn ready(&mut self) {
        tokio::time::sleep_until(self.0).await;
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        // Built on first use so guests without WASI imports never pay for it.
        let (cap, origin) = (self.log_cap, self.clock_origin);
        let w = self.wasi.get_or_insert_with(|| empty_wasi(cap, origin));
        WasiCtxView {
            ctx: &mut w.ctx,
            table: &mut w.table,
        }
    }
}

impl HostState {
    /// Starts a new per-call log budget (log-filter sessions call this per batch).
    pub(crate) fn reset_log_budget(&mut self) {
        self.log_bytes = 0;
    }
}
