"""Checked IR -> a standalone PyTorch source file (`rnetc compile --emit-python`).

The file needs only torch: plain nn.Module classes, one per distinct block structure
(same layers and shortcut; the sizes that differ between its blocks become constructor
parameters, named after the block's own arguments where the values say which), and one
for the network, each with a straight-line forward. It builds the same modules as
`build_module`, from the same plan (plan.py), under the same state-dict names, with the
same initialisation, so weights move between the two as they are and no user depends on
rnetc to run a model it compiled.
"""

from __future__ import annotations

import keyword
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from resnet_dsl.backends.torch.modules import RESERVED_NAMES
from resnet_dsl.backends.torch.ops import INPUT_FIELDS, MODULES, OPS
from resnet_dsl.backends.torch.plan import (
    BlockPlan, Call, ContainerPlan, LayerPlan, ModelPlan, SequentialPlan, StagePlan, make_plan,
)
from resnet_dsl.ir.graph import Network
from resnet_dsl.ir.shortcuts import SHORTCUTS
from resnet_dsl.version import __version__

INDENT = "    "

# Constructor arguments that are a channel count: in a block, the input's are written
# as the producing layer's output size (`nn.BatchNorm2d(planes)`).
_CHANNEL_FIELDS = INPUT_FIELDS + ("out_channels", "out_features")

# Names a constructor parameter must not shadow inside the emitted __init__.
_GLOBALS = frozenset({"self", "nn", "torch", "F", "super", "range"}) | frozenset(
    name for name, kind in MODULES.items() if kind.source)


def emit_python(net: Network) -> str:
    """A standalone Python module that defines the network as plain PyTorch classes.

    >>> from resnet_dsl.compiler import compile_network
    >>> source = emit_python(compile_network("specs/cifar_resnet20.rnet"))
    >>> [line for line in source.splitlines() if line.startswith("class ")]
    ['class ZeroPad(nn.Module):', 'class Basic(nn.Module):', 'class BasicZeroPad(nn.Module):', \
'class CifarResnet20(nn.Module):']
    """
    return _Emitter(make_plan(net, reserved=RESERVED_NAMES)).source()


# -- block classes -----------------------------------------------------------------------

@dataclass
class _BlockClass:
    """One emitted class: the blocks that share a structure, and how their sizes vary."""

    name: str
    blocks: list[BlockPlan]
    params: list[tuple[str, str]] = field(default_factory=list)   # (name, type)
    calls: list[dict[str, object]] = field(default_factory=list)  # per block: name -> value
    exprs: dict[tuple[str, str], str] = field(default_factory=dict)  # (path, arg) -> code
    # (an argument that is the same in all blocks has no entry: it is written as a number)


def _structure(block: BlockPlan) -> tuple:
    """Blocks with equal structures share a class: same children, modules, flags, steps."""
    def layer(x: LayerPlan) -> tuple:
        return (x.name, x.module, tuple(a for a in x.args if isinstance(a[1], bool)))

    def child(c) -> tuple:
        return (c.name, tuple(map(child, c.items))) if isinstance(c, SequentialPlan) else layer(c)

    return (block.definition, block.residual, block.in_channels is None,
            tuple(map(child, block.children)), block.steps, block.output, block.shortcut_kind,
            block.shortcut_reads_fork, block.last_bn)


def _paths(block: BlockPlan) -> list[tuple[str, LayerPlan]]:
    """The block's layers as (attribute path, layer) in IR order: `conv1`, `downsample.0`."""
    out = []

    def walk(child, prefix: str) -> None:
        if isinstance(child, SequentialPlan):
            for x in child.items:
                walk(x, f"{prefix}{child.name}.")
        else:
            out.append((f"{prefix}{child.name}", child))

    for child in block.children:
        walk(child, "")
    return out


