//! Hook declarations: one entry of a task file's or policy file's `hooks:` list
//! ([`HookSpec`]), and the platform [`Policy`] file that holds platform hooks and limits.
//!
//! Entry shape (both files): `{point, rhai: FILE | script: INLINE | wasm: FILE, config,
//! on_error, name}`. Relative files are resolved against the declaring file's directory.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::{Error, Result};
use super::{Limits, Point};

/// What to do when a hook fails (a limit, trap, script error or malformed output).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// Fail the task with exit code 5 (the default).
    #[default]
    Fail,
    /// Warn, skip this hook, record it. Ignored for `validate_pod` (always fails closed)
    /// and `filter_log` (always keeps the lines and counts the failure).
    Ignore,
}

/// Where a hook's code comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HookSource {
    /// A Rhai script file.
    Rhai(PathBuf),
    /// An inline Rhai script.
    Script(String),
    /// A wasm component file.
    Wasm(PathBuf),
}

impl HookSource {
    /// The file, when the code comes from one.
    pub fn file(&self) -> Option<&Path> {
        match self {
            HookSource::Rhai(p) | HookSource::Wasm(p) => Some(p),
            HookSource::Script(_) => None,
        }
    }
}

/// One hook declaration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawSpec")]
pub struct HookSpec {
    /// The point the hook runs at.
    pub point: Point,
    /// Its code.
    pub source: HookSource,
    /// Passed to the hook as `ctx.config`.
    pub config: Value,
    /// What a failure does.
    pub on_error: OnError,
    /// The name used in messages and the run report (defaults to the file name).
    pub name: Option<String>,
}

impl HookSpec {
    /// Resolve a relative hook file against `dir` (the declaring file's directory).
    pub fn resolve_against(&mut self, dir: &Path) {
        match &mut self.source {
            HookSource::Rhai(p) | HookSource::Wasm(p) if p.is_relative() => *p = dir.join(&*p),
            _ => {}
        }
    }

    /// The name shown for this hook: `name`, else the file name, else `inline#index`.
    pub fn display_name(&self, index: usize) -> String {
        if let Some(name) = &self.name {
            return name.clone();
        }
        match self.source.file().and_then(Path::file_name) {
            Some(f) => f.to_string_lossy().into_owned(),
            None => format!("inline#{index}"),
        }
    }
}

impl From<&crate::spec::HookDecl> for HookSpec {
    /// A task file's `hooks:` entry, as validated by `spec` (paths already resolved
    /// against the task file).
    fn from(decl: &crate::spec::HookDecl) -> Self {
        use crate::spec::{HookPoint, HookSource as Src, OnError as SpecOnError};
        HookSpec {
            point: match decl.point {
                HookPoint::MutatePod => Point::MutatePod,
                HookPoint::ValidatePod => Point::ValidatePod,
                HookPoint::FilterLog => Point::FilterLog,
                HookPoint::ProcessXcom => Point::ProcessXcom,
                HookPoint::Decide => Point::Decide,
            },
            source: match &decl.source {
                Src::RhaiFile(p) => HookSource::Rhai(p.clone()),
                Src::RhaiInline(s) => HookSource::Script(s.clone()),
                Src::Wasm(p) => HookSource::Wasm(p.clone()),
            },
            config: decl.config.clone(),
            on_error: match decl.on_error {
                SpecOnError::Fail => OnError::Fail,
                SpecOnError::Ignore => OnError::Ignore,
            },
            name: decl.name.clone(),
        }
    }
}

/// The entry as written, before checking that exactly one source is given.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    point: Point,
    rhai: Option<PathBuf>,
    script: Option<String>,
    wasm: Option<PathBuf>,
    #[serde(default)]
    config: Value,
    #[serde(default)]
    on_error: OnError,
    name: Option<String>,
}

impl TryFrom<RawSpec> for HookSpec {
    type Error = String;

    fn try_from(raw: RawSpec) -> std::result::Result<Self, String> {
        let source = match (raw.rhai, raw.script, raw.wasm) {
            (Some(p), None, None) => HookSource::Rhai(p),
            (None, Some(s), None) => HookSource::Script(s),
            (None, None, Some(p)) => HookSource::Wasm(p),
            _ => return Err("a hook needs exactly one of `rhai`, `script` or `wasm`".into()),
        };
        Ok(HookSpec {
            point: raw.point,
            source,
            config: raw.config,
            on_error: raw.on_error,
            name: raw.name,
        })
    }
}

/// The platform policy file (`--policy FILE` or `PODRUN_POLICY`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Platform hooks, run in this order (after tenant hooks, see [`super::Pipeline`]).
    #[serde(default)]
    pub hooks: Vec<HookSpec>,
    /// Limits for every hook of tasks run under this policy (unset fields keep defaults).
    #[serde(default)]
    pub limits: Limits,
    /// The file it was read from.
    #[serde(skip)]
    pub path: Option<PathBuf>,
}

impl Policy {
    /// Read and parse a policy file (YAML or JSON), resolving hook files against its
    /// directory. Errors name the file and the key path.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::ReadPolicy {
            path: path.to_owned(),
            source,
        })?;
        let mut policy = Self::parse(&text, path)?;
        let dir = path.parent().unwrap_or(Path::new("."));
        for hook in &mut policy.hooks {
            hook.resolve_against(dir);
        }
        policy.path = Some(path.to_owned());
        Ok(policy)
    }

    /// Parse policy text; `origin` is only used in messages.
    pub fn parse(text: &str, origin: &Path) -> Result<Self> {
        let de = serde_yaml_ng::Deserializer::from_str(text);
        serde_path_to_error::deserialize(de).map_err(|err| Error::ParseDecl {
            origin: origin.to_owned(),
            message: format!("{}: {}", err.path(), err.inner()),
        })
    }

    /// The policy named by `--policy` or, failing that, `PODRUN_POLICY`; none is empty.
    pub fn from_arg_or_env(arg: Option<&Path>) -> Result<Self> {
        match arg {
            Some(p) => Self::load(p),
            None => match std::env::var_os("PODRUN_POLICY") {
                Some(p) if !p.is_empty() => Self::load(Path::new(&p)),
                _ => Ok(Policy::default()),
            },
        }
    }
}

/// Parse a `hooks:` list written in a task file (for callers without foundation's types).
pub fn parse_hook_list(value: Value, origin: &Path) -> Result<Vec<HookSpec>> {
    serde_path_to_error::deserialize(value).map_err(|err| Error::ParseDecl {
        origin: origin.to_owned(),
        message: format!(
            "hooks{}: {}",
            path_suffix(&err.path().to_string()),
            err.inner()
        ),
    })
}

fn path_suffix(path: &str) -> String {
    if path == "." {
        String::new()
    } else if path.starts_with('[') {
        path.to_owned()
    } else {
        format!(".{path}")
    }
}
