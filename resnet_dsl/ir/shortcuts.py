"""Shortcut kinds, policies and their words: the one table every stage and backend reads.

A stage's `shortcut=` policy (He et al. 2015 options A/B/C; He et al. 2019 "ResNet-D")
decides, block by block, which kind of shortcut the shortcut pass builds
(`passes/shortcuts.py`). Messages, diagrams and emitted source name kinds from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ShortcutPolicy = Literal["identity", "zeropad", "proj", "proj_all", "avgproj"]
ShortcutKind = Literal["identity", "zeropad", "proj", "avgproj", "none"]


@dataclass(frozen=True)
class Shortcut:
    kind: str          # BlockInfo.shortcut
    word: str          # in messages and diagrams: "zero-pad"
    note: str = ""     # where it comes from: "option A", "ResNet-D"
    suffix: str = ""   # of the emitted block class: `BasicZeroPad`

    @property
    def noun(self) -> str:
        """`zero-pad shortcut (option A)`."""
        return f"{self.word} shortcut" + (f" ({self.note})" if self.note else "")


SHORTCUTS: dict[str, Shortcut] = {
    s.kind: s for s in (
        Shortcut("identity", "identity"),
        Shortcut("zeropad", "zero-pad", "option A", "ZeroPad"),
        Shortcut("proj", "projection", "", "Proj"),
        Shortcut("avgproj", "avg-pool projection", "ResNet-D", "AvgProj"),
        Shortcut("none", "no"),
    )
}
"""Every shortcut kind a block can have, in the order diagrams list them."""

POLICIES: dict[str, str] = {
    "identity": "identity", "zeropad": "zeropad", "proj": "proj", "proj_all": "proj_all",
    "avgproj": "avgproj", "A": "zeropad", "B": "proj", "C": "proj_all", "D": "avgproj",
}
"""`shortcut=` words of the language (names and the paper's letters) -> policy."""

POLICY_HELP = "policies: identity, zeropad (A), proj (B), proj_all (C), avgproj (D)"

SHORTCUT_MODULE = "downsample"
"""The module a block's shortcut layers live under (torchvision's and timm's name)."""
