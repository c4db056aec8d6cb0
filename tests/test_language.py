"""The .rnet language, table-driven: valid specs and what they lower to, invalid specs and
the error codes they get. Each case is small enough to read next to its expectation."""

from __future__ import annotations

import pytest

from resnet_dsl.compiler import compile_network
from resnet_dsl.errors import RnetError


def net_of(text: str, **params):
    return compile_network(text, params=params or None)


def codes_of(text: str, **params) -> list[str]:
    with pytest.raises(RnetError) as info:
        compile_network(text, params=params or None)
    return info.value.codes


STEM = "input 3x32x32\n  conv 3x3 16\n  bn\n  relu\n"

# (id, spec text, {node name: expected output shape}, expected total parameters or None)
VALID = [
    ("design card line",
     "network n {\n  input 3x56x56\n  stage x4 bottleneck(64,256) shortcut=proj\n}",
     {"layer1.0.downsample.0": (256, 56, 56), "layer1.3.relu_2": (256, 56, 56)}, None),
    ("repeat forms x4, x 4, x n, x (n+1)",
     "network n(n = 1) {\n  " + STEM + "  stage x2 basic(16)\n  stage x 2 basic(16)\n"
     "  stage x n basic(16)\n  stage x (n + 1) basic(16)\n}",
     {"layer1.1.add": (16, 32, 32), "layer3.0.add": (16, 32, 32), "layer4.1.add": (16, 32, 32)},
     None),
    ("semicolons and comments",
     "# a comment\nnetwork n { input 3x8x8; conv 3x3 4; bn; relu  # trailing\n}",
     {"relu": (4, 8, 8)}, 3 * 4 * 9 + 8),
    ("arithmetic, let, require, min/max",
     "network n(depth = 20, k = 2) {\n  require (depth - 2) % 6 == 0, \"6n+2\"\n"
     "  let n = (depth - 2) // 6\n  let w = max(16, 8 * k) + min(1, 0)\n  input 3x8x8\n"
     "  conv 3x3 w * n\n}",
     {"conv1": (48, 8, 8)}, 3 * 48 * 9),
    ("if / else if / else",
     "network n(mode = 2) {\n  input 3x8x8\n  if mode == 1 {\n    conv 1x1 4\n"
     "  } else if mode == 2 {\n    conv 1x1 5\n  } else {\n    conv 1x1 6\n  }\n}",
     {"conv1": (5, 8, 8)}, 15),
    ("input from parameters, rectangular kernel, explicit padding",
     "network n(size = 20) {\n  input 3 x size x (size + 4)\n  conv 1x3 8 padding=0\n}",
     {"conv1": (8, 20, 22)}, 3 * 8 * 3),
    ("call form for layers, kwargs across lines",
     "network n {\n  input 3x16x16\n  conv(3x3, 8,\n       stride=2)\n  maxpool(2x2)\n}",
     {"conv1": (8, 8, 8), "maxpool": (8, 4, 4)}, 216),
    ("pooling between stages, avgpool global, flatten, fc, dropout",
     "network n {\n  " + STEM + "  stage x1 basic(16)\n  maxpool 2x2\n  stage x1 basic(32)\n"
     "  avgpool global\n  flatten\n  dropout 0.5\n  fc 10\n}",
     {"maxpool": (16, 16, 16), "layer2.0.add": (32, 16, 16), "fc": (10,)}, None),
    ("as NAME names layers; other activations",
     "network n {\n  input 3x8x8\n  conv 3x3 4 as stem_conv\n  silu\n  gelu\n"
     "  leaky_relu 0.2\n  relu6\n}",
     {"stem_conv": (4, 8, 8), "silu": (4, 8, 8), "leaky_relu": (4, 8, 8)}, 108),
    ("deep stem (ResNet-C) + avgproj (ResNet-D) + caffe stride",
     "network n {\n  input 3x64x64\n  stem {\n    conv 3x3 32 stride=2; bn; relu\n"
     "    conv 3x3 32; bn; relu\n    conv 3x3 64; bn; relu\n    maxpool 3x3 stride=2 padding=1\n  }\n"
     "  stage x1 bottleneck(64) shortcut=D\n"
     "  stage x1 bottleneck(128, stride_first=true) stride=2 shortcut=avgproj\n}",
     {"conv3": (64, 32, 32), "layer1.0.downsample.1": (256, 16, 16),
      "layer2.0.downsample.0": (256, 8, 8), "layer2.0.downsample.2": (512, 8, 8)}, None),
    ("user-defined block: no ReLU after add, BN on some convs, fork",
     "block mine(out, stride = 1) {\n  bn\n  relu\n  fork\n  conv 3x3 out stride=stride\n"
     "  relu\n  conv 3x3 out\n  add proj_bn=false\n}\n"
     "network n {\n  input 3x16x16\n  conv 3x3 8\n  stage x2 mine(16) stride=2\n}",
     {"layer1.0.downsample.0": (16, 8, 8), "layer1.1.add": (16, 8, 8)}, None),
    ("sequence block (no add) inlined, recursion with a base case",
     "block cbr(out, stride = 1) { conv 3x3 out stride=stride; bn; relu }\n"
     "block tower(n, out) {\n  cbr(out)\n  if n > 1 {\n    tower(n - 1, out)\n  }\n}\n"
     "network n {\n  input 3x8x8\n  tower(3, 4)\n}",
     {"conv3": (4, 8, 8), "relu_2": (4, 8, 8)}, None),
    ("plain stage of a block without add",
     "block plain(out, stride = 1) { conv 3x3 out stride=stride; bn; relu }\n"
     "network n {\n  input 3x8x8\n  stage x2 plain(8) stride=2\n}",
     {"layer1.0.conv1": (8, 4, 4), "layer1.1.relu": (8, 4, 4)}, None),
    ("proj_all projects in every block; zeropad pads channels",
     "network n {\n  " + STEM + "  stage x2 basic(16) shortcut=C\n"
     "  stage x2 basic(32) stride=2 shortcut=A\n}",
     {"layer1.1.downsample.0": (16, 32, 32), "layer2.0.downsample": (32, 16, 16)}, None),
    ("network aliases",
     "network base(w = 4) { input 3x8x8; conv 1x1 w }\nnetwork big = base(w = 6)\n"
     "network big2 = big()",
     {"conv1": (6, 8, 8)}, 18),
]


