"""The torch backend's reading of the IR: which modules to make, how they nest, how they run.

`make_plan(net)` turns a checked `Network` into a `ModelPlan`: the network's own layers
and its stages in program order, each stage's blocks, and for every block its children
(layers, and sub-scopes such as `downsample`) and the steps its forward runs. A step is
`var = call(args...)`, where a call is a child module or a builtin (`add`, `mul`, `cat`:
ops.py) and an argument is a variable or a nested call, as torch.fx's interpreter runs a
graph. Steps follow the graph's edges, so a block of any shape needs nothing new here.
`build.py` runs the steps and `emit.py` prints them as Python source: both read the
same plan, so the in-process module and the emitted file cannot disagree.

Module nesting comes from each node's `path` in its block (`("downsample", "0")`), never
from splitting names. A scope whose nodes form a plain chain of modules is an
`nn.Sequential`; any other is a `Block` that runs its steps.
"""

from __future__ import annotations

import keyword
from dataclasses import dataclass, field, replace

from resnet_dsl.backends.torch.ops import OPS, Builtin, Layer, layer_module
from resnet_dsl.errors import Diagnostic, RnetError, with_trace
from resnet_dsl.ir import nodes as ir
from resnet_dsl.ir.graph import BlockInfo, Network
from resnet_dsl.ir.shortcuts import SHORTCUT_MODULE, ShortcutKind
from resnet_dsl.ir.structure import ancestors

Value = bool | int | float | tuple[int, int]

__all__ = ["BlockPlan", "Call", "ContainerPlan", "LayerPlan", "ModelPlan", "SequentialPlan", "StagePlan",
           "layer_module", "make_plan"]


@dataclass(frozen=True)
class LayerPlan:
    """One layer as a PyTorch module: `nn.<module>(**args)` (or rnetc's `ZeroPad`)."""

    name: str                              # attribute in its parent: "conv1", "relu_1", "0"
    node: str                              # the IR node's full name: "layer1.0.conv1"
    op: str                                # the IR op: conv, bn, act, ...
    module: str                            # Conv2d, BatchNorm2d, ReLU, ..., ZeroPad
    args: tuple[tuple[str, Value], ...]    # constructor arguments, PyTorch's names


@dataclass(frozen=True)
class SequentialPlan:
    """A sub-scope of a block that is a chain (`downsample`): an nn.Sequential of layers
    keyed 0, 1, ...; a missing index is an nn.Identity, as in timm, so that the conv and
    BN of an avgproj shortcut keep the names `downsample.1` and `.2` at every stride."""

    name: str                              # attribute in the block: "downsample"
    node: str                              # its full name: "layer1.0.downsample"
    items: tuple[LayerPlan | SequentialPlan, ...]   # scopes only in a `called` one
    called: bool = False                   # not a chain: an nn.ModuleDict whose layers the
                                           # block calls one by one (timm's SplitAttn
                                           # `conv2.conv`, `conv2.fc1`; Res2Net's `convs.0`)


Child = LayerPlan | SequentialPlan


@dataclass(frozen=True)
class Call:
    """One call in a forward: `target(*args)`, a child module or a builtin op."""

    target: str                            # child attribute, or the builtin's op ("add")
    builtin: bool
    args: tuple[str | Call, ...]           # variables, or calls written inline
    inplace: bool = False                  # `args[0] += args[1]` (torchvision's `out += ...`)
    attrs: tuple[tuple[str, Value], ...] = ()   # a builtin's keyword arguments (slice: start, stop)
    scale: str = ""                        # a layer scale, the block's own parameter:
                                           # "spatial" (x * gamma.view(-1, 1, 1)) or "flat"


@dataclass(frozen=True)
class Step:
    var: str                               # the variable it assigns: "out", "fork"
    call: Call


