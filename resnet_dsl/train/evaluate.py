"""Test loss and accuracy of a model over a split, and `rnetc eval`'s weight loading.

Evaluation normalises like training (no augmentation), runs under the same autocast,
and sums loss, correct top-1 and top-5 predictions on the device; the sums are read
once, at the end, over all processes.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from resnet_dsl.errors import error
from resnet_dsl.train import checkpoint
from resnet_dsl.train.augment import BatchTransform
from resnet_dsl.train.distributed import Dist, all_reduce_sum


@torch.no_grad()
def evaluate_model(model: nn.Module, loader, transform: BatchTransform, *, device: torch.device,
                   amp_dtype: torch.dtype | None = None, dist: Dist | None = None) -> dict:
    """{"loss", "acc", "top5", "images"} of `model` on every batch of `loader`."""
    dist = dist or Dist()
    if dist.enabled:  # every process evaluates with rank 0's BatchNorm statistics
        for buf in model.buffers():
            torch.distributed.broadcast(buf, 0)
    was_training = model.training
    model.eval()
    sums = torch.zeros(4, dtype=torch.float64, device=device)
    loader.set_epoch(0)
    for images, labels in loader.iterate():
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            logits = model(transform.eval(images))
        logits = logits.to(torch.promote_types(logits.dtype, torch.float32))   # bf16 -> fp32
        k = min(5, logits.shape[1])
        top = logits.topk(k, dim=1).indices
        sums[0] += F.cross_entropy(logits, labels, reduction="sum").double()
        sums[1] += (top[:, 0] == labels).sum().double()
        sums[2] += (top == labels[:, None]).any(1).sum().double()
        sums[3] += labels.shape[0]
    model.train(was_training)
    loss, correct, correct5, n = all_reduce_sum(sums, dist).tolist()
    if not n:
        return {"loss": math.nan, "acc": math.nan, "top5": math.nan, "images": 0}
    return {"loss": loss / n, "acc": correct / n, "top5": correct5 / n, "images": int(n)}


def load_eval_weights(model: nn.Module, path: str | Path, *, ema: bool = False,
                      network: str = "the network") -> dict:
    """Load weights for evaluation into `model`; return what a training checkpoint says
    about its run (`{"data": ..., "config": ...}`; empty for plain weights).

    `path` is a training checkpoint (its model, or with `ema` its EMA weights) or a plain
    weights file (.safetensors, .pt, .pth) as `rnetc compile -o` writes.
    """
    path = Path(path)
    if not path.is_file():
        raise error("E805", f"no such weights file: {path}")
    info: dict = {}
    if path.suffix.lower() == ".safetensors":
        from resnet_dsl.backends.torch.weights import read_weights

        state = read_weights(path)
    else:
        state = checkpoint.load(path)
    if isinstance(state, dict) and state.get("format") == checkpoint.FORMAT:
        info = {"data": state.get("data") or {}, "config": state.get("config") or {}}
        if ema:
            if not state.get("ema"):
                raise error("E805", f"{path} has no EMA weights (the run did not use --model-ema)")
            state = state["ema"]
        else:
            state = state["model"]
    elif ema:
        raise error("E805", f"--ema needs a training checkpoint; {path} holds plain weights")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise error("E805", f"{path} holds no state dict of tensors")
    checkpoint.load_weights(model, state, path, network=network, command="evaluate")
    return info
