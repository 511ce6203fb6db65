//! `podrun run` / `podrun attach` end to end: the real binary against a fresh simulator per
//! test, over HTTPS, with the simulator's fault injection for the failure paths.
//!
//! Set `PODRUN_TEST_VERBOSE=1` to see each run's output.

#[path = "run_e2e/util.rs"]
mod util;

#[path = "run_e2e/connection.rs"]
mod connection;

#[path = "run_e2e/lifecycle.rs"]
mod lifecycle;

#[path = "run_e2e/xcom.rs"]
mod xcom;

#[path = "run_e2e/faults.rs"]
mod faults;

#[path = "run_e2e/attach.rs"]
mod attach;
