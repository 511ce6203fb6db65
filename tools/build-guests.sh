#!/usr/bin/env bash
#! Builds every WASM hook example into a component under target/guests/: the Rust examples of
#! guest-sdk/ (with Debian's wasm32-capable toolchain, see tools/setup-hooks.sh) and the Python
#! example (componentize-py). Nothing built is committed. Usage: tools/build-guests.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$root/target/guests"
mkdir -p "$out"

# Rust guests: core wasm modules via build-std (the rustup toolchain has no wasm32 std here),
# then `wasm-tools component new` reads wit-bindgen's embedded component-type sections.
(
  cd "$root/guest-sdk"
  RUSTC_BOOTSTRAP=1 CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=wasm-ld \
  CARGO_TARGET_DIR="$root/target/guest-build" \
  RUSTC=/usr/bin/rustc \
    /usr/bin/cargo build --release --target wasm32-unknown-unknown \
      -Zbuild-std=std,panic_abort --examples
)
core_dir="$root/target/guest-build/wasm32-unknown-unknown/release/examples"
for name in label_injector log_redactor xcom_transformer skip_decider deny_privileged; do
  wasm-tools component new "$core_dir/$name.wasm" -o "$out/$name.wasm"
  wasm-tools validate "$out/$name.wasm"
  echo "built $out/$name.wasm ($(wc -c <"$out/$name.wasm") bytes)"
done

# Python guest: componentize-py bundles CPython and links WASI (podrun gives it none of it).
py="$root/guest-sdk/examples/python"
if [ -d "$py" ]; then
  componentize-py -d "$root/wit" -w podrun:hooks/hooks@0.1.0 componentize -p "$py" \
    policy -o "$out/python_policy.wasm"
  echo "built $out/python_policy.wasm ($(wc -c <"$out/python_policy.wasm") bytes)"
fi
