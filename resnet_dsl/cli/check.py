"""`rnetc check FILE...`: parse, lower, shape and count every file; report all errors."""

from __future__ import annotations

import argparse
import sys

from resnet_dsl.cli.common import add_spec_arguments, compile_args, report_error
from resnet_dsl.errors import RnetError


def register(sub) -> None:
    p = sub.add_parser(
        "check", help="check specs for errors (no torch needed)",
        description="Check .rnet specs: syntax, names, argument types, shapes, shortcuts and "
                    "limits. Prints one line per valid file, every error otherwise.",
        epilog="examples:\n  rnetc check specs/*.rnet\n  rnetc check my.rnet --set depth=57",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_spec_arguments(p, many=True)
    p.add_argument("-q", "--quiet", action="store_true", help="print errors only")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    failed = 0
    errors: list = []
    for file in args.files:
        try:
            net = compile_args(args, file)
        except RnetError as exc:
            failed += 1
            if args.error_format == "json":
                errors.extend(exc.diagnostics)
            else:
                report_error(exc)
            continue
        if not args.quiet and args.error_format == "human":
            print(f"{file}: ok: {net.name}, {net.totals.params:,} parameters, "
                  f"{net.totals.macs:,} MACs, output {'x'.join(map(str, net.output_shape or ()))}")
    if args.error_format == "json":
        report_error(RnetError(errors) if errors else RnetError([]), "json") if errors else \
            print('{"errors": []}')
    elif failed and len(args.files) > 1:
        print(f"{failed} of {len(args.files)} files have errors", file=sys.stderr)
    return 1 if failed else 0