@dataclass(frozen=True)
class BlockPlan:
    """One block of a stage: its children in IR (= state-dict) order and its forward.

    A chain of modules (a block without `add`) has no steps: it is an nn.Sequential
    (`x = child(x)` in order). Any other block runs `steps` from `x` and returns
    `output`: a residual block computes `out = main(fork) + shortcut(fork or x)`, then
    what follows the addition."""

    name: str                              # "layer1.0" (the state-dict prefix)
    key: str                               # its key in the stage: "0"
    definition: str                        # the block's name in the spec: "bottleneck"
    args: dict[str, bool | int | float]    # the block's arguments, as the spec called it
    in_channels: int | None                # None where the input is flat
    residual: bool
    children: tuple[Child, ...] = ()
    steps: tuple[Step, ...] = ()
    output: str = "x"                      # the variable the forward returns
    shortcut_kind: ShortcutKind = "none"
    shortcut_reads_fork: bool = False      # projections in pre-activation blocks
    last_bn: str | None = None             # the BN feeding `add` (zero_init_residual)

    @property
    def chain(self) -> bool:
        return not self.steps

    def layers(self) -> tuple[LayerPlan, ...]:
        """Every layer, sub-scopes' items included, in IR order."""
        out: list[LayerPlan] = []

        def walk(child) -> None:
            if isinstance(child, SequentialPlan):
                for item in child.items:
                    walk(item)
            else:
                out.append(child)

        for child in self.children:
            walk(child)
        return tuple(out)


@dataclass(frozen=True)
class StagePlan:
    name: str                              # "layer1"
    blocks: tuple[BlockPlan, ...]


@dataclass(frozen=True)
class ContainerPlan:
    """The network's modules under one module path (`stages`, `stages.0`, `head`), as
    written with dotted names (`stage stages.0.blocks ...`, `fc classes as head.fc`): an
    nn.Sequential of its items, which run in order (timm's `stages.0.downsample` before
    `stages.0.blocks`). Its items' names are their last parts."""

    name: str                              # attribute in its parent: "stages", "0", "head"
    node: str                              # its full path: "stages.0"
    items: tuple[Item, ...]


Item = LayerPlan | SequentialPlan | StagePlan | ContainerPlan


@dataclass(frozen=True)
class ModelPlan:
    name: str
    file: str
    arguments: dict[str, bool | int | float]
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    params: int
    items: tuple[LayerPlan | SequentialPlan | StagePlan, ...] = field(default_factory=tuple)

    def blocks(self) -> list[BlockPlan]:
        return [b for item in self.stages() for b in item.blocks]

    def stages(self) -> list[StagePlan]:
        return [item for item in self.items if isinstance(item, StagePlan)]

    def tree(self) -> tuple[Item, ...]:
        """The top-level modules, dotted names nested: `stages.0.blocks` and
        `stages.1.downsample` become `stages` > `0` > `blocks`, `stages` > `1` > ...
        (the front end has checked that each container's items are written together)."""
        return _nest(self.items, "")

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

    items: list[LayerPlan | SequentialPlan | StagePlan] = []
    done_stages: set[str] = set()
    current = next(n.name for n in net.nodes.values() if n.op == "input")
    scoped: dict[str, list[ir.NodeBase]] = {}   # the network's own named scopes (`as NAME`)
    for node in net.nodes.values():
        if node.stage is None and node.path:
            scoped.setdefault(node.path[0], []).append(node)
    for node in net.nodes.values():
        if node.op == "input":
            continue
        if node.stage is None and node.path:
            if node is scoped[node.path[0]][0]:
                _check(node.inputs == [current], f"{node.name} does not read {current}")
                nodes = scoped[node.path[0]]
                items.append(_sequential(net, node.path[0], node.path[0], nodes, consumers))
                current = nodes[-1].name
            continue
        if node.stage is None:
            _check(node.inputs == [current], f"{node.name} does not read {current}")
            _own_scale(node)
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
            _check(info.index == index, f"block {block_name} is not block {index} of {stage.name}")
            plan, current = _block(net, info, by_block.get(block_name, []), consumers)
            blocks.append(plan)
        items.append(StagePlan(stage.name, tuple(blocks)))
    _check(current == net.output, f"the plan ends at {current}, the network at {net.output}")
    plan = ModelPlan(name=net.name, file=net.file, arguments=dict(net.arguments),
                     input_shape=tuple(net.input_shape), output_shape=tuple(net.output_shape),
                     params=net.totals.params, items=tuple(items))
    _check_names(net, plan, reserved)
    return plan


