#!/usr/bin/env bash
# Every GPU measurement of rnetc's training in one go (a few minutes on an H100):
#   benchmarks/gpu.sh OUT_DIR [gpu_train.py options]
# writes OUT_DIR/gpu_train.{json,md,log} and OUT_DIR/nvidia-smi.txt.
#
# The GPU machine has torch, torchvision, timm, onnx and onnxruntime but not rnetc's own
# dependencies; they are installed from a wheel folder carried along (no network there),
# prepared on a machine with the same Python version:
#   pip download -d wheels lark pydantic pydantic-core networkx annotated-types \
#       typing-inspection typing-extensions
# (add --python-version 3.X --platform manylinux2014_x86_64 --only-binary=:all: when the
# Python versions differ). rnetc itself runs from this checkout (PYTHONPATH).
set -euo pipefail
OUT=${1:?usage: benchmarks/gpu.sh OUT_DIR [gpu_train.py options]}
shift
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if ! "$PY" -c "import lark, pydantic, networkx" 2>/dev/null; then
  "$PY" -m pip install -q --no-index --find-links wheels/ lark pydantic networkx
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$OUT"
(nvidia-smi || echo "no nvidia-smi") > "$OUT/nvidia-smi.txt" 2>&1
"$PY" benchmarks/gpu_train.py --out "$OUT" "$@" 2>&1 | tee "$OUT/gpu_train.log"