@pytest.mark.parametrize("case", VALID, ids=[c[0] for c in VALID])
def test_valid(case):
    _, text, shapes, params = case
    network = None
    if "network big2" in text:
        from resnet_dsl.compiler import load
        network = "big2"
        net = compile_network(load(text), network=network)
    else:
        net = net_of(text)
    for name, shape in shapes.items():
        assert name in net.nodes, f"{name} not in {list(net.nodes)}"
        assert net.nodes[name].shape == shape, name
    if params is not None:
        assert net.totals.params == params


# (id, spec text, expected error codes in order)
INVALID = [
    ("syntax", "network n {\n  input 3x32x32\n  conv 3x3 16 stride=\n}", ["E001"]),
    ("unclosed brace", "network n {\n  input 3x32x32\n", ["E001"]),
    ("bad character", "network n { input 3x32x32; conv 3x3 16 @ }", ["E001"]),
    ("unknown layer", "network n { input 3x8x8; batchnorm }", ["E101"]),
    ("unknown block in stage", "network n { input 3x8x8; stage x2 basik(8) }", ["E101"]),
    ("unknown function", "network n { input 3x8x8; conv 1x1 maxx(1, 2) }", ["E101"]),
    ("unknown name", "network n(width = 4) { input 3x8x8; conv 1x1 widht }", ["E102"]),
    ("block sees only its params", "block b(out) { conv 1x1 w }\nnetwork n(w = 2) { input 3x8x8; b(4) }",
     ["E102"]),
    ("duplicate let", "network n { let a = 1; let a = 2; input 3x8x8 }", ["E103"]),
    ("duplicate layer name", "network n { input 3x8x8; conv 1x1 4 as a; conv 1x1 4 as a }", ["E103"]),
    ("duplicate block", "block b(o) { conv 1x1 o }\nblock b(o) { conv 1x1 o }\nnetwork n { input 3x8x8 }",
     ["E103"]),
    ("unknown kwarg", "network n { input 3x8x8; conv 3x3 4 strides=2 }", ["E104"]),
    ("unknown stage option", "network n { input 3x8x8; stage x1 basic(3) strid=2 }", ["E104"]),
    ("too many args", "network n { input 3x8x8; conv 3x3 4 5 }", ["E201"]),
    ("float width", "network n(k = 1.5) { input 3x8x8; conv 3x3 16 * k }", ["E202"]),
    ("bool in arithmetic", "network n { input 3x8x8; conv 3x3 true + 1 }", ["E202"]),
    ("non-bool condition", "network n { input 3x8x8; if 1 { relu } }", ["E202"]),
    ("zero width", "network n { input 3x8x8; conv 3x3 0 }", ["E203"]),
    ("zero repeats", "network n(r = 0) { input 3x8x8; stage x r basic(3) }", ["E203"]),
    ("negative repeats", "network n { input 3x8x8; stage x (0 - 2) basic(3) }", ["E203"]),
    ("dropout out of range", "network n { input 3x8x8; dropout 1.5 }", ["E203"]),
    ("missing arg", "network n { input 3x8x8; conv 3x3 }", ["E204"]),
    ("missing network param", "network n(depth) { input 3x8x8 }", ["E204"]),
    ("unknown policy", "network n { input 3x8x8; stage x1 basic(3) shortcut=projection }", ["E205"]),
    ("division by zero", "network n(g = 0) { input 3x8x8; let a = 4 // g }", ["E206"]),
    ("stride in block call", "network n { input 3x8x8; stage x1 basic(3, stride=2) }", ["E207"]),
    ("identity cannot join",
     "network n { input 3x32x32; stage x1 basic(32) stride=2 shortcut=identity }", ["E301"]),
    ("zeropad shrinks", "network n { input 3x8x8; conv 1x1 64; stage x1 basic(32) shortcut=zeropad }",
     ["E302"]),
    ("groups", "network n { input 3x8x8; conv 3x3 64 groups=3 }", ["E303"]),
    ("collapse", "network n { input 3x8x8; conv 7x7 4 stride=2 padding=0; conv 7x7 4 padding=0 }",
     ["E304"]),
    ("fc on a map", "network n { input 3x8x8; conv 3x3 4; fc 10 }", ["E305"]),
    ("conv after flatten", "network n { input 3x8x8; flatten; conv 3x3 4 }", ["E305"]),
    ("two adds", "block b(o, stride = 1) { conv 3x3 o; add; add }\nnetwork n { input 3x8x8; stage x1 b(3) }",
     ["E306"]),
    ("add outside block", "network n { input 3x8x8; add }", ["E306"]),
    ("residual block called inline", "network n { input 3x8x8; basic(3) }", ["E307"]),
    ("stage inside stem", "network n { input 3x8x8; stem { stage x1 basic(3) } }", ["E307"]),
    ("stride without stride param",
     "block b(o) { conv 3x3 o; bn; add }\nnetwork n { input 3x8x8; stage x1 b(3) stride=2 }", ["E308"]),
    ("no input", "network n { conv 3x3 4 }", ["E309"]),
    ("two inputs", "network n { input 3x8x8; input 3x8x8 }", ["E309"]),
    ("require fails", "network n(d = 21) { require (d - 2) % 6 == 0, \"6n+2\"; input 3x8x8 }", ["E401"]),
    ("import not found", "import \"nope/missing.rnet\"\nnetwork n { input 3x8x8 }", ["E501"]),
    ("import escapes", "import \"../../../../etc/passwd\"\nnetwork n { input 3x8x8 }", ["E503"]),
    ("too many repeats", "network n { input 3x8x8; stage x 99999999 basic(3) }", ["E601"]),
    ("huge number", "network n { input 3x8x8; let a = 99999999999 * 99999999999 * 99999999999 }",
     ["E601"]),
    ("huge channels", "network n { input 3x8x8; conv 3x3 10000000 }", ["E601"]),
    ("unbounded recursion", "block a(w) { b(w) }\nblock b(w) { a(w) }\nnetwork n { input 3x8x8; a(4) }",
     ["E602"]),
    ("several errors collected",
     "network n { input 3x8x8; conv 3x3 4 strides=2; batchnorm; conv 3x3 0 }",
     ["E104", "E101", "E203"]),
]


