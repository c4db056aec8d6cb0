"""Pass: infer every node's output shape, with PyTorch's exact size arithmetic.

A node whose input shape is unknown (an earlier error) stays unknown, so one mistake
gives one message. Reports layers that need a flat or a spatial input (E305), groups
that do not divide the channels (E303) and feature maps that shrink below 1x1 (E304).
"""

from __future__ import annotations

import math

from resnet_dsl.errors import Diagnostic, with_trace
from resnet_dsl.ir import nodes as ir
from resnet_dsl.ir.graph import Network
from resnet_dsl.limits import Limits


def show_shape(shape: tuple[int, ...] | None) -> str:
    return "x".join(str(s) for s in shape) if shape else "?"


def node_error(node: ir.NodeBase, code: str, message: str, help: str | None = None) -> Diagnostic:
    return with_trace(Diagnostic(code, message, node.span, help), node.trace)


def conv_size(size: int, kernel: int, stride: int, padding: int, dilation: int = 1) -> int:
    """torch.nn.Conv2d's output size (may be < 1: the caller reports it)."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def pool_size(size: int, kernel: int, stride: int, padding: int, ceil_mode: bool) -> int:
    """torch's pooling_output_shape, including the ceil-mode rule that the last window
    must start inside the input or its left padding."""
    numerator = size + 2 * padding - (kernel - 1) - 1 + (stride - 1 if ceil_mode else 0)
    out = numerator // stride + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


def infer_shapes(net: Network, diags: list[Diagnostic], limits: Limits) -> None:
    for node in net.nodes.values():
        if node.op == "input":
            continue
        shapes = [net.nodes[i].shape for i in node.inputs]
        if any(s is None for s in shapes):
            node.shape = None
            continue
        try:
            node.shape = output_shape(node, shapes)  # type: ignore[arg-type]
        except _ShapeError as exc:
            node.shape = None
            diags.append(exc.diagnostic)


class _ShapeError(Exception):
    def __init__(self, diagnostic: Diagnostic):
        self.diagnostic = diagnostic


def _need_spatial(node: ir.NodeBase, shape: tuple[int, ...], what: str) -> tuple[int, int, int]:
    if len(shape) != 3:
        raise _ShapeError(node_error(
            node, "E305", f"{what} needs a CxHxW feature map, but its input is flat ({shape[0]})",
            "move it before `flatten`"))
    return shape  # type: ignore[return-value]


def output_shape(node: ir.NodeBase, shapes: list[tuple[int, ...]]) -> tuple[int, ...]:
    """The output shape of one node given its inputs' shapes."""
    shape = shapes[0]
    op = node.op
    if op == "conv":
        assert isinstance(node, ir.Conv)
        c, h, w = _need_spatial(node, shape, "`conv`")
        if c % node.groups or node.out_channels % node.groups:
            raise _ShapeError(node_error(
                node, "E303", f"groups={node.groups} must divide both the input channels ({c}) "
                f"and the output channels ({node.out_channels})",
                _groups_help(c, node.out_channels, node.groups)))
        size = tuple(conv_size(s, k, st, p, d) for s, k, st, p, d in
                     zip((h, w), node.kernel, node.stride, node.padding, node.dilation))
        _check_size(node, (c, h, w), size)
        return (node.out_channels, *size)
    if op == "pool":
        assert isinstance(node, ir.Pool)
        c, h, w = _need_spatial(node, shape, f"`{node.kind}pool`")
        size = tuple(pool_size(s, k, st, p, node.ceil_mode) for s, k, st, p in
                     zip((h, w), node.kernel, node.stride, node.padding))
        _check_size(node, (c, h, w), size)
        return (c, *size)
    if op == "global_pool":
        c, _, _ = _need_spatial(node, shape, "a global pool")
        return (c, 1, 1)
    if op == "flatten":
        return (math.prod(shape),)
    if op == "fc":
        assert isinstance(node, ir.Linear)
        if len(shape) != 1:
            raise _ShapeError(node_error(
                node, "E305", f"`fc` needs a flat input, but its input is {show_shape(shape)}",
                "add `flatten` before it" + ("" if shape[1:] == (1, 1) else
                                             " (usually after `avgpool global`)")))
        return (node.out_features,)
    if op == "zeropad":
        assert isinstance(node, ir.ZeroPad)
        c, h, w = shape
        return (node.out_channels, -(-h // node.stride), -(-w // node.stride))
    # bn, act, dropout, add: shape-preserving
    return shape


def _check_size(node: ir.NodeBase, before: tuple[int, int, int], size: tuple[int, ...]) -> None:
    if min(size) < 1:
        raise _ShapeError(node_error(
            node, "E304", f"the feature map collapses: this layer turns {show_shape(before)} into "
            f"{'x'.join(str(max(s, 0)) for s in size)}",
            "use a larger input (--input CxHxW), or fewer stride-2 layers"))


def _groups_help(c: int, out: int, groups: int) -> str:
    g = math.gcd(c, out)
    fits = [d for d in range(1, min(g, 4 * groups) + 1) if g % d == 0]
    below = max(d for d in fits if d <= groups)
    above = [d for d in fits if d > groups]
    options = [below] + above[:1]
    return " or ".join(f"groups={d}" for d in options) + " would fit"
