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
import time

import pytest
import torch
from conftest import REPO, SPECS

from resnet_dsl.train import checkpoint

RUN = ["train", str(SPECS / "cifar_resnet20.rnet"), "--input", "3x16x16", "--subset", "640",
       "--epochs", "8", "-b", "64", "--deterministic", "--seed", "3", "--device", "cpu",
       "--no-tensorboard", "--print-freq", "1"]


def _command(out, resume: bool, extra: tuple[str, ...] = ()) -> list[str]:
    return [sys.executable, "-m", "resnet_dsl", *RUN, *extra, "--output-dir", str(out),
            *(["--resume"] if resume else [])]


def _pretrained(tmp_path) -> tuple[str, ...]:
    """A fine-tuning run: weights of the same network with a 5-class head (replaced by a
    fresh 10-class one), layer1 and what precedes it frozen, the head at its own rate."""
    import resnet_dsl

    torch.manual_seed(11)
    model = resnet_dsl.build(SPECS / "cifar_resnet20.rnet", classes=5, input_shape=(3, 16, 16))
    path = tmp_path / "pretrained.pth"
    torch.save(model.state_dict(), path)
    return ("--weights", str(path), "--freeze", "layer1", "--head-lr", "0.05")


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
@pytest.mark.parametrize("finetune", [False, True], ids=["scratch", "finetune"])
def test_random_sigkills_then_resume_end_like_an_uninterrupted_run(tmp_path, finetune):
    extra = _pretrained(tmp_path) if finetune else ()
    reference = tmp_path / "reference"
    started = time.monotonic()
    subprocess.run(_command(reference, False, extra), env=_env(), check=True,
                   capture_output=True, timeout=600)
    whole = time.monotonic() - started   # start-up, eight epochs, the last checkpoint and plot

    out = tmp_path / "killed"
    rng = random.Random(int(os.environ.get("RNETC_KILL_SEED", "20261127")))  # fuzz/README.md: longer runs
    kills = 0
    for attempt in range(40):
        resume = (out / "last.pt").exists()
        proc = subprocess.Popen(_command(out, resume, extra), env=_env(),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        # Kill moments are fractions of the uninterrupted run's wall time, so the test means
        # the same on a fast machine and a slow one: start-up (importing torch, compiling the
        # spec) is about a third of it, later moments land in epochs, evaluations and
        # checkpoint writes. The first three processes die before half the run; a later one
        # finishes when it outlives what is left of the run.
        delay = whole * (rng.uniform(0.05, 0.5) if attempt < 3 else rng.uniform(0.05, 1.1))
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
    if finetune:  # the frozen part is the pretrained file's, bit for bit; the rest learnt
        start = torch.load(extra[1], weights_only=True)
        for key in ("conv1.weight", "layer1.2.conv2.weight", "layer1.0.bn1.running_mean"):
            assert torch.equal(b["model"][key], start[key]), key
        assert not torch.equal(b["model"]["layer3.0.conv1.weight"], start["layer3.0.conv1.weight"])
