#!/usr/bin/env bash
# The whole test suite on a fresh Debian machine: installs what it needs (Debian packages,
# Python packages, the wasm32 guest toolchain), builds the WASM hook examples, then runs
# formatting, lints and every test. This is the README's test command and CI's entry point.
set -euo pipefail
cd "$(dirname "$0")/.."

# rustup's cargo first on PATH (CI's environment may not source ~/.cargo/env); Debian's
# cargo-web is only used by tools/build-guests.sh, by absolute path.
if [ -f "$HOME/.cargo/env" ]; then . "$HOME/.cargo/env"; fi

step() { printf '\n== %s\n' "$*"; }

step "install: simulator runtime (bubblewrap, nsenter)"
bash tools/setup-sim.sh
step "install: third-party Kubernetes clients (kubectl check, python kubernetes)"
bash tools/setup-sim-clients.sh
if [ -f tools/setup-hooks.sh ]; then
    step "install: wasm guest toolchain (rustc-web, lld, wasm-tools, componentize-py)"
    bash tools/setup-hooks.sh
    step "build: WASM hook examples -> target/guests/"
    bash tools/build-guests.sh
fi

step "toolchain components"
rustup component add rustfmt clippy >/dev/null 2>&1 || true

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings

step "cargo test"
cargo test --all-targets
