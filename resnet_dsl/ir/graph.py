"""The IR container: a network's nodes in program order, its stages and blocks.

`Network.nodes` is ordered (a valid topological order, the order the spec wrote the
layers in); `Network.graph()` gives the same nodes as a `networkx.MultiDiGraph` whose
edges carry each input's position. Stages and blocks record the spec's structure, which
the backends mirror (torchvision's `layer1.0.downsample.0` naming comes from here).
`lint()` checks the invariants every pass may rely on.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from resnet_dsl.errors import Span
from resnet_dsl.ir.nodes import Node, Shape
from resnet_dsl.ir.shortcuts import ShortcutKind, ShortcutPolicy

Value = bool | int | float


class BlockInfo(BaseModel):
    """One instance of a block in a stage (`layer2.0`)."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    name: str
    stage: str
    index: int
    definition: str
    args: dict[str, Value] = Field(default_factory=dict)
    stride: int = 1
    input: str
    fork: str
    fork_span: Span | None = None  # where the spec wrote `fork` (None: at the input)
    add: str | None = None
    residual: bool = True
    shortcut: ShortcutKind = "identity"
    proj_bn: bool = True
    proj_gn: int = 0   # > 0: the projection's norm is GroupNorm with this many groups
    proj_named: bool = False  # the projection's modules are named conv/bn/norm/pool (timm)
    proj_ws: float = 0.0      # > 0: the projection's conv is weight-standardised (eps)
    span: Span | None = None


class StageInfo(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)

    name: str
    index: int
    repeats: int
    block: str
    policy: ShortcutPolicy
    stride: int
    blocks: list[str] = Field(default_factory=list)
    span: Span | None = None


class Totals(BaseModel):
    model_config = ConfigDict(defer_build=True)

    params: int = 0
    macs: int = 0
    activations: int = 0  # elements of all layer outputs, one image, forward


class Network(BaseModel):
    """A lowered network. Built by `frontend.lower`, completed by `passes`."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    name: str
    file: str
    span: Span | None = None
    arguments: dict[str, Value] = Field(default_factory=dict)
    input_shape: Shape | None = None
    nodes: dict[str, Node] = Field(default_factory=dict)
    stages: dict[str, StageInfo] = Field(default_factory=dict)
    blocks: dict[str, BlockInfo] = Field(default_factory=dict)
    output: str | None = None
    totals: Totals = Field(default_factory=Totals.model_construct)
    # File name -> text of the spec (its own file first, then its imports), as compiled:
    # backends record it (ONNX metadata) without reading files or calling the compiler.
    sources: dict[str, str] = Field(default_factory=dict, exclude=True)

    # -- reading ---------------------------------------------------------------------
    @property
    def output_shape(self) -> Shape | None:
        return self.nodes[self.output].shape if self.output else None

    def node(self, name: str) -> Node:
        return self.nodes[name]

    def consumers(self) -> dict[str, list[str]]:
        """name -> the nodes that read it, in program order."""
        out: dict[str, list[str]] = {name: [] for name in self.nodes}
        for node in self.nodes.values():
            for src in node.inputs:
                out[src].append(node.name)
        return out

    def graph(self):
        """The nodes as a networkx MultiDiGraph; edge key and attribute `index` = input slot."""
        import networkx as nx

        g = nx.MultiDiGraph(name=self.name)
        for node in self.nodes.values():
            g.add_node(node.name, node=node)
        for node in self.nodes.values():
            for index, src in enumerate(node.inputs):
                g.add_edge(src, node.name, key=index, index=index)
        return g

    def stage_nodes(self, stage: str) -> list[Node]:
        return [n for n in self.nodes.values() if n.stage == stage]

    def block_nodes(self, block: str) -> list[Node]:
        return [n for n in self.nodes.values() if n.block == block]

    # -- invariants ------------------------------------------------------------------
    def lint(self, *, checked: bool = True) -> None:
        """Raise `AssertionError` if an invariant is broken (an rnetc bug, not a user error).

        Every input precedes its reader, so program order is a topological order and the
        graph is acyclic; every node reads as many inputs as its op's arity says; the
        output is the one node nobody reads; blocks and stages agree with the nodes.
        The compiler lints after lowering (`checked=False`: shapes are not known yet)
        and again at the end, when every node must have a shape.
        """
        seen: set[str] = set()
        read: set[str] = set()
        inputs = [n for n in self.nodes.values() if n.op == "input"]
        _check(len(inputs) == 1, f"expected one input node, found {len(inputs)}")
        # Messages are built only for a broken invariant: lint runs twice per compile.
        for name, node in self.nodes.items():
            if name != node.name:
                _fail(f"node stored as {name!r} is named {node.name!r}")
            for src in node.inputs:
                if src not in seen:
                    _fail(f"{name} reads {src}, which does not precede it")
            arity = type(node).arity
            count = len(node.inputs)
            if (count < 2) if arity is None else (count != arity):
                _fail(f"{name} ({node.op}) has {count} inputs, expected "
                      f"{'two or more' if arity is None else arity}")
            if checked and node.shape is None:
                _fail(f"{name} has no shape")
            if node.block is not None and node.block not in self.blocks:
                _fail(f"{name} is in unknown block {node.block}")
            seen.add(name)
            read.update(node.inputs)
        sinks = [n for n in self.nodes if n not in read]
        _check(sinks == [self.output], f"expected the single sink {self.output}, found {sinks}")
        for block in self.blocks.values():
            _check(block.stage in self.stages, f"block {block.name} in unknown stage")
            _check(block.input in self.nodes and block.fork in self.nodes,
                   f"block {block.name} reads unknown nodes")
            if block.residual:
                _check(block.add in self.nodes, f"block {block.name} has no add node")
        for stage in self.stages.values():
            _check(len(stage.blocks) == stage.repeats, f"stage {stage.name} block count")


def _check(ok: bool, message: str) -> None:
    if not ok:
        _fail(message)


def _fail(message: str) -> None:
    raise AssertionError(f"IR lint: {message}")
