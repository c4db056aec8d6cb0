"""Checked IR -> torch.nn.Module, in process (no generated source is executed).

The plan (plan.py) says which module each layer is, how blocks nest and which steps
their forwards run; this file makes the modules: first on the meta device (no memory,
no random numbers), then, unless the caller asked for meta, allocated empty on the
target device and initialised once (init.py), where torchvision's constructor draws
every weight twice. State-dict names are the IR's node names.
"""

from __future__ import annotations

import functools
from collections import OrderedDict

import torch
from torch import nn

from resnet_dsl.backends.torch.init import init_weights
from resnet_dsl.backends.torch.modules import MODULE, SCALE, SCALE_FLAT, SUBMODULE, Block, RESERVED_NAMES, RnetModel
from resnet_dsl.backends.torch.ops import MODULES, OPS
from resnet_dsl.backends.torch.plan import (
    BlockPlan, Call, ContainerPlan, LayerPlan, SequentialPlan, StagePlan, make_plan,
)
from resnet_dsl.ir.graph import Network


def build_module(net: Network, *, device: str | torch.device | None = None,
                 dtype: torch.dtype | None = None,
                 zero_init_residual: bool = False) -> RnetModel:
    """Build the PyTorch module of a checked network (`compile_network`'s result).

    `device="meta"` gives shapes without memory (parameter counts, shape checks);
    otherwise the weights are initialised like torchvision's (init.py). `device=None` is
    torch's default device; `dtype=None` its default dtype.

    >>> from resnet_dsl.compiler import compile_network
    >>> net = compile_network("specs/resnet152.rnet")
    >>> model = build_module(net, device="meta")
    >>> sum(p.numel() for p in model.parameters()) == net.totals.params
    True
    """
    if dtype is not None and not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating-point type, got {dtype}")
    target = torch.device(device) if device is not None else torch.get_default_device()
    plan = make_plan(net, reserved=RESERVED_NAMES)
    factory = {"device": torch.device("meta"), "dtype": dtype}
    model = RnetModel(OrderedDict((item.name, _item(item, factory)) for item in plan.tree()))
    model.network_name = plan.name
    model.input_shape = plan.input_shape
    if target.type != "meta":
        _allocate(model, target)
        init_weights(model, zero_init_residual=zero_init_residual)
    return model


def _allocate(model: nn.Module, device: torch.device) -> None:
    """`model.to_empty(device=device)` without its per-tensor bookkeeping, which costs
    ~10 us a tensor: half the build time of a CIFAR ResNet. Safe here because the modules
    are brand new: no hooks, optimisers or shared tensors to keep in step."""
    for module in model.modules():
        for name, p in module._parameters.items():
            if p is not None:
                module._parameters[name] = nn.Parameter(
                    torch.empty(p.shape, dtype=p.dtype, device=device), p.requires_grad)
        for name, b in module._buffers.items():
            if b is not None:
                module._buffers[name] = torch.empty(b.shape, dtype=b.dtype, device=device)


def _layer(layer: LayerPlan, factory: dict) -> nn.Module:
    kind = MODULES[layer.module]
    args = dict(layer.args)
    if kind.factory:
        return kind.cls(**args, **factory)
    return kind.cls(**args)


def _item(item: LayerPlan | SequentialPlan | StagePlan | ContainerPlan, factory: dict) -> nn.Module:
    """A top-level module: a stage's blocks, or a container of dotted names, are an
    nn.Sequential (`stages.0.blocks.1`), run in order."""
    if isinstance(item, StagePlan):
        return nn.Sequential(OrderedDict((block.key, _block(block, factory)) for block in item.blocks))
    if isinstance(item, ContainerPlan):
        return nn.Sequential(OrderedDict((x.name, _item(x, factory)) for x in item.items))
    return _child(item, factory)


def _child(child: LayerPlan | SequentialPlan, factory: dict) -> nn.Module:
    if isinstance(child, SequentialPlan):
        layers = OrderedDict((x.name, _child(x, factory)) for x in child.items)
        return nn.ModuleDict(layers) if child.called else nn.Sequential(layers)
    return _layer(child, factory)


def _block(block: BlockPlan, factory: dict) -> nn.Module:
    layers = [(child.name, _child(child, factory)) for child in block.children]
    if block.chain:
        return nn.Sequential(OrderedDict(layers))
    scales = tuple((c.name, dict(c.args)["channels"], dict(c.args)["init"])
                   for c in block.children if isinstance(c, LayerPlan) and c.module == "LayerScale")
    return Block(layers, steps=tuple((s.var, _runnable(s.call)) for s in block.steps),
                 input="x", output=block.output, last_bn=block.last_bn,
                 kind=block.shortcut_kind, reads_fork=block.shortcut_reads_fork,
                 scales=scales, factory=factory)


def _runnable(call: Call) -> tuple:
    """A plan's call as Block runs it: (how, target, args), `how` MODULE, SCALE or a
    builtin's function (ops.py), nested calls likewise."""
    args = tuple(a if isinstance(a, str) else _runnable(a) for a in call.args)
    if call.scale:
        return (SCALE if call.scale == "spatial" else SCALE_FLAT, call.target, args)
    if not call.builtin and "." in call.target:   # a layer of a scope the block calls
        return (SUBMODULE, tuple(call.target.split(".")), args)
    if not call.builtin:
        return (MODULE, call.target, args)
    builtin = OPS[call.target]
    run = builtin.run_inplace if call.inplace else builtin.run
    return ("builtin", functools.partial(run, **dict(call.attrs)) if call.attrs else run, args)
