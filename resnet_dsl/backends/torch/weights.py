"""Saving and loading a model's state dict: safetensors (.safetensors) or torch (.pt, .pth).

Files are written atomically (resnet_dsl.files). Loading a .pt/.pth file uses
`torch.load(weights_only=True)`, which refuses pickled code. A torchvision checkpoint
loads into the spec of the same network as it is: the names are the same.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from resnet_dsl.files import write_atomic

WEIGHT_SUFFIXES = (".safetensors", ".pt", ".pth")


def weight_format(path: str | os.PathLike) -> str:
    """"safetensors" or "torch", from the file's suffix; ValueError for another suffix."""
    suffix = Path(path).suffix.lower()
    if suffix not in WEIGHT_SUFFIXES:
        raise ValueError(f"{path}: weights are written as {', '.join(WEIGHT_SUFFIXES)} files, "
                         f"not {suffix or 'a file without a suffix'}")
    return "safetensors" if suffix == ".safetensors" else "torch"


def save_weights(model: nn.Module, path: str | os.PathLike,
                 metadata: dict[str, str] | None = None) -> Path:
    """Write `model.state_dict()` (on the CPU) to `path`, atomically.

    >>> import resnet_dsl, tempfile, pathlib
    >>> model = resnet_dsl.build("specs/cifar_resnet20.rnet")
    >>> path = save_weights(model, pathlib.Path(tempfile.mkdtemp()) / "w.safetensors")
    >>> load_weights(resnet_dsl.build("specs/cifar_resnet20.rnet"), path)
    <All keys matched successfully>
    """
    kind = weight_format(path)
    state = {name: tensor.detach().cpu().contiguous() for name, tensor in model.state_dict().items()}
    if any(t.is_meta for t in state.values()):
        raise ValueError("a model on the meta device has no weights to save")
    if kind == "safetensors":
        from safetensors.torch import save_file

        return write_atomic(path, lambda tmp: save_file(state, str(tmp), metadata=metadata))
    return write_atomic(path, lambda tmp: torch.save(state, tmp))


def load_state(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a state dict from a .safetensors, .pt or .pth file (onto the CPU)."""
    if weight_format(path) == "safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise ValueError(f"{path} holds a {type(state).__name__}, not a state dict")
    return state


def load_weights(model: nn.Module, path: str | os.PathLike, *, strict: bool = True):
    """Load a weights file into `model` (`strict`: every name must match both ways)."""
    return model.load_state_dict(load_state(path), strict=strict)
