"""The torch backend's reading of the IR: which modules to make, how they nest, how they run.

`make_plan(net)` turns a checked `Network` into a `ModelPlan`: the network's own layers
and its stages in program order; each block split into the parts its forward runs
(before the fork, the residual branch, the shortcut, after the addition); and for every
layer the PyTorch module that computes it, as a class name and constructor arguments.
`build.py` instantiates a plan and `emit.py` prints it as Python source. Both read the
same plan, so the in-process module and the emitted file cannot disagree.

This module decides and imports no torch. It relies on what lowering guarantees (every
layer reads the layer before it; shortcuts read the block's input or its fork) and
checks it, so that a change in the front end fails here loudly instead of building a
different network.
"""

from __future__ import annotations

import keyword
from dataclasses import dataclass, field

from resnet_dsl.errors import Diagnostic, RnetError, with_trace
from resnet_dsl.ir import nodes as ir
from resnet_dsl.ir.graph import BlockInfo, Network, ShortcutKind

Value = bool | int | float | tuple[int, int]

# Layers whose output is a fresh tensor that their own backward does not need: an
# in-place ReLU (or `+=`) may overwrite it when nothing else reads it. ReLU saves its
# output, `input` is the caller's tensor, and dropout in eval mode returns its input.
_FRESH_OUTPUT = frozenset({"conv", "bn", "fc", "add"})


@dataclass(frozen=True)
class LayerPlan:
    """One layer as a PyTorch module: `nn.<module>(**args)` (or rnetc's `ZeroPad`)."""

    name: str                              # attribute in its parent: "conv1", "relu_1", "0"
    node: str                              # the IR node's full name: "layer1.0.conv1"
    op: str                                # the IR op: conv, bn, act, ...
    module: str                            # Conv2d, BatchNorm2d, ReLU, ..., ZeroPad
    args: tuple[tuple[str, Value], ...]    # constructor arguments, PyTorch's names


@dataclass(frozen=True)
class BlockPlan:
    """One block of a stage. A residual block computes

        fork = pre(x);  out = main(fork) + shortcut(fork or x);  return post(out)

    and a block without `add` is the chain `main`."""

    name: str                              # "layer1.0" (the state-dict prefix)
    key: str                               # its key in the stage: "0"
    definition: str                        # the block's name in the spec: "bottleneck"
    args: dict[str, bool | int | float]    # the block's arguments, as the spec called it
    in_channels: int | None                # None where the input is flat
    residual: bool
    pre: tuple[LayerPlan, ...] = ()
    main: tuple[LayerPlan, ...] = ()
    shortcut_kind: ShortcutKind = "none"
    shortcut_name: str | None = None       # "downsample"; None for an identity shortcut
    shortcut: tuple[LayerPlan, ...] = ()   # one module, or the items of an nn.Sequential
    shortcut_sequential: bool = False
    shortcut_reads_fork: bool = False      # projections in pre-activation blocks
    add_inplace: bool = False              # `out += shortcut` is safe (as torchvision does)
    post: tuple[LayerPlan, ...] = ()
    last_bn: str | None = None             # the BN feeding `add` (zero_init_residual)

    def layers(self) -> tuple[LayerPlan, ...]:
        """The block's direct children in IR (= state-dict) order; the shortcut's items
        are children of `shortcut_name` when `shortcut_sequential`."""
        return self.pre + self.main + self.shortcut + self.post


@dataclass(frozen=True)
class StagePlan:
    name: str                              # "layer1"
    blocks: tuple[BlockPlan, ...]


@dataclass(frozen=True)
class ModelPlan:
    name: str
    file: str
    arguments: dict[str, bool | int | float]
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    params: int
    items: tuple[LayerPlan | StagePlan, ...] = field(default_factory=tuple)

    def blocks(self) -> list[BlockPlan]:
        return [b for item in self.items if isinstance(item, StagePlan) for b in item.blocks]

    def zero_init_bns(self) -> list[str]:
        """Full names of the BNs that `zero_init_residual` zeroes, in order."""
        return [f"{b.name}.{b.last_bn}" for b in self.blocks() if b.last_bn]


