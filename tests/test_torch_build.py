"""The PyTorch backend builds each shipped spec as exactly the network it claims to be:
parameter counts equal the IR's and the published ones; the torchvision-family specs
have torchvision's state dict and compute what torchvision computes; weights are
initialised like torchvision's."""

import subprocess
import sys

import pytest
from conftest import REPO, SPECS, spec_files
from references import REFERENCE, TORCHVISION

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")

from torch import nn  # noqa: E402
from torch_helpers import max_diff, randomize, set_threads  # noqa: E402

import resnet_dsl  # noqa: E402
from resnet_dsl.backends.torch import Block as Residual, build_module  # noqa: E402
from resnet_dsl.compiler import compile_network  # noqa: E402
from resnet_dsl.errors import RnetError  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def _threads():
    yield from set_threads(1)


def tv_model(name: str, **kwargs) -> nn.Module:
    return getattr(torchvision.models, name)(**kwargs)


@pytest.mark.parametrize("path", spec_files(), ids=lambda p: p.stem)
def test_parameter_count_equals_ir_and_reference(path):
    net = compile_network(path)
    model = build_module(net, device="meta")
    count = sum(p.numel() for p in model.parameters())
    assert count == net.totals.params
    if path.stem in REFERENCE:
        assert count == REFERENCE[path.stem][0]


@pytest.mark.parametrize("name", TORCHVISION)
def test_state_dict_names_and_shapes_equal_torchvision(name):
    model = resnet_dsl.build(SPECS / f"{name}.rnet", device="meta")
    with torch.device("meta"):
        reference = tv_model(name)
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in reference.state_dict().items()}
    assert list(ours) == list(theirs)
    assert ours == theirs


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "resnext50_32x4d", "wide_resnet50_2"])
def test_torchvision_weights_load_strictly_and_outputs_match(name):
    torch.manual_seed(0)
    reference = randomize(tv_model(name)).eval()
    model = resnet_dsl.build(SPECS / f"{name}.rnet")
    model.load_state_dict(reference.state_dict(), strict=True)
    model.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert max_diff(model(x), reference(x)) <= 1e-5


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_training_step_matches_torchvision(name):
    """Train mode (batch statistics), loss and gradients: in-place ReLU and `+=` change
    nothing that autograd sees."""
    torch.manual_seed(1)
    reference = randomize(tv_model(name))
    model = resnet_dsl.build(SPECS / f"{name}.rnet")
    model.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(4, 3, 64, 64)
    target = torch.tensor([1, 2, 3, 4])
    losses = []
    for m in (model, reference):
        loss = nn.functional.cross_entropy(m(x), target)
        loss.backward()
        losses.append(loss.item())
    assert losses[0] == pytest.approx(losses[1], abs=1e-6)
    theirs = dict(reference.named_parameters())
    for pname, p in model.named_parameters():
        assert max_diff(p.grad, theirs[pname].grad) <= 1e-5 * max(1.0, theirs[pname].grad.abs().max().item()), pname
    for key, value in reference.state_dict().items():  # running statistics updated alike
        assert max_diff(model.state_dict()[key], value) <= 1e-5, key


def test_initialisation_is_torchvisions():
    torch.manual_seed(0)
    model = resnet_dsl.build(SPECS / "resnet50.rnet")
    torch.manual_seed(1)
    reference = tv_model("resnet50")
    theirs = reference.state_dict()
    for name, value in model.state_dict().items():
        other = theirs[name]
        if name.endswith("num_batches_tracked"):
            assert value.item() == 0
        elif value.dim() == 4:  # conv: Kaiming normal, fan_out
            fan_out = value.shape[0] * value.shape[2] * value.shape[3]
            assert value.mean().abs() < 0.05 * (2 / fan_out) ** 0.5 + 1e-3, name
            assert value.std().item() == pytest.approx((2 / fan_out) ** 0.5, rel=0.05), name
            assert value.std().item() == pytest.approx(other.std().item(), rel=0.05), name
        elif name.startswith("fc."):  # PyTorch's default: uniform within 1/sqrt(fan_in)
            bound = 1 / 2048 ** 0.5
            assert value.abs().max() <= bound
            assert value.std().item() == pytest.approx(other.std().item(), rel=0.1), name
        else:  # BN: weight 1, bias 0, mean 0, var 1
            assert torch.equal(value, other), name


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_zero_init_residual_zeroes_what_torchvision_zeroes(name):
    model = resnet_dsl.build(SPECS / f"{name}.rnet", zero_init_residual=True)
    reference = tv_model(name, zero_init_residual=True)

    def zeroed(m):
        return {k for k, v in m.state_dict().items() if k.endswith(".weight") and not v.any()}

    assert zeroed(model) == zeroed(reference)
    assert len(zeroed(model)) == {"resnet18": 8, "resnet50": 16}[name]


