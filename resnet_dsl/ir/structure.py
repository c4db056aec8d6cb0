"""A block's form, read from the graph's edges: which layers come before the fork, which
are the residual branch, the shortcut, the addition and what follows it.

Nothing is stored twice: the block records only where its `fork` and `add` are (the
spec's own markers); everything else follows from what reads what. Diagrams, summaries
and the editor's hover use these roles; the torch backend needs none of them.
"""

from __future__ import annotations

from typing import Literal

from resnet_dsl.ir.graph import BlockInfo, Network

Role = Literal["pre", "main", "shortcut", "add", "post"]


def ancestors(net: Network, start: str, members: set[str]) -> set[str]:
    """`start` and every node it reads, transitively, inside `members`."""
    out: set[str] = set()
    todo = [start]
    while todo:
        name = todo.pop()
        if name in out or name not in members:
            continue
        out.add(name)
        todo.extend(net.nodes[name].inputs)
    return out


def block_roles(net: Network, block: BlockInfo, members: list[str] | None = None) -> dict[str, Role]:
    """Each of the block's nodes -> its role.

    >>> from resnet_dsl.compiler import compile_network
    >>> net = compile_network('specs/resnet18.rnet')
    >>> roles = block_roles(net, net.blocks["layer2.0"])
    >>> [roles[n] for n in ("layer2.0.conv1", "layer2.0.downsample.0", "layer2.0.add", "layer2.0.relu_1")]
    ['main', 'shortcut', 'add', 'post']
    """
    names = members if members is not None else [n.name for n in net.block_nodes(block.name)]
    inside = set(names)
    if not block.residual or block.add is None or block.add not in inside:
        return {name: "main" for name in names}
    add = net.nodes[block.add]
    pre = ancestors(net, block.fork, inside) if block.fork != block.input else set()
    main = ancestors(net, add.inputs[0], inside) - pre
    shortcut = (ancestors(net, add.inputs[1], inside) - pre - main) if len(add.inputs) > 1 else set()
    roles: dict[str, Role] = {}
    for name in names:
        roles[name] = ("add" if name == block.add else "pre" if name in pre else "main"
                       if name in main else "shortcut" if name in shortcut else "post")
    return roles


def roles(net: Network) -> dict[str, Role | None]:
    """Every node -> its role in its block; None outside blocks."""
    members: dict[str, list[str]] = {}
    for node in net.nodes.values():
        if node.block is not None:
            members.setdefault(node.block, []).append(node.name)
    out: dict[str, Role | None] = {name: None for name in net.nodes}
    for block, names in members.items():
        out.update(block_roles(net, net.blocks[block], names))
    return out
