"""rnetc's command line: one module per command, each with `register(subparsers)`.

Exit codes: 0 success, 1 the spec (or data) has errors, 2 the command line is wrong
(unknown option, missing file), 130 interrupted. Commands import torch, graphviz or
onnx only when they run, so `rnetc check` starts fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from resnet_dsl.version import __version__
from resnet_dsl.cli.common import UsageError, report_error
from resnet_dsl.errors import RnetError

# Modules under resnet_dsl/cli/, in the order `rnetc --help` lists them.
COMMANDS = ("check", "summary", "ir", "compile", "train", "eval", "predict", "export", "draw", "fmt",
            "schema", "lsp",
            "prelude", "explain")

EPILOG = """\
examples:
  rnetc check specs/*.rnet
  rnetc summary specs/cifar50.rnet --set k=2
  rnetc ir specs/resnet18.rnet --json
  rnetc compile specs/resnet50.rnet -o resnet50.safetensors --emit-python resnet50.py
  rnetc export specs/resnet50.rnet -o resnet50.onnx
  rnetc draw specs/resnet101.rnet -o resnet101.svg
  rnetc fmt --check specs/
  rnetc compile specs/cifar_resnet20.rnet --train
  rnetc predict specs/cifar_resnet20.rnet --weights runs/cifar_resnet20/best.pt digit.png

Run `rnetc COMMAND --help` for a command's options. Exit codes: 0 ok, 1 spec (or data)
errors, 2 usage errors, 130 interrupted (a training run saves its checkpoint first).
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rnetc",
        description="rnetc: a declarative architecture compiler for residual networks.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"rnetc {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"resnet_dsl.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    try:
        return int(args.run(args) or 0)
    except UsageError as exc:
        print(f"rnetc {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except RnetError as exc:
        report_error(exc, getattr(args, "error_format", "human"))
        return 1
    except KeyboardInterrupt:
        print("rnetc: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `rnetc ir ... | head`
        return 0


def entry() -> None:
    sys.exit(main())