def make_plan(net: Network, reserved: frozenset[str] = frozenset()) -> ModelPlan:
    """Plan the modules of a checked network.

    `reserved` are attribute names the modules already have (`forward`, `training`, ...):
    a layer or stage named like one of them is reported (E701), as is a Python keyword.

    >>> from resnet_dsl.compiler import compile_network
    >>> plan = make_plan(compile_network('network n { input 3x8x8; conv 3x3 4; bn; relu }'))
    >>> [(item.name, item.module, dict(item.args).get("inplace")) for item in plan.items]
    [('conv1', 'Conv2d', None), ('bn1', 'BatchNorm2d', None), ('relu', 'ReLU', True)]
    """
    if net.output is None or net.input_shape is None or net.output_shape is None:
        raise ValueError("make_plan needs a checked network (resnet_dsl.compiler.compile_network)")
    consumers = net.consumers()
    by_block: dict[str, list[ir.NodeBase]] = {}
    for node in net.nodes.values():
        if node.block is not None:
            by_block.setdefault(node.block, []).append(node)

    items: list[LayerPlan | StagePlan] = []
    done_stages: set[str] = set()
    current = next(n.name for n in net.nodes.values() if n.op == "input")
    for node in net.nodes.values():
        if node.op == "input":
            continue
        if node.stage is None:
            _check(node.inputs == [current], f"{node.name} does not read {current}")
            items.append(_layer(net, node, node.name, consumers))
            current = node.name
            continue
        if node.stage in done_stages:
            continue
        done_stages.add(node.stage)
        stage = net.stages[node.stage]
        blocks = []
        for index, block_name in enumerate(stage.blocks):
            info = net.blocks[block_name]
            _check(info.input == current, f"block {block_name} does not read {current}")
            _check(block_name == f"{stage.name}.{index}", f"block {block_name} is not "
                   f"{stage.name}.{index}")
            plan, current = _block(net, info, by_block.get(block_name, []), consumers)
            blocks.append(plan)
        items.append(StagePlan(stage.name, tuple(blocks)))
    _check(current == net.output, f"the plan ends at {current}, the network at {net.output}")
    plan = ModelPlan(name=net.name, file=net.file, arguments=dict(net.arguments),
                     input_shape=tuple(net.input_shape), output_shape=tuple(net.output_shape),
                     params=net.totals.params, items=tuple(items))
    _check_names(net, plan, reserved)
    return plan


# -- blocks ------------------------------------------------------------------------------

def _block(net: Network, info: BlockInfo, members: list[ir.NodeBase],
           consumers: dict[str, list[str]]) -> tuple[BlockPlan, str]:
    """Plan one block; returns the plan and the name of the block's output node."""
    in_shape = net.nodes[info.input].shape or ()
    common = dict(name=info.name, key=str(info.index), definition=info.definition,
                  args=dict(info.args), in_channels=in_shape[0] if len(in_shape) == 3 else None)
    local = {n.name: _local_name(info, n) for n in members}
    if not info.residual or info.add is None:
        _chain(members, info.input)
        layers = tuple(_layer(net, n, local[n.name], consumers) for n in members)
        out = members[-1].name if members else info.input
        return BlockPlan(residual=False, main=layers, **common), out

    add = net.nodes[info.add]
    pre = [n for n in members if n.part == "pre"]
    main = [n for n in members if n.part == "main" and n.op != "add"]
    shortcut = [n for n in members if n.part == "shortcut"]
    post = [n for n in members if n.part == "post"]
    _check(len(pre) + len(main) + len(shortcut) + len(post) + 1 == len(members),
           f"block {info.name} has nodes outside pre/main/shortcut/add/post")
    _chain(pre, info.input)
    _check(info.fork == (pre[-1].name if pre else info.input), f"block {info.name}: bad fork")
    _chain(main, info.fork)
    main_out = main[-1].name if main else info.fork
    if shortcut:
        source = shortcut[0].inputs[0]
        _check(source in (info.input, info.fork), f"block {info.name}: the shortcut reads {source}")
        _chain(shortcut, source)
        short_out = shortcut[-1].name
    else:
        source = short_out = info.input
    _check(add.inputs == [main_out, short_out], f"block {info.name}: add reads {add.inputs}")
    _chain(post, add.name)

    short_layers = tuple(_layer(net, n, local[n.name], consumers) for n in shortcut)
    names = {local[n.name].partition(".")[0] for n in shortcut}
    _check(len(names) <= 1, f"block {info.name}: shortcut nodes under several names {names}")
    sequential = any("." in local[n.name] for n in shortcut)
    if sequential:
        _check(all("." in local[n.name] for n in shortcut), f"block {info.name}: mixed shortcut")
        short_layers = _sequential_items(info, short_layers)
    producer = net.nodes[main_out]
    last_bn = local[main_out] if main and producer.op == "bn" else None
    plan = BlockPlan(
        residual=True,
        pre=tuple(_layer(net, n, local[n.name], consumers) for n in pre),
        main=tuple(_layer(net, n, local[n.name], consumers) for n in main),
        shortcut_kind=info.shortcut,
        shortcut_name=names.pop() if names else None,
        shortcut=short_layers,
        shortcut_sequential=sequential,
        shortcut_reads_fork=bool(shortcut) and source == info.fork and info.fork != info.input,
        # `out += shortcut` (torchvision's form) overwrites the branch's last output, so
        # only where that is a fresh tensor of this branch that nothing else reads.
        add_inplace=bool(main) and producer.op in ("conv", "bn", "fc")
        and consumers[main_out] == [add.name],
        post=tuple(_layer(net, n, local[n.name], consumers) for n in post),
        last_bn=last_bn,
        **common,
    )
    return plan, (post[-1].name if post else add.name)


