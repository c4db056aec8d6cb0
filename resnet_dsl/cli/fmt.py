"""`rnetc fmt FILE...`: rewrite specs in the canonical layout (`tooling.format`).

Like black and ruff: files are rewritten in place (atomically: a temporary file beside
the spec, then a rename), `--check` changes nothing and exits 1 when a file would change,
`--diff` prints what would change. `-` formats standard input to standard output.
"""

from __future__ import annotations

import argparse
import difflib
import os
import sys
import tempfile
from pathlib import Path

from resnet_dsl.cli.common import UsageError, report_error
from resnet_dsl.errors import Diagnostic, RnetError


def register(sub) -> None:
    p = sub.add_parser(
        "fmt", help="format specs in the canonical layout",
        description="Format .rnet specs: two-space indentation, one statement per line, "
                    "`key=value` options, spaced operators, comments kept. Rewrites the files "
                    "in place unless --check or --diff is given. Folders are searched for "
                    "*.rnet files; `-` reads standard input and writes standard output.",
        epilog="examples:\n  rnetc fmt specs/\n  rnetc fmt --check specs/*.rnet\n"
               "  rnetc fmt --diff my.rnet\n\n"
               "exit codes: 0 ok, 1 a file would change (--check) or does not parse, "
               "2 usage errors",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("files", nargs="+", metavar="FILE", help=".rnet file, folder, or - for stdin")
    p.add_argument("--check", action="store_true",
                   help="write nothing; exit 1 if a file would be reformatted")
    p.add_argument("--diff", action="store_true",
                   help="write nothing; print a unified diff of the changes")
    p.add_argument("-q", "--quiet", action="store_true", help="print errors only")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from resnet_dsl.tooling.format import format_source

    if "-" in args.files:
        if len(args.files) > 1:
            raise UsageError("`-` (standard input) cannot be combined with files")
        return _run_stdin(args, format_source)
    paths = _collect(args.files)
    changed = failed = 0
    for path in paths:
        try:
            text = _read(path)
            formatted = format_source(text, str(path))
        except RnetError as exc:
            report_error(exc)
            failed += 1
            continue
        if formatted == text:
            continue
        changed += 1
        if args.diff:
            sys.stdout.writelines(_diff(text, formatted, str(path)))
        if args.check or args.diff:
            if not args.quiet:
                print(f"would reformat {path}", file=sys.stderr)
        else:
            _write_atomic(path, formatted)
            if not args.quiet:
                print(f"reformatted {path}", file=sys.stderr)
    if not args.quiet:
        verb = "would be reformatted" if args.check or args.diff else "reformatted"
        summary = f"{changed} file{'s' if changed != 1 else ''} {verb}, " \
                  f"{len(paths) - changed - failed} left unchanged"
        if failed:
            summary += f", {failed} with errors"
        print(summary, file=sys.stderr)
    return 1 if failed or (args.check and changed) else 0


def _run_stdin(args: argparse.Namespace, format_source) -> int:
    text = sys.stdin.read()
    formatted = format_source(text, "<stdin>")  # RnetError -> exit 1 in cli.main
    if args.diff:
        sys.stdout.writelines(_diff(text, formatted, "<stdin>"))
    elif not args.check:
        sys.stdout.write(formatted)
    return 1 if args.check and formatted != text else 0


def _collect(items: list[str]) -> list[Path]:
    paths: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found = sorted(path.rglob("*.rnet"))
            if not found:
                raise UsageError(f"no .rnet files in {item}")
            paths.extend(found)
        elif path.is_file():
            paths.append(path)
        else:
            raise UsageError(f"no such file: {item}")
    return list(dict.fromkeys(paths))


def _read(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RnetError(Diagnostic("E003", f"{path} is not UTF-8 text (byte {exc.start})")) from None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None


def _diff(before: str, after: str, name: str) -> list[str]:
    return list(difflib.unified_diff(before.splitlines(keepends=True), after.splitlines(keepends=True),
                                     f"{name} (original)", f"{name} (formatted)"))


def _write_atomic(path: Path, text: str) -> None:
    """Write beside the file, then rename over it: a crash never leaves half a spec."""
    mode = path.stat().st_mode
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.chmod(tmp, mode & 0o7777)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
