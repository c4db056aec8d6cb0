"""The GPU benchmark scripts run (on the CPU, with tiny settings), so they are not broken
when a GPU session comes; their figures are measured there, not here."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import REPO

pytest.importorskip("torch")
pytest.importorskip("torchvision")

TINY = ["--device", "cpu", "--steps", "1", "--warmup", "0", "--repeats", "1", "--batch", "2",
        "--image-size", "32", "--modes", "eager", "--cifar-modes", "eager", "--cifar-images", "32", "--cifar-batch", "8",
        "--workers", "0"]


def test_gpu_sh_runs_everything_on_a_cpu(tmp_path):
    env = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "2", "DEVICE": "cpu",
           "PARTS": "gpu_train torch_overhead",   # the trainer part compiles: minutes on a CPU
           # torch_overhead's CPU defaults (resnet50 at 4x128x128, 20 steps) can outlast its 60 s
           # limit on a slow CI machine; this checks that it runs, not what it measures
           "TORCH_OVERHEAD_ARGS": "--steps 2 --repeats 1 --batch50 1 --size50 64 --batch56 4"}
    done = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu.sh"), str(tmp_path), *TINY],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads((tmp_path / "gpu_train.json").read_text())
    assert {(r["model"], r["mode"]) for r in results["resnet50"]} == {("rnetc", "eager"),
                                                                      ("torchvision", "eager")}
    assert [r["pipeline"] for r in results["cifar"]] == ["device", "dataloader", "torchvision",
                                                         "rnetc train (device)"]
    assert all(r["images_per_s"] > 0 for r in results["resnet50"] + results["cifar"])
    table = (tmp_path / "gpu_train.md").read_text()
    assert "rnetc / torchvision" in table and "vs the torchvision pipeline" in table
    assert "== gpu_train: exit 0" in (tmp_path / "gpu.log").read_text()
    assert (tmp_path / "nvidia-smi.txt").is_file()
    assert "targets (issue 3)" in (tmp_path / "torch_overhead.txt").read_text()
