"""`resnet_dsl.inference`: the BN-folded inference build of a built model.

For every shipped spec that defines a network (at 3x32x32, batch 2, BN statistics and
affine parameters random), the inference build computes what the model computes in eval
mode (rtol 1e-4, atol 1e-5, float32); each BN whose input is a conv's output read by
nothing else is gone and every other BN stays (the IR says which); the state dict is the
model's without the folded BNs' entries and with a bias on each folded conv. Also:
dropout and drop_path are gone, the model given is untouched, torch.compile captures one
graph, `rnetc compile --inference` and `rnetc export --inference` (the same ONNX nodes
as the plain export), and E702 for a module rnetc did not build.
"""

from __future__ import annotations

import json

import pytest
from conftest import REPO, SPECS, rnetc

torch = pytest.importorskip("torch")

from test_errors_golden import check_golden  # noqa: E402
from torch import nn  # noqa: E402
from torch_helpers import randomize, set_threads  # noqa: E402

import resnet_dsl  # noqa: E402
from resnet_dsl.backends.torch import Block, build_module  # noqa: E402
from resnet_dsl.backends.torch.fold import InferenceModel  # noqa: E402
from resnet_dsl.errors import RnetError  # noqa: E402

RTOL, ATOL = 1e-4, 1e-5
SIZES = (16, 32)   # the smallest input a network takes (resnetaa50d collapses at 16)
# Random BN statistics make the outputs of some deep nets large (cifar50_norelu ~3e2,
# cifar_resnet110 ~1e3, preact_resnet1001 ~1e11): float32 rounding of such a sum then
# exceeds atol on an output near 0, so those nets are compared in float64.
WIDE_BEYOND = 100.0
ERRORS = REPO / "tests" / "errors"
BN = nn.modules.batchnorm._BatchNorm


def network_specs() -> list[tuple[str, int]]:
    """(spec, input size) for specs/*.rnet and specs/zoo/*.rnet, relative to the
    repository, that define a network (a file of blocks only is a library: E105)."""
    found = []
    for path in sorted(SPECS.glob("*.rnet")) + sorted((SPECS / "zoo").glob("*.rnet")):
        for size in SIZES:
            try:
                resnet_dsl.load(path, input_shape=(3, size, size))
            except RnetError as exc:
                if exc.codes == ["E105"]:
                    break
                if size == SIZES[-1] or exc.codes != ["E304"]:
                    raise
                continue
            found.append((str(path.relative_to(REPO)), size))
            break
    return found


@pytest.fixture(autouse=True, scope="module")
def _threads():
    yield from set_threads(1)


def built(spec: str, seed: int = 0, size: int = 32, **params):
    net = resnet_dsl.load(REPO / spec, input_shape=(3, size, size), params=params)
    torch.manual_seed(seed)
    model = randomize(build_module(net, device="cpu"), seed)
    return net, model


def foldable_bns(net) -> set[str]:
    """The IR's BNs that read a conv's output that nothing else reads."""
    readers = net.consumers()
    return {n.name for n in net.nodes.values() if n.op == "bn"
            and net.nodes[n.inputs[0]].op == "conv" and readers[n.inputs[0]] == [n.name]}


def expected_keys(model: nn.Module, folded: set[str], convs: set[str]) -> list[str]:
    keys = []
    for key in model.state_dict():
        module = key.rpartition(".")[0]
        if module in folded:
            continue
        keys.append(key)
        if module in convs and key.endswith(".weight") and f"{module}.bias" not in keys:
            keys.append(f"{module}.bias")
    return [k for i, k in enumerate(keys) if k not in keys[:i]]


