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
say() { echo "bootstrap: $*" >&2; }
say "first-time set-up of $VENV (reruns only when pyproject.toml changes); pip's own output is hidden"
say "[1/4] creating the virtual environment $VENV with $("$PYTHON" --version 2>&1)"
"$PYTHON" -m venv "$VENV"
say "[2/4] upgrading pip"
"$VENV/bin/python" -m pip install -q --upgrade pip
# torch and torchvision first, pinned to a matching pair (a bare `torch` requirement
# would let pip pick a torchvision that does not match it).
say "[3/4] installing torch 2.14.1 and torchvision 0.29.1: the long step, a download of hundreds"
say "      of MB (a few GB on Linux, with the CUDA libraries); minutes on a slow line"
"$VENV/bin/python" -m pip install -q "torch==2.14.1" "torchvision==0.29.1"
say "[4/4] installing rnetc itself (editable) and its dev extras from pyproject.toml: lark,"
say "      safetensors, scikit-learn, pillow, matplotlib, onnx, onnxruntime, graphviz, pytest, ruff, ..."
"$VENV/bin/python" -m pip install -q -e ".[dev]"
touch "$STAMP"
say "done: $VENV is ready"
