"""One place per operation: every IR op has all its rules and a torch mapping; multi-input
ops (a gate multiply, a concatenation) run through the whole torch backend; `groupnorm`,
the worked example of adding a layer, end to end."""

import math

import pytest
import torch
from torch import nn

import resnet_dsl
from resnet_dsl.backends.torch import build_module, emit_python
from resnet_dsl.backends.torch.ops import MODULES, NOT_COMPUTED, OPS, Builtin, Layer
from resnet_dsl.compiler import compile_network
from resnet_dsl.errors import RnetError
from resnet_dsl.frontend.signatures import LAYERS
from resnet_dsl.ir import nodes as ir
from resnet_dsl.ir.graph import BlockInfo, Network, StageInfo
from resnet_dsl.ir.printer import format_ir
from resnet_dsl.limits import DEFAULT_LIMITS
from resnet_dsl.passes import PIPELINE
from resnet_dsl.tooling import vocabulary


# ---- the registry ------------------------------------------------------------------------

@pytest.mark.parametrize("op", list(ir.NODE_TYPES))
def test_every_op_has_every_rule_and_a_torch_mapping(op):
    cls = ir.NODE_TYPES[op]
    for rule in ("infer", "cost", "describe"):
        assert getattr(cls, rule) is not getattr(ir.NodeBase, rule), f"{op} has no {rule}"
    assert cls.OP == op
    if op in NOT_COMPUTED:
        return
    entry = OPS[op]  # a KeyError here: the torch backend forgot the op
    assert isinstance(entry, (Layer, Builtin))
    if isinstance(entry, Builtin):
        # a join of several inputs, or a view of one (a split's part: no module to keep)
        assert cls.arity != 1 or op == "slice", f"{op}: a builtin computes a join of several inputs"


def test_the_torch_table_names_only_known_ops_and_modules():
    assert set(OPS) <= set(ir.NODE_TYPES)
    for kind in MODULES.values():
        assert issubclass(kind.cls, nn.Module)
        if kind.factory:
            assert kind.init is not None, f"{kind.cls.__name__} has parameters but no init rule"


def test_an_op_without_a_rule_is_refused_at_import():
    class Broken(ir.NodeBase):
        op: str = "broken"

        def infer(self, shapes):
            return shapes[0]

    try:
        with pytest.raises(TypeError, match="Broken"):
            ir.check_registry()  # not in the Node union
    finally:
        ir.NODE_TYPES.pop("broken", None)
        ir.NODE_TYPES.pop("Broken", None)
        ir.check_registry()


def test_language_words_come_from_the_ops():
    words = {w for cls in ir.NODE_TYPES.values() for w in cls.words}
    # markers that make no node, or a node of an op with no word (`add_previous`: a sum)
    assert set(LAYERS) == words | {"fork", "branch", "add_previous"}
    assert vocabulary.LAYERS == tuple(LAYERS)
    assert "groupnorm" in vocabulary.LAYERS


# ---- multi-input nodes, built by hand ----------------------------------------------------

def _gate_concat_network() -> Network:
    """input 3x8x8 -> conv -> one residual block whose branch is
    cat(a * sigmoid(conv(mean(a))), conv(x)) -> 1x1 conv, joined to x by `add`."""
    block = "layer1.0"
    common = dict(stage="layer1", block=block)

    nodes = [
        ir.InputNode(name="input", channels=3, size=(8, 8), shape=(3, 8, 8), section="stem"),
        ir.Conv(name="conv1", inputs=["input"], out_channels=8, kernel=(3, 3), padding=(1, 1),
                section="stem"),
    ]
    b = f"{block}."
    nodes += [
        ir.Conv(name=b + "conv1", inputs=["conv1"], out_channels=8, kernel=(3, 3),
                padding=(1, 1), path=("conv1",), **common),
        ir.GlobalPool(name=b + "pool", inputs=[b + "conv1"], kind="avg", path=("pool",), **common),
        ir.Conv(name=b + "fc", inputs=[b + "pool"], out_channels=8, kernel=(1, 1), bias=True,
                path=("fc",), **common),
        ir.Activation(name=b + "gate", inputs=[b + "fc"], kind="sigmoid", path=("gate",), **common),
        ir.Mul(name=b + "mul", inputs=[b + "conv1", b + "gate"], path=("mul",), **common),
        ir.Conv(name=b + "conv2", inputs=["conv1"], out_channels=4, kernel=(1, 1),
                path=("conv2",), **common),
        ir.Concat(name=b + "cat", inputs=[b + "mul", b + "conv2"], path=("cat",), **common),
        ir.Conv(name=b + "conv3", inputs=[b + "cat"], out_channels=8, kernel=(1, 1),
                path=("conv3",), **common),
        ir.BatchNorm(name=b + "bn3", inputs=[b + "conv3"], path=("bn3",), **common),
        ir.Add(name=b + "add", inputs=[b + "bn3", "conv1"], path=("add",), **common),
        ir.Activation(name=b + "relu", inputs=[b + "add"], path=("relu",), **common),
    ]
    net = Network(
        name="gated", file="<test>", input_shape=(3, 8, 8),
        nodes={n.name: n for n in nodes},
        stages={"layer1": StageInfo(name="layer1", index=1, repeats=1, block="gated",
                                    policy="identity", stride=1, blocks=[block])},
        blocks={block: BlockInfo(name=block, stage="layer1", index=0, definition="gated",
                                 input="conv1", fork="conv1", add=b + "add")},
        output=b + "relu")
    net.lint(checked=False)
    diags = []
    for run_pass in PIPELINE:
        run_pass(net, diags, DEFAULT_LIMITS)
    assert not diags
    net.lint()
    return net


