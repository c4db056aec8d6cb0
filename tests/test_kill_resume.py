"""Fault test: SIGKILL the trainer at random moments, several times, resuming each time.

The interrupted run must end with exactly the weights, optimizer state and metrics of a
run that was never interrupted (CPU, --deterministic), and after every kill each
checkpoint on disk must load (with weights_only=True). Kill moments are drawn from a
seeded generator over the whole life of a process: start-up, mid-epoch, evaluation and
checkpoint writing.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys

import pytest
import torch
from conftest import REPO, SPECS

from resnet_dsl.train import checkpoint

RUN = ["train", str(SPECS / "cifar_resnet20.rnet"), "--input", "3x16x16", "--subset", "640",
       "--epochs", "8", "-b", "64", "--deterministic", "--seed", "3", "--device", "cpu",
       "--no-tensorboard", "--print-freq", "1"]


def _command(out, resume: bool) -> list[str]:
    return [sys.executable, "-m", "resnet_dsl", *RUN, "--output-dir", str(out),
            *(["--resume"] if resume else [])]


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}


def _equal(a, b, path="") -> list[str]:
    if isinstance(a, torch.Tensor):
        return [] if torch.equal(a, b) else [path]
    if isinstance(a, dict):
        return [p for k in a for p in _equal(a[k], b[k], f"{path}.{k}")]
    if isinstance(a, (list, tuple)):
        return [p for i, (x, y) in enumerate(zip(a, b, strict=True)) for p in _equal(x, y, f"{path}[{i}]")]
    return [] if a == b else [path]


@pytest.mark.slow
def test_random_sigkills_then_resume_end_like_an_uninterrupted_run(tmp_path):
    reference = tmp_path / "reference"
    subprocess.run(_command(reference, False), env=_env(), check=True, capture_output=True,
                   timeout=600)

    out = tmp_path / "killed"
    rng = random.Random(int(os.environ.get("RNETC_KILL_SEED", "20261127")))  # fuzz/README.md: longer runs
    kills = 0
    for attempt in range(40):
        resume = (out / "last.pt").exists()
        proc = subprocess.Popen(_command(out, resume), env=_env(), stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        # Start-up (importing torch, compiling the spec) takes a few seconds here; later
        # moments land in epochs, evaluations and checkpoint writes. The first three
        # processes die before the run (over 10 s) could finish; later ones may finish.
        delay = rng.uniform(1.0, 6.0) if attempt < 3 else rng.uniform(1.0, 12.0)
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
            for name in ("last.pt", "best.pt"):   # every checkpoint on disk is whole
                if (out / name).exists():
                    checkpoint.load_training(out / name)
            continue
        assert proc.returncode == 0, proc.stderr.read().decode()[-2000:]
        break
    else:
        pytest.fail("the run never finished")
    print(f"{kills} SIGKILLs, {attempt + 1} processes")
    assert kills >= 3, f"only {kills} kills landed; the test did not exercise resuming"
    assert not [p for p in os.listdir(out) if p.endswith(".tmp")]

    a = checkpoint.load_training(reference / "last.pt")
    b = checkpoint.load_training(out / "last.pt")
    assert a["loop"]["epoch"] == b["loop"]["epoch"] == 8
    for key in ("model", "optimizer"):
        assert _equal(a[key], b[key]) == [], key
    rows_a = [(r["epoch"], r["test_acc"], r["train_loss"]) for r in a["loop"]["history"]]
    rows_b = [(r["epoch"], r["test_acc"], r["train_loss"]) for r in b["loop"]["history"]]
    assert rows_a == rows_b
