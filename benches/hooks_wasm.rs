//! Placeholder until the hooks-wasm branch commits its benchmarks.
fn main() {}
