"""What the language server knows about one open document, in plain Python.

A `Document` compiles the editor's text (saved or not) with the document's folder as
the import root, keeps the compiler's diagnostics that belong in this document, and
answers hover, go-to-definition and completion from the program and the IR. Positions
in and out are the editor's: 0-based lines and UTF-16 columns; the compiler's spans are
1-based, end-exclusive and count characters. `tooling.lsp` wraps this in pygls; nothing
here imports pygls, so it is tested without a server too.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from resnet_dsl.errors import PRELUDE_NAME, Diagnostic, RnetError, Span
from resnet_dsl.frontend import ast
from resnet_dsl.frontend.parse import keywords, parse
from resnet_dsl.frontend.signatures import LAYERS, usage
from resnet_dsl.frontend.source import PRELUDE_PATH, BlockRef, Program, load_program, prelude
from resnet_dsl.ir.graph import Network
from resnet_dsl.ir.shortcuts import SHORTCUT_MODULE
from resnet_dsl.tooling import vocabulary

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_IMPORT = re.compile(r'^\s*import\s+"([^"\n]*)"')
_SHOWN = 8  # instances listed when a block's line made many layers


@dataclass(frozen=True)
class Range:
    """0-based lines, UTF-16 columns, end exclusive: what LSP calls a Range."""

    start_line: int
    start_char: int
    end_line: int
    end_char: int


@dataclass(frozen=True)
class Location:
    path: str
    range: Range


@dataclass(frozen=True)
class Related:
    location: Location
    message: str


@dataclass(frozen=True)
class Problem:
    """One compiler diagnostic, placed in this document."""

    code: str
    message: str
    range: Range
    related: tuple[Related, ...] = ()


@dataclass(frozen=True)
class Completion:
    label: str
    kind: str  # keyword | layer | block | function | policy | variable
    detail: str = ""


@dataclass
class Document:
    """One editor document: `text` as the editor has it, `path` where it lives (None for
    an unsaved, untitled buffer).

    >>> doc = Document('network n {\\n  input 3x8x8\\n  conv 3x3 4 strde=2\\n}\\n', None)
    >>> [(p.code, p.range) for p in doc.problems]
    [('E104', Range(start_line=2, start_char=13, end_line=2, end_char=18))]
    """

    text: str
    path: Path | None
    name: str = ""
    program: Program | None = None
    networks: list[Network] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.path = Path(self.path).resolve() if self.path is not None else None
        self.name = self.name or (str(self.path) if self.path else "<untitled>")
        self.lines = self.text.split("\n")
        self._analyse()

    # -- compiling -------------------------------------------------------------------
    def _analyse(self) -> None:
        from resnet_dsl.compiler import compile_network

        diagnostics: list[Diagnostic] = []
        try:
            self.program = load_program(self.path, text=self.text, name=self.name)
        except RnetError as exc:
            diagnostics.extend(exc.diagnostics)
        if self.program is not None:
            names = dict.fromkeys(n.name for n in self.program.main.module.networks)
            for name in names:
                try:
                    self.networks.append(compile_network(self.program, network=name))
                except RnetError as exc:
                    diagnostics.extend(exc.diagnostics)
        seen: set[tuple] = set()
        for d in diagnostics:
            problem = self._place(d)
            key = (problem.code, problem.range, problem.message)
            if key not in seen:
                seen.add(key)
                self.problems.append(problem)

    def _place(self, d: Diagnostic) -> Problem:
        message = d.message + (f"\nhelp: {d.help}" if d.help else "")
        related = tuple(Related(Location(self._path_of(n.span.file), self._range_in(n.span)), n.message)
                        for n in d.notes if n.span is not None and n.span.file != PRELUDE_NAME)
        if d.span is None:
            return Problem(d.code, message, Range(0, 0, 0, 0), related)
        if d.span.file == self.name:
            return Problem(d.code, message, self.range(d.span), related)
        # An error in an imported file is shown on the import that leads to it.
        where = Related(Location(self._path_of(d.span.file), self._range_in(d.span)), d.message)
        span = self._import_leading_to(d.span.file)
        anchor = self.range(span) if span else Range(0, 0, 0, 0)
        return Problem(d.code, f"in {d.span}: {message}", anchor, (where, *related))

    def _import_leading_to(self, file: str) -> Span | None:
        """The import statement of this document through which `file` is reached."""
        module = self._module()
        if module is None or self.path is None:
            return None
        target = Path(file).resolve()
        for imp in module.imports:
            if target in _reachable(self.path.parent / imp.path, depth=16):
                return imp.span
        return None

    def _module(self) -> ast.Module | None:
        if self.program is not None:
            return self.program.main.module
        try:
            return parse(self.text, self.name)
        except RnetError:
            return None

    # -- positions -------------------------------------------------------------------
    def range(self, span: Span) -> Range:
        """A 1-based, end-exclusive span of this document as an editor range."""
        line = _clamp(span.line, len(self.lines))
        end_line = _clamp(span.end_line, len(self.lines))
        return Range(line - 1, _utf16(self.lines[line - 1], span.column - 1),
                     end_line - 1, _utf16(self.lines[end_line - 1], span.end_column - 1))

    def _range_in(self, span: Span) -> Range:
        if span.file == self.name:
            return self.range(span)
        try:  # another file: its own text decides the UTF-16 columns
            lines = Path(self._path_of(span.file)).read_text(encoding="utf-8").split("\n")
        except OSError:
            lines = []
        line = lines[span.line - 1] if 0 < span.line <= len(lines) else ""
        end = lines[span.end_line - 1] if 0 < span.end_line <= len(lines) else ""
        return Range(span.line - 1, _utf16(line, span.column - 1), span.end_line - 1,
                     _utf16(end, span.end_column - 1))

    def _path_of(self, file: str) -> str:
        return str(PRELUDE_PATH) if file == PRELUDE_NAME else file

    def _cursor(self, line: int, char: int) -> tuple[int, int]:
        """Editor position -> (1-based line, 1-based character column)."""
        text = self.lines[line] if 0 <= line < len(self.lines) else ""
        return line + 1, _from_utf16(text, char) + 1

    def _word_at(self, line: int, column: int) -> str | None:
        text = self.lines[line - 1] if 0 < line <= len(self.lines) else ""
        for m in _WORD.finditer(text):  # the cursor may also sit just after the word
            if m.start() <= column - 1 <= m.end():
                return m.group()
        return None

    # -- hover -----------------------------------------------------------------------
    def hover(self, line: int, char: int) -> str | None:
        """Markdown for the statement under the cursor: what it compiled to."""
        lineno, column = self._cursor(line, char)
        for net in self.networks:
            for stage in net.stages.values():
                if _covers(stage.span, self.name, lineno):
                    return _stage_hover(net, stage.name)
        nodes = [(net, node) for net in self.networks for node in net.nodes.values()
                 if SHORTCUT_MODULE not in node.path and _covers(node.span, self.name, lineno)]
        if nodes:
            return _nodes_hover(nodes)
        called = [(net, node) for net in self.networks for node in net.nodes.values()
                  if any(_covers(s, self.name, lineno) for s in node.trace)]
        if called:
            return _call_hover(called)
        for net in self.networks:
            if net.span is not None and net.span.file == self.name and net.span.line == lineno:
                return _network_hover(net)
        module = self._module()
        if module is not None:
            for n in module.networks:
                built = next((x for x in self.networks if x.name == n.name), None)
                if built is not None and n.name_span.line == lineno:
                    return _network_hover(built)
        word = self._word_at(lineno, column)
        if word in _MARKERS:
            return f"```\n{word}\n```\n{_MARKERS[word]}"
        if word in LAYERS:
            return f"```\n{usage(word)[len('usage: '):]}\n```\nbuilt-in layer"
        ref = self.blocks().get(word or "")
        if ref is not None:
            return _block_hover(ref)
        return None

    # -- definition ------------------------------------------------------------------
    def definition(self, line: int, char: int) -> Location | None:
        """Where the block, network or imported file under the cursor is defined."""
        lineno, column = self._cursor(line, char)
        text = self.lines[lineno - 1] if 0 < lineno <= len(self.lines) else ""
        m = _IMPORT.match(text)
        if m and m.start(1) - 1 <= column - 1 <= m.end(1):
            base = self.path.parent if self.path else Path.cwd()
            target = (base / m.group(1)).resolve()
            return Location(str(target), Range(0, 0, 0, 0)) if target.is_file() else None
        word = self._word_at(lineno, column)
        if word is None:
            return None
        ref = self.blocks().get(word)
        if ref is not None:
            span = ref.definition.name_span
            return Location(self._path_of(span.file), self._range_in(span))
        if self.program is not None and word in self.program.main.networks:
            span = self.program.main.networks[word].name_span
            return Location(self._path_of(span.file), self._range_in(span))
        return None

    def blocks(self) -> dict[str, BlockRef]:
        """Blocks visible in this document: the prelude's, imported ones and its own."""
        if self.program is not None:
            return self.program.main.blocks
        return dict(prelude().blocks)

    # -- completion ------------------------------------------------------------------
    def completions(self, line: int, char: int) -> list[Completion]:
        """Layer and block names, keywords, functions and names in scope (or shortcut
        policies after `shortcut=`)."""
        lineno, column = self._cursor(line, char)
        before = (self.lines[lineno - 1] if 0 < lineno <= len(self.lines) else "")[:column - 1]
        if re.search(r"shortcut\s*=\s*[A-Za-z_]*$", before):
            return [Completion(p, "policy") for p in vocabulary.POLICIES]
        items = [Completion(k, "keyword") for k in keywords()]
        items += [Completion(op, "layer", usage(op)[len("usage: "):]) for op in LAYERS]
        items += [Completion(name, "block", _header(ref.definition)) for name, ref in sorted(self.blocks().items())]
        items += [Completion(f, "function", f"{f}(a, b, ...)") for f in vocabulary.FUNCTIONS]
        items += [Completion(n, "variable") for n in self._names_in_scope(lineno)]
        return items

    def _names_in_scope(self, lineno: int) -> list[str]:
        module = self._module()
        if module is None:
            return []
        for d in (*module.blocks, *module.networks):
            if isinstance(d, ast.NetworkAlias) or not d.span.line <= lineno <= d.span.end_line:
                continue
            names = [p.name for p in d.params]
            names += [s.name for s in _walk(d.body) if isinstance(s, ast.Let) and s.span.line < lineno]
            return list(dict.fromkeys(names))
        return []


