"""Source text -> typed AST (`frontend.ast`). The only module that knows lark.

The grammar is `grammar/rnet.lark` in the repository; an installed wheel carries it as
`resnet_dsl/grammar/rnet.lark` (see pyproject.toml). Syntax errors become rnetc
diagnostics (code E001) that say what was found and what would have been accepted.
"""

from __future__ import annotations

import functools
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import lark
from lark import Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from resnet_dsl.errors import Diagnostic, Note, RnetError, Span, escape_source
from resnet_dsl.frontend import ast
from resnet_dsl.limits import raise_hint

_PACKAGE_GRAMMAR = Path(__file__).resolve().parent.parent / "grammar" / "rnet.lark"
_REPO_GRAMMAR = Path(__file__).resolve().parents[2] / "grammar" / "rnet.lark"


def grammar_path() -> Path:
    """Where the one grammar lives: inside the installed package, else in the repository."""
    for path in (_PACKAGE_GRAMMAR, _REPO_GRAMMAR):
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"rnetc's grammar is missing: looked for {_PACKAGE_GRAMMAR} and {_REPO_GRAMMAR}"
    )


class _Layout:
    """Post-lexer: newlines inside ( ) do not end a statement; remembers open brackets.

    It also keeps what a syntax error needs to explain itself (`_syntax_diagnostic`):
    each line's indentation, braces that a `}` closed although it is indented like an
    outer brace's line, the `}` that closed the last definition, an `else` that starts a
    line after an `if`'s `}`, and a comparison that follows another (`a < b < c`).
    """

    always_accept = ("_NL",)

    # Tokens inside an expression (atoms and arithmetic); any other token but a
    # parenthesis ends the run of comparisons that `a < b < c` is looked for in.
    _EXPR = frozenset({"INT", "FLOAT", "NAME", "TRUE", "FALSE", "ADD_OP", "MUL_OP", "DIMS"})

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self.open_braces: list[Token] = []
        self.open_parens: list[Token] = []
        self.indent: dict[int, int] = {}   # line -> column of its first token
        # per open brace: the first two tokens of its statement, and its line's indent
        self.brace_owner: list[tuple[Token | None, Token | None, int]] = []
        # (`{`, `}`, its statement's first two tokens): the `}` starts its line and is
        # indented like an enclosing `{`'s line, not like this `{`'s
        self.misclosed: list[tuple[Token, Token, Token | None, Token | None]] = []
        # the `}` that closed the last top-level definition: (`{`, `}`, keyword, name)
        self.closed_definition: tuple[Token, Token, Token | None, Token | None] | None = None
        self.dangling_else: tuple[Token, Token] | None = None   # (`else`, the `if`'s `}`)
        self.chained: tuple[Token | None, Token, Token] | None = None  # (start, 1st op, 2nd op)

    def process(self, stream):
        self._reset()
        indent, parens = self.indent, self.open_parens
        braces, owners = self.open_braces, self.brace_owner
        expr_kinds = self._EXPR
        line = 0
        stmt: Token | None = None     # the first two tokens of the current statement
        second: Token | None = None
        at_start = True               # the next token starts a statement
        # the last `}` and its statement, while only `;` and line breaks follow it
        closed: tuple[Token, Token | None] | None = None
        comps: list[list] = [[None, None]]   # per ( depth: [expression start, comparison]
        for tok in stream:
            kind = tok.type
            if kind == "_NL":
                if parens:
                    continue
                at_start = True
                comps[-1] = [None, None]
                yield tok
                continue
            if tok.line != line:
                line = tok.line
                indent.setdefault(line, tok.column)
            if at_start:
                if kind == "NAME" and tok.value == "else" and closed is not None \
                        and closed[1] is not None and closed[1].type == "IF" \
                        and self.dangling_else is None:
                    self.dangling_else = (tok, closed[0])
                stmt, second, at_start = tok, None, False
            elif second is None:
                second = tok
            top = comps[-1]
            if kind in expr_kinds:
                if top[0] is None:
                    top[0] = tok
            elif kind == "COMP_OP":
                if top[1] is not None:
                    self.chained = (top[0], top[1], tok)
                top[1] = tok
            elif kind in ("LPAR", "CALL_OPEN"):
                if top[0] is None:
                    top[0] = tok
                parens.append(tok)
                comps.append([None, None])
            elif kind == "RPAR":
                if parens:
                    parens.pop()
                    comps.pop()
            else:
                comps[-1] = [None, None]
                if kind == "LBRACE":
                    braces.append(tok)
                    owners.append((stmt, second, indent[tok.line]))
                    at_start = True
                elif kind == "RBRACE" and braces:
                    opened = braces.pop()
                    owner, owner_second, own_indent = owners.pop()
                    if indent[tok.line] == tok.column < own_indent and owners \
                            and owners[-1][2] == tok.column:
                        self.misclosed.append((opened, tok, owner, owner_second))
                    stmt, second = owner, owner_second
                    if not braces:
                        self.closed_definition = (opened, tok, stmt, second)
                    closed = (tok, stmt)
                elif kind == "SEMICOLON":
                    at_start = True
            if kind != "SEMICOLON" and kind != "RBRACE":
                closed = None
            yield tok


