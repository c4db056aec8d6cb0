"""`rnetc draw FILE -o OUT`: an architecture diagram (SVG, PNG, PDF or DOT) of a spec."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from resnet_dsl.cli.common import UsageError, add_spec_arguments, compile_args


def register(sub) -> None:
    # render.py imports neither graphviz nor torch: cheap enough for building the parser.
    from resnet_dsl.backends.graphviz.render import FORMATS

    p = sub.add_parser(
        "draw", help="draw the architecture (svg, png, pdf or dot)",
        description="Draw the network with graphviz. By default each stage is a box holding "
                    "its first block (the one that changes the shape, with its shortcut) and "
                    "one block marked x(n-1) for the repeats; --expand draws every layer. "
                    "SVG, PNG and PDF need graphviz's `dot` program; DOT text does not.",
        epilog="examples:\n"
               "  rnetc draw specs/resnet101.rnet -o resnet101.svg\n"
               "  rnetc draw specs/cifar_resnet20.rnet -o cifar20.png --expand\n"
               "  rnetc draw specs/wrn.rnet -o wrn16_4.pdf --set depth=16 --set k=4 --rankdir LR\n"
               "  rnetc draw specs/resnet50.rnet -o resnet50.dot      # no `dot` needed\n"
               "\nA gallery is in docs/diagrams.md.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_spec_arguments(p)
    p.add_argument("-o", "--output", required=True, metavar="OUT",
                   help="file to write; its suffix (.svg .png .pdf .dot .gv) picks the format")
    p.add_argument("--format", choices=FORMATS,
                   help="output format (default: from OUT's suffix)")
    p.add_argument("--expand", action="store_true",
                   help="draw every layer and addition, blocks as nested boxes")
    p.add_argument("--rankdir", choices=("TB", "LR"), default="TB",
                   help="TB: top to bottom (default), LR: left to right")
    p.add_argument("--no-shapes", dest="shapes", action="store_false",
                   help="leave the tensor shapes off the edges")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    out = Path(args.output)
    if out.is_dir():
        raise UsageError(f"{out} is a folder; name the file to write, e.g. {out / 'net.svg'}")
    if not out.parent.is_dir():
        raise UsageError(f"cannot write {out}: no such folder {out.parent}")
    fmt = args.format or _format_from_suffix(out)
    net = compile_args(args)  # spec errors: RnetError, exit 1

    from resnet_dsl.backends.graphviz import DrawError, to_digraph, write_diagram

    try:
        digraph = to_digraph(net, expand=args.expand, rankdir=args.rankdir, shapes=args.shapes)
        write_diagram(digraph, out, fmt)
    except DrawError as exc:
        print(f"rnetc draw: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"rnetc draw: error: cannot write {out}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


def _format_from_suffix(out: Path) -> str:
    from resnet_dsl.backends.graphviz.render import format_for

    fmt = format_for(out)
    if fmt is None:
        raise UsageError(f"cannot tell the format from `{out.name}`: name it .svg, .png, .pdf "
                         "or .dot, or pass --format")
    return fmt
