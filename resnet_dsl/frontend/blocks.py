"""Lowering blocks: binding a block's parameters, expanding its body in its own scope (a
stage's repeats, `layer1.0`), inline calls of blocks without `add`, and the two block
markers, `fork` (where a projection shortcut reads) and `add` (where the shortcut joins).

A residual block's `add` reads (the branch so far, the block's input); the shortcut
pass (`passes/shortcuts.py`) replaces the second input with the shortcut the stage's
policy asks for. The block records where its markers were; its form follows from edges.
"""

from __future__ import annotations

from dataclasses import replace

from resnet_dsl.errors import Diagnostic, Note, RnetError
from resnet_dsl.frontend import ast, replay
from resnet_dsl.frontend.context import (
    BlockState, Ctx, Lowering, Namer, check_path_alias, split_alias,
)
from resnet_dsl.frontend.evaluate import Env, evaluate, fail
from resnet_dsl.frontend.layers import call_values
from resnet_dsl.frontend.signatures import Arg, Kwarg, bind_block
from resnet_dsl.frontend.splits import add_previous
from resnet_dsl.frontend.source import BlockRef
from resnet_dsl.ir import nodes as ir
from resnet_dsl.ir.graph import BlockInfo
from resnet_dsl.ir.nodes import construct
from resnet_dsl.ir.shortcuts import SHORTCUT_MODULE

STRIDE = "stride"
"""The block parameter a stage's `stride=` sets (in its first block; the others get 1)."""

BLOCK_INDEX = "block_index"
NET_BLOCK_INDEX = "net_block_index"
"""Names a stage's block sees in its expressions: its index in the stage (0 for the first
block, so a first block can differ without splitting the stage) and over all the stages
of the network (for schedules such as a drop_path rate that grows with depth). A block
parameter of the same name takes precedence."""


def has_add(body: tuple[ast.Stmt, ...]) -> bool:
    """Whether a block body contains an `add` statement (a residual block)."""
    for stmt in body:
        if isinstance(stmt, ast.Call) and stmt.name == "add":
            return True
        if isinstance(stmt, ast.If) and (has_add(stmt.then) or has_add(stmt.otherwise or ())):
            return True
        if isinstance(stmt, ast.Split) and has_add(stmt.body):
            return True
    return False


def bind(lw: Lowering, ref: BlockRef, args: list[Arg], kwargs: list[Kwarg], call: ast.Call,
         ctx: Ctx) -> Env:
    """The block's parameters bound to a call's arguments, defaults evaluated in order."""
    definition = ref.definition
    if ctx.depth + 1 > lw.limits.max_block_depth:
        chain = " -> ".join(ctx.calls[-4:] + (definition.name,))
        raise fail("E602", f"blocks call each other more than {lw.limits.max_block_depth} "
                   f"deep (... {chain})", call.span, "a block that calls itself needs an `if` "
                   "that stops the recursion")
    explicit, missing = bind_block(definition.name, definition.params, args, kwargs,
                                   call.span, definition.name_span)
    env = Env()
    for pname, (value, span) in explicit.items():
        env.define(pname, value, span)
    for p in missing:
        assert p.default is not None
        env.define(p.name, evaluate(p.default, env, lw.limits), p.span)
    return env


def instantiate(lw: Lowering, ref: BlockRef, args: list[Arg], kwargs: list[Kwarg],
                call: ast.Call, ctx: Ctx, scope: str, stage: str, index: int,
                residual: bool) -> None:
    """Expand one repeat of a stage's block under `scope` (`layer1.0`)."""
    definition = ref.definition
    env = bind(lw, ref, args, kwargs, call, ctx)
    for name, value in ((BLOCK_INDEX, index), (NET_BLOCK_INDEX, len(lw.blocks))):
        if name not in env.values:
            env.define(name, value, call.span)
    assert lw.current is not None
    state = BlockState(name=scope, input=lw.current)
    inner = Ctx(ref.file, env, scope, "block", ctx.section, stage, state,
                ctx.trace + (call.span,), ctx.calls + (definition.name,), ctx.depth + 1)
    k = replay.key(lw, definition, env, inner)
    recipe = lw.memo.get(k) if k is not None else None
    if recipe is None or not replay.replay(lw, recipe, scope, inner, inner.trace, state):
        lw.namers[scope] = Namer(reserved=(SHORTCUT_MODULE,))
        first, steps, diags = len(lw.nodes), lw.steps, len(lw.diags)
        lw.run_body(definition.body, inner)
        if k is not None and len(lw.diags) == diags and not inner.branches:
            replay.record(lw, k, scope, first, lw.steps - steps, state, len(inner.trace))
    stride = env.values.get(STRIDE, 1)
    block_args = {p.name: env.values[p.name] for p in definition.params
                  if isinstance(env.values.get(p.name), (bool, int, float))}
    if residual and state.add is None:
        raise RnetError(Diagnostic(
            "E306", f"block `{definition.name}` ended without reaching its `add`",
            call.span, "make sure every branch of its `if`s reaches `add`",
            [Note(definition.name_span, "defined here")]))
    lw.blocks[scope] = construct(BlockInfo, dict(
        name=scope, stage=stage, index=index, definition=definition.name, args=block_args,
        stride=stride if isinstance(stride, int) and not isinstance(stride, bool) else 1,
        input=state.input, fork=state.fork or state.input, fork_span=state.fork_span,
        add=state.add, residual=residual, shortcut="identity" if residual else "none",
        proj_bn=state.proj_bn, proj_gn=state.proj_gn, proj_named=state.proj_named,
        proj_ws=state.proj_ws, span=call.span))