@dataclass(frozen=True, slots=True)
class Comment:
    """A `# ...` comment. The grammar ignores comments; the formatter needs them back."""

    text: str     # from `#` to the end of the line, newline excluded
    line: int     # 1-based, like `Span`
    column: int


class _CommentSink:
    """Lexer callback: lark calls it for every COMMENT token, ignored or not."""

    def __init__(self) -> None:
        self.comments: list[Comment] = []

    def __call__(self, tok: Token) -> Token:
        self.comments.append(Comment(tok.value.rstrip("\r"), tok.line, tok.column))
        return tok


def parser_cache() -> Path | None:
    """Where the analysed LALR tables are kept between processes (lark's `cache`, keyed
    inside the file by a hash of the grammar, the options, lark's and Python's versions, so
    a stale file is rebuilt, never used): `$RNETC_CACHE_DIR`, else `$XDG_CACHE_HOME/rnetc`,
    else `~/.cache/rnetc`. The file is a pickle, so it is used only from a directory this
    user owns that nobody else can write; `RNETC_CACHE_DIR=""` turns the cache off. Building
    the tables costs about 65 ms a process; loading them a few."""
    configured = os.environ.get("RNETC_CACHE_DIR")
    if configured == "":
        return None
    if configured is not None:
        folder = Path(configured)
    else:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        folder = Path(base) / "rnetc"
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = folder.stat()
    except OSError:
        return None
    if (hasattr(os, "getuid") and info.st_uid != os.getuid()) or \
            info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return None
    return folder / "parser.lark-cache"


@functools.lru_cache(maxsize=1)
def _parser() -> tuple[lark.Lark, _Layout, _CommentSink]:
    layout = _Layout()
    sink = _CommentSink()
    cache = parser_cache()
    parser = lark.Lark(
        grammar_path().read_text(encoding="utf-8"),
        parser="lalr",
        lexer="contextual",
        propagate_positions=True,
        maybe_placeholders=True,
        postlex=layout,
        lexer_callbacks={"COMMENT": sink},
        cache=str(cache) if cache is not None else False,
    )
    return parser, layout, sink


def keywords() -> list[str]:
    """The language's reserved words, read from the grammar (for editors and docs)."""
    parser, _, _ = _parser()
    words = set()
    for term in parser.terminals:
        pattern = term.pattern
        if pattern.type == "str" and pattern.value.isidentifier():
            words.add(pattern.value)
    return sorted(words)


def parse(text: str, file: str, max_nesting: int = 100) -> ast.Module:
    """Parse one file's text. Raises `RnetError` (E001) on a syntax error, and E601 when
    the text nests deeper than `max_nesting` (operators, parentheses, braces), which no
    real spec does and which would otherwise exhaust the recursion of later stages.

    >>> m = parse('network tiny { input 3x8x8; conv 3x3 4 }', 'tiny.rnet')
    >>> m.networks[0].name
    'tiny'
    """
    return parse_with_comments(text, file, max_nesting)[0]