@pytest.mark.parametrize("case", INVALID, ids=[c[0] for c in INVALID])
def test_invalid(case):
    _, text, expected = case
    assert codes_of(text) == expected


def test_every_error_has_a_span_inside_the_file():
    for _, text, _ in INVALID:
        with pytest.raises(RnetError) as info:
            compile_network(text)
        lines = text.splitlines()
        for d in info.value.diagnostics:
            if d.code in ("E501", "E503") or d.span is None:
                continue
            assert d.span.file == "<string>"
            assert 1 <= d.span.line <= len(lines) + 1


def test_overrides_and_unknown_override():
    text = "network n(depth = 20, k = 1) { input 3x8x8; conv 1x1 k }"
    assert net_of(text, k=3).nodes["conv1"].shape == (3, 8, 8)
    assert codes_of(text, kk=3) == ["E104"]


def test_input_override():
    net = compile_network("network n { input 3x32x32; conv 3x3 4 stride=2 }", input_shape=(3, 64, 48))
    assert net.output_shape == (4, 32, 24)


def test_errors_inside_builtin_blocks_point_at_the_call():
    # drop=1.5 reaches the prelude's `dropout drop`; the prelude line becomes a note.
    text = "network n {\n  input 3x32x32\n  stage x2 wide_basic(16, drop=1.5)\n}"
    with pytest.raises(RnetError) as info:
        compile_network(text)
    d = info.value.diagnostics[0]
    assert d.code == "E203" and d.span.file == "<string>" and d.span.line == 3
    assert any(n.span and n.span.file == "<prelude>" for n in d.notes)


def test_torchvision_names():
    net = net_of("network n {\n  input 3x64x64\n  stem { conv 7x7 64 stride=2; bn; relu; "
                 "maxpool 3x3 stride=2 padding=1 }\n  stage x2 bottleneck(64)\n"
                 "  stage x1 bottleneck(128) stride=2\n  head { avgpool global; flatten; fc 10 }\n}")
    params = [n for n, node in net.nodes.items() if node.op in ("conv", "bn", "fc")]
    assert params[:2] == ["conv1", "bn1"]
    assert "layer1.0.downsample.0" in params and "layer1.0.downsample.1" in params
    assert "layer1.1.downsample.0" not in params
    assert "layer2.0.conv3" in params and params[-1] == "fc"
    assert net.blocks["layer1.0"].shortcut == "proj" and net.blocks["layer1.1"].shortcut == "identity"


@pytest.mark.parametrize("text, opened, closer", [
    ("network n {\n  input 3x32x32\n  stage x 2 basic(16\n}\n", (3, 18), ")"),
    ("network n {\n  input 3x32x32\n  let a = (3 + 4\n  conv 3x3 16\n}\n", (3, 11), ")"),
    ("network n {\n  input 3x32x32\n  conv 3x3 16\n", (1, 11), "}"),
])
def test_a_syntax_error_points_at_the_bracket_left_open(text, opened, closer):
    with pytest.raises(RnetError) as info:
        compile_network(text)
    d = info.value.diagnostics[0]
    assert d.code == "E001" and d.help == f"add the missing `{closer}`"
    (note,) = d.notes
    assert (note.span.line, note.span.column) == opened
    assert note.message == f"this `{'(' if closer == ')' else '{'}` is never closed"
