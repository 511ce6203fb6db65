#!/usr/bin/env bash
# Installs the third-party clients tests/sim_clients.rs drives against the simulator:
# the Python `kubernetes` client (kubectl v1.32 is expected to be preinstalled).
set -euo pipefail
if ! command -v kubectl >/dev/null 2>&1; then
    echo "kubectl not found: install kubectl v1.32 (tests/sim_clients.rs needs it)" >&2
    exit 1
fi
python3 -c 'import kubernetes' 2>/dev/null || python3 -m pip install --quiet 'kubernetes>=31,<33'
python3 -c 'import kubernetes; print("python kubernetes client", kubernetes.__version__)'
