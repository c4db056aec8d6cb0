"""Helpers the formatter tests share: ASTs and IRs with the source positions left out."""

from __future__ import annotations

import dataclasses

from resnet_dsl.compiler import compile_network
from resnet_dsl.errors import RnetError, Span
from resnet_dsl.frontend.parse import parse_with_comments
from resnet_dsl.frontend.source import load_program


def shape_of(node):
    """An AST as nested tuples without spans: what a spec says, not where."""
    if isinstance(node, Span):
        return None
    if dataclasses.is_dataclass(node):
        return (type(node).__name__,) + tuple(
            shape_of(getattr(node, f.name)) for f in dataclasses.fields(node)
            if f.name not in ("span", "name_span", "alias_span", "repeat_span", "file"))
    if isinstance(node, tuple):
        return tuple(shape_of(x) for x in node)
    return node


def ast_without_spans(text: str):
    module, _ = parse_with_comments(text, "spec.rnet")
    return shape_of(module)


def comment_texts(text: str) -> list[str]:
    return [c.text.rstrip() for c in parse_with_comments(text, "spec.rnet")[1]]


def _drop_positions(value):
    if isinstance(value, dict):
        return {k: _drop_positions(v) for k, v in value.items() if k not in ("span", "trace")}
    if isinstance(value, list):
        return [_drop_positions(v) for v in value]
    return value


def irs_without_spans(text: str, path=None) -> dict:
    """Every network of the spec compiled: name -> IR dump without spans, or error codes."""
    program = load_program(path, text=text, name="spec.rnet")
    out = {}
    for net in dict.fromkeys(n.name for n in program.main.module.networks):
        try:
            out[net] = _drop_positions(compile_network(program, network=net).model_dump())
        except RnetError as exc:
            out[net] = exc.codes
    return out
