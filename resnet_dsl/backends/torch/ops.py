"""The torch backend's one table: what each IR op becomes in PyTorch.

`OPS[op]` is either a layer (a child module: which `torch.nn` class, with which
constructor arguments, from the node and its input's shape) or a builtin (a call in the
forward with no module: `a + b`, `a * b`, `torch.cat`). `MODULES[name]` says, for each
module class a layer can be, how the emitted source writes it (defaults left out,
positional arguments, which argument is its output width) and how it is initialised.
The plan (plan.py), the in-process build (build.py), the emitted source (emit.py) and
the initialisation (init.py) all read these tables; tests/test_ops.py proves that every
IR op has an entry, so an op cannot be forgotten here.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from resnet_dsl.backends.torch.modules import (
    BLURPOOL_SOURCE, CHANNELCONV_SOURCE, DROPPATH_SOURCE, GROUPS_SOURCE, GROUPSUM_SOURCE,
    LAYERNORM2D_SOURCE, STDCONV_SOURCE, ZEROPAD_SOURCE, BlurPool, ChannelConv, DropPath,
    GroupSoftmax, GroupSum, LayerNorm2d, StdConv2d, ZeroPad, _ScaleSlot,
)
from resnet_dsl.ir import nodes as ir

Value = bool | int | float | tuple[int, int]
Args = tuple[tuple[str, Value], ...]


def _pair(p: tuple[int, int]) -> int | tuple[int, int]:
    return p[0] if p[0] == p[1] else (p[0], p[1])


@dataclass(frozen=True)
class Layer:
    """An op computed by a child module: `make(node, input shape, inplace)` -> (class, args)."""

    make: Callable[..., tuple[str, Args]]
    fresh: bool = False   # its output is a new tensor its backward does not need (in-place safe)


@dataclass(frozen=True)
class Builtin:
    """An op computed in the forward itself, from its inputs."""

    run: Callable[..., torch.Tensor]
    source: str                       # the emitted expression, `{0} + {1}`; `{args}` = all
    run_inplace: Callable[..., torch.Tensor] | None = None   # `a += b`
    source_inplace: str | None = None
    fresh: bool = True
    attrs: Callable[[ir.NodeBase], dict] | None = None   # keyword arguments from the node
    # (`run(x, start=0, stop=26)`, `{0}[:, {start}:{stop}]`)


def _conv(node: ir.Conv, shape, inplace) -> tuple[str, Args]:
    args: Args = (("in_channels", shape[0]), ("out_channels", node.out_channels),
                  ("kernel_size", _pair(node.kernel)), ("stride", _pair(node.stride)),
                  ("padding", _pair(node.padding)), ("dilation", _pair(node.dilation)),
                  ("groups", node.groups), ("bias", node.bias))
    if node.ws_eps:
        return "StdConv2d", args + (("eps", node.ws_eps),)
    return "Conv2d", args


def _layernorm(node: ir.LayerNorm, shape, inplace) -> tuple[str, Args]:
    return ("LayerNorm2d" if len(shape) == 3 else "LayerNorm"), (
        ("normalized_shape", shape[0]), ("eps", node.eps))


def _bn(node: ir.BatchNorm, shape, inplace) -> tuple[str, Args]:
    return ("BatchNorm2d" if len(shape) == 3 else "BatchNorm1d"), (
        ("num_features", shape[0]), ("eps", node.eps), ("momentum", node.momentum))


def _groupnorm(node: ir.GroupNorm, shape, inplace) -> tuple[str, Args]:
    return "GroupNorm", (("num_groups", node.groups), ("num_channels", shape[0]),
                         ("eps", node.eps))


_ACTIVATIONS = {"relu6": "ReLU6", "silu": "SiLU", "gelu": "GELU", "sigmoid": "Sigmoid",
                "tanh": "Tanh"}


def _act(node: ir.Activation, shape, inplace) -> tuple[str, Args]:
    if node.kind == "relu":
        return "ReLU", (("inplace", inplace),)
    if node.kind == "leaky_relu":
        return "LeakyReLU", (("negative_slope", node.slope),)
    return _ACTIVATIONS[node.kind], ()


def _pool(node: ir.Pool, shape, inplace) -> tuple[str, Args]:
    args: Args = (("kernel_size", _pair(node.kernel)), ("stride", _pair(node.stride)),
                  ("padding", _pair(node.padding)), ("ceil_mode", node.ceil_mode))
    if node.kind == "max":
        return "MaxPool2d", args
    return "AvgPool2d", args + (("count_include_pad", node.count_include_pad),)


def _global_pool(node: ir.GlobalPool, shape, inplace) -> tuple[str, Args]:
    return ("AdaptiveAvgPool2d" if node.kind == "avg" else "AdaptiveMaxPool2d"), (("output_size", 1),)


def _cat(*xs: torch.Tensor) -> torch.Tensor:
    return torch.cat(xs, 1)


def _slice(x: torch.Tensor, start: int, stop: int) -> torch.Tensor:
    return x[:, start:stop]   # a view, as torch.split's parts


OPS: dict[str, Layer | Builtin] = {
    "conv": Layer(_conv, fresh=True),
    "bn": Layer(_bn, fresh=True),
    "groupnorm": Layer(_groupnorm, fresh=True),
    "blur": Layer(lambda node, shape, inplace: ("BlurPool", (
        ("channels", shape[0]), ("size", node.size), ("stride", node.stride))), fresh=True),
    "channel_conv": Layer(lambda node, shape, inplace: ("ChannelConv", (("kernel", node.kernel),)),
                          fresh=True),
    "act": Layer(_act),
    "pool": Layer(_pool),
    "global_pool": Layer(_global_pool),
    "dropout": Layer(lambda node, shape, inplace: ("Dropout", (("p", node.p),))),
    "drop_path": Layer(lambda node, shape, inplace: ("DropPath", (("p", node.p),))),
    "identity": Layer(lambda node, shape, inplace: ("Identity", ())),
    "flatten": Layer(lambda node, shape, inplace: ("Flatten", ())),
    "fc": Layer(lambda node, shape, inplace: ("Linear", (
        ("in_features", shape[0]), ("out_features", node.out_features), ("bias", node.bias))),
        fresh=True),
    "zeropad": Layer(lambda node, shape, inplace: ("ZeroPad", (
        ("stride", node.stride), ("out_channels", node.out_channels)))),
    "pad": Layer(lambda node, shape, inplace: ("ConstantPad2d", (
        ("padding", node.size[0] if node.size[0] == node.size[1] else
         (node.size[1], node.size[1], node.size[0], node.size[0])), ("value", node.value)))),
    "layernorm": Layer(_layernorm, fresh=True),
    "layer_scale": Layer(lambda node, shape, inplace: ("LayerScale", (
        ("channels", shape[0]), ("init", node.init))), fresh=True),  # a parameter: modules.py
    "group_softmax": Layer(lambda node, shape, inplace: ("GroupSoftmax", (("groups", node.groups),))),
    "group_sum": Layer(lambda node, shape, inplace: ("GroupSum", (("groups", node.groups),)),
                       fresh=True),
    "add": Builtin(operator.add, "{0} + {1}", operator.iadd, "{0} += {1}"),
    "mul": Builtin(operator.mul, "{0} * {1}"),
    "cat": Builtin(_cat, "torch.cat([{args}], 1)"),
    "slice": Builtin(_slice, "{0}[:, {start}:{stop}]", fresh=False,
                     attrs=lambda node: dict(zip(("start", "stop"), node.channels))),
    "sum": Builtin(operator.add, "{0} + {1}"),
}
"""IR op -> its PyTorch form. `input` is the forward's argument, not an op to compute."""

