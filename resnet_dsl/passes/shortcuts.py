"""Pass: give every residual block the shortcut its stage's policy asks for.

Policies (He et al. 2015 options A/B/C; He et al. 2019 "ResNet-D"):
  identity     the input itself; an error where the shape changes
  zeropad (A)  where the shape changes: every stride-th pixel, new channels zero
  proj (B)     where the shape changes: 1x1 conv (stride s) + BN
  proj_all (C) in every block: 1x1 conv (stride s) + BN
  avgproj (D)  where the shape changes: s x s average pool (stride s, ceil mode, padding
               not counted; skipped when s = 1), then 1x1 conv + BN
Projections read the block's fork point (the pre-activated input in pre-activation
blocks); identity and zero-pad shortcuts read the block's input. `add proj_bn=false`
drops the projection's BN. Names follow torchvision/timm: `downsample.0`, `.1`, `.2`.
"""

from __future__ import annotations

from resnet_dsl.errors import Diagnostic
from resnet_dsl.ir import nodes as ir
from resnet_dsl.ir.graph import BlockInfo, Network
from resnet_dsl.limits import Limits
from resnet_dsl.passes.shapes import _ShapeError, output_shape, show_shape


def resolve_shortcuts(net: Network, diags: list[Diagnostic], limits: Limits) -> None:
    inserted: dict[str, list[ir.NodeBase]] = {}  # add node -> shortcut nodes before it
    for block in net.blocks.values():
        if not block.residual or block.add is None:
            continue
        add = net.nodes[block.add]
        main = net.nodes[add.inputs[0]]
        source = net.nodes[block.input]
        if main.shape is None or source.shape is None:
            continue
        shapes = {block.input: source.shape, block.fork: net.nodes[block.fork].shape}
        try:
            kind, chain = _plan(net, block, source.shape, main.shape)
            for node in chain:
                node.shape = output_shape(node, [shapes[node.inputs[0]]])
                shapes[node.name] = node.shape
        except _ShapeError as exc:
            diags.append(exc.diagnostic)
            add.shape = None
            continue
        block.shortcut = kind
        last = chain[-1].name if chain else block.input
        if shapes[last] != main.shape:
            diags.append(_join_error(net, block, kind, source.shape, main.shape, shapes[last]))
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


def _plan(net: Network, block: BlockInfo, in_shape, out_shape) -> tuple[str, list[ir.NodeBase]]:
    policy = net.stages[block.stage].policy
    changes = in_shape != out_shape
    stride = block.stride
    common = dict(section=net.nodes[block.add].section, stage=block.stage, block=block.name,
                  part="shortcut", span=net.stages[block.stage].span)
    prefix = f"{block.name}.downsample"
    if policy == "identity" or (not changes and policy != "proj_all"):
        if changes:
            raise _ShapeError(_join_error(net, block, "identity", in_shape, out_shape, in_shape))
        return "identity", []
    if policy == "zeropad":
        if out_shape[0] < in_shape[0]:
            stage = net.stages[block.stage]
            raise _ShapeError(Diagnostic(
                "E302", f"stage {block.stage} block {block.index}: a zero-pad shortcut cannot "
                f"shrink {in_shape[0]} channels to {out_shape[0]}", stage.span,
                "use shortcut=proj"))
        return "zeropad", [ir.ZeroPad(name=prefix, inputs=[block.input], stride=stride,
                                      out_channels=out_shape[0], **common)]
    if len(in_shape) != 3:
        raise _ShapeError(Diagnostic(
            "E305", f"stage {block.stage} block {block.index}: a projection shortcut needs a "
            f"CxHxW input, got {show_shape(in_shape)}", net.stages[block.stage].span))
    chain: list[ir.NodeBase] = []
    src = block.fork
    conv_stride = stride
    if policy == "avgproj":
        if stride > 1:
            chain.append(ir.Pool(name=f"{prefix}.0", inputs=[src], kind="avg",
                                 kernel=(stride, stride), stride=(stride, stride), ceil_mode=True,
                                 count_include_pad=False, **common))
            src = chain[-1].name
        conv_stride, index = 1, 1
    else:
        index = 0
    chain.append(ir.Conv(name=f"{prefix}.{index}", inputs=[src], out_channels=out_shape[0],
                         kernel=(1, 1), stride=(conv_stride, conv_stride), **common))
    if block.proj_bn:
        chain.append(ir.BatchNorm(name=f"{prefix}.{index + 1}", inputs=[chain[-1].name], **common))
    return ("avgproj" if policy == "avgproj" else "proj"), chain


def _join_error(net: Network, block: BlockInfo, kind: str, in_shape, out_shape, got) -> Diagnostic:
    stage = net.stages[block.stage]
    what = {"identity": "identity", "zeropad": "zero-pad", "proj": "projection",
            "avgproj": "avg-pool projection"}[kind]
    if kind == "identity":
        message = (f"stage {block.stage} block {block.index}: identity shortcut cannot join "
                   f"{show_shape(in_shape)} to {show_shape(out_shape)}")
        help_ = "use shortcut=proj or shortcut=zeropad"
    else:
        message = (f"stage {block.stage} block {block.index}: the {what} shortcut (stride "
                   f"{block.stride}) turns {show_shape(in_shape)} into {show_shape(got)}, but the "
                   f"block's output is {show_shape(out_shape)}")
        help_ = "the block must shrink its input by exactly its `stride`"
    return Diagnostic("E301", message, stage.span, help_)
