"""The CIFAR, Wide and pre-activation ResNet specs compute what independent, hand-written
PyTorch implementations of the papers compute (written here, in the style of the code
people use: akamaster's CIFAR ResNets, the WRN authors' block, He et al.'s pre-activation
bottleneck). The same random weights are copied in by position (so the layers must also
come in the same order with the same shapes) and the outputs must agree."""

import pytest
from conftest import SPECS

torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402
from torch_helpers import copy_by_position, max_diff, randomize, set_threads  # noqa: E402

import resnet_dsl  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def _threads():
    yield from set_threads(1)


def conv3x3(cin, cout, stride=1):
    return nn.Conv2d(cin, cout, 3, stride, 1, bias=False)


def conv1x1(cin, cout, stride=1):
    return nn.Conv2d(cin, cout, 1, stride, 0, bias=False)


# -- CIFAR ResNets (He et al. 2015, section 4.2), option A shortcuts -----------------------

class CifarBlock(nn.Module):
    """akamaster/pytorch_resnet_cifar10's BasicBlock with option A, except that the new
    channels are appended after the old ones (akamaster splits them before and after)."""

    def __init__(self, cin, cout, stride, bn2=True, relu_out=True):
        super().__init__()
        self.conv1, self.bn1 = conv3x3(cin, cout, stride), nn.BatchNorm2d(cout)
        self.conv2 = conv3x3(cout, cout)
        self.bn2 = nn.BatchNorm2d(cout) if bn2 else None
        self.relu_out = relu_out
        self.cin, self.cout, self.stride = cin, cout, stride

    def shortcut(self, x):
        if self.stride == 1 and self.cin == self.cout:
            return x
        return F.pad(x[:, :, ::self.stride, ::self.stride], (0, 0, 0, 0, 0, self.cout - self.cin))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.conv2(out)
        if self.bn2 is not None:
            out = self.bn2(out)
        out = out + self.shortcut(x)
        return F.relu(out) if self.relu_out else out


