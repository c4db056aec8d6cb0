"""The IR container: a network's nodes in program order, its stages and blocks.

`Network.nodes` is ordered (a valid topological order, the order the spec wrote the
layers in); `Network.graph()` gives the same nodes as a `networkx.MultiDiGraph` whose
edges carry each input's position. Stages and blocks record the spec's structure, which
the backends mirror (torchvision's `layer1.0.downsample.0` naming comes from here).
`lint()` checks the invariants every pass may rely on.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from resnet_dsl.errors import Span
from resnet_dsl.ir.nodes import Node, Shape

ShortcutPolicy = Literal["identity", "zeropad", "proj", "proj_all", "avgproj"]
ShortcutKind = Literal["identity", "zeropad", "proj", "avgproj", "none"]

Value = bool | int | float


class BlockInfo(BaseModel):
    """One instance of a block in a stage (`layer2.0`)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    stage: str
    index: int
    definition: str
    args: dict[str, Value] = Field(default_factory=dict)
    stride: int = 1
    input: str
    fork: str
    add: str | None = None
    residual: bool = True
    shortcut: ShortcutKind = "identity"
    proj_bn: bool = True
    span: Span | None = None


class StageInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    index: int
    repeats: int
    block: str
    policy: ShortcutPolicy
    stride: int
    blocks: list[str] = Field(default_factory=list)
    span: Span | None = None


class Totals(BaseModel):
    params: int = 0
    macs: int = 0
    activations: int = 0  # elements of all layer outputs, one image, forward


class Network(BaseModel):
    """A lowered network. Built by `frontend.lower`, completed by `passes`."""

    model_config = ConfigDict(extra="forbid")

    name: str
    file: str
    span: Span | None = None
    arguments: dict[str, Value] = Field(default_factory=dict)
    input_shape: Shape | None = None
    nodes: dict[str, Node] = Field(default_factory=dict)
    stages: dict[str, StageInfo] = Field(default_factory=dict)
    blocks: dict[str, BlockInfo] = Field(default_factory=dict)
    output: str | None = None
    totals: Totals = Field(default_factory=Totals)

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
    def lint(self) -> None:
        """Raise `AssertionError` if an invariant is broken (an rnetc bug, not a user error).

        Every input precedes its reader, so program order is a topological order and the
        graph is acyclic; the output is the one node nobody reads.
        """
        seen: set[str] = set()
        read: set[str] = set()
        inputs = [n for n in self.nodes.values() if n.op == "input"]
        _check(len(inputs) == 1, f"expected one input node, found {len(inputs)}")
        for name, node in self.nodes.items():
            _check(name == node.name, f"node stored as {name!r} is named {node.name!r}")
            for src in node.inputs:
                _check(src in seen, f"{name} reads {src}, which does not precede it")
            expected = {"input": 0, "add": 2}.get(node.op, 1)
            _check(len(node.inputs) == expected,
                   f"{name} ({node.op}) has {len(node.inputs)} inputs, expected {expected}")
            _check(node.shape is not None, f"{name} has no shape")
            seen.add(name)
            read.update(node.inputs)
        sinks = [n for n in self.nodes if n not in read]
        _check(sinks == [self.output], f"expected the single sink {self.output}, found {sinks}")
        for block in self.blocks.values():
            _check(block.stage in self.stages, f"block {block.name} in unknown stage")
            if block.residual:
                _check(block.add in self.nodes, f"block {block.name} has no add node")
        for stage in self.stages.values():
            _check(len(stage.blocks) == stage.repeats, f"stage {stage.name} block count")


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise AssertionError(f"IR lint: {message}")