class _Parameters:
    """Chooses the constructor parameters of one block class.

    A size that is the same in all the class's blocks is written as a number. One that
    differs becomes a parameter, named after the block argument that has the same values
    in every block (`out`, `stride`), else after the layer (`conv1_out_channels`). Input
    channel counts are written as the size of the layer that produces them.
    """

    def __init__(self, blocks: list[BlockPlan], class_names: set[str]) -> None:
        self.avoid = _GLOBALS | class_names
        self.vectors: dict[str, tuple] = {}   # parameter -> its value in each block
        self.family: dict[str, str] = {}      # parameter -> "channels", "stride", ...
        first = blocks[0].args
        self.arg_order = [_identifier(a, self.avoid) for a in first]
        self.args = [(_identifier(a, self.avoid), _typed_all(tuple(b.args.get(a) for b in blocks)))
                     for a, v in first.items() if not isinstance(v, bool)]

    def expr(self, vector: tuple, arg: str, path: str) -> str | None:
        """The parameter that holds `vector`, or None where it is one constant."""
        typed = _typed_all(vector)
        if len(set(typed)) == 1:
            return None
        family = "channels" if arg in _CHANNEL_FIELDS else arg
        matches = [name for name, values in self.args if values == typed]
        if matches:
            return self.claim(arg if arg in matches else matches[0], vector, family)
        for name, values in self.vectors.items():
            if _typed_all(values) == typed and self.family[name] == family:
                return name
        return self.claim(_identifier(f"{path.replace('.', '_')}_{arg}", self.avoid), vector,
                          family)

    def claim(self, name: str, vector: tuple, family: str) -> str:
        base, n = name, 1
        while name in self.vectors and _typed_all(self.vectors[name]) != _typed_all(vector):
            n += 1
            name = f"{base}_{n}"
        self.vectors[name] = vector
        self.family[name] = family
        return name

    def ordered(self) -> list[str]:
        """in_channels, then the block's own arguments in its order, then the others."""
        names = list(self.vectors)

        def rank(name: str) -> tuple[int, int]:
            if name == "in_channels":
                return (0, 0)
            if name in self.arg_order:
                return (1, self.arg_order.index(name))
            return (2, names.index(name))

        return sorted(names, key=rank)


Channels = tuple[str, tuple] | None
"""A value's channel count as (code, its value in each block); None after flatten."""


def _block_class(name: str, blocks: list[BlockPlan], class_names: set[str]) -> _BlockClass:
    out = _BlockClass(name, blocks)
    params = _Parameters(blocks, class_names)
    layers = [dict(_paths(b)) for b in blocks]  # the same structure in every block

    def walk(path: str, channels: Channels) -> Channels:
        """Write the arguments of the layer at `path`; return its output channels."""
        layer = layers[0][path]
        values = [dict(per_block[path].args) for per_block in layers]
        for arg, _ in layer.args:
            vector = tuple(v[arg] for v in values)
            if arg in INPUT_FIELDS and channels is not None and channels[1] == vector:
                code = channels[0]
            else:
                code = params.expr(vector, arg, path)
            if code is not None:
                out.exprs[(path, arg)] = code
        produced = MODULES[layer.module].output
        if produced:
            vector = tuple(v[produced] for v in values)
            return (out.exprs.get((path, produced), _literal(vector[0])), vector)
        return None if layer.module == "Flatten" else channels

    inputs = tuple(b.in_channels for b in blocks)
    entry: Channels = None
    if None not in inputs:
        entry = (_literal(inputs[0]) if len(set(inputs)) == 1 else
                 params.claim("in_channels", inputs, "channels"), inputs)
    first = blocks[0]
    children = {c.name: c for c in first.children}
    if first.chain:
        channels = entry
        for path, _ in _paths(first):
            channels = walk(path, channels)
    else:
        width: dict[str, Channels] = {"x": entry}   # variable -> its channels

        def run(call: Call) -> Channels:
            args = [width[a] if isinstance(a, str) else run(a) for a in call.args]
            if call.builtin:
                return args[0] if call.target != "cat" else _sum_channels(args)
            if call.target not in children:   # a layer of a scope called one by one
                return walk(call.target, args[0])
            child = children[call.target]
            channels = args[0]
            if isinstance(child, SequentialPlan):
                for item in child.items:
                    channels = walk(f"{child.name}.{item.name}", channels)
                return channels
            return walk(child.name, channels)

        for step in first.steps:
            width[step.var] = run(step.call)
    for param in params.ordered():
        kind = type(params.vectors[param][0])
        out.params.append((param, "tuple[int, int]" if kind is tuple else kind.__name__))
    out.calls = [{param: params.vectors[param][i] for param, _ in out.params}
                 for i in range(len(blocks))]
    return out


def _sum_channels(args: list[Channels]) -> Channels:
    if any(a is None for a in args):
        return None
    vector = tuple(map(sum, zip(*(a[1] for a in args))))
    return (" + ".join(a[0] for a in args), vector)  # type: ignore[index]


# -- source ------------------------------------------------------------------------------

