//! Mapping Rhai's errors to [`Cause`]s (run time) and compile failures (load time), so
//! every message names the limit hit or the script position.

use rhai::{EvalAltResult, ParseError, ParseErrorType, Position};

use super::helpers::DENY_KEY;
use crate::hooks::{Cause, Limit, Limits, Point};

/// What a failed Rhai call means.
pub(crate) enum Failure {
    /// The script called `deny(reason)`.
    Deny(String),
    /// Anything else.
    Cause(Cause),
}

/// Line and column of a position (0 when unknown).
fn line_col(pos: Position) -> (usize, usize) {
    (pos.line().unwrap_or(0), pos.position().unwrap_or(0))
}

/// The innermost error and the most precise position: Rhai wraps errors raised inside a
/// function in `ErrorInFunctionCall`, whose own position is the call site.
fn innermost(err: &EvalAltResult) -> (&EvalAltResult, Position) {
    let mut err = err;
    let mut pos = err.position();
    while let EvalAltResult::ErrorInFunctionCall(_, _, inner, call_pos) = err {
        if !call_pos.is_none() {
            pos = *call_pos;
        }
        err = inner;
        if !err.position().is_none() {
            pos = err.position();
        }
    }
    (err, pos)
}

/// Map a Rhai evaluation error to a failure, naming the limit and its configured bound.
pub(crate) fn eval_failure(err: &EvalAltResult, limits: &Limits, point: Point) -> Failure {
    let (inner, pos) = innermost(err);
    let limit = |limit: Limit, detail: String| Failure::Cause(Cause::Limit { limit, detail });
    match inner {
        EvalAltResult::ErrorRuntime(value, _) => {
            if let Some(map) = value.read_lock::<rhai::Map>() {
                if let Some(reason) = map.get(DENY_KEY) {
                    return Failure::Deny(reason.to_string());
                }
            }
            let (line, column) = line_col(pos);
            Failure::Cause(Cause::Script {
                message: format!("thrown: {value}"),
                line,
                column,
            })
        }
        EvalAltResult::ErrorTerminated(token, _) => {
            let token = token.to_string();
            if token == Limit::Operations.as_str() {
                limit(
                    Limit::Operations,
                    format!("budget {}", operations_budget(limits, point)),
                )
            } else {
                limit(
                    Limit::Deadline,
                    format!("{} ms", limits.deadline(point).as_millis()),
                )
            }
        }
        EvalAltResult::ErrorTooManyOperations(_) => limit(
            Limit::Operations,
            format!("budget {}", operations_budget(limits, point)),
        ),
        EvalAltResult::ErrorStackOverflow(_) => limit(
            Limit::CallDepth,
            format!("{} nested calls", limits.rhai_max_call_levels),
        ),
        EvalAltResult::ErrorTooManyVariables(_) => limit(
            Limit::Variables,
            format!("{} variables", limits.rhai_max_variables),
        ),
        EvalAltResult::ErrorTooManyModules(_) => {
            limit(Limit::Modules, "modules are not allowed".into())
        }
        EvalAltResult::ErrorDataTooLarge(what, _) => {
            if what.contains("string") {
                limit(
                    Limit::StringSize,
                    format!("{} bytes", limits.rhai_max_string_bytes),
                )
            } else if what.contains("array") {
                limit(
                    Limit::ArraySize,
                    format!("{} elements", limits.rhai_max_array_len),
                )
            } else {
                limit(
                    Limit::MapSize,
                    format!("{} properties", limits.rhai_max_map_len),
                )
            }
        }
        EvalAltResult::ErrorFunctionNotFound(signature, _) => {
            let (line, column) = line_col(pos);
            Failure::Cause(Cause::Script {
                message: format!(
                    "function not found: {signature} (hooks can call only Rhai's built-in \
                     functions and podrun's helpers: regex_match, regex_replace, parse_json, \
                     to_json, log, deny)"
                ),
                line,
                column,
            })
        }
        other => {
            let (line, column) = line_col(pos);
            Failure::Cause(Cause::Script {
                message: strip_position(&other.to_string()),
                line,
                column,
            })
        }
    }
}

fn operations_budget(limits: &Limits, point: Point) -> String {
    match point {
        Point::FilterLog => format!(
            "{} per line, at most {}",
            limits.rhai_operations_per_line, limits.rhai_max_operations
        ),
        _ => limits.rhai_max_operations.to_string(),
    }
}

/// Rhai appends " (line L, position C)" to messages; podrun reports the position itself.
fn strip_position(message: &str) -> String {
    match message.rfind(" (line ") {
        Some(i) if message.ends_with(')') => message[..i].to_owned(),
        _ => message.to_owned(),
    }
}

/// A compile failure: message, line, column and the limit behind it, if any.
pub(crate) struct CompileFailure {
    pub message: String,
    pub line: usize,
    pub column: usize,
    pub limit: Option<Limit>,
}

/// Map a parse error, explaining the constructs podrun forbids.
pub(crate) fn compile_failure(err: &ParseError, limits: &Limits) -> CompileFailure {
    let ParseError(kind, pos) = err;
    let (line, column) = line_col(*pos);
    let (message, limit) = match kind.as_ref() {
        ParseErrorType::ExprTooDeep => (
            format!(
                "expression nesting deeper than {} (top level) / {} (in functions)",
                limits.rhai_max_expr_depth, limits.rhai_max_fn_expr_depth
            ),
            Some(Limit::ExpressionDepth),
        ),
        ParseErrorType::TooManyFunctions => (
            format!("more than {} functions", limits.rhai_max_functions),
            Some(Limit::Functions),
        ),
        ParseErrorType::Reserved(word) if word == "import" || word == "export" => (
            format!("`{word}` is not allowed: hooks cannot load or export modules"),
            Some(Limit::Modules),
        ),
        ParseErrorType::Reserved(word) if word == "eval" => {
            ("`eval` is not allowed in hooks".to_owned(), None)
        }
        other => (other.to_string(), None),
    };
    CompileFailure {
        message,
        line,
        column,
        limit,
    }
}
