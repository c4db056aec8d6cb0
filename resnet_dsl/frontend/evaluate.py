"""Evaluating spec expressions: integers, numbers and booleans, nothing else.

Integer arithmetic is exact (`+ - * // %`); `/` gives a number; comparisons and
`and`/`or`/`not` give booleans. Results beyond `Limits.max_number` are refused so that a
spec cannot build astronomically large integers. An expression that refers to a name
whose definition already failed raises `Poisoned`, which stops the statement without a
second message.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from resnet_dsl.errors import Diagnostic, RnetError, Span, did_you_mean
from resnet_dsl.frontend import ast
from resnet_dsl.limits import Limits, raise_hint

Scalar = bool | int | float


class Poisoned(Exception):
    """An input of this computation failed earlier; its error is already reported."""


_POISON = object()


@dataclass
class Env:
    """Names visible to expressions: parameters and `let` bindings of one network or block."""

    values: dict[str, object] = field(default_factory=dict)
    spans: dict[str, Span] = field(default_factory=dict)

    def define(self, name: str, value: object, span: Span) -> None:
        self.values[name] = value
        self.spans[name] = span

    def poison(self, name: str, span: Span) -> None:
        self.define(name, _POISON, span)


def type_name(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, tuple):
        return "a size"
    return "a value"


def show(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return "x".join(str(v) for v in value)
    return repr(value) if isinstance(value, float) else str(value)


def fail(code: str, message: str, span: Span, help: str | None = None) -> RnetError:
    return RnetError(Diagnostic(code, message, span, help))


def _log2(args: list) -> float:
    if len(args) != 1 or args[0] <= 0:
        raise ValueError("`log2` takes one positive number")
    return math.log2(args[0])


def _floor(args: list) -> int:
    if len(args) != 1:
        raise ValueError("`floor` takes one number")
    return math.floor(args[0])


def _make_divisible(args: list) -> int:
    """timm's `make_divisible(v, divisor=8, min_value=divisor, round_limit=0.9)`: `v` rounded
    to the nearest multiple of `divisor`, at least `min_value`, and bumped up one multiple
    if rounding lost more than `1 - round_limit` of it (SE widths use `round_limit` 0)."""
    if not 1 <= len(args) <= 4:
        raise ValueError("`make_divisible` takes v, and optionally divisor, min_value, round_limit")
    v = args[0]
    divisor = args[1] if len(args) > 1 else 8
    min_value = args[2] if len(args) > 2 else divisor
    round_limit = args[3] if len(args) > 3 else 0.9
    if not (isinstance(divisor, int) and divisor >= 1):
        raise ValueError("`make_divisible`'s divisor must be a positive integer")
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < round_limit * v:
        new_v += divisor
    return int(new_v)


def _round(args: list) -> int:
    if len(args) != 1:
        raise ValueError("`round` takes one number")
    return round(args[0])  # Python's (and timm's `int(round(x))`): halves to even


def _regnet_stages(args: list) -> list[tuple[int, int]]:
    """RegNet's width rule (Radosavovic et al. 2020, "Designing Network Design Spaces",
    eqs. 2-4; timm's generate_regnet and adjust_widths_groups_comp): block j's continuous
    width u_j = w0 + wa * j, quantised in the log domain to w0 * wm^round(log(u_j / w0) /
    log(wm)), rounded to a multiple of q = 8; blocks of one width form a stage. Each
    stage's width is then made compatible with its groups: its bottleneck width
    floor(w * b) is rounded to a multiple of min(group_size, floor(w * b)).
    -> [(width, depth), ...] by stage."""
    if len(args) not in (6, 7):
        raise ValueError("RegNet's rule takes w0, wa, wm, depth, group_size, bottle_ratio")
    w0, wa, wm, depth, group, b = args[:6]
    if not (w0 > 0 and w0 % 8 == 0 and wa >= 0 and wm > 1 and isinstance(depth, int)
            and 1 <= depth <= 1000 and group >= 1 and b > 0):
        raise ValueError("RegNet's rule needs w0 > 0 a multiple of 8, wa >= 0, wm > 1, "
                         "1 <= depth <= 1000, group_size >= 1, bottle_ratio > 0")
    widths = []
    for j in range(depth):
        exp = round(math.log((w0 + wa * j) / w0) / math.log(wm))
        widths.append(int(round(w0 * wm ** exp / 8) * 8))
    stages = []
    for w in sorted(set(widths)):
        bottleneck = int(w * b)
        g = min(group, bottleneck)
        stages.append((int(int(round(bottleneck / g) * g) / b), widths.count(w)))
    return stages


def _regnet_stage(args: list, part: int) -> int:
    if len(args) != 7 or not isinstance(args[6], int):
        raise ValueError("takes w0, wa, wm, depth, group_size, bottle_ratio and a stage number")
    stages = _regnet_stages(args[:6])
    stage = args[6]
    if not 1 <= stage <= len(stages):
        raise ValueError(f"this RegNet has stages 1 to {len(stages)}, not {stage}")
    return stages[stage - 1][part]


_FUNCTIONS = {"min": min, "max": max, "log2": _log2, "floor": _floor, "round": _round,
              "make_divisible": _make_divisible,
              "regnet_width": lambda args: _regnet_stage(args, 0),
              "regnet_depth": lambda args: _regnet_stage(args, 1),
              "regnet_stages": lambda args: len(_regnet_stages(args))}
"""min and max of their arguments; log2 (ECA's kernel rule), floor and round (to an
integer, halves to even), make_divisible (timm's channel rounding, for SE widths), and
RegNet's width rule: regnet_width / regnet_depth(w0, wa, wm, depth, group_size,
bottle_ratio, stage), regnet_stages(w0, wa, wm, depth, group_size, bottle_ratio)."""


def evaluate(expr: ast.Expr, env: Env, limits: Limits) -> Scalar:
    """Evaluate `expr` in `env`.

    >>> from resnet_dsl.limits import DEFAULT_LIMITS
    >>> from resnet_dsl.frontend.parse import parse
    >>> net = parse('network n(d = 20) { let k = (d - 2) // 6 }', 'n.rnet').networks[0]
    >>> env = Env(); env.define('d', 20, net.params[0].span)
    >>> evaluate(net.body[0].value, env, DEFAULT_LIMITS)
    3
    """
    if isinstance(expr, (ast.Int, ast.Float, ast.Bool)):
        value = expr.value
        if isinstance(value, float) and not math.isfinite(value):
            raise fail("E203", f"the number {value} is not finite", expr.span)
        return _checked(value, expr.span, limits)
    if isinstance(expr, ast.Name):
        if expr.id not in env.values:
            raise fail("E102", f"unknown name `{expr.id}`", expr.span,
                       did_you_mean(expr.id, env.values) or _name_help(expr.id))
        value = env.values[expr.id]
        if value is _POISON:
            raise Poisoned()
        return value  # type: ignore[return-value]
    if isinstance(expr, ast.Unary):
        operand = evaluate(expr.operand, env, limits)
        if expr.op == "not":
            return not _boolean(operand, expr.operand.span, "`not`")
        number = _number(operand, expr.operand.span, f"`{expr.op}`")
        return _checked(-number if expr.op == "-" else number, expr.span, limits)
    if isinstance(expr, ast.Binary):
        return _binary(expr, env, limits)
    if isinstance(expr, ast.FuncCall):
        func = _FUNCTIONS.get(expr.name)
        if func is None:
            raise fail("E101", f"unknown function `{expr.name}`", expr.name_span,
                       did_you_mean(expr.name, _FUNCTIONS) or "functions: " + ", ".join(_FUNCTIONS))
        args = [_number(evaluate(a, env, limits), a.span, f"`{expr.name}`") for a in expr.args]
        try:
            return func(args)
        except ValueError as exc:
            raise fail("E203", str(exc), expr.span) from None
    raise TypeError(f"not an expression: {expr!r}")


def _name_help(name: str) -> str | None:
    if name in ("proj", "zeropad", "identity", "avgproj", "proj_all"):
        return "shortcut policies are given to a stage: `shortcut=" + name + "`"
    return None


def _binary(expr: ast.Binary, env: Env, limits: Limits) -> Scalar:
    op = expr.op
    left = evaluate(expr.left, env, limits)
    if op in ("and", "or"):
        lhs = _boolean(left, expr.left.span, f"`{op}`")
        if (op == "and" and not lhs) or (op == "or" and lhs):
            return lhs
        return _boolean(evaluate(expr.right, env, limits), expr.right.span, f"`{op}`")
    right = evaluate(expr.right, env, limits)
    if op in ("==", "!="):
        if isinstance(left, bool) != isinstance(right, bool):
            raise fail("E202", f"cannot compare {type_name(left)} with {type_name(right)}", expr.span)
        return (left == right) if op == "==" else (left != right)
    a = _number(left, expr.left.span, f"`{op}`")
    b = _number(right, expr.right.span, f"`{op}`")
    if op in ("<", "<=", ">", ">="):
        return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]
    if op in ("//", "%"):
        for value, side in ((a, expr.left), (b, expr.right)):
            if not isinstance(value, int):
                raise fail("E202", f"`{op}` needs integers, got {type_name(value)} ({show(value)})",
                           side.span)
    if op in ("//", "%", "/") and b == 0:
        raise fail("E206", "division by zero", expr.right.span)
    result = {
        "+": lambda: a + b,
        "-": lambda: a - b,
        "*": lambda: a * b,
        "//": lambda: a // b,
        "%": lambda: a % b,
        "/": lambda: a / b,
    }[op]()
    return _checked(result, expr.span, limits)


def _checked(value: Scalar, span: Span, limits: Limits) -> Scalar:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and abs(value) > limits.max_number:
        raise fail("E601", f"number too large ({len(str(abs(value)))} digits)", span,
                   f"numbers in a spec are limited to {limits.max_number:,}; " + raise_hint("max_number"))
    if isinstance(value, float) and not math.isfinite(value):
        raise fail("E203", "the result is not a finite number", span)
    return value


def _number(value: object, span: Span, what: str) -> int | float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise fail("E202", f"{what} needs a number, got {type_name(value)} ({show(value)})", span)
    return value


def _boolean(value: object, span: Span, what: str) -> bool:
    if not isinstance(value, bool):
        raise fail("E202", f"{what} needs a boolean, got {type_name(value)} ({show(value)})", span,
                   "write a comparison, e.g. `n > 0`")
    return value
