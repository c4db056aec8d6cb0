"""The words on a diagram: layer lines, counts and shapes, short and readable.

A box that stands for several layers shows one line per "step": a conv (or pool, fc,
zero-pad) followed by the bn/activation/dropout/flatten that come right after it, e.g.
`conv 3x3/2, 64→128 · bn · relu`. That is how papers draw a block, and it keeps a
bottleneck to three lines.
"""

from __future__ import annotations

from resnet_dsl.ir import nodes as ir
from resnet_dsl.ir.graph import Network
from resnet_dsl.ir.printer import in_channels

ARROW = "→"


def layer_text(net: Network, node: ir.NodeBase) -> str:
    """One layer in words: the op's `label` (`conv 3x3/2, 64→128`)."""
    return node.label(in_channels(net, node))


def step_lines(net: Network, nodes: list[ir.NodeBase]) -> list[str]:
    """Layers grouped into lines, each led by a conv/pool/fc (an op whose `starts_line`);
    bn, activations, dropout and flatten join the line before.

    >>> from resnet_dsl.compiler import compile_network
    >>> net = compile_network('network t { input 3x8x8; conv 3x3 4; bn; relu; avgpool global }')
    >>> step_lines(net, list(net.nodes.values())[1:])
    ['conv 3x3, 3→4 · bn · relu', 'avgpool global']
    """
    lines: list[str] = []
    for node in nodes:
        text = layer_text(net, node)
        if lines and not node.starts_line:
            lines[-1] += f" · {text}"
        else:
            lines.append(text)
    return lines


def count(n: int) -> str:
    """A count in a few characters: 432, 23.5K, 7.1M, 1.2G.

    >>> count(432), count(23_456), count(7_098_368)
    ('432', '23.5K', '7.1M')
    """
    for size, unit in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)


def html(text: str) -> str:
    """Escape text for a graphviz HTML-like label."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
