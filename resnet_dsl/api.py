"""The Python API of the front end: load a spec to a checked IR, summarise it."""

from __future__ import annotations

import os

from resnet_dsl.compiler import compile_network
from resnet_dsl.ir.graph import Network
from resnet_dsl.limits import DEFAULT_LIMITS, Limits

Scalar = bool | int | float


def load(spec: str | os.PathLike, *, network: str | None = None,
         input_shape: tuple[int, int, int] | None = None, limits: Limits = DEFAULT_LIMITS,
         params: dict[str, Scalar] | None = None, **kwparams: Scalar) -> Network:
    """Compile a spec (a path, or the source text itself) to a checked, counted IR.

    Network parameters are keyword arguments (`load("specs/cifar50.rnet", k=2)`); a
    parameter whose name clashes with an option here goes in `params={...}`. Raises
    `resnet_dsl.RnetError` listing every problem in the spec.

    >>> load('network tiny(w = 4) { input 3x8x8; conv 3x3 w }', w=8).output_shape
    (8, 8, 8)
    """
    merged = {**(params or {}), **kwparams}
    return compile_network(spec, network=network, params=merged, input_shape=input_shape,
                           limits=limits)


def summary(net: Network, depth: int = 2) -> str:
    """The `rnetc summary` table of a loaded network (depth 1: stages, 2: blocks, 3: layers)."""
    from resnet_dsl.analysis.summary import format_summary

    return format_summary(net, depth)
