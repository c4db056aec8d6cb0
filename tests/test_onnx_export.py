"""ONNX export of the shipped specs: each exports (random weights and random BN
statistics, so that folding BN is exercised), passes onnx's full checker and matches
PyTorch in onnxruntime at batches 1 and 3 from one dynamic-batch file; the graph is
minimal: exact node counts for resnet50 (the reference figures) and cifar_resnet20
(derived by hand below), and for every spec the counts its IR implies; the metadata
records the spec. ImageNet specs export at 3x64x64 (node counts do not depend on it).

Time: tracing dominates (torch.export and its decompositions: about 1 s per 10-15
layers on the 2-core CI machine, whatever the input size; all 20 distinct specs took
4 min 20 s there, 88 s of it preact_resnet1001). So by default a spec exports when it has a layer or a block that no
smaller spec has; a deeper copy of an exported spec (the same blocks, with every layer
attribute but the sizes, the same stem and head, only more of them) is represented by
it, which `test_represented_specs_have_nothing_new` checks, and is reported as skipped.
RNETC_SLOW_TESTS=1 exports every spec. Family files whose defaults are a named spec
compile to exactly its IR (checked) and are never exported twice.
"""

from __future__ import annotations

import functools
import json
import os
from collections import Counter

import pytest
from conftest import SPECS, spec_files

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from torch_helpers import randomize, set_threads  # noqa: E402

from resnet_dsl.backends.onnx import export_onnx  # noqa: E402
from resnet_dsl.backends.torch import build_module  # noqa: E402
from resnet_dsl.compiler import compile_network  # noqa: E402
from resnet_dsl.ir.graph import Network  # noqa: E402

SMALL_IMAGENET = (3, 64, 64)
# Family files whose defaults are a named spec: the same IR (checked), not exported twice.
SAME_AS = {"cifar_resnet": "cifar_resnet20", "preact_resnet": "preact_resnet164",
           "wrn": "wrn28_10"}
# Deeper copies of an exported spec: nothing new (checked); exported with RNETC_SLOW_TESTS=1.
REPRESENTED_BY = {
    "cifar50": "cifar_resnet20", "cifar_resnet32": "cifar_resnet20",
    "cifar_resnet44": "cifar_resnet20", "cifar_resnet56": "cifar_resnet20",
    "cifar_resnet110": "cifar_resnet20", "preact_resnet1001": "preact_resnet164",
    "resnet34": "resnet18", "resnet101": "resnet50", "resnet152": "resnet50",
    "wide_resnet50_2": "resnet50", "resnext101_32x8d": "resnext50_32x4d",
    "wrn40_4": "wrn28_10",
}
SLOW = os.environ.get("RNETC_SLOW_TESTS") == "1"


@pytest.fixture(autouse=True, scope="module")
def _threads():
    yield from set_threads(1)


def compiled(stem: str) -> Network:
    path = SPECS / f"{stem}.rnet"
    net = compile_network(path)
    if net.input_shape[1] > 64:
        net = compile_network(path, input_shape=SMALL_IMAGENET)
    return net


@functools.cache
def exported(stem: str, folder: str):
    """Export a spec once per session: (network, report, what the file says)."""
    net = compiled(stem)
    torch.manual_seed(0)
    model = randomize(build_module(net, device="cpu"))
    report = export_onnx(net, os.path.join(folder, f"{stem}.onnx"), model=model)
    proto = onnx.load(report.path)
    graph = proto.graph
    found = {
        "inputs": [(i.name, [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim])
                   for i in graph.input],
        "outputs": [(o.name, [d.dim_param or d.dim_value for d in o.type.tensor_type.shape.dim])
                    for o in graph.output],
        "external": any(t.data_location == onnx.TensorProto.EXTERNAL for t in graph.initializer),
        "metadata": {p.key: p.value for p in proto.metadata_props},
        "graph_name": graph.name,
    }
    return net, report, found