class CifarResNet(nn.Module):
    def __init__(self, depth, k=1, classes=10, bn2=True, relu_out=True):
        super().__init__()
        n = (depth - 2) // 6
        self.conv1, self.bn1 = conv3x3(3, 16), nn.BatchNorm2d(16)
        blocks, cin = [], 16
        for width, stride in ((16 * k, 1), (32 * k, 2), (64 * k, 2)):
            for i in range(n):
                blocks.append(CifarBlock(cin, width, stride if i == 0 else 1, bn2, relu_out))
                cin = width
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        x = self.blocks(F.relu(self.bn1(self.conv1(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


# -- Wide ResNets (Zagoruyko & Komodakis 2016) --------------------------------------------

class WideBlock(nn.Module):
    """The WRN authors' block: BN-ReLU-conv3x3, BN-ReLU-dropout-conv3x3; a 1x1 conv of the
    pre-activated input where the shape changes."""

    def __init__(self, cin, cout, stride, drop):
        super().__init__()
        self.bn1, self.conv1 = nn.BatchNorm2d(cin), conv3x3(cin, cout, stride)
        self.bn2, self.conv2 = nn.BatchNorm2d(cout), conv3x3(cout, cout)
        self.equal = cin == cout and stride == 1
        self.shortcut = None if self.equal else conv1x1(cin, cout, stride)
        self.drop = drop

    def forward(self, x):
        o = F.relu(self.bn1(x))
        y = F.relu(self.bn2(self.conv1(o)))
        y = self.conv2(F.dropout(y, self.drop, self.training))
        return y + (x if self.equal else self.shortcut(o))


class WideResNet(nn.Module):
    def __init__(self, depth, k, drop=0.0, classes=10):
        super().__init__()
        n = (depth - 4) // 6
        self.conv1 = conv3x3(3, 16)
        blocks, cin = [], 16
        for width, stride in ((16 * k, 1), (32 * k, 2), (64 * k, 2)):
            for i in range(n):
                blocks.append(WideBlock(cin, width, stride if i == 0 else 1, drop))
                cin = width
        self.blocks = nn.Sequential(*blocks)
        self.bn, self.fc = nn.BatchNorm2d(cin), nn.Linear(cin, classes)

    def forward(self, x):
        x = F.relu(self.bn(self.blocks(self.conv1(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


# -- pre-activation ResNets (He et al. 2016, "Identity Mappings") -------------------------

class PreActBottleneck(nn.Module):
    """BN-ReLU-conv1x1, BN-ReLU-conv3x3 (stride), BN-ReLU-conv1x1; the projection reads
    the pre-activated input."""

    def __init__(self, cin, planes, stride):
        super().__init__()
        self.bn1, self.conv1 = nn.BatchNorm2d(cin), conv1x1(cin, planes)
        self.bn2, self.conv2 = nn.BatchNorm2d(planes), conv3x3(planes, planes, stride)
        self.bn3, self.conv3 = nn.BatchNorm2d(planes), conv1x1(planes, planes * 4)
        project = stride != 1 or cin != planes * 4
        self.shortcut = conv1x1(cin, planes * 4, stride) if project else None

    def forward(self, x):
        out = F.relu(self.bn1(x))
        shortcut = x if self.shortcut is None else self.shortcut(out)
        out = self.conv1(out)
        out = self.conv2(F.relu(self.bn2(out)))
        out = self.conv3(F.relu(self.bn3(out)))
        return out + shortcut


class PreActResNet(nn.Module):
    def __init__(self, depth, classes=10):
        super().__init__()
        n = (depth - 2) // 9
        self.conv1 = conv3x3(3, 16)
        blocks, cin = [], 16
        for planes, stride in ((16, 1), (32, 2), (64, 2)):
            for i in range(n):
                blocks.append(PreActBottleneck(cin, planes, stride if i == 0 else 1))
                cin = planes * 4
        self.blocks = nn.Sequential(*blocks)
        self.bn, self.fc = nn.BatchNorm2d(cin), nn.Linear(cin, classes)

    def forward(self, x):
        x = F.relu(self.bn(self.blocks(self.conv1(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


CASES = [
    ("cifar_resnet20", {}, lambda: CifarResNet(20)),
    ("cifar_resnet32", {}, lambda: CifarResNet(32)),
    ("cifar_resnet44", {}, lambda: CifarResNet(44)),
    ("cifar_resnet56", {}, lambda: CifarResNet(56)),
    ("cifar_resnet110", {}, lambda: CifarResNet(110)),
    ("cifar50", {}, lambda: CifarResNet(50)),
    ("cifar50", {"k": 2, "classes": 100}, lambda: CifarResNet(50, k=2, classes=100)),
    ("cifar50_norelu", {}, lambda: CifarResNet(50, bn2=False, relu_out=False)),
    ("wrn40_4", {}, lambda: WideResNet(40, 4)),
    ("wrn28_10", {}, lambda: WideResNet(28, 10)),
    ("wrn", {"depth": 16, "k": 2, "drop": 0.3}, lambda: WideResNet(16, 2, drop=0.3)),
    ("preact_resnet164", {}, lambda: PreActResNet(164)),
    ("preact_resnet", {"depth": 29}, lambda: PreActResNet(29)),
]


@pytest.mark.parametrize("spec, params, make", CASES,
                         ids=[f"{c[0]}{''.join(f'-{k}{v}' for k, v in c[1].items())}" for c in CASES])
def test_spec_matches_reference_implementation(spec, params, make):
    torch.manual_seed(0)
    reference = randomize(make())
    model = resnet_dsl.build(SPECS / f"{spec}.rnet", params=params)
    copy_by_position(reference, model)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = reference.eval()(x)
        assert max_diff(model.eval()(x), expected) <= 1e-5 * max(1.0, expected.abs().max().item())


@pytest.mark.parametrize("spec, params, make", [CASES[0], CASES[7], CASES[10], CASES[12]],
                         ids=["cifar_resnet20", "cifar50_norelu", "wrn-drop", "preact"])
def test_training_step_matches_reference(spec, params, make):
    """Train mode (batch statistics, dropout with the same seed) and gradients."""
    torch.manual_seed(0)
    reference = randomize(make())
    model = resnet_dsl.build(SPECS / f"{spec}.rnet", params=params)
    copy_by_position(reference, model)
    x = torch.randn(4, 3, 32, 32)
    grads = []
    for m in (model, reference):
        torch.manual_seed(5)
        m(x).square().mean().backward()
        grads.append([p.grad for p in m.parameters()])
    for a, b in zip(*grads):
        assert max_diff(a, b) <= 1e-5 * max(1.0, b.abs().max().item())
