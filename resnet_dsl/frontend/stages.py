"""Lowering a stage: `stage [NAME] x N BLOCK(args) [stride=S] [shortcut=POLICY]`.

A stage repeats its block N times as `NAME.0 .. NAME.{N-1}` (`layer1.0`: torchvision's
names); the first block gets the stage's stride, the others stride 1. The shortcut
policy is recorded on the stage and applied by the shortcut pass.
"""

from __future__ import annotations

from resnet_dsl.errors import Diagnostic, Note, RnetError
from resnet_dsl.frontend import ast
from resnet_dsl.frontend.blocks import STRIDE, has_add, instantiate
from resnet_dsl.frontend.context import Ctx, Lowering
from resnet_dsl.errors import did_you_mean
from resnet_dsl.frontend.evaluate import fail
from resnet_dsl.frontend.layers import call_values, integer
from resnet_dsl.frontend.signatures import LAYERS
from resnet_dsl.frontend.source import BlockRef
from resnet_dsl.ir.graph import StageInfo
from resnet_dsl.ir.shortcuts import POLICIES, POLICY_HELP
from resnet_dsl.limits import raise_hint

STAGE_OPTIONS = ("stride", "shortcut")


def lower_stage(lw: Lowering, stmt: ast.Stage, ctx: Ctx) -> None:
    if ctx.kind != "network" or ctx.section != "body":
        raise fail("E307", "`stage` belongs at the top level of a network", stmt.span)
    lw.need_input(stmt.span)
    repeats = integer(lw, stmt.repeats, ctx, "the repeat count")
    if repeats < 1:
        raise fail("E203", f"a stage repeats its block at least once, got {repeats}",
                   stmt.repeat_span)
    lw.limit(repeats, "max_repeats", "repeats", stmt.repeat_span)
    ref = resolve_block(stmt.block, ctx)
    stride, policy, policy_given = 1, "proj", False
    for kw in stmt.kwargs:
        if kw.name == "stride":
            stride = integer(lw, kw.value, ctx, "the stage's stride")
            if stride < 1:
                raise fail("E203", f"stride must be at least 1, got {stride}", kw.value.span)
        elif kw.name == "shortcut":
            policy, policy_given = _policy(lw, kw), True
        else:
            raise RnetError(Diagnostic(
                "E104", f"a stage has no option `{kw.name}`", kw.name_span,
                did_you_mean(kw.name, STAGE_OPTIONS) or "stage options: stride=, shortcut="))
    definition = ref.definition
    residual = has_add(definition.body)
    param_names = [p.name for p in definition.params]
    if not residual and policy_given:
        raise fail("E307", f"block `{definition.name}` has no `add`, so it takes no shortcut",
                   stmt.block.span, "remove `shortcut=`, or add `add` to the block")
    if stride != 1 and STRIDE not in param_names:
        raise RnetError(Diagnostic(
            "E308", f"block `{definition.name}` has no `stride` parameter, so the stage "
            f"cannot set stride={stride}", stmt.span,
            f"add `stride = 1` to `{definition.name}`'s parameters and use it in a conv",
            [Note(definition.name_span, "defined here")]))
    args, kwargs = call_values(lw, stmt.block, ctx)
    for kname, _, _, name_span in kwargs:
        if kname == STRIDE:
            raise fail("E207", "the stride of a stage's blocks is set on the stage",
                       name_span, "write `stage ... BLOCK(...) stride=2`: the first block "
                       "gets it, the others stride 1")
    index = len(lw.stages) + 1
    name, key_of = stage_names(stmt.name or f"layer{index}")
    lw.namers[""].claim(name, stmt.name_span or stmt.span)
    lw.paths.add(name, stmt.name_span or stmt.span)
    info = StageInfo.model_construct(name=name, index=index, repeats=repeats, block=definition.name,
                                     policy=policy, stride=stride, span=stmt.span)
    lw.stages[name] = info
    for i in range(repeats):
        block_kwargs = list(kwargs)
        if STRIDE in param_names:
            block_kwargs.append((STRIDE, stride if i == 0 else 1, stmt.span, stmt.span))
        before = len(lw.nodes)
        scope = f"{name}.{key_of(i)}"
        instantiate(lw, ref, args, block_kwargs, stmt.block, ctx, scope, name, i, residual)
        info.blocks.append(scope)
        if i == 0:
            per_block = len(lw.nodes) - before
            if len(lw.nodes) + per_block * (repeats - 1) > lw.limits.max_layers:
                raise fail("E601", f"this stage would make {per_block * repeats:,} layers; "
                           f"the limit is {lw.limits.max_layers:,} in all", stmt.span,
                           raise_hint("max_layers"))


def stage_names(written: str) -> tuple[str, object]:
    """A stage's module path and its blocks' keys from the name it is written with:
    `layer1` -> `layer1.0`, `layer1.1`, ...; `stages.0.blocks` -> `stages.0.blocks.0`, ...;
    a template in the last part names the blocks: `s1.b{n}` -> `s1.b1`, `s1.b2` (1-based),
    `stages.0.blocks.{i}` -> 0-based (timm's RegNet and ResNetV2 names)."""
    head, _, last = written.rpartition(".")
    if "{" not in last:
        return written, str
    prefix, _, rest = last.partition("{")
    placeholder, _, suffix = rest.partition("}")
    start = 1 if placeholder == "n" else 0
    return head, lambda i: f"{prefix}{i + start}{suffix}"


def _policy(lw: Lowering, kw: ast.Kwarg) -> str:
    if isinstance(kw.value, ast.Name) and kw.value.id in POLICIES:
        return POLICIES[kw.value.id]
    word = kw.value.id if isinstance(kw.value, ast.Name) else lw.text(kw.value.span)
    raise RnetError(Diagnostic(
        "E205", f"unknown shortcut policy `{word}`", kw.value.span,
        did_you_mean(word, POLICIES) or POLICY_HELP))


def resolve_block(call: ast.Call, ctx: Ctx) -> BlockRef:
    ref = ctx.file.blocks.get(call.name)
    if ref is None:
        raise RnetError(Diagnostic(
            "E101", f"unknown block `{call.name}`", call.name_span,
            did_you_mean(call.name, ctx.file.blocks) or
            (f"`{call.name}` is a layer; a stage repeats a block" if call.name in LAYERS
             else f"blocks here: {', '.join(sorted(ctx.file.blocks))}")))
    return ref
