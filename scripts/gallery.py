"""Regenerate the diagram gallery in docs/gallery/ (shown by docs/diagrams.md).

    python scripts/gallery.py           # write .dot, .svg and .png for every entry
    python scripts/gallery.py --check   # exit 1 if a committed .dot is out of date
    python scripts/gallery.py seresnet50   # only the entries named

Each entry is written as DOT text (the reference that tests/test_draw.py compares with,
because dot's SVG/PNG output differs between graphviz versions) and rendered to SVG and
PNG with graphviz's `dot`. Run it after changing a spec, the prelude or the backend.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "docs" / "gallery"
sys.path.insert(0, str(REPO))


@dataclass(frozen=True)
class Entry:
    name: str
    spec: str          # relative to the repository root
    expand: bool = False
    rankdir: str = "TB"
    caption: str = ""


GALLERY = (
    Entry("resnet101", "specs/resnet101.rnet",
          caption="ResNet-101, collapsed: the 23-block stage is one block and one `x22`."),
    Entry("cifar_resnet20_expanded", "specs/cifar_resnet20.rnet", expand=True,
          caption="ResNet-20 for CIFAR, `--expand`: every layer; zero-pad (option A) shortcuts."),
    Entry("wrn28_10", "specs/wrn28_10.rnet",
          caption="WRN-28-10: pre-activation blocks; the projection forks off the first BN-ReLU."),
    Entry("preact_resnet164", "specs/preact_resnet164.rnet",
          caption="Pre-activation ResNet-164: 18 pre-activation bottlenecks per stage."),
    Entry("custom_block", "examples/specs/custom_block.rnet",
          caption="A user-defined block (bottleneck without the last ReLU) in a ResNet-D-style "
                  "network: deep stem, avg-pool projection shortcuts."),
    Entry("custom_block_lr", "examples/specs/custom_block.rnet", rankdir="LR",
          caption="The same network with `--rankdir LR`."),
    Entry("seresnet50", "specs/zoo/seresnet50.rnet",
          caption="SE-ResNet-50: each block's squeeze-and-excitation gate is a side path into "
                  "a `×` before the `+`."),
    Entry("res2net50_26w_4s", "specs/zoo/res2net50_26w_4s.rnet",
          caption="Res2Net-50: each block's `split 4` drawn as four parts side by side, joined "
                  "at `cat`; in the repeats each part adds the previous one's result."),
    Entry("skresnet18", "specs/zoo/skresnet18.rnet",
          caption="SK-ResNet-18: two dilations on halves of the input, concatenated, weighed "
                  "by a gate with a softmax across the two paths, summed."),
)


def digraph(entry: Entry):
    """The entry's diagram (a graphviz.Digraph)."""
    from resnet_dsl.backends.graphviz import to_digraph
    from resnet_dsl.compiler import compile_network

    net = compile_network(REPO / entry.spec)
    return to_digraph(net, expand=entry.expand, rankdir=entry.rankdir)


def stale(out: Path = OUT) -> list[str]:
    """Names of the entries whose committed .dot differs from what the specs give now."""
    return [e.name for e in GALLERY
            if not (out / f"{e.name}.dot").exists()
            or (out / f"{e.name}.dot").read_text(encoding="utf-8") != digraph(e).source]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check that the .dot files are current")
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help="write only these entries (default: all)")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - {e.name for e in GALLERY})
    if unknown:
        parser.error(f"no gallery entry named {', '.join(unknown)}")
    if args.check:
        names = stale()
        for name in names:
            print(f"docs/gallery/{name}.dot is out of date: run python scripts/gallery.py",
                  file=sys.stderr)
        return 1 if names else 0

    from resnet_dsl.backends.graphviz import write_diagram

    OUT.mkdir(parents=True, exist_ok=True)
    for entry in GALLERY:
        if args.names and entry.name not in args.names:
            continue
        g = digraph(entry)
        for fmt in ("dot", "svg", "png"):
            write_diagram(g, OUT / f"{entry.name}.{fmt}", fmt)
        _shrink_png(OUT / f"{entry.name}.png")
        print(f"docs/gallery/{entry.name}.{{dot,svg,png}}")
    return 0


def _shrink_png(path: Path) -> None:
    """A 64-colour palette PNG: looks the same (the diagrams use a dozen colours plus
    anti-aliasing) at about a quarter of the size, which keeps the repository small."""
    try:
        from PIL import Image
    except ModuleNotFoundError:  # Pillow is in the dev extra; without it keep dot's PNG
        return
    with Image.open(path) as im:
        small = im.convert("RGB").quantize(colors=64, method=Image.Quantize.MEDIANCUT)
    small.save(path, optimize=True)


if __name__ == "__main__":
    sys.exit(main())
