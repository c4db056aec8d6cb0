"""Whole training runs on the CPU: accuracy on digits, exact resume after Ctrl-C, a run
killed with SIGKILL, two gloo processes against one, and the command line end to end.

The runs are small (a subset of digits at 16x16, a few steps) except the accuracy test,
which trains the README's network on the README's data at its real input size."""

from __future__ import annotations

import csv
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, SPECS

torch = pytest.importorskip("torch")

from resnet_dsl.cli import main  # noqa: E402
from resnet_dsl.compiler import compile_network  # noqa: E402
from resnet_dsl.train import TrainConfig, checkpoint, train  # noqa: E402
from resnet_dsl.train.loop import Loop  # noqa: E402

R20 = SPECS / "cifar_resnet20.rnet"
SMALL = ["--input", "1x16x16", "--subset", "96", "-b", "16"]   # 6 steps per epoch


def small_net():
    return compile_network(R20, input_shape=(1, 16, 16))


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), *sys.path]),
            "OMP_NUM_THREADS": "1"}


def _tensors_equal(a, b, path="") -> list[str]:
    """Names of the entries where two nested checkpoint structures differ (bit for bit)."""
    if isinstance(a, torch.Tensor):
        return [] if isinstance(b, torch.Tensor) and torch.equal(a, b) else [path]
    if isinstance(a, dict):
        if set(a) != set(b):
            return [path + " keys"]
        return [d for k in a for d in _tensors_equal(a[k], b[k], f"{path}.{k}")]
    if isinstance(a, (list, tuple)):
        if len(a) != len(b):
            return [path + " length"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in _tensors_equal(x, y, f"{path}[{i}]")]
    return [] if a == b else [path]


# -- accuracy ------------------------------------------------------------------------------------
def test_cifar_resnet20_learns_digits(tmp_path):
    """cifar_resnet20 trained on digits with the default recipe for 10 epochs of 128 ends
    >= 97% test accuracy.

    At 16x16 (`--input 3x16x16`): the digits are 8x8, so nothing is lost, and it costs a
    quarter of the spec's 32x32 (8 s here). Measured on seeds 0-5: 98.6, 98.3, 99.4, 98.6,
    98.9, 98.6% (the test split is 359 images: a margin of 5 or more). At 32x32, 10
    epochs end 96.9-97.5% and the default 15 end 97.8-99.2% (docs/benchmarks.md).
    """
    config = TrainConfig(epochs=10, seed=0, output_dir=str(tmp_path), print_freq=1000, tensorboard=False)
    result = train(config, compile_network(R20, input_shape=(3, 16, 16)))
    accuracies = [row["test_acc"] for row in result.rows]
    assert result.completed and len(accuracies) == 10
    assert accuracies[-1] >= 0.97, accuracies


# -- resume --------------------------------------------------------------------------------------
@pytest.mark.parametrize("stop_after_step, sig", [
    (6, signal.SIGINT),    # Ctrl-C on the last step of epoch 1
    (9, signal.SIGTERM),   # a scheduler's SIGTERM in the middle of epoch 2
])
def test_resume_after_ctrl_c_is_bit_identical(tmp_path, monkeypatch, stop_after_step, sig):
    net = small_net()
    options = dict(data="digits", subset=96, batch_size=16, epochs=2, deterministic=True,
                   print_freq=1000, tensorboard=False, model_ema=True, label_smoothing=0.1,
                   hflip=True, nesterov=True, device="cpu")
    full = train(TrainConfig(**options, output_dir=str(tmp_path / "full")), net)
    assert full.completed

    original = Loop._step

    def step_then_ctrl_c(self, x, y):
        out = original(self, x, y)
        if self.state.step + 1 == stop_after_step:   # the loop counts the step after this call
            signal.raise_signal(sig)
        return out

    monkeypatch.setattr(Loop, "_step", step_then_ctrl_c)
    stopped = train(TrainConfig(**options, output_dir=str(tmp_path / "part")), net)
    monkeypatch.undo()
    assert not stopped.completed
    saved = checkpoint.load_training(tmp_path / "part" / "last.pt")
    assert saved["loop"]["step"] == stop_after_step

    resumed = train(TrainConfig(**options, output_dir=str(tmp_path / "part"), resume="auto"), net)
    assert resumed.completed
    a = checkpoint.load_training(tmp_path / "full" / "last.pt")
    b = checkpoint.load_training(tmp_path / "part" / "last.pt")
    for key in ("model", "optimizer", "ema", "rng"):
        assert _tensors_equal(a[key], b[key]) == [], key
    for row_a, row_b in zip(a["loop"]["history"], b["loop"]["history"]):
        for key in ("step", "lr", "train_loss", "train_acc", "test_loss", "test_acc", "ema_test_acc"):
            assert row_a[key] == pytest.approx(row_b[key], rel=1e-12), key


