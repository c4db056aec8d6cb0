"""How an operation is written in the language: its parameters, their kinds and defaults.

This is plain data that the node classes (`ir/nodes.py`) carry, so that an operation's
spelling lives with its meaning. Binding a call to a signature (counts, names, types)
is the front end's job (`frontend/signatures.py`); nothing here parses or raises.
"""

from __future__ import annotations

from dataclasses import dataclass

REQUIRED = object()
"""The default of a parameter that has none."""


class GlobalFlag:
    """The value of the `global` argument of the pooling layers."""

    def __repr__(self) -> str:
        return "global"


GLOBAL = GlobalFlag()


@dataclass(frozen=True)
class Param:
    """One parameter of a layer word: `conv KERNEL OUT [stride=1] ...`."""

    name: str
    kind: str  # int | float | bool | pair | kernel (a pair or `global`)
    default: object = REQUIRED
    positional: bool = False
    help: str = ""


def format_shape(shape: tuple[int, ...] | None) -> str:
    """The one way rnetc writes a shape: `64x56x56`, `1000`, `?` when unknown.

    >>> format_shape((64, 56, 56)), format_shape((10,)), format_shape(None)
    ('64x56x56', '10', '?')
    """
    return "x".join(str(s) for s in shape) if shape else "?"
