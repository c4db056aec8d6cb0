"""`rnetc compile`: builds, proves a forward pass, prints the summary; -o writes the
initialised weights atomically; --emit-python writes the standalone file; usage errors
exit 2 naming the path, spec errors exit 1."""

import os
import subprocess
import sys

import pytest
from conftest import REPO, SPECS, rnetc

torch = pytest.importorskip("torch")

from torch_helpers import import_file, set_threads  # noqa: E402

import resnet_dsl  # noqa: E402
from resnet_dsl.backends.torch import load_state  # noqa: E402
from resnet_dsl.files import write_atomic  # noqa: E402

CIFAR = str(SPECS / "cifar_resnet20.rnet")


@pytest.fixture(autouse=True, scope="module")
def _threads():
    yield from set_threads(1)


def test_compile_prints_summary_and_forward(capsys):
    code, out, err = rnetc(capsys, "compile", CIFAR)
    assert code == 0, err
    assert "Parameters:   269,722" in out
    assert "forward: 1x3x32x32 -> 1x10 on cpu in " in out


def test_compile_on_meta(capsys):
    code, out, _ = rnetc(capsys, "compile", SPECS / "resnet152.rnet", "--device", "meta")
    assert code == 0
    assert "forward: 1x3x224x224 -> 1x1000 on meta" in out and "shapes only" in out


@pytest.mark.parametrize("suffix", [".safetensors", ".pt", ".pth"])
def test_weights_round_trip(capsys, tmp_path, suffix):
    path = tmp_path / f"w{suffix}"
    torch.manual_seed(3)
    code, out, _ = rnetc(capsys, "compile", CIFAR, "-o", path, "--zero-init-residual")
    assert code == 0
    assert f"weights: {path} (269,722 parameters" in out
    assert "the last BN of 9 residual branches zeroed" in out
    torch.manual_seed(3)
    expected = resnet_dsl.build(CIFAR, zero_init_residual=True).state_dict()
    saved = load_state(path)
    assert set(saved) == set(expected)  # (safetensors keeps names sorted)
    assert all(torch.equal(saved[k], v) for k, v in expected.items())
    fresh = resnet_dsl.build(CIFAR)
    fresh.load_state_dict(saved, strict=True)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left


def test_safetensors_metadata(capsys, tmp_path):
    from safetensors import safe_open

    path = tmp_path / "w.safetensors"
    assert rnetc(capsys, "compile", CIFAR, "-o", path)[0] == 0
    with safe_open(str(path), "pt") as f:
        assert f.metadata() == {"network": "cifar_resnet20", "spec": "cifar_resnet20.rnet",
                                "rnetc": resnet_dsl.__version__}


def test_set_and_input_reach_the_model(capsys):
    code, out, _ = rnetc(capsys, "compile", SPECS / "cifar50.rnet", "--set", "k=2", "--set",
                         "classes=100", "--input", "3x40x40")
    assert code == 0
    assert "arguments: depth=50, k=2, classes=100" in out
    assert "forward: 1x3x40x40 -> 1x100" in out


def test_emit_python_writes_an_importable_file(capsys, tmp_path):
    path = tmp_path / "model.py"
    code, out, _ = rnetc(capsys, "compile", CIFAR, "--emit-python", path)
    assert code == 0
    assert f"python: {path} (class CifarResnet20; needs only torch)" in out
    model = import_file(path, "cli_emitted").CifarResnet20()
    model.load_state_dict(resnet_dsl.build(CIFAR).state_dict(), strict=True)


@pytest.mark.parametrize("argv, message", [
    (["missing.rnet"], "no such file: missing.rnet"),
    ([CIFAR, "-o", "{tmp}/w.txt"], "-o {tmp}/w.txt: weights are written as .safetensors, .pt, .pth"),
    ([CIFAR, "-o", "{tmp}/w"], "-o {tmp}/w: weights are written as"),
    ([CIFAR, "-o", "{tmp}/no/such/w.pt"], "-o {tmp}/no/such/w.pt: the folder {tmp}/no/such does not exist"),
    ([CIFAR, "-o", "{tmp}/folder.pt"], "-o {tmp}/folder.pt: is a folder"),
    ([CIFAR, "-o", CIFAR + "/w.pt"], f"-o {CIFAR}/w.pt: {CIFAR} is not a folder"),
    ([CIFAR, "-o", "{tmp}/w.pt", "--device", "meta"], "a --device meta build has no weights"),
    ([CIFAR, "--emit-python", "{tmp}/model.txt"], "--emit-python {tmp}/model.txt: the file name must end in .py"),
    ([CIFAR, "--emit-python", "{tmp}/none/m.py"], "the folder {tmp}/none does not exist"),
    ([CIFAR, "--set", "depth"], "--set takes NAME=VALUE"),
])
def test_usage_errors_exit_2(capsys, tmp_path, argv, message):
    (tmp_path / "folder.pt").mkdir()
    argv = [a.format(tmp=tmp_path) for a in argv]
    code, out, err = rnetc(capsys, "compile", *argv)
    assert code == 2
    assert message.format(tmp=tmp_path) in err
    assert out == ""


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_unwritable_folder_exits_2(capsys, tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    code, _, err = rnetc(capsys, "compile", CIFAR, "-o", folder / "w.pt")
    folder.chmod(0o700)
    assert code == 2 and f"cannot write in {folder}" in err


def test_write_failure_exits_2_naming_the_path(capsys, tmp_path, monkeypatch):
    import resnet_dsl.backends.torch as backend

    def refuse(model, path, metadata=None):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(backend, "save_weights", refuse)
    code, _, err = rnetc(capsys, "compile", CIFAR, "-o", tmp_path / "w.pt")
    assert code == 2 and f"-o {tmp_path / 'w.pt'}: cannot write it (Permission denied)" in err


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
def test_cuda_without_a_gpu_exits_2(capsys):
    code, _, err = rnetc(capsys, "compile", CIFAR, "--device", "cuda")
    assert code == 2 and "sees no CUDA device" in err


@pytest.mark.parametrize("source, code_", [
    ("network n {\n  input 3x8x8\n  conv 3x3 0\n}\n", "E203"),
    ("network n {\n  input 3x8x8\n  conv 3x3 4 as forward\n}\n", "E701"),
])
def test_spec_errors_exit_1(capsys, tmp_path, source, code_):
    spec = tmp_path / "bad.rnet"
    spec.write_text(source)
    code, _, err = rnetc(capsys, "compile", spec)
    assert code == 1
    assert "bad.rnet:3:" in err and f"error[{code_}]" in err


def test_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "w.pt"
    target.write_text("old")

    def fail(tmp):
        tmp.write_text("half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        write_atomic(target, fail)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["w.pt"]


def test_help_lists_compile():
    out = subprocess.run([sys.executable, "-m", "resnet_dsl", "--help"], cwd=REPO,
                         capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert "compile" in out.stdout


def test_example_builds_and_loads_torchvision():
    pytest.importorskip("torchvision")
    out = subprocess.run([sys.executable, str(REPO / "examples" / "03_build_and_load_torchvision.py")],
                         capture_output=True, text=True, cwd=REPO,
                         env={**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr
    assert "loaded torchvision resnet18's 122 tensors (strict)" in out.stdout
