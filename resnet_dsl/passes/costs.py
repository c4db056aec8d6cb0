"""Pass: parameters, MACs and activation sizes of every node, and the network's totals.

Conventions (../shared/guides/REFERENCES.md, torchvision's `_ops` metadata): MACs are the
multiply-accumulates of convolutions and linear layers for one image; BatchNorm's affine
weight and bias count as parameters, its running statistics do not. Activations are the
elements of every layer's output for one image, forward only.
"""

from __future__ import annotations

import math

from resnet_dsl.errors import Diagnostic
from resnet_dsl.ir import nodes as ir
from resnet_dsl.ir.graph import Network, Totals
from resnet_dsl.limits import Limits, raise_hint


def node_costs(net: Network, node: ir.NodeBase) -> tuple[int, int]:
    """(parameters, MACs) of one node: its op's cost rule (`ir/nodes.py`), given its
    inputs' shapes; (0, 0) where a shape is unknown."""
    shapes = [net.nodes[i].shape for i in node.inputs]
    if node.shape is None or any(s is None for s in shapes):
        return 0, 0
    return node.cost(shapes)  # type: ignore[arg-type]


_COST_FIELDS = ("params", "macs")


def count_costs(net: Network, diags: list[Diagnostic], limits: Limits) -> None:
    params = macs = activations = 0
    nodes = net.nodes
    for node in nodes.values():
        shape = node.shape
        shapes = [nodes[i].shape for i in node.inputs]
        if shape is None or None in shapes:
            p, m = 0, 0
        else:
            p, m = node.cost(shapes)  # type: ignore[arg-type]
        fields = node.__dict__       # as NodeBase.__setattr__ stores them (infer_shapes)
        fields["params"] = p
        fields["macs"] = m
        node.__pydantic_fields_set__.update(_COST_FIELDS)
        params += p
        macs += m
        if shape is not None and node.op != "input":
            activations += math.prod(shape)
    totals = Totals.model_construct(params=params, macs=macs, activations=activations)
    net.totals = totals
    if totals.params > limits.max_params:
        diags.append(Diagnostic(
            "E601", f"the network has {totals.params:,} parameters; the limit is "
            f"{limits.max_params:,}", net.span, raise_hint("max_params")))
    if totals.activations * 4 > limits.max_activation_bytes:
        diags.append(Diagnostic(
            "E601", f"one image needs {totals.activations * 4 / 2**30:,.1f} GiB of activations; "
            f"the limit is {limits.max_activation_bytes / 2**30:,.1f} GiB", net.span,
            "use a smaller input (--input); " + raise_hint("max_activation_bytes")))
