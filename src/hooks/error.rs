//! `hooks::Error`: what failed, in which hook (tenant, layer, file or name), at which point,
//! and why (a limit, a trap, a script error with its position, malformed output).
//!
//! A `validate_pod` deny is not an error: it is a [`super::Verdict`]. "The hook broke" and
//! "the hook said no" stay apart, and both fail closed.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use super::{Layer, Point};

/// Result alias for the hooks module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Which hook: enough to find it (file or inline name) and whose it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HookRef {
    /// The tenant the hook belongs to (platform hooks carry the task's tenant too).
    pub tenant: String,
    /// Tenant (task file) or platform (policy file).
    pub layer: Layer,
    /// The entry's `name`, or the file name, or `inline#N` for an inline script.
    pub name: String,
    /// The hook file, when it came from one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
}

impl fmt::Display for HookRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} hook {:?}", self.layer, self.name)?;
        if let Some(file) = &self.file {
            write!(f, " ({})", file.display())?;
        }
        write!(f, " of tenant {:?}", self.tenant)
    }
}

/// The limit that stopped a hook. Each names a field of [`super::Limits`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Limit {
    /// `call_deadline` or `log_batch_deadline` (wall clock).
    Deadline,
    /// `rhai_max_operations` / `rhai_operations_per_line`.
    Operations,
    /// `rhai_max_call_levels` (recursion).
    CallDepth,
    /// `rhai_max_expr_depth` / `rhai_max_fn_expr_depth`.
    ExpressionDepth,
    /// `rhai_max_string_bytes`.
    StringSize,
    /// `rhai_max_array_len`.
    ArraySize,
    /// `rhai_max_map_len`.
    MapSize,
    /// `rhai_max_variables`.
    Variables,
    /// `rhai_max_functions`.
    Functions,
    /// Modules are never allowed (`import`).
    Modules,
    /// `max_input_bytes`.
    InputSize,
    /// `max_output_bytes`.
    OutputSize,
    /// `max_output_depth`.
    Depth,
    /// `wasm_max_memory_bytes` / `wasm_log_max_memory_bytes`.
    Memory,
    /// `wasm_fuel`.
    Fuel,
    /// wasm stack (`max_wasm_stack`).
    Stack,
}

impl Limit {
    /// The stable name used in messages, tokens and the run report.
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::Deadline => "deadline",
            Limit::Operations => "operations",
            Limit::CallDepth => "call depth",
            Limit::ExpressionDepth => "expression depth",
            Limit::StringSize => "string size",
            Limit::ArraySize => "array size",
            Limit::MapSize => "map size",
            Limit::Variables => "variables",
            Limit::Functions => "functions",
            Limit::Modules => "modules",
            Limit::InputSize => "input size",
            Limit::OutputSize => "output size",
            Limit::Depth => "nesting depth",
            Limit::Memory => "memory",
            Limit::Fuel => "fuel",
            Limit::Stack => "stack",
        }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why one hook call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Cause {
    /// A limit stopped the hook.
    #[error("{limit} limit exceeded{}", detail_suffix(.detail))]
    Limit {
        /// Which limit.
        limit: Limit,
        /// The configured bound or measured value, when known (e.g. "250 ms").
        detail: String,
    },
    /// A wasm trap (unreachable, out-of-bounds access, a guest panic).
    #[error("trap: {0}")]
    Trap(String),
    /// The script raised an error (a `throw`, a type error, an unknown function).
    #[error("script error at line {line}, column {column}: {message}")]
    Script {
        /// Rhai's (or the guest's) message.
        message: String,
        /// 1-based line, 0 when unknown.
        line: usize,
        /// 1-based column, 0 when unknown.
        column: usize,
    },
    /// The hook returned something the point's contract does not allow.
    #[error("malformed output: {0}")]
    MalformedOutput(String),
    /// The hook does not implement the point it was declared for.
    #[error("the hook does not define {0}")]
    MissingPoint(Point),
}

fn detail_suffix(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(" ({detail})")
    }
}

impl Cause {
    /// The limit behind this cause, if it is one.
    pub fn limit(&self) -> Option<Limit> {
        match self {
            Cause::Limit { limit, .. } => Some(*limit),
            _ => None,
        }
    }
}

/// A hook could not be loaded or failed while running (`on_error: fail`, or a validate hook).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The policy file could not be read.
    #[error("reading policy file {}", path.display())]
    ReadPolicy {
        /// The policy file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The policy file (or a hook declaration) is malformed.
    #[error("{}: {message}", origin.display())]
    ParseDecl {
        /// The policy or task file.
        origin: PathBuf,
        /// Key path and what was expected.
        message: String,
    },
    /// The hook file could not be read.
    #[error("{hook}: reading the hook file")]
    ReadHook {
        /// Which hook.
        hook: Box<HookRef>,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The hook did not compile (Rhai parse error, forbidden construct, invalid component).
    #[error("{hook}: compiling: {message}{}", position_suffix(*line, *column))]
    Compile {
        /// Which hook.
        hook: Box<HookRef>,
        /// What is wrong.
        message: String,
        /// 1-based line, 0 when unknown.
        line: usize,
        /// 1-based column, 0 when unknown.
        column: usize,
        /// The limit hit while compiling, if that is the reason.
        limit: Option<Limit>,
    },
    /// The hook failed while running at `point`.
    #[error("{hook} failed at {point}: {cause}")]
    Call {
        /// Which hook.
        hook: Box<HookRef>,
        /// The hook point being run.
        point: Point,
        /// Why it failed.
        #[source]
        cause: Cause,
    },
    /// This build cannot run the hook's kind.
    #[error("{hook}: {message}")]
    Unsupported {
        /// Which hook.
        hook: Box<HookRef>,
        /// What is missing.
        message: String,
    },
    /// The hook thread running the pipeline failed outside any one hook (a podrun bug, or
    /// no thread could be started).
    #[error("hook pipeline: {message}")]
    HookThread {
        /// What happened.
        message: String,
    },
}

fn position_suffix(line: usize, column: usize) -> String {
    if line == 0 {
        String::new()
    } else {
        format!(" at line {line}, column {column}")
    }
}

impl Error {
    /// The hook this error is about, if any.
    pub fn hook(&self) -> Option<&HookRef> {
        match self {
            Error::ReadHook { hook, .. }
            | Error::Compile { hook, .. }
            | Error::Call { hook, .. }
            | Error::Unsupported { hook, .. } => Some(hook),
            Error::ReadPolicy { .. } | Error::ParseDecl { .. } | Error::HookThread { .. } => None,
        }
    }

    /// The run-time cause, for [`Error::Call`].
    pub fn cause(&self) -> Option<&Cause> {
        match self {
            Error::Call { cause, .. } => Some(cause),
            _ => None,
        }
    }

    /// True when the error is about the input (policy file, hook file, compile), so the
    /// command should exit with `exit::BAD_INPUT` rather than `exit::HOOK_FAILED`.
    pub fn is_bad_input(&self) -> bool {
        !matches!(self, Error::Call { .. } | Error::HookThread { .. })
    }

    /// The process exit code this error maps to (`exit::BAD_INPUT` or `exit::HOOK_FAILED`).
    pub fn exit_code(&self) -> u8 {
        if self.is_bad_input() {
            crate::exit::BAD_INPUT
        } else {
            crate::exit::HOOK_FAILED
        }
    }
}
