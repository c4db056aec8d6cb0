"""`rnetc export`: exit codes (0 written and checked; 1 spec, weights, export or check
errors; 2 usage errors, before any work), what it prints, and the file's fate when the
check fails (renamed NAME.onnx.failed; an earlier NAME.onnx untouched)."""

from __future__ import annotations

import os

import pytest
from conftest import REPO, SPECS, rnetc

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from torch_helpers import set_threads  # noqa: E402

from resnet_dsl.backends.onnx import minimize as minimize_module  # noqa: E402

CIFAR = str(SPECS / "cifar_resnet20.rnet")
ERRORS = REPO / "tests" / "errors"


@pytest.fixture(autouse=True, scope="module")
def _threads():
    yield from set_threads(1)


def test_export_prints_the_report(capsys, tmp_path):
    code, out, err = rnetc(capsys, "export", CIFAR, "-o", tmp_path / "r20.onnx")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith(f"onnx: {tmp_path / 'r20.onnx'} (") and "batch dynamic" in lines[0]
    assert lines[1] == ("graph: images [N,3,32,32] -> logits [N,10]; 56 nodes: 19 Conv, 19 Relu, "
                        "9 Add, 4 Slice, 2 Pad, 1 ReduceMean, 1 Reshape, 1 Gemm")
    assert lines[2] == "weights: random initialisation"
    assert lines[3] == "check: onnx.checker (full check) passed"
    assert lines[4].startswith("check: onnxruntime vs PyTorch at batch 1: max abs diff ")
    assert lines[5].startswith("check: onnxruntime vs PyTorch at batch 3: max abs diff ")
    assert lines[6] == "check: ok (rtol 0.001, atol 0.0001)"
    assert sorted(os.listdir(tmp_path)) == ["r20.onnx"]   # no temporary or .data file


def test_fixed_batch_and_input_and_set(capsys, tmp_path):
    path = tmp_path / "r.onnx"
    code, out, err = rnetc(capsys, "export", SPECS / "cifar_resnet.rnet", "-o", path,
                           "--set", "depth=8", "--set", "classes=7", "--input", "3x24x24",
                           "--batch", "2", "--no-check")
    assert code == 0, err
    assert "images [2,3,24,24] -> logits [2,7]" in out and "check: skipped (--no-check)" in out
    model = onnx.load(path)
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [2, 3, 24, 24]
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["rnetc.parameters"] == '{"classes": 7, "depth": 8}'
    assert meta["rnetc.batch"] == "2" and meta["rnetc.input_shape"] == "3x24x24"


def test_opset(capsys, tmp_path):
    path = tmp_path / "r.onnx"
    code, out, err = rnetc(capsys, "export", CIFAR, "-o", path, "--opset", "18",
                           "--set", "depth=8")
    assert code == 0, err
    assert "opset 18;" in out
    assert [o.version for o in onnx.load(path).opset_import if o.domain == ""] == [18]


USAGE = [
    # (arguments after the spec, the message on stderr)
    (["-o", "{tmp}/r.txt"], "-o {tmp}/r.txt: the file name must end in .onnx"),
    (["-o", "{tmp}/nowhere/r.onnx"], "-o {tmp}/nowhere/r.onnx: the folder {tmp}/nowhere does not exist"),
    (["-o", "{tmp}/r.onnx", "--batch", "0"], "--batch takes `dynamic` or a positive integer, got `0`"),
    (["-o", "{tmp}/r.onnx", "--batch", "any"], "--batch takes `dynamic` or a positive integer, got `any`"),
    (["-o", "{tmp}/r.onnx", "--opset", "17"], "--opset 17: rnetc writes opsets 18 to "),
    (["-o", "{tmp}/r.onnx", "--weights", "{tmp}/none.pt"], "--weights {tmp}/none.pt: no such file"),
    (["-o", "{tmp}/r.onnx", "--weights", "{tmp}"], "--weights {tmp}: is a folder, not a weights file"),
    (["-o", "{tmp}/r.onnx", "--set", "depth"], "--set takes NAME=VALUE, got `depth`"),
]


