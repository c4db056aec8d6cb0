"""Behaviour goldens: what the compiler did before the IR / torch backend refactor.

tests/golden/behaviour/<spec>/ was recorded by scripts/record_behaviour.py from a clean
checkout of the commit in MANIFEST.json (see the script for what each file holds). For
every shipped spec this checks, against those files:

  - the state dict's names, shapes, dtypes and parameter/buffer kind, in order (meta);
  - after torch.manual_seed(0), build_module(net): every tensor's sum and sum of squares,
    and the eval-mode output for torch.manual_seed(1), randn(2, *input) (rtol 1e-4,
    atol 1e-5: the same modules built in the same order draw the same numbers, so in
    practice they are equal to the bit); cifar_resnet20 also in train mode, with the
    gradients of y.sum() and the BN statistics after that step;
  - emit_python's text, and that the emitted file builds the recorded state dict;
  - `rnetc ir`'s text and the IR JSON (its hash; the text itself for a few specs);
  - the DOT text of each recorded diagram variant (collapsed/expanded, TB/LR, shapes);
  - the ONNX export with its defaults: node op_types in order, op counts, rewrites,
    attributes, initializer shapes, inputs, outputs, metadata. Tracing is slow (tens of
    seconds for the deep specs), so by default only cifar_resnet20 and resnet18 export;
    RNETC_SLOW_TESTS=1 exports every spec.

A failure means behaviour changed. If that is intended, rerun the script and review the
diff of tests/golden/behaviour/.
"""

from __future__ import annotations

import difflib
import json
import os
import sys

import pytest
from conftest import REPO

sys.path.insert(0, str(REPO / "scripts"))
import record_behaviour as rb  # noqa: E402

sys.path.remove(str(REPO / "scripts"))

torch = pytest.importorskip("torch")

GOLDEN = rb.GOLDEN
SLOW = os.environ.get("RNETC_SLOW_TESTS") == "1"
RTOL, ATOL = 1e-4, 1e-5
STEMS = rb.spec_stems()
HOW = "if the change is intended, rerun scripts/record_behaviour.py and review the diff"


@pytest.fixture(autouse=True, scope="module")
def _threads():
    before = torch.get_num_threads()
    torch.set_num_threads(rb.THREADS)
    yield
    torch.set_num_threads(before)


_NETS: dict = {}


def net(stem: str):
    if stem not in _NETS:
        _NETS[stem] = rb.compiled(stem)
    return _NETS[stem]


def golden(stem: str) -> dict:
    path = GOLDEN / stem / "behaviour.json"
    if not path.exists():
        pytest.fail(f"no golden for {stem}: {path} is missing; run scripts/record_behaviour.py {stem}")
    return json.loads(path.read_text(encoding="utf-8"))


def golden_text(stem: str, name: str) -> str:
    return (GOLDEN / stem / name).read_text(encoding="utf-8")


# -- comparing, with messages that show the first difference ----------------------------

def expect(problem: str | None) -> None:
    """Fail with just the description of the first difference (no assert rewriting)."""
    if problem:
        pytest.fail(f"{problem}\n{HOW}", pytrace=False)


def close(actual: float, expected: float) -> bool:
    """numpy.allclose's rule: |actual - expected| <= atol + rtol * |expected|."""
    return abs(actual - expected) <= ATOL + RTOL * abs(expected)


def first_list_difference(what: str, expected: list, actual: list) -> str | None:
    """Exact comparison of two lists: where they first differ, with context."""
    if expected == actual:
        return None
    for i, (e, a) in enumerate(zip(expected, actual)):
        if e != a:
            context = ", ".join(map(str, expected[max(0, i - 3):i]))
            return (f"{what}: first difference at index {i} (after ...{context}):\n"
                    f"  golden: {e}\n  now:    {a}\n"
                    f"  ({len(expected)} entries in the golden, {len(actual)} now)")
    n = min(len(expected), len(actual))
    extra = expected[n:n + 3] if len(expected) > n else actual[n:n + 3]
    return (f"{what}: the first {n} entries agree, then the golden has {len(expected)} and "
            f"now there are {len(actual)}; next entries: {extra}")


def first_dict_difference(what: str, expected: dict, actual: dict) -> str | None:
    if expected == actual:
        return None
    for key in list(expected) + [k for k in actual if k not in expected]:
        if key not in actual:
            return f"{what}: {key!r} is missing now (golden: {expected[key]!r})"
        if key not in expected:
            return f"{what}: {key!r} is new (now: {actual[key]!r})"
        if expected[key] != actual[key]:
            return f"{what}: {key!r} differs\n  golden: {expected[key]!r}\n  now:    {actual[key]!r}"
    return f"{what}: the same items in another order\n  golden: {list(expected)}\n  now:    {list(actual)}"


