"""Writing a diagram to a file: DOT text, or SVG/PNG/PDF rendered by graphviz's `dot`.

The file appears whole or not at all: the picture is rendered in memory
(`Digraph.pipe`), written to a temporary file in the target's folder and moved over the
target with `os.replace`. A missing or failing `dot` therefore leaves no partial file,
and an older diagram of the same name stays as it was.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from resnet_dsl.backends.graphviz.errors import DotNotFound, RenderFailed

FORMATS = ("svg", "png", "pdf", "dot")
SUFFIXES = {".svg": "svg", ".png": "png", ".pdf": "pdf", ".dot": "dot", ".gv": "dot"}

def format_for(path: str | os.PathLike) -> str | None:
    """The format an output name asks for, from its suffix (None if it names none).

    >>> format_for("net.svg"), format_for("net.GV"), format_for("net.txt")
    ('svg', 'dot', None)
    """
    return SUFFIXES.get(Path(path).suffix.lower())


def write_diagram(digraph, path: str | os.PathLike, fmt: str) -> None:
    """Write `digraph` to `path` as `fmt` (one of FORMATS), atomically.

    Raises DotNotFound when `fmt` needs `dot` and there is none, RenderFailed when `dot`
    fails, OSError when the file cannot be written.

    >>> import tempfile, pathlib
    >>> from resnet_dsl.compiler import compile_network
    >>> from resnet_dsl.backends.graphviz import to_digraph
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "net.dot"
    >>> write_diagram(to_digraph(compile_network('specs/resnet18.rnet')), out, "dot")
    >>> out.read_text().startswith("digraph resnet18")
    True
    """
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if fmt == "dot":
        data = digraph.source.encode("utf-8")
    else:
        data = _render(digraph, fmt)
    _replace(Path(path), data)


def _render(digraph, fmt: str) -> bytes:
    import graphviz

    if shutil.which("dot") is None:
        raise DotNotFound(fmt)
    try:
        return digraph.pipe(format=fmt)
    except graphviz.ExecutableNotFound:
        raise DotNotFound(fmt) from None
    except graphviz.CalledProcessError as exc:
        detail = exc.stderr.decode("utf-8", "replace").strip() if exc.stderr else ""
        raise RenderFailed(f"`dot -T{fmt}` failed (exit {exc.returncode})"
                           + (f": {detail}" if detail else "")) from None


def _replace(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        # mkstemp makes the file private (0600); give it the permissions a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
