"""A wheel built from the repository installs in a fresh virtualenv and works from
another folder: the grammar travels inside the package (no hand-kept copy)."""

from __future__ import annotations

import subprocess
import sys
import zipfile

import pytest
from conftest import REPO


@pytest.mark.slow
def test_wheel_installs_and_checks_from_elsewhere(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(REPO)],
                   check=True, capture_output=True, timeout=600)
    (wheel,) = dist.glob("rnetc-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "resnet_dsl/grammar/rnet.lark" in names
    assert "resnet_dsl/frontend/prelude.rnet" in names
    # the packaged grammar is the repository's grammar, byte for byte
    packaged = zipfile.ZipFile(wheel).read("resnet_dsl/grammar/rnet.lark")
    assert packaged == (REPO / "grammar" / "rnet.lark").read_bytes()

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    pip = venv / "bin" / "pip"
    subprocess.run([str(pip), "install", "-q", str(wheel)], check=True, capture_output=True,
                   timeout=600)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = subprocess.run([str(venv / "bin" / "rnetc"), "check", str(REPO / "specs" / "resnet50.rnet")],
                          capture_output=True, text=True, cwd=elsewhere, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "25,557,032 parameters" in proc.stdout
