"""A built model is ready for fast training: torch.compile captures it as one graph
(fullgraph=True), torch.export exports it, channels_last and autocast (bf16 on the CPU)
work, and the in-place operations never touch the caller's input or break autograd."""

import pytest
from conftest import SPECS

torch = pytest.importorskip("torch")

from torch_helpers import max_diff, randomize, set_threads  # noqa: E402

import resnet_dsl  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def _threads():
    yield from set_threads(1)


def model_and_input(name, params=None, size=None, seed=0):
    torch.manual_seed(seed)
    model = randomize(resnet_dsl.build(SPECS / f"{name}.rnet", params=params or {}))
    size = size or (32 if model.input_shape[1] == 32 else 64)
    return model, torch.randn(2, 3, size, size)


@pytest.mark.slow
def test_compile_fullgraph_inductor_cifar_resnet20():
    torch._dynamo.reset()
    model, x = model_and_input("cifar_resnet20")
    model.eval()
    compiled = torch.compile(model, fullgraph=True)
    with torch.no_grad():
        assert max_diff(compiled(x), model(x)) <= 1e-4


@pytest.mark.parametrize("name, params", [
    ("cifar_resnet20", {}), ("preact_resnet", {"depth": 11}), ("wrn", {"depth": 10, "k": 2, "drop": 0.3}),
    ("resnet18", {}), ("resnext50_32x4d", {}),
])
def test_one_graph_no_breaks(name, params):
    torch._dynamo.reset()
    model, x = model_and_input(name, params)
    explained = torch._dynamo.explain(model)(x)
    assert (explained.graph_count, explained.graph_break_count) == (1, 0)


def test_compiled_training_step_matches_eager():
    """fullgraph capture of forward and backward (AOTAutograd) with the in-place ops."""
    torch._dynamo.reset()
    model, x = model_and_input("cifar_resnet20")
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    grads = []
    for m in (model, compiled):
        model.zero_grad()
        m(x).square().mean().backward()
        grads.append([p.grad.clone() for p in model.parameters()])
    for a, b in zip(*grads):
        assert max_diff(a, b) <= 1e-5 * max(1.0, b.abs().max().item())


@pytest.mark.parametrize("name, params", [("cifar_resnet20", {}), ("preact_resnet", {"depth": 11}),
                                          ("resnet18", {})])
def test_torch_export(name, params):
    model, x = model_and_input(name, params)
    model.eval()
    exported = torch.export.export(model, (x,))
    with torch.no_grad():
        assert max_diff(exported.module()(x), model(x)) <= 1e-5


@pytest.mark.parametrize("name", ["cifar_resnet20", "resnet18", "preact_resnet164"])
def test_channels_last(name):
    model, x = model_and_input(name)
    model.eval()
    with torch.no_grad():
        expected = model(x)
        model = model.to(memory_format=torch.channels_last)
        xc = x.to(memory_format=torch.channels_last)
        features = model[:-3](xc)  # everything before avgpool, flatten, fc
        assert features.is_contiguous(memory_format=torch.channels_last)
        assert max_diff(model(xc), expected) <= 1e-4 * max(1.0, expected.abs().max().item())


@pytest.mark.parametrize("name, dtype", [
    ("cifar_resnet20", torch.bfloat16), ("resnet18", torch.bfloat16), ("wrn40_4", torch.bfloat16),
    ("cifar_resnet20", torch.float16),
])
def test_autocast_on_cpu(name, dtype):
    model, x = model_and_input(name)
    model.eval()
    with torch.no_grad():
        expected = model(x)
        with torch.autocast("cpu", dtype=dtype):
            y = model(x)
    assert y.dtype == dtype
    assert max_diff(y, expected) <= 0.05 * expected.abs().max().item()
    model.train()
    with torch.autocast("cpu", dtype=dtype):
        loss = model(x).float().square().mean()
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


INPLACE_CASES = [
    ("cifar_resnet20", {}), ("cifar50_norelu", {"depth": 8}), ("preact_resnet", {"depth": 11}),
    ("wrn", {"depth": 10, "k": 2, "drop": 0.3}), ("resnet18", {}), ("resnet50", {}),
    ("resnet101_caffe", {}),
]


@pytest.mark.parametrize("name, params", INPLACE_CASES)
def test_inplace_ops_leave_the_input_alone_and_autograd_works(name, params):
    model, x = model_and_input(name, params)
    x.requires_grad_(True)
    before = x.detach().clone()
    model(x).square().mean().backward()  # raises if an in-place op overwrote a saved tensor
    assert torch.equal(x.detach(), before)
    assert x.grad is not None


def test_first_layer_relu_on_block_input_is_not_inplace():
    """A block that starts with a ReLU reads its input, which the identity shortcut also
    reads: that ReLU must not work in place."""
    spec = ("block b(out) {\n  relu\n  conv 3x3 out\n  bn\n  add\n}\n"
            "network n {\n  input 3x8x8\n  conv 3x3 4\n  bn\n  stage x2 b(4)\n}\n")
    torch.manual_seed(0)
    model = randomize(resnet_dsl.build(spec)).eval()
    assert model.layer1[0].relu.inplace is False
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        h = model.bn1(model.conv1(x))
        b = model.layer1[0]
        assert torch.equal(model(x), model.layer1[1](b.bn1(b.conv1(torch.relu(h))) + h))


def test_deepcopy_pickle_and_fx_trace():
    """What training tools do with a model: copy it (EMA), pickle it, trace it (FX)."""
    import copy
    import io

    model, x = model_and_input("preact_resnet", {"depth": 11})
    model.eval()
    with torch.no_grad():
        expected = model(x)
        assert torch.equal(copy.deepcopy(model)(x), expected)
        buffer = io.BytesIO()
        torch.save(model, buffer)
        buffer.seek(0)
        assert torch.equal(torch.load(buffer, weights_only=False)(x), expected)
        assert torch.equal(torch.fx.symbolic_trace(model)(x), expected)
