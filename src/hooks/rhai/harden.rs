//! Turning a raw Rhai engine into a sandbox: the package list, every limit, the
//! per-call deadline and operation budget, and print/debug routed to podrun's log.
//!
//! The engine starts from `Engine::new_raw()`: no module resolver, no stdout printing.
//! The package list leaves out `LanguageCorePackage` (its `sleep` blocks the thread where
//! no limit can stop it) and `BasicTimePackage` (hooks get no clock); `eval` is removed at
//! parse time, and modules do not exist (the crate is built with `no_module`, so
//! `import` is a reserved word and there is no module resolver or `max_modules` to set).

use std::cell::RefCell;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use rhai::packages::{
    ArithmeticPackage, BasicArrayPackage, BasicFnPackage, BasicIteratorPackage, BasicMapPackage,
    BasicMathPackage, BasicStringPackage, BitFieldPackage, LogicPackage, MoreStringPackage,
    Package,
};
use rhai::{Dynamic, Engine, Module, OptimizationLevel, Shared};

type SharedModule = Shared<Module>;

use crate::hooks::{Limit, Limits};

/// The packages a hook may use, built once per process and shared by every engine.
fn packages() -> &'static [SharedModule] {
    static PACKAGES: OnceLock<Vec<SharedModule>> = OnceLock::new();
    PACKAGES.get_or_init(|| {
        vec![
            ArithmeticPackage::new().as_shared_module(),
            LogicPackage::new().as_shared_module(),
            BasicStringPackage::new().as_shared_module(),
            MoreStringPackage::new().as_shared_module(),
            BasicIteratorPackage::new().as_shared_module(),
            BasicFnPackage::new().as_shared_module(),
            BasicMathPackage::new().as_shared_module(),
            BitFieldPackage::new().as_shared_module(),
            BasicArrayPackage::new().as_shared_module(),
            BasicMapPackage::new().as_shared_module(),
        ]
    })
}

/// A raw engine with the allowed packages and every limit of `limits` set.
pub fn hardened_engine(limits: &Limits) -> Engine {
    let mut engine = Engine::new_raw();
    for package in packages() {
        engine.register_global_module(package.clone());
    }
    harden(&mut engine, limits);
    engine
}

/// Set every Rhai limit explicitly (never rely on Rhai's defaults, which differ between
/// debug and release builds and are mostly "unlimited"), disable `eval`, and install the
/// progress and print callbacks.
pub fn harden(engine: &mut Engine, limits: &Limits) {
    engine
        .set_max_operations(limits.rhai_max_operations)
        .set_max_call_levels(limits.rhai_max_call_levels)
        .set_max_expr_depths(limits.rhai_max_expr_depth, limits.rhai_max_fn_expr_depth)
        .set_max_string_size(limits.rhai_max_string_bytes)
        .set_max_array_size(limits.rhai_max_array_len)
        .set_max_map_size(limits.rhai_max_map_len)
        .set_max_variables(limits.rhai_max_variables)
        .set_max_functions(limits.rhai_max_functions)
        // Undefined variables are compile errors, so `hooks check` catches typos.
        .set_strict_variables(true)
        .set_optimization_level(OptimizationLevel::Simple);
    engine.disable_symbol("eval");
    engine.on_progress(on_progress);
    engine.on_print(|text| write_log("print", text));
    engine.on_debug(|text, _source, pos| {
        let text = match pos.line() {
            Some(line) => format!("line {line}: {text}"),
            None => text.to_owned(),
        };
        write_log("debug", &text);
    });
}

/// How many operations pass between two wall-clock checks: reading the clock costs about
/// as much as 20 simple operations, and 256 operations take a few microseconds.
const CLOCK_EVERY: u64 = 256;

/// The call running on this thread: its deadline, budget and counters. Rhai's
/// `on_progress` only sees an operation count and is fixed per engine, so per-call values
/// live here (sandbox.md 4.2).
struct CallState {
    hook: Arc<str>,
    deadline: Instant,
    max_operations: u64,
    operations: u64,
    log_budget: usize,
    log_truncated: bool,
}

thread_local! {
    static CALL: RefCell<Option<CallState>> = const { RefCell::new(None) };
}

/// Marks a call in progress on this thread; dropping it ends the call (restoring any
/// outer call, so a nested engine call cannot clear its caller's deadline).
pub(crate) struct CallGuard {
    previous: Option<CallState>,
}

impl CallGuard {
    /// Start a call of `hook` with this deadline, operation budget and log budget.
    pub(crate) fn enter(
        hook: Arc<str>,
        deadline: Instant,
        max_operations: u64,
        log_budget: usize,
    ) -> Self {
        let state = CallState {
            hook,
            deadline,
            max_operations,
            operations: 0,
            log_budget,
            log_truncated: false,
        };
        let previous = CALL.with(|c| c.borrow_mut().replace(state));
        CallGuard { previous }
    }

    /// Operations used so far by this call.
    pub(crate) fn operations(&self) -> u64 {
        CALL.with(|c| c.borrow().as_ref().map_or(0, |s| s.operations))
    }
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        let previous = self.previous.take();
        CALL.with(|c| *c.borrow_mut() = previous);
    }
}

/// Rhai's progress callback: stop the script with a token naming the limit.
fn on_progress(operations: u64) -> Option<Dynamic> {
    CALL.with(|c| {
        let mut call = c.borrow_mut();
        let Some(state) = call.as_mut() else {
            // No call was entered: podrun only runs scripts through `CallGuard`, so this is
            // a bug; stopping is the safe answer.
            return Some(Dynamic::from(Limit::Deadline.as_str()));
        };
        state.operations = operations;
        if operations > state.max_operations {
            return Some(Dynamic::from(Limit::Operations.as_str()));
        }
        if operations.is_multiple_of(CLOCK_EVERY) && Instant::now() >= state.deadline {
            return Some(Dynamic::from(Limit::Deadline.as_str()));
        }
        None
    })
}

/// True when the running call is past its deadline (checked by slow native helpers).
pub(crate) fn past_deadline() -> bool {
    CALL.with(|c| {
        c.borrow()
            .as_ref()
            .is_some_and(|s| Instant::now() >= s.deadline)
    })
}

/// Write a hook's `log`/`print`/`debug` text to podrun's log, tagged with the hook name,
/// escaped (hook text is untrusted and may hold terminal escapes) and within the call's
/// log budget.
pub(crate) fn write_log(kind: &str, text: &str) {
    CALL.with(|c| {
        let mut call = c.borrow_mut();
        let Some(state) = call.as_mut() else { return };
        if state.log_budget < text.len() {
            if !state.log_truncated {
                state.log_truncated = true;
                tracing::warn!(hook = %state.hook, "hook log output truncated (limit per call reached)");
            }
            return;
        }
        state.log_budget -= text.len();
        let text = escape(text);
        tracing::info!(hook = %state.hook, kind, "{text}");
    })
}

/// Control characters (terminal escapes, carriage returns) shown escaped.
fn escape(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_owned();
    }
    text.chars()
        .flat_map(|ch| {
            let escaped: Vec<char> = if ch.is_control() {
                ch.escape_default().collect()
            } else {
                vec![ch]
            };
            escaped
        })
        .collect()
}
