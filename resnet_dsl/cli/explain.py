"""`rnetc explain CODE`: what an error code means, with an example and the fix."""

from __future__ import annotations

import argparse

from resnet_dsl.cli.common import UsageError


def register(sub) -> None:
    p = sub.add_parser(
        "explain", help="explain an error code (e.g. E301)",
        description="Explain an error code: what it means, an example spec and the fix. "
                    "Without a code, list all codes.",
        epilog="examples:\n  rnetc explain E301\n  rnetc explain",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("code", nargs="?", help="error code, e.g. E301")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from resnet_dsl.catalog import CATALOG, explain

    if not args.code:
        for entry in CATALOG:
            print(f"{entry.code}  {entry.title}")
        return 0
    text = explain(args.code)
    if text is None:
        raise UsageError(f"no error code `{args.code}` (run `rnetc explain` for the list)")
    print(text, end="")
    return 0
