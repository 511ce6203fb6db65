#!/usr/bin/env bash
# Installs what the simulator's process runtime (src/sim/runtime) needs on Debian/Ubuntu:
# bubblewrap (`bwrap`, the namespace sandbox) and util-linux (`nsenter`, used by exec).
# Idempotent and quiet: does nothing when both are already present.
set -euo pipefail

missing=()
command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
command -v nsenter >/dev/null 2>&1 || missing+=(util-linux)
if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
# Quiet on success; on failure show apt's output so the cause is visible.
if ! { $sudo apt-get update -qq && \
       $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "setup-sim: failed to install ${missing[*]}" >&2
    exit 1
fi