def first_text_difference(what: str, expected: str, actual: str) -> str | None:
    if expected == actual:
        return None
    e, a = expected.splitlines(keepends=True), actual.splitlines(keepends=True)
    line = next((i for i, (x, y) in enumerate(zip(e, a)) if x != y), min(len(e), len(a)))
    diff = list(difflib.unified_diff(e, a, "golden", "now", n=2))
    shown = "".join(diff[:40]) + (f"... ({len(diff) - 40} more diff lines)\n" if len(diff) > 40 else "")
    return (f"{what}: first difference at line {line + 1} "
            f"(golden {len(e)} lines, now {len(a)}):\n"
            f"  golden: {e[line].rstrip() if line < len(e) else '<end of text>'}\n"
            f"  now:    {a[line].rstrip() if line < len(a) else '<end of text>'}\n{shown}")


def first_numeric_difference(what: str, expected, actual, path: str = "") -> str | None:
    """Nested lists/dicts of numbers (and labels compared exactly) within RTOL/ATOL."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        if list(expected) != list(actual):
            return first_dict_difference(f"{what}{path} keys", dict.fromkeys(expected),
                                         dict.fromkeys(actual))
        for k in expected:
            found = first_numeric_difference(what, expected[k], actual[k], f"{path}.{k}")
            if found:
                return found
        return None
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            return f"{what}{path}: {len(expected)} entries in the golden, {len(actual)} now"
        for i, (e, a) in enumerate(zip(expected, actual)):
            found = first_numeric_difference(what, e, a, f"{path}[{i}]")
            if found:
                return found
        return None
    numbers = (int, float)
    if (isinstance(expected, numbers) and isinstance(actual, numbers)
            and not isinstance(expected, bool) and not isinstance(actual, bool)):
        if close(float(actual), float(expected)):
            return None
        return (f"{what}{path}: golden {expected!r}, now {actual!r} "
                f"(diff {abs(actual - expected):.3g}; rtol {RTOL}, atol {ATOL})")
    if expected != actual:
        return f"{what}{path}: golden {expected!r}, now {actual!r}"
    return None


def labelled_rows_difference(what: str, expected: list, actual: list) -> str | None:
    """Rows [name, numbers...]: the names in order exactly, the numbers within tolerance."""
    found = first_list_difference(f"{what} (names)", [r[0] for r in expected], [r[0] for r in actual])
    if found:
        return found
    for e, a in zip(expected, actual):
        found = first_numeric_difference(f"{what} {e[0]!r}", e[1:], a[1:])
        if found:
            return found
    return None


def max_abs_diff(expected, actual) -> float:
    if isinstance(expected, dict):
        return max((max_abs_diff(expected[k], actual[k]) for k in expected if k in actual), default=0.0)
    if isinstance(expected, list):
        return max((max_abs_diff(e, a) for e, a in zip(expected, actual)), default=0.0)
    if isinstance(expected, (int, float)) and isinstance(actual, (int, float)):
        return abs(float(expected) - float(actual))
    return 0.0


# -- the tests --------------------------------------------------------------------------

def test_every_spec_has_a_golden():
    recorded = sorted(p.name for p in GOLDEN.iterdir() if p.is_dir())
    assert recorded == STEMS, (
        f"specs without a golden: {sorted(set(STEMS) - set(recorded))}; goldens without a "
        f"spec: {sorted(set(recorded) - set(STEMS))}; run scripts/record_behaviour.py")
    for stem in STEMS:
        files = sorted(p.name for p in (GOLDEN / stem).iterdir())
        assert files == golden(stem)["files"], f"{stem}: files {files}, recorded {golden(stem)['files']}"


@pytest.mark.parametrize("stem", STEMS)
def test_network_facts(stem):
    """Name, arguments, shapes, totals, node count and the IR JSON's hash."""
    expected = golden(stem)
    actual = rb.network_facts(net(stem))
    problem = first_dict_difference(f"{stem} network facts",
                                    {k: expected.get(k) for k in actual}, actual)
    expect(problem)


@pytest.mark.parametrize("stem", STEMS)
def test_printed_ir(stem):
    text, ir_json = rb.ir_texts(net(stem))
    problem = first_text_difference(f"{stem} `rnetc ir`", golden_text(stem, "ir.txt"), text)
    expect(problem)
    if stem in rb.IR_JSON_SPECS:
        problem = first_text_difference(f"{stem} `rnetc ir --json`", golden_text(stem, "ir.json"), ir_json)
        expect(problem)


@pytest.mark.parametrize("stem", STEMS)
def test_state_dict_names_and_shapes(stem):
    problem = first_list_difference(f"{stem} state dict [name, shape, dtype, kind]",
                                    golden(stem)["state_dict"], rb.meta_state_dict(net(stem)))
    expect(problem)