def _reference(model, x):
    """The same function written by hand from the built modules."""
    a = model.conv1(x)
    blk = model.layer1[0]
    y = blk.conv1(a)
    gate = torch.sigmoid(blk.fc(y.mean((2, 3), keepdim=True)))
    y = torch.cat([y * gate, blk.conv2(a)], 1)
    return torch.relu(blk.bn3(blk.conv3(y)) + a)


def test_gate_multiply_and_concat_shapes_and_costs():
    net = _gate_concat_network()
    assert net.nodes["layer1.0.mul"].shape == (8, 8, 8)
    assert net.nodes["layer1.0.cat"].shape == (12, 8, 8)
    assert net.nodes["layer1.0.conv3"].params == 12 * 8
    assert "%layer1.0.cat" in format_ir(net) and "cat(%layer1.0.mul, %layer1.0.conv2)" in format_ir(net)
    assert net.totals.params == sum(n.params for n in net.nodes.values())


def test_lint_checks_arity_of_multi_input_nodes():
    net = _gate_concat_network()
    net.nodes["layer1.0.cat"].inputs = ["layer1.0.mul"]
    with pytest.raises(AssertionError, match="two or more"):
        net.lint()


def test_gate_multiply_and_concat_build_run_and_emit():
    net = _gate_concat_network()
    torch.manual_seed(0)
    model = build_module(net).eval()
    with torch.no_grad():  # give the BN real statistics
        model.layer1[0].bn3.running_mean.uniform_(-1, 1)
        model.layer1[0].bn3.running_var.uniform_(0.5, 2)
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        out = model(x)
        assert torch.allclose(out, _reference(model, x), atol=1e-6)
    source = emit_python(net)
    assert "out = out * self.gate(" in source and "torch.cat([out, self.conv2(x)], 1)" in source
    space: dict = {}
    exec(compile(source, "<emitted>", "exec"), space)
    emitted = space["Gated2"]().eval()  # the network; its block class is `Gated`
    emitted.load_state_dict(model.state_dict(), strict=True)
    with torch.no_grad():
        assert torch.equal(emitted(x), out)
    # and it compiles as straight-line code
    compiled = torch.compile(model, fullgraph=True, backend="eager")
    with torch.no_grad():
        assert torch.allclose(compiled(x), out)


def test_mul_and_concat_shape_errors_are_located():
    gate = ir.Mul(name="m", inputs=["a", "b"])
    with pytest.raises(ir.ShapeError, match="cannot scale"):
        gate.infer([(8, 4, 4), (4, 1, 1)])
    assert gate.infer([(8, 4, 4), (8, 1, 1)]) == (8, 4, 4)
    cat = ir.Concat(name="c", inputs=["a", "b"])
    with pytest.raises(ir.ShapeError, match="one size"):
        cat.infer([(8, 4, 4), (8, 2, 2)])


# ---- groupnorm: the worked example of a new layer ----------------------------------------

GN = """network gn_net(classes = 10) {
  input 3x16x16
  stem { conv 3x3 16; groupnorm 4; relu }
  stage x2 gn_basic(16)
  head { avgpool global; flatten; fc classes }
}
block gn_basic(out, stride = 1) {
  conv 3x3 out stride=stride
  groupnorm 8 eps=1e-6
  relu
  conv 3x3 out
  groupnorm 8
  add
  relu
}
"""


