"""Pass: infer every node's output shape, with PyTorch's exact size arithmetic.

Each op's shape rule lives with its node class (`ir/nodes.py`, `infer`); this pass runs
them in program order. A node whose input shape is unknown (an earlier error) stays
unknown, so one mistake gives one message. The rules report layers that need a flat or a
spatial input (E305), groups that do not divide the channels (E303) and feature maps
that shrink below 1x1 (E304).
"""

from __future__ import annotations

from resnet_dsl.errors import Diagnostic
from resnet_dsl.ir.graph import Network
from resnet_dsl.ir.nodes import ShapeError
from resnet_dsl.limits import Limits


def infer_shapes(net: Network, diags: list[Diagnostic], limits: Limits) -> None:
    nodes = net.nodes
    for node in nodes.values():
        if node.op == "input":
            continue
        shapes = [nodes[i].shape for i in node.inputs]
        shape = None
        if None not in shapes:
            try:
                shape = node.infer(shapes)  # type: ignore[arg-type]
            except ShapeError as exc:  # once per statement: a split's parts fail alike
                if not diags or diags[-1] != exc.diagnostic:
                    diags.append(exc.diagnostic)
        # Stored as NodeBase.__setattr__ would store it, without the call (a deep net has
        # thousands of nodes and this pass and the next touch each one).
        node.__dict__["shape"] = shape
        node.__pydantic_fields_set__.add("shape")
