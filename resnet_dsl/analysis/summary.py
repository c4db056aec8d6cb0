"""`rnetc summary`: a torchinfo-like table of layers, output shapes, parameters and MACs.

Depth 1 shows the network's own layers and one row per stage, depth 2 adds a row per
block, depth 3 every layer. Totals are exact (see passes/costs.py for the conventions).
"""

from __future__ import annotations

from dataclasses import dataclass

from resnet_dsl.ir.graph import Network
from resnet_dsl.ir.printer import describe, format_args, in_channels
from resnet_dsl.ir.signature import format_shape
from resnet_dsl.ir.structure import roles


@dataclass
class Row:
    name: str
    what: str
    shape: tuple[int, ...] | None
    params: int
    macs: int
    indent: int


def _last_shape(net: Network, names: list[str]):
    return net.nodes[names[-1]].shape if names else None


def rows(net: Network, depth: int = 2) -> list[Row]:
    out: list[Row] = []
    done_stages: set[str] = set()
    for node in net.nodes.values():
        if node.stage is None:
            out.append(Row(node.name, describe(node, in_channels(net, node)), node.shape,
                           node.params, node.macs, 0))
            continue
        if node.stage in done_stages:
            continue
        done_stages.add(node.stage)
        stage = net.stages[node.stage]
        members = [n for n in net.nodes.values() if n.stage == stage.name]
        last_block = net.blocks[stage.blocks[-1]]
        shape = net.nodes[last_block.add].shape if last_block.add else members[-1].shape
        out.append(Row(stage.name, f"{stage.repeats} x {stage.block}, shortcut {stage.policy}",
                       shape, sum(n.params for n in members), sum(n.macs for n in members), 0))
        if depth < 2:
            continue
        for block_name in stage.blocks:
            block = net.blocks[block_name]
            inside = [n for n in members if n.block == block_name]
            out_node = inside[-1]
            out.append(Row(block_name, f"{block.definition}({format_args(block.args)}), {block.shortcut}",
                           out_node.shape, sum(n.params for n in inside),
                           sum(n.macs for n in inside), 1))
            if depth < 3:
                continue
            for n in inside:
                out.append(Row(n.name, describe(n, in_channels(net, n)), n.shape, n.params,
                               n.macs, 2))
    return out


def format_summary(net: Network, depth: int = 2) -> str:
    table = rows(net, depth)
    name_w = max([len("  " * r.indent + r.name) for r in table] + [5]) + 2
    what_w = max([len(r.what) for r in table] + [4]) + 2
    header = f"{'Layer':<{name_w}}{'Kind':<{what_w}}{'Output':>12}{'Params':>14}{'MACs':>17}"
    rule = "=" * len(header)
    lines = [f"{net.name}  ({net.file})",
             f"input {format_shape(net.input_shape)}" +
             (f"   arguments: {format_args(net.arguments)}" if net.arguments else ""),
             rule, header, "-" * len(header)]
    for r in table:
        name = "  " * r.indent + r.name
        params = f"{r.params:,}" if r.params else "-"
        macs = f"{r.macs:,}" if r.macs else "-"
        lines.append(f"{name:<{name_w}}{r.what:<{what_w}}{format_shape(r.shape):>12}"
                     f"{params:>14}{macs:>17}")
    t = net.totals
    lines += [
        rule,
        f"Parameters:   {t.params:,} ({t.params * 4 / 2**20:,.1f} MiB as fp32)",
        f"MACs:         {t.macs:,} ({2 * t.macs / 1e9:,.2f} GFLOPs per image)",
        f"Activations:  {t.activations:,} ({t.activations * 4 / 2**20:,.1f} MiB per image, "
        "forward, fp32)",
        f"Output shape: {format_shape(net.output_shape)}",
    ]
    return "\n".join(lines) + "\n"


def summary_dict(net: Network) -> dict:
    """The summary as plain data (`rnetc summary --json`)."""
    stages = []
    for stage in net.stages.values():
        members = [n for n in net.nodes.values() if n.stage == stage.name]
        stages.append({
            "name": stage.name, "repeats": stage.repeats, "block": stage.block,
            "policy": stage.policy, "stride": stage.stride,
            "output_shape": list(members[-1].shape or ()),
            "params": sum(n.params for n in members), "macs": sum(n.macs for n in members),
        })
    role = roles(net)
    return {
        "network": net.name,
        "file": net.file,
        "arguments": net.arguments,
        "input_shape": list(net.input_shape or ()),
        "output_shape": list(net.output_shape or ()),
        "params": net.totals.params,
        "macs": net.totals.macs,
        "activations": net.totals.activations,
        "activation_bytes": net.totals.activations * 4,
        "stages": stages,
        "layers": [
            {"name": n.name, "op": n.op, "description": describe(n, in_channels(net, n)),
             "output_shape": list(n.shape or ()), "params": n.params, "macs": n.macs,
             "stage": n.stage, "block": n.block, "part": role[n.name]}
            for n in net.nodes.values()
        ],
    }
