"""Binding a call's arguments to a built-in layer's signature or to a block's parameters.

The signatures themselves live with the ops (`ir/nodes.py`: each node class's `words`);
`LAYERS` gathers them in one table for binding, help lines and editors. Binding checks
counts, names and types and returns plain values; range checks (positive widths, ...)
are the op's `from_call`.
"""

from __future__ import annotations

from resnet_dsl.errors import Diagnostic, Note, RnetError, Span, did_you_mean
from resnet_dsl.frontend.evaluate import show, type_name
from resnet_dsl.ir.nodes import layer_words
from resnet_dsl.ir.signature import GLOBAL, REQUIRED, GlobalFlag, Param

__all__ = ["ACTIVATIONS", "GLOBAL", "LAYERS", "REQUIRED", "GlobalFlag", "Param", "bind_block",
           "bind_layer", "coerce", "usage"]

LAYERS: dict[str, tuple[Param, ...]] = {
    **{word: params for word, (_, params) in layer_words().items() if word not in ("add", "mul")},
    # The markers close the table: `fork` and `branch` make no node; `add` and `mul` make
    # the joins (the residual addition; a side branch's gate multiply); `add_previous`, in
    # a `split`, adds the previous part's result.
    "fork": (),
    "add": layer_words()["add"][1],
    "branch": (),
    "mul": (),
    "add_previous": (),
}
"""Every built-in layer word -> its parameters, in positional order. The words and
their signatures are the node classes' own (`ir/nodes.py`, `words`)."""

ACTIVATIONS = tuple(word for word, (cls, _) in layer_words().items() if cls.OP == "act")

Arg = tuple[object, Span]                 # value, span of the argument
Kwarg = tuple[str, object, Span, Span]    # name, value, span, name span


def bind_layer(op: str, args: list[Arg], kwargs: list[Kwarg], call_span: Span) -> dict[str, Arg]:
    """Bind a built-in layer's arguments; returns name -> (value, span), defaults filled in."""
    params = LAYERS[op]
    positional = [p for p in params if p.positional]
    bound: dict[str, Arg] = {}
    if len(args) > len(positional):
        extra = args[len(positional)]
        names = ", ".join(p.name for p in positional) or "no positional arguments"
        raise RnetError(Diagnostic(
            "E201", f"`{op}` takes {len(positional)} positional argument"
            f"{'' if len(positional) == 1 else 's'} ({names}), got {len(args)}", extra[1],
            _keyword_help(op, params)))
    for p, arg in zip(positional, args):
        bound[p.name] = arg
    by_name = {p.name: p for p in params}
    for name, value, span, name_span in kwargs:
        if name not in by_name:
            raise RnetError(Diagnostic(
                "E104", f"`{op}` has no parameter `{name}`", name_span,
                did_you_mean(name, by_name) or _keyword_help(op, params)))
        if name in bound:
            raise RnetError(Diagnostic("E201", f"`{name}` is given twice", name_span))
        bound[name] = (value, span)
    out: dict[str, Arg] = {}
    for p in params:
        if p.name in bound:
            value, span = bound[p.name]
            try:
                out[p.name] = (coerce(value, p.kind, span, f"`{op}` {p.name}"), span)
            except RnetError as exc:
                # A wrong argument gets the layer's usage line (a note, where the help
                # line says something more specific); two positional arguments in the
                # wrong order get the order that fits.
                d = exc.diagnostics[0]
                given = [v for v, _ in args]
                placed = positional[:len(args)]
                swap = None
                for j, q in enumerate(placed):
                    if p not in placed or q == p:
                        continue
                    i = placed.index(p)
                    try:
                        coerce(given[j], p.kind, span, p.name)
                        coerce(given[i], q.kind, span, q.name)
                    except RnetError:
                        continue
                    given[i], given[j] = given[j], given[i]
                    first, second = sorted((p, q), key=placed.index)
                    words = [op] + [show(v) for v in given] + [f"{k}={show(v)}" for k, v, _, _ in kwargs]
                    swap = (f"did you swap {first.name.upper()} and {second.name.upper()}? "
                            f"write `{' '.join(words)}`")
                    break
                notes = list(d.notes) + ([Note(None, usage(op))] if swap or d.help else [])
                raise RnetError(Diagnostic(d.code, d.message, d.span, swap or d.help or usage(op),
                                           notes)) from None
        elif p.default is REQUIRED:
            raise RnetError(Diagnostic(
                "E204", f"`{op}` needs `{p.name}` ({p.help})" if p.help else f"`{op}` needs `{p.name}`",
                call_span, usage(op)))
        else:
            default = p.default if p.default is None else coerce(p.default, p.kind, call_span, p.name)
            out[p.name] = (default, call_span)
    return out