def _sequential_items(info: BlockInfo, layers: tuple[LayerPlan, ...]) -> tuple[LayerPlan, ...]:
    """The items of a `downsample` nn.Sequential, keyed 0, 1, ...; a gap (the avg-pool of
    an avgproj shortcut at stride 1) is an nn.Identity, as in timm, so the conv and BN
    keep the names `downsample.1` and `.2` at every stride."""
    by_index: dict[int, LayerPlan] = {}
    for layer in layers:
        index = layer.name.partition(".")[2]
        _check(index.isdigit(), f"block {info.name}: shortcut item {layer.name}")
        by_index[int(index)] = LayerPlan(index, layer.node, layer.op, layer.module, layer.args)
    _check(list(by_index) == sorted(by_index), f"block {info.name}: shortcut out of order")
    prefix = layers[0].name.partition(".")[0]
    return tuple(by_index.get(i) or LayerPlan(str(i), f"{info.name}.{prefix}.{i}", "identity",
                                              "Identity", ())
                 for i in range(max(by_index) + 1))


def _local_name(info: BlockInfo, node: ir.NodeBase) -> str:
    prefix = info.name + "."
    _check(node.name.startswith(prefix), f"{node.name} is not inside block {info.name}")
    local = node.name[len(prefix):]
    _check(node.part == "shortcut" or "." not in local, f"{node.name}: nested name")
    return local


def _chain(nodes: list[ir.NodeBase], start: str) -> None:
    previous = start
    for node in nodes:
        _check(node.inputs == [previous], f"{node.name} reads {node.inputs}, not {previous}")
        previous = node.name


# -- layers ------------------------------------------------------------------------------

def _layer(net: Network, node: ir.NodeBase, name: str,
           consumers: dict[str, list[str]]) -> LayerPlan:
    in_shape = net.nodes[node.inputs[0]].shape
    _check(in_shape is not None, f"{node.name} has no input shape")
    producer = net.nodes[node.inputs[0]]
    # In-place where it cannot change a result: the ReLU's input is a fresh tensor that
    # nothing else reads (torchvision's nn.ReLU(inplace=True) after a BN or an add).
    inplace = producer.op in _FRESH_OUTPUT and consumers[producer.name] == [node.name]
    module, args = layer_module(node, in_shape, inplace)
    return LayerPlan(name, node.name, node.op, module, args)


def _pair(p: tuple[int, int]) -> int | tuple[int, int]:
    return p[0] if p[0] == p[1] else (p[0], p[1])