def parse_with_comments(text: str, file: str, max_nesting: int = 100
                        ) -> tuple[ast.Module, tuple[Comment, ...]]:
    """Parse one file and also return its comments, in source order (for `rnetc fmt`).

    >>> module, comments = parse_with_comments('# tiny\\nnetwork t { input 1x2x2 }  # ok', 't.rnet')
    >>> [(c.text, c.line, c.column) for c in comments]
    [('# tiny', 1, 1), ('# ok', 2, 28)]
    """
    parser, layout, sink = _parser()
    sink.comments = []
    try:
        tree = parser.parse(text)
    except UnexpectedInput as exc:
        raise RnetError(_syntax_diagnostic(exc, text, file, layout, parser)) from None
    if layout.dangling_else is not None:   # `else` on a line of its own parsed as a layer
        raise RnetError(_dangling_else(layout.dangling_else, text, file))
    _check_nesting(tree, file, max_nesting)
    comments = tuple(sink.comments)
    try:
        return _ToAst(file).transform(tree), comments
    except VisitError as exc:  # a literal the transformer rejects (bad escape, ...)
        if isinstance(exc.orig_exc, RnetError):
            raise exc.orig_exc from None
        raise


def _check_nesting(tree: lark.Tree, file: str, limit: int) -> None:
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            meta = node.meta
            span = Span(file, meta.line, meta.column, meta.line, meta.column + 1) \
                if not meta.empty else None
            raise RnetError(Diagnostic(
                "E601", f"the spec nests deeper than {limit} levels", span,
                "split the expression with `let`s, or flatten the nesting; "
                + raise_hint("max_nesting")))
        stack.extend((child, depth + 1) for child in node.children if isinstance(child, lark.Tree))


# ---- syntax errors ---------------------------------------------------------------

_WORDS = {
    "NAME": "a name",
    "PATH_NAME": "a module path like `stages.0.blocks`",
    "INT": "an integer",
    "FLOAT": "a number",
    "STRING": 'a string ("...")',
    "DIMS": "a size like 3x3",
    "REPEAT": "a repeat count like x4",
    "CALL_OPEN": "a call like `name(`",
    "_NL": "a new line",
    "$END": "the end of the file",
    "COMP_OP": "a comparison",
    "ADD_OP": "`+` or `-`",
    "MUL_OP": "`*`, `//`, `%` or `/`",
}


_VALUE_START = frozenset({"INT", "FLOAT", "NAME", "LPAR", "CALL_OPEN", "ADD_OP", "TRUE", "FALSE",
                          "NOT", "DIMS", "GLOBAL"})
_STATEMENT_START = frozenset({"LET", "REQUIRE", "IF", "INPUT", "STEM", "HEAD", "STAGE", "SPLIT", "NAME",
                              "CALL_OPEN"})


def _describe_terminal(name: str, parser: lark.Lark) -> str:
    if name in _WORDS:
        return _WORDS[name]
    try:
        pattern = parser.get_terminal(name).pattern
    except KeyError:
        return name.lower()
    return f"`{pattern.value}`" if pattern.type == "str" else name.lower()


def _describe_token(tok: Token) -> str:
    if tok.type == "_NL":
        return "end of line"
    if tok.type == "$END":
        return "end of file"
    return f"`{escape_source(tok.value)}`"


