"""AST -> IR: run a network definition, unrolling stages and blocks into layer nodes.

Lowering evaluates parameters, `let`s, `require`s and `if`s, calls blocks (the built-in
ones are defined in `prelude.rnet`) and names every node after the spec: stem and head
layers at the top level (`conv1 bn1 relu maxpool ... fc`), stages `layer1..` with
numbered blocks (`layer1.0`), and inside each scope convs and BNs numbered
(`conv1 bn1 conv2 ...`) and other layers by kind (`relu`, `relu_1`, `avgpool`, `fc`).
Shapes, shortcuts and counts are left to the passes. Every problem is collected.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace

from resnet_dsl.errors import Diagnostic, Note, RnetError, Span, did_you_mean, with_trace
from resnet_dsl.frontend import ast
from resnet_dsl.frontend.evaluate import Env, Poisoned, evaluate, fail, show
from resnet_dsl.frontend.signatures import (
    ACTIVATIONS, GLOBAL, LAYERS, Arg, GlobalFlag, Kwarg, bind_block, bind_layer, coerce,
)
from resnet_dsl.frontend.source import BlockRef, Program, SourceFile
from resnet_dsl.ir import nodes as ir
from resnet_dsl.ir.graph import BlockInfo, Network, StageInfo
from resnet_dsl.limits import Limits, raise_hint

POLICIES = {
    "identity": "identity", "zeropad": "zeropad", "proj": "proj", "proj_all": "proj_all",
    "avgproj": "avgproj", "A": "zeropad", "B": "proj", "C": "proj_all", "D": "avgproj",
}

STAGE_OPTIONS = ("stride", "shortcut")

# Names people carry over from PyTorch, Keras, Caffe and Darknet.
SYNONYMS = {
    "batchnorm": "bn", "batch_norm": "bn", "batchnorm2d": "bn", "bn2d": "bn",
    "conv2d": "conv", "convolutional": "conv", "convolution": "conv",
    "linear": "fc", "dense": "fc", "innerproduct": "fc", "connected": "fc",
    "maxpool2d": "maxpool", "avgpool2d": "avgpool", "max_pool": "maxpool",
    "avg_pool": "avgpool", "adaptiveavgpool2d": "avgpool global", "gap": "avgpool global",
    "globalavgpool": "avgpool global", "global_avg_pool": "avgpool global",
    "swish": "silu", "leakyrelu": "leaky_relu", "leaky": "leaky_relu", "elementwise": "add",
    "shortcut": "add", "residual": "add", "eltwise": "add",
}


class _Abort(Exception):
    """A limit was hit: stop lowering at once (the error is already recorded)."""


class Namer:
    """Unique local names in one scope: conv1 bn1 conv2 ...; relu relu_1 ...; aliases."""

    NUMBERED = ("conv", "bn")

    def __init__(self, reserved: tuple[str, ...] = ()) -> None:
        self.counts: Counter[str] = Counter()
        self.used: dict[str, Span | None] = {r: None for r in reserved}

    def take(self, kind: str, alias: str | None, span: Span) -> str:
        if alias is not None:
            self.claim(alias, span)
            return alias
        while True:
            self.counts[kind] += 1
            n = self.counts[kind]
            if kind in self.NUMBERED:
                name = f"{kind}{n}"
            else:
                name = kind if n == 1 else f"{kind}_{n - 1}"
            if name not in self.used:
                self.used[name] = span
                return name

    def claim(self, name: str, span: Span) -> None:
        if name in self.used:
            first = self.used[name]
            raise RnetError(Diagnostic(
                "E103", f"the name `{name}` is already used in this scope", span,
                "choose another name with `as NAME`" if first else f"`{name}` is reserved",
                [Note(first, "first used here")] if first else []))
        self.used[name] = span


@dataclass
class _BlockState:
    name: str
    input: str
    fork: str | None = None
    add: str | None = None
    part: ir.Part = "main"
    proj_bn: bool = True
    members: list[str] = field(default_factory=list)


@dataclass
class _Ctx:
    file: SourceFile
    env: Env
    scope: str                        # "" for the network's own layers
    kind: str                         # "network" | "block"
    section: str = "body"             # stem | body | head
    stage: str | None = None
    block: _BlockState | None = None
    trace: tuple[Span, ...] = ()      # block call sites, outermost first
    calls: tuple[str, ...] = ()       # block names being expanded, for recursion messages
    depth: int = 0


@dataclass
class Lowered:
    network: Network
    diagnostics: list[Diagnostic] = field(default_factory=list)


def lower(program: Program, net: ast.NetworkDef | ast.NetworkAlias, limits: Limits,
          overrides: dict[str, object] | None = None,
          input_shape: tuple[int, int, int] | None = None) -> Lowered:
    """Run `net` with its parameters (defaults, then `overrides`) into an unshaped IR."""
    lowerer = _Lowerer(program, limits)
    name = net.name
    overrides = dict(overrides or {})
    try:
        net, overrides = resolve_alias(program, net, overrides, limits)
    except RnetError as exc:
        lowerer._report(exc, ())
        return Lowered(Network(name=name, file=program.main.name), lowerer.diags)
    lowered = lowerer.run(net, overrides, input_shape)
    lowered.network.name = name
    return lowered


def resolve_alias(program: Program, net: ast.NetworkDef | ast.NetworkAlias,
                  overrides: dict[str, object], limits: Limits):
    """Follow `network A = B(args)` to B's definition, with args under the caller's overrides."""
    seen: list[str] = []
    while isinstance(net, ast.NetworkAlias):
        if net.name in seen or len(seen) > 16:
            raise fail("E602", f"network `{net.name}` is defined in terms of itself", net.span)
        seen.append(net.name)
        call = net.target
        target = program.main.networks.get(call.name)
        if target is None:
            raise RnetError(Diagnostic(
                "E101", f"unknown network `{call.name}`", call.name_span,
                did_you_mean(call.name, program.main.networks) or "import the file that defines it"))
        params = target.params if isinstance(target, ast.NetworkDef) else ()
        names = [p.name for p in params]
        env = Env()
        values: dict[str, object] = {}
        if isinstance(target, ast.NetworkDef) and len(call.args) > len(names):
            raise fail("E201", f"network `{call.name}` takes {len(names)} parameters",
                       call.args[len(names)].span)
        for pname, arg in zip(names, call.args):
            values[pname] = _constant(arg, env, limits)
        for kw in call.kwargs:
            if isinstance(target, ast.NetworkDef) and kw.name not in names:
                raise RnetError(Diagnostic(
                    "E104", f"network `{call.name}` has no parameter `{kw.name}`", kw.name_span,
                    did_you_mean(kw.name, names)))
            values[kw.name] = _constant(kw.value, env, limits)
        overrides = {**values, **overrides}
        net = target
    return net, overrides


def _constant(value: ast.Value, env: Env, limits: Limits) -> object:
    if not isinstance(value, (ast.Int, ast.Float, ast.Bool, ast.Name, ast.Binary, ast.Unary,
                              ast.FuncCall)):
        raise fail("E202", "network parameters are numbers or booleans", value.span)
    return evaluate(value, env, limits)


def has_add(body: tuple[ast.Stmt, ...]) -> bool:
    """Whether a block body contains an `add` statement (a residual block)."""
    for stmt in body:
        if isinstance(stmt, ast.Call) and stmt.name == "add":
            return True
        if isinstance(stmt, ast.If) and (has_add(stmt.then) or has_add(stmt.otherwise or ())):
            return True
    return False


class _Lowerer:
    def __init__(self, program: Program, limits: Limits) -> None:
        self.program = program
        self.limits = limits
        self.diags: list[Diagnostic] = []
        self.seen: set[tuple] = set()
        self.nodes: dict[str, ir.NodeBase] = {}
        self.stages: dict[str, StageInfo] = {}
        self.blocks: dict[str, BlockInfo] = {}
        self.namers: dict[str, Namer] = {"": Namer()}
        self.current: str | None = None
        self.input_span: Span | None = None
        self.steps = 0

    # -- entry --------------------------------------------------------------------------
    def run(self, net: ast.NetworkDef, overrides: dict[str, object],
            input_shape: tuple[int, int, int] | None) -> Lowered:
        self.input_override = input_shape
        env = self._bind_network(net, overrides)
        ctx = _Ctx(self.program.main, env, "", "network")
        try:
            self._body(net.body, ctx)
        except _Abort:
            pass
        if self.current is None and not self._aborted() and \
                not any(d.code == "E309" for d in self.diags):
            self._report(RnetError(Diagnostic(
                "E309", f"network `{net.name}` has no `input`", net.name_span,
                "start the network with e.g. `input 3x224x224`")), ())
        arguments = {p.name: env.values[p.name] for p in net.params
                     if isinstance(env.values.get(p.name), (bool, int, float))}
        input_node = self.nodes.get("input")
        network = Network(
            name=net.name,
            file=self.program.main.name,
            span=net.name_span,
            arguments=arguments,
            input_shape=input_node.shape if input_node is not None else None,
            nodes=self.nodes,
            stages=self.stages,
            blocks=self.blocks,
            output=self.current,
        )
        return Lowered(network, self.diags)

    def _aborted(self) -> bool:
        return any(d.code in ("E401", "E601", "E602") for d in self.diags)

    def _bind_network(self, net: ast.NetworkDef, overrides: dict[str, object]) -> Env:
        env = Env()
        names = [p.name for p in net.params]
        for key in overrides:
            if key not in names:
                self._report(RnetError(Diagnostic(
                    "E104", f"network `{net.name}` has no parameter `{key}`", net.name_span,
                    did_you_mean(key, names) or
                    (f"its parameters: {', '.join(names)}" if names else "it takes no parameters"))), ())
        seen: set[str] = set()
        for p in net.params:
            if p.name in seen:
                self._report(RnetError(Diagnostic(
                    "E103", f"parameter `{p.name}` is declared twice", p.span)), ())
                continue
            seen.add(p.name)
            if p.name in overrides:
                env.define(p.name, overrides[p.name], p.span)
            elif p.default is None:
                env.poison(p.name, p.span)
                self._report(RnetError(Diagnostic(
                    "E204", f"network `{net.name}` needs a value for `{p.name}`", p.span,
                    f"pass --set {p.name}=VALUE (Python: {p.name}=VALUE)")), ())
            else:
                try:
                    env.define(p.name, evaluate(p.default, env, self.limits), p.span)
                except Poisoned:
                    env.poison(p.name, p.span)
                except RnetError as exc:
                    env.poison(p.name, p.span)
                    self._report(exc, ())
        return env

    # -- statements ---------------------------------------------------------------------
    def _body(self, stmts: tuple[ast.Stmt, ...], ctx: _Ctx) -> None:
        for stmt in stmts:
            self.steps += 1
            if self.steps > self.limits.max_steps:
                self._report(RnetError(Diagnostic(
                    "E601", f"lowering ran more than {self.limits.max_steps:,} statements "
                    "(blocks calling blocks too many times?)", stmt.span,
                    raise_hint("max_steps"))), ctx.trace)
                raise _Abort()
            try:
                self._stmt(stmt, ctx)
            except Poisoned:
                continue
            except RnetError as exc:
                self._report(exc, ctx.trace)
                # Past a limit, or a failed `require` (the spec's own assumptions do not
                # hold), going on would only produce noise.
                if any(d.code in ("E401", "E601", "E602") for d in exc.diagnostics):
                    raise _Abort() from None

    def _stmt(self, stmt: ast.Stmt, ctx: _Ctx) -> None:
        if isinstance(stmt, ast.Let):
            self._let(stmt, ctx)
        elif isinstance(stmt, ast.Require):
            self._require(stmt, ctx)
        elif isinstance(stmt, ast.If):
            cond = evaluate(stmt.condition, ctx.env, self.limits)
            if not isinstance(cond, bool):
                raise fail("E202", f"`if` needs a boolean condition, got {show(cond)}",
                           stmt.condition.span, "write a comparison, e.g. `drop > 0`")
            self._body(stmt.then if cond else (stmt.otherwise or ()), ctx)
        elif isinstance(stmt, ast.Input):
            self._input(stmt, ctx)
        elif isinstance(stmt, ast.Section):
            self._section(stmt, ctx)
        elif isinstance(stmt, ast.Stage):
            self._stage(stmt, ctx)
        elif isinstance(stmt, ast.Call):
            self._call(stmt, ctx)
        else:  # pragma: no cover - the parser makes no other statements
            raise TypeError(stmt)

    def _let(self, stmt: ast.Let, ctx: _Ctx) -> None:
        if stmt.name in ctx.env.values:
            raise RnetError(Diagnostic(
                "E103", f"`{stmt.name}` is already defined", stmt.name_span,
                "names cannot be rebound; choose another name",
                [Note(ctx.env.spans[stmt.name], "first defined here")]))
        try:
            ctx.env.define(stmt.name, evaluate(stmt.value, ctx.env, self.limits), stmt.name_span)
        except (RnetError, Poisoned):
            ctx.env.poison(stmt.name, stmt.name_span)
            raise

    def _require(self, stmt: ast.Require, ctx: _Ctx) -> None:
        ok = evaluate(stmt.condition, ctx.env, self.limits)
        if not isinstance(ok, bool):
            raise fail("E202", f"`require` needs a boolean condition, got {show(ok)}",
                       stmt.condition.span)
        if not ok:
            text = self._text(stmt.condition.span)
            values = ", ".join(f"{n} = {show(v)}" for n, v in ctx.env.values.items()
                               if isinstance(v, (bool, int, float)) and n in _names(stmt.condition))
            message = stmt.message or f"requirement `{text}` does not hold"
            raise RnetError(Diagnostic(
                "E401", message, stmt.condition.span,
                f"here {values}" if values else None))

    def _input(self, stmt: ast.Input, ctx: _Ctx) -> None:
        if ctx.kind != "network":
            raise fail("E307", "`input` belongs in a network, not in a block", stmt.span)
        if self.current is not None:
            raise RnetError(Diagnostic(
                "E309", "`input` must come once, before the first layer", stmt.span,
                notes=[Note(self.input_span, "the network starts here")] if self.input_span else []))
        values = [self._dim(item, ctx, "input size") for item in stmt.dims.items]
        if len(values) != 3:
            raise fail("E202", f"`input` takes CxHxW (3 sizes), got {len(values)}",
                       stmt.dims.span, "e.g. `input 3x224x224`")
        c, h, w = self.input_override or values
        self._limit(c, "max_channels", "input channels", stmt.span)
        for size in (h, w):
            self._limit(size, "max_spatial", "input size", stmt.span)
        if min(c, h, w) < 1:
            raise fail("E203", f"input sizes must be positive, got {c}x{h}x{w}", stmt.span)
        self.input_span = stmt.span
        self.namers[""].claim("input", stmt.span)
        node = ir.InputNode(name="input", span=stmt.span, section=ctx.section,
                            channels=c, size=(h, w), shape=(c, h, w))
        self.nodes["input"] = node
        self.current = "input"

    def _section(self, stmt: ast.Section, ctx: _Ctx) -> None:
        if ctx.kind != "network" or ctx.section != "body":
            raise fail("E307", f"`{stmt.kind}` belongs at the top level of a network", stmt.span)
        self._body(stmt.body, replace(ctx, section=stmt.kind))

    # -- stages and blocks --------------------------------------------------------------
    def _stage(self, stmt: ast.Stage, ctx: _Ctx) -> None:
        if ctx.kind != "network" or ctx.section != "body":
            raise fail("E307", "`stage` belongs at the top level of a network", stmt.span)
        self._need_input(stmt.span)
        repeats = self._int(stmt.repeats, ctx, "the repeat count")
        if repeats < 1:
            raise fail("E203", f"a stage repeats its block at least once, got {repeats}",
                       stmt.repeat_span)
        self._limit(repeats, "max_repeats", "repeats", stmt.repeat_span)
        ref = self._resolve_block(stmt.block, ctx)
        stride, policy, policy_given = 1, "proj", False
        for kw in stmt.kwargs:
            if kw.name == "stride":
                stride = self._int(kw.value, ctx, "the stage's stride")
                if stride < 1:
                    raise fail("E203", f"stride must be at least 1, got {stride}", kw.value.span)
            elif kw.name == "shortcut":
                policy, policy_given = self._policy(kw), True
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
        if stride != 1 and "stride" not in param_names:
            raise RnetError(Diagnostic(
                "E308", f"block `{definition.name}` has no `stride` parameter, so the stage "
                f"cannot set stride={stride}", stmt.span,
                f"add `stride = 1` to `{definition.name}`'s parameters and use it in a conv",
                [Note(definition.name_span, "defined here")]))
        args, kwargs = self._call_values(stmt.block, ctx)
        for kname, _, _, name_span in kwargs:
            if kname == "stride":
                raise fail("E207", "the stride of a stage's blocks is set on the stage",
                           name_span, "write `stage ... BLOCK(...) stride=2`: the first block "
                           "gets it, the others stride 1")
        index = len(self.stages) + 1
        name = stmt.name or f"layer{index}"
        self.namers[""].claim(name, stmt.name_span or stmt.span)
        info = StageInfo(name=name, index=index, repeats=repeats, block=definition.name,
                         policy=policy, stride=stride, span=stmt.span)
        self.stages[name] = info
        for i in range(repeats):
            block_kwargs = list(kwargs)
            if "stride" in param_names:
                block_kwargs.append(("stride", stride if i == 0 else 1, stmt.span, stmt.span))
            before = len(self.nodes)
            scope = f"{name}.{i}"
            self._instantiate(ref, args, block_kwargs, stmt.block, ctx, scope, name, i, residual)
            info.blocks.append(scope)
            if i == 0:
                per_block = len(self.nodes) - before
                if len(self.nodes) + per_block * (repeats - 1) > self.limits.max_layers:
                    raise fail("E601", f"this stage would make {per_block * repeats:,} layers; "
                               f"the limit is {self.limits.max_layers:,} in all", stmt.span,
                               raise_hint("max_layers"))

    def _policy(self, kw: ast.Kwarg) -> str:
        if isinstance(kw.value, ast.Name) and kw.value.id in POLICIES:
            return POLICIES[kw.value.id]
        word = kw.value.id if isinstance(kw.value, ast.Name) else self._text(kw.value.span)
        raise RnetError(Diagnostic(
            "E205", f"unknown shortcut policy `{word}`", kw.value.span,
            did_you_mean(word, POLICIES) or
            "policies: identity, zeropad (A), proj (B), proj_all (C), avgproj (D)"))

    def _resolve_block(self, call: ast.Call, ctx: _Ctx) -> BlockRef:
        ref = ctx.file.blocks.get(call.name)
        if ref is None:
            raise RnetError(Diagnostic(
                "E101", f"unknown block `{call.name}`", call.name_span,
                did_you_mean(call.name, ctx.file.blocks) or
                (f"`{call.name}` is a layer; a stage repeats a block" if call.name in LAYERS
                 else f"blocks here: {', '.join(sorted(ctx.file.blocks))}")))
        return ref

    def _instantiate(self, ref: BlockRef, args: list[Arg], kwargs: list[Kwarg], call: ast.Call,
                     ctx: _Ctx, scope: str, stage: str, index: int, residual: bool) -> None:
        definition = ref.definition
        env = self._bind_block(ref, args, kwargs, call, ctx)
        assert self.current is not None
        state = _BlockState(name=scope, input=self.current)
        self.namers[scope] = Namer(reserved=("downsample",))
        inner = _Ctx(ref.file, env, scope, "block", ctx.section, stage, state,
                     ctx.trace + (call.span,), ctx.calls + (definition.name,), ctx.depth + 1)
        self._body(definition.body, inner)
        stride = env.values.get("stride", 1)
        block_args = {p.name: env.values[p.name] for p in definition.params
                      if isinstance(env.values.get(p.name), (bool, int, float))}
        if residual and state.add is None:
            raise RnetError(Diagnostic(
                "E306", f"block `{definition.name}` ended without reaching its `add`",
                call.span, "make sure every branch of its `if`s reaches `add`",
                [Note(definition.name_span, "defined here")]))
        self.blocks[scope] = BlockInfo(
            name=scope, stage=stage, index=index, definition=definition.name, args=block_args,
            stride=stride if isinstance(stride, int) and not isinstance(stride, bool) else 1,
            input=state.input, fork=state.fork or state.input, add=state.add, residual=residual,
            shortcut="identity" if residual else "none", proj_bn=state.proj_bn, span=call.span)

    def _bind_block(self, ref: BlockRef, args: list[Arg], kwargs: list[Kwarg], call: ast.Call,
                    ctx: _Ctx) -> Env:
        definition = ref.definition
        if ctx.depth + 1 > self.limits.max_block_depth:
            chain = " -> ".join(ctx.calls[-4:] + (definition.name,))
            raise fail("E602", f"blocks call each other more than {self.limits.max_block_depth} "
                       f"deep (... {chain})", call.span, "a block that calls itself needs an `if` "
                       "that stops the recursion")
        explicit, missing = bind_block(definition.name, definition.params, args, kwargs,
                                       call.span, definition.name_span)
        env = Env()
        for pname, (value, span) in explicit.items():
            env.define(pname, value, span)
        for p in missing:
            assert p.default is not None
            env.define(p.name, evaluate(p.default, env, self.limits), p.span)
        return env

    # -- layers -------------------------------------------------------------------------
    def _call(self, call: ast.Call, ctx: _Ctx) -> None:
        if call.name in LAYERS:
            self._layer(call, ctx)
            return
        ref = ctx.file.blocks.get(call.name)
        if ref is None:
            candidates = list(LAYERS) + list(ctx.file.blocks)
            synonym = SYNONYMS.get(call.name.lower())
            raise RnetError(Diagnostic(
                "E101", f"unknown layer or block `{call.name}`", call.name_span,
                (f"rnetc calls it `{synonym}`" if synonym else None) or
                did_you_mean(call.name, candidates) or f"layers: {', '.join(LAYERS)}"))
        definition = ref.definition
        if has_add(definition.body):
            raise RnetError(Diagnostic(
                "E307", f"block `{call.name}` has an `add`, so it is a residual block: "
                "repeat it with `stage`", call.span,
                f"e.g. `stage x 2 {call.name}(...)`", [Note(definition.name_span, "defined here")]))
        if call.alias is not None:
            raise fail("E207", "`as NAME` names a layer, not a block call", call.alias_span)
        self._need_input(call.span)
        args, kwargs = self._call_values(call, ctx)
        env = self._bind_block(ref, args, kwargs, call, ctx)
        inner = replace(ctx, file=ref.file, env=env, trace=ctx.trace + (call.span,),
                        calls=ctx.calls + (definition.name,), depth=ctx.depth + 1)
        self._body(definition.body, inner)

    def _layer(self, call: ast.Call, ctx: _Ctx) -> None:
        op = call.name
        args, kwargs = self._call_values(call, ctx)
        bound = bind_layer(op, args, kwargs, call.span)
        if op in ("fork", "add"):
            self._block_marker(call, bound, ctx)
            return
        self._need_input(call.span)
        value = {k: v for k, (v, _) in bound.items()}
        span_of = {k: s for k, (_, s) in bound.items()}
        if op == "conv":
            out = value["out"]
            self._positive(value, span_of, ("out", "groups"))
            self._limit(out, "max_channels", "channels", span_of["out"])
            kernel, stride, dilation = value["kernel"], value["stride"], value["dilation"]
            for key in ("kernel", "stride", "dilation"):
                self._positive_pair(value[key], span_of[key], key)
                self._limit(max(value[key]), "max_spatial", key, span_of[key])
            padding = value["padding"]
            if padding is None:
                padding = tuple(d * (k - 1) // 2 for k, d in zip(kernel, dilation))
            elif min(padding) < 0:
                raise fail("E203", f"padding must be at least 0, got {show(padding)}", span_of["padding"])
            self._limit(max(padding), "max_spatial", "padding", span_of["padding"])
            self._emit(ir.Conv, "conv", call, ctx, out_channels=out, kernel=kernel, stride=stride,
                       padding=padding, dilation=dilation, groups=value["groups"], bias=value["bias"])
        elif op == "bn":
            if value["eps"] <= 0:
                raise fail("E203", "eps must be positive", span_of["eps"])
            if not 0 <= value["momentum"] <= 1:
                raise fail("E203", "momentum must be between 0 and 1", span_of["momentum"])
            self._emit(ir.BatchNorm, "bn", call, ctx, eps=value["eps"], momentum=value["momentum"])
        elif op in ACTIVATIONS:
            extra = {"slope": value["slope"]} if op == "leaky_relu" else {}
            self._emit(ir.Activation, op, call, ctx, kind=op, **extra)
        elif op in ("maxpool", "avgpool"):
            kind = "max" if op == "maxpool" else "avg"
            kernel = value["kernel"]
            if isinstance(kernel, GlobalFlag):
                self._emit(ir.GlobalPool, op, call, ctx, kind=kind)
                return
            self._positive_pair(kernel, span_of["kernel"], "kernel")
            stride = value["stride"] if value["stride"] is not None else kernel
            self._positive_pair(stride, span_of["stride"], "stride")
            padding = value["padding"]
            if min(padding) < 0 or any(2 * p > k for p, k in zip(padding, kernel)):
                raise fail("E203", f"pool padding must be between 0 and half the kernel, got "
                           f"{show(padding)} for kernel {show(kernel)}", span_of["padding"])
            extra = {"count_include_pad": value["count_pad"]} if kind == "avg" else {}
            self._emit(ir.Pool, op, call, ctx, kind=kind, kernel=kernel, stride=stride,
                       padding=padding, ceil_mode=value["ceil"], **extra)
        elif op == "dropout":
            if not 0 <= value["p"] < 1:
                raise fail("E203", f"dropout probability must be in [0, 1), got {value['p']}",
                           span_of["p"])
            self._emit(ir.Dropout, "dropout", call, ctx, p=value["p"])
        elif op == "flatten":
            self._emit(ir.Flatten, "flatten", call, ctx)
        elif op == "fc":
            self._positive(value, span_of, ("out",))
            self._limit(value["out"], "max_channels", "features", span_of["out"])
            self._emit(ir.Linear, "fc", call, ctx, out_features=value["out"], bias=value["bias"])
        else:  # pragma: no cover - LAYERS and this dispatch are kept in step
            raise AssertionError(op)

    def _block_marker(self, call: ast.Call, bound: dict[str, Arg], ctx: _Ctx) -> None:
        state = ctx.block
        if state is None or ctx.kind != "block":
            raise fail("E306", f"`{call.name}` is only meaningful inside a block", call.span)
        if call.name == "fork":
            if state.fork is not None or state.add is not None:
                raise fail("E306", "`fork` must come once, before `add`", call.span)
            state.fork = self.current
            for name in state.members:
                self.nodes[name].part = "pre"
            return
        if state.add is not None:
            raise fail("E306", "a block has one `add`", call.span)
        if call.alias is not None:
            raise fail("E207", "the addition is always named `add`", call.alias_span)
        state.proj_bn = bound["proj_bn"][0]
        node = self._emit(ir.Add, "add", call, ctx)
        state.add = node.name
        state.part = "post"

    def _emit(self, cls, label: str, call: ast.Call, ctx: _Ctx, **attrs) -> ir.NodeBase:
        if len(self.nodes) >= self.limits.max_layers:
            raise fail("E601", f"the network has more than {self.limits.max_layers:,} layers",
                       call.span, raise_hint("max_layers"))
        local = self.namers[ctx.scope].take(label, call.alias, call.alias_span or call.span)
        name = f"{ctx.scope}.{local}" if ctx.scope else local
        block = ctx.block
        # The attributes were checked by `bind_layer` and the range checks above, so the
        # node is built without re-validation (lowering makes thousands of them).
        node = cls.model_construct(name=name, inputs=[self.current], span=call.span, trace=list(ctx.trace),
                   section=ctx.section, stage=ctx.stage,
                   block=block.name if block else None, part=block.part if block else None,
                   **attrs)
        self.nodes[name] = node
        self.current = name
        if block is not None:
            block.members.append(name)
        return node

    # -- values -------------------------------------------------------------------------
    def _call_values(self, call: ast.Call, ctx: _Ctx) -> tuple[list[Arg], list[Kwarg]]:
        args = [(self._value(a, ctx), a.span) for a in call.args]
        kwargs = [(k.name, self._value(k.value, ctx), k.value.span, k.name_span) for k in call.kwargs]
        return args, kwargs

    def _value(self, value: ast.Value, ctx: _Ctx) -> object:
        if isinstance(value, ast.Global):
            return GLOBAL
        if isinstance(value, ast.Dims):
            return tuple(self._dim(item, ctx, "a size") for item in value.items)
        return evaluate(value, ctx.env, self.limits)

    def _dim(self, expr: ast.Expr, ctx: _Ctx, what: str) -> int:
        return coerce(evaluate(expr, ctx.env, self.limits), "int", expr.span, what)  # type: ignore

    def _int(self, expr: ast.Value, ctx: _Ctx, what: str) -> int:
        return coerce(self._value(expr, ctx), "int", expr.span, what)  # type: ignore[return-value]

    def _positive(self, value: dict, span_of: dict, keys: tuple[str, ...]) -> None:
        for key in keys:
            if value[key] < 1:
                raise fail("E203", f"{key} must be at least 1, got {value[key]}", span_of[key])

    def _positive_pair(self, pair: tuple[int, int], span: Span, what: str) -> None:
        if min(pair) < 1:
            raise fail("E203", f"{what} must be at least 1, got {show(pair)}", span)

    def _limit(self, value: int, name: str, what: str, span: Span) -> None:
        limit = getattr(self.limits, name)
        if value > limit:
            raise fail("E601", f"{what} {value:,} exceeds the limit of {limit:,}", span,
                       raise_hint(name))

    def _need_input(self, span: Span) -> None:
        if self.current is None:
            raise fail("E309", "a layer before the network's `input`", span,
                       "start the network with e.g. `input 3x224x224`")

    # -- diagnostics --------------------------------------------------------------------
    def _report(self, exc: RnetError, trace: tuple[Span, ...]) -> None:
        for diag in exc.diagnostics:
            diag = with_trace(diag, trace)
            key = (diag.code, diag.span, diag.message)
            if key in self.seen:
                continue
            self.seen.add(key)
            self.diags.append(diag)

    def _text(self, span: Span) -> str:
        text = self.program.sources.texts.get(span.file, "")
        lines = text.splitlines()
        if span.line != span.end_line or not 0 < span.line <= len(lines):
            return "..."
        return lines[span.line - 1][span.column - 1: span.end_column - 1]


def _names(expr: ast.Expr) -> set[str]:
    if isinstance(expr, ast.Name):
        return {expr.id}
    if isinstance(expr, ast.Binary):
        return _names(expr.left) | _names(expr.right)
    if isinstance(expr, ast.Unary):
        return _names(expr.operand)
    if isinstance(expr, ast.FuncCall):
        return set().union(*(_names(a) for a in expr.args)) if expr.args else set()
    return set()
