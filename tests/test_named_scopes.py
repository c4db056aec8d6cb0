"""`BLOCK(...) as NAME`: a called block's layers live under NAME, numbered like an
nn.Sequential (`conv1.0` .. `conv1.6`, timm's deep stem), or by their own `as`."""

import pytest

torch = pytest.importorskip("torch")

import resnet_dsl  # noqa: E402
from resnet_dsl.backends.torch import emit_python  # noqa: E402
from resnet_dsl.compiler import compile_network  # noqa: E402
from resnet_dsl.errors import RnetError  # noqa: E402

BLOCKS = """
block pair(out) {
  conv 3x3 out
  bn
  relu
}
block conv_bn(out) {
  conv 3x3 out as conv
  bn as bn
}
block res(out) {
  conv_bn(out) as cb
  add
  relu
}
"""


def _compile(body: str):
    return compile_network(f"network n {{\n  input 3x16x16\n{body}}}\n" + BLOCKS)


def test_numbered_like_a_sequential_and_named_by_as():
    net = _compile("  pair(8) as conv1\n  bn\n  conv_bn(8) as head\n  stage x2 res(8)\n")
    names = [n for n in net.nodes if n != "input"]
    assert names[:5] == ["conv1.0", "conv1.1", "conv1.2", "bn1", "head.conv"]
    assert "layer1.1.cb.bn" in names and "layer1.1.relu" in names
    model = resnet_dsl.build(net.sources and next(iter(net.sources.values())))
    keys = list(model.state_dict())
    assert keys[0] == "conv1.0.weight" and "layer1.0.cb.conv.weight" in keys
    assert isinstance(model.conv1, torch.nn.Sequential)


def test_built_and_emitted_agree():
    net = _compile("  pair(8) as conv1\n  conv_bn(8) as head\n  stage x2 res(8)\n")
    text = next(iter(net.sources.values()))
    torch.manual_seed(0)
    model = resnet_dsl.build(text).eval()
    source = emit_python(net)
    assert "OrderedDict([" in source and '("conv", nn.Conv2d(' in source
    space: dict = {}
    exec(compile(source, "<emitted>", "exec"), space)
    emitted = space["N"]().eval()
    emitted.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(emitted(x), model(x))


@pytest.mark.parametrize("body, code, text", [
    ("  pair(8) as conv1\n  pair(8) as conv1\n", "E103", "the name `conv1` is already used"),
    ("  conv 3x3 8 as conv1\n  pair(8) as conv1\n", "E103", "the name `conv1` is already used"),
])
def test_scope_name_errors(body, code, text):
    with pytest.raises(RnetError) as info:
        _compile(body)
    diag = info.value.diagnostics[0]
    assert diag.code == code and text in diag.message


def test_scopes_nest_one_deep():
    spec = ("network n {\n  input 3x8x8\n  outer(4) as a\n}\n"
            "block inner(out) {\n  conv 3x3 out\n}\n"
            "block outer(out) {\n  inner(out) as b\n}\n")
    with pytest.raises(RnetError) as info:
        compile_network(spec)
    diag = info.value.diagnostics[0]
    assert diag.code == "E207" and "nest one deep" in diag.message and diag.span.line == 9
