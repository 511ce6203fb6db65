//! Process exit codes: the one documented table, shared by `main.rs` and the run report.
//!
//! Keep this in sync with the "Exit codes" section of the README.

/// The task ran and succeeded (or a command such as `render` completed).
pub const SUCCESS: u8 = 0;
/// The task ran and failed: the pod returned a failure, timed out, or a hook decided `fail`.
pub const TASK_FAILED: u8 = 1;
/// Bad input: malformed or invalid task file, policy file, hook file or command line.
/// Nothing was sent to a cluster.
pub const BAD_INPUT: u8 = 2;
/// The task was skipped (`skip_on_exit_code` matched, or a `decide` hook said skip).
pub const SKIPPED: u8 = 3;
/// A `validate_pod` hook denied the pod; nothing was created.
pub const DENIED: u8 = 4;
/// A hook failed (trap, limit, script error, malformed output) with `on_error: fail`.
pub const HOOK_FAILED: u8 = 5;
/// Infrastructure failure: the API server was unreachable, refused us, or answered with
/// errors that retries could not overcome; or the simulator could not start.
pub const INFRASTRUCTURE: u8 = 6;
/// podrun was interrupted by SIGINT or SIGTERM; the pod was deleted and the task failed.
pub const INTERRUPTED: u8 = 130;