def _keyword_help(op: str, params: tuple[Param, ...]) -> str:
    return usage(op) if params else f"`{op}` takes no arguments"


def usage(op: str) -> str:
    """`conv KERNEL OUT [stride=1] [padding=..] ...` for help lines and docs."""
    parts = [op]
    for p in LAYERS[op]:
        if p.positional and p.default is REQUIRED:
            parts.append(p.name.upper())
        elif p.positional:
            parts.append(f"[{p.name.upper()}]")
        else:
            default = "..." if p.default is None else show(p.default)
            parts.append(f"[{p.name}={default}]")
    return "usage: " + " ".join(parts)


def coerce(value: object, kind: str, span: Span, what: str) -> object:
    """Check `value` against a parameter kind; ints widen to numbers, ints to pairs."""
    if kind == "kernel" and isinstance(value, GlobalFlag):
        return value
    if isinstance(value, GlobalFlag):
        raise RnetError(Diagnostic("E202", f"{what}: `global` is only a pooling kernel", span))
    if kind == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        hint = "use `//` for integer division" if isinstance(value, float) else None
        raise RnetError(Diagnostic(
            "E202", f"{what} must be an integer, got {type_name(value)} ({show(value)})", span, hint))
    if kind == "float":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise RnetError(Diagnostic(
            "E202", f"{what} must be a number, got {type_name(value)} ({show(value)})", span))
    if kind == "bool":
        if isinstance(value, bool):
            return value
        raise RnetError(Diagnostic(
            "E202", f"{what} must be true or false, got {type_name(value)} ({show(value)})", span))
    if kind in ("pair", "kernel"):
        if isinstance(value, int) and not isinstance(value, bool):
            return (value, value)
        if isinstance(value, tuple) and len(value) in (1, 2):
            return (value[0], value[-1])
        raise RnetError(Diagnostic(
            "E202", f"{what} must be a size like 3 or 3x3, got {type_name(value)} ({show(value)})",
            span))
    raise ValueError(kind)


def bind_block(name: str, params, args: list[Arg], kwargs: list[Kwarg], call_span: Span,
               def_span: Span):
    """Match a block call against the block's parameters.

    Returns (explicit: name -> (value, span), missing: parameters left to their
    defaults, in order). Raises for too many, unknown, repeated or missing arguments.
    """
    names = [p.name for p in params]
    explicit: dict[str, Arg] = {}
    note = [Note(def_span, f"`{name}` is defined here")]
    if len(args) > len(params):
        raise RnetError(Diagnostic(
            "E201", f"block `{name}` takes {len(params)} argument{'s' if len(params) != 1 else ''}"
            f" ({', '.join(names)}), got {len(args)}", args[len(params)][1], notes=note))
    for p, arg in zip(params, args):
        explicit[p.name] = arg
    for kname, value, span, name_span in kwargs:
        if kname not in names:
            raise RnetError(Diagnostic(
                "E104", f"block `{name}` has no parameter `{kname}`", name_span,
                did_you_mean(kname, names) or f"its parameters: {', '.join(names)}", note))
        if kname in explicit:
            raise RnetError(Diagnostic("E201", f"`{kname}` is given twice", name_span))
        explicit[kname] = (value, span)
    missing = [p for p in params if p.name not in explicit]
    for p in missing:
        if p.default is None:
            raise RnetError(Diagnostic(
                "E204", f"block `{name}` needs `{p.name}`", call_span,
                f"its parameters: {', '.join(names)}", note))
    return explicit, missing
