"""What the commands share: the spec arguments (FILE, --set, --network, --input, --limit,
--error-format), compiling from them, and reporting errors."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from resnet_dsl.errors import RnetError
from resnet_dsl.limits import DEFAULT_LIMITS, Limits


class UsageError(Exception):
    """The command line is wrong (exit code 2)."""


def add_spec_arguments(p: argparse.ArgumentParser, *, many: bool = False, input_: bool = True) -> None:
    if many:
        p.add_argument("files", nargs="+", metavar="FILE", help=".rnet spec file(s)")
    else:
        p.add_argument("file", metavar="FILE", help=".rnet spec file")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="NAME=VALUE",
                   help="override a network parameter (repeatable), e.g. --set depth=56")
    p.add_argument("--network", metavar="NAME",
                   help="which network of the file (default: the only one, or the one named like the file)")
    if input_:
        p.add_argument("--input", dest="input_shape", metavar="CxHxW",
                       help="override the input shape, e.g. --input 3x64x64")
    p.add_argument("--limit", dest="limits", action="append", default=[], metavar="NAME=VALUE",
                   help="raise or lower a resource limit, e.g. --limit max_layers=200000")
    p.add_argument("--search-path", dest="search_paths", action="append", default=[],
                   metavar="DIR", help="also allow imports from DIR (repeatable)")
    p.add_argument("--error-format", choices=("human", "json"), default="human",
                   help="how to print errors (json: one object with an `errors` list, on stdout)")


def parse_value(text: str) -> bool | int | float:
    """A `--set` value: `true`/`false`, an integer, or a finite number."""
    if text in ("true", "false"):
        return text == "true"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        hint = f"; write `{text.lower()}`" if text.lower() in ("true", "false") else ""
        raise UsageError(f"`{text}` is not a value --set accepts: an integer (56), a number "
                         f"(0.3, 1e-4) or true/false{hint}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise UsageError(f"`{text}` is not a finite number")
    return value


def parse_sets(items: list[str]) -> dict[str, bool | int | float]:
    """`--set NAME=VALUE` arguments -> parameters; a usage error names the wrong one."""
    out: dict[str, bool | int | float] = {}
    for item in items:
        name, eq, value = item.partition("=")
        if not eq or not name.strip() or not value.strip():
            raise UsageError(f"--set takes NAME=VALUE, got `{item}`")
        try:
            out[name.strip()] = parse_value(value.strip())
        except UsageError as exc:
            raise UsageError(f"--set {item}: {exc}") from None
    return out


def parse_shape(text: str | None) -> tuple[int, int, int] | None:
    if text is None:
        return None
    parts = text.lower().split("x")
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        raise UsageError(f"--input takes CxHxW, e.g. 3x224x224, got `{text}`") from None
    if len(values) != 3 or min(values) < 1:
        raise UsageError(f"--input takes three positive sizes CxHxW, got `{text}`")
    return values  # type: ignore[return-value]


def parse_limits(items: list[str]) -> Limits:
    changes: dict[str, int] = {}
    for item in items:
        name, eq, value = item.partition("=")
        try:
            changes[name.strip()] = int(value.replace("_", ""))
        except ValueError:
            raise UsageError(f"--limit takes NAME=INTEGER, got `{item}`") from None
        if not eq:
            raise UsageError(f"--limit takes NAME=INTEGER, got `{item}`")
    try:
        return DEFAULT_LIMITS.with_overrides(**changes)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def require_file(path: str) -> Path:
    p = Path(path)
    if not p.exists():
        raise UsageError(f"no such file: {path}")
    if p.is_dir():
        raise UsageError(f"{path} is a folder, not a spec file")
    if not os.access(p, os.R_OK):
        raise UsageError(f"cannot read {path}: permission denied")
    return p


def compile_args(args: argparse.Namespace, file: str | None = None):
    """Compile the spec named on the command line to a checked IR (`Network`)."""
    from resnet_dsl.compiler import compile_network

    path = require_file(file or args.file)
    return compile_network(
        path,
        network=args.network,
        params=parse_sets(args.sets),
        input_shape=parse_shape(getattr(args, "input_shape", None)),
        limits=parse_limits(args.limits),
        search_paths=tuple(args.search_paths),
    )


def use_color(stream) -> bool:
    return hasattr(stream, "isatty") and stream.isatty() and "NO_COLOR" not in os.environ


def report_error(exc: RnetError, error_format: str = "human") -> None:
    if error_format == "json":
        print(exc.to_json())
        return
    print(exc.render(color=use_color(sys.stderr)), file=sys.stderr)
    n = len(exc.diagnostics)
    if n > 1:
        print(f"{n} errors", file=sys.stderr)
