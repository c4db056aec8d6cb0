"""`rnetc fmt`: print a .rnet file in its one canonical layout, comments kept.

Three steps. Parse the text to the AST and its comments (`frontend.parse`). Print the AST
as `_Line`s: one per statement, block header and closing brace, each remembering the
source region it came from. Merge the comments back by source position (a comment after
the code of a line stays at its end, a comment on a line of its own stays before what
follows it) and keep one blank line wherever the source had any.

The layout: two-space indentation, one statement per line, `} else {` on one line,
`key=value` for layer and stage options, `name = value` in parameter lists and in a
network alias's arguments, spaces around binary operators, only the parentheses that
precedence needs (and around space-form arguments that contain spaces: `fc (n - 1)`),
long parameter and argument lists wrapped under their `(`. Literals,
names and the call-or-space form of each layer are kept as written. Because the output is
printed from the AST, formatting cannot change what a spec means (tests compare the
AST and the IR before and after, over every shipped spec and over generated ones).
This module must not import lark; `frontend.parse` owns it.
"""

from __future__ import annotations

import bisect
import functools
from dataclasses import dataclass

from resnet_dsl.frontend import ast
from resnet_dsl.frontend.parse import Comment, keywords, parse_with_comments

WIDTH = 100
"""Parameter and argument lists longer than this are wrapped (one statement stays one
statement: the newlines go inside the parentheses, where the grammar ignores them)."""

INDENT = "  "

Pos = tuple[int, int]  # (line, column), 1-based like `Span`


def format_source(text: str, file: str = "<string>") -> str:
    """The canonical layout of a spec's text. Raises `RnetError` (E001) if it does not parse.

    >>> print(format_source('network n(d=2){input 3x8x8;conv(3x3,d*(2+1),stride = 2) # wide\\n}'), end='')
    network n(d = 2) {
      input 3x8x8
      conv(3x3, d * (2 + 1), stride=2)  # wide
    }
    """
    module, comments = parse_with_comments(text, file)
    source = _Source(text, comments)
    printer = _Printer(source)
    printer.module(module)
    return _merge(printer.lines, comments, source)


def is_formatted(text: str, file: str = "<string>") -> bool:
    """Whether `text` is already in the canonical layout (what `rnetc fmt --check` asks)."""
    return format_source(text, file) == text


# ---- the source text, for positions the AST does not keep ------------------------------


class _Source:
    """The text with comments blanked out, to find braces between statements."""

    def __init__(self, text: str, comments: tuple[Comment, ...]) -> None:
        self.text = text
        self.lines = text.split("\n")  # lark counts lines by "\n", like this
        self.starts = [0]
        for line in self.lines:
            self.starts.append(self.starts[-1] + len(line) + 1)
        chars = list(text)
        for c in comments:
            start = self.offset((c.line, c.column))
            chars[start:start + len(c.text)] = " " * len(c.text)
        self.code = "".join(chars)
        blank = [0]
        for line in self.lines:
            blank.append(blank[-1] + (not line.strip()))
        self._blank = blank

    def offset(self, pos: Pos) -> int:
        return self.starts[pos[0] - 1] + pos[1] - 1

    def position(self, offset: int) -> Pos:
        line = bisect.bisect_right(self.starts, offset) - 1
        return (line + 1, offset - self.starts[line] + 1)

    def find(self, char: str, after: Pos) -> Pos:
        """Where the next `char` outside comments is, at or after `after`."""
        found = self.code.find(char, self.offset(after))
        if found < 0:  # pragma: no cover - the parser saw the brace
            raise ValueError(f"no {char!r} after {after}")
        return self.position(found)

    def char_at(self, pos: Pos) -> str:
        offset = self.offset(pos)
        return self.text[offset] if offset < len(self.text) else ""

    def slice(self, span) -> str:
        return self.text[self.offset((span.line, span.column)):self.offset((span.end_line, span.end_column))]

    def has_blank_between(self, after_line: int, before_line: int) -> bool:
        """Whether a blank line lies strictly between the two lines."""
        if before_line - after_line < 2:
            return False
        return self._blank[before_line - 1] - self._blank[after_line] > 0


def _start(span) -> Pos:
    return (span.line, span.column)


def _end(span) -> Pos:
    return (span.end_line, span.end_column)


def _next(pos: Pos) -> Pos:
    return (pos[0], pos[1] + 1)


# ---- AST -> lines ----------------------------------------------------------------------


