"""The front end's driver: spec -> parsed program -> lowered IR -> passes -> checked IR.

`compile_network` is what every command and backend calls. It imports no torch.
"""

from __future__ import annotations

import gc
import os
from pathlib import Path

from resnet_dsl.errors import Diagnostic, RnetError
from resnet_dsl.frontend.lower import lower
from resnet_dsl.frontend.source import Program, load_program
from resnet_dsl.ir.graph import Network
from resnet_dsl.limits import DEFAULT_LIMITS, Limits
from resnet_dsl.passes import PIPELINE

Scalar = bool | int | float


def is_source_text(spec: str | os.PathLike) -> bool:
    """A string holding spec text rather than a path: it has a brace or a newline."""
    return isinstance(spec, str) and ("{" in spec or "\n" in spec)


def load(spec: str | os.PathLike, *, limits: Limits = DEFAULT_LIMITS,
         search_paths: tuple[str | os.PathLike, ...] = ()) -> Program:
    """Parse a spec given as a path or as source text (with its imports)."""
    if is_source_text(spec):
        return load_program(text=str(spec), name="<string>", limits=limits,
                            search_paths=search_paths)
    return load_program(Path(spec), limits=limits, search_paths=search_paths)


def compile_network(spec: str | os.PathLike | Program, *, network: str | None = None,
                    params: dict[str, Scalar] | None = None,
                    input_shape: tuple[int, int, int] | None = None,
                    limits: Limits = DEFAULT_LIMITS,
                    search_paths: tuple[str | os.PathLike, ...] = ()) -> Network:
    """Compile one network of a spec to a shaped, counted, checked IR.

    Raises `RnetError` with every problem found (its `.sources` renders them).

    >>> net = compile_network('network tiny { input 3x8x8; conv 3x3 4; bn; relu }')
    >>> net.totals.params, net.output_shape
    (116, (4, 8, 8))
    """
    program = spec if isinstance(spec, Program) else load(spec, limits=limits, search_paths=search_paths)
    # Lowering makes thousands of small objects and no garbage cycles worth chasing: the
    # cyclic collector, left on, spends about a sixth of a deep net's compile scanning them.
    collecting = gc.isenabled()
    gc.disable()
    try:
        definition = program.network(network)
        lowered = lower(program, definition, limits, params, input_shape)
        diagnostics = list(lowered.diagnostics)
        net = lowered.network
        net.sources = {f.name: f.text for f in program.files}
        if not diagnostics:
            net.lint(checked=False)  # what every pass relies on: arity, order, one sink
            for run_pass in PIPELINE:
                run_pass(net, diagnostics, limits)
        if diagnostics:
            raise RnetError(diagnostics)
        net.lint()  # again, now that every node has a shape (still with the GC paused)
    except RecursionError:
        # A backstop: nesting limits stop real and fuzzed specs well before this.
        exc = RnetError(Diagnostic("E601", "the spec nests too deeply (blocks within blocks "
                                   "within ifs)", None, "reduce the nesting"))
        exc.sources = program.sources
        raise exc from None
    except RnetError as exc:
        exc.sources = program.sources
        raise
    finally:
        if collecting:
            gc.enable()
    return net