class _Emitter:
    def __init__(self, plan: ModelPlan) -> None:
        self.plan = plan
        groups: dict[tuple, list[BlockPlan]] = {}
        for block in plan.blocks():
            groups.setdefault(_structure(block), []).append(block)
        # rnetc's own modules that the file defines (ZeroPad), in the order of first use
        self.own = list(dict.fromkeys(
            x.module for b in plan.blocks() for _, x in _paths(b) if MODULES[x.module].source))
        top = [x for item in plan.items if not isinstance(item, StagePlan)
               for x in (item.items if isinstance(item, SequentialPlan) else (item,))]
        nested = any(isinstance(item, ContainerPlan) for item in plan.tree())
        self.own += [x.module for x in top if MODULES[x.module].source and x.module not in self.own]
        self.named = nested or any(_named(c) for b in plan.blocks() for c in b.children) or any(
            _named(item) for item in plan.items)
        taken = {name for name, kind in MODULES.items() if kind.source}
        names = []
        for blocks in groups.values():
            first = blocks[0]
            names.append(_unique(_camel(first.definition) +
                                 SHORTCUTS[first.shortcut_kind].suffix, taken))
        self.classes = [_block_class(name, blocks, taken) for name, blocks in
                        zip(names, groups.values())]
        self.class_of = {b.name: c for c in self.classes for b in c.blocks}
        self.top = _unique(_camel(plan.name), taken)

    def source(self) -> str:
        parts = [self._header()]
        parts += [MODULES[name].source for name in self.own]
        parts += [self._block_source(c) for c in self.classes]
        parts.append(self._model_source())
        return "\n\n\n".join(parts)

    def _header(self) -> str:
        plan = self.plan
        arguments = ", ".join(f"{k}={_literal(v)}" for k, v in plan.arguments.items())
        shape = "x".join(map(str, plan.input_shape))
        output = "x".join(map(str, plan.output_shape))
        imports = ["from collections import OrderedDict"] if self.named else []
        if any("math." in MODULES[name].source for name in self.own):  # BlurPool's filter
            imports.insert(0, "import math")
        imports += [""] if imports else []
        imports.append("import torch")
        if any("F." in MODULES[name].source for name in self.own):  # ZeroPad: F.pad
            imports.append("import torch.nn.functional as F")
        imports.append("from torch import nn")
        return "\n".join([
            f'"""{plan.name}: a standalone PyTorch model, generated by rnetc {__version__}.',
            "",
            f"Spec: {Path(plan.file).name}, network {plan.name}" +
            (f" ({arguments})." if arguments else "."),
            f"Input {shape}, output {output}, {plan.params:,} parameters.",
            "",
            "This file needs only torch. Its state-dict names are those of `rnetc compile`",
            "(and torchvision's, for torchvision-family specs), so weights load as they are:",
            "",
            f"    model = {self.top}()",
            '    model.load_state_dict(torch.load("weights.pt", weights_only=True))',
            '"""',
            "",
            *imports,
        ])

    def _block_source(self, c: _BlockClass) -> str:
        first = c.blocks[0]
        names = ", ".join(b.name for b in c.blocks[:2]) + (", ..." if len(c.blocks) > 2 else "")
        what = f"`{first.definition}` block" + (
            f", {SHORTCUTS[first.shortcut_kind].noun}" if first.residual else "")
        if first.shortcut_reads_fork:
            what += " of the pre-activated input"
        count = f"{len(c.blocks)} block{'s' if len(c.blocks) > 1 else ''}"
        signature = "".join(f", {n}: {t}" for n, t in c.params)
        doc = textwrap.wrap(f'"""{what}: {count} ({names})."""', 92)
        lines = [f"class {c.name}(nn.Module):",
                 *(INDENT + line for line in doc),
                 "",
                 f"{INDENT}def __init__(self{signature}) -> None:",
                 f"{INDENT * 2}super().__init__()"]
        for child in first.children:
            if isinstance(child, SequentialPlan):
                lines += _sequential_source(INDENT * 2, child, c.exprs)
            elif child.module == "LayerScale":  # the block's own parameter (timm's `gamma`)
                args = dict(child.args)
                channels = c.exprs.get((child.name, "channels")) or str(args["channels"])
                lines.append(f"{INDENT * 2}self.{child.name} = nn.Parameter(torch.full(({channels},), "
                             f"{_literal(args['init'])}))")
            else:
                lines += _statement(f"{INDENT * 2}self.{child.name} = ", child, c.exprs, child.name)
        lines += ["", f"{INDENT}def forward(self, x: torch.Tensor) -> torch.Tensor:"]
        lines += [INDENT * 2 + line for line in _block_forward(first)]
        if first.last_bn:
            lines += ["", f"{INDENT}def zero_init_last_bn(self) -> None:",
                      f"{INDENT * 2}nn.init.zeros_(self.{first.last_bn}.weight)"]
        return "\n".join(lines)

    def _model_source(self) -> str:
        plan = self.plan
        shape = "x".join(map(str, plan.input_shape))
        output = "x".join(map(str, plan.output_shape))
        lines = [f"class {self.top}(nn.Module):",
                 f'{INDENT}"""{plan.name} ({Path(plan.file).name}): {shape} -> {output}."""',
                 "",
                 f"{INDENT}def __init__(self, zero_init_residual: bool = False) -> None:",
                 f"{INDENT * 2}super().__init__()"]
        forward = []
        for item in plan.tree():
            forward.append(f"{INDENT * 2}x = self.{item.name}(x)")
            if isinstance(item, LayerPlan):
                lines += _statement(f"{INDENT * 2}self.{item.name} = ", item, {}, item.name)
                continue
            if isinstance(item, SequentialPlan):
                lines += _sequential_source(INDENT * 2, item, {})
                continue
            lines += self._container(f"{INDENT * 2}self.{item.name} = ", INDENT * 2, item, "")
        lines += [f"{INDENT * 2}self.init_weights(zero_init_residual)",
                  "", f"{INDENT}def forward(self, x: torch.Tensor) -> torch.Tensor:",
                  *forward, f"{INDENT * 2}return x", "", *_INIT.splitlines()]
        return "\n".join(lines) + "\n"

    def _container(self, lead: str, indent: str, item, tail: str) -> list[str]:
        """A stage (`nn.Sequential(Block(...), ...)`) or a container of dotted names
        (`nn.Sequential(OrderedDict([("0", ...), ...]))`), as an expression after `lead`."""
        inner = indent + INDENT
        if isinstance(item, StagePlan):
            if all(b.key.isdigit() for b in item.blocks):
                return ([f"{lead}nn.Sequential("]
                        + [f"{inner}{call}," for call in self._stage_calls(item)]
                        + [f"{indent}){tail}"])
            lines = [f"{lead}nn.Sequential(OrderedDict(["]
            lines += [f'{inner}("{b.key}", {call}),' for b, call in
                      zip(item.blocks, self._stage_calls(item, runs=False))]
            return lines + [f"{indent}])){tail}"]
        lines = [f"{lead}nn.Sequential(OrderedDict(["]
        for x in item.items:
            head = f'{inner}("{x.name}", '
            if isinstance(x, LayerPlan):
                lines += _statement(head, x, {}, x.node, "),")
            elif isinstance(x, SequentialPlan):
                lines += _sequential_lines(head, inner, x, {}, x.node, "),")
            else:
                lines += self._container(head, inner, x, "),")
        return lines + [f"{indent}])){tail}"]

    def _stage_calls(self, stage: StagePlan, runs: bool = True) -> list[str]:
        calls = []
        for block in stage.blocks:
            c = self.class_of[block.name]
            values = c.calls[c.blocks.index(block)]
            calls.append(f"{c.name}(" + ", ".join(f"{k}={_literal(v)}" for k, v in values.items())
                         + ")")
        out: list[str] = []
        i = 0
        while i < len(calls):  # a run of equal blocks: *(Basic(out=16) for _ in range(3))
            j = i
            while j < len(calls) and calls[j] == calls[i]:
                j += 1
            out += [f"*({calls[i]} for _ in range({j - i}))"] if j - i > 2 and runs else calls[i:j]
            i = j
        return out


