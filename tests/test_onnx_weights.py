"""`export_onnx(weights=...)`: the file computes with the given weights (a weights file in
each format rnetc writes, a training checkpoint's `model`); a file that does not fit the
spec, is not a weights file, or is a pickle that would run code is refused with E805
naming the first mismatching tensor, and nothing in it is run."""

from __future__ import annotations

import os
import pickle

import pytest
from conftest import REPO, SPECS

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

from torch_helpers import randomize, set_threads  # noqa: E402

import resnet_dsl  # noqa: E402
from resnet_dsl.backends.onnx import export_onnx  # noqa: E402
from resnet_dsl.backends.torch.weights import fit_state, read_weights  # noqa: E402
from resnet_dsl.backends.torch import save_weights  # noqa: E402
from resnet_dsl.compiler import compile_network  # noqa: E402
from resnet_dsl.errors import RnetError  # noqa: E402

CIFAR = SPECS / "cifar_resnet20.rnet"
ERRORS = REPO / "tests" / "errors"


@pytest.fixture(autouse=True, scope="module")
def _threads():
    yield from set_threads(1)


@pytest.fixture(scope="module")
def trained():
    """A cifar_resnet20 with weights unlike a fresh one's (random BN statistics too)."""
    torch.manual_seed(7)
    return randomize(resnet_dsl.build(CIFAR), seed=7).eval()


def checkpoint(model) -> dict:
    """The layout of rnetc train's checkpoints (resnet_dsl/train/checkpoint.py on the
    `train` branch): a format tag, the model's state dict under `model`, and the rest."""
    return {"format": "rnetc-train-checkpoint", "version": 1, "model": model.state_dict(),
            "optimizer": {"state": {}, "param_groups": []}, "epoch": 3, "best_acc": 0.5}


WRITERS = {
    "safetensors": ("w.safetensors", lambda m, p: save_weights(m, p)),
    "pt": ("w.pt", lambda m, p: save_weights(m, p)),
    "pth": ("w.pth", lambda m, p: torch.save(m.state_dict(), p)),
    "checkpoint": ("last.pt", lambda m, p: torch.save(checkpoint(m), p)),
}


@pytest.mark.parametrize("kind", WRITERS)
def test_read_weights_in_every_layout(kind, trained, tmp_path):
    name, write = WRITERS[kind]
    write(trained, tmp_path / name)
    state = read_weights(tmp_path / name)
    assert list(state) == list(trained.state_dict()) or kind == "safetensors"  # (sorted)
    assert all(torch.equal(state[k], v) for k, v in trained.state_dict().items())


def test_export_uses_the_weights(trained, tmp_path):
    path = tmp_path / "last.pt"
    torch.save(checkpoint(trained), path)
    net = compile_network(CIFAR)
    report = export_onnx(net, tmp_path / "r20.onnx", weights=path)
    assert report.check.passed and report.weights == "last.pt"
    assert report.metadata["rnetc.weights"] == "last.pt"
    x = torch.randn(2, 3, 32, 32)
    session = ort.InferenceSession(str(report.path), providers=["CPUExecutionProvider"])
    got = torch.from_numpy(session.run(None, {"images": x.numpy()})[0])
    with torch.no_grad():
        want, fresh = trained(x), resnet_dsl.build(CIFAR).eval()(x)
    assert (got - want).abs().max() <= 1e-4
    assert (got - fresh).abs().max() > 1e-2   # not a fresh initialisation


def mismatching(model) -> dict[str, dict]:
    """State dicts that do not fit cifar_resnet20, one fault each."""
    good = model.state_dict()
    wrong_shape = dict(good)
    wrong_shape["layer2.0.conv1.weight"] = torch.zeros(16, 16, 3, 3)
    missing = {k: v for k, v in good.items() if k != "layer3.2.bn2.running_var"}
    extra = {**good, "layer4.0.conv1.weight": torch.zeros(1)}
    return {"shape": wrong_shape, "missing": missing, "unexpected": extra}


MESSAGES = {
    "shape": "w.pt does not fit cifar_resnet20: tensor `layer2.0.conv1.weight` has shape "
             "16x16x3x3 in the file, the network needs 32x16x3x3",
    "missing": "w.pt does not fit cifar_resnet20: tensor `layer3.2.bn2.running_var` (shape 64) "
               "is missing from the file",
    "unexpected": "w.pt does not fit cifar_resnet20: the file has a tensor "
                  "`layer4.0.conv1.weight` (shape 1) that the network does not",
}


