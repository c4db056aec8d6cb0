"""`--emit-python` writes a standalone PyTorch file that builds the same model: for every
shipped spec it imports, has the same state-dict names and shapes, loads the in-process
model's weights strictly and computes the same outputs. Its text is kept as golden files
(RNETC_UPDATE_GOLDEN=1 rewrites them)."""

import ast
import os

import pytest
from conftest import REPO, SPECS, spec_files

torch = pytest.importorskip("torch")

from torch_helpers import import_file, max_diff, model_class_name, randomize, set_threads  # noqa: E402

from resnet_dsl.backends.torch import build_module, emit_python  # noqa: E402
from resnet_dsl.compiler import compile_network  # noqa: E402

GOLDEN = REPO / "tests" / "golden" / "emit"


@pytest.fixture(autouse=True, scope="module")
def _threads():
    yield from set_threads(1)


def emitted_class(net, tmp_path):
    source = emit_python(net)
    path = tmp_path / f"{net.name}_emitted.py"
    path.write_text(source)
    module = import_file(path, f"emitted_{net.name}_{abs(hash(str(tmp_path)))}")
    return getattr(module, model_class_name(source)), source


@pytest.mark.parametrize("path", spec_files(), ids=lambda p: p.stem)
def test_emitted_file_loads_the_state_dict_and_computes_the_same(path, tmp_path):
    net = compile_network(path)
    cls, source = emitted_class(net, tmp_path)
    with torch.device("meta"):  # its own init is checked below; here only the structure
        emitted = cls()
    torch.manual_seed(0)
    model = randomize(build_module(net)).eval()
    ours = model.state_dict()
    assert [(k, v.shape) for k, v in emitted.state_dict().items()] == \
        [(k, v.shape) for k, v in ours.items()]
    emitted.load_state_dict(ours, strict=True, assign=True)
    size = 32 if net.input_shape[1] == 32 else 64
    x = torch.randn(1, 3, size, size)
    with torch.no_grad():
        assert max_diff(emitted.eval()(x), model(x)) == 0.0
    # Standalone: it imports torch and nothing else.
    imports = {alias.name.split(".")[0] for node in ast.walk(ast.parse(source))
               if isinstance(node, (ast.Import, ast.ImportFrom))
               for alias in (node.names if isinstance(node, ast.Import) else [ast.alias(node.module)])}
    assert imports == {"torch"}


@pytest.mark.parametrize("name", ["cifar_resnet20", "preact_resnet164", "resnext50_32x4d"])
def test_emitted_model_built_on_the_cpu_computes_the_same(name, tmp_path):
    net = compile_network(SPECS / f"{name}.rnet")
    cls, _ = emitted_class(net, tmp_path)
    torch.manual_seed(0)
    model = randomize(build_module(net)).eval()
    emitted = cls().eval()
    emitted.load_state_dict(model.state_dict(), strict=True)
    size = 32 if net.input_shape[1] == 32 else 64
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        assert max_diff(emitted(x), model(x)) == 0.0


def test_emitted_initialisation_matches(tmp_path):
    net = compile_network(SPECS / "resnet50.rnet")
    cls, _ = emitted_class(net, tmp_path)
    model = build_module(net, zero_init_residual=True).state_dict()
    emitted = cls(zero_init_residual=True).state_dict()
    for name, value in model.items():
        other = emitted[name]
        if value.dim() == 4:
            assert other.std().item() == pytest.approx(value.std().item(), rel=0.1), name
        elif not name.startswith("fc."):
            assert torch.equal(other, value), name  # BN ones/zeros, the zeroed last BNs


def test_emitted_text_is_deterministic():
    net = compile_network(SPECS / "resnet18.rnet")
    assert emit_python(net) == emit_python(compile_network(SPECS / "resnet18.rnet"))


@pytest.mark.parametrize("name", ["cifar_resnet20", "preact_resnet164", "resnext50_32x4d"])
def test_emitted_text_matches_golden(name):
    source = emit_python(compile_network(SPECS / f"{name}.rnet"))
    golden = GOLDEN / f"{name}.py"
    if os.environ.get("RNETC_UPDATE_GOLDEN"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(source)
    assert source == golden.read_text()


UNUSUAL = {
    "every layer kind": """
network n {
  input 3x17x17
  conv 3x3 8 bias=true dilation=2
  bn eps=0.001 momentum=0.2
  leaky_relu 0.2
  maxpool 3x3 stride=2 padding=1 ceil=true
  conv 1x3 8 groups=2 padding=0x1
  relu6
  avgpool 2x2 stride=1 count_pad=false
  silu
  conv 1x1 8
  gelu
  avgpool 3x3 stride=2 ceil=true
  tanh
  sigmoid
  maxpool global
  flatten
  bn
  dropout 0.5
  fc 5 bias=false
}""",
    "odd blocks in stages": """
block plain(out, stride = 1) { conv 3x3 out stride=stride; bn; relu }
block just_add() { add }
block relu_first(out) { relu; conv 3x3 out; bn; add }
block pre(out, stride = 1) { bn; relu; fork; conv 3x3 out stride=stride; add proj_bn=false; relu }
network n {
  input 3x16x16
  conv 3x3 8
  bn
  stage x2 plain(8) stride=2
  stage x2 just_add
  stage x2 relu_first(8)
  stage x2 pre(16) stride=2 shortcut=avgproj
  stage stem2 x1 plain(16)
  avgpool global
  flatten
  fc 3
}""",
}


@pytest.mark.parametrize("name", list(UNUSUAL))
def test_unusual_specs_build_emit_and_agree(name, tmp_path):
    net = compile_network(UNUSUAL[name])
    cls, _ = emitted_class(net, tmp_path)
    torch.manual_seed(0)
    model = randomize(build_module(net))
    emitted = cls()
    emitted.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(2, *net.input_shape)
    with torch.no_grad():
        assert max_diff(emitted.eval()(x), model.eval()(x)) == 0.0
    model.train()
    model(x).square().mean().backward()  # in-place decisions hold in training too
    assert tuple(model(x).shape) == (2, *net.output_shape)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_emitted_model_scripts(tmp_path):
    """The in-process model is not TorchScript-able (its forward reads its plan); the
    emitted file is, for those who still need TorchScript."""
    net = compile_network(SPECS / "cifar_resnet20.rnet")
    cls, _ = emitted_class(net, tmp_path)
    model = cls().eval()
    scripted = torch.jit.script(model)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(scripted(x), model(x))