# ---- helpers ---------------------------------------------------------------------------


def _utf16(text: str, column: int) -> int:
    """Character column -> UTF-16 code units (what LSP counts by default)."""
    column = max(0, min(column, len(text)))
    return len(text[:column].encode("utf-16-le")) // 2


def _from_utf16(text: str, units: int) -> int:
    count = 0
    for i, ch in enumerate(text):
        if count >= units:
            return i
        count += 2 if ord(ch) > 0xFFFF else 1
    return len(text)


def _clamp(line: int, count: int) -> int:
    return max(1, min(line, count))


def _covers(span: Span | None, file: str, line: int) -> bool:
    return span is not None and span.file == file and span.line <= line <= span.end_line


def _reachable(path: Path, depth: int) -> set[Path]:
    """`path` and every file it imports, transitively (unreadable files end the walk)."""
    seen: set[Path] = set()
    todo = [(path.resolve(), 0)]
    while todo:
        current, level = todo.pop()
        if current in seen or level > depth:
            continue
        seen.add(current)
        try:
            module = parse(current.read_text(encoding="utf-8"), str(current))
        except (OSError, UnicodeDecodeError, RnetError):
            continue
        todo += [((current.parent / imp.path).resolve(), level + 1) for imp in module.imports]
    return seen


def _walk(stmts: tuple[ast.Stmt, ...]):
    for s in stmts:
        yield s
        if isinstance(s, ast.If):
            yield from _walk(s.then)
            yield from _walk(s.otherwise or ())
        elif isinstance(s, (ast.Section, ast.Split)):
            yield from _walk(s.body)


