"""Every shortcut policy has its exact semantics in the built module, checked against a
direct computation with torch.nn.functional: option A (subsample, append zero channels),
B (1x1 conv + BN where the shape changes), C (in every block), D (2x2 average pool, ceil
mode, padding not counted, then 1x1 conv + BN; timm's `downsample.0/.1/.2` names)."""

import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402
from torch_helpers import randomize, set_threads  # noqa: E402

import resnet_dsl  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def _threads():
    yield from set_threads(1)


def spec(policy: str, size: int = 15, proj_bn: str = "") -> str:
    block = ("block b(out, stride = 1) {\n  conv 3x3 out stride=stride\n  bn\n  relu\n"
             f"  conv 3x3 out\n  bn\n  add{proj_bn}\n  relu\n}}\n")
    return block + (f"network n {{\n  input 3x{size}x{size}\n  conv 3x3 8\n"
                    f"  stage x2 b(8) shortcut={policy}\n"
                    f"  stage x2 b(16) stride=2 shortcut={policy}\n"
                    f"  stage x1 b(24) shortcut={policy}\n}}\n")


def bn(x, m):
    return F.batch_norm(x, m.running_mean, m.running_var, m.weight, m.bias, False, 0.0, m.eps)


def expected_shortcut(block, x, policy):
    """The shortcut computed from its definition, with the block's own weights."""
    stride = block.conv1.stride[0]
    cin, cout = x.shape[1], block.conv2.out_channels
    changes = stride != 1 or cin != cout
    if policy == "identity" or (policy != "proj_all" and not changes):
        return x
    if policy == "zeropad":
        return F.pad(x[:, :, ::stride, ::stride], (0, 0, 0, 0, 0, cout - cin))
    d = block.downsample
    if policy == "avgproj":
        if stride > 1:
            x = F.avg_pool2d(x, stride, stride, ceil_mode=True, count_include_pad=False)
        return bn(F.conv2d(x, d[1].weight), d[2])
    return bn(F.conv2d(x, d[0].weight, stride=stride), d[1])


@pytest.mark.parametrize("policy, size", [
    ("zeropad", 15), ("proj", 15), ("proj_all", 15), ("avgproj", 15), ("avgproj", 16),
])
def test_shortcut_semantics(policy, size):
    torch.manual_seed(0)
    model = randomize(resnet_dsl.build(spec(policy, size))).eval()
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        h = model.conv1(x)
        for stage in (model.layer1, model.layer2, model.layer3):
            for block in stage:
                main = bn(block.conv2(F.relu(bn(block.conv1(h), block.bn1))), block.bn2)
                want = F.relu(main + expected_shortcut(block, h, policy))
                got = block(h)
                assert got.shape == want.shape
                assert (got - want).abs().max() <= 1e-5
                h = got


def test_avgproj_names_follow_timm():
    model = resnet_dsl.build(spec("avgproj"), device="meta")
    strided, widening = model.layer2[0].downsample, model.layer3[0].downsample
    pool = strided[0]
    assert isinstance(pool, nn.AvgPool2d) and pool.ceil_mode and not pool.count_include_pad
    assert pool.kernel_size == pool.stride == 2
    assert isinstance(widening[0], nn.Identity)  # stride 1: no pool, same names
    assert [k for k in model.state_dict() if k.startswith("layer3.0.downsample")] == [
        "layer3.0.downsample.1.weight", "layer3.0.downsample.2.weight",
        "layer3.0.downsample.2.bias", "layer3.0.downsample.2.running_mean",
        "layer3.0.downsample.2.running_var", "layer3.0.downsample.2.num_batches_tracked"]


def test_projection_without_bn():
    model = resnet_dsl.build(spec("proj", proj_bn=" proj_bn=false"), device="meta")
    assert [type(m).__name__ for m in model.layer2[0].downsample] == ["Conv2d"]
    assert not hasattr(model.layer1[0], "downsample")


@pytest.mark.parametrize("policy", ["proj", "avgproj"])
def test_a_fork_after_the_stride_is_projected_without_striding_again(policy):
    """The projection reads the fork, which the block's strided conv has already
    subsampled: it must not stride (or average-pool) a second time."""
    text = ("block late(out, stride = 1) {\n  conv 3x3 out stride=stride\n  bn\n  fork\n"
            "  relu\n  conv 3x3 out\n  bn\n  add\n}\n"
            f"network n {{\n  input 3x16x16\n  conv 3x3 8\n"
            f"  stage x1 late(16) stride=2 shortcut={policy}\n}}\n")
    net = resnet_dsl.load(text)
    shortcut = [n for n in net.nodes.values() if "downsample" in n.path]
    assert [n.op for n in shortcut] == ["conv", "bn"]
    assert shortcut[0].stride == (1, 1) and shortcut[0].inputs == ["layer1.0.bn1"]
    torch.manual_seed(0)
    model = randomize(resnet_dsl.build(text)).eval()
    block = model.layer1[0]
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        a = model.conv1(x)
        fork = block.bn1(block.conv1(a))
        down = block.downsample
        # an avgproj at stride 1 keeps timm's names: downsample.0 is an Identity
        conv, bn = (down[1], down[2]) if policy == "avgproj" else (down[0], down[1])
        expected = block.bn2(block.conv2(torch.relu(fork))) + bn(conv(fork))
        assert torch.allclose(model(x), expected, atol=1e-5)


def test_proj_gn_makes_the_projection_norm_a_groupnorm():
    text = ("block g(out, stride = 1) {\n  conv 3x3 out stride=stride\n  groupnorm 4\n"
            "  add proj_gn=4\n}\n"
            "network n {\n  input 3x8x8\n  conv 3x3 8\n  stage x1 g(16) stride=2\n}\n")
    model = resnet_dsl.build(text)
    assert isinstance(model.layer1[0].downsample[1], nn.GroupNorm)
    assert model.layer1[0].downsample[1].num_groups == 4


@pytest.mark.parametrize("option, code", [("proj_gn=-1", "E203"), ("proj_bn=false proj_gn=4", "E207")])
def test_proj_gn_errors(option, code):
    text = ("block g(out, stride = 1) {\n  conv 3x3 out stride=stride\n"
            f"  add {option}\n}}\n"
            "network n {\n  input 3x8x8\n  conv 3x3 8\n  stage x1 g(16) stride=2\n}\n")
    with pytest.raises(resnet_dsl.RnetError) as info:
        resnet_dsl.load(text)
    assert info.value.diagnostics[0].code == code and info.value.diagnostics[0].span.line == 3
