//! `wasm::Error`: every way loading or calling a WASM hook can fail, one variant per step.

use std::path::PathBuf;
use std::time::Duration;

/// A WASM hook failed to load or to run. Messages name the cause; the pipeline adds the hook
/// file and point.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The engine could not be configured (e.g. the pooling allocator could not reserve memory).
    #[error("cannot start the WASM engine: {message}")]
    Engine {
        /// What wasmtime reported.
        message: String,
    },
    /// The hook file could not be read.
    #[error("cannot read WASM hook {path}")]
    Read {
        /// The hook file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a valid WebAssembly component (or is too large).
    #[error("cannot load WASM hook {path}: {message}")]
    Load {
        /// The hook file.
        path: PathBuf,
        /// Why: validation or compilation error.
        message: String,
    },
    /// The component imports something podrun does not offer; it is rejected before running.
    #[error(
        "WASM hook {path} imports `{name}`, which podrun does not offer (a hook may import only \
         podrun:hooks/host@0.1.0 and, for language runtimes, WASI 0.2 with no capabilities)"
    )]
    ForbiddenImport {
        /// The hook file.
        path: PathBuf,
        /// The import's name.
        name: String,
    },
    /// The component exports a podrun hook interface of another WIT version.
    #[error(
        "WASM hook {path} exports `{found}`, but this podrun supports podrun:hooks@{supported}; \
         rebuild it against wit/ of this podrun"
    )]
    Version {
        /// The hook file.
        path: PathBuf,
        /// The export found.
        found: String,
        /// The WIT package version this podrun supports.
        supported: &'static str,
    },
    /// The component exports no hook point, or not the one asked for.
    #[error("WASM hook {path} does not implement {point} (it implements: {implemented})")]
    NotImplemented {
        /// The hook file.
        path: PathBuf,
        /// The point asked for.
        point: &'static str,
        /// The points it implements, comma-separated, or "none".
        implemented: String,
    },
    /// Creating the instance failed (pool exhausted, start function trapped, limit hit).
    #[error("cannot instantiate the WASM hook: {message}")]
    Instantiate {
        /// What wasmtime reported.
        message: String,
    },
    /// The guest trapped (unreachable, panic, stack overflow, out-of-bounds access, ...).
    #[error("the WASM hook trapped: {message}")]
    Trap {
        /// The trap and, when known, the guest backtrace.
        message: String,
    },
    /// The call ran past its wall-clock deadline and was interrupted.
    #[error("the WASM hook exceeded its deadline of {} ms", limit.as_millis())]
    Deadline {
        /// The deadline.
        limit: Duration,
    },
    /// The call used up its fuel.
    #[error("the WASM hook ran out of fuel ({limit} units)")]
    Fuel {
        /// The fuel given to the call.
        limit: u64,
    },
    /// The guest tried to grow its memory (or tables) past the limit.
    #[error("the WASM hook exceeded its memory limit of {limit} bytes (it asked for {requested})")]
    MemoryLimit {
        /// The limit in bytes (or table elements, for tables).
        limit: usize,
        /// The size it asked for.
        requested: usize,
    },
    /// The input given to the hook is larger than allowed.
    #[error("input of {size} bytes exceeds the WASM hook input limit of {limit} bytes")]
    InputTooLarge {
        /// Input size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The hook returned more bytes than allowed.
    #[error("output of {size} bytes exceeds the WASM hook output limit of {limit} bytes")]
    OutputTooLarge {
        /// Output size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The hook returned something that is not what the contract says.
    #[error("the WASM hook returned malformed output: {message}")]
    MalformedOutput {
        /// What is wrong with it.
        message: String,
    },
    /// The hook returned `err(message)`: its own error.
    #[error("the WASM hook returned an error: {0}")]
    GuestError(String),
}

/// Result of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;
