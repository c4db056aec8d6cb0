"""The graph IR: typed layer nodes (`nodes`), the network container (`graph`), a printer."""

from resnet_dsl.ir.graph import BlockInfo, Network, StageInfo, Totals
from resnet_dsl.ir.nodes import Node, Shape

__all__ = ["BlockInfo", "Network", "Node", "Shape", "StageInfo", "Totals"]