NOT_COMPUTED = frozenset({"input"})


def _kaiming(m: nn.Module) -> None:
    # Kaiming normal, fan_out, for ReLU (He et al. 2015), as torchvision's ResNets.
    if m.bias is not None:
        m.reset_parameters()  # PyTorch's default bias
    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")


def _reset(m: nn.Module) -> None:
    m.reset_parameters()


@dataclass(frozen=True)
class Module:
    """A module class a layer can be, as built, emitted and initialised."""

    cls: type[nn.Module]
    defaults: dict[str, object] = field(default_factory=dict)  # left out of emitted calls
    positional: int = 0               # leading arguments written without their names
    output: str | None = None         # the argument that is its output width
    factory: bool = False             # has parameters: takes device= and dtype=
    init: Callable[[nn.Module], None] | None = None   # None: no parameters to initialise
    source: str | None = None         # rnetc's own class: its source, for emitted files


_NORM = {"eps": 1e-5, "momentum": 0.1}

MODULES: dict[str, Module] = {
    "Conv2d": Module(nn.Conv2d, {"stride": 1, "padding": 0, "dilation": 1, "groups": 1,
                                 "bias": True}, 2, "out_channels", True, _kaiming),
    "BatchNorm1d": Module(nn.BatchNorm1d, _NORM, 1, None, True, _reset),
    "BatchNorm2d": Module(nn.BatchNorm2d, _NORM, 1, None, True, _reset),
    "GroupNorm": Module(nn.GroupNorm, {"eps": 1e-5}, 2, None, True, _reset),
    "ReLU": Module(nn.ReLU, {"inplace": False}),
    "ReLU6": Module(nn.ReLU6),
    "LeakyReLU": Module(nn.LeakyReLU, {"negative_slope": 0.01}),
    "SiLU": Module(nn.SiLU),
    "GELU": Module(nn.GELU),
    "Sigmoid": Module(nn.Sigmoid),
    "Tanh": Module(nn.Tanh),
    "MaxPool2d": Module(nn.MaxPool2d, {"padding": 0, "ceil_mode": False}),
    "AvgPool2d": Module(nn.AvgPool2d, {"padding": 0, "ceil_mode": False,
                                       "count_include_pad": True}),
    "AdaptiveAvgPool2d": Module(nn.AdaptiveAvgPool2d, positional=1),
    "AdaptiveMaxPool2d": Module(nn.AdaptiveMaxPool2d, positional=1),
    "Dropout": Module(nn.Dropout),
    "Flatten": Module(nn.Flatten),
    "Linear": Module(nn.Linear, {"bias": True}, 2, "out_features", True, _reset),
    "Identity": Module(nn.Identity),
    "StdConv2d": Module(StdConv2d, {"stride": 1, "padding": 0, "dilation": 1, "groups": 1,
                                    "bias": True, "eps": 1e-6}, 2, "out_channels", True, _kaiming,
                        source=STDCONV_SOURCE),
    "ConstantPad2d": Module(nn.ConstantPad2d, positional=2),
    "LayerNorm": Module(nn.LayerNorm, {"eps": 1e-5}, 1, None, True, _reset),
    "LayerNorm2d": Module(LayerNorm2d, {"eps": 1e-5}, 1, None, True, _reset,
                          source=LAYERNORM2D_SOURCE),
    "LayerScale": Module(_ScaleSlot),
    "GroupSoftmax": Module(GroupSoftmax, positional=1, source=GROUPS_SOURCE),
    "GroupSum": Module(GroupSum, positional=1, source=GROUPSUM_SOURCE),  # the block's own parameter (build.py, emit.py)
    "ZeroPad": Module(ZeroPad, output="out_channels", source=ZEROPAD_SOURCE),
    "DropPath": Module(DropPath, source=DROPPATH_SOURCE),
    "BlurPool": Module(BlurPool, {"size": 3, "stride": 2}, 1, None, True, _reset,
                       source=BLURPOOL_SOURCE),
    "ChannelConv": Module(ChannelConv, positional=1, factory=True, init=_reset,
                          source=CHANNELCONV_SOURCE),
}
"""Module class name (what `OPS` layers make) -> how it is built, written and initialised."""

INPUT_FIELDS = ("in_channels", "num_features", "in_features", "num_channels", "channels",
                "normalized_shape")
"""Constructor arguments that are the input's width: emitted as the producer's width."""


def layer_module(node: ir.NodeBase, in_shape: tuple[int, ...],
                 inplace: bool = False) -> tuple[str, Args]:
    """The PyTorch module (class name, constructor arguments) that computes one IR node.

    >>> from resnet_dsl.ir.nodes import Conv
    >>> layer_module(Conv(name="conv1", out_channels=64, kernel=(7, 7), stride=(2, 2),
    ...                   padding=(3, 3)), (3, 224, 224))[1][:4]
    (('in_channels', 3), ('out_channels', 64), ('kernel_size', 7), ('stride', 2))
    """
    entry = OPS.get(node.op)
    if not isinstance(entry, Layer):
        raise ValueError(f"the torch backend has no module for {node.op} ({node.name})")
    return entry.make(node, in_shape, inplace)


def fresh_output(op: str) -> bool:
    """Whether an op's output is a new tensor that its own backward does not need."""
    entry = OPS.get(op)
    return entry is not None and entry.fresh