def test_groupnorm_counts_builds_and_emits():
    net = compile_network(GN)
    gn = net.nodes["groupnorm"]
    assert (gn.groups, gn.params, gn.shape) == (4, 32, (16, 16, 16))
    torch.manual_seed(0)
    model = resnet_dsl.build(GN)
    assert isinstance(model.groupnorm, nn.GroupNorm) and model.groupnorm.num_groups == 4
    assert model.layer1[0].groupnorm.eps == 1e-6
    assert sum(p.numel() for p in model.parameters()) == net.totals.params
    x = torch.randn(2, 3, 16, 16)
    space: dict = {}
    exec(compile(emit_python(net), "<emitted>", "exec"), space)
    emitted = space["GnNet"]()
    emitted.load_state_dict(model.state_dict(), strict=True)
    with torch.no_grad():
        assert torch.equal(emitted.eval()(x), model.eval()(x))
    assert "self.groupnorm = nn.GroupNorm(8, 16, eps=1e-06)" in emit_python(net)


@pytest.mark.parametrize("line, code, text", [
    ("groupnorm 5", "E303", "groupnorm's 5 groups must divide the channels (16)"),
    ("groupnorm 0", "E203", "groups must be at least 1"),
    ("groupnorm 4 eps=0", "E203", "eps must be positive"),
    ("groupnorm", "E204", "`groupnorm` needs `groups`"),
])
def test_groupnorm_errors(line, code, text):
    spec = f"network n {{\n  input 3x8x8\n  conv 3x3 16\n  {line}\n}}"
    with pytest.raises(RnetError) as info:
        compile_network(spec)
    diag = info.value.diagnostics[0]
    assert diag.code == code and text in diag.message
    assert diag.span.line == 4


def test_groupnorm_cost_matches_torch():
    net = compile_network(GN)
    model = build_module(net, device="meta")
    assert math.prod(model.groupnorm.weight.shape) * 2 == net.nodes["groupnorm"].params


def test_groupnorm_exports_to_onnx_and_matches_pytorch(tmp_path):
    pytest.importorskip("onnxruntime")
    from resnet_dsl.backends.onnx import export_onnx

    net = compile_network(GN)
    report = export_onnx(net, tmp_path / "gn.onnx")
    assert report.check.passed, report.describe()


@pytest.mark.parametrize("line, code, text", [
    ("channel_conv 3", "E305", "needs a C x 1 x 1 input"),
    ("avgpool global\n  channel_conv 4", "E203", "must be odd"),
    ("conv 3x3 (log2(0))", "E203", "one positive number"),
    ("conv 3x3 (floor(1, 2))", "E203", "`floor` takes one number"),
])
def test_channel_conv_and_function_errors(line, code, text):
    with pytest.raises(RnetError) as info:
        compile_network(f"network n {{\n  input 3x8x8\n  conv 3x3 16\n  {line}\n}}")
    assert any(d.code == code and text in d.message for d in info.value.diagnostics)


def test_log2_and_floor_give_ecas_kernel_sizes():
    spec = ("network n(c = 256) {\n  input 3x8x8\n  conv 3x3 c\n  avgpool global\n"
            "  channel_conv max(3, floor((log2(c) + 1) / 2) // 2 * 2 + 1)\n}")
    kernels = {c: compile_network(spec, params={"c": c}).nodes["channel_conv"].kernel
               for c in (64, 256, 512, 2048)}
    assert kernels == {64: 3, 256: 5, 512: 5, 2048: 7}  # timm's EcaModule


def test_blur_is_a_fixed_binomial_filter_outside_the_state_dict():
    net = compile_network("network n {\n  input 2x8x8\n  conv 3x3 4\n  blur\n}")
    node = net.nodes["blur"]
    assert node.shape == (4, 4, 4) and node.params == 0 and node.macs == 4 * 9 * 16
    model = resnet_dsl.build("network n {\n  input 2x8x8\n  conv 3x3 4\n  blur\n}")
    assert list(model.state_dict()) == ["conv1.weight"]
    torch.testing.assert_close(model.blur.filt[0, 0], torch.tensor(
        [[1.0, 2, 1], [2, 4, 2], [1, 2, 1]]) / 16)
    with pytest.raises(RnetError, match="more than 1 pixels"):
        compile_network("network n {\n  input 2x1x1\n  conv 1x1 4\n  blur\n}")