@pytest.fixture(scope="session")
def folder(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("onnx"))


def expected_counts(net: Network) -> Counter:
    """The minimal graph's nodes, from the architecture: a node per conv, ReLU, add, pool,
    fc; BN folded into the conv it follows where that conv feeds only it, otherwise one
    BatchNormalization; a stride-s zero-pad shortcut is a strided Slice per spatial axis
    (none at stride 1) and a Pad of the new channels; eval-mode dropout is nothing."""
    readers = net.consumers()
    counts: Counter = Counter()
    for node in net.nodes.values():
        producer = net.nodes[node.inputs[0]] if node.inputs else None
        if node.op == "conv":
            counts["Conv"] += 1
        elif node.op == "bn":
            if producer.op != "conv" or readers[producer.name] != [node.name]:
                counts["BatchNormalization"] += 1
        elif node.op == "act":
            counts[{"relu": "Relu"}[node.kind]] += 1
        elif node.op == "add":
            counts["Add"] += 1
        elif node.op == "pool":
            counts[{"max": "MaxPool", "avg": "AveragePool"}[node.kind]] += 1
        elif node.op == "global_pool":
            counts[f"global_{node.kind}_pool"] += 1
        elif node.op == "flatten":
            counts["flatten"] += 1
        elif node.op == "fc":
            counts["Gemm"] += 1
        elif node.op == "zeropad":
            counts["Slice"] += 2 if node.stride > 1 else 0
            counts["Pad"] += 1
        elif node.op not in ("input", "dropout"):
            raise AssertionError(f"no expectation for {node.op}")
    return counts


def normalised(counts: dict[str, int]) -> Counter:
    """The reference allows either form of global average pooling and of flattening."""
    names = {"GlobalAveragePool": "global_avg_pool", "ReduceMean": "global_avg_pool",
             "Flatten": "flatten", "Reshape": "flatten"}
    out: Counter = Counter()
    for op, n in counts.items():
        out[names.get(op, op)] += n
    return out


SIZES = {"name", "inputs", "span", "trace", "shape", "params", "macs", "stage", "block",
         "section", "out_channels", "out_features", "channels", "size"}


def structure(net: Network) -> set:
    """What a network is made of, sizes and repeats aside: its distinct blocks (the
    definition, shortcut, stride and every layer's attributes in order) and other layers."""
    def layer(node) -> str:
        return json.dumps(node.model_dump(exclude=SIZES), sort_keys=True)

    blocks = {(b.definition, b.shortcut, b.stride,
               tuple(layer(n) for n in net.block_nodes(b.name))) for b in net.blocks.values()}
    return blocks | {layer(n) for n in net.nodes.values() if n.block is None}


def export_cases() -> list:
    cases = []
    for path in spec_files():
        if path.stem in SAME_AS:
            continue
        marks = []
        if path.stem in REPRESENTED_BY and not SLOW:
            marks = [pytest.mark.skip(reason=f"represented by {REPRESENTED_BY[path.stem]}; "
                                             "RNETC_SLOW_TESTS=1 exports it")]
        cases.append(pytest.param(path.stem, id=path.stem, marks=marks))
    return cases


@pytest.mark.parametrize("stem", export_cases())
def test_every_spec_exports_and_matches_pytorch(stem, folder):
    net, report, found = exported(stem, folder)
    assert report.check is not None and report.check.passed, report.describe()
    assert [b.batch for b in report.check.batches] == [1, 3]
    # one self-contained file: no external data
    assert report.external_data is None and not found["external"]
    assert not list(report.path.parent.glob(f"{stem}.onnx.*"))
    # dynamic batch, named input and output
    assert found["inputs"] == [("images", ["batch", *net.input_shape])]
    assert found["outputs"] == [("logits", ["batch", *net.output_shape])]
    # minimal: exactly the nodes the architecture implies, and nothing else
    assert normalised(report.op_counts) == expected_counts(net)
    assert not {"Identity", "Dropout"} & set(report.op_counts)


