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
$sudo apt-get update -qq >/dev/null
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
