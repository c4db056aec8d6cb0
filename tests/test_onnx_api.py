"""`export_onnx` / `export_spec` beyond the shipped specs: every shortcut policy (option A
zero-pad at stride 2 and at stride 1, projections, ResNet-D's average-pool projection
with ceil mode and uncounted padding on odd and even sizes), dropout (gone in eval
mode), pre-activation blocks; a fixed batch; weights past the external-data limit; the
caller's model left alone; the argument checks; and a check that can fail."""

from __future__ import annotations

import os

import pytest
from conftest import REPO, SPECS

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from test_onnx_export import expected_counts, normalised  # noqa: E402
from torch_helpers import randomize, set_threads  # noqa: E402

import resnet_dsl.backends.onnx.export as export_module  # noqa: E402
from resnet_dsl.api import export_spec  # noqa: E402
from resnet_dsl.backends.onnx import export_onnx  # noqa: E402
from resnet_dsl.backends.onnx.verify import check_file  # noqa: E402
from resnet_dsl.backends.torch import build_module  # noqa: E402
from resnet_dsl.compiler import compile_network  # noqa: E402

CIFAR = SPECS / "cifar_resnet20.rnet"


@pytest.fixture(autouse=True, scope="module")
def _threads():
    yield from set_threads(1)


def shortcut_spec(policy: str, size: int) -> str:
    """Two basic-block stages that change the shape: at stride 2 (8 -> 16 channels) and
    at stride 1 (16 -> 24 channels)."""
    return ("block b(out, stride = 1) {\n  conv 3x3 out stride=stride\n  bn\n  relu\n"
            "  conv 3x3 out\n  bn\n  add\n  relu\n}\n"
            f"network n {{\n  input 3x{size}x{size}\n  conv 3x3 8\n  bn\n  relu\n"
            f"  stage x2 b(8) shortcut={policy}\n"
            f"  stage x2 b(16) stride=2 shortcut={policy}\n"
            f"  stage x1 b(24) shortcut={policy}\n"
            "  head {\n    avgpool global\n    flatten\n    dropout 0.5\n    fc 10\n  }\n}\n")


PREACT = """network p {
  input 3x16x16
  conv 3x3 16
  stage x2 preact_bottleneck(8)
  stage x2 preact_bottleneck(16) stride=2
  bn
  relu
  head {
    avgpool global
    flatten
    fc 10
  }
}
"""

CASES = {
    # name: (spec text or path, parameters, input shape)
    "zeropad_odd": (shortcut_spec("zeropad", 15), {}, None),
    "proj": (shortcut_spec("proj", 15), {}, None),
    "proj_all": (shortcut_spec("proj_all", 16), {}, None),
    "avgproj_odd": (shortcut_spec("avgproj", 15), {}, None),
    "avgproj_even": (shortcut_spec("avgproj", 16), {}, None),
    "preact_bottleneck": (PREACT, {}, None),
    "wrn_dropout": (SPECS / "wrn.rnet", {"depth": 10, "k": 1, "drop": 0.3}, None),
    "custom_block_resnet_d": (REPO / "examples" / "specs" / "custom_block.rnet", {}, (3, 48, 48)),
}


@pytest.mark.parametrize("name", CASES)
def test_layer_and_shortcut_kinds_export(name, tmp_path):
    spec, params, shape = CASES[name]
    net = compile_network(spec, params=params, input_shape=shape)
    torch.manual_seed(0)
    model = randomize(build_module(net, device="cpu"))
    report = export_onnx(net, tmp_path / "n.onnx", model=model)
    assert report.check.passed, report.describe()
    assert normalised(report.op_counts) == expected_counts(net)
    graph = onnx.load(report.path).graph
    for node in graph.node:
        if node.op_type == "AveragePool":   # ResNet-D's pool: ceil mode, padding not counted
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            assert attrs.get("ceil_mode") == 1 and attrs.get("count_include_pad", 0) == 0
    if name.startswith("avgproj"):
        assert report.op_counts["AveragePool"] == 1   # at stride 2 only