@pytest.mark.parametrize("fault", MESSAGES)
def test_weights_of_another_network_are_refused(fault, trained, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch.save(mismatching(trained)[fault], "w.pt")
    with pytest.raises(RnetError) as info:
        export_onnx(compile_network(CIFAR), "r20.onnx", weights="w.pt")
    assert info.value.codes == ["E805"]
    assert info.value.diagnostics[0].message == MESSAGES[fault]
    assert sorted(os.listdir(".")) == ["w.pt"]   # nothing written


def test_several_mismatches_are_counted(trained):
    state = dict(trained.state_dict())
    state["conv1.weight"] = torch.zeros(1)
    del state["fc.bias"]
    with pytest.raises(RnetError) as info:
        fit_state(state, trained.state_dict(), source="w.pt", network="n")
    assert info.value.diagnostics[0].message.endswith("(and 1 more mismatches)")


class _RunsCode:
    """Unpickling this would create the file `marker` (a stand-in for any code)."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _write_malicious(path, marker, protocol):
    with open(path, "wb") as f:
        pickle.dump({"conv1.weight": _RunsCode(str(marker))}, f, protocol=protocol)


def _zip(path):
    import zipfile

    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/version", "3")


NOT_WEIGHTS = {
    # name: (file name, how to write it, the message after the path)
    "text": ("w.pt", lambda p: p.write_text("not a tensor"),
             ": refused: not a pickle of tensors and plain values only (Unsupported operand"),
    "zip_without_pickle": ("w.pt", lambda p: _zip(p), ": not a PyTorch weights file ("),
    "truncated_safetensors": ("w.safetensors", lambda p: p.write_bytes(b"\x10\x00\x00"),
                              ": not a safetensors weights file ("),
    "list": ("w.pt", lambda p: torch.save([torch.zeros(1)], p),
             " holds a list, not a state dict of tensors"),
    "empty": ("w.pt", lambda p: torch.save({}, p),
              " holds an empty dict, not a state dict of tensors"),
    "not_tensors": ("w.pt", lambda p: torch.save({"conv1.weight": [1.0]}, p),
                    " is not a state dict of tensors: its entry `conv1.weight` is a list"),
    "suffix": ("w.bin", lambda p: p.write_bytes(b""),
               ": weights are read from .safetensors, .pt, .pth files, not .bin"),
    "missing": ("nothing.pt", lambda p: None, ""),
}


@pytest.mark.parametrize("case", NOT_WEIGHTS)
def test_files_that_are_not_weights(case, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    name, write, after = NOT_WEIGHTS[case]
    write(tmp_path / name)
    with pytest.raises(RnetError) as info:
        read_weights(name)
    assert info.value.codes == ["E805"]
    message = info.value.diagnostics[0].message
    if case == "missing":
        assert message == "no such weights file: nothing.pt"
    else:
        assert message.startswith(name + after), message


@pytest.mark.parametrize("protocol", [2, 4])
def test_malicious_pickle_is_refused_and_not_run(protocol, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "ran"
    _write_malicious(tmp_path / "evil.pt", marker, protocol)
    with pytest.raises(RnetError) as info:
        export_onnx(compile_network(CIFAR), "r20.onnx", weights="evil.pt")
    assert not marker.exists()
    message = info.value.diagnostics[0].message
    assert info.value.codes == ["E805"]
    assert message.startswith("evil.pt: refused: not a pickle of tensors and plain values "
                              "only (")
    assert message.endswith("; nothing in it was run")
    if protocol == 2:   # the unpickler names what the file asked for
        assert "(Unsupported global: GLOBAL io.open)" in message
    rendered = info.value.render()   # no advice to run it after all
    assert "weights_only=False" not in rendered and "safe_globals" not in rendered
    assert "set to `False`" not in rendered


def test_a_zip_checkpoint_naming_a_blocked_module_is_refused_without_advice(tmp_path):
    """torch.save'd (zip) files that ask for a blocked module (posix.system) are worded
    differently by torch; the reason is still given and the advice still left out."""
    marker = tmp_path / "ran"
    torch.save({"conv1.weight": _RunsCode(str(marker))}, tmp_path / "evil.pt")
    with pytest.raises(RnetError) as info:
        read_weights(tmp_path / "evil.pt")
    rendered = info.value.render()
    assert not marker.exists() and info.value.codes == ["E805"]
    assert "nothing in it was run" in rendered and "(" in rendered
    assert "weights_only=False" not in rendered and "set to `False`" not in rendered


def test_golden_weights_error(trained, tmp_path, monkeypatch):
    from test_errors_golden import check_golden

    monkeypatch.chdir(tmp_path)
    torch.save(mismatching(trained)["shape"], "w.pt")
    with pytest.raises(RnetError) as info:
        export_onnx(compile_network(CIFAR), "r20.onnx", weights="w.pt")
    check_golden(ERRORS / "E805_weights_do_not_fit.expected", info.value.render() + "\n")
