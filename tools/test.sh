#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what it needs, then runs
# formatting, lints and every test. The README's test command and CI's entry point.
set -euo pipefail
cd "$(dirname "$0")/.."

# Make rustup's cargo first on PATH (CI's environment may not source ~/.cargo/env).
if [ -f "$HOME/.cargo/env" ]; then . "$HOME/.cargo/env"; fi

echo "== toolchain components"
rustup component add rustfmt clippy >/dev/null 2>&1 || true

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --all-targets -- -D warnings

echo "== cargo test"
cargo test --all-targets
