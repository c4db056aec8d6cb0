"""Write editors/vscode/syntaxes/rnet.tmLanguage.json from resnet_dsl/tooling/vocabulary.py.

Run after changing the language's words:  python scripts/gen_textmate.py
tests/test_highlighting.py fails while the committed file is out of date.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "editors" / "vscode" / "syntaxes" / "rnet.tmLanguage.json"


def main() -> int:
    sys.path.insert(0, str(ROOT))
    from resnet_dsl.tooling.textmate import render

    TARGET.write_text(render(), encoding="utf-8")
    print(f"wrote {TARGET.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
