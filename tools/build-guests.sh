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
for name in label_injector log_redactor xcom_transformer skip_decider deny_privileged level_filter; do
  wasm-tools component new "$core_dir/$name.wasm" -o "$out/$name.wasm"
  wasm-tools validate "$out/$name.wasm"
  echo "built $out/$name.wasm ($(wc -c <"$out/$name.wasm") bytes)"
done

# Python guests: componentize-py bundles CPython and imports WASI (podrun links WASI with
# nothing granted). The example implements every point; the probe is a hostile test guest.
componentize-py -d "$root/wit" -w podrun:hooks/hooks@0.1.0 componentize \
  -p "$root/guest-sdk/examples/python" hooks -o "$out/python_hooks.wasm"
echo "built $out/python_hooks.wasm ($(wc -c <"$out/python_hooks.wasm") bytes)"
componentize-py -d "$root/wit" -w podrun:hooks/xcom-processor@0.1.0 componentize \
  -p "$root/tests/hooks_wasm/python_probe" probe -o "$out/python_probe.wasm"
echo "built $out/python_probe.wasm ($(wc -c <"$out/python_probe.wasm") bytes)"
