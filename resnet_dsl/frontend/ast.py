"""Typed syntax tree of a .rnet file, as the parser builds it.

Plain frozen dataclasses with a `Span` each; no lark types leak past `parse.py`.
Nothing here is evaluated: parameters, repeats and widths are still expressions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from resnet_dsl.errors import Span

# ---- expressions ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Int:
    value: int
    span: Span


@dataclass(frozen=True, slots=True)
class Float:
    value: float
    span: Span


@dataclass(frozen=True, slots=True)
class Bool:
    value: bool
    span: Span


@dataclass(frozen=True, slots=True)
class Name:
    id: str
    span: Span


@dataclass(frozen=True, slots=True)
class Binary:
    op: str  # + - * // % / == != < <= > >= and or
    left: Expr
    right: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class Unary:
    op: str  # - + not
    operand: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class FuncCall:
    name: str
    args: tuple[Expr, ...]
    span: Span
    name_span: Span


Expr = Union[Int, Float, Bool, Name, Binary, Unary, FuncCall]


@dataclass(frozen=True, slots=True)
class Dims:
    """`3x3`, `3 x r x r`: a kernel size, a stride pair or an input shape."""

    items: tuple[Expr, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Global:
    """The `global` flag of the pooling layers."""

    span: Span


Value = Union[Expr, Dims, Global]


@dataclass(frozen=True, slots=True)
class Kwarg:
    name: str
    value: Value
    span: Span
    name_span: Span


# ---- statements ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Let:
    name: str
    value: Expr
    span: Span
    name_span: Span


@dataclass(frozen=True, slots=True)
class Require:
    condition: Expr
    message: str | None
    span: Span


@dataclass(frozen=True, slots=True)
class If:
    condition: Expr
    then: tuple[Stmt, ...]
    otherwise: tuple[Stmt, ...] | None
    span: Span


@dataclass(frozen=True, slots=True)
class Input:
    dims: Dims
    span: Span


@dataclass(frozen=True, slots=True)
class Section:
    kind: str  # "stem" | "head"
    body: tuple[Stmt, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Call:
    """A layer statement (`conv 3x3 64 stride=2`) or a block call (`basic(64)`)."""

    name: str
    args: tuple[Value, ...]
    kwargs: tuple[Kwarg, ...]
    alias: str | None
    span: Span
    name_span: Span
    alias_span: Span | None = None


@dataclass(frozen=True, slots=True)
class Stage:
    name: str | None
    repeats: Expr
    block: Call
    kwargs: tuple[Kwarg, ...]
    span: Span
    name_span: Span | None
    repeat_span: Span


@dataclass(frozen=True, slots=True)
class Split:
    """`split PARTS { body }`: the body runs once per part of the channels (`part` its index)."""
    parts: Expr
    body: tuple[Stmt, ...]
    span: Span


Stmt = Union[Let, Require, If, Input, Section, Call, Stage, Split]

# ---- definitions ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    default: Expr | None
    span: Span


@dataclass(frozen=True, slots=True)
class BlockDef:
    name: str
    params: tuple[Param, ...]
    body: tuple[Stmt, ...]
    span: Span
    name_span: Span


@dataclass(frozen=True, slots=True)
class NetworkDef:
    name: str
    params: tuple[Param, ...]
    body: tuple[Stmt, ...]
    span: Span
    name_span: Span


@dataclass(frozen=True, slots=True)
class NetworkAlias:
    """`network NAME = OTHER(args)`: OTHER with different parameter defaults."""

    name: str
    target: Call
    span: Span
    name_span: Span


@dataclass(frozen=True, slots=True)
class Import:
    path: str
    span: Span


@dataclass(frozen=True, slots=True)
class Module:
    """One parsed file."""

    file: str
    imports: tuple[Import, ...]
    blocks: tuple[BlockDef, ...]
    networks: tuple[NetworkDef | NetworkAlias, ...]
