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


def node_costs(node: ir.NodeBase, in_shape: tuple[int, ...] | None) -> tuple[int, int]:
    """(parameters, MACs) of one node, given its input's shape."""
    if node.shape is None or in_shape is None:
        return 0, 0
    if isinstance(node, ir.Conv):
        cin_per_group = in_shape[0] // node.groups
        kernel = node.kernel[0] * node.kernel[1]
        weights = node.out_channels * cin_per_group * kernel
        params = weights + (node.out_channels if node.bias else 0)
        macs = node.out_channels * cin_per_group * kernel * math.prod(node.shape[1:])
        return params, macs
    if isinstance(node, ir.BatchNorm):
        return 2 * in_shape[0], 0
    if isinstance(node, ir.Linear):
        params = in_shape[0] * node.out_features + (node.out_features if node.bias else 0)
        return params, in_shape[0] * node.out_features
    return 0, 0


def count_costs(net: Network, diags: list[Diagnostic], limits: Limits) -> None:
    totals = Totals()
    for node in net.nodes.values():
        in_shape = net.nodes[node.inputs[0]].shape if node.inputs else None
        node.params, node.macs = node_costs(node, in_shape)
        totals.params += node.params
        totals.macs += node.macs
        if node.op != "input" and node.shape is not None:
            totals.activations += math.prod(node.shape)
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