@dataclass
class _Line:
    depth: int
    text: str     # continuation lines of a wrapped list carry their own indentation
    start: Pos    # where the code of this line begins in the source
    anchor: Pos   # where it ends: a comment after this stays on the line
    opens: bool = False   # ends with `{`
    closes: bool = False  # begins with `}`


# Operator precedence, loosest first, as in grammar/rnet.lark.
_OR, _AND, _NOT, _COMPARE, _SUM, _PRODUCT, _UNARY, _ATOM = range(1, 9)
_BINARY = {"or": _OR, "and": _AND, "==": _COMPARE, "!=": _COMPARE, "<": _COMPARE,
           "<=": _COMPARE, ">": _COMPARE, ">=": _COMPARE, "+": _SUM, "-": _SUM,
           "*": _PRODUCT, "//": _PRODUCT, "%": _PRODUCT, "/": _PRODUCT}


@functools.lru_cache(maxsize=1)
def _parenthesised_names() -> frozenset[str]:
    # A parameter may be named like a keyword (the lexer reads `x` as a name where no
    # keyword can stand). Printed bare in an expression it could lex as the keyword, so
    # it keeps parentheses; `not`, `true` and `false` cannot be (they are legal after `(`).
    return frozenset(keywords()) - {"not", "true", "false"}


