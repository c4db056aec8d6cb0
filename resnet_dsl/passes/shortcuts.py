"""Pass: give every residual block the shortcut its stage's policy asks for.

Policies (`ir/shortcuts.py`; He et al. 2015 options A/B/C; He et al. 2019 "ResNet-D"):
  identity     the input itself; an error where the shape changes
  zeropad (A)  where the shape changes: every stride-th pixel, new channels zero
  proj (B)     where the shape changes: 1x1 conv (stride s) + BN
  proj_all (C) in every block: 1x1 conv (stride s) + BN
  avgproj (D)  where the shape changes: s x s average pool (stride s, ceil mode, padding
               not counted; skipped when s = 1), then 1x1 conv + BN
Projections read the block's fork point (the pre-activated input in pre-activation
blocks); identity and zero-pad shortcuts read the block's input. A fork placed after
the block's stride has already been subsampled, so its projection does not stride
again. `add proj_bn=false` drops the projection's BN; `add proj_gn=G` makes it a
GroupNorm of G groups (timm's resnet50_gn). The layers live under
`downsample` (`downsample.0`, `.1`, `.2`: torchvision's and timm's names; with `add
proj_named=true`, `downsample.pool`, `.conv`, `.bn` or `.norm`: timm's DownsampleConv,
DownsampleAvg and RegNet's; `add proj_ws=EPS` makes the conv weight-standardised); the add's
second input becomes the shortcut's output.
"""

from __future__ import annotations

from resnet_dsl.errors import Diagnostic, Note
from resnet_dsl.ir import nodes as ir
from resnet_dsl.ir.graph import BlockInfo, Network
from resnet_dsl.ir.nodes import ShapeError
from resnet_dsl.ir.shortcuts import SHORTCUT_MODULE, SHORTCUTS
from resnet_dsl.ir.signature import format_shape
from resnet_dsl.limits import Limits


def resolve_shortcuts(net: Network, diags: list[Diagnostic], limits: Limits) -> None:
    inserted: dict[str, list[ir.NodeBase]] = {}  # add node -> shortcut nodes before it
    for block in net.blocks.values():
        if not block.residual or block.add is None:
            continue
        add = net.nodes[block.add]
        main = net.nodes[add.inputs[0]]
        source = net.nodes[block.input]
        if main.shape is None or source.shape is None or net.nodes[block.fork].shape is None:
            continue
        shapes = {block.input: source.shape, block.fork: net.nodes[block.fork].shape}
        try:
            kind, chain = _plan(net, block, source.shape, main.shape)
            for node in chain:
                node.shape = node.infer([shapes[node.inputs[0]]])
                shapes[node.name] = node.shape
        except ShapeError as exc:
            diags.append(exc.diagnostic)
            add.shape = None
            continue
        block.shortcut = kind  # type: ignore[assignment]
        last = chain[-1].name if chain else block.input
        if shapes[last] != main.shape:
            read = shapes[chain[0].inputs[0]] if chain else source.shape
            diags.append(_join_error(net, block, kind, read, main.shape, shapes[last]))
            add.shape = None
            continue
        add.inputs = [main.name, last]
        inserted[add.name] = chain
    if inserted:
        ordered: dict[str, ir.NodeBase] = {}
        for name, node in net.nodes.items():
            for extra in inserted.get(name, ()):
                ordered[extra.name] = extra
            ordered[name] = node
        net.nodes = ordered  # type: ignore[assignment]


def _fork_stride(net: Network, block: BlockInfo, in_shape, out_shape) -> int:
    """The stride a projection reading the fork needs: the block's, or 1 where the fork
    already comes after the block's stride. Anything else is reported at the fork."""
    fork_shape = net.nodes[block.fork].shape
    if block.fork == block.input or fork_shape[1:] == in_shape[1:]:
        return block.stride
    if fork_shape[1:] == out_shape[1:]:
        return 1
    stage = net.stages[block.stage]
    raise ShapeError(Diagnostic(
        "E301", f"stage {block.stage} block {block.index}: the projection shortcut reads the "
        f"`fork` ({format_shape(fork_shape)}), which is neither the block's input size "
        f"({format_shape(in_shape)}) nor its output size ({format_shape(out_shape)})",
        block.fork_span or stage.span,
        "place `fork` before the block's strided layer (or right after it)",
        [Note(stage.span, "the stage is here")] if block.fork_span else []))