def layer_module(node: ir.NodeBase, in_shape: tuple[int, ...],
                 inplace: bool = False) -> tuple[str, tuple[tuple[str, Value], ...]]:
    """The PyTorch module (class name, constructor arguments) that computes one IR node.

    >>> from resnet_dsl.ir.nodes import Conv
    >>> layer_module(Conv(name="conv1", out_channels=64, kernel=(7, 7), stride=(2, 2),
    ...                   padding=(3, 3)), (3, 224, 224))[1][:4]
    (('in_channels', 3), ('out_channels', 64), ('kernel_size', 7), ('stride', 2))
    """
    if isinstance(node, ir.Conv):
        return "Conv2d", (("in_channels", in_shape[0]), ("out_channels", node.out_channels),
                          ("kernel_size", _pair(node.kernel)), ("stride", _pair(node.stride)),
                          ("padding", _pair(node.padding)), ("dilation", _pair(node.dilation)),
                          ("groups", node.groups), ("bias", node.bias))
    if isinstance(node, ir.BatchNorm):
        kind = "BatchNorm2d" if len(in_shape) == 3 else "BatchNorm1d"
        return kind, (("num_features", in_shape[0]), ("eps", node.eps),
                      ("momentum", node.momentum))
    if isinstance(node, ir.Activation):
        if node.kind == "relu":
            return "ReLU", (("inplace", inplace),)
        if node.kind == "leaky_relu":
            return "LeakyReLU", (("negative_slope", node.slope),)
        return _ACTIVATION_MODULES[node.kind], ()
    if isinstance(node, ir.Pool):
        args: tuple[tuple[str, Value], ...] = (
            ("kernel_size", _pair(node.kernel)), ("stride", _pair(node.stride)),
            ("padding", _pair(node.padding)), ("ceil_mode", node.ceil_mode))
        if node.kind == "max":
            return "MaxPool2d", args
        return "AvgPool2d", args + (("count_include_pad", node.count_include_pad),)
    if isinstance(node, ir.GlobalPool):
        return ("AdaptiveAvgPool2d" if node.kind == "avg" else "AdaptiveMaxPool2d"), \
            (("output_size", 1),)
    if isinstance(node, ir.Dropout):
        return "Dropout", (("p", node.p),)
    if isinstance(node, ir.Flatten):
        return "Flatten", ()
    if isinstance(node, ir.Linear):
        return "Linear", (("in_features", in_shape[0]), ("out_features", node.out_features),
                          ("bias", node.bias))
    if isinstance(node, ir.ZeroPad):
        return "ZeroPad", (("stride", node.stride), ("out_channels", node.out_channels))
    raise ValueError(f"the torch backend has no module for {node.op} ({node.name})")


_ACTIVATION_MODULES = {"relu6": "ReLU6", "silu": "SiLU", "gelu": "GELU", "sigmoid": "Sigmoid",
                       "tanh": "Tanh"}


# -- names -------------------------------------------------------------------------------

def _check_names(net: Network, plan: ModelPlan, reserved: frozenset[str]) -> None:
    """Every module name becomes a Python attribute (`model.layer1`, `self.conv1` in the
    emitted file): it must not be a keyword or an attribute nn.Module already has."""
    problems: list[Diagnostic] = []

    def check(name: str, span, what: str, trace=()) -> None:
        if keyword.iskeyword(name):
            why = "is a Python keyword"
        elif name in reserved:
            why = "is already an attribute of torch.nn.Module"
        else:
            return
        problems.append(with_trace(Diagnostic(
            "E701", f"the {what} name `{name}` {why}, so PyTorch cannot use it", span,
            "rename it (`as NAME` for a layer, `stage NAME` for a stage)"), trace))

    for item in plan.items:
        if isinstance(item, StagePlan):
            check(item.name, net.stages[item.name].span, "stage")
            for block in item.blocks:
                for layer in block.pre + block.main + block.post:
                    node = net.nodes[layer.node]
                    check(layer.name, node.span, "layer", node.trace)
        else:
            node = net.nodes[item.node]
            check(item.name, node.span, "layer", node.trace)
    if problems:
        raise RnetError(problems)


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise AssertionError(f"torch backend: unexpected IR ({message}); this is an rnetc bug")