class _Printer:
    def __init__(self, source: _Source) -> None:
        self.source = source
        self.lines: list[_Line] = []

    def emit(self, depth: int, text: str, start: Pos, anchor: Pos, *, opens: bool = False,
             closes: bool = False) -> None:
        self.lines.append(_Line(depth, text, start, anchor, opens, closes))

    # -- definitions -----------------------------------------------------------------
    def module(self, module: ast.Module) -> None:
        items = sorted((*module.imports, *module.blocks, *module.networks), key=lambda i: _start(i.span))
        for item in items:
            if isinstance(item, ast.Import):
                self.emit(0, f"import {_string(item.path)}", _start(item.span), _end(item.span))
            elif isinstance(item, ast.NetworkAlias):
                call = item.target
                items_ = [self.value(a, spaced=False) for a in call.args]
                items_ += [f"{k.name} = {self.value(k.value, spaced=False)}" for k in call.kwargs]
                text = _wrap(f"network {item.name} = {call.name}(", items_, ")", 0)
                self.emit(0, text, _start(item.span), _end(item.span))
            else:
                kind = "block" if isinstance(item, ast.BlockDef) else "network"
                self.definition(kind, item)

    def definition(self, kind: str, d: ast.BlockDef | ast.NetworkDef) -> None:
        params = [p.name if p.default is None else f"{p.name} = {self.expr(p.default)}"
                  for p in d.params]
        after = _end(d.params[-1].span) if d.params else _end(d.name_span)
        brace = self.source.find("{", after)
        header = _wrap(f"{kind} {d.name}(", params, ") {", 0) if params else f"{kind} {d.name} {{"
        self.emit(0, header, _start(d.span), _next(brace), opens=True)
        self.body(d.body, 1)
        close = (d.span.end_line, d.span.end_column - 1)
        self.emit(0, "}", close, _end(d.span), closes=True)

    # -- statements ------------------------------------------------------------------
    def body(self, stmts: tuple[ast.Stmt, ...], depth: int) -> None:
        for stmt in stmts:
            self.statement(stmt, depth)

    def statement(self, stmt: ast.Stmt, depth: int) -> None:
        if isinstance(stmt, ast.If):
            self.if_chain(stmt, depth)
            return
        if isinstance(stmt, ast.Split):
            brace = self.source.find("{", _end(stmt.parts.span))
            self.emit(depth, f"split {self.expr(stmt.parts)} {{", _start(stmt.span), _next(brace),
                      opens=True)
            self.body(stmt.body, depth + 1)
            close = (stmt.span.end_line, stmt.span.end_column - 1)
            self.emit(depth, "}", close, _end(stmt.span), closes=True)
            return
        if isinstance(stmt, ast.Section):
            brace = self.source.find("{", _start(stmt.span))
            self.emit(depth, f"{stmt.kind} {{", _start(stmt.span), _next(brace), opens=True)
            self.body(stmt.body, depth + 1)
            close = (stmt.span.end_line, stmt.span.end_column - 1)
            self.emit(depth, "}", close, _end(stmt.span), closes=True)
            return
        if isinstance(stmt, ast.Let):
            text = f"let {stmt.name} = {self.expr(stmt.value)}"
        elif isinstance(stmt, ast.Require):
            text = f"require {self.expr(stmt.condition)}"
            if stmt.message is not None:
                text += f", {_string(stmt.message)}"
        elif isinstance(stmt, ast.Input):
            text = f"input {self.dims(stmt.dims)}"
        elif isinstance(stmt, ast.Stage):
            text = self.stage(stmt, depth)
        elif isinstance(stmt, ast.Call):
            text = self.call(stmt, depth, "")
        else:  # pragma: no cover - the parser makes no other statements
            raise TypeError(stmt)
        self.emit(depth, text, _start(stmt.span), _end(stmt.span))

    def if_chain(self, stmt: ast.If, depth: int) -> None:
        brace = self.source.find("{", _end(stmt.condition.span))
        self.emit(depth, f"if {self.expr(stmt.condition)} {{", _start(stmt.span), _next(brace),
                  opens=True)
        node, opened = stmt, brace
        while True:
            self.body(node.then, depth + 1)
            if node.otherwise is None:
                close = (node.span.end_line, node.span.end_column - 1)
                self.emit(depth, "}", close, _end(node.span), closes=True)
                return
            last = _end(node.then[-1].span) if node.then else _next(opened)
            close = self.source.find("}", last)
            inner = node.otherwise[0] if len(node.otherwise) == 1 else None
            # `else if` and `else { if ... }` make the same AST; the chain form ends
            # where its inner `if` ends, the nested form at a later `}`.
            if isinstance(inner, ast.If) and _end(inner.span) == _end(node.span):
                opened = self.source.find("{", _end(inner.condition.span))
                self.emit(depth, f"}} else if {self.expr(inner.condition)} {{", close, _next(opened),
                          opens=True, closes=True)
                node = inner
                continue
            opened = self.source.find("{", _next(close))
            self.emit(depth, "} else {", close, _next(opened), opens=True, closes=True)
            self.body(node.otherwise, depth + 1)
            close = (node.span.end_line, node.span.end_column - 1)
            self.emit(depth, "}", close, _end(node.span), closes=True)
            return

    def stage(self, stmt: ast.Stage, depth: int) -> str:
        head = "stage " + (f"{stmt.name} " if stmt.name else "")
        if isinstance(stmt.repeats, ast.Int):
            head += f"x{stmt.repeats.value} "
        else:
            # The whole count in parentheses: `x ((d - 2) // 6)`, never `x (d - 2) // 6`.
            head += f"x {self.expr(stmt.repeats, _ATOM)} "
        options = "".join(f" {k.name}={self.value(k.value, spaced=True)}" for k in stmt.kwargs)
        return self.call(stmt.block, depth, options, prefix=head)

    def call(self, call: ast.Call, depth: int, suffix: str, prefix: str = "") -> str:
        """A layer or block call, in the form it was written in: `f(a, k=v)` or `f a k=v`."""
        alias = f" as {call.alias}" if call.alias is not None else ""
        if self.source.char_at(_end(call.name_span)) == "(":
            items = [self.value(a, spaced=False) for a in call.args]
            items += [f"{k.name}={self.value(k.value, spaced=False)}" for k in call.kwargs]
            return _wrap(f"{prefix}{call.name}(", items, f"){alias}{suffix}", depth)
        words = [call.name]
        words += [self.value(a, spaced=True) for a in call.args]
        words += [f"{k.name}={self.value(k.value, spaced=True)}" for k in call.kwargs]
        return prefix + " ".join(words) + alias + suffix

    # -- values and expressions ------------------------------------------------------
    def value(self, value: ast.Value, *, spaced: bool) -> str:
        """An argument. `spaced`: of the space form (`conv 3x3 (w * 2) stride=(s + 1)`),
        where spaces separate the arguments, so an expression with spaces (or a sign,
        which the grammar refuses there) is grouped in parentheses."""
        if isinstance(value, ast.Global):
            return "global"
        if isinstance(value, ast.Dims):
            return self.dims(value)
        return self.expr(value, _ATOM if spaced else _OR)

    def dims(self, dims: ast.Dims) -> str:
        if len(dims.items) > 1 and all(isinstance(i, ast.Int) for i in dims.items):
            return "x".join(str(i.value) for i in dims.items)  # one token: 3x3
        # `3 x (size // 2)`: the grammar would take `3 x size // 2` the same way, but
        # readers should not need to know that `x` binds more loosely than `//`.
        return " x ".join(self.expr(i, _ATOM) for i in dims.items)

    def expr(self, expr: ast.Expr, level: int = _OR) -> str:
        """`expr` printed with only the parentheses that binding tighter than `level` needs."""
        text, own = self._expr(expr)
        return f"({text})" if own < level else text

    def _expr(self, e: ast.Expr) -> tuple[str, int]:
        if isinstance(e, ast.Int):
            return str(e.value), _ATOM
        if isinstance(e, ast.Float):
            written = self.source.slice(e.span)
            return (written if _same_float(written, e.value) else repr(e.value)), _ATOM
        if isinstance(e, ast.Bool):
            return ("true" if e.value else "false"), _ATOM
        if isinstance(e, ast.Name):
            return (f"({e.id})" if e.id in _parenthesised_names() else e.id), _ATOM
        if isinstance(e, ast.FuncCall):
            return f"{e.name}({', '.join(self.expr(a) for a in e.args)})", _ATOM
        if isinstance(e, ast.Unary):
            if e.op == "not":
                return f"not {self.expr(e.operand, _NOT)}", _NOT
            operand = self.expr(e.operand, _UNARY)
            gap = " " if operand[0] in "+-" else ""
            return f"{e.op}{gap}{operand}", _UNARY
        if isinstance(e, ast.Binary):
            level = _BINARY[e.op]
            if level == _COMPARE:  # `a < b < c` is not in the language
                left, right = self.expr(e.left, _SUM), self.expr(e.right, _SUM)
            else:  # left-associative
                left, right = self.expr(e.left, level), self.expr(e.right, level + 1)
            return f"{left} {e.op} {right}", level
        raise TypeError(f"not an expression: {e!r}")  # pragma: no cover