def test_fixed_batch(tmp_path):
    report = export_spec(CIFAR, tmp_path / "r.onnx", params={"depth": 8}, batch=5)
    assert report.batch == 5 and [b.batch for b in report.check.batches] == [5]
    session = ort.InferenceSession(str(report.path), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape == [5, 3, 32, 32]
    with pytest.raises(Exception, match="(?i)dimension|shape"):
        session.run(None, {"images": torch.randn(2, 3, 32, 32).numpy()})


def test_spec_text_is_recorded(tmp_path):
    text = "network tiny(w = 4) {\n  input 3x8x8\n  conv 3x3 w\n  bn\n  relu\n}\n"
    report = export_spec(text, tmp_path / "t.onnx", params={"w": 6})
    assert report.metadata["rnetc.spec"] == text
    assert report.metadata["rnetc.parameters"] == '{"w": 6}'
    assert "rnetc.imports" not in report.metadata
    assert report.op_counts == {"Conv": 1, "Relu": 1}


def test_weights_past_the_limit_go_to_a_data_file(tmp_path, monkeypatch):
    monkeypatch.setattr(export_module, "EXTERNAL_DATA_LIMIT", 1000)
    report = export_spec(CIFAR, tmp_path / "r.onnx", params={"depth": 8})
    assert report.check.passed
    assert report.external_data == tmp_path / "r.onnx.data"
    assert sorted(os.listdir(tmp_path)) == ["r.onnx", "r.onnx.data"]
    assert os.path.getsize(tmp_path / "r.onnx") < 100_000 < os.path.getsize(tmp_path / "r.onnx.data")


def test_the_callers_model_is_left_alone(tmp_path):
    net = compile_network(CIFAR, params={"depth": 8})
    model = randomize(build_module(net, device="cpu")).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    export_onnx(net, tmp_path / "r.onnx", model=model)
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_check_fails_against_another_model(tmp_path):
    # The check can fail: the file of one model, compared with another of the same shape.
    net = compile_network(CIFAR, params={"depth": 8})
    torch.manual_seed(0)
    report = export_onnx(net, tmp_path / "r.onnx", model=randomize(build_module(net), seed=1))
    other = randomize(build_module(net), seed=2).eval()
    result = check_file(report.path, other, (3, 32, 32), (1, 3))
    assert not result.passed and not any(b.within for b in result.batches)
    assert result.problem == "onnxruntime's output differs from PyTorch's beyond rtol 0.001 / atol 0.0001"


def test_check_reports_a_file_onnx_rejects(tmp_path):
    path = tmp_path / "bad.onnx"
    path.write_bytes(b"not onnx")
    net = compile_network(CIFAR, params={"depth": 8})
    result = check_file(path, build_module(net).eval(), (3, 32, 32), (1,))
    assert not result.passed and result.problem.startswith("onnx.checker: ")


BAD_ARGUMENTS = [
    ({"batch": 0}, 'batch must be "dynamic" or a positive integer, got 0'),
    ({"batch": "auto"}, "batch must be \"dynamic\" or a positive integer, got 'auto'"),
    ({"batch": True}, 'batch must be "dynamic" or a positive integer, got True'),
    ({"opset": 17}, "opset must be between 18 and "),
    ({"model": object(), "weights": "w.pt"}, "give the weights as model= or as weights=, not both"),
]


@pytest.mark.parametrize("kwargs, message", BAD_ARGUMENTS, ids=lambda v: str(v)[:20])
def test_bad_arguments(kwargs, message, tmp_path):
    net = compile_network(CIFAR, params={"depth": 8})
    with pytest.raises(ValueError) as info:
        export_onnx(net, tmp_path / "r.onnx", **kwargs)
    assert str(info.value).startswith(message)
    assert not list(tmp_path.iterdir())