# -- SIGKILL -------------------------------------------------------------------------------------
def test_sigkill_mid_epoch_leaves_a_loadable_checkpoint(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "resnet_dsl", "train", str(R20), *SMALL, "--epochs", "40",
           "--print-freq", "1", "--output-dir", str(out), "--device", "cpu"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=_env(), text=True)
    seen = []
    deadline = time.time() + 240
    try:
        for line in proc.stdout:
            seen.append(line)
            if line.startswith("epoch 2/40  step 3/6") or time.time() > deadline:
                break
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert any(line.startswith("epoch 2/40  step 3/6") for line in seen), "".join(seen[-20:])
    state = checkpoint.load_training(out / "last.pt")   # weights_only=True inside
    assert state["loop"]["epoch"] == 1 and state["loop"]["epoch_step"] == 0
    assert not [p for p in os.listdir(out) if p.endswith(".tmp")]
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert [r["epoch"] for r in rows] == ["1"]
    # and the run goes on from there
    rc = main(["train", str(R20), *SMALL, "--epochs", "2", "--print-freq", "100", "--output-dir",
               str(out), "--resume", "--device", "cpu"])
    assert rc == 0 and checkpoint.load_training(out / "last.pt")["loop"]["epoch"] == 2


# -- two processes -------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_gloo_processes_match_one(tmp_path):
    """torchrun with 2 CPU processes, each taking half of every global batch of 32, with
    SyncBatchNorm (statistics over the global batch), ends where 1 process ends.

    Both run in float64 (tests/train_float64.py), so that the different order of float
    sums (two processes, other thread counts) cannot grow, over steps at lr 0.1, into
    differences that hide a real one. Measured: the weights agree to 1e-12 of their
    updates with --sync-bn, and differ by 25% without it (each process's BatchNorm then
    sees only its 16 images).
    """
    options = ["--input", "1x16x16", "--subset", "128", "-b", "32", "--epochs", "2",
               "--print-freq", "100", "--device", "cpu", "--hflip", "--model-ema"]
    script = str(REPO / "tests" / "train_float64.py")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
           f"--master_port={_free_port()}", script, "train", str(R20), *options,
           "--sync-bn", "--output-dir", str(tmp_path / "ddp")]
    done = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert done.stdout.count("train loss") == 2   # rank 0 alone prints the summaries
    torch.set_default_dtype(torch.float64)
    try:
        assert main(["train", str(R20), *options, "--output-dir", str(tmp_path / "one")]) == 0
    finally:
        torch.set_default_dtype(torch.float32)
    two = checkpoint.load_training(tmp_path / "ddp" / "last.pt")
    one = checkpoint.load_training(tmp_path / "one" / "last.pt")
    for part in ("model", "ema"):
        assert set(one[part]) == set(two[part])
        for name, a in one[part].items():
            assert a.dtype != torch.float32
            assert torch.allclose(a, two[part][name], rtol=1e-9, atol=1e-11), (part, name)
    for r1, r2 in zip(one["loop"]["history"], two["loop"]["history"], strict=True):
        for key in ("train_loss", "train_acc", "test_loss", "test_acc", "ema_test_acc"):
            assert r1[key] == pytest.approx(r2[key], rel=1e-9), key


