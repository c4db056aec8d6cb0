"""The zoo specs against timm itself (a test dependency; rnetc never imports timm): for
each `specs/zoo/NAME.rnet`, `timm.create_model(NAME)`'s state dict loads strictly (same
keys, same shapes), eval outputs agree after loading timm's weights with non-trivial BN
statistics, the parameter count is timm's, and the MACs are FlopCounterMode's total / 2
at timm's default input size (the conv + linear convention of rnetc's counts)."""

import pytest

torch = pytest.importorskip("torch")
timm = pytest.importorskip("timm")

from conftest import REPO  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402
from torch_helpers import randomize, set_threads  # noqa: E402

import resnet_dsl  # noqa: E402
from resnet_dsl.backends.torch import emit_python  # noqa: E402

ZOO = REPO / "specs" / "zoo"
# model: (params, MACs, input) as issue 15 quotes them from timm >= 1.0
MODELS = {
    "resnet18d": (11_708_744, 2_053_713_920, 224),
    "resnet26t": (16_011_872, 3_330_359_296, 256),
    "resnet50d": (25_576_264, 4_328_824_832, 224),
    "resnet50s": (25_680_808, 5_444_337_664, 224),
    "resnet50_gn": (25_557_032, 4_089_184_256, 224),
    "seresnet50": (28_088_024, 4_091_699_200, 224),
    "seresnext50_32x4d": (27_559_896, 4_232_994_816, 224),
    "ecaresnet50d": (25_576_350, 4_328_912_640, 224),
    "resnetaa50d": (25_576_264, 5_369_274_368, 224),
    "resnetblur50": (25_557_032, 5_133_020_672, 224),
    "resnetrs50": (35_691_912, 2_278_629_376, 160),
    # issue 16
    "regnetx_002": (2_684_792, 199_039_872, 224),
    "regnety_008": (6_263_168, 797_176_832, 224),
    "resnetv2_50": (25_549_352, 4_089_184_256, 224),
    "resnetv2_50x1_bit": (25_549_352, 4_089_184_256, 224),
    "resnetv2_50d_gn": (25_568_584, 4_328_824_832, 224),
    "convnext_atto": (3_695_520, 547_332_480, 224),
    "resnest14d": (10_611_688, 2_749_405_184, 224),
    "res2net50_26w_4s": (25_699_120, 4_255_166_464, 224),
    "res2next50": (24_671_464, 4_172_677_120, 224),
    "skresnet18": (11_958_056, 1_814_337_536, 224),
}
DOWNSAMPLE_FIRST = {"resnetv2_50", "resnetv2_50x1_bit", "resnetv2_50d_gn"}
"""timm's PreActBottleneck registers `downsample` before `norm1`; rnetc keeps a block's
modules in the spec's order, the projection where it joins. Loading is by name, so these
compare as sets of keys (and strictly load)."""


@pytest.fixture(autouse=True, scope="module")
def _threads():
    yield from set_threads(2)


@pytest.fixture(scope="module")
def timm_models():
    return {}


def _timm(name, cache):
    if name not in cache:
        torch.manual_seed(0)
        model = randomize(timm.create_model(name, pretrained=False))
        g = torch.Generator().manual_seed(1)
        with torch.no_grad():  # GroupNorms too: a fresh one is weight 1, bias 0
            for m in model.modules():
                if isinstance(m, (torch.nn.GroupNorm, torch.nn.LayerNorm)):
                    m.weight.copy_(torch.rand(m.weight.shape, generator=g) * 0.5 + 0.5)
                    m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
            for name, p in model.named_parameters():  # ConvNeXt's layer scales (1e-6 fresh)
                if name.endswith("gamma"):
                    p.copy_(torch.rand(p.shape, generator=g) * 0.5 + 0.5)
        cache[name] = model.eval()
    return cache[name]


@pytest.mark.parametrize("name", MODELS)
def test_counts_equal_timm_and_the_reference_figures(name, timm_models):
    reference = _timm(name, timm_models)
    params, macs, size = MODELS[name]
    assert reference.pretrained_cfg["input_size"] == (3, size, size)
    net = resnet_dsl.load(ZOO / f"{name}.rnet")
    assert net.name == name and net.input_shape == (3, size, size)
    assert net.totals.params == sum(p.numel() for p in reference.parameters()) == params
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        reference(torch.randn(1, 3, size, size))
    assert net.totals.macs == counter.get_total_flops() // 2 == macs


