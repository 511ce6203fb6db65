//! Engine configuration and per-call limits for WASM hooks, each documented where it is set.

use std::path::PathBuf;
use std::time::Duration;

use super::error::{Error, Result};

const MIB: usize = 1024 * 1024;

/// Limits of one WASM hook call. The pipeline maps `hooks::Limits` onto this.
///
/// CPU time is bounded by `deadline` (epoch interruption); memory and tables by a
/// per-store resource limiter; neither covers time spent in the host (podrun's `log` import
/// only copies a bounded string).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WasmLimits {
    /// Wall-clock deadline of one admission-style call (mutate, validate, xcom, decide),
    /// instantiation included. Default 250 ms. Exceeding it: [`Error::Deadline`].
    pub deadline: Duration,
    /// Wall-clock deadline of one `filter_log` batch. Default 50 ms. [`Error::Deadline`].
    pub log_batch_deadline: Duration,
    /// Bytes of linear memory (all memories of the instance together) of an admission-style
    /// call. Default 64 MiB. Growing past it traps: [`Error::MemoryLimit`]. Capped by
    /// [`WasmConfig::max_memory_size`].
    pub memory: usize,
    /// Bytes of linear memory of a log filter instance. Default 16 MiB. [`Error::MemoryLimit`].
    pub log_memory: usize,
    /// Elements per table. Default 20,000 (C# guests need ~10 k). [`Error::MemoryLimit`].
    pub table_elements: usize,
    /// Core instances per store (a component instantiates several). Default 32.
    pub instances: usize,
    /// Tables per store. Default 8.
    pub tables: usize,
    /// Memories per store. Default 4.
    pub memories: usize,
    /// Bytes of input per call (pod + ctx, or a log batch + ctx). Default 1 MiB.
    /// [`Error::InputTooLarge`], checked before the guest runs.
    pub max_input: usize,
    /// Bytes of output per call (returned JSON, reasons, warnings, replaced lines).
    /// Default 1 MiB. [`Error::OutputTooLarge`]; the guest's memory limit bounds what it can
    /// return in the first place.
    pub max_output: usize,
    /// Bytes of guest log (the `log` import plus WASI stdout/stderr) kept per call.
    /// Default 64 KiB; the rest is counted in [`super::Usage::logs_dropped`].
    pub max_log_bytes: usize,
    /// Fuel per call, when the engine was built with [`WasmConfig::consume_fuel`]: a
    /// deterministic cut-off ([`Error::Fuel`]). Default `None` (epochs only).
    pub fuel: Option<u64>,
}

impl Default for WasmLimits {
    fn default() -> Self {
        WasmLimits {
            deadline: Duration::from_millis(250),
            log_batch_deadline: Duration::from_millis(50),
            memory: 64 * MIB,
            log_memory: 16 * MIB,
            table_elements: 20_000,
            instances: 32,
            tables: 8,
            memories: 4,
            max_input: MIB,
            max_output: MIB,
            max_log_bytes: 64 * 1024,
            fuel: None,
        }
    }
}

/// Configuration of the process's one WASM engine.
#[derive(Clone, Debug)]
pub struct WasmConfig {
    /// Default limits of every hook loaded (a hook may get its own through
    /// [`super::WasmHook::with_limits`]).
    pub limits: WasmLimits,
    /// Directory for compiled components. `None`: `$XDG_CACHE_HOME/podrun/wasm` (or
    /// `~/.cache/podrun/wasm`). Created 0700; refused (compile in memory only, with a
    /// warning) if another user owns it or others can write it.
    pub cache_dir: Option<PathBuf>,
    /// Whether to use the on-disk cache at all. Default true.
    pub disk_cache: bool,
    /// Component instances that can exist at once (the pooling allocator's slots). Calls
    /// beyond it fail with [`Error::Instantiate`]; the pipeline bounds concurrency below it.
    /// Default 64.
    pub max_instances: u32,
    /// Largest linear memory any hook may get (pool slot size). Default 64 MiB; a hook's
    /// memory limits are capped by it.
    pub max_memory_size: usize,
    /// Epoch tick: deadlines are rounded up to it. Default 10 ms.
    pub epoch_tick: Duration,
    /// Stack for wasm frames (`max_wasm_stack`); deep recursion traps with "stack
    /// overflow". Default 512 KiB; calls must run on threads with ≥ 2 MiB of stack.
    pub max_wasm_stack: usize,
    /// Count fuel (deterministic cut-off, ~10–30 % slower). Default false.
    pub consume_fuel: bool,
    /// Largest component file accepted. Default 64 MiB (Python components are ~40 MiB).
    pub max_component_size: usize,
}

