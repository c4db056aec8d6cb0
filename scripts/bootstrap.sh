#!/usr/bin/env bash
# Make .venv with everything rnetc's tests and training need. Idempotent: reruns only
# when pyproject.toml changed. Used by `make test`, `make train` and .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
STAMP="$VENV/.installed"
if [ -f "$STAMP" ] && [ "$STAMP" -nt pyproject.toml ]; then
  exit 0
fi
PYTHON=${PYTHON:-python3}
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
# torch and torchvision first, pinned to a matching pair (a bare `torch` requirement
# would let pip pick a torchvision that does not match it).
"$VENV/bin/python" -m pip install -q "torch==2.14.1" "torchvision==0.29.1"
"$VENV/bin/python" -m pip install -q -e ".[dev]"
touch "$STAMP"
