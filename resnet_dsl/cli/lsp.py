"""`rnetc lsp`: run the language server on stdin/stdout (needs the `lsp` extra: pygls)."""

from __future__ import annotations

import argparse

from resnet_dsl.cli.common import UsageError


def register(sub) -> None:
    p = sub.add_parser(
        "lsp", help="run the language server (for editors)",
        description="Run rnetc's language server over stdin/stdout (JSON-RPC, the Language "
                    "Server Protocol): the compiler's errors as you type, hover with output "
                    "shapes and parameter counts, go to definition for blocks and imports, "
                    "completion, formatting. Editors start it; see docs/tooling.md.",
        epilog="examples:\n  rnetc lsp\n\nneeds pygls: pip install 'rnetc[lsp]'",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--stdio", action="store_true",
                   help="talk over stdin/stdout (the default and only transport; accepted "
                        "because editors pass it)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        from resnet_dsl.tooling.lsp import serve
    except ModuleNotFoundError as exc:
        if exc.name in ("pygls", "lsprotocol"):
            raise UsageError("`rnetc lsp` needs pygls: pip install 'rnetc[lsp]'") from None
        raise
    serve()
    return 0