impl Default for WasmConfig {
    fn default() -> Self {
        WasmConfig {
            limits: WasmLimits::default(),
            cache_dir: None,
            disk_cache: true,
            max_instances: 64,
            max_memory_size: 64 * MIB,
            epoch_tick: Duration::from_millis(10),
            max_wasm_stack: 512 * 1024,
            consume_fuel: false,
            max_component_size: 64 * MIB,
        }
    }
}

/// Builds wasmtime's `Config` from ours: component model, epochs, pooling, stack, Cranelift.
/// Bytes of each pooled linear memory kept resident between instances (see
/// `engine_config`): enough for a Rust guest's stack top and heap on a typical call.
const KEEP_RESIDENT: usize = 4 * MIB;

pub(crate) fn engine_config(cfg: &WasmConfig) -> Result<wasmtime::Config> {
    let n = cfg.max_instances.max(1);
    let mut pool = wasmtime::PoolingAllocationConfig::new();
    pool.total_component_instances(n)
        // Components instantiate several core modules (Python: libc, CPython, adapters).
        .total_core_instances(n.saturating_mul(16))
        .max_core_instances_per_component(32)
        .total_memories(n.saturating_mul(4))
        .max_memories_per_component(4)
        .max_memories_per_module(1)
        .total_tables(n.saturating_mul(8))
        .max_tables_per_component(8)
        .table_elements(cfg.limits.table_elements.max(20_000))
        .max_memory_size(cfg.max_memory_size)
        // vmctx of big guests (CPython has thousands of functions) exceeds the 1 MiB default.
        .max_core_instance_size(8 * MIB)
        .max_component_instance_size(MIB)
        // No async stacks: calls run synchronously on the caller's (blocking) thread.
        .total_stacks(0)
        // A fresh instance per call would otherwise pay, every call, an madvise to drop
        // the last instance's pages (with a TLB shootdown) and a page fault per page it
        // touches again. With PAGEMAP_SCAN (Linux 6.7+) only the pages a call dirtied are
        // zeroed in place, up to this much per memory; the rest is still madvised.
        .pagemap_scan(wasmtime::Enabled::Auto)
        .linear_memory_keep_resident(KEEP_RESIDENT)
        .table_keep_resident(64 * 1024);

    let mut c = wasmtime::Config::new();
    c.wasm_component_model(true)
        // Deadlines: one ticker thread bumps the epoch; each store sets its deadline.
        .epoch_interruption(true)
        .consume_fuel(cfg.consume_fuel)
        .allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool))
        .max_wasm_stack(cfg.max_wasm_stack)
        // Slot = the largest memory we allow (bounds checks stay cheap behind the guard);
        // keeps the pool's virtual reservation at max_instances × 4 × (64 + 32) MiB.
        .memory_reservation(cfg.max_memory_size as u64)
        .memory_guard_size(32 * MIB as u64)
        .memory_reservation_for_growth(0)
        .memory_init_cow(true)
        .cranelift_opt_level(wasmtime::OptLevel::Speed)
        .parallel_compilation(true);
    Ok(c)
}

/// Where compiled components are cached on disk.
pub(crate) fn default_cache_dir() -> Option<PathBuf> {
    if let Some(x) = std::env::var_os("XDG_CACHE_HOME").filter(|x| !x.is_empty()) {
        return Some(PathBuf::from(x).join("podrun").join("wasm"));
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".cache").join("podrun").join("wasm"))
}

/// Maps a wasmtime setup error.
pub(crate) fn engine_error(e: wasmtime::Error) -> Error {
    Error::Engine {
        message: format!("{e:#}"),
    }
}