@pytest.mark.parametrize("stem", STEMS)
def test_initialisation_and_eval_output(stem):
    expected = golden(stem)
    actual = rb.eval_record(net(stem))
    problem = labelled_rows_difference(f"{stem} initial tensors [sum, sum of squares] after "
                                       "manual_seed(0)", expected["init_stats"], actual["init_stats"])
    expect(problem)
    problem = first_numeric_difference(f"{stem} eval output", expected["eval_output"],
                                       actual["eval_output"])
    expect(problem and f"{problem}\n(max abs diff over the recorded values: "
                     f"{max_abs_diff(expected['eval_output'], actual['eval_output']):.3g})")
    assert actual["input_unchanged"] == expected["input_unchanged"], f"{stem}: the forward pass changed its input"


def test_train_mode_output_gradients_and_bn_statistics():
    stem = rb.TRAIN_SPEC
    expected = golden(stem)["train"]
    actual = rb.train_record(net(stem))
    problem = first_numeric_difference(f"{stem} train-mode output", expected["output"], actual["output"])
    expect(problem)
    assert actual["first_conv_weight"] == expected["first_conv_weight"]
    assert close(actual["first_conv_weight_grad_norm"], expected["first_conv_weight_grad_norm"]), (
        f"{stem}: |grad {expected['first_conv_weight']}| is {actual['first_conv_weight_grad_norm']!r}, "
        f"golden {expected['first_conv_weight_grad_norm']!r}\n{HOW}")
    problem = labelled_rows_difference(f"{stem} gradient norms after y.sum().backward()",
                                       expected["grad_norms"], actual["grad_norms"])
    expect(problem)
    problem = labelled_rows_difference(f"{stem} buffers [sum, sum of squares] after one train-mode forward",
                                       expected["buffers_after"], actual["buffers_after"])
    expect(problem)


@pytest.mark.parametrize("stem", STEMS)
def test_emitted_python(stem):
    source = rb.emitted_source(net(stem))
    problem = first_text_difference(f"{stem} emit_python", golden_text(stem, "emit.py"), source)
    expect(problem)
    problem = first_list_difference(f"{stem} state dict of the emitted file's model",
                                    golden(stem)["state_dict"], rb.emitted_state_dict(source, stem))
    expect(problem)


DIAGRAM_CASES = [pytest.param(stem, name, id=f"{stem}-{name.removeprefix('diagram.').removesuffix('dot') or 'default'}"
                              .rstrip("."))
                 for stem in STEMS for name in rb.diagram_files(stem)]


@pytest.mark.parametrize("stem, name", DIAGRAM_CASES)
def test_diagram_dot(stem, name):
    pytest.importorskip("graphviz")
    options = rb.DIAGRAMS[name]
    problem = first_text_difference(f"{stem} DOT, to_digraph(net, **{options})",
                                    golden_text(stem, name), rb.diagram(net(stem), options))
    expect(problem)


def onnx_cases() -> list:
    cases = []
    for stem in STEMS:
        marks = []
        if stem not in rb.ONNX_ALWAYS:
            marks = [pytest.mark.slow]
            if not SLOW:
                marks.append(pytest.mark.skip(reason="ONNX export of every spec: RNETC_SLOW_TESTS=1"))
        cases.append(pytest.param(stem, id=stem, marks=marks))
    return cases


@pytest.fixture(scope="module")
def onnx_folder(tmp_path_factory):
    return tmp_path_factory.mktemp("behaviour_onnx")


@pytest.mark.parametrize("stem", onnx_cases())
def test_onnx_graph(stem, onnx_folder):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    expected = golden(stem).get("onnx")
    assert expected is not None, f"{stem}: no ONNX section recorded; run scripts/record_behaviour.py {stem}"
    actual = rb.onnx_record(net(stem), onnx_folder)
    problem = first_list_difference(f"{stem} ONNX node op_types", expected["ops"], actual["ops"])
    expect(problem)
    for key in expected:
        if key == "ops":
            continue
        if isinstance(expected[key], list):
            problem = first_list_difference(f"{stem} ONNX {key}", expected[key], actual.get(key))
        elif isinstance(expected[key], dict):
            problem = first_dict_difference(f"{stem} ONNX {key}", expected[key], actual.get(key, {}))
        else:
            problem = (None if expected[key] == actual.get(key)
                       else f"{stem} ONNX {key}: golden {expected[key]!r}, now {actual.get(key)!r}")
        expect(problem)
    assert set(actual) == set(expected), f"{stem} ONNX record keys: {sorted(actual)} vs {sorted(expected)}"
