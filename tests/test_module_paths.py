"""Issue 16's language: module paths (`as head.fc`, `stage stages.0.blocks`, `s1.b{n}`),
timm-named projections, and the new layers (`pad`, `layernorm`, `layer_scale`, `conv ws=`)
with their checks, through the front end and the torch backend."""

import pytest

torch = pytest.importorskip("torch")

from resnet_dsl.backends.torch import build_module, emit_python  # noqa: E402
from resnet_dsl.compiler import compile_network  # noqa: E402
from resnet_dsl.errors import RnetError  # noqa: E402

BLOCKS = """
block res(out, stride = 1) {
  conv 3x3 out stride=stride
  bn
  relu
  conv 3x3 out
  layer_scale init=0.5 as gamma
  add proj_named=true
  relu
}
block down(out) {
  layernorm
  conv 2x2 out stride=2 padding=0 bias=true
}
"""


def _net(body: str, blocks: str = BLOCKS):
    return compile_network(f"network n {{\n  input 3x16x16\n{body}}}\n" + blocks)


def _error(body: str, blocks: str = BLOCKS) -> str:
    with pytest.raises(RnetError) as info:
        net = _net(body, blocks)
        build_module(net, device="meta")
    return "\n".join(f"{d.code} {d.span.line}:{d.span.column} {d.message}"
                     for d in info.value.diagnostics)


NESTED = """  conv 3x3 8 as stem.0
  layernorm as stem.1
  stage stages.0.blocks x2 res(8)
  down(16) as stages.1.downsample
  stage stages.1.blocks x1 res(16)
  stage s2.b{n} x2 res(32) stride=2
  head {
    avgpool global as head.pool
    flatten as head.flatten
    fc 10 as head.fc
  }
"""


def test_module_paths_nest_as_written_and_run_in_order():
    net = _net(NESTED)
    assert [b for b in net.blocks] == ["stages.0.blocks.0", "stages.0.blocks.1",
                                       "stages.1.blocks.0", "s2.b1", "s2.b2"]
    torch.manual_seed(0)
    model = build_module(net).eval()
    keys = list(model.state_dict())
    assert keys[:3] == ["stem.0.weight", "stem.1.weight", "stem.1.bias"]
    assert "stages.1.downsample.0.weight" in keys and "stages.1.downsample.1.bias" in keys
    assert keys.index("stages.1.downsample.1.bias") < keys.index("stages.1.blocks.0.conv1.weight")
    assert "stages.0.blocks.1.gamma" in keys          # the layer scale: the block's own
    assert "s2.b1.downsample.conv.weight" in keys and "s2.b1.downsample.bn.weight" in keys
    assert keys[-2:] == ["head.fc.weight", "head.fc.bias"]
    assert [name for name, _ in model.named_children()] == ["stem", "stages", "s2", "head"]
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        y = model(x)
    assert y.shape == (2, 10)
    assert model.stages[0].blocks[1].gamma.detach().eq(0.5).all()   # its `init`
    # the emitted file has the same modules, and the same function
    space: dict = {}
    exec(compile(emit_python(net), "<emitted>", "exec"), space)
    emitted = space["N"]()
    assert [(k, v.shape) for k, v in emitted.state_dict().items()] == \
        [(k, v.shape) for k, v in model.state_dict().items()]
    emitted.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert torch.equal(emitted.eval()(x), y)
    compiled = torch.compile(model, fullgraph=True, backend="eager")
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), y)


def test_a_container_is_written_together():
    message = _error("  conv 3x3 8 as stem.0\n  relu\n  bn as stem.1\n")
    assert message.startswith("E103 5:9 `stem` was left for `relu`")


def test_a_path_is_a_module_or_a_container_not_both():
    assert _error("  conv 3x3 8 as head\n  bn as head.bn\n").startswith(
        "E103 4:9 the module path `head.bn` clashes with an earlier one: `head` is a module")
    assert "`stages.0` holds other modules" in _error(
        "  stage stages.0.blocks x1 res(3)\n  bn as stages.0\n")


