#!/usr/bin/env bash
# Every GPU measurement and check of rnetc's training in one go (about six minutes on an H100/H200):
#   benchmarks/gpu.sh OUT_DIR [gpu_train.py options]
# writes into OUT_DIR (eight files at most, so that a lent GPU machine can send them all back):
#   nvidia-smi.txt       the card, driver and CUDA version
#   gpu_train.{md,json}  benchmarks/gpu_train.py: ResNet-50 images/s (rnetc vs torchvision, eager and
#                        compiled) and one cifar_resnet56 epoch through three input pipelines
#   torch_overhead.txt   benchmarks/torch_overhead.py on the GPU: step-time ratios vs the references
#   trainer.txt          `rnetc train` end to end on the GPU: digits with bf16 + channels_last, the
#                        same with --compile, and under torchrun (DDP over NCCL, one process)
#   metrics.csv          the first of those runs' metrics
#   gpu.log              everything printed
# Each part has its own time limit, so one that hangs does not take the others with it.
#
# The GPU machine has torch, torchvision, timm, onnx and onnxruntime but not all of rnetc's own
# dependencies; they are installed from a wheel folder carried along (no network there), made on a
# machine that has one, for the GPU machine's Python (3.12 here):
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#       --implementation cp --platform manylinux2014_x86_64 -d .whl \
#       lark pydantic pydantic_core annotated-types typing-inspection typing_extensions
# rnetc itself runs from this checkout (PYTHONPATH).
set -uo pipefail
OUT=${1:?usage: benchmarks/gpu.sh OUT_DIR [gpu_train.py options]}
shift
cd "$(dirname "$0")/.."
OUT=$(mkdir -p "$OUT" && cd "$OUT" && pwd)
PY=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}   # DEVICE=cpu: a smoke run of this script on a machine without a GPU
PARTS=${PARTS:-"gpu_train torch_overhead trainer"}   # which parts to run
TORCH_OVERHEAD_ARGS=${TORCH_OVERHEAD_ARGS:-}   # e.g. small sizes for a CPU smoke run
has() { [[ " $PARTS " == *" $1 "* ]]; }
export PYTHONUNBUFFERED=1
exec > >(tee -a "$OUT/gpu.log") 2>&1

for wheels in .whl wheels; do
  if [ -d "$wheels" ] && ! "$PY" -c "import lark, pydantic, networkx" 2>/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target /tmp/rnetc-site "$wheels"/*.whl && export PYTHONPATH=/tmp/rnetc-site
  fi
done
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
"$PY" -c "import lark, pydantic, networkx, torch, resnet_dsl; print('torch', torch.__version__)" || exit 1

part() {  # part NAME SECONDS COMMAND...: run one part under a time limit, report how it ended
  local name=$1 limit=$2; shift 2
  echo "== $name (limit ${limit}s)" >&2
  local start=$SECONDS
  timeout --kill-after=10 "$limit" "$@"
  local rc=$?
  echo "== $name: exit $rc after $((SECONDS - start))s" >&2
  return 0
}

(nvidia-smi || echo "no nvidia-smi") > "$OUT/nvidia-smi.txt" 2>&1
has gpu_train && part gpu_train 340 "$PY" benchmarks/gpu_train.py --out "$OUT" "$@"
# shellcheck disable=SC2086  # TORCH_OVERHEAD_ARGS is a list of options
has torch_overhead && part torch_overhead 60 "$PY" benchmarks/torch_overhead.py --device "$DEVICE" \
  $TORCH_OVERHEAD_ARGS > "$OUT/torch_overhead.txt"

has trainer || exit 0
RUNS=$(mktemp -d)
RNETC=("$PY" -m resnet_dsl)
{
  part "train digits bf16 channels_last" 60 "${RNETC[@]}" train specs/cifar_resnet20.rnet \
    --data digits --epochs 15 --device "$DEVICE" --amp --channels-last --output-dir "$RUNS/eager"
  cp "$RUNS/eager/metrics.csv" "$OUT/metrics.csv" 2>/dev/null
  part "train digits --compile" 100 "${RNETC[@]}" train specs/cifar_resnet20.rnet \
    --data digits --epochs 2 --device "$DEVICE" --amp --channels-last --compile --output-dir "$RUNS/compiled"
  part "torchrun 1 process, NCCL" 45 "$PY" -m torch.distributed.run --standalone --nproc_per_node=1 \
    -m resnet_dsl train specs/cifar_resnet20.rnet --data digits --epochs 2 --device "$DEVICE" --amp \
    --output-dir "$RUNS/ddp"
  ls -l "$RUNS"/*/
} > "$OUT/trainer.txt" 2>&1
cat "$OUT/trainer.txt"
