#!/usr/bin/env bash
# The GPU check (make gpu-check; docs/performance.md): the full setting's speed on one GPU machine,
# offline, in at most 8 minutes on one H100. `--smoke` runs it on the CPU at tiny sizes.
#   benchmarks/gpu_check.sh [--smoke] [--out DIR] [--wheels DIR] [--budget SECONDS]
# PYTHON picks the interpreter (default: python3, the one with the preinstalled torch).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
PYTHON="${PYTHON:-python3}"
if ! command -v "$PYTHON" >/dev/null 2>&1; then
  echo "error: gpu_check: $PYTHON not found: set PYTHON to a Python 3.10+ interpreter that has torch" >&2
  exit 1
fi
exec "$PYTHON" benchmarks/gpu_check.py "$@"
