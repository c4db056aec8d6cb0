"""`rnetc prelude`: print the built-in blocks (written in the .rnet language)."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser(
        "prelude", help="print the built-in blocks' definitions",
        description="Print the prelude: basic, bottleneck, preact_basic, preact_bottleneck, "
                    "wide_basic, deep_stem, the se and eca gates and se_bottleneck, "
                    "eca_bottleneck, defined in the .rnet language like any user block.")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from resnet_dsl.frontend.source import PRELUDE_PATH

    print(PRELUDE_PATH.read_text(encoding="utf-8"), end="")
    return 0