@pytest.mark.parametrize("argv, message", USAGE, ids=[m.split(":")[0] for _, m in USAGE])
def test_usage_errors_exit_2(capsys, tmp_path, argv, message):
    argv = [a.format(tmp=tmp_path) for a in argv]
    code, _, err = rnetc(capsys, "export", CIFAR, *argv)
    assert code == 2
    assert err.startswith(f"rnetc export: error: {message.format(tmp=tmp_path)}"), err
    assert not list(tmp_path.glob("*.onnx*"))


def test_missing_spec_exits_2(capsys, tmp_path):
    code, _, err = rnetc(capsys, "export", tmp_path / "none.rnet", "-o", tmp_path / "r.onnx")
    assert code == 2 and f"no such file: {tmp_path / 'none.rnet'}" in err


def test_spec_error_exits_1(capsys, tmp_path):
    code, _, err = rnetc(capsys, "export", CIFAR, "-o", tmp_path / "r.onnx", "--set", "depth=21")
    assert code == 1 and "error[E401]" in err
    assert not list(tmp_path.iterdir())


def test_weights_that_do_not_fit_exit_1(capsys, tmp_path):
    import resnet_dsl
    from resnet_dsl.backends.torch import save_weights

    weights = save_weights(resnet_dsl.build(SPECS / "cifar_resnet32.rnet"), tmp_path / "w32.safetensors")
    code, _, err = rnetc(capsys, "export", CIFAR, "-o", tmp_path / "r.onnx", "--weights", weights)
    assert code == 1
    # ResNet-32 has two more blocks per stage: 3 x 2 x 12 tensors the network lacks
    assert err.startswith(f"error[E805]: {weights} does not fit cifar_resnet20: the file has a "
                          "tensor `layer1.3."), err
    assert "that the network does not (and 71 more mismatches)" in err
    assert sorted(os.listdir(tmp_path)) == ["w32.safetensors"]


def _corrupt_bias(graph) -> int:
    """A wrong rewrite: adds 1 to the first bias the graph has (so onnxruntime differs)."""
    from onnx import numpy_helper

    for tensor in graph.initializer:
        if tensor.name.endswith("bias") or len(tensor.dims) == 1:
            tensor.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(tensor) + 1, tensor.name))
            return 1
    return 0


def test_failed_check_keeps_the_file_aside_and_exits_1(capsys, tmp_path, monkeypatch):
    from test_errors_golden import check_golden

    monkeypatch.chdir(tmp_path)
    (tmp_path / "r20.onnx").write_bytes(b"an earlier export")
    monkeypatch.setattr(minimize_module, "RULES", minimize_module.RULES + (_corrupt_bias,))
    code, out, err = rnetc(capsys, "export", CIFAR, "-o", "r20.onnx", "--set", "depth=8")
    assert code == 1 and out == ""
    assert err.startswith("error[E902]: the exported r20.onnx failed its check: onnxruntime's "
                          "output differs from PyTorch's beyond rtol 0.001 / atol 0.0001; the "
                          "file is kept as r20.onnx.failed"), err
    assert "  = note: check: onnxruntime vs PyTorch at batch 1: max abs diff " in err
    assert (tmp_path / "r20.onnx").read_bytes() == b"an earlier export"
    onnx.checker.check_model(str(tmp_path / "r20.onnx.failed"), full_check=True)
    assert sorted(os.listdir(tmp_path)) == ["r20.onnx", "r20.onnx.failed"]
    # the golden message, with the measured differences masked
    masked = "\n".join(line.split(": max abs diff")[0] + ": max abs diff ..." if "max abs" in line
                       else line for line in err.splitlines())
    check_golden(ERRORS / "E902_check_failed.expected", masked + "\n")


def test_exporter_failure_exits_1(capsys, tmp_path, monkeypatch):
    from test_errors_golden import check_golden

    def broken(*args, **kwargs):
        raise RuntimeError("no ONNX translation for aten::frobnicate\nmore detail")

    monkeypatch.setattr(torch.onnx, "export", broken)
    code, _, err = rnetc(capsys, "export", CIFAR, "-o", tmp_path / "r.onnx")
    assert code == 1
    assert not list(tmp_path.iterdir())
    check_golden(ERRORS / "E901_export_failed.expected", err)
