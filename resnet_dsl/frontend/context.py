"""What lowering carries while it runs: the IR being built, the names taken in each scope,
where the statement being lowered sits, and the problems found so far.

`Lowering` is the state the parts of lowering share (statements in `lower.py`, layers
in `layers.py`, block calls and their markers in `blocks.py`, stages in `stages.py`);
`Ctx` says where a statement sits (network or block, section, stage, block being
instantiated, call sites). No part keeps state of its own.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from resnet_dsl.errors import Diagnostic, Note, RnetError, Span, with_trace
from resnet_dsl.frontend import ast
from resnet_dsl.frontend.evaluate import Env, fail
from resnet_dsl.frontend.source import Program, SourceFile
from resnet_dsl.ir import nodes as ir
from resnet_dsl.ir.graph import BlockInfo, StageInfo
from resnet_dsl.limits import Limits, raise_hint

ABORTING = ("E401", "E601", "E602")
"""Past a limit, or a failed `require` (the spec's own assumptions do not hold), going on
would only produce noise: lowering stops."""


class Abort(Exception):
    """A limit was hit: stop lowering at once (the error is already recorded)."""


class SilentSkip(Exception):
    """This statement fails for a reason already reported once (no `input`): skip it."""


class Namer:
    """Unique local names in one scope: conv1 bn1 conv2 ...; relu relu_1 ...; aliases."""

    NUMBERED = ("conv", "bn")

    def __init__(self, reserved: tuple[str, ...] = (), *, sequential: bool = False) -> None:
        self.counts: Counter[str] = Counter()
        self.used: dict[str, Span | None] = {r: None for r in reserved}
        self.sequential = sequential  # nn.Sequential's names: every layer takes an index
        self.index = 0

    def take(self, kind: str, alias: str | None, span: Span) -> str:
        if self.sequential:
            name = alias if alias is not None else str(self.index)
            self.index += 1
            self.claim(name, span)
            return name
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


class ModulePaths:
    """The network's own modules as a tree of dotted paths (`stem.0`, `stages.1.downsample`,
    `stages.1.blocks`, `head.fc`): backends nest them as they are written, and a container
    runs its contents in order, so each container's contents must be written together,
    and no path may be both a module and a container (E103)."""

    def __init__(self) -> None:
        self.root: dict[str, tuple[dict | None, Span | None]] = {}

    def add(self, path: str, span: Span | None) -> None:
        parts = path.split(".")
        level, where = self.root, ""
        for i, part in enumerate(parts):
            where = f"{where}.{part}" if where else part
            last = i == len(parts) - 1
            entry = level.get(part)
            if entry is None:
                level[part] = (None if last else {}, span)
                if last:
                    return
                level = level[part][0]  # type: ignore[assignment]
                continue
            children, first = entry
            if last or children is None:
                what = (f"`{where}` holds other modules" if last and children is not None
                        else f"`{where}` is a module")
                raise RnetError(Diagnostic(
                    "E103", f"the module path `{path}` clashes with an earlier one: {what}",
                    span, "give one of them another name", [Note(first, "first used here")]
                    if first else []))
            if next(reversed(level)) != part:
                raise RnetError(Diagnostic(
                    "E103", f"`{where}` was left for `{next(reversed(level))}`: the modules "
                    f"under one path run in order, so they must be written together", span,
                    f"move this next to the other modules under `{where}`",
                    [Note(first, "first used here")] if first else []))
            level = children


def split_alias(call: ast.Call, ctx: Ctx) -> tuple[str, str] | None:
    """`as convs.{i}` (or `{n}`, 1-based) in a `split`'s body: (list name, this part's key)."""
    head, _, last = call.alias.partition(".")  # type: ignore[union-attr]
    if ctx.split is None or last not in ("{i}", "{n}"):
        return None
    return head, str(ctx.split.part + (last == "{n}"))


def check_path_alias(call: ast.Call, ctx: Ctx) -> None:
    """A dotted `as` name (`as head.fc`) names one of the network's own modules."""
    alias = call.alias
    if alias is None or "." not in alias:
        return
    if "{" in alias:
        raise fail("E207", f"`{alias}`: a name template (`{{i}}`, `{{n}}`) names a stage's "
                   "blocks", call.alias_span, "write the layer's name in full")
    if ctx.kind != "network" or ctx.prefix:
        raise fail("E207", f"the module path `{alias}` names a module of the network, so it "
                   "belongs outside blocks and named scopes", call.alias_span,
                   "inside a block, call a block `as NAME` to make a named scope")


@dataclass
class BlockState:
    """A residual block being instantiated: its input, and where `fork` and `add` were."""

    name: str
    input: str
    fork: str | None = None
    fork_span: Span | None = None
    add: str | None = None
    proj_bn: bool = True
    proj_gn: int = 0
    proj_named: bool = False
    proj_ws: float = 0.0


