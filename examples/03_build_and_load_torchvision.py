"""Build ResNet-18 from its spec, load a torchvision resnet18's weights into it, compare.

    python examples/03_build_and_load_torchvision.py

The state-dict names of specs/resnet18.rnet are torchvision's, so `load_state_dict`
works with strict=True and both models compute the same outputs. Nothing is downloaded
here: the torchvision model has its random initialisation. With
`torchvision.models.resnet18(weights="IMAGENET1K_V1")` the same lines load the
pretrained ImageNet weights.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torchvision

import resnet_dsl

SPEC = Path(__file__).resolve().parents[1] / "specs" / "resnet18.rnet"


def main() -> int:
    torch.manual_seed(0)
    reference = torchvision.models.resnet18().eval()
    model = resnet_dsl.build(SPEC)
    model.load_state_dict(reference.state_dict(), strict=True)
    model.eval()

    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        ours, theirs = model(x), reference(x)
    difference = (ours - theirs).abs().max().item()
    print(f"{SPEC.name}: loaded torchvision resnet18's {len(reference.state_dict())} tensors "
          f"(strict); outputs {tuple(ours.shape)}, max abs difference {difference:.1e}")
    return 0 if difference <= 1e-5 else 1


if __name__ == "__main__":
    sys.exit(main())