def _nest(items, prefix: str) -> tuple[Item, ...]:
    out: list[Item] = []
    run: list = []

    def close() -> None:
        if run:
            head = run[0][0]
            full = f"{prefix}.{head}" if prefix else head
            out.append(ContainerPlan(head, full, _nest([it for _, it in run], full)))
            run.clear()

    for item in items:
        local = item.name[len(prefix) + 1:] if prefix else item.name
        head, dot, _ = local.partition(".")
        if run and head != run[0][0]:
            close()
        if dot:
            run.append((head, item))
        else:
            out.append(replace(item, name=local))
    close()
    return tuple(out)


# -- blocks ------------------------------------------------------------------------------

@dataclass
class _Unit:
    """One call of a block's forward before variables are chosen: a child or a builtin."""

    child: Child | None                    # None for a builtin
    op: str                                # the builtin's op, or the child's first op
    value: str                             # the IR value it produces
    reads: list[str]                       # the IR values it reads, in order
    nodes: list[ir.NodeBase]               # its IR nodes


def _block(net: Network, info: BlockInfo, members: list[ir.NodeBase],
           consumers: dict[str, list[str]]) -> tuple[BlockPlan, str]:
    """Plan one block; returns the plan and the name of the block's output node."""
    in_shape = net.nodes[info.input].shape or ()
    common = dict(name=info.name, key=info.name[len(info.stage) + 1:], definition=info.definition,
                  args=dict(info.args), in_channels=in_shape[0] if len(in_shape) == 3 else None,
                  residual=info.residual, shortcut_kind=info.shortcut)
    inside = {n.name for n in members}
    output = _scope_output(members, inside, consumers, info.name)
    units = _units(net, info, members, inside, consumers)
    children = _children(units, info.name)
    if all(u.child is not None and u.op != "layer_scale" for u in units) \
            and _is_chain(units, info.input):
        return BlockPlan(children=children, **common), output

    # The variables of the forward (emit.py prints the same names): `x` is the input;
    # what comes before the `fork` is `fork`; a call whose first argument dies with it
    # reuses that variable; others take `out`, `out_1`, ... A child read once, by a
    # builtin, as a later argument, is written inline: `out += self.downsample(x)`.
    pre = ancestors(net, info.fork, inside) if info.fork != info.input else set()
    position = {u.value: i for i, u in enumerate(units)}
    readers: dict[str, list[int]] = {}
    for i, u in enumerate(units):
        for src in u.reads:
            readers.setdefault(src, []).append(i)
    inline = {i for i, u in enumerate(units)
              if u.child is not None and len(readers.get(u.value, [])) == 1
              and units[readers[u.value][0]].child is None
              and units[readers[u.value][0]].reads[0] != u.value}
    var_of: dict[str, str] = {info.input: "x"}
    live: set[str] = {"x"}
    steps: list[Step] = []
    calls: dict[str, Call] = {}
    for i, u in enumerate(units):
        args = tuple(calls[src] if position.get(src) in inline else var_of[src] for src in u.reads)
        call = _call(net, u, args, consumers, pre, inside)
        if i in inline:
            calls[u.value] = call
            continue
        for src in u.reads:  # variables whose last reader this is die here
            if src in var_of and max(readers[src]) == i:
                live.discard(var_of[src])
        first = var_of.get(u.reads[0]) if u.reads else None
        if u.value in pre:
            var = "fork"
        elif first not in (None, "x", "fork") and first not in live:
            var = first
        else:
            var = next(v for v in ("out", *(f"out_{n}" for n in range(1, len(units) + 1)))
                       if v not in live and v != first)
        var_of[u.value] = var
        live.add(var)
        steps.append(Step(var, call))
    last_bn = None
    if info.residual and info.add is not None:
        branch = net.nodes[info.add].inputs[0]
        producer = net.nodes[branch]
        if branch in inside and branch not in pre and producer.op == "bn" and not producer.path[1:]:
            last_bn = producer.path[0]
    reads_fork = info.fork != info.input and any(
        info.fork in u.reads for u in units if u.child is not None and u.child.name == SHORTCUT_MODULE)
    plan = BlockPlan(children=children, steps=tuple(steps), output=var_of[output],
                     shortcut_reads_fork=reads_fork, last_bn=last_bn, **common)
    return plan, output