def _syntax_diagnostic(exc: UnexpectedInput, text: str, file: str, layout: _Layout,
                       parser: lark.Lark) -> Diagnostic:
    line = getattr(exc, "line", None) or 1
    column = getattr(exc, "column", None) or 1
    notes: list[Note] = []
    if isinstance(exc, UnexpectedCharacters):
        char = text[exc.pos_in_stream] if 0 <= exc.pos_in_stream < len(text) else "?"
        span = Span(file, line, column, line, column + 1)
        message = f"unexpected character `{escape_source(char)}`"
        help_ = _char_help(char)
        return Diagnostic("E001", message, span, help_)
    expected = sorted(getattr(exc, "expected", None) or getattr(exc, "accepts", None) or [])
    token = getattr(exc, "token", None)
    at_end = isinstance(exc, UnexpectedEOF) or (token is not None and token.type == "$END")
    if at_end:
        lines = text.splitlines() or [""]
        line, column = len(lines), len(lines[-1]) + 1
        span = Span(file, line, column, line, column + 1)
        message = "unexpected end of file"
    else:
        assert token is not None
        end_col = token.end_column if token.end_column and token.end_line == token.line else column + 1
        span = Span(file, token.line, token.column, token.line, end_col)
        message = f"unexpected {_describe_token(token)}"
    expected = [t for t in expected if t not in ("WS", "COMMENT")]
    pitfall = _pitfall(token, at_end, expected, text, file, layout)
    if pitfall is not None:
        return pitfall
    words = []
    if len(_VALUE_START.intersection(expected)) >= 3:
        words.append("a value")
        expected = [t for t in expected if t not in _VALUE_START]
    if len(_STATEMENT_START.intersection(expected)) >= 4:
        words.append("a statement")
        expected = [t for t in expected if t not in _STATEMENT_START]
    words = sorted(set(words + [_describe_terminal(t, parser) for t in expected]))
    help_ = None
    if words:
        shown = ", ".join(words[:8]) + (", ..." if len(words) > 8 else "")
        message += f"; expected {shown}" if len(words) > 1 else f"; expected {words[0]}"
    if "RPAR" in expected and layout.open_parens:
        paren = layout.open_parens[-1]   # `(`, or the end of `name(`
        col = paren.column + len(paren.value) - 1
        notes.append(Note(Span(file, paren.line, col, paren.line, col + 1),
                          "this `(` is never closed"))
        help_ = "add the missing `)`"
    elif at_end and layout.open_braces:
        brace, closer, owner = _unclosed_brace(layout)
        notes.append(Note(_tok_span(file, brace), "this `{` is never closed"))
        help_ = "add the missing `}`"
        if closer is not None:   # the `}` the parser matched it with is an outer brace's
            notes.append(Note(_tok_span(file, closer), "this `}`, indented like line "
                              f"{layout.open_braces[-1].line}, belongs to that line's `{{`"))
            help_ = f"add the `}}` that closes {owner}" if owner else help_
            before = _first_line_back(layout, brace, closer)
            if before is not None:
                help_ += f", before line {before}"
    elif isinstance(exc, UnexpectedToken) and token is not None and token.type == "NAME" \
            and "EQUAL" in expected and "_NL" in expected:
        help_ = "keyword arguments are written `name=value`"
    return Diagnostic("E001", message, span, help_, notes)


def _tok_span(file: str, tok: Token) -> Span:
    return Span(file, tok.line, tok.column, tok.line, tok.column + len(tok.value))


def _pitfall(token: Token | None, at_end: bool, expected: list[str], text: str, file: str,
             layout: _Layout) -> Diagnostic | None:
    """The syntax errors of known pitfalls, explained: `a < b < c`, an `else` on the line
    after its `}`, and a `}` too many that ends a network early."""
    chained = layout.chained
    if token is not None and chained is not None and token.type == "COMP_OP" \
            and chained[2] is token:
        start, first, second = chained
        return Diagnostic(
            "E001", f"unexpected `{second.value}`: comparisons do not chain",
            _tok_span(file, second), _unchain(text, start, first, second),
            [Note(_tok_span(file, first), "the first comparison")])
    dangling = layout.dangling_else
    if token is not None and not at_end and dangling is not None \
            and token.line == dangling[0].line and token.column >= dangling[0].column:
        return _dangling_else(dangling, text, file)
    closed = layout.closed_definition
    top_level = {"NETWORK", "BLOCK", "IMPORT"} <= set(expected)
    if token is None or at_end or closed is None or not top_level \
            or (token.line, token.column) <= (closed[1].line, closed[1].column):
        return None
    opened, brace, keyword, name = closed
    in_body = token.type in ("LET", "REQUIRE", "IF", "ELSE", "INPUT", "STEM", "HEAD", "STAGE", "SPLIT",
                             "RBRACE", "SEMICOLON") \
        or (token.type in ("NAME", "CALL_OPEN") and token.column > layout.indent.get(opened.line, 1))
    if not in_body:
        return None
    what = _describe_owner(keyword, name) or "the definition"
    if token.type == "RBRACE":
        message = f"unexpected `}}`: {what} is already closed"
    else:
        message = f"unexpected {_describe_token(token)} after the end of {what}"
    return Diagnostic(
        "E001", message, _tok_span(file, token),
        "remove the extra `}`" if token.type == "RBRACE"
        else f"remove the extra `}}`, so that what follows stays inside {what}",
        [Note(_tok_span(file, brace), f"this `}}` closes {what} (opened on line {opened.line})")])


def _dangling_else(dangling: tuple[Token, Token], text: str, file: str) -> Diagnostic:
    """`}` NEWLINE `else`: a line break (or `;`) after the `}` ended the `if`, so the
    `else` starts a statement of its own (the lexer read it as a name)."""
    else_tok, brace = dangling
    rest = text[else_tok.end_pos:].split("\n", 1)[0].lstrip()
    joined = "} else if ... {" if rest.startswith("if") and rest[2:3] in (" ", "(") else "} else {"
    if else_tok.line > brace.line:
        message = "`else` must be on the same line as the `}` that closes the `if`"
        note, help_ = "a line break after this `}` ends the `if`", f"write `{joined}` on one line"
    else:
        message = "`else` must follow the `}` that closes the `if`"
        note, help_ = "the `;` after this `}` ends the `if`", f"remove the `;`: `{joined}`"
    return Diagnostic("E001", message, _tok_span(file, else_tok), help_,
                      [Note(_tok_span(file, brace), note)])


def _unchain(text: str, start: Token | None, first: Token, second: Token) -> str:
    """`write `a < b and b < c`` for the chain `a < b < c`, from the source text."""
    generic = "write `a < b and b < c`"
    if start is None or start.line != second.line:
        return generic
    left = text[start.start_pos:first.start_pos].strip()
    middle = text[first.end_pos:second.start_pos].strip()
    depth, end = 0, second.end_pos
    stops = {",", "{", "}", ";", "#", "\n"}
    while end < len(text):
        char = text[end]
        if char == "(":
            depth += 1
        elif char == ")":
            if depth == 0:
                break
            depth -= 1
        elif depth == 0 and (char in stops or text.startswith((" and ", " or "), end)):
            break
        end += 1
    right = text[second.end_pos:end].strip()
    if not (left and middle and right) or "\n" in left + middle:
        return generic
    return f"write `{left} {first.value} {middle} and {middle} {second.value} {right}`"


def _unclosed_brace(layout: _Layout) -> tuple[Token, Token | None, str | None]:
    """The `{` most likely missing its `}` at the end of the file: the innermost one still
    open, unless a later `{` was closed by a `}` indented like an outer brace's line (that
    `}` is then the outer brace's, and the later `{` is the one left open). Returns the
    `{`, that `}` (or None) and what the `{` belongs to (`stem`, ...)."""
    brace, closer, owner = layout.open_braces[-1], None, None
    for opened, by, keyword, name in layout.misclosed:
        if (opened.line, opened.column) > (brace.line, brace.column):
            brace, closer, owner = opened, by, _describe_owner(keyword, name)
    return brace, closer, owner


def _describe_owner(keyword: Token | None, name: Token | None) -> str | None:
    if keyword is None:
        return None
    if keyword.type in ("NETWORK", "BLOCK") and name is not None and name.type != "EQUAL":
        return f"{keyword.value} `{name.value.rstrip('(')}`"
    if keyword.type in ("STEM", "HEAD"):
        return f"`{keyword.value}`"
    if keyword.type == "IF":
        return "the `if`"
    return None


def _first_line_back(layout: _Layout, brace: Token, closer: Token) -> int | None:
    """The first line after `brace` indented no deeper than its own line: where its `}`
    was probably meant to go."""
    own = layout.indent.get(brace.line)
    if own is None:
        return None
    for line in range(brace.line + 1, closer.line + 1):
        column = layout.indent.get(line)
        if column is not None and column <= own:
            return line
    return None


