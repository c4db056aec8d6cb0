"""The zoo against timm: a training step of a model built from `specs/zoo/NAME.rnet` next
to `timm.create_model(NAME)` with the same weights (timm's, loaded strictly), the two
alternating step by step in one run so that drift of a shared machine hits both. Ratio =
median(rnetc) / median(timm); "pairs" = median of the step-by-step ratios.

    python benchmarks/timm_compare.py [--models seresnet50 resnet50d] [--steps 20]
        [--batch 4] [--size 128] [--threads 1] [--clock cpu|wall] [--device cpu|cuda]

Targets: fwd+bwd ratio <= 1.02 on CPU for seresnet50 and resnet50d (issue 15), <= 1.05
for regnety_008, resnest14d and convnext_atto (issue 16: `--models regnety_008 resnest14d
convnext_atto`). timm is a test dependency (`pip install -e .[dev]`); rnetc itself never
imports it.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import torch_overhead as common  # noqa: E402  (step timing shared with the torchvision benchmark)

import resnet_dsl  # noqa: E402

ZOO = ROOT / "specs" / "zoo"


def pair(name: str, size: int, device: torch.device):
    import timm

    theirs = timm.create_model(name, pretrained=False).to(device)
    ours = resnet_dsl.build(ZOO / f"{name}.rnet", params={"size": size}).to(device)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    return ours.train(), theirs.train()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["seresnet50", "resnet50d"])
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                   help="cpu: the process's CPU time (steady on a shared CPU); wall: perf_counter")
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    common.CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    device = torch.device(args.device)
    import timm

    print(f"torch {torch.__version__}, timm {timm.__version__}, python "
          f"{platform.python_version()}, {args.device}, {args.threads} thread(s), "
          f"{args.clock} clock; batch {args.batch}x3x{args.size}x{args.size}, {args.steps} steps")
    print(f"{'training step':<34}{'rnetc ms':>10}{'timm ms':>10}{'ratio':>10}{'pairs':>10}{'n':>6}")
    torch.manual_seed(0)
    x = torch.randn(args.batch, 3, args.size, args.size, device=device)
    target = torch.randint(0, 1000, (args.batch,), device=device)
    for name in args.models:
        ours, theirs = pair(name, args.size, device)
        a, b = common.compare_steps(ours, theirs, x, target, args.steps, args.warmup)
        print(common.row(name, a, b))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