def _units(net: Network, info: BlockInfo, members: list[ir.NodeBase], inside: set[str],
           consumers: dict[str, list[str]]) -> list[_Unit]:
    """The block's calls in IR order: each top-level layer, each sub-scope, each builtin."""
    groups: dict[str, list[ir.NodeBase]] = {}
    for node in members:
        _check(len(node.path) >= 1, f"{node.name}: module path {node.path}")
        if len(node.path) >= 2:
            groups.setdefault(node.path[0], []).append(node)
    # A scope is an nn.Sequential where it is a chain of layers one deep; any other (a
    # side branch inside it, a split, scopes in it) is called layer by layer.
    called = {key for key, nodes in groups.items() if not _chained(nodes) or any(
        len(n.path) > 2 or isinstance(OPS.get(n.op), Builtin) for n in nodes)}
    units: list[_Unit] = []
    order: dict[str, int] = {}
    for node in members:
        entry = OPS.get(node.op)
        _check(entry is not None, f"{node.name}: the torch backend has no entry for {node.op}")
        if len(node.path) >= 2 and node.path[0] in called:
            if isinstance(entry, Builtin):
                units.append(_Unit(None, node.op, node.name, list(node.inputs), [node]))
                continue
            _own_scale(node)   # each layer called by the block: `self.conv2.fc1(...)`
            layer = _layer(net, node, ".".join(node.path), consumers)
            units.append(_Unit(layer, node.op, node.name, list(node.inputs), [node]))
            continue
        if len(node.path) == 2:
            if node.path[0] in order:
                continue
            nodes = groups[node.path[0]]
            order[node.path[0]] = len(units)
            child = _sequential(net, info.name, node.path[0], nodes, consumers)
            value = _scope_output(nodes, {n.name for n in nodes}, consumers, child.node)
            unit = _Unit(child, nodes[0].op, value, list(nodes[0].inputs), nodes)
        elif isinstance(entry, Builtin):
            unit = _Unit(None, node.op, node.name, list(node.inputs), [node])
        else:
            unit = _Unit(_layer(net, node, node.path[0], consumers), node.op, node.name,
                         list(node.inputs), [node])
        units.append(unit)
    # A sub-scope runs when its output is ready: order calls by their last node.
    index = {n.name: i for i, n in enumerate(members)}
    units.sort(key=lambda u: index[u.nodes[-1].name])
    for u in units:
        for src in u.reads:
            _check(src in inside or src == info.input, f"block {info.name}: {u.value} reads {src}")
    return units


def _own_scale(node: ir.NodeBase) -> None:
    """A layer scale is its block's own parameter (`blocks.0.gamma`); the front end puts it
    nowhere else (`own_scope`, E307)."""
    _check(node.op != "layer_scale", f"{node.name}: a layer scale outside its block's own layers")


def _chained(nodes: list[ir.NodeBase]) -> bool:
    return all(b.inputs == [a.name] for a, b in zip(nodes, nodes[1:])) and len(nodes[0].inputs) == 1


def _children(units: list[_Unit], block: str) -> tuple[Child, ...]:
    """The block's modules in IR order; the layers of a scope it calls one by one
    (`conv2.conv`, `conv2.fc1`; `conv1.paths.0.conv`) gathered into nn.ModuleDict
    children, nested as their paths (`conv2`; `conv1` > `paths` > `0`)."""
    tree: dict = {}   # name -> LayerPlan, or a dict for a scope
    for u in units:
        child = u.child
        if child is None:
            continue
        parts = child.name.split(".") if isinstance(child, LayerPlan) else [child.name]
        level = tree
        for part in parts[:-1]:
            level = level.setdefault(part, {})
        level[parts[-1]] = replace(child, name=parts[-1]) if len(parts) > 1 else child

    def build(level: dict, prefix: str) -> list[Child]:
        out: list[Child] = []
        for name, item in level.items():
            if isinstance(item, dict):
                full = f"{prefix}.{name}"
                out.append(SequentialPlan(name, full, tuple(build(item, full)), called=True))
            else:
                out.append(item)
        return out

    return tuple(build(tree, block))


