//! `hooks:` declarations in a task file: which hook runs at which point, from which
//! source, with which configuration. Parsed and validated here; run by `crate::hooks`.

use std::path::PathBuf;

use serde_json::Value;

/// One `hooks:` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct HookDecl {
    /// `name:` (optional); defaults to the file name or `inline-<index>`.
    pub name: Option<String>,
    /// `point:` where the hook runs.
    pub point: HookPoint,
    /// Exactly one of `rhai:`, `script:`, `wasm:`.
    pub source: HookSource,
    /// `config:` any JSON value handed to the hook (default `{}`).
    pub config: Value,
    /// `on_error:` what a hook failure does (default `fail`).
    pub on_error: OnError,
}

/// Where in a run a hook is called.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HookPoint {
    /// `mutate_pod`: may change the pod before it is created.
    MutatePod,
    /// `validate_pod`: may deny the pod.
    ValidatePod,
    /// `filter_log`: sees (and may drop or change) log lines.
    FilterLog,
    /// `process_xcom`: may change the XCom value.
    ProcessXcom,
    /// `decide`: may decide the outcome.
    Decide,
}

impl HookPoint {
    /// The accepted spellings.
    pub const NAMES: &'static [&'static str] = &[
        "mutate_pod",
        "validate_pod",
        "filter_log",
        "process_xcom",
        "decide",
    ];

    /// Parses a `point:` value.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "mutate_pod" => HookPoint::MutatePod,
            "validate_pod" => HookPoint::ValidatePod,
            "filter_log" => HookPoint::FilterLog,
            "process_xcom" => HookPoint::ProcessXcom,
            "decide" => HookPoint::Decide,
            _ => return None,
        })
    }

    /// The spelling used in task files.
    pub fn as_str(self) -> &'static str {
        match self {
            HookPoint::MutatePod => "mutate_pod",
            HookPoint::ValidatePod => "validate_pod",
            HookPoint::FilterLog => "filter_log",
            HookPoint::ProcessXcom => "process_xcom",
            HookPoint::Decide => "decide",
        }
    }
}

/// Where a hook's code comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HookSource {
    /// `rhai: FILE`, resolved relative to the task file (existence checked).
    RhaiFile(PathBuf),
    /// `script: |` inline Rhai source.
    RhaiInline(String),
    /// `wasm: FILE`, resolved relative to the task file (existence checked).
    Wasm(PathBuf),
}

/// What happens when a hook fails (trap, limit, error, malformed output).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnError {
    /// `fail` (default): the run fails with exit code 5.
    Fail,
    /// `ignore`: log it and continue as if the hook were absent.
    Ignore,
}
