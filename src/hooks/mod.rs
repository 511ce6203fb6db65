//! Hook points and pipeline, with the Rhai and WASM engines and their limits.
pub mod wasm;