@dataclass
class Ctx:
    file: SourceFile
    env: Env
    scope: str                        # "" for the network's own layers
    kind: str                         # "network" | "block"
    section: str = "body"             # stem | body | head
    stage: str | None = None
    block: BlockState | None = None
    trace: tuple[Span, ...] = ()      # block call sites, outermost first
    calls: tuple[str, ...] = ()       # block names being expanded, for recursion messages
    depth: int = 0
    prefix: tuple[str, ...] = ()      # a named scope (`BLOCK(...) as NAME`) inside it
    branches: list = field(default_factory=list)  # open `branch`es of this body: (node, span)
    split: SplitPart | None = None    # the part of a `split` being lowered


@dataclass(frozen=True)
class SplitPart:
    """One part of a `split`: its index, and the previous part's result (`add_previous`)."""

    part: int
    parts: int
    previous: str | None
    span: Span


@dataclass
class Lowering:
    """The network being built and the diagnostics found, shared by the lowering parts."""

    program: Program
    limits: Limits
    run_body: Callable[[tuple[ast.Stmt, ...], Ctx], None]   # lower.py's statement loop
    diags: list[Diagnostic] = field(default_factory=list)
    seen: set[tuple] = field(default_factory=set)
    nodes: dict[str, ir.NodeBase] = field(default_factory=dict)
    stages: dict[str, StageInfo] = field(default_factory=dict)
    blocks: dict[str, BlockInfo] = field(default_factory=dict)
    namers: dict[str, Namer] = field(default_factory=lambda: {"": Namer()})
    current: str | None = None        # the node the next layer reads
    input_span: Span | None = None
    missing_input: bool = False       # E309 for a layer before `input` is said once
    steps: int = 0
    # A layer call's bound arguments and op attributes, by call site and the values of the
    # names its arguments read: a stage repeats its block, so most calls bind the same
    # values again (`frontend/layers.py`).
    memo: dict[tuple, tuple] = field(default_factory=dict)
    memo_names: dict[int, tuple[str, ...]] = field(default_factory=dict)
    paths: ModulePaths = field(default_factory=ModulePaths)  # the network's own modules

    def emit(self, cls: type[ir.NodeBase], label: str, call: ast.Call, ctx: Ctx,
             inputs: list[str] | None = None, **attrs) -> ir.NodeBase:
        """Add a node named in `ctx`'s scope that reads `inputs` (default: the current node).
        A join (`mul`) lives in the block's own scope, outside any named scope: it has no
        module, and the named scope stays a chain."""
        if len(self.nodes) >= self.limits.max_layers:
            raise fail("E601", f"the network has more than {self.limits.max_layers:,} layers",
                       call.span, raise_hint("max_layers"))
        namer = self.namers[".".join((ctx.scope, *ctx.prefix)) if ctx.scope else ".".join(ctx.prefix)]
        listed = None
        if call.alias is not None and "." in call.alias:
            listed = split_alias(call, ctx)
            if listed is None:
                check_path_alias(call, ctx)
        if listed is not None:   # `as convs.{i}` in a split: the part's entry of a module list
            head, index = listed
            key = ".".join((ctx.scope, *ctx.prefix, head))
            if key not in self.namers:
                namer.claim(head, call.alias_span)
                self.namers[key] = Namer()
            self.namers[key].claim(index, call.alias_span)
            path = (*ctx.prefix, head, index)
        else:
            local = namer.take(label, call.alias, call.alias_span or call.span)
            if not ctx.scope and not ctx.prefix:
                self.paths.add(local, call.alias_span or call.span)
            path = (*ctx.prefix, local)
        name = ".".join((ctx.scope, *path)) if ctx.scope else ".".join(path)
        block = ctx.block
        # The attributes were checked by the op's `from_call`, so the node is built
        # without re-validation (lowering makes thousands of them).
        node = cls.trusted(
            name=name, inputs=inputs if inputs is not None else [self.current], span=call.span,
            trace=list(ctx.trace), section=ctx.section, stage=ctx.stage,
            block=block.name if block else None,
            path=path if block or ctx.prefix else (), **attrs)
        self.nodes[name] = node
        self.current = name
        return node

    def limit(self, value: int, name: str, what: str, span: Span) -> None:
        limit = getattr(self.limits, name)
        if value > limit:
            raise fail("E601", f"{what} {value:,} exceeds the limit of {limit:,}", span,
                       raise_hint(name))

    def need_input(self, span: Span) -> None:
        if self.current is None:
            if self.missing_input:
                raise SilentSkip()
            self.missing_input = True
            raise fail("E309", "a layer before the network's `input`", span,
                       "start the network with e.g. `input 3x224x224`")

    def report(self, exc: RnetError, trace: tuple[Span, ...]) -> None:
        for diag in exc.diagnostics:
            diag = with_trace(diag, trace)
            key = (diag.code, diag.span, diag.message)
            if key in self.seen:
                continue
            self.seen.add(key)
            self.diags.append(diag)

    def aborted(self) -> bool:
        return any(d.code in ABORTING for d in self.diags)

    def text(self, span: Span) -> str:
        """The source text of a one-line span ("..." otherwise)."""
        text = self.program.sources.texts.get(span.file, "")
        lines = text.splitlines()
        if span.line != span.end_line or not 0 < span.line <= len(lines):
            return "..."
        return lines[span.line - 1][span.column - 1: span.end_column - 1]