def test_zero_init_residual_blocks_start_as_their_shortcut():
    torch.manual_seed(0)
    model = resnet_dsl.build(SPECS / "cifar_resnet20.rnet", zero_init_residual=True)
    blocks = [m for m in model.modules() if isinstance(m, Residual)]
    assert len(blocks) == 9
    for train in (True, False):
        model.train(train)
        for block in blocks:
            channels = block.conv1.in_channels
            x = torch.relu(torch.randn(2, channels, 8, 8))
            expected = block.downsample(x) if "downsample" in block._modules else x
            assert torch.equal(block(x), expected)
    # Without the option the blocks are not identities.
    plain = resnet_dsl.build(SPECS / "cifar_resnet20.rnet").eval()
    x = torch.relu(torch.randn(2, 16, 8, 8))
    assert not torch.equal(plain.layer1[0](x), x)


def test_zero_init_residual_leaves_preactivation_blocks_alone():
    """A pre-activation branch ends in a conv: there is no BN to zero."""
    torch.manual_seed(0)
    a = resnet_dsl.build(SPECS / "preact_resnet164.rnet", zero_init_residual=True)
    assert all(m.last_bn is None for m in a.modules() if isinstance(m, Residual))
    assert all(v.any() for k, v in a.state_dict().items() if k.endswith("bn1.weight"))


def test_meta_build_allocates_nothing_and_runs_shapes():
    model = resnet_dsl.build(SPECS / "resnet152.rnet", device="meta")
    assert all(t.is_meta for t in model.state_dict().values())
    with torch.no_grad():
        y = model.eval()(torch.empty(2, 3, 224, 224, device="meta"))
    assert y.shape == (2, 1000) and y.is_meta


def test_dtype_and_device_arguments():
    model = resnet_dsl.build(SPECS / "cifar_resnet20.rnet", dtype=torch.float64, device="cpu")
    assert {p.dtype for p in model.state_dict().values() if p.is_floating_point()} == {torch.float64}
    assert model(torch.randn(2, 3, 32, 32, dtype=torch.float64)).dtype == torch.float64
    with pytest.raises(ValueError, match="floating-point"):
        resnet_dsl.build(SPECS / "cifar_resnet20.rnet", dtype=torch.int64)


def test_default_device_context_is_respected():
    with torch.device("meta"):
        model = resnet_dsl.build(SPECS / "resnet18.rnet")
    assert next(model.parameters()).is_meta


TINY = """
network tiny(device = 4, classes = 10) {
  input 3x16x16
  conv 3x3 device
  bn
  relu
  avgpool global
  flatten
  fc classes
}
"""


@pytest.mark.parametrize("kwargs, out_features, conv_out", [
    ({}, 10, 4),
    ({"classes": 7}, 7, 4),
    ({"params": {"device": 6}}, 10, 6),                       # a name build() itself uses
    ({"params": {"device": 6}, "classes": 3}, 3, 6),
])
def test_build_from_source_text_with_parameters(kwargs, out_features, conv_out):
    model = resnet_dsl.build(TINY, **kwargs)
    assert model.fc.out_features == out_features
    assert model.conv1.out_channels == conv_out
    assert model.network_name == "tiny" and model.input_shape == (3, 16, 16)


def test_keywords_win_over_params_as_in_load():
    model = resnet_dsl.build(TINY, params={"classes": 3}, classes=4, device="meta")
    assert model.fc.out_features == resnet_dsl.load(TINY, params={"classes": 3}, classes=4).output_shape[0] == 4


def test_spec_errors_are_rnet_errors():
    with pytest.raises(RnetError) as info:
        resnet_dsl.build(TINY, classes=0)
    assert info.value.codes == ["E203"]
    with pytest.raises(RnetError) as info:
        resnet_dsl.build(SPECS / "cifar_resnet.rnet", depth=21)
    assert info.value.codes == ["E401"]


@pytest.mark.parametrize("body, names", [
    ("conv 3x3 8 as forward", ["forward"]),
    ("conv 3x3 8 as training\n  bn as class", ["training", "class"]),
    ("conv 3x3 8\n  stage to x1 basic(8)", ["to"]),
])
def test_names_pytorch_cannot_use_are_reported(body, names):
    spec = f"network n {{\n  input 3x8x8\n  {body}\n}}\n"
    compile_network(spec)  # the front end accepts them
    with pytest.raises(RnetError) as info:
        resnet_dsl.build(spec, device="meta")
    assert info.value.codes == ["E701"] * len(names)
    assert [d.message.split("`")[1] for d in info.value.diagnostics] == names


def test_importing_resnet_dsl_does_not_import_torch():
    code = "import sys, resnet_dsl; resnet_dsl.build; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         env={"PYTHONPATH": str(REPO), "PATH": ""}, check=True)
    assert out.stdout.strip() == "False"
