"""What a diagram shows: the IR grouped into boxes, clusters and edges (no graphviz here).

Collapsed view (the default), for reading a whole network at a glance:
  - the stem, the head and any layers between stages are one box each, a line per step;
  - each stage is a cluster; its first block (the one that changes the shape and carries
    the projection or zero-pad shortcut) is drawn as its own block, and the remaining
    repeats as one more block marked `x(n-1)`. A block is drawn as boxes for its parts
    (pre-activation, residual branch, shortcut, addition, after the addition), so the
    shortcut and the `+` it joins at stay visible;
  - a side branch (`branch ... mul`: an SE or ECA gate) is one box of its own beside the
    path it leaves from, named after its scope (`se · gate`), and its `mul` a `×` circle
    on that path: the gate's box reads the path and feeds the `×`, as a shortcut does
    the `+`;
  - a `split`'s parts are boxes side by side (`part 1/4`, its layers), each read from the
    path where it splits and feeding a `cat` circle where they are concatenated (an
    `add_previous` is the edge from one part into the next); the path goes on after it;
  - consecutive repeats only share a box when they look alike (same block, arguments,
    shortcut kind and shapes). The compiler makes the repeats after the first alike, so
    this is one run today; the check keeps a stage that breaks the rule from being drawn
    wrongly (it would be split into as many runs as it needs).
Expanded view: one box per layer, addition and multiplication, blocks as clusters inside
their stage and each gate's layers a cluster of their own inside the block.

The plan is plain data, so the emitter (emit.py) stays a thin translation and tests can
check the grouping without graphviz.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from resnet_dsl.backends.graphviz import labels
from resnet_dsl.ir import nodes as ir
from resnet_dsl.ir.graph import Network, StageInfo
from resnet_dsl.ir.shortcuts import SHORTCUTS
from resnet_dsl.ir.signature import format_shape
from resnet_dsl.ir.structure import ancestors, roles

Role = Literal["input", "output", "stem", "head", "body", "pre", "main", "shortcut", "add", "post",
               "gate", "mul", "part", "cat"]
EdgeKind = Literal["main", "gate", "identity", "zeropad", "proj", "avgproj"]

SHORTCUT_WORDS = {kind: s.word for kind, s in SHORTCUTS.items()}


@dataclass
class Box:
    """One drawn node. `members` are the IR nodes it shows (of the run's first block)."""

    id: str
    role: Role
    members: list[ir.NodeBase]
    cluster: str | None
    header: str | None = None
    badge: str | None = None          # `x22` on a box that stands for 22 blocks
    shortcut: str | None = None       # the shortcut kind, for role "shortcut"
    tooltip: str = ""
    beside: str | None = None         # a `×`: its gate's last box, drawn level with it
    in_shape: tuple[int, ...] | None = None
    out_shape: tuple[int, ...] | None = None


@dataclass
class Cluster:
    id: str
    role: Literal["stem", "stage", "block", "gate", "head"]
    parent: str | None
    title: str
    subtitle: str = ""
    children: list[tuple[str, str]] = field(default_factory=list)  # ("box" | "cluster", id)


@dataclass
class Edge:
    src: str
    dst: str
    kind: EdgeKind
    label: str | None = None


@dataclass
class Plan:
    title: str
    subtitle: str
    boxes: dict[str, Box]
    clusters: dict[str, Cluster]
    top: list[tuple[str, str]]        # ("box" | "cluster", id) in program order
    edges: list[Edge]
    shortcut_kinds: list[str]         # the shortcut kinds drawn, in SHORTCUT_WORDS order


def plan(net: Network, *, expand: bool = False, shapes: bool = True) -> Plan:
    """Group a checked network for drawing.

    >>> from resnet_dsl.compiler import compile_network
    >>> net = compile_network('specs/resnet18.rnet')
    >>> p = plan(net)
    >>> [b.badge for b in p.boxes.values() if b.badge]
    ['x1', 'x1', 'x1', 'x1']
    >>> p.shortcut_kinds
    ['identity', 'proj']
    """
    return _Planner(net, expand, shapes).build()


def runs_of(net: Network, stage: StageInfo, block_shapes: dict[str, tuple]) -> list[list[str]]:
    """A stage's blocks in runs drawn as one: the first block alone, then runs of alike blocks.

    `block_shapes` maps a block to its output shape (`block_output_shapes`).
    """
    first, *rest = stage.blocks
    out: list[list[str]] = [[first]]
    previous = None  # the signature of the run being extended; None: start a new run
    for name in rest:
        block = net.blocks[name]
        sig = (block.definition, block.shortcut, net.nodes[block.input].shape,
               block_shapes[name], tuple(sorted(block.args.items())))
        if sig == previous:
            out[-1].append(name)
        else:
            out.append([name])
        previous = sig
    return out


@dataclass
class Gate:
    """A side branch of a block: `nodes` compute the gate that `mul` scales the path by.

    `index` counts the block's gates in program order (the path is drawn in segments
    between them); `scope` is the named scope holding the gate's layers (`se`), if any.
    """

    mul: str
    nodes: list[str]
    index: int
    scope: str | None

    @property
    def header(self) -> str:
        return f"{self.scope} · gate" if self.scope else "gate"


def gates(net: Network) -> dict[str, Gate]:
    """Each gate node and each gate's `mul` -> its gate, read from the edges: a `mul`
    reads (x, gate), and the gate's nodes are what its second input reads, inside the
    block, that x does not. A gate inside a gate belongs to the outer one.

    >>> from resnet_dsl.compiler import compile_network
    >>> net = compile_network('specs/zoo/seresnet50.rnet')
    >>> g = gates(net)["layer1.0.mul"]
    >>> g.scope, [n.rsplit(".", 1)[1] for n in g.nodes]
    ('se', ['0', 'fc1', '2', 'fc2', '4'])
    """
    members: dict[str, set[str]] = {}
    muls: list[ir.NodeBase] = []
    order = {name: i for i, name in enumerate(net.nodes)}
    for node in net.nodes.values():
        if node.block is not None:
            members.setdefault(node.block, set()).add(node.name)
            if node.op == "mul":
                muls.append(node)
    found: dict[str, Gate] = {}
    for mul in reversed(muls):  # outer gates first: an inner one is left inside them
        if mul.name in found:
            continue
        inside = members[mul.block]
        mine = ancestors(net, mul.inputs[1], inside) - ancestors(net, mul.inputs[0], inside)
        nodes = sorted(mine, key=order.__getitem__)
        scopes = {net.nodes[n].path[0] if len(net.nodes[n].path) > 1 else None for n in nodes}
        gate = Gate(mul.name, nodes, 0, scopes.pop() if len(scopes) == 1 else None)
        for name in (*nodes, mul.name):
            found[name] = gate
    index: dict[str, int] = {}
    for mul in muls:
        gate = found[mul.name]
        if gate.mul == mul.name:
            gate.index = index[mul.block] = index.get(mul.block, -1) + 1
    return found


def _suffix(segment: int) -> str:
    """The ids of a block's boxes after its first gate: `main.1`, `gate.1` (none before it)."""
    return f".{segment}" if segment else ""


def block_output_shapes(net: Network) -> dict[str, tuple]:
    """Each block's output shape: that of its last node (one pass over the network)."""
    return {node.block: node.shape for node in net.nodes.values() if node.block is not None}


class _Planner:
    def __init__(self, net: Network, expand: bool, shapes: bool) -> None:
        self.net, self.expand, self.shapes = net, expand, shapes
        self.boxes: dict[str, Box] = {}
        self.clusters: dict[str, Cluster] = {}
        self.top: list[tuple[str, str]] = []
        self.box_of: dict[str, str] = {}      # IR node -> box id
        self.run_of: dict[str, str] = {}      # block -> run id
        self.runs: dict[str, list[str]] = {}  # run id -> its blocks
        self.block_shapes: dict[str, tuple] | None = None
        self.roles = roles(net)               # IR node -> pre/main/shortcut/add/post
        self.gates = gates(net)               # gate node or its `mul` -> the gate
        self.segment: dict[str, int] = {}     # block -> gates passed so far (program order)
        self.add_segment: dict[str, int] = {} # block -> the segment its addition is in
        self.headed: set[str] = set()         # blocks whose name heads a box already
        self.part: dict[str, int | None] = {} # block -> the split part being drawn
        self.splits: dict[str, int] = {}      # block -> splits passed so far

    # -- boxes ------------------------------------------------------------------------
    def build(self) -> Plan:
        net = self.net
        segment, in_stage = 0, False
        for node in net.nodes.values():
            if node.op == "input":
                self._add(node, "input", "input", None, header="input")
            elif node.section in ("stem", "head"):
                role = node.section
                if self.expand:
                    self._cluster(role, role, None, role)
                    self._add(node, node.name, role, role)
                else:
                    self._add(node, role, role, None, header=role)
            elif node.stage is None:  # layers written between stages
                segment += in_stage
                in_stage = False
                self._add(node, node.name if self.expand else f"body{segment}", "body", None)
            else:
                in_stage = True
                self._stage_node(node)
        out_id = "output"
        self.boxes[out_id] = Box(out_id, "output", [], None, header="output")
        self.top.append(("box", out_id))
        for box in self.boxes.values():
            if box.members:
                first = box.members[0]
                box.in_shape = net.nodes[first.inputs[0]].shape if first.inputs else None
                box.out_shape = box.members[-1].shape
        edges = self._edges()
        for edge in edges:
            if edge.kind == "gate" and self.boxes[edge.dst].role == "mul":
                self.boxes[edge.dst].beside = edge.src
        drawn = {edge.kind for edge in edges}
        kinds = [k for k in SHORTCUT_WORDS if k in drawn]
        t = net.totals
        subtitle = (f"{t.params:,} parameters · {labels.count(t.macs)} MACs · "
                    f"input {format_shape(net.input_shape)} {labels.ARROW} "
                    f"output {format_shape(net.output_shape)}")
        return Plan(net.name, subtitle, self.boxes, self.clusters, self.top, edges, kinds)

    def _stage_node(self, node: ir.NodeBase) -> None:
        net = self.net
        stage = net.stages[node.stage]
        if stage.name not in self.clusters:
            self._stage_cluster(stage)
        block = net.blocks[node.block]
        role: Role = self.roles[node.name] or "main"
        gate = self.gates.get(node.name)
        if gate is not None:
            role = "mul" if gate.mul == node.name else "gate"
        shortcut = block.shortcut if role == "shortcut" else None
        # Each gate's `mul` ends a segment of the path: what follows it is drawn after the
        # `×`, in boxes of their own, so the path never runs back into a box it left.
        segment = self.segment.get(block.name, 0)
        part = self.part.get(block.name)
        if node.op == "slice":   # a split's part starts: boxes side by side until the `cat`
            part = self.part[block.name] = node.part  # type: ignore[attr-defined]
            if node.part == 0:  # type: ignore[attr-defined]
                self.splits[block.name] = self.splits.get(block.name, 0) + 1
        elif node.op == "cat" and part is not None:
            self.part[block.name] = part = None
            role = "cat"
            self.segment[block.name] = segment + 1   # the path goes on in new boxes
        if part is not None and role not in ("gate", "mul"):
            role = "part"
        if role == "mul":
            self.segment[block.name] = segment + 1
        elif node.name == block.add:
            self.add_segment[block.name] = segment
        if self.expand:
            header = None
            cluster = block.name
            if block.name not in self.clusters:
                what = SHORTCUT_WORDS[block.shortcut]
                subtitle = f"{block.definition} · {what} shortcut" if block.residual else block.definition
                self._cluster(block.name, "block", stage.name, block.name, subtitle)
            if role == "gate":
                cluster = f"{block.name}/gate{_suffix(gate.index)}"
                if cluster not in self.clusters:  # the gate's name heads its first layer
                    self._cluster(cluster, "gate", block.name, gate.header)
                    header = gate.header
            elif role != "mul" and block.name not in self.headed:
                # The block's name heads its first layer (not a gate's): a label of the
                # cluster itself would sit where the edge into the block runs.
                self.headed.add(block.name)
                header = f"{block.name} · {block.definition}"
            self._add(node, node.name, role, cluster, header=header, shortcut=shortcut)
            return
        run_id = self.run_of[block.name]
        run = self.runs[run_id]
        if role == "post":  # `+ relu`: the addition and what follows it share one small box
            if self.add_segment.get(block.name) == segment:
                role = "add"
        elif role == "pre" and not (block.shortcut in ("proj", "avgproj") and block.fork != block.input):
            role = "main"  # the pre-activation gets a box of its own only where a shortcut forks off it
        if role == "part":
            box_id = f"{run_id}/split{self.splits[block.name]}.{part}"
        elif role == "cat":
            box_id = f"{run_id}/cat{self.splits[block.name]}"
        elif role in ("gate", "mul"):
            box_id = f"{run_id}/{role}{_suffix(gate.index)}"
        elif role in ("shortcut", "add"):  # one of each in a block
            box_id = f"{run_id}/{role}"
        else:
            box_id = f"{run_id}/{role}{_suffix(segment)}"
        if block.name != run[0] and box_id in self.boxes:
            self.box_of[node.name] = box_id  # a later repeat: drawn by the run's first block
            return
        header = badge = None
        if role in ("main", "part") and block.name not in self.headed:  # its first box
            self.headed.add(block.name)
            if block.index == 0:
                header = f"{block.name} · {block.definition}"
            else:
                badge = f"x{len(run)}"
                header = run[0] if len(run) == 1 else f"{run[0]} … {run[-1]}"
        elif role == "add":
            header = "+"
        elif role == "gate":
            header = gate.header
        elif role == "shortcut" and block.shortcut != "zeropad":  # `zero-pad /2, 16→32` says it
            header = SHORTCUT_WORDS[block.shortcut]
        tooltip = run[0] if len(run) == 1 else f"{run[0]} … {run[-1]} ({len(run)} blocks)"
        if role == "gate":
            tooltip = f"{gate.header}: {tooltip}"
        self._add(node, box_id, role, stage.name, header=header, badge=badge,
                  shortcut=shortcut, tooltip=tooltip)

    def _stage_cluster(self, stage: StageInfo) -> None:
        net = self.net
        members = net.stage_nodes(stage.name)
        params = sum(n.params for n in members)
        subtitle = (f"stride {stage.stride} · out {format_shape(members[-1].shape)} · "
                    f"{labels.count(params)} params")
        self._cluster(stage.name, "stage", None, f"{stage.name}: {stage.repeats} x {stage.block}",
                      subtitle)
        if self.block_shapes is None:
            self.block_shapes = block_output_shapes(net)
        for run in runs_of(net, stage, self.block_shapes):
            run_id = run[0] if len(run) == 1 else f"{run[0]}-{net.blocks[run[-1]].index}"
            self.runs[run_id] = run
            for name in run:
                self.run_of[name] = run_id

    def _cluster(self, cid: str, role, parent: str | None, title: str, subtitle: str = "") -> None:
        if cid in self.clusters:
            return
        self.clusters[cid] = Cluster(cid, role, parent, title, subtitle)
        (self.clusters[parent].children if parent else self.top).append(("cluster", cid))

    def _add(self, node: ir.NodeBase, box_id: str, role: Role, cluster: str | None, *,
             header: str | None = None, badge: str | None = None, shortcut: str | None = None,
             tooltip: str = "") -> None:
        self.box_of[node.name] = box_id
        box = self.boxes.get(box_id)
        if box is None:
            box = Box(box_id, role, [], cluster, header=header, badge=badge, shortcut=shortcut,
                      tooltip=tooltip or node.name)
            self.boxes[box_id] = box
            (self.clusters[cluster].children if cluster else self.top).append(("box", box_id))
        box.members.append(node)

    # -- edges ------------------------------------------------------------------------
    def _edges(self) -> list[Edge]:
        net = self.net
        seen: dict[tuple[str, str, str], Edge] = {}
        for node in net.nodes.values():
            dst = self.box_of[node.name]
            for slot, src_name in enumerate(node.inputs):
                src = self.box_of[src_name]
                if src == dst or self._inside_run(net.nodes[src_name], node):
                    continue
                kind: EdgeKind = "main"
                gate = self.gates.get(node.name)
                if gate is not None and (gate.mul != node.name or slot == 1):
                    kind = "gate"  # into the gate's layers, and from them into the `×`
                elif node.block is not None:
                    block = net.blocks[node.block]
                    if self.roles[node.name] == "shortcut" or (node.name == block.add and slot == 1):
                        kind = block.shortcut  # type: ignore[assignment]
                key = (src, dst, kind)
                if key not in seen:
                    into_part = self.boxes[dst].role == "part" and self.boxes[src].role != "part"
                    # (a split's edges into its parts: the part's first line says its size)
                    seen[key] = Edge(src, dst, kind,
                                     None if into_part else self._label(self.boxes[src], kind))
        last = self.box_of[net.output]
        label = format_shape(net.output_shape) if self.shapes else None
        seen[(last, "output", "main")] = Edge(last, "output", "main", label)
        return list(seen.values())

    def _inside_run(self, src: ir.NodeBase, dst: ir.NodeBase) -> bool:
        """An edge from one repeat to the next inside a run drawn as one block: not drawn."""
        if self.expand or src.block is None or dst.block is None or src.block == dst.block:
            return False
        return self.run_of[src.block] == self.run_of[dst.block]

    def _label(self, src: Box, kind: str) -> str | None:
        """Shapes go on the residual path, where they change (and out of the input)."""
        if not self.shapes or kind != "main":
            return None
        if src.role == "input" or src.in_shape != src.out_shape:
            return format_shape(src.out_shape)
        return None
