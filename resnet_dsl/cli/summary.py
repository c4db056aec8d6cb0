"""`rnetc summary FILE`: the layer table with output shapes, parameters and MACs."""

from __future__ import annotations

import argparse
import json

from resnet_dsl.cli.common import add_spec_arguments, compile_args


def register(sub) -> None:
    p = sub.add_parser(
        "summary", help="table of layers, shapes, parameters and MACs",
        description="Print a torchinfo-like table of the network: output shape, parameters "
                    "and MACs per layer, block and stage, with exact totals.",
        epilog="examples:\n  rnetc summary specs/resnet50.rnet\n"
               "  rnetc summary specs/cifar50.rnet --set k=2 --depth 3\n"
               "  rnetc summary specs/resnet18.rnet --input 3x64x64 --json",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_spec_arguments(p)
    p.add_argument("--depth", type=int, choices=(1, 2, 3), default=2,
                   help="1: stages only, 2: and blocks (default), 3: every layer")
    p.add_argument("--json", action="store_true",
                   help="print JSON (params, macs, output_shape, stages, layers)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from resnet_dsl.analysis.summary import format_summary, summary_dict

    net = compile_args(args)
    if args.json:
        print(json.dumps(summary_dict(net), indent=2))
    else:
        print(format_summary(net, args.depth), end="")
    return 0
