"""`rnetc schema`: print the JSON Schema of `rnetc ir --json` (from the pydantic models)."""

from __future__ import annotations

import argparse
import json


def register(sub) -> None:
    p = sub.add_parser(
        "schema", help="print the JSON Schema of the IR's JSON form",
        description="Print the JSON Schema (draft 2020-12) that `rnetc ir --json` output is "
                    "valid against, generated from the IR's pydantic models.",
        epilog="examples:\n  rnetc schema > rnet-ir.schema.json\n"
               "  rnetc ir specs/resnet18.rnet --json > resnet18.json",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from resnet_dsl.tooling.schema import ir_json_schema

    print(json.dumps(ir_json_schema(), indent=2))
    return 0