def _header(d: ast.BlockDef) -> str:
    params = ", ".join(p.name if p.default is None else f"{p.name} = ..." for p in d.params)
    return f"block {d.name}({params})" if d.params else f"block {d.name}"


def _shape(shape) -> str:
    return "x".join(map(str, shape)) if shape else "?"


_NODE_FIELDS = {"name", "inputs", "span", "trace", "section", "stage", "block", "part", "shape",
                "params", "macs", "op"}


def _attributes(node) -> str:
    values = node.model_dump(exclude=_NODE_FIELDS)
    parts = []
    for key, value in values.items():
        if isinstance(value, (list, tuple)):
            value = "x".join(map(str, value))
        elif isinstance(value, bool):
            value = "true" if value else "false"
        parts.append(f"{key}={value}")
    return " ".join(parts)


def _nodes_hover(found) -> str:
    if len(found) == 1:
        net, node = found[0]
        attrs = _attributes(node)
        return (f"**{node.name}** `{node.op}`{' ' + attrs if attrs else ''}\n\n"
                f"output {_shape(node.shape)} · {node.params:,} parameters · {node.macs:,} MACs"
                + (f"\n\nnetwork `{net.name}`" if net else ""))
    total = sum(node.params for _, node in found)
    lines = [f"this line makes {len(found)} layers ({total:,} parameters in all):", "",
             "| layer | output | parameters |", "|---|---|---:|"]
    for _, node in found[:_SHOWN]:
        lines.append(f"| {node.name} | {_shape(node.shape)} | {node.params:,} |")
    if len(found) > _SHOWN:
        lines.append(f"| ... {len(found) - _SHOWN} more | | |")
    return "\n".join(lines)