def test_module_paths_belong_to_the_network():
    blocks = BLOCKS + "block bad(out) {\n  conv 3x3 out as a.b\n  add\n}\n"
    assert "E207" in _error("  stage x1 bad(3)\n", blocks)
    assert "name template" in _error("  conv 3x3 8 as stem.{i}\n")


def test_layer_scale_needs_a_block_of_its_own():
    assert _error("  conv 3x3 8\n  layer_scale\n").startswith("E307 4:3 `layer_scale` belongs")
    blocks = BLOCKS + "block scoped(out) {\n  ls(out) as inner\n  add\n}\nblock ls(out) {\n  layer_scale\n}\n"
    assert "E307" in _error("  stage x1 scoped(3)\n", blocks)


@pytest.mark.parametrize("body, code, words", [
    ("  conv 3x3 8 ws=-1\n", "E203", "ws is the weight standardisation's eps"),
    ("  pad(-1)\n", "E203", "pad size must be at least 0"),
    ("  layernorm eps=0\n", "E203", "eps must be positive"),
    ("  flatten\n  pad 1\n", "E305", "`pad` needs a CxHxW feature map"),
])
def test_new_layers_check_their_values(body, code, words):
    message = _error(body)
    assert message.startswith(code) and words in message, message


def test_new_layers_shapes_and_costs():
    net = _net("  conv 3x3 8 ws=1e-8 as conv\n  pad 1x2\n  layernorm\n")
    conv, pad, norm = (net.nodes[n] for n in ("conv", "pad", "layernorm"))
    assert conv.ws_eps == 1e-8 and conv.params == 8 * 27 and "ws 1e-08" in conv.describe(3)
    assert pad.shape == (8, 18, 20) and pad.params == pad.macs == 0
    assert norm.params == 16 and norm.macs == 0
    model = build_module(net).eval()
    x = torch.randn(1, 3, 16, 16)
    w = model.conv.weight
    standard = (w - w.mean((1, 2, 3), keepdim=True)) / torch.sqrt(w.var((1, 2, 3), unbiased=False, keepdim=True) + 1e-8)
    expected = torch.nn.functional.conv2d(x, standard, padding=1)
    expected = torch.nn.functional.pad(expected, (2, 2, 1, 1))
    expected = torch.nn.functional.layer_norm(expected.permute(0, 2, 3, 1), (8,), eps=1e-6).permute(0, 3, 1, 2)
    with torch.no_grad():
        torch.testing.assert_close(model(x), expected, rtol=1e-5, atol=1e-5)
    from resnet_dsl.backends.torch.fold import inference   # standardised once, same function
    with torch.no_grad():
        torch.testing.assert_close(inference(model)(x), model(x), rtol=1e-5, atol=1e-5)
    assert type(inference(model).conv) is torch.nn.Conv2d


def test_regnet_width_rule_is_timms():
    """regnet_width/regnet_depth give timm's stages for every RegNet config timm has (those
    with its default rounding: group_min_ratio 0)."""
    regnet = pytest.importorskip("timm.models.regnet")
    from resnet_dsl.frontend.evaluate import _regnet_stages

    checked = 0
    for name, cfg in regnet.model_cfgs.items():
        if cfg.group_min_ratio:
            continue
        widths, stages, _ = regnet.generate_regnet(cfg.wa, cfg.w0, cfg.wm, cfg.depth, cfg.group_size)
        unique, counts = torch.unique(torch.tensor(widths), return_counts=True)
        adjusted, _ = regnet.adjust_widths_groups_comp(
            unique.tolist(), [cfg.bottle_ratio] * stages, [cfg.group_size] * stages)
        ours = _regnet_stages([cfg.w0, cfg.wa, cfg.wm, cfg.depth, cfg.group_size, cfg.bottle_ratio])
        assert ours == list(zip(adjusted, counts.tolist())), name
        checked += 1
    assert checked >= 20