def _named(item) -> bool:
    """A Sequential whose items have names, not indices, or a ModuleDict: emitted with an
    OrderedDict."""
    return isinstance(item, SequentialPlan) and (
        item.called or not all(x.name.isdigit() for x in item.items))


def _sequential_source(lead: str, seq: SequentialPlan, exprs: dict) -> list[str]:
    """`self.downsample = nn.Sequential(...)`; named items as `OrderedDict([("conv", ...)])`."""
    return _sequential_lines(f"{lead}self.{seq.name} = ", lead, seq, exprs, seq.name)


def _sequential_lines(head: str, indent: str, seq: SequentialPlan, exprs: dict, path: str,
                      tail: str = "") -> list[str]:
    """A scope after `head`: an nn.Sequential, with an OrderedDict where its items have
    names, or an nn.ModuleDict (nested for scopes in scopes); `tail` after its last `)`."""
    inner = indent + INDENT
    if not _named(seq):
        lines = [f"{head}nn.Sequential("]
        for x in seq.items:
            lines += _statement(inner, x, exprs, f"{path}.{x.name}", ",")
        return lines + [f"{indent}){tail}"]
    kind = "nn.ModuleDict" if seq.called else "nn.Sequential"
    lines = [f"{head}{kind}(OrderedDict(["]
    for x in seq.items:
        item = f'{inner}("{x.name}", '
        if isinstance(x, SequentialPlan):
            lines += _sequential_lines(item, inner, x, exprs, f"{path}.{x.name}", "),")
        else:
            lines += _statement(item, x, exprs, f"{path}.{x.name}", "),")
    return lines + [f"{indent}])){tail}"]


