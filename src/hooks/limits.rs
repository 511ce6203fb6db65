//! Every limit a hook runs under, in one place, with its default and what it does not cover.
//!
//! Defaults follow `sandbox.md` 7.2. A [`Limits`] value is given to each engine when it is
//! built (one engine per tenant), so one tenant's limits never change another's.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Point;

/// The bounds on one hook call. `Default` gives the documented defaults.
///
/// Limits are per call (or per log batch), never cumulative over a task. None of them
/// bounds podrun's own work around a call (JSON conversion, diffing), which is linear in
/// the input size and so bounded by [`Limits::max_input_bytes`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Wall-clock deadline of one admission-style call (`mutate_pod`, `validate_pod`,
    /// `process_xcom`, `decide`). Default 250 ms. Rhai checks it from `on_progress` (every
    /// few operations), wasm by epoch interruption. It does not cover time spent before the
    /// call (compiling, which happens once at load). Fires `Cause::Limit(Limit::Deadline)`.
    #[serde(with = "millis")]
    pub call_deadline: Duration,
    /// Wall-clock deadline of one `filter_log` batch. Default 50 ms. Same mechanism and
    /// error as [`Limits::call_deadline`].
    #[serde(with = "millis")]
    pub log_batch_deadline: Duration,
    /// Largest input of one call in bytes, measured as the JSON text (the Pod, the XCom
    /// value, the outcome). Default 1 MiB (etcd's request cap is about 1.5 MiB). Checked
    /// by podrun before the hook runs; fires `Cause::Limit(Limit::InputSize)`.
    pub max_input_bytes: usize,
    /// Largest output of one call in bytes, measured as the JSON text of the result.
    /// Default 1 MiB. Checked after the hook returns; fires `Cause::Limit(Limit::OutputSize)`.
    pub max_output_bytes: usize,
    /// Deepest nesting of a hook's output (arrays and maps). Default 128, the same as
    /// serde_json's parser, so whatever podrun accepts also round-trips as JSON text.
    /// Checked on the hook thread before the value reaches podrun; fires
    /// `Cause::Limit(Limit::Depth)`. Rhai's own size limits count elements, not depth.
    pub max_output_depth: usize,
    /// Largest log line handed to a filter, in bytes. Default 64 KiB. A longer line is cut
    /// at a character boundary before filtering (so a redactor still sees it), and the cut
    /// is counted in the hook record. Does not fire an error.
    pub max_log_line_bytes: usize,
    /// Most lines in one `filter_log` call. Default 100: the pipeline splits larger
    /// batches, so a batch's operation budget ([`Limits::rhai_operations_per_line`] × lines)
    /// stays within [`Limits::rhai_max_operations`]. Does not fire an error.
    pub max_log_batch_lines: usize,
    /// Most bytes of `log`/`print`/`debug` output one call may write to podrun's log.
    /// Default 64 KiB; further messages are dropped and one "log output truncated" line is
    /// written instead. Does not fire an error.
    pub max_log_bytes_per_call: usize,
    /// Rhai: operations per admission-style call (one operation is about one AST node).
    /// Default 1,000,000 (≈ 5 ms of simple work). Counted by Rhai itself; fires
    /// `Cause::Limit(Limit::Operations)`. Does not bound time spent inside one native
    /// helper (a regex over 1 MiB): the deadline covers that only after it returns.
    pub rhai_max_operations: u64,
    /// Rhai: operations per log line of a `filter_log` batch; a batch may use this times
    /// its line count. Default 10,000. Fires `Cause::Limit(Limit::Operations)`.
    pub rhai_operations_per_line: u64,
    /// Rhai: function call nesting. Default 32 (Rhai's release default is 64). Fires
    /// `Cause::Limit(Limit::CallDepth)`. This bounds recursion, not loops.
    pub rhai_max_call_levels: usize,
    /// Rhai: expression nesting at the top level of a script. Default 64. Checked when the
    /// script is compiled; fires `Cause::Limit(Limit::ExpressionDepth)` from load/check.
    pub rhai_max_expr_depth: usize,
    /// Rhai: expression nesting inside functions. Default 32. As above.
    pub rhai_max_fn_expr_depth: usize,
    /// Rhai: bytes in one string, and in all strings nested inside one array or map.
    /// Default 1 MiB. Fires `Cause::Limit(Limit::StringSize)`. Rhai notes one string
    /// operation may briefly build up to twice this before the check.
    pub rhai_max_string_bytes: usize,
    /// Rhai: elements in one array, counting nested arrays' elements. Default 10,000.
    /// Fires `Cause::Limit(Limit::ArraySize)`.
    pub rhai_max_array_len: usize,
    /// Rhai: properties in one object map, counting nested maps. Default 10,000. Fires
    /// `Cause::Limit(Limit::MapSize)`. Rhai does not check a map grown by assigning new
    /// keys (`m[k] = v`); such growth is bounded by the operation limit and the deadline,
    /// and podrun checks the returned value's size as JSON ([`Limits::max_output_bytes`]).
    pub rhai_max_map_len: usize,
    /// Rhai: variables alive at once in one call. Default 1,000. Fires
    /// `Cause::Limit(Limit::Variables)`.
    pub rhai_max_variables: usize,
    /// Rhai: functions defined in one script. Default 256. Checked when compiling; fires
    /// `Cause::Limit(Limit::Functions)` from load/check.
    pub rhai_max_functions: usize,
    /// Rhai: compiled regex patterns cached per engine (per tenant). Default 64; the
    /// cache is cleared when full. Each pattern is compiled with a 1 MiB size limit; a
    /// larger pattern is a script error. Matching is linear in the text (`regex` crate).
    pub rhai_regex_cache: usize,
    /// Wasm: linear memory of one instance. Default 64 MiB. Enforced by the wasm engine's
    /// resource limiter (`src/hooks/wasm/`); fires `Cause::Limit(Limit::Memory)`.
    pub wasm_max_memory_bytes: usize,
    /// Wasm: linear memory of a log-filter instance. Default 16 MiB. As above.
    pub wasm_log_max_memory_bytes: usize,
    /// Wasm: fuel per call, used only when the wasm engine meters fuel (off by default:
    /// epochs bound time). Default none. Fires `Cause::Limit(Limit::Fuel)`.
    pub wasm_fuel: Option<u64>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            call_deadline: Duration::from_millis(250),
            log_batch_deadline: Duration::from_millis(50),
            max_input_bytes: 1 << 20,
            max_output_bytes: 1 << 20,
            max_output_depth: 128,
            max_log_line_bytes: 64 << 10,
            max_log_batch_lines: 100,
            max_log_bytes_per_call: 64 << 10,
            rhai_max_operations: 1_000_000,
            rhai_operations_per_line: 10_000,
            rhai_max_call_levels: 32,
            rhai_max_expr_depth: 64,
            rhai_max_fn_expr_depth: 32,
            rhai_max_string_bytes: 1 << 20,
            rhai_max_array_len: 10_000,
            rhai_max_map_len: 10_000,
            rhai_max_variables: 1_000,
            rhai_max_functions: 256,
            rhai_regex_cache: 64,
            wasm_max_memory_bytes: 64 << 20,
            wasm_log_max_memory_bytes: 16 << 20,
            wasm_fuel: None,
        }
    }
}

impl Limits {
    /// The wall-clock deadline for one call at `point` (a batch for `filter_log`).
    pub fn deadline(&self, point: Point) -> Duration {
        match point {
            Point::FilterLog => self.log_batch_deadline,
            _ => self.call_deadline,
        }
    }

    /// The Rhai operation budget for one call at `point` with `lines` log lines.
    pub fn rhai_operations(&self, point: Point, lines: usize) -> u64 {
        match point {
            Point::FilterLog => self
                .rhai_operations_per_line
                .saturating_mul(lines.max(1) as u64)
                .min(self.rhai_max_operations),
            _ => self.rhai_max_operations,
        }
    }
}

/// Durations in the policy file are whole milliseconds.
mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}
