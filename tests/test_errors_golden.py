"""Golden files of rendered errors: tests/errors/CODE_*.rnet -> CODE_*.expected.

Every error code of the catalogue has at least one. The file name's code must be the
first error the spec gets (from the front end; E7xx from the PyTorch backend). Regenerate with RNETC_UPDATE_GOLDEN=1 after a deliberate
change to a message, and read the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import REPO

from resnet_dsl.catalog import BY_CODE, CATALOG, markdown
from resnet_dsl.compiler import compile_network
from resnet_dsl.errors import RnetError

ERRORS = REPO / "tests" / "errors"
CASES = sorted(ERRORS.glob("E*.rnet"))
UPDATE = os.environ.get("RNETC_UPDATE_GOLDEN") == "1"


def rendered(path: str) -> tuple[list[str], str]:
    with pytest.raises(RnetError) as info:
        net = compile_network(path)
        if Path(path).name.startswith("E7"):  # E7xx: reported by the PyTorch backend
            torch_backend = pytest.importorskip("resnet_dsl.backends.torch")
            torch_backend.build_module(net, device="meta")
    return info.value.codes, info.value.render() + "\n"


def check_golden(expected_path: Path, text: str) -> None:
    if UPDATE or not expected_path.exists():
        expected_path.write_text(text, encoding="utf-8")
    assert text == expected_path.read_text(encoding="utf-8")


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_golden_error(path, monkeypatch):
    monkeypatch.chdir(REPO)
    relative = str(path.relative_to(REPO))
    codes, text = rendered(relative)
    assert codes[0] == path.name[:4]
    check_golden(path.with_suffix(".expected"), text)


def test_missing_file(monkeypatch):
    monkeypatch.chdir(REPO)
    codes, text = rendered("tests/errors/no_such_spec.rnet")
    assert codes == ["E002"]
    check_golden(ERRORS / "E002_missing_file.expected", text)


# Codes from E800 on are about files other than specs (weights, exports), and E702 about
# a module given to resnet_dsl.inference: no .rnet case causes them; the tests that do
# (test_onnx_weights.py, test_cli_export.py, test_inference.py) keep their golden
# messages here too.
NOT_FROM_A_SPEC = ("E702", "E8", "E9")


def test_every_code_has_a_golden_file():
    covered = {p.name[:4] for p in ERRORS.glob("E*.expected")}
    assert set(BY_CODE) <= covered | {p.name[:4] for p in CASES}
    from_specs = {code for code in BY_CODE if not code.startswith(NOT_FROM_A_SPEC)}
    assert {p.name[:4] for p in CASES} | {"E002"} >= from_specs


@pytest.mark.parametrize("entry", [e for e in CATALOG if e.example_is_spec], ids=lambda e: e.code)
def test_catalogue_examples_report_their_code(entry, tmp_path):
    spec = tmp_path / "example.rnet"
    spec.write_text(entry.example + "\n", encoding="utf-8")
    with pytest.raises(RnetError) as info:
        compile_network(spec)
    assert info.value.codes[0] == entry.code


def test_docs_errors_md_is_generated_from_the_catalogue():
    assert (REPO / "docs" / "errors.md").read_text(encoding="utf-8") == markdown()