def _char_help(char: str) -> str | None:
    if char == "'":
        return 'strings use double quotes: "..."'
    if char in "[]":
        return "lists are not part of the language; sizes are written like 3x3"
    if char == "@":
        return None
    return None


# ---- tree -> AST ----------------------------------------------------------------------


def _span(file: str, meta) -> Span:
    return Span(file, meta.line, meta.column, meta.end_line, meta.end_column)


def _tspan(file: str, tok: Token) -> Span:
    return Span(file, tok.line, tok.column, tok.end_line, tok.end_column)


class _Params(tuple):
    pass


class _Body(tuple):
    pass


class _CallArgs(tuple):
    pass


@v_args(meta=True)
class _ToAst(Transformer):
    """Builds `frontend.ast` nodes from lark's tree (one method per grammar rule)."""

    def __init__(self, file: str):
        super().__init__(visit_tokens=False)
        self.file = file

    # definitions
    def start(self, meta, children):
        imports, blocks, networks = [], [], []
        for item in children:
            if isinstance(item, ast.Import):
                imports.append(item)
            elif isinstance(item, ast.BlockDef):
                blocks.append(item)
            elif isinstance(item, (ast.NetworkDef, ast.NetworkAlias)):
                networks.append(item)
        return ast.Module(self.file, tuple(imports), tuple(blocks), tuple(networks))

    def import_stmt(self, meta, children):
        return ast.Import(self._string(children[0]), _span(self.file, meta))

    def _definition(self, meta, children):
        name_tok = children[0]
        params = next((c for c in children if isinstance(c, _Params)), _Params())
        body = children[-1]
        name = name_tok.value.rstrip("(")
        name_span = Span(self.file, name_tok.line, name_tok.column, name_tok.line,
                         name_tok.column + len(name))
        return name, tuple(params), tuple(body), _span(self.file, meta), name_span

    def block_def(self, meta, children):
        return ast.BlockDef(*self._definition(meta, children))

    def network_def(self, meta, children):
        return ast.NetworkDef(*self._definition(meta, children))

    def network_alias(self, meta, children):
        name, head, call_args = children
        target = self._call(meta, [head, call_args])
        return ast.NetworkAlias(name.value, target, _span(self.file, meta), _tspan(self.file, name))

    def params(self, meta, children):
        return _Params(children)

    def param(self, meta, children):
        return ast.Param(children[0].value, children[1], _span(self.file, meta))

    def body(self, meta, children):
        return _Body(c for c in children if c is not None)

    # statements
    def let_stmt(self, meta, children):
        name = children[0]
        return ast.Let(name.value, children[1], _span(self.file, meta), _tspan(self.file, name))

    def require_stmt(self, meta, children):
        message = self._string(children[1]) if children[1] is not None else None
        return ast.Require(children[0], message, _span(self.file, meta))

    def if_stmt(self, meta, children):
        cond, then = children[0], children[1]
        other = children[2] if len(children) > 2 else None
        if isinstance(other, ast.If):
            other = (other,)
        return ast.If(cond, tuple(then), tuple(other) if other is not None else None,
                      _span(self.file, meta))

    def split_stmt(self, meta, children):
        return ast.Split(children[0], tuple(children[1]), _span(self.file, meta))

    def input_stmt(self, meta, children):
        return ast.Input(children[0], _span(self.file, meta))

    def dims(self, meta, children):
        (item,) = children
        if isinstance(item, ast.Dims):
            return item
        return ast.Dims((item,), item.span)

    def stem_section(self, meta, children):
        return ast.Section("stem", tuple(children[0]), _span(self.file, meta))

    def head_section(self, meta, children):
        return ast.Section("head", tuple(children[0]), _span(self.file, meta))

    def stage_stmt(self, meta, children):
        name_tok, repeat, block, *kwargs = children
        if isinstance(repeat, Token):  # x4
            rspan = _tspan(self.file, repeat)
            repeats = ast.Int(int(repeat.value[1:]), rspan)
        else:
            repeats, rspan = repeat, repeat.span
        return ast.Stage(
            name_tok.value if name_tok is not None else None,
            repeats,
            block,
            tuple(kwargs),
            _span(self.file, meta),
            _tspan(self.file, name_tok) if name_tok is not None else None,
            rspan,
        )

    def stage_block(self, meta, children):
        return self._call(meta, children)

    def layer_stmt(self, meta, children):
        return self._call(meta, children)

    def _call(self, meta, children):
        head = children[0]
        name = head.value.rstrip("(")
        name_span = Span(self.file, head.line, head.column, head.line, head.column + len(name))
        args: list = []
        kwargs: list[ast.Kwarg] = []
        alias = alias_span = None
        for child in children[1:]:
            if child is None:
                continue
            if isinstance(child, _CallArgs):
                for item in child:
                    (kwargs if isinstance(item, ast.Kwarg) else args).append(item)
            elif isinstance(child, ast.Kwarg):
                kwargs.append(child)
            elif isinstance(child, Token) and child.type in ("NAME", "PATH_NAME"):
                alias, alias_span = child.value, _tspan(self.file, child)
            elif isinstance(child, Token) and child.type == "GLOBAL":
                args.append(ast.Global(_tspan(self.file, child)))
            else:
                args.append(child)
        return ast.Call(name, tuple(args), tuple(kwargs), alias, _span(self.file, meta),
                        name_span, alias_span)

    def call_args(self, meta, children):
        out = []
        for c in children:
            if isinstance(c, Token) and c.type == "GLOBAL":
                out.append(ast.Global(_tspan(self.file, c)))
            else:
                out.append(c)
        return _CallArgs(out)

    def kwarg(self, meta, children):
        name, value = children
        if isinstance(value, Token) and value.type == "GLOBAL":
            value = ast.Global(_tspan(self.file, value))
        return ast.Kwarg(name.value, value, _span(self.file, meta), _tspan(self.file, name))

    def dims_literal(self, meta, children):
        (tok,) = children
        items = []
        col = tok.column
        for part in tok.value.split("x"):
            items.append(ast.Int(int(part), Span(self.file, tok.line, col, tok.line, col + len(part))))
            col += len(part) + 1
        return ast.Dims(tuple(items), _tspan(self.file, tok))

    def dims_expr(self, meta, children):
        return ast.Dims(tuple(children), _span(self.file, meta))

    # expressions
    def or_op(self, meta, children):
        return ast.Binary("or", children[0], children[1], _span(self.file, meta))

    def and_op(self, meta, children):
        return ast.Binary("and", children[0], children[1], _span(self.file, meta))

    def not_op(self, meta, children):
        return ast.Unary("not", children[0], _span(self.file, meta))

    def compare(self, meta, children):
        left, op, right = children
        return ast.Binary(op.value, left, right, _span(self.file, meta))

    def binary(self, meta, children):
        left, op, right = children
        return ast.Binary(op.value, left, right, _span(self.file, meta))

    def unary_op(self, meta, children):
        op, operand = children
        return ast.Unary(op.value, operand, _span(self.file, meta))

    def int_lit(self, meta, children):
        return ast.Int(int(children[0].value), _span(self.file, meta))

    def float_lit(self, meta, children):
        return ast.Float(float(children[0].value), _span(self.file, meta))

    def bool_lit(self, meta, children):
        return ast.Bool(children[0].value == "true", _span(self.file, meta))

    def name_ref(self, meta, children):
        return ast.Name(children[0].value, _span(self.file, meta))

    def func_call(self, meta, children):
        head, *args = children
        name = head.value.rstrip("(")
        name_span = Span(self.file, head.line, head.column, head.line, head.column + len(name))
        return ast.FuncCall(name, tuple(a for a in args if a is not None), _span(self.file, meta),
                            name_span)

    def _string(self, tok: Token) -> str:
        # The grammar admits only the escapes \" \\ and \n.
        out, chars, i = [], tok.value[1:-1], 0
        while i < len(chars):
            if chars[i] == "\\" and i + 1 < len(chars):
                out.append({"n": "\n"}.get(chars[i + 1], chars[i + 1]))
                i += 2
            else:
                out.append(chars[i])
                i += 1
        return "".join(out)