def _plan(net: Network, block: BlockInfo, in_shape, out_shape) -> tuple[str, list[ir.NodeBase]]:
    policy = net.stages[block.stage].policy
    changes = in_shape != out_shape
    stride = block.stride
    common = dict(section=net.nodes[block.add].section, stage=block.stage, block=block.name,
                  span=net.stages[block.stage].span)
    prefix = f"{block.name}.{SHORTCUT_MODULE}"
    if policy == "identity" or (not changes and policy != "proj_all"):
        if changes:
            raise ShapeError(_join_error(net, block, "identity", in_shape, out_shape, in_shape))
        return "identity", []
    if policy == "zeropad":
        if out_shape[0] < in_shape[0]:
            stage = net.stages[block.stage]
            raise ShapeError(Diagnostic(
                "E302", f"stage {block.stage} block {block.index}: a zero-pad shortcut cannot "
                f"shrink {in_shape[0]} channels to {out_shape[0]}", stage.span,
                "use shortcut=proj"))
        return "zeropad", [ir.ZeroPad.trusted(name=prefix, inputs=[block.input], stride=stride,
                                              out_channels=out_shape[0], path=(SHORTCUT_MODULE,), **common)]
    if len(in_shape) != 3:
        raise ShapeError(Diagnostic(
            "E305", f"stage {block.stage} block {block.index}: a projection shortcut needs a "
            f"CxHxW input, got {format_shape(in_shape)}", net.stages[block.stage].span))
    stride = _fork_stride(net, block, in_shape, out_shape)
    chain: list[ir.NodeBase] = []
    src = block.fork

    names = {0: "pool", 1: "conv", 2: "norm" if block.proj_gn else "bn"}

    def item(index: int) -> dict:  # nn.Sequential indices, or timm's names (`proj_named`)
        key = names[index + (policy != "avgproj")] if block.proj_named else str(index)
        return dict(name=f"{prefix}.{key}", path=(SHORTCUT_MODULE, key), **common)

    conv_stride = stride
    if policy == "avgproj":
        if stride > 1:
            chain.append(ir.Pool.trusted(inputs=[src], kind="avg", kernel=(stride, stride),
                                         stride=(stride, stride), ceil_mode=True,
                                         count_include_pad=False, **item(0)))
            src = chain[-1].name
        conv_stride, index = 1, 1
    else:
        index = 0
    chain.append(ir.Conv.trusted(inputs=[src], out_channels=out_shape[0], kernel=(1, 1),
                                 stride=(conv_stride, conv_stride), ws_eps=block.proj_ws,
                                 **item(index)))
    if block.proj_gn:
        chain.append(ir.GroupNorm.trusted(inputs=[chain[-1].name], groups=block.proj_gn,
                                          **item(index + 1)))
    elif block.proj_bn:
        chain.append(ir.BatchNorm.trusted(inputs=[chain[-1].name], **item(index + 1)))
    return ("avgproj" if policy == "avgproj" else "proj"), chain


def _join_error(net: Network, block: BlockInfo, kind: str, in_shape, out_shape, got) -> Diagnostic:
    stage = net.stages[block.stage]
    if kind == "identity":
        message = (f"stage {block.stage} block {block.index}: identity shortcut cannot join "
                   f"{format_shape(in_shape)} to {format_shape(out_shape)}")
        help_ = "use shortcut=proj or shortcut=zeropad"
    else:
        message = (f"stage {block.stage} block {block.index}: the {SHORTCUTS[kind].word} "
                   f"shortcut (stride {block.stride}) turns {format_shape(in_shape)} into "
                   f"{format_shape(got)}, but the block's output is {format_shape(out_shape)}")
        help_ = "the block must shrink its input by exactly its `stride`"
    return Diagnostic("E301", message, stage.span, help_)