@pytest.mark.parametrize("name", MODELS)
def test_timm_weights_load_strictly_and_outputs_agree(name, timm_models):
    reference = _timm(name, timm_models)
    model = resnet_dsl.build(ZOO / f"{name}.rnet", size=64).eval()
    ours, theirs = model.state_dict(), reference.state_dict()
    if name in DOWNSAMPLE_FIRST:
        assert sorted(ours) == sorted(theirs) and list(ours) != list(theirs)
    else:
        assert list(ours) == list(theirs)
    assert all(ours[k].shape == theirs[k].shape for k in ours)
    model.load_state_dict(theirs, strict=True)
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name, cls", [("resnet18d", "Resnet18d"), ("seresnet50", "Seresnet50"),
                                       ("ecaresnet50d", "Ecaresnet50d"),
                                       ("resnetblur50", "Resnetblur50"),
                                       ("regnety_008", "Regnety_008"),
                                       ("convnext_atto", "ConvnextAtto"),
                                       ("resnest14d", "Resnest14d"),
                                       ("res2net50_26w_4s", "Res2net50_26w_4s"),
                                       ("skresnet18", "Skresnet18"),
                                       ("resnetv2_50x1_bit", "Resnetv2_50x1Bit")])
def test_emitted_source_of_a_zoo_spec_loads_timm_weights(name, cls, timm_models):
    reference = _timm(name, timm_models)
    net = resnet_dsl.load(ZOO / f"{name}.rnet", size=64)
    space: dict = {}
    exec(compile(emit_python(net), "<emitted>", "exec"), space)
    model = space[cls]().eval()
    model.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x), rtol=1e-4, atol=1e-5)


def test_a_gated_zoo_spec_compiles_without_graph_breaks_and_exports_to_onnx(tmp_path):
    net = resnet_dsl.load(ZOO / "seresnet50.rnet", size=64)
    from resnet_dsl.backends.torch import build_module

    torch.manual_seed(0)
    model = randomize(build_module(net)).eval()
    x = torch.randn(1, 3, 64, 64)
    compiled = torch.compile(model, fullgraph=True, backend="eager")
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), model(x))
    pytest.importorskip("onnxruntime")
    from resnet_dsl.backends.onnx import export_onnx

    report = export_onnx(net, tmp_path / "se.onnx", model=model)
    assert report.check.passed, report.describe()
    assert report.op_counts.get("Mul", 0) >= 16 and "Identity" not in report.op_counts


@pytest.mark.parametrize("divisor,min_value,round_limit", [(8, None, 0.9), (8, 8, 0.0), (16, 4, 0.9), (1, 1, 0.0)])
def test_make_divisible_is_timms(divisor, min_value, round_limit):
    """The expression language's `make_divisible` (the prelude's SE width rule) rounds as
    timm.layers.make_divisible does, over widths, SE ratios and odd fractions."""
    from timm.layers import make_divisible

    from resnet_dsl.frontend.evaluate import _make_divisible

    for v in [c * r for c in (3, 8, 24, 64, 72, 100, 256, 368, 1000, 2048)
              for r in (1 / 16, 0.25, 1 / 3, 0.5, 1.0, 0.75, 2.5)]:
        ours = _make_divisible([v, divisor, divisor if min_value is None else min_value,
                                round_limit])
        assert ours == make_divisible(v, divisor, min_value, round_limit), v
    assert _make_divisible([37.0]) == make_divisible(37.0)


def test_the_regnet_family_makes_other_regnets_with_set():
    """docs/zoo.md's example: `--set depth=22 wa=24.48 wm=2.54 group_size=16` on the regnet
    family is timm's regnetx_004 (RegNetX-400MF), parameters and state-dict keys alike."""
    reference = timm.create_model("regnetx_004", pretrained=False)
    net = resnet_dsl.load(ZOO / "regnet.rnet", size=64,
                          params=dict(depth=22, wa=24.48, wm=2.54, group_size=16))
    assert net.totals.params == sum(p.numel() for p in reference.parameters()) == 5_157_512
    model = resnet_dsl.build(ZOO / "regnet.rnet", size=64,
                             params=dict(depth=22, wa=24.48, wm=2.54, group_size=16))
    model.load_state_dict(reference.state_dict(), strict=True)
