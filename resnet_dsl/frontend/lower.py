"""AST -> IR: run a network definition, unrolling stages and blocks into layer nodes.

Lowering evaluates parameters, `let`s, `require`s and `if`s, calls blocks (the built-in
ones are defined in `prelude.rnet`) and names every node after the spec: stem and head
layers at the top level (`conv1 bn1 relu maxpool ... fc`), stages `layer1..` with
numbered blocks (`layer1.0`), and inside each scope convs and BNs numbered
(`conv1 bn1 conv2 ...`) and other layers by kind (`relu`, `relu_1`, `avgpool`, `fc`).
Shapes, shortcuts and counts are left to the passes. Every problem is collected.

The parts: this file runs statements (`let require if input stem/head`) and dispatches;
`layers.py` lowers layer calls, `blocks.py` block calls and the `fork`/`add` markers,
`stages.py` stages; `context.py` holds the state they share.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from resnet_dsl.errors import Diagnostic, Note, RnetError, did_you_mean
from resnet_dsl.frontend import ast, blocks, layers
from resnet_dsl.frontend.context import ABORTING, Abort, Ctx, Lowering, SilentSkip
from resnet_dsl.frontend.evaluate import Env, Poisoned, evaluate, fail, show
from resnet_dsl.frontend.signatures import LAYERS
from resnet_dsl.frontend.source import Program
from resnet_dsl.frontend.splits import lower_split
from resnet_dsl.frontend.stages import lower_stage
from resnet_dsl.ir import nodes as ir
from resnet_dsl.ir.graph import Network
from resnet_dsl.ir.shortcuts import POLICIES  # noqa: F401  (the language's policy words)
from resnet_dsl.limits import Limits, raise_hint

MARKERS = ("fork", "add", "branch", "mul", "add_previous")
SYNONYMS = layers.SYNONYMS
has_add = blocks.has_add

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
        lowerer.lw.report(exc, ())
        return Lowered(Network.model_construct(name=name, file=program.main.name), lowerer.lw.diags)
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


class _Lowerer:
    """Runs statements; layers, blocks and stages are lowered by their own modules."""

    def __init__(self, program: Program, limits: Limits) -> None:
        self.program = program
        self.limits = limits
        self.lw = Lowering(program, limits, run_body=self._body)

    # -- entry --------------------------------------------------------------------------
    def run(self, net: ast.NetworkDef, overrides: dict[str, object],
            input_shape: tuple[int, int, int] | None) -> Lowered:
        self.input_override = input_shape
        env = self._bind_network(net, overrides)
        ctx = Ctx(self.program.main, env, "", "network")
        try:
            self._body(net.body, ctx)
        except Abort:
            pass
        if self.lw.current is None and not self.lw.aborted() and \
                not any(d.code == "E309" for d in self.lw.diags):
            self.lw.report(RnetError(Diagnostic(
                "E309", f"network `{net.name}` has no `input`", net.name_span,
                "start the network with e.g. `input 3x224x224`")), ())
        arguments = {p.name: env.values[p.name] for p in net.params
                     if isinstance(env.values.get(p.name), (bool, int, float))}
        input_node = self.lw.nodes.get("input")
        network = Network.model_construct(  # our own values: no schema, no validation
            name=net.name,
            file=self.program.main.name,
            span=net.name_span,
            arguments=arguments,
            input_shape=input_node.shape if input_node is not None else None,
            nodes=self.lw.nodes,
            stages=self.lw.stages,
            blocks=self.lw.blocks,
            output=self.lw.current,
        )
        return Lowered(network, self.lw.diags)

    def _bind_network(self, net: ast.NetworkDef, overrides: dict[str, object]) -> Env:
        env = Env()
        names = [p.name for p in net.params]
        for key in overrides:
            if key not in names:
                self.lw.report(RnetError(Diagnostic(
                    "E104", f"network `{net.name}` has no parameter `{key}`", net.name_span,
                    did_you_mean(key, names) or
                    (f"its parameters: {', '.join(names)}" if names else "it takes no parameters"))), ())
        seen: set[str] = set()
        for p in net.params:
            if p.name in seen:
                self.lw.report(RnetError(Diagnostic(
                    "E103", f"parameter `{p.name}` is declared twice", p.span)), ())
                continue
            seen.add(p.name)
            if p.name in overrides:
                env.define(p.name, overrides[p.name], p.span)
            elif p.default is None:
                env.poison(p.name, p.span)
                self.lw.report(RnetError(Diagnostic(
                    "E204", f"network `{net.name}` needs a value for `{p.name}`", p.span,
                    f"pass --set {p.name}=VALUE (Python: {p.name}=VALUE)")), ())
            else:
                try:
                    env.define(p.name, evaluate(p.default, env, self.limits), p.span)
                except Poisoned:
                    env.poison(p.name, p.span)
                except RnetError as exc:
                    env.poison(p.name, p.span)
                    self.lw.report(exc, ())
        return env

    # -- statements ---------------------------------------------------------------------
    def _body(self, stmts: tuple[ast.Stmt, ...], ctx: Ctx) -> None:
        for stmt in stmts:
            self.lw.steps += 1
            if self.lw.steps > self.limits.max_steps:
                self.lw.report(RnetError(Diagnostic(
                    "E601", f"lowering ran more than {self.limits.max_steps:,} statements "
                    "(blocks calling blocks too many times?)", stmt.span,
                    raise_hint("max_steps"))), ctx.trace)
                raise Abort()
            try:
                self._stmt(stmt, ctx)
            except (Poisoned, SilentSkip):
                continue
            except RnetError as exc:
                self.lw.report(exc, ctx.trace)
                # Past a limit, or a failed `require` (the spec's own assumptions do not
                # hold), going on would only produce noise.
                if any(d.code in ABORTING for d in exc.diagnostics):
                    raise Abort() from None

    def _stmt(self, stmt: ast.Stmt, ctx: Ctx) -> None:
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
            lower_stage(self.lw, stmt, ctx)
        elif isinstance(stmt, ast.Split):
            lower_split(self.lw, stmt, ctx)
        elif isinstance(stmt, ast.Call):
            self._call(stmt, ctx)
        else:  # pragma: no cover - the parser makes no other statements
            raise TypeError(stmt)

    def _let(self, stmt: ast.Let, ctx: Ctx) -> None:
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

    def _require(self, stmt: ast.Require, ctx: Ctx) -> None:
        ok = evaluate(stmt.condition, ctx.env, self.limits)
        if not isinstance(ok, bool):
            raise fail("E202", f"`require` needs a boolean condition, got {show(ok)}",
                       stmt.condition.span)
        if not ok:
            text = self.lw.text(stmt.condition.span)
            values = ", ".join(f"{n} = {show(v)}" for n, v in ctx.env.values.items()
                               if isinstance(v, (bool, int, float)) and n in _names(stmt.condition))
            message = stmt.message or f"requirement `{text}` does not hold"
            raise RnetError(Diagnostic(
                "E401", message, stmt.condition.span,
                f"here {values}" if values else None))

    def _input(self, stmt: ast.Input, ctx: Ctx) -> None:
        if ctx.kind != "network":
            raise fail("E307", "`input` belongs in a network, not in a block", stmt.span)
        if self.lw.current is not None:
            raise RnetError(Diagnostic(
                "E309", "`input` must come once, before the first layer", stmt.span,
                notes=[Note(self.lw.input_span, "the network starts here")] if self.lw.input_span else []))
        values = [layers.dim(self.lw, item, ctx, "input size") for item in stmt.dims.items]
        if len(values) != 3:
            raise fail("E202", f"`input` takes CxHxW (3 sizes), got {len(values)}",
                       stmt.dims.span, "e.g. `input 3x224x224`")
        c, h, w = self.input_override or values
        self.lw.limit(c, "max_channels", "input channels", stmt.span)
        for size in (h, w):
            self.lw.limit(size, "max_spatial", "input size", stmt.span)
        if min(c, h, w) < 1:
            raise fail("E203", f"input sizes must be positive, got {c}x{h}x{w}", stmt.span)
        self.lw.input_span = stmt.span
        self.lw.namers[""].claim("input", stmt.span)
        node = ir.InputNode.trusted(name="input", span=stmt.span, section=ctx.section,
                                    channels=c, size=(h, w), shape=(c, h, w))
        self.lw.nodes["input"] = node
        self.lw.current = "input"

    def _section(self, stmt: ast.Section, ctx: Ctx) -> None:
        if ctx.kind != "network" or ctx.section != "body":
            raise fail("E307", f"`{stmt.kind}` belongs at the top level of a network", stmt.span)
        self._body(stmt.body, replace(ctx, section=stmt.kind))

    # -- calls --------------------------------------------------------------------------
    def _call(self, call: ast.Call, ctx: Ctx) -> None:
        if call.name in LAYERS:
            bound = layers.bind(self.lw, call, ctx)
            if call.name in MARKERS:
                blocks.marker(self.lw, call, bound, ctx)
            else:
                layers.lower_layer(self.lw, call, ctx, bound)
            return
        if call.name not in ctx.file.blocks:
            candidates = list(LAYERS) + list(ctx.file.blocks)
            synonym = SYNONYMS.get(call.name.lower())
            raise RnetError(Diagnostic(
                "E101", f"unknown layer or block `{call.name}`", call.name_span,
                (f"rnetc calls it `{synonym}`" if synonym else None) or
                did_you_mean(call.name, candidates) or f"layers: {', '.join(LAYERS)}"))
        blocks.call_inline(self.lw, call, ctx)


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