def _block_forward(block: BlockPlan) -> list[str]:
    """The plan's steps as Python: the same calls `Block.forward` runs (build.py)."""
    if block.chain:
        return [f"x = self.{child.name}(x)" for child in block.children] + ["return x"]
    lines = []
    for step in block.steps:
        call = step.call
        if call.inplace:
            lines.append(OPS[call.target].source_inplace.format(*map(_expr, call.args)))
        else:
            lines.append(f"{step.var} = {_expr(call)}")
    return lines + [f"return {block.output}"]


def _expr(call: Call | str) -> str:
    if isinstance(call, str):
        return call
    args = [_expr(a) for a in call.args]
    if call.scale:
        return f"{args[0]} * self.{call.target}" + (".view(-1, 1, 1)" if call.scale == "spatial" else "")
    if not call.builtin and "." in call.target:   # a layer of nn.ModuleDict children
        scope, *keys = call.target.split(".")
        attrs = "".join(f".{k}" if k.isidentifier() and not keyword.iskeyword(k) else f'["{k}"]'
                        for k in keys)
        return f"self.{scope}{attrs}({', '.join(args)})"
    if not call.builtin:
        return f"self.{call.target}({', '.join(args)})"
    return OPS[call.target].source.format(*args, args=", ".join(args), **dict(call.attrs))


def _statement(lead: str, layer: LayerPlan, exprs: dict[tuple[str, str], str], path: str,
               tail: str = "", width: int = 100) -> list[str]:
    """`lead` + the layer's constructor call + `tail`, wrapped at `width` under the `(`."""
    call = _call(layer, exprs, path)
    if len(lead) + len(call) + len(tail) <= width:
        return [lead + call + tail]
    head, _, rest = call.partition("(")
    pieces = rest[:-1].split(", ")
    lines = [f"{lead}{head}("]
    pad = " " * len(lines[0])
    for i, piece in enumerate(pieces):
        piece += ", " if i < len(pieces) - 1 else ")" + tail
        if len(lines[-1]) + len(piece.rstrip()) > width and lines[-1].strip()[-1] != "(":
            lines[-1] = lines[-1].rstrip()
            lines.append(pad)
        lines[-1] += piece
    return lines


def _call(layer: LayerPlan, exprs: dict[tuple[str, str], str], path: str) -> str:
    """`nn.Conv2d(in_channels, 64, kernel_size=3, padding=1, bias=False)`."""
    kind = MODULES[layer.module]
    defaults, positional = kind.defaults, kind.positional
    parts = []
    for index, (arg, value) in enumerate(layer.args):
        expr = exprs.get((path, arg))
        if expr is None:
            if arg in defaults and _typed(defaults[arg]) == _typed(value):
                continue
            expr = _literal(value)
        parts.append(expr if index < positional else f"{arg}={expr}")
    prefix = "" if kind.source else "nn."
    return f"{prefix}{layer.module}({', '.join(parts)})"


def _typed(value: object) -> tuple:
    """A value with its type, so that 1, 1.0 and True are told apart."""
    return (type(value).__name__, value)


def _typed_all(values: tuple) -> tuple:
    return tuple(map(_typed, values))


def _literal(value: object) -> str:
    if isinstance(value, tuple):
        return "(" + ", ".join(map(_literal, value)) + ")"
    return repr(value)


def _identifier(name: str, avoid: frozenset[str] | set[str]) -> str:
    return name + "_" if keyword.iskeyword(name) or name in avoid else name


def _camel(name: str) -> str:
    """`wide_resnet50_2` -> `WideResnet50_2`."""
    out = ""
    for part in (p for p in name.split("_") if p):
        out += ("_" if part[0].isdigit() and out else "") + part[0].upper() + part[1:]
    return out or "Model"


def _unique(name: str, taken: set[str]) -> str:
    base, n = name, 1
    while name in taken:
        n += 1
        name = f"{base}{n}"
    taken.add(name)
    return name


_INIT = '''\
    def init_weights(self, zero_init_residual: bool = False) -> None:
        """torchvision's initialisation: Kaiming normal (fan_out) convs, BN weight 1 and
        bias 0, linear layers as PyTorch makes them."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_residual:
            # Zero the last BN of each residual branch (Goyal et al. 2017): every block
            # starts as its shortcut, which steadies early large-batch training.
            for m in self.modules():
                if hasattr(m, "zero_init_last_bn"):
                    m.zero_init_last_bn()'''
