"""Lowering `split PARTS { body }`: a block's value cut into PARTS equal parts of its
channels, the body run once on each part, the parts' results concatenated in order
(Res2Net, Gao et al. 2019: `conv1` makes width * scale channels, each part gets a 3x3
conv, the next part adds the previous one's result first).

Inside the body, `part` is the part's index (0 ..), `add_previous` adds the previous
part's result to the current value, and `as NAME.{i}` names the part's layer as entry
`part` of a module list (`convs.0`, `convs.1`: timm's nn.ModuleList names; `{n}` counts
from 1). Each part sees its own copy of the block's names, so a `let` in the body is the
part's own. Slices, the sum and the concatenation are joins: they have no module.
"""

from __future__ import annotations

from dataclasses import replace

from resnet_dsl.frontend import ast
from resnet_dsl.frontend.context import Ctx, Lowering, SplitPart
from resnet_dsl.frontend.evaluate import Env, fail
from resnet_dsl.frontend.layers import integer
from resnet_dsl.ir import nodes as ir

PART = "part"
"""The name the body sees: the index of the part it runs on (a block parameter of the
same name takes precedence)."""


def lower_split(lw: Lowering, stmt: ast.Split, ctx: Ctx) -> None:
    if ctx.kind != "block" or ctx.block is None:
        raise fail("E307", "`split` belongs in a stage's blocks", stmt.span,
                   "call the block that holds it from a `stage`")
    if ctx.split is not None:
        raise fail("E307", "`split` inside another `split`", stmt.span,
                   "splits do not nest: split once, into more parts")
    if ctx.branches:
        raise fail("E306", "`split` inside an open side branch", stmt.span,
                   "join the branch with `mul` first")
    lw.need_input(stmt.span)
    parts = integer(lw, stmt.parts, ctx, "the number of parts")
    if parts < 2:
        raise fail("E203", f"a split makes at least 2 parts, got {parts}", stmt.parts.span)
    lw.limit(parts, "max_channels", "parts", stmt.parts.span)
    here = ast.Call("split", (), (), None, stmt.span, stmt.span, None)
    source = lw.current
    outputs: list[str] = []
    for index in range(parts):
        env = Env(dict(ctx.env.values), dict(ctx.env.spans))
        if PART not in env.values:
            env.define(PART, index, stmt.span)
        lw.current = source
        inner = replace(ctx, env=env, branches=[],
                        split=SplitPart(index, parts, outputs[-1] if outputs else None, stmt.span))
        lw.emit(ir.Slice, "slice", here, inner, inputs=[source], part=index, parts=parts)
        lw.run_body(stmt.body, inner)
        if inner.branches:
            raise fail("E306", "a part of the split opens a `branch` that no `mul` joins",
                       inner.branches[-1][1], "end the side branch with `mul` inside the part")
        outputs.append(lw.current)  # type: ignore[arg-type]
    lw.emit(ir.Concat, "cat", here, ctx, inputs=outputs)


def add_previous(lw: Lowering, call: ast.Call, ctx: Ctx) -> None:
    """`add_previous`: the current value plus the previous part's result."""
    if call.alias is not None:
        raise fail("E207", "`add_previous` takes no name", call.alias_span)
    if ctx.split is None:
        raise fail("E306", "`add_previous` is only meaningful inside `split`", call.span)
    if ctx.split.previous is None:
        raise fail("E306", "the first part of a split has no previous part to add", call.span,
                   "guard it: `if part > 0 { add_previous }`")
    lw.emit(ir.Sum, "sum", call, ctx, inputs=[lw.current, ctx.split.previous])