# -- the command line ------------------------------------------------------------------------------
def test_compile_train_end_to_end(tmp_path, capsys):
    out = tmp_path / "run"
    weights = tmp_path / "trained.safetensors"
    rc = main(["compile", str(R20), "--train", "--data", "synthetic", "--synthetic-size", "64",
               "-b", "32", "--epochs", "1", "--input", "3x16x16", "--output-dir", str(out),
               "-o", str(weights), "--no-tensorboard"])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    assert "forward: 1x3x16x16 -> 1x10" in printed and "epoch 1/1  train loss" in printed
    for name in ("config.yaml", "metrics.csv", "log.txt", "last.pt", "best.pt", "curves.png"):
        assert (out / name).is_file(), name
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert len(rows) == 1 and float(rows[0]["images_per_s"]) > 0 and rows[0]["step"] == "2"
    assert (out / "log.txt").read_text().startswith("epoch 1/1  train loss")

    from resnet_dsl.backends.torch import load_state

    trained = checkpoint.load_training(out / "last.pt")["model"]
    assert all(torch.equal(trained[k], v) for k, v in load_state(weights).items())

    # the saved options come back with --config; the command line wins over them
    rc = main(["train", str(R20), "--input", "3x16x16", "--config", str(out / "config.yaml"),
               "--epochs", "2", "--resume"])
    assert rc == 0 and "resumed from" in capsys.readouterr().err
    assert len(list(csv.DictReader(open(out / "metrics.csv")))) == 2

    # eval takes the run's data options from a checkpoint; plain weights need them given
    for target, more in ((out / "best.pt", []), (weights, ["--data", "synthetic", "--subset", "12"])):
        rc = main(["eval", str(R20), "--input", "3x16x16", "--weights", str(target), "--json", *more])
        assert rc == 0
        text = capsys.readouterr().out
        assert '"images": 12' in text and '"data": "synthetic"' in text


def test_compile_train_and_train_are_the_same_run(tmp_path):
    options = [*SMALL, "--epochs", "1", "--seed", "5", "--print-freq", "100", "--no-tensorboard"]
    assert main(["compile", str(R20), "--train", *options, "--output-dir", str(tmp_path / "a")]) == 0
    assert main(["train", str(R20), *options, "--output-dir", str(tmp_path / "b")]) == 0
    a = checkpoint.load_training(tmp_path / "a" / "last.pt")
    b = checkpoint.load_training(tmp_path / "b" / "last.pt")
    assert _tensors_equal(a["model"], b["model"]) == []


def test_progress_bar_on_a_terminal():
    import io

    from resnet_dsl.train.progress import Progress

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    stream = Terminal()
    bar = Progress(1, 4, steps=10, stream=stream)
    bar.advance(5)
    bar.update(5, 0.5, 0.9, 0.1, 100.0)
    bar.advance(5)
    bar.close()
    assert "epoch 1/4" in stream.getvalue() and "loss 0.5000 acc 90.00%" in stream.getvalue()
    plain = io.StringIO()
    Progress(1, 4, steps=10, stream=plain).update(5, 0.5, 0.9, 0.1, 100.0)
    assert plain.getvalue() == "epoch 1/4  step 5/10  loss 0.5000  acc 90.00%  lr 0.1  100 img/s\n"


