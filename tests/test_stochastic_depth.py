"""`drop_path` (stochastic depth), `identity`, and the block indices a stage's blocks see:
a drop rate that grows linearly with depth, written in the spec."""

import pytest

torch = pytest.importorskip("torch")

import resnet_dsl  # noqa: E402
from resnet_dsl.backends.torch import emit_python  # noqa: E402
from resnet_dsl.compiler import compile_network  # noqa: E402
from resnet_dsl.errors import RnetError  # noqa: E402

SPEC = """network sd(drop = 0.3, classes = 10) {
  input 3x16x16
  stem { conv 3x3 16; bn; relu }
  stage x2 sd_basic(16, drop)
  stage x2 sd_basic(32, drop) stride=2
  head { avgpool global; flatten; fc classes }
}
# timm's schedule: drop * (index of the block in the network) / (blocks - 1)
block sd_basic(out, drop, stride = 1) {
  let rate = drop * net_block_index / 3
  conv 3x3 out stride=stride
  bn
  relu
  conv 3x3 out
  bn
  if rate > 0 {
    drop_path rate
  }
  add
  relu
}
"""


def test_the_rate_follows_the_block_index_over_the_network():
    net = compile_network(SPEC)
    rates = {n.block: n.p for n in net.nodes.values() if n.op == "drop_path"}
    assert rates == pytest.approx({"layer1.1": 0.1, "layer2.0": 0.2, "layer2.1": 0.3})
    assert net.totals.params == sum(p.numel() for p in resnet_dsl.build(SPEC, device="meta").parameters())


def test_block_index_lets_a_first_block_differ_without_splitting_the_stage():
    text = """network n {
  input 3x8x8
  conv 3x3 8
  stage x3 b(8)
}
block b(out) {
  conv 3x3 out
  if block_index == 0 {
    identity
  }
  add
}
"""
    net = compile_network(text)
    assert [n.name for n in net.nodes.values() if n.op == "identity"] == ["layer1.0.identity"]
    assert list(net.blocks) == ["layer1.0", "layer1.1", "layer1.2"]


def test_a_block_parameter_named_like_an_index_wins():
    text = "network n {\n  input 3x8x8\n  conv 3x3 8\n  stage x2 b(8)\n}\n" \
           "block b(out, block_index = 7) {\n  conv 3x3 out * block_index // 7\n  add\n}\n"
    assert compile_network(text).nodes["layer1.1.conv1"].out_channels == 8


def test_drop_path_drops_whole_samples_in_training_and_is_the_identity_in_eval():
    from resnet_dsl.backends.torch.modules import DropPath

    layer = DropPath(0.5)
    x = torch.rand(64, 4, 3, 3) + 1
    torch.manual_seed(0)
    y = layer.train()(x)
    per_sample = (y / x).flatten(1)
    kept = per_sample[:, 0] > 0
    assert torch.allclose(per_sample[kept], torch.full_like(per_sample[kept], 2.0))
    assert torch.equal(per_sample[~kept], torch.zeros_like(per_sample[~kept]))
    assert 10 < int(kept.sum()) < 54   # about half of 64
    assert layer.eval()(x) is x


def test_built_and_emitted_modules_agree_in_training_and_in_eval():
    net = compile_network(SPEC)
    torch.manual_seed(0)
    model = resnet_dsl.build(SPEC)
    space: dict = {}
    exec(compile(emit_python(net), "<emitted>", "exec"), space)
    emitted = space["Sd"]()
    emitted.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(8, 3, 16, 16)
    for train in (True, False):
        model.train(train)
        emitted.train(train)
        torch.manual_seed(1)
        a = model(x)
        torch.manual_seed(1)
        b = emitted(x)
        assert torch.equal(a, b)
    model.train()
    torch.manual_seed(2)
    a = model(x)
    torch.manual_seed(3)
    assert not torch.equal(a, model(x))   # training draws a new mask each step
    model.eval()
    assert torch.equal(model(x), model(x))


@pytest.mark.parametrize("line, code, text", [
    ("drop_path 1.0", "E203", "drop_path probability must be in [0, 1)"),
    ("drop_path", "E204", "`drop_path` needs `p`"),
    ("droppath 0.1", "E101", "rnetc calls it `drop_path`"),
])
def test_drop_path_errors(line, code, text):
    with pytest.raises(RnetError) as info:
        compile_network(f"network n {{\n  input 3x8x8\n  conv 3x3 8\n  {line}\n}}")
    diag = info.value.diagnostics[0]
    assert (diag.code, diag.span.line) == (code, 4) and text in (diag.message + (diag.help or ""))


def test_drop_path_exports_to_onnx_as_nothing(tmp_path):
    pytest.importorskip("onnxruntime")
    from resnet_dsl.backends.onnx import export_onnx

    report = export_onnx(compile_network(SPEC), tmp_path / "sd.onnx")
    assert report.check.passed, report.describe()
    assert "Identity" not in report.op_counts and "RandomUniformLike" not in report.op_counts
