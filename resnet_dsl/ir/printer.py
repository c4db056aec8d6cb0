"""Text forms of the IR: one line per node (`rnetc ir`), and short node descriptions.

    %layer1.0.conv1 = conv(%maxpool) 3x3 pad 1, 64->64      64x56x56   36,864  115,605,504

The format is stable: tests keep golden copies of it.
"""

from __future__ import annotations

from resnet_dsl.ir import nodes as ir
from resnet_dsl.ir.graph import Network


def shape_str(shape: tuple[int, ...] | None) -> str:
    return "x".join(str(s) for s in shape) if shape else "?"


def _pair(p: tuple[int, int]) -> str:
    return str(p[0]) if p[0] == p[1] else f"{p[0]}x{p[1]}"


def describe(node: ir.NodeBase, in_channels: int | None = None) -> str:
    """A short human description of what a node computes, e.g. `conv 3x3/2, 64->128`."""
    if isinstance(node, ir.InputNode):
        return "input"
    if isinstance(node, ir.Conv):
        text = f"conv {node.kernel[0]}x{node.kernel[1]}"
        if node.stride != (1, 1):
            text += f"/{_pair(node.stride)}"
        expected_pad = tuple(d * (k - 1) // 2 for k, d in zip(node.kernel, node.dilation))
        if node.padding != expected_pad:
            text += f" pad {_pair(node.padding)}"
        if node.dilation != (1, 1):
            text += f" dil {_pair(node.dilation)}"
        text += f", {in_channels}->{node.out_channels}" if in_channels else f", {node.out_channels}"
        if node.groups != 1:
            text += f", groups {node.groups}"
        if node.bias:
            text += ", bias"
        return text
    if isinstance(node, ir.BatchNorm):
        return "bn"
    if isinstance(node, ir.Activation):
        return f"leaky_relu {node.slope:g}" if node.kind == "leaky_relu" else node.kind
    if isinstance(node, ir.Pool):
        text = f"{node.kind}pool {node.kernel[0]}x{node.kernel[1]}"
        if node.stride != node.kernel:
            text += f"/{_pair(node.stride)}"
        if node.padding != (0, 0):
            text += f" pad {_pair(node.padding)}"
        if node.ceil_mode:
            text += " ceil"
        if node.kind == "avg" and not node.count_include_pad:
            text += " excl-pad"
        return text
    if isinstance(node, ir.GlobalPool):
        return f"{node.kind}pool global"
    if isinstance(node, ir.Dropout):
        return f"dropout {node.p:g}"
    if isinstance(node, ir.Flatten):
        return "flatten"
    if isinstance(node, ir.Linear):
        text = f"fc {in_channels}->{node.out_features}" if in_channels else f"fc {node.out_features}"
        return text if node.bias else text + ", no bias"
    if isinstance(node, ir.Add):
        return "add"
    if isinstance(node, ir.ZeroPad):
        return f"zeropad /{node.stride} -> {node.out_channels}"
    return node.op


def in_channels(net: Network, node: ir.NodeBase) -> int | None:
    if not node.inputs:
        return None
    shape = net.nodes[node.inputs[0]].shape
    return shape[0] if shape else None


def _args(values: dict) -> str:
    def fmt(v):
        return ("true" if v else "false") if isinstance(v, bool) else f"{v:g}" if isinstance(v, float) else str(v)
    return ", ".join(f"{k}={fmt(v)}" for k, v in values.items())


def format_ir(net: Network) -> str:
    """The whole network, one node per line, with stage and block headers."""
    out = [f"network {net.name} ({net.file})"]
    if net.arguments:
        out.append(f"  arguments: {_args(net.arguments)}")
    out.append(f"  input {shape_str(net.input_shape)} -> output {shape_str(net.output_shape)}")
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
            out.append(f"  block {b.name}: {b.definition}({_args(b.args)}), shortcut {b.shortcut}")
        if node.stage is None and stage is not None:
            out.append("")
        stage, block = node.stage, node.block
        inputs = ", ".join(f"%{i}" for i in node.inputs)
        lhs = f"%{node.name}".ljust(width)
        head, _, tail = describe(node, in_channels(net, node)).partition(" ")
        desc = f"{head}({inputs}) {tail}".rstrip()
        line = f"{lhs} = {desc:<58} {shape_str(node.shape):>12}"
        if node.params or node.macs:
            line += f" {node.params:>12,} {node.macs:>15,}"
        out.append(line.rstrip())
    return "\n".join(out) + "\n"