@pytest.mark.parametrize("spec, size", network_specs())
def test_inference_build_computes_what_the_eval_model_computes(spec, size):
    net, model = built(spec, size=size)
    model.eval()
    fast = resnet_dsl.inference(model)
    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        expected, got = model(x), fast(x)
        # Weight-standardised convs: the build standardises once, in float64, the eval
        # model in float32 on every call (8e-5 apart on resnetv2_50x1_bit): compare in float64.
        standardised = any(type(m).__name__ == "StdConv2d" for m in model.modules())
        if expected.abs().max() > WIDE_BEYOND or standardised:
            expected, got = model.double()(x.double()), resnet_dsl.inference(model)(x.double())
    assert torch.isfinite(expected).all()
    assert torch.allclose(got, expected, rtol=RTOL, atol=ATOL), \
        f"max abs diff {(got - expected).abs().max().item():.3g}"
    model.float()

    bns = {name for name, m in model.named_modules() if isinstance(m, BN)}
    assert bns == {n.name for n in net.nodes.values() if n.op == "bn"}   # IR names = module names
    folded = foldable_bns(net)
    left = {name for name, m in fast.named_modules() if isinstance(m, BN)}
    assert left == bns - folded
    convs = {net.nodes[name].inputs[0] for name in folded}
    assert all(getattr(fast.get_submodule(c), "bias", None) is not None for c in convs)
    assert list(fast.state_dict()) == expected_keys(model, folded, convs)
    assert not any(isinstance(m, (nn.Dropout, nn.Identity)) or type(m).__name__ == "DropPath"
                   for m in fast.modules())
    assert isinstance(fast, InferenceModel) and not fast.training
    assert (fast.network_name, fast.input_shape) == (model.network_name, model.input_shape)
    assert not any(p.requires_grad for p in fast.parameters())


DROPS = """network drops(drop = 0.3) {
  input 3x16x16
  stem { conv 3x3 16; bn; relu }
  stage x2 sd(16, drop)
  stage x1 wide(32, drop) stride=2
  head { bn; avgpool global; flatten; dropout 0.5; fc 10 }
}
block sd(out, drop, stride = 1) {
  conv 3x3 out stride=stride
  bn
  relu
  conv 3x3 out
  bn
  drop_path drop
  add
  relu
}
block wide(out, drop, stride = 1) {
  bn
  relu
  fork
  conv 3x3 out stride=stride
  bn
  relu
  dropout drop
  conv 3x3 out
  add
}
"""


def test_dropout_and_drop_path_go_and_the_model_given_is_untouched():
    torch.manual_seed(0)
    model = randomize(resnet_dsl.build(DROPS))     # train mode, as built
    before = {k: v.clone() for k, v in model.state_dict().items()}
    text = repr(model)
    fast = resnet_dsl.inference(model)
    assert model.training and repr(model) == text
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert list(model.state_dict()) == list(before)
    kinds = {type(m).__name__ for m in fast.modules()}
    assert not kinds & {"Dropout", "DropPath", "Identity"}
    # the head's BN follows a ReLU and the wide block's first BN reads the stage's input
    assert [n for n, m in fast.named_modules() if isinstance(m, BN)] == ["layer2.0.bn1", "bn2"]
    x = torch.randn(4, 3, 16, 16)
    with torch.no_grad():
        assert torch.allclose(fast(x), model.eval()(x), rtol=RTOL, atol=ATOL)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_blocks_lose_their_folded_last_bn_and_steps():
    _, model = built("specs/cifar_resnet20.rnet")
    fast = resnet_dsl.inference(model)
    block = fast.get_submodule("layer1.0")
    assert isinstance(block, Block) and block.last_bn is None
    targets = [call[1] for _, call in block._steps if call[0] == "module"]
    assert targets == ["conv1", "relu", "conv2", "relu_1"]
    assert model.get_submodule("layer1.0").last_bn is not None


def test_the_inference_build_is_eval_only():
    _, model = built("specs/cifar_resnet20.rnet")
    fast = resnet_dsl.inference(model)
    assert fast.eval() is fast and not fast.training
    with pytest.raises(RnetError) as info:
        fast.train()
    assert info.value.codes == ["E702"] and not fast.training


def test_torch_compile_captures_one_graph():
    """fullgraph=True fails on a graph break; preact has every rewrite (a BN folded across
    blocks, BNs that stay, an in-place ReLU on a block's input)."""
    torch._dynamo.reset()
    _, model = built("specs/preact_resnet.rnet", depth=11)
    fast = resnet_dsl.inference(model.eval())
    x = torch.randn(2, 3, 32, 32)
    compiled = torch.compile(fast, fullgraph=True, backend="eager")
    with torch.inference_mode():
        assert torch.allclose(compiled(x), model(x), rtol=RTOL, atol=ATOL)


