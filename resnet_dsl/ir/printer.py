"""Text forms of the IR: one line per node (`rnetc ir`), and short node descriptions.

    %layer1.0.conv1 = conv(%maxpool) 3x3 pad 1, 64->64      64x56x56   36,864  115,605,504

The format is stable: tests keep golden copies of it.
"""

from __future__ import annotations

from resnet_dsl.ir import nodes as ir
from resnet_dsl.ir.graph import Network
from resnet_dsl.ir.signature import format_shape


def describe(node: ir.NodeBase, in_channels: int | None = None) -> str:
    """A short human description of what a node computes, e.g. `conv 3x3/2, 64->128`
    (each op's own `describe`, `ir/nodes.py`)."""
    return node.describe(in_channels)


def in_channels(net: Network, node: ir.NodeBase) -> int | None:
    if not node.inputs:
        return None
    shape = net.nodes[node.inputs[0]].shape
    return shape[0] if shape else None


def format_args(values: dict) -> str:
    """`depth=50, k=2, drop=0.3, pre=true`: arguments as the spec writes them."""
    def fmt(v):
        return ("true" if v else "false") if isinstance(v, bool) else f"{v:g}" if isinstance(v, float) else str(v)
    return ", ".join(f"{k}={fmt(v)}" for k, v in values.items())


def format_ir(net: Network) -> str:
    """The whole network, one node per line, with stage and block headers."""
    out = [f"network {net.name} ({net.file})"]
    if net.arguments:
        out.append(f"  arguments: {format_args(net.arguments)}")
    out.append(f"  input {format_shape(net.input_shape)} -> output {format_shape(net.output_shape)}")
    out.append(f"  {net.totals.params:,} parameters, {net.totals.macs:,} MACs, "
               f"{net.totals.activations:,} activations")
    width = max((len(n) for n in net.nodes), default=10) + 1
    stage = block = None
    for node in net.nodes.values():
        if node.stage != stage and node.stage is not None:
            info = net.stages[node.stage]
            out.append(f"\nstage {info.name}: {info.repeats} x {info.block}, stride {info.stride}, "
                       f"shortcut {info.policy}")
        if node.block != block and node.block is not None:
            b = net.blocks[node.block]
            out.append(f"  block {b.name}: {b.definition}({format_args(b.args)}), shortcut {b.shortcut}")
        if node.stage is None and stage is not None:
            out.append("")
        stage, block = node.stage, node.block
        inputs = ", ".join(f"%{i}" for i in node.inputs)
        lhs = f"%{node.name}".ljust(width)
        head, _, tail = describe(node, in_channels(net, node)).partition(" ")
        desc = f"{head}({inputs}) {tail}".rstrip()
        line = f"{lhs} = {desc:<58} {format_shape(node.shape):>12}"
        if node.params or node.macs:
            line += f" {node.params:>12,} {node.macs:>15,}"
        out.append(line.rstrip())
    return "\n".join(out) + "\n"
