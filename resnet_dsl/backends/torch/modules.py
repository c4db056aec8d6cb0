"""The modules a compiled spec is made of, beyond torch.nn's own layers.

`RnetModel` is the network: its layers and stages run one after the other, exactly an
`nn.Sequential`. A stage is an `nn.Sequential` of blocks. `Residual` is a residual
block; its layers are its direct children under their IR names (`conv1`, `bn1`,
`downsample`), so state-dict keys read `layer1.0.conv1.weight` as in torchvision.
`ZeroPad` is the option-A shortcut.

No forward here interprets graph nodes: each runs fixed sequences of its own children,
fixed when the module is built, as nn.Sequential does. `torch.compile(fullgraph=True)`
and `torch.export` see straight-line code.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class RnetModel(nn.Sequential):
    """A compiled spec: its top-level layers and stages, in order.

    Slicing works as for nn.Sequential (`model[:-1]` drops the classifier).
    """

    network_name: str = ""                 # the spec's network, e.g. "resnet50"
    input_shape: tuple[int, ...] = ()      # (C, H, W) the spec was checked for


class Residual(nn.Module):
    """A residual block: `out = main(fork) + shortcut(src)`, then the post layers.

    `fork` is the input after the `pre` layers (a pre-activation block's BN-ReLU);
    `src` is `fork` for projections in pre-activation blocks and the input otherwise.
    The children are registered in IR order, so the state dict follows the spec.
    """

    def __init__(self, layers: list[tuple[str, nn.Module]], *, pre: tuple[str, ...],
                 main: tuple[str, ...], post: tuple[str, ...], shortcut: str | None,
                 shortcut_reads_fork: bool, add_inplace: bool, last_bn: str | None,
                 kind: str) -> None:
        super().__init__()
        for name, module in layers:
            self.add_module(name, module)
        self._pre = pre
        self._main = main
        self._post = post
        self._shortcut = shortcut
        self._shortcut_reads_fork = shortcut_reads_fork
        self._add_inplace = add_inplace
        self._last_bn = last_bn
        self._kind = kind

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fork = x
        for name in self._pre:
            fork = self._modules[name](fork)
        out = fork
        for name in self._main:
            out = self._modules[name](out)
        src = fork if self._shortcut_reads_fork else x
        shortcut = src if self._shortcut is None else self._modules[self._shortcut](src)
        if self._add_inplace:
            out += shortcut
        else:
            out = out + shortcut
        for name in self._post:
            out = self._modules[name](out)
        return out

    @property
    def last_bn(self) -> nn.Module | None:
        """The BN that ends the residual branch (zeroed by zero_init_residual), if any."""
        return self._modules[self._last_bn] if self._last_bn else None

    def extra_repr(self) -> str:
        source = ", from the fork" if self._shortcut_reads_fork else ""
        return f"shortcut={self._kind}{source}"


class ZeroPad(nn.Module):
    """Option A shortcut (He et al. 2015): every `stride`-th pixel, then zero channels
    appended after the input's up to `out_channels`. No parameters."""

    def __init__(self, stride: int, out_channels: int) -> None:
        super().__init__()
        self.stride = stride
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, ::self.stride, ::self.stride]
        return F.pad(x, (0, 0, 0, 0, 0, self.out_channels - x.shape[1]))

    def extra_repr(self) -> str:
        return f"stride={self.stride}, out_channels={self.out_channels}"


MODULES: dict[str, type[nn.Module]] = {
    "Conv2d": nn.Conv2d, "BatchNorm1d": nn.BatchNorm1d, "BatchNorm2d": nn.BatchNorm2d,
    "ReLU": nn.ReLU, "ReLU6": nn.ReLU6, "LeakyReLU": nn.LeakyReLU, "SiLU": nn.SiLU,
    "GELU": nn.GELU, "Sigmoid": nn.Sigmoid, "Tanh": nn.Tanh,
    "MaxPool2d": nn.MaxPool2d, "AvgPool2d": nn.AvgPool2d,
    "AdaptiveAvgPool2d": nn.AdaptiveAvgPool2d, "AdaptiveMaxPool2d": nn.AdaptiveMaxPool2d,
    "Dropout": nn.Dropout, "Flatten": nn.Flatten, "Linear": nn.Linear, "Identity": nn.Identity,
    "ZeroPad": ZeroPad,
}
"""The plan's module names (plan.layer_module) -> classes."""

WITH_PARAMETERS = frozenset({"Conv2d", "BatchNorm1d", "BatchNorm2d", "Linear"})
"""Modules whose constructor takes device= and dtype=."""

RESERVED_NAMES: frozenset[str] = frozenset(dir(nn.Sequential())) | frozenset({
    "_pre", "_main", "_post", "_shortcut", "_shortcut_reads_fork", "_add_inplace", "_last_bn",
    "_kind", "last_bn", "network_name", "input_shape",
    "zero_init_last_bn", "init_weights",   # methods of the emitted classes (emit.py)
})
"""Names a layer or stage cannot take: its parent module already has the attribute."""