def call_inline(lw: Lowering, call: ast.Call, ctx: Ctx) -> None:
    """A block without `add` called as a statement: its layers join the caller's scope."""
    ref = ctx.file.blocks[call.name]
    definition = ref.definition
    if has_add(definition.body):
        raise RnetError(Diagnostic(
            "E307", f"block `{call.name}` has an `add`, so it is a residual block: "
            "repeat it with `stage`", call.span,
            f"e.g. `stage x 2 {call.name}(...)`", [Note(definition.name_span, "defined here")]))
    lw.need_input(call.span)
    args, kwargs = call_values(lw, call, ctx)
    env = bind(lw, ref, args, kwargs, call, ctx)
    prefix = ctx.prefix
    if call.alias is not None:  # its layers live under the name, numbered like nn.Sequential
        if ctx.prefix and ctx.kind != "block":
            raise fail("E207", "a named block call inside another one at a network's top "
                       "level: name the outer call with a module path instead",
                       call.alias_span, f"call `{call.name}` without `as`, or name its layers")
        parent = ".".join((ctx.scope, *ctx.prefix)) if ctx.scope else ".".join(ctx.prefix)
        listed = split_alias(call, ctx)
        if listed is not None:   # `as paths.{i}` in a split: entry `part` of a module list
            head, index = listed
            if f"{parent}.{head}" not in lw.namers:
                lw.namers[parent].claim(head, call.alias_span)
                lw.namers[f"{parent}.{head}"] = Namer()
            lw.namers[f"{parent}.{head}"].claim(index, call.alias_span)
            lw.namers[f"{parent}.{head}.{index}"] = Namer(sequential=True)
            prefix = (*ctx.prefix, head, index)
        else:
            check_path_alias(call, ctx)
            lw.namers[parent].claim(call.alias, call.alias_span)
            if not parent:
                lw.paths.add(call.alias, call.alias_span)
            lw.namers[f"{parent}.{call.alias}" if parent else call.alias] = Namer(sequential=True)
            prefix = (*ctx.prefix, call.alias)
    inner = replace(ctx, file=ref.file, env=env, trace=ctx.trace + (call.span,),
                    calls=ctx.calls + (definition.name,), depth=ctx.depth + 1, prefix=prefix,
                    branches=[])
    lw.run_body(definition.body, inner)
    if inner.branches:
        _, span = inner.branches[-1]
        raise RnetError(Diagnostic(
            "E306", f"block `{definition.name}` opens a `branch` that no `mul` joins", span,
            "end the side branch with `mul`", [Note(call.span, "called here")]))


def marker(lw: Lowering, call: ast.Call, bound: dict[str, Arg], ctx: Ctx) -> None:
    """`fork`, `add`, `branch` or `mul` inside a block."""
    if call.name in ("branch", "mul"):
        _side_branch(lw, call, ctx)
        return
    if call.name == "add_previous":
        add_previous(lw, call, ctx)
        return
    state = ctx.block
    if state is None or ctx.kind != "block":
        raise fail("E306", f"`{call.name}` is only meaningful inside a block", call.span)
    if call.name == "fork":
        if state.fork is not None or state.add is not None:
            raise fail("E306", "`fork` must come once, before `add`", call.span)
        state.fork = lw.current
        state.fork_span = call.span
        return
    if state.add is not None:
        raise fail("E306", "a block has one `add`", call.span)
    if ctx.branches:
        raise RnetError(Diagnostic(
            "E306", "`add` inside an open side branch", call.span,
            "join the branch with `mul` before `add`", [Note(ctx.branches[-1][1], "the branch")]))
    if call.alias is not None:
        raise fail("E207", "the addition is always named `add`", call.alias_span)
    state.proj_bn = bound["proj_bn"][0]
    state.proj_named = bound["proj_named"][0]
    state.proj_ws, ws_span = bound["proj_ws"]
    if state.proj_ws < 0:
        raise fail("E203", f"proj_ws is the weight standardisation's eps (0: a plain conv), got "
                   f"{state.proj_ws}", ws_span)
    state.proj_gn, gn_span = bound["proj_gn"]
    if state.proj_gn < 0:
        raise fail("E203", f"proj_gn must be 0 (BN) or a number of groups, got {state.proj_gn}",
                   gn_span)
    if state.proj_gn and not state.proj_bn:
        raise fail("E207", "`proj_gn` chooses the projection's norm, which `proj_bn=false` "
                   "leaves out", gn_span, "drop one of the two")
    node = lw.emit(ir.Add, "add", call, ctx, inputs=[lw.current, state.input])
    state.add = node.name


def _side_branch(lw: Lowering, call: ast.Call, ctx: Ctx) -> None:
    """`branch` remembers the current value; `mul` multiplies it by the branch's result
    (a squeeze-excitation or ECA gate: x * sigmoid(...)). Shapes are checked by Mul."""
    if ctx.kind != "block":
        raise fail("E306", f"`{call.name}`: side branches belong in a stage's blocks", call.span,
                   "call the block that holds it from a block that a `stage` repeats")
    if call.alias is not None:
        raise fail("E207", f"`{call.name}` takes no name", call.alias_span)
    lw.need_input(call.span)
    if call.name == "branch":
        ctx.branches.append((lw.current, call.span))
        return
    if not ctx.branches:
        raise fail("E306", "`mul` without a `branch` to join", call.span,
                   "start the side branch with `branch`")
    start, _ = ctx.branches.pop()
    if start == lw.current:
        raise fail("E306", "the side branch is empty: `mul` would square its input", call.span,
                   "put the gate's layers between `branch` and `mul`")
    outer = replace(ctx, prefix=())  # the join lives in the block's scope (it has no module)
    lw.emit(ir.Mul, "mul", call, outer, inputs=[start, lw.current])