def _same_float(written: str, value: float) -> bool:
    try:
        return float(written) == value
    except ValueError:
        return False


def _string(value: str) -> str:
    # The grammar knows the escapes \" \\ and \n only.
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _wrap(prefix: str, items: list[str], suffix: str, depth: int) -> str:
    """`prefix` + items joined by `, ` + `suffix`; wrapped under the `(` if too long."""
    margin = len(INDENT) * depth
    one_line = prefix + ", ".join(items) + suffix
    if margin + len(one_line) <= WIDTH or len(items) < 2:
        return one_line
    hang = " " * (margin + len(prefix))
    rows: list[str] = []
    row = prefix
    for i, item in enumerate(items):
        piece = item + ("," if i < len(items) - 1 else suffix)
        fresh = row == prefix or row == hang
        if fresh or margin * (not rows) + len(row) + 1 + len(piece) <= WIDTH:
            row = row + piece if fresh else f"{row} {piece}"
        else:
            rows.append(row)
            row = hang + piece
    rows.append(row)
    return "\n".join(rows)


# ---- lines + comments -> text ----------------------------------------------------------


def _merge(lines: list[_Line], comments: tuple[Comment, ...], source: _Source) -> str:
    out: list[str] = []
    last_line = 0            # the source line the previous output item ended on
    after_opener = True      # no blank line at the top of the file or of a body
    pending = sorted(comments, key=lambda c: (c.line, c.column))
    k = 0

    def put(text: str, first: int, last: int, closes: bool = False) -> None:
        nonlocal last_line
        if out and not after_opener and not closes and source.has_blank_between(last_line, first):
            out.append("")
        out.append(text)
        last_line = last

    for i, line in enumerate(lines):
        while k < len(pending) and (pending[k].line, pending[k].column) < line.anchor:
            c = pending[k]
            before_close = line.closes and (c.line, c.column) < line.start
            put(INDENT * (line.depth + before_close) + c.text.rstrip(), c.line, c.line)
            after_opener = False
            k += 1
        text = INDENT * line.depth + line.text
        following = lines[i + 1].start if i + 1 < len(lines) else None
        if k < len(pending):
            c = pending[k]
            if c.line == line.anchor[0] and (following is None or following > (c.line, c.column)):
                text += "  " + c.text.rstrip()
                k += 1
        put(text, line.start[0], line.anchor[0], line.closes)
        after_opener = line.opens
    for c in pending[k:]:
        put(c.text.rstrip(), c.line, c.line)
        after_opener = False
    return "\n".join(out) + "\n" if out else ""
