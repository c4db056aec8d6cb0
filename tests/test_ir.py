"""The printed IR (golden files), its JSON form, the networkx view and the lint."""

from __future__ import annotations

import json
import os

import networkx as nx
import pytest
from conftest import REPO, SPECS, spec_files

from resnet_dsl.compiler import compile_network
from resnet_dsl.ir.graph import Network
from resnet_dsl.ir.printer import format_ir

GOLDEN = REPO / "tests" / "golden"
UPDATE = os.environ.get("RNETC_UPDATE_GOLDEN") == "1"


@pytest.mark.parametrize("name", ["cifar_resnet20", "resnet18", "wrn40_4"])
def test_printed_ir_golden(name, monkeypatch):
    monkeypatch.chdir(REPO)
    text = format_ir(compile_network(f"specs/{name}.rnet"))
    golden = GOLDEN / f"{name}.ir"
    if UPDATE or not golden.exists():
        golden.write_text(text, encoding="utf-8")
    assert text == golden.read_text(encoding="utf-8")


@pytest.mark.parametrize("path", spec_files(), ids=lambda p: p.stem)
def test_json_round_trip_and_graph(path):
    net = compile_network(path)
    again = Network.model_validate_json(net.model_dump_json())
    # The spec texts travel with the network for the backends, not in its JSON.
    assert again == net.model_copy(update={"sources": {}})
    g = net.graph()
    assert nx.is_directed_acyclic_graph(g)
    assert g.number_of_nodes() == len(net.nodes)
    # explicit input order: the add's first input is the residual branch
    for block in net.blocks.values():
        if block.add:
            add = net.nodes[block.add]
            assert add.inputs[0] != add.inputs[1] or block.shortcut == "identity"
            assert net.nodes[add.inputs[0]].block == block.name
    order = list(nx.lexicographical_topological_sort(g, key=list(net.nodes).index))
    assert order == list(net.nodes)


def test_lint_catches_broken_ir():
    net = compile_network(SPECS / "cifar_resnet20.rnet")
    net.nodes["layer1.0.add"].inputs = ["layer1.0.bn2"]
    with pytest.raises(AssertionError, match="inputs"):
        net.lint()


def test_any_input_size_the_spec_allows():
    for size in (32, 40, 64, 97):
        net = compile_network(SPECS / "resnet50.rnet", input_shape=(3, size, size))
        assert net.output_shape == (1000,)
        assert net.totals.params == 25_557_032  # parameters do not depend on the input size
    small = compile_network(SPECS / "resnet50.rnet", input_shape=(3, 97, 97))
    assert small.nodes["layer4.2.add"].shape == (2048, 4, 4)


def test_ir_json_is_plain_data():
    net = compile_network(SPECS / "resnet18.rnet")
    data = json.loads(net.model_dump_json())
    assert data["nodes"]["layer2.0.downsample.0"]["op"] == "conv"
    assert data["nodes"]["layer2.0.downsample.0"]["stride"] == [2, 2]
    assert data["blocks"]["layer2.0"]["shortcut"] == "proj"
    assert data["totals"]["params"] == 11_689_512


def test_compile_lints_before_the_passes_and_after_them(monkeypatch):
    """The IR's invariants are checked twice per compile: structurally after lowering,
    and with every node's shape at the end."""
    from resnet_dsl.compiler import compile_network
    from resnet_dsl.ir.graph import Network

    calls = []
    real = Network.lint
    monkeypatch.setattr(Network, "lint", lambda self, **kw: (calls.append(kw), real(self, **kw))[1])
    compile_network("network t { input 3x8x8; conv 3x3 4; bn; relu }")
    assert calls == [{"checked": False}, {}]
