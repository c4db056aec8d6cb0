"""The passes that complete a lowered network, in the order they run.

Each pass is `pass(network, diagnostics, limits) -> None`: it annotates or rewrites
the IR in place and appends what it finds wrong to `diagnostics`.
"""

from resnet_dsl.passes.costs import count_costs
from resnet_dsl.passes.shapes import infer_shapes
from resnet_dsl.passes.shortcuts import resolve_shortcuts

PIPELINE = (
    infer_shapes,        # C,H,W of every layer; E303 E304 E305
    resolve_shortcuts,   # identity / zero-pad / projection per policy; E301 E302
    count_costs,         # parameters, MACs, activations; E601 for the totals
)

__all__ = ["PIPELINE", "count_costs", "infer_shapes", "resolve_shortcuts"]