def _sequential(net: Network, scope: str, key: str, nodes: list[ir.NodeBase],
                consumers: dict[str, list[str]]) -> SequentialPlan:
    """A named scope that is a chain: an nn.Sequential of its layers, under their names
    (indices, where gaps become nn.Identity so later indices keep their names)."""
    previous = nodes[0].inputs
    layers: dict[str, LayerPlan] = {}
    for node in nodes:
        _own_scale(node)
        _check(len(node.path) == 2, f"{node.name}: module path {node.path}")
        _check(node.inputs == previous, f"{node.name}: {scope}.{key} is not a chain")
        layers[node.path[1]] = _layer(net, node, node.path[1], consumers)
        previous = [node.name]
    full = f"{scope}.{key}" if scope != key else key
    if not all(k.isdigit() for k in layers):
        return SequentialPlan(key, full, tuple(layers.values()))
    by_index = {int(k): v for k, v in layers.items()}
    _check(list(by_index) == sorted(by_index), f"{full} out of order")
    items = tuple(by_index.get(i) or LayerPlan(str(i), f"{full}.{i}", "identity", "Identity", ())
                  for i in range(max(by_index) + 1))
    return SequentialPlan(key, full, items)


def _call(net: Network, u: _Unit, args: tuple, consumers: dict[str, list[str]],
          pre: set[str], inside: set[str]) -> Call:
    if u.child is not None:
        if isinstance(u.child, LayerPlan) and u.child.module == "LayerScale":
            spatial = len(net.nodes[u.nodes[0].inputs[0]].shape or ()) == 3
            return Call(u.child.name, False, args, scale="spatial" if spatial else "flat")
        return Call(u.child.name, False, args)
    node = u.nodes[0]
    inplace = False
    if node.op == "add" and isinstance(args[0], str):
        # `a += b` (torchvision's form) overwrites the branch's last output, so only where
        # that is a fresh tensor of this block's own layers that nothing else reads.
        first = net.nodes[node.inputs[0]]
        entry = OPS.get(first.op)
        inplace = (first.name in inside and first.name not in pre and isinstance(entry, Layer)
                   and entry.fresh and consumers[first.name] == [node.name])
    attrs = tuple(entry.attrs(node).items()) if isinstance(entry := OPS[node.op], Builtin) \
        and entry.attrs else ()
    return Call(node.op, True, args, inplace, attrs)


def _scope_output(nodes: list[ir.NodeBase], inside: set[str], consumers: dict[str, list[str]],
                  scope: str) -> str:
    outs = [n.name for n in nodes if any(c not in inside for c in consumers[n.name])
            or not consumers[n.name]]
    _check(len(outs) == 1, f"{scope} has {len(outs)} outputs {outs}")
    return outs[0]


def _is_chain(units: list[_Unit], start: str) -> bool:
    previous = start
    for u in units:
        if u.reads != [previous]:
            return False
        previous = u.value
    return True


# -- layers ------------------------------------------------------------------------------

def _layer(net: Network, node: ir.NodeBase, name: str,
           consumers: dict[str, list[str]]) -> LayerPlan:
    in_shape = net.nodes[node.inputs[0]].shape
    _check(in_shape is not None, f"{node.name} has no input shape")
    producer = net.nodes[node.inputs[0]]
    # In-place where it cannot change a result: the ReLU's input is a fresh tensor that
    # nothing else reads (torchvision's nn.ReLU(inplace=True) after a BN or an add).
    entry = OPS.get(producer.op)
    inplace = entry is not None and entry.fresh and consumers[producer.name] == [node.name]
    module, args = layer_module(node, in_shape, inplace)
    return LayerPlan(name, node.name, node.op, module, args)


# -- names -------------------------------------------------------------------------------

def _check_names(net: Network, plan: ModelPlan, reserved: frozenset[str]) -> None:
    """Every module name becomes a Python attribute (`model.layer1`, `self.conv1` in the
    emitted file): it must not be a keyword or an attribute nn.Module already has."""
    problems: list[Diagnostic] = []

    def check(name: str, span, what: str, trace=()) -> None:
        for part in name.split(".")[:-1]:  # a module path: each part is an attribute
            check(part, span, what, trace)
        name = name.rpartition(".")[2]
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
                for child in block.children:
                    if isinstance(child, LayerPlan):
                        node = net.nodes[child.node]
                        check(child.name, node.span, "layer", node.trace)
        elif isinstance(item, SequentialPlan):
            node = net.nodes[item.items[0].node] if item.items[0].node in net.nodes else None
            check(item.name, node.span if node else None, "layer", node.trace if node else ())
        else:
            node = net.nodes[item.node]
            check(item.name, node.span, "layer", node.trace)
    if problems:
        raise RnetError(problems)


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise AssertionError(f"torch backend: unexpected IR ({message}); this is an rnetc bug")