_MARKERS = {  # words that make no layer of their own: what they mark
    "fork": "marks where a projecting shortcut reads its input (in a residual block; makes no "
            "layer)",
    "branch": "starts a side branch: the layers up to `mul` compute a gate from the value here, "
              "and `mul` multiplies the value by it (in a stage's blocks; makes no layer)",
    "add_previous": "adds the previous part's result to the value (in a `split`'s body: "
                    "Res2Net's hierarchical connection; makes no layer)",
}


def _call_hover(found) -> str:
    """A call of a block from a line: once (a stem's), or once per instance of the block
    that holds the line (a gate in a stage's block), shown per instance."""
    calls: dict[tuple[str, str | None], list] = {}
    for net, node in found:
        calls.setdefault((net.name, node.block), []).append(node)
    if len(calls) == 1:
        (nodes,) = calls.values()
        total = sum(node.params for node in nodes)
        return (f"block call: {len(nodes)} layers, {total:,} parameters\n\n"
                f"output {_shape(nodes[-1].shape)} (`{nodes[-1].name}`)")
    total = sum(node.params for _, node in found)
    lines = [f"this call is made {len(calls)} times ({len(found)} layers, {total:,} parameters "
             "in all):", "", "| in | layers | output | parameters |", "|---|---:|---|---:|"]
    for (_, block), nodes in list(calls.items())[:_SHOWN]:
        lines.append(f"| {block} | {len(nodes)} | {_shape(nodes[-1].shape)} | "
                     f"{sum(n.params for n in nodes):,} |")
    if len(calls) > _SHOWN:
        lines.append(f"| ... {len(calls) - _SHOWN} more | | | |")
    return "\n".join(lines)


def _stage_hover(net: Network, name: str) -> str:
    stage = net.stages[name]
    nodes = net.stage_nodes(name)
    params = sum(n.params for n in nodes)
    macs = sum(n.macs for n in nodes)
    out = nodes[-1].shape if nodes else None
    shortcuts = sorted({net.blocks[b].shortcut for b in stage.blocks})
    return (f"**{stage.name}**: {stage.repeats} × `{stage.block}`, stride {stage.stride}, "
            f"shortcut {stage.policy} ({', '.join(shortcuts)})\n\n"
            f"output {_shape(out)} · {params:,} parameters · {macs:,} MACs")


def _network_hover(net: Network) -> str:
    args = ", ".join(f"{k} = {v}" for k, v in net.arguments.items())
    lines = [f"**{net.name}**({args})", "",
             f"input {_shape(net.input_shape)} → output {_shape(net.output_shape)} · "
             f"{net.totals.params:,} parameters · {net.totals.macs:,} MACs"]
    if net.stages:
        lines += ["", "| stage | blocks | output | parameters |", "|---|---|---|---:|"]
        for stage in net.stages.values():
            nodes = net.stage_nodes(stage.name)
            lines.append(f"| {stage.name} | {stage.repeats} × {stage.block} | "
                         f"{_shape(nodes[-1].shape if nodes else None)} | "
                         f"{sum(n.params for n in nodes):,} |")
    return "\n".join(lines)


def _block_hover(ref: BlockRef) -> str:
    d = ref.definition
    lines = ref.file.text.split("\n")
    params = ", ".join(p.name if p.default is None else f"{p.name} = {_text(lines, p.default.span)}"
                       for p in d.params)
    doc = []
    row = d.span.line - 2
    while row >= 0 and lines[row].lstrip().startswith("#"):
        doc.insert(0, lines[row].strip().lstrip("#").strip())
        row -= 1
    where = "built-in (`rnetc prelude`)" if ref.file.name == PRELUDE_NAME else \
        os.path.basename(ref.file.name)
    header = f"block {d.name}({params})" if d.params else f"block {d.name}"
    return f"```rnet\n{header}\n```\n" + (" ".join(doc) + "\n\n" if doc else "") + f"defined in {where}"


def _text(lines: list[str], span: Span) -> str:
    if span.line != span.end_line or not 0 < span.line <= len(lines):
        return "..."
    return lines[span.line - 1][span.column - 1:span.end_column - 1]
