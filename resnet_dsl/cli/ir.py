"""`rnetc ir FILE`: print the lowered, shaped IR (text, or JSON with --json)."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    from resnet_dsl.cli.common import add_spec_arguments

    p = sub.add_parser(
        "ir", help="print the graph IR",
        description="Print the network's IR: every node with its inputs, attributes, output "
                    "shape, parameters and MACs. --json prints the pydantic model "
                    "(`rnetc schema` gives its JSON Schema).",
        epilog="examples:\n  rnetc ir specs/cifar_resnet20.rnet\n  rnetc ir specs/resnet50.rnet --json",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_spec_arguments(p)
    p.add_argument("--json", action="store_true", help="print the IR as JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from resnet_dsl.cli.common import compile_args
    from resnet_dsl.ir.printer import format_ir

    net = compile_args(args)
    if args.json:
        print(net.model_dump_json(indent=1))
    else:
        print(format_ir(net), end="")
    return 0
