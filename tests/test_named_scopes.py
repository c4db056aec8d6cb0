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


def test_scopes_nest_one_deep_at_the_top_level_and_deeper_in_blocks():
    blocks = ("block inner(out) {\n  conv 3x3 out\n}\n"
              "block outer(out) {\n  inner(out) as b\n}\n")
    with pytest.raises(RnetError) as info:
        compile_network("network n {\n  input 3x8x8\n  outer(4) as a\n}\n" + blocks)
    diag = info.value.diagnostics[0]
    assert diag.code == "E207" and "at a network's top level" in diag.message
    assert diag.span.line == 9
    # in a stage's block, scopes nest (timm's `conv1.paths.0.conv`, `conv1.attn.fc_reduce`)
    net = compile_network("network n {\n  input 3x8x8\n  stage x1 res(3)\n}\n" + blocks
                          + "block res(out) {\n  outer(out) as a\n  add\n}\n")
    assert "layer1.0.a.b.0" in net.nodes
    model = resnet_dsl.build(next(iter(net.sources.values())))
    assert "layer1.0.a.b.0.weight" in model.state_dict()


GATE = """network n {{
  input 3x8x8
  conv 3x3 8
  stage x1 b(8)
}}
block b(out) {{
  conv 3x3 out
{body}
  add
}}
"""


def test_a_side_branch_gates_the_value_it_started_from():
    net = compile_network(GATE.format(body="  branch\n  avgpool global\n  conv 1x1 out\n"
                                          "  sigmoid\n  mul"))
    mul = net.nodes["layer1.0.mul"]
    assert mul.inputs == ["layer1.0.conv1", "layer1.0.sigmoid"] and mul.shape == (8, 8, 8)
    torch.manual_seed(0)
    model = resnet_dsl.build(next(iter(net.sources.values()))).eval()
    b = model.layer1[0]
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        a = model.conv1(x)
        y = b.conv1(a)
        expected = y * torch.sigmoid(b.conv2(y.mean((2, 3), keepdim=True))) + a
        torch.testing.assert_close(model(x), expected)


@pytest.mark.parametrize("body, code, text, line", [
    ("  mul", "E306", "`mul` without a `branch`", 8),
    ("  branch\n  mul", "E306", "the side branch is empty", 9),
    ("  branch\n  relu", "E306", "`add` inside an open side branch", 10),
    ("  branch\n  conv 1x1 4\n  mul", "E305", "cannot scale", 10),
])
def test_side_branch_errors(body, code, text, line):
    with pytest.raises(RnetError) as info:
        compile_network(GATE.format(body=body))
    assert any((d.code, d.span.line) == (code, line) and text in d.message
               for d in info.value.diagnostics), info.value.diagnostics


def test_an_unclosed_branch_in_a_called_block_is_reported():
    spec = GATE.format(body="  g(out)") + "block g(c) {\n  branch\n  relu\n}\n"
    with pytest.raises(RnetError) as info:
        compile_network(spec)
    diag = info.value.diagnostics[0]
    assert diag.code == "E306" and "no `mul` joins" in diag.message