@pytest.mark.parametrize("alias, spec", sorted(SAME_AS.items()))
def test_family_files_are_the_named_spec(alias, spec):
    def nodes(net: Network) -> str:
        return json.dumps([n.model_dump(exclude={"span", "trace"}) for n in net.nodes.values()])

    assert nodes(compiled(alias)) == nodes(compiled(spec))


@pytest.mark.parametrize("stem, by", sorted(REPRESENTED_BY.items()))
def test_represented_specs_have_nothing_new(stem, by):
    deeper, exported_one = compiled(stem), compiled(by)
    assert structure(deeper) <= structure(exported_one)
    assert len(deeper.nodes) >= len(exported_one.nodes)
    assert by not in REPRESENTED_BY and by not in SAME_AS


def test_resnet50_is_the_reference_minimal_graph(folder):
    # /tmp/REFERENCES.md ("ONNX: the minimal graph"): exactly these, nothing else, and
    # onnxruntime within 1e-4 of PyTorch.
    _, report, _ = exported("resnet50", folder)
    assert all(b.max_abs <= 1e-4 for b in report.check.batches), report.describe()
    assert normalised(report.op_counts) == Counter({
        "Conv": 53, "Relu": 49, "Add": 16, "MaxPool": 1, "global_avg_pool": 1, "flatten": 1,
        "Gemm": 1})


def test_cifar_resnet20_node_counts(folder):
    # ResNet-20 (He et al. 2015): a 3x3 stem conv, then 3 stages x 3 basic blocks of two
    # 3x3 convs: 1 + 9 * 2 = 19 Conv, every BN folded into its conv (0 BatchNormalization);
    # a ReLU after the stem and two per block: 1 + 9 * 2 = 19 Relu; an Add per block: 9.
    # Option A shortcuts in the two blocks that halve the size (layer2.0, layer3.0): each
    # takes every 2nd row and column (a strided Slice per axis: 2 x 2 = 4 Slice) and pads
    # the new channels with zeros (2 Pad). Head: global average pool (ReduceMean),
    # flatten (Reshape), fc (Gemm). 56 nodes.
    _, report, _ = exported("cifar_resnet20", folder)
    assert report.op_counts == {"Conv": 19, "Relu": 19, "Add": 9, "Slice": 4, "Pad": 2,
                                "ReduceMean": 1, "Reshape": 1, "Gemm": 1}


def test_preactivation_bns_stay_fused(folder):
    # preact_resnet164: 54 blocks. In a pre-activation block the BN after a conv folds,
    # but the first BN reads the block's input (an addition, also the identity shortcut's
    # input): it stays, as one inference-mode BatchNormalization. The stem conv feeds
    # only the first block's BN (its shortcut is a projection of the pre-activated
    # input), so that one folds: 54 first-BNs + the final BN - 1 = 54.
    _, report, _ = exported("preact_resnet164", folder)
    assert report.op_counts["BatchNormalization"] == 54


def test_metadata_records_the_spec(folder):
    net, report, found = exported("cifar_resnet20", folder)
    meta = found["metadata"]
    assert meta == report.metadata
    from resnet_dsl import __version__

    assert meta["rnetc.version"] == __version__
    assert meta["rnetc.network"] == "cifar_resnet20"
    assert meta["rnetc.spec"] == (SPECS / "cifar_resnet20.rnet").read_text(encoding="utf-8")
    assert json.loads(meta["rnetc.imports"]) == {
        str(SPECS / "cifar_resnet.rnet"): (SPECS / "cifar_resnet.rnet").read_text(encoding="utf-8")}
    assert json.loads(meta["rnetc.parameters"]) == {"depth": 20, "classes": 10}
    assert meta["rnetc.input_shape"] == "3x32x32"
    assert meta["rnetc.batch"] == "dynamic"
    assert meta["rnetc.weights"] == "the model given"
    assert found["graph_name"] == "cifar_resnet20"
