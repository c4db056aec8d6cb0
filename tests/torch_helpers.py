"""What the PyTorch backend's tests share: random BN statistics, copying weights by
position, importing an emitted file, comparing outputs."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import torch
from torch import nn


def randomize(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every BN random affine parameters and running statistics, so that an
    eval-mode comparison exercises them (a fresh BN is the identity in eval mode)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                n = m.num_features
                m.weight.copy_(torch.rand(n, generator=g) * 0.5 + 0.5)
                m.bias.copy_(torch.randn(n, generator=g) * 0.1)
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(n, generator=g) * 0.5 + 0.75)
    return model


def copy_by_position(src: nn.Module, dst: nn.Module) -> None:
    """Copy `src`'s state into `dst` tensor by tensor, in registration order; the shapes
    must agree one by one (a structural difference fails here)."""
    a, b = list(src.state_dict().values()), dst.state_dict()
    assert len(a) == len(b), f"{len(a)} tensors vs {len(b)}"
    state = {}
    for tensor, (name, target) in zip(a, b.items()):
        assert tensor.shape == target.shape, f"{name}: {tuple(tensor.shape)} vs {tuple(target.shape)}"
        state[name] = tensor
    dst.load_state_dict(state, strict=True)


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.double() - b.double()).abs().max().item()


def import_file(path: Path, name: str):
    """Import a Python file (an emitted model) as a module."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def model_class_name(source: str) -> str:
    """The emitted file's network class: the last class it defines."""
    return re.findall(r"^class (\w+)\(", source, re.M)[-1]


def set_threads(n: int = 1):
    """Module fixture body: torch on `n` threads (CI has 2 cores; tests are small), restored
    afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    yield
    torch.set_num_threads(before)
