"""Spans and the one error type of rnetc.

Every user-facing problem is a `Diagnostic`: a stable code, a message in the user's
words, the `Span` it points at, an optional `help:` fix and notes that point at other
places (the block definition behind an instance, say). `RnetError` carries one or more
diagnostics; validation collects all it can find before raising. This module knows
nothing of lark, torch or the IR.
"""

from __future__ import annotations

import difflib
import json
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Iterable

PRELUDE_NAME = "<prelude>"


@dataclass(frozen=True, slots=True)
class Span:
    """A region of a source file: 1-based line and column, end exclusive."""

    file: str
    line: int
    column: int
    end_line: int
    end_column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"

    def to_dict(self) -> dict:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "end_line": self.end_line,
            "end_column": self.end_column,
        }


@dataclass(frozen=True, slots=True)
class Note:
    span: Span | None
    message: str


@dataclass(slots=True)
class Diagnostic:
    """One problem. `code` is stable (see docs/errors.md); tests assert on fields."""

    code: str
    message: str
    span: Span | None = None
    help: str | None = None
    notes: list[Note] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "code": self.code,
            "message": self.message,
            "span": self.span.to_dict() if self.span else None,
            "help": self.help,
            "notes": [
                {"message": n.message, "span": n.span.to_dict() if n.span else None}
                for n in self.notes
            ],
        }


class RnetError(Exception):
    """The single error type of rnetc: one or more diagnostics about user input."""

    def __init__(self, diagnostics: Diagnostic | Iterable[Diagnostic]):
        if isinstance(diagnostics, Diagnostic):
            diagnostics = [diagnostics]
        self.diagnostics: list[Diagnostic] = sorted(diagnostics, key=_position)
        self.sources: SourceLookup | None = None  # set by the compiler for rendering
        first = self.diagnostics[0] if self.diagnostics else None
        super().__init__(
            f"{first.span}: error[{first.code}]: {first.message}" if first and first.span
            else (f"error[{first.code}]: {first.message}" if first else "error")
        )

    @property
    def codes(self) -> list[str]:
        return [d.code for d in self.diagnostics]

    def render(self, sources: SourceLookup | None = None, color: bool = False) -> str:
        sources = sources or self.sources
        return "\n".join(render(d, sources, color) for d in self.diagnostics)

    def to_json(self) -> str:
        return json.dumps({"errors": [d.to_dict() for d in self.diagnostics]}, indent=2)


def _position(d: Diagnostic) -> tuple:
    s = d.span
    return (s.file, s.line, s.column) if s else ("", 0, 0)


def error(code: str, message: str, span: Span | None = None, help: str | None = None,
          notes: Iterable[Note] = ()) -> RnetError:
    """Shorthand for an `RnetError` with one diagnostic."""
    return RnetError(Diagnostic(code, message, span, help, list(notes)))


def did_you_mean(word: str, candidates: Iterable[str]) -> str | None:
    """A `help:` line suggesting the closest candidate, if one is close enough."""
    close = difflib.get_close_matches(word, sorted(set(candidates)), n=1, cutoff=0.6)
    return f"did you mean `{close[0]}`?" if close else None


class SourceLookup:
    """Maps a span's file name to its text, for rendering the offending line."""

    def __init__(self, texts: dict[str, str] | None = None):
        self.texts: dict[str, str] = dict(texts or {})

    def add(self, name: str, text: str) -> None:
        self.texts[name] = text

    def line(self, name: str, lineno: int) -> str | None:
        text = self.texts.get(name)
        if text is None:
            try:
                text = Path(name).read_text(encoding="utf-8", errors="replace")
            except OSError:
                return None
            self.texts[name] = text
        lines = text.splitlines()
        return lines[lineno - 1] if 0 < lineno <= len(lines) else None


_ESCAPES = {"\0": "\\0", "\n": "\\n", "\r": "\\r", "\x1b": "\\e"}


def escape_source(text: str) -> str:
    """`text` with the characters a terminal would not show escaped: NUL as `\\0`, other
    control and format characters (a form feed, ESC, a zero-width space, a BOM) as
    `\\xNN` or `\\uNNNN`. Tabs stay (excerpts expand them); printable text is unchanged,
    so escaping twice changes nothing.

    >>> print(escape_source("conv 3x3 1\\x00 x\\x0c\\u200b"))
    conv 3x3 1\\0 x\\x0c\\u200b
    >>> escape_source("résumé")
    'résumé'
    """
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch == "\t" or unicodedata.category(ch) not in ("Cc", "Cf", "Zl", "Zp"):
            out.append(ch)
        elif ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        else:
            out.append(f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")
    return "".join(out)


def render(d: Diagnostic, sources: SourceLookup | None = None, color: bool = False) -> str:
    """Render like rustc: `file:line:col: error[CODE]: message`, source line, carets, help.

    Source text (the excerpt, and words of it quoted in messages) is shown through
    `escape_source`, so a NUL byte or an escape sequence in a spec prints as `\\0`, `\\e`.
    """
    sources = sources or SourceLookup()
    red, blue, bold, reset = ("\x1b[31m", "\x1b[34m", "\x1b[1m", "\x1b[0m") if color else ("",) * 4
    where = f"{d.span}: " if d.span else ""
    out = [f"{bold}{where}{red}error[{d.code}]{reset}{bold}: {escape_source(d.message)}{reset}"]
    if d.span:
        out += _excerpt(d.span, sources, blue, red, reset)
    for note in d.notes:
        where = f"{note.span}: " if note.span else ""
        out.append(f"  {blue}= note:{reset} {where}{escape_source(note.message)}")
    if d.help:
        out.append(f"  {blue}= help:{reset} {escape_source(d.help)}")
    return "\n".join(out)


def _excerpt(span: Span, sources: SourceLookup, blue: str, red: str, reset: str) -> list[str]:
    text = sources.line(span.file, span.line)
    if text is None:
        return []
    text = text.expandtabs(1)
    gutter = " " * len(str(span.line))
    start = max(span.column - 1, 0)
    if span.end_line == span.line:
        width = max(span.end_column - span.column, 1)
    else:
        width = max(len(text.rstrip()) - start, 1)
    if not text.isprintable():   # escapes are wider than the characters: move the carets too
        start, width = len(escape_source(text[:start])), max(len(escape_source(text[start:start + width])), 1)
        text = escape_source(text)
    return [
        f"{blue}{gutter} |{reset}",
        f"{blue}{span.line} |{reset} {text}",
        f"{blue}{gutter} |{reset} {' ' * start}{red}{'^' * width}{reset}",
    ]


def with_trace(d: Diagnostic, trace: Iterable[Span]) -> Diagnostic:
    """Attach the block call sites an error happened under.

    An error inside a built-in block (whose text is the prelude, not the user's file)
    points at the user's call instead, with the built-in's line as a note.
    """
    trace = list(trace)
    if not trace:
        return d
    notes = list(d.notes)
    span = d.span
    if span is not None and span.file == PRELUDE_NAME:
        user = next((s for s in reversed(trace) if s.file != PRELUDE_NAME), None)
        if user is not None:
            notes.insert(0, Note(span, "inside the built-in block (`rnetc prelude` prints it)"))
            span = user
            trace = [s for s in trace if s != user]
    for call in reversed(trace):
        if call.file != PRELUDE_NAME:
            notes.append(Note(call, "in the block called here"))
    return Diagnostic(d.code, d.message, span, d.help, notes)