def test_channels_last_and_float64():
    _, model = built("specs/resnet18.rnet")
    model.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = model(x)
        fast = resnet_dsl.inference(model).to(memory_format=torch.channels_last)
        assert torch.allclose(fast(x.to(memory_format=torch.channels_last)), expected,
                              rtol=RTOL, atol=ATOL)
        wide = resnet_dsl.inference(model.double())
        assert wide.conv1.weight.dtype == torch.float64
        assert torch.allclose(wide(x.double()), model(x.double()), rtol=1e-10, atol=1e-12)


# -- errors ------------------------------------------------------------------------------

class Plain(nn.Sequential):
    pass


class Compiled(nn.Module):
    """What torch.compile returns (an OptimizedModule), without importing dynamo."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self._orig_mod = model


def test_a_module_rnetc_did_not_build_is_e702():
    with pytest.raises(RnetError) as info:
        resnet_dsl.inference(Plain(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)))
    assert info.value.codes == ["E702"]
    check_golden(ERRORS / "E702_not_an_rnetc_model.expected", info.value.render() + "\n")
    _, model = built("specs/cifar_resnet.rnet", depth=8)
    for wrapper, inside in ((Compiled(model), "model._orig_mod"),
                            (nn.ModuleDict({"module": model}), "model.module")):
        with pytest.raises(RnetError) as info:
            resnet_dsl.inference(wrapper)
        assert info.value.codes == ["E702"] and inside in info.value.diagnostics[0].help
    with pytest.raises(RnetError):
        resnet_dsl.inference("specs/resnet50.rnet")


# -- the command line --------------------------------------------------------------------

def test_compile_inference_writes_the_folded_weights(capsys, tmp_path):
    from resnet_dsl.backends.torch import load_weights

    path = tmp_path / "r8.safetensors"
    code, out, err = rnetc(capsys, "compile", SPECS / "cifar_resnet.rnet", "--set", "depth=8",
                           "--inference", "-o", path)
    assert code == 0, err
    assert "inference build: all 7 BatchNorms folded into the conv before them; " \
           "state dict 44 -> 16 tensors" in out
    model = resnet_dsl.inference(resnet_dsl.build(SPECS / "cifar_resnet.rnet", depth=8))
    load_weights(model, path)        # strict: the same names and shapes
    assert f"weights: {path} ({sum(p.numel() for p in model.parameters()):,} parameters" in out

    code, out, err = rnetc(capsys, "compile", SPECS / "cifar_resnet.rnet", "--inference",
                           "--emit-python", tmp_path / "m.py")
    assert code == 2 and "the emitted file is the trainable model" in err


def test_export_inference_gives_the_plain_exports_nodes(capsys, tmp_path):
    """cifar_resnet20's nodes as its plain export was recorded (tests/golden/behaviour)."""
    onnx = pytest.importorskip("onnx")
    path = tmp_path / "r20.onnx"
    code, out, err = rnetc(capsys, "export", SPECS / "cifar_resnet20.rnet", "-o", path,
                           "--inference")
    assert code == 0, err
    assert "check: ok" in out    # against the model before folding
    golden = json.loads((REPO / "tests/golden/behaviour/cifar_resnet20/behaviour.json")
                        .read_text(encoding="utf-8"))["onnx"]
    assert [n.op_type for n in onnx.load(path).graph.node] == golden["ops"]


def test_export_inference_keeps_the_bns_the_plain_export_keeps(tmp_path):
    """A pre-activation net: the BNs after an addition stay BatchNormalization nodes; the
    counts are those of its plain export (checked equal when this test was written)."""
    from resnet_dsl.api import export_spec

    report = export_spec(SPECS / "preact_resnet.rnet", tmp_path / "p.onnx",
                         params={"depth": 11}, inference=True, check=False)
    assert report.op_counts == {"Conv": 13, "Relu": 10, "Add": 3, "BatchNormalization": 3,
                                "ReduceMean": 1, "Reshape": 1, "Gemm": 1}