def test_folder_data_through_worker_processes(tmp_path, capsys):
    root = _bad_folder(tmp_path)
    (root / "train" / "b" / "2.png").unlink()
    rc = main(["train", str(R20), "--data", "folder", "--data-dir", str(root), "--input", "3x8x8",
               "--set", "classes=2", "-b", "4", "--epochs", "2", "--workers", "1",
               "--output-dir", str(tmp_path / "run"), "--no-tensorboard"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "(7 train / 8 test images)" in out and "DataLoader with 1 worker" in out
    assert len(checkpoint.load_training(tmp_path / "run" / "last.pt")["loop"]["history"]) == 2


def test_tensorboard_asked_for_but_missing(monkeypatch, capsys):
    from resnet_dsl.train.metrics import TensorBoard

    monkeypatch.setattr(TensorBoard, "available", staticmethod(lambda: False))
    assert main(["train", str(R20), "--tensorboard"]) == 2
    assert "--tensorboard needs the tensorboard package" in capsys.readouterr().err


def _cifar100(tmp_path: Path) -> Path:
    from cifar_files import write_cifar100_binary

    write_cifar100_binary(tmp_path / "c100")
    return tmp_path / "c100"


def _bad_folder(tmp_path: Path) -> Path:
    import numpy as np
    from PIL import Image

    root = tmp_path / "folder"
    for split in ("train", "val"):
        for c in ("a", "b"):
            (root / split / c).mkdir(parents=True)
            for i in range(4):
                Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / split / c / f"{i}.png")
    (root / "train" / "b" / "2.png").write_bytes(b"broken")
    return root


@pytest.mark.parametrize("argv, code, words", [
    (["train", str(R20), "--data", "cifar10", "--data-dir", "{tmp}/nowhere"], 1,
     ["error[E801]", "no such data folder: {tmp}/nowhere"]),
    (["train", str(R20), "--epochs", "0"], 2, ["--epochs must be a positive integer, got 0"]),
    (["train", str(R20), "-b", "-1"], 2, ["--batch-size must be a positive integer"]),
    (["train", str(R20), "--data", "mnist"], 2, ["invalid choice: 'mnist'"]),
    (["train", str(R20), "--data", "cifar100", "--data-dir", "{cifar100}"], 1,
     ["error[E804]", "100 classes; the network outputs 10", "--set classes=100"]),
    (["train", str(R20), "--data", "synthetic", "--synthetic-size", "10"], 2,
     ["--batch-size 128 is larger than the 10 training images"]),
    (["train", str(R20), "--resume", "{tmp}/none.pt", "--output-dir", "{tmp}/r"], 1,
     ["error[E805]", "no such checkpoint: {tmp}/none.pt"]),
    (["train", str(R20), "--config", "{tmp}/missing.yaml"], 2, ["no such config file: {tmp}/missing.yaml"]),
    (["train", str(R20), "--device", "tpu"], 2, ["--device must be auto, cpu, cuda or cuda:N"]),
    (["compile", str(R20), "--train", "--device", "meta"], 2, ["--device must be"]),
    (["compile", str(R20), "--epochs", "3"], 2, ["--epochs is a training option: add --train"]),
    (["eval", str(R20), "--weights", "{tmp}/none.pt"], 1, ["error[E805]", "{tmp}/none.pt"]),
    (["train", str(R20), "--subset", "64", "-b", "32", "--output-dir", "{tmp}/file/run"], 2,
     ["--output-dir {tmp}/file/run: cannot write there"]),
    (["train", str(R20), "--data", "folder", "--data-dir", "{folder}", "--input", "3x8x8",
      "--set", "classes=2", "-b", "4", "--workers", "1", "--output-dir", "{tmp}/f"], 1,
     ["error[E802]", "{folder}/train/b/2.png: Pillow cannot read this image"]),
])
def test_errors_are_messages_not_tracebacks(tmp_path, capsys, argv, code, words):
    fill = {"tmp": str(tmp_path)}
    (tmp_path / "file").write_text("a file where a folder should be")
    if any("{cifar100}" in a for a in argv):
        fill["cifar100"] = str(_cifar100(tmp_path))
    if any("{folder}" in a for a in argv):
        fill["folder"] = str(_bad_folder(tmp_path))
    argv = [a.format(**fill) for a in argv]
    try:
        rc = main(argv)
    except SystemExit as exc:   # argparse's own usage errors
        rc = exc.code
    captured = capsys.readouterr()
    text = captured.err + captured.out
    assert rc == code, text
    assert "Traceback" not in text
    for w in words:
        assert w.format(**fill) in text, text


def test_weights_of_another_network_name_the_first_mismatch(tmp_path, capsys):
    """Resuming or evaluating with another network's weights is E805 naming the first
    tensor that differs (the same check as `rnetc export --weights`), not torch's list."""
    import resnet_dsl
    from resnet_dsl.backends.torch import save_weights

    tiny = ["--subset", "64", "-b", "32", "--input", "3x8x8", "--no-tensorboard"]
    assert main(["train", str(SPECS / "cifar_resnet32.rnet"), "--epochs", "1", *tiny,
                 "--output-dir", str(tmp_path / "r32")]) == 0
    capsys.readouterr()
    wide = save_weights(resnet_dsl.build(R20, classes=100), tmp_path / "c100.safetensors")
    for argv, words in (
        (["train", str(R20), "--epochs", "2", *tiny, "--output-dir", str(tmp_path / "r20"),
          "--resume", str(tmp_path / "r32" / "last.pt")],
         [f"{tmp_path / 'r32' / 'last.pt'} does not fit cifar_resnet20: the file has a tensor "
          "`layer1.3.conv1.weight` (shape 16x16x3x3) that the network does not (and 71 more",
          "help: resume with the spec"]),
        (["eval", str(R20), "--input", "3x8x8", "--weights", str(tmp_path / "r32" / "best.pt")],
         ["does not fit cifar_resnet20", "help: evaluate with the spec"]),
        (["eval", str(R20), "--weights", str(wide)],
         ["tensor `fc.weight` has shape 100x64 in the file, the network needs 10x64"]),
    ):
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert "error[E805]" in err and "Traceback" not in err, err
        for w in words:
            assert w in err, err
