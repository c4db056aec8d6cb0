import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SPECS = REPO / "specs"
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(REPO))


def rnetc(capsys, *argv):
    """Run the CLI in-process: (exit code, stdout, stderr)."""
    from resnet_dsl.cli import main

    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def spec_files():
    return sorted(SPECS.glob("*.rnet"))


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO
