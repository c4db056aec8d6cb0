"""What can go wrong when drawing, apart from the spec itself (which is RnetError's job):
the environment lacks graphviz, or `dot` fails. The CLI prints these and exits 1."""

from __future__ import annotations

INSTALL_DOT = """\
graphviz's `dot` program renders {fmt} files, and it was not found on PATH.
  install it:  apt-get install graphviz      (Debian, Ubuntu)
               brew install graphviz         (macOS)
               conda install -c conda-forge graphviz
               or see https://graphviz.org/download/
  or write DOT text, which needs no `dot`: --format dot (or an output name ending in .dot),
  and render it later with `dot -Tsvg net.dot -o net.svg` or an online graphviz viewer"""


class DrawError(Exception):
    """The diagram could not be made or written (not a mistake in the spec)."""


class PackageMissing(DrawError):
    def __init__(self) -> None:
        super().__init__("drawing needs the `graphviz` Python package: "
                         "pip install 'rnetc[draw]' (or pip install graphviz)")


class DotNotFound(DrawError):
    """graphviz's `dot` binary is not installed (or not on PATH)."""

    def __init__(self, fmt: str) -> None:
        super().__init__(INSTALL_DOT.format(fmt=fmt.upper()))


class RenderFailed(DrawError):
    """`dot` ran and failed (its message is kept)."""
