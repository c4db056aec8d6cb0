"""`rnetc draw` and the graphviz backend.

Every shipped spec is drawn to DOT and, with graphviz's real `dot`, to SVG in both views;
the SVG is parsed as XML and must name every stage with its repeat count, mark the
repeats `x(n-1)`, and carry exactly the shortcut kinds the IR resolved. A table of
figures taken from the papers (stage lengths, shortcut options) guards against the IR and
the drawing agreeing on something wrong. Tests that need `dot` skip without it, unless
RNETC_REQUIRE_DOT=1 (CI) turns the skip into a failure.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import REPO, SPECS, spec_files

from resnet_dsl.backends.graphviz import to_digraph
from resnet_dsl.backends.graphviz import labels
from resnet_dsl.backends.graphviz.layout import SHORTCUT_WORDS, plan
from resnet_dsl.backends.graphviz.render import format_for
from resnet_dsl.cli import main
from resnet_dsl.compiler import compile_network

pytest.importorskip("graphviz")

EXAMPLE_SPECS = sorted((REPO / "examples" / "specs").glob("*.rnet"))
ALL_SPECS = spec_files() + EXAMPLE_SPECS
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def dot_binary() -> str:
    path = shutil.which("dot")
    if path is None:
        if os.environ.get("RNETC_REQUIRE_DOT") == "1":
            pytest.fail("graphviz's `dot` is not on PATH, and RNETC_REQUIRE_DOT=1")
        pytest.skip("graphviz's `dot` is not installed")
    return path


_NETS: dict[Path, object] = {}


def compiled(path: Path):
    if path not in _NETS:
        _NETS[path] = compile_network(path)
    return _NETS[path]


def drawn_kinds(net) -> set[str]:
    return {b.shortcut for b in net.blocks.values() if b.shortcut != "none"}


def svg_facts(svg: bytes) -> tuple[list[str], set[str], list[str]]:
    """(every text run, every edge class word, every node class word) of an SVG."""
    root = ET.fromstring(svg)
    texts = [t.text or "" for t in root.iter(f"{SVG}text")]
    edge_classes: set[str] = set()
    node_classes: list[str] = []
    for g in root.iter(f"{SVG}g"):
        words = (g.get("class") or "").split()
        if "edge" in words:
            edge_classes.update(words)
        elif "node" in words:
            node_classes.extend(words)
    return texts, edge_classes, node_classes


# -- figures from the papers ----------------------------------------------------------
# spec: (stage repeats in order, shortcut kinds). He et al. 2015 table 1 (ResNet-101:
# 3-4-23-3, projections where the shape changes), section 4.2 (CIFAR, n = 3, option A);
# Zagoruyko & Komodakis 2016 (WRN-28-10: n = 4); He et al. 2016 (ResNet-164: n = 18);
# examples/specs/custom_block.rnet (avg-pool projections, stages res2-res4).
PAPER = {
    "resnet101": ({"layer1": 3, "layer2": 4, "layer3": 23, "layer4": 3}, {"identity", "proj"}),
    "resnet152": ({"layer1": 3, "layer2": 8, "layer3": 36, "layer4": 3}, {"identity", "proj"}),
    "resnet18": ({"layer1": 2, "layer2": 2, "layer3": 2, "layer4": 2}, {"identity", "proj"}),
    "cifar_resnet20": ({"layer1": 3, "layer2": 3, "layer3": 3}, {"identity", "zeropad"}),
    "wrn28_10": ({"layer1": 4, "layer2": 4, "layer3": 4}, {"identity", "proj"}),
    "preact_resnet164": ({"layer1": 18, "layer2": 18, "layer3": 18}, {"identity", "proj"}),
    "custom_block": ({"res2": 2, "res3": 3, "res4": 2}, {"identity", "avgproj"}),
}


def spec_path(name: str) -> Path:
    return next(p for p in ALL_SPECS if p.stem == name)


@pytest.mark.parametrize("name", sorted(PAPER))
def test_paper_figures_appear_in_the_collapsed_diagram(name, dot_binary):
    stages, kinds = PAPER[name]
    svg = to_digraph(compiled(spec_path(name))).pipe(format="svg")
    texts, edge_classes, _ = svg_facts(svg)
    titles = [t for t in texts if ": " in t and " x " in t]
    assert [t.split(":")[0] for t in titles] == list(stages)
    for stage, repeats in stages.items():
        assert any(t.startswith(f"{stage}: {repeats} x ") for t in titles)
        if repeats > 1:
            assert f"x{repeats - 1}" in texts
    assert {c.removeprefix("shortcut-") for c in edge_classes if c.startswith("shortcut-")} == kinds


# -- every shipped spec, both views -----------------------------------------------------
@pytest.mark.parametrize("path", ALL_SPECS, ids=lambda p: p.stem)
@pytest.mark.parametrize("expand", [False, True], ids=["collapsed", "expanded"])
def test_every_spec_draws_to_svg(path, expand, dot_binary):
    net = compiled(path)
    g = to_digraph(net, expand=expand)
    assert g.source.startswith(f"digraph {net.name} {{")
    texts, edge_classes, node_classes = svg_facts(g.pipe(format="svg"))
    kinds = drawn_kinds(net)
    assert {c.removeprefix("shortcut-") for c in edge_classes if c.startswith("shortcut-")} == kinds
    legend = [t for t in texts if ": " in t and any(t.startswith(w) for w in
              ("identity", "zero-pad", "projection", "avg-pool projection"))]
    assert len(legend) == len(kinds)
    for stage in net.stages.values():
        assert f"{stage.name}: {stage.repeats} x {stage.block}" in texts
    adds = node_classes.count("box-add")
    residual = [b for b in net.blocks.values() if b.residual]
    if expand:
        assert adds == len(residual)
        for block in net.blocks.values():
            assert f"{block.name} · {block.definition}" in texts
    else:
        # one addition for the first block and one for the x(n-1) repeats of each stage
        assert adds == sum(min(s.repeats, 2) for s in net.stages.values()
                           if net.blocks[s.blocks[0]].residual)
        badges = sorted(t for t in texts if t[:1] == "x" and t[1:].isdigit())
        assert badges == sorted(f"x{s.repeats - 1}" for s in net.stages.values() if s.repeats > 1)


@pytest.mark.parametrize("path", ALL_SPECS, ids=lambda p: p.stem)
def test_dot_source_is_deterministic_and_names_every_stage(path):
    net = compiled(path)
    first, second = to_digraph(net).source, to_digraph(net).source
    assert first == second
    for stage in net.stages.values():
        assert f'"cluster_{stage.name}"' in first or f"cluster_{stage.name} " in first


# -- what the collapsed view groups -----------------------------------------------------
ODD = """
block plain(out) {
  conv 3x3 out
  bn
  relu
}
network odd(classes = 10) {
  input 3x32x32
  stem {
    conv 3x3 16
  }
  stage x3 basic(16) shortcut=proj_all
  conv 1x1 32
  bn
  stage x2 plain(32)
  stage x1 basic(64) stride=2 shortcut=zeropad
  stage x3 preact_basic(64) shortcut=zeropad
  stage x2 wide_basic(128) stride=2
  head {
    avgpool global
    flatten
    fc classes
  }
}
"""


@pytest.mark.parametrize("spec", [
    ODD,
    "network no_stages { input 3x8x8; conv 3x3 4; bn; relu }",
    "network one_stage { input 3x8x8\n stage x1 basic(3) shortcut=identity\n }",
], ids=["odd", "no_stages", "one_stage"])
@pytest.mark.parametrize("expand", [False, True], ids=["collapsed", "expanded"])
def test_unusual_networks_draw(spec, expand, dot_binary):
    net = compile_network(spec)
    texts, edge_classes, _ = svg_facts(to_digraph(net, expand=expand).pipe(format="svg"))
    assert net.name in texts
    assert {c.removeprefix("shortcut-") for c in edge_classes if c.startswith("shortcut-")} == drawn_kinds(net)


def boxes_by_id():
    return plan(compile_network(ODD)).boxes


@pytest.mark.parametrize("box_id, role, shortcut, badge", [
    ("layer1.1-2/shortcut", "shortcut", "proj", None),    # proj_all: the repeats project too
    ("layer1.1-2/main", "main", None, "x2"),
    ("body1", "body", None, None),                        # layers written between stages
    ("layer2.1/main", "main", None, "x1"),                # a block without `add`
    ("layer3.0/shortcut", "shortcut", "zeropad", None),
    ("layer4.0/main", "main", None, None),                # pre-activation merged: no fork used
    ("layer5.0/pre", "pre", None, None),                  # the projection forks off BN-ReLU
    ("layer5.0/shortcut", "shortcut", "proj", None),
])
def test_collapsed_boxes(box_id, role, shortcut, badge):
    box = boxes_by_id()[box_id]
    assert (box.role, box.shortcut, box.badge) == (role, shortcut, badge)


@pytest.mark.parametrize("absent", [
    "layer2.0/add",       # no addition in a block without `add`
    "layer3.1/main",      # a stage of one block has no x(n-1) box
    "layer4.0/pre",
    "layer4.0/shortcut",  # zero-pad where the shape does not change: identity, no box
])
def test_collapsed_boxes_absent(absent):
    assert absent not in boxes_by_id()


def test_wrn_projection_reads_the_fork_and_identity_the_block_input():
    net = compiled(SPECS / "wrn28_10.rnet")
    edges = {(e.src, e.dst, e.kind) for e in plan(net).edges}
    assert ("layer1.0/pre", "layer1.0/shortcut", "proj") in edges
    assert ("layer1.0/add", "layer1.1-3/add", "identity") in edges
    assert ("layer1.0/add", "layer1.1-3/main", "main") in edges


def test_shapes_label_the_edges_where_the_shape_changes():
    net = compiled(SPECS / "resnet18.rnet")
    labels = {(e.src, e.dst): e.label for e in plan(net).edges}
    assert labels[("input", "stem")] == "3x224x224"
    assert labels[("stem", "layer1.0/main")] == "64x56x56"
    assert labels[("layer2.0/main", "layer2.0/add")] == "128x28x28"
    assert labels[("layer1.0/add", "layer1.1/main")] is None    # unchanged: no label
    assert labels[("head", "output")] == "1000"
    assert all(e.label is None for e in plan(net, shapes=False).edges)
    assert "label=\" " not in to_digraph(net, shapes=False).source


def test_rankdir():
    net = compiled(SPECS / "resnet18.rnet")
    assert "rankdir=LR" in to_digraph(net, rankdir="LR").source
    with pytest.raises(ValueError, match="rankdir"):
        to_digraph(net, rankdir="BT")


# -- side branches (gates) ------------------------------------------------------------------
# `branch ... mul` (SE, ECA): the gate's layers are drawn beside the path they leave from,
# in boxes of their own, and enter a `×` on the path; the residual `+` is as before.
GATED = {  # spec: (what the gate's box says, the ops of the gate's layers)
    "seresnet50": ("conv 1x1, 256→16, bias · relu",
                   ["global_pool", "conv", "act", "conv", "act"]),
    "ecaresnet50d": ("channel_conv 5 · sigmoid", ["global_pool", "channel_conv", "act"]),
    "resnetrs50": ("conv 1x1, 256→64, bias · relu",
                   ["global_pool", "conv", "act", "conv", "act"]),
}
GATE_OPS = {"global_pool", "channel_conv", "mul"}  # never on the path in these specs

# Gates where the block starts, two in a row, and one after the addition: the path is
# drawn in segments between them, and each block keeps its name.
ODD_GATES = """
block squeeze(c) {
  branch
  avgpool global
  conv 1x1 c bias=true
  sigmoid
  mul
}
block gated(out, stride = 1) {
  branch
  avgpool global
  channel_conv 3
  sigmoid
  mul
  conv 3x3 out stride=stride
  bn
  relu
  squeeze(out) as attn
  squeeze(out) as attn2
  add
  relu
  branch
  avgpool global
  channel_conv 3
  sigmoid
  mul
}
network odd_gates(classes = 10) {
  input 3x32x32
  stem {
    conv 3x3 8
  }
  stage x3 gated(8) shortcut=proj
  stage x2 gated(16) stride=2
  head {
    avgpool global
    flatten
    fc classes
  }
}
"""


def dot_edges(source: str) -> list[tuple[str, str, str]]:
    """(tail, head, class) of each edge in DOT text."""
    found = re.findall(r'^\t+("[^"]+"|\S+) -> ("[^"]+"|\S+) \[(.*)\]$', source, re.M)
    classes = [re.search(r'class=("[^"]+"|[^\s\]]+)', a) for _, _, a in found]
    return [(t.strip('"'), h.strip('"'), c.group(1).strip('"') if c else "")
            for (t, h, _), c in zip(found, classes)]


def dot_nodes(source: str) -> dict[str, str]:
    """Each node's attribute text in DOT text (node statements only, not edges)."""
    return {m[0].strip('"'): m[1] for m in
            re.findall(r'^\t+("[^"]+"|[\w.]+) \[(.*)\]$', source, re.M) if "->" not in m[1]}


def dot_subgraph(source: str, name: str) -> str:
    """The text of one `subgraph "NAME" { ... }`, nested subgraphs included."""
    start = source.index(f'subgraph "{name}" {{')
    depth = 0
    for i in range(start, len(source)):
        depth += {"{": 1, "}": -1}.get(source[i], 0)
        if source[i] == "}" and depth == 0:
            return source[start:i + 1]
    raise AssertionError(f"{name} is not closed")


def box_graph_is_acyclic(p) -> bool:
    succ: dict[str, set[str]] = {}
    for e in p.edges:
        succ.setdefault(e.src, set()).add(e.dst)
    state: dict[str, int] = {}  # 1: on the stack, 2: done

    def visit(n: str) -> bool:
        if state.get(n) == 1:
            return False
        if state.get(n) == 2:
            return True
        state[n] = 1
        ok = all(visit(m) for m in succ.get(n, ()))
        state[n] = 2
        return ok
    return all(visit(n) for n in list(succ))


def assert_gates_drawn_beside(p) -> None:
    """Every `×` reads the path (a main edge) and one gate box (a gate edge) that is level
    with it, and the gate box reads the box the `×` reads: a side path, not the column."""
    muls = [b for b in p.boxes.values() if b.role == "mul"]
    assert muls
    for mul in muls:
        ins = sorted((e.kind, e.src) for e in p.edges if e.dst == mul.id)
        assert [k for k, _ in ins] == ["gate", "main"], mul.id
        gate_box, path_box = ins[0][1], ins[1][1]
        assert mul.beside == gate_box
        assert [m.op for m in mul.members] == ["mul"]
        box = gate_box  # back up the gate's boxes (one when collapsed) to where it leaves
        while p.boxes[box].role == "gate":
            (edge,) = [e for e in p.edges if e.dst == box]
            assert edge.kind == "gate"
            box = edge.src
        assert box == path_box, mul.id
    assert box_graph_is_acyclic(p)


@pytest.mark.parametrize("name", sorted(GATED))
def test_collapsed_gate_is_a_box_beside_the_path(name):
    net = compile_network(SPECS / "zoo" / f"{name}.rnet")
    p = plan(net)
    line, ops = GATED[name]
    assert_gates_drawn_beside(p)
    gates = [b for b in p.boxes.values() if b.role == "gate"]
    # one gate for the first block of each stage and one for its x(n-1) repeats
    assert len(gates) == sum(min(s.repeats, 2) for s in net.stages.values()) == 8
    for box in gates:
        assert box.header == "se · gate"   # the named scope: `se(out) as se`, `eca(out) as se`
        assert [m.op for m in box.members] == ops
    assert line in labels.step_lines(net, p.boxes["layer1.0/gate"].members)
    for box in p.boxes.values():
        if box.role in ("main", "pre", "add"):
            assert not GATE_OPS & {m.op for m in box.members}, box.id
    edges = {(e.src, e.dst, e.kind) for e in p.edges}
    assert {("layer1.0/main", "layer1.0/gate", "gate"), ("layer1.0/gate", "layer1.0/mul", "gate"),
            ("layer1.0/main", "layer1.0/mul", "main"), ("layer1.0/mul", "layer1.0/add", "main")} <= edges
    assert not any(e.dst == "layer1.0/add" and e.src == "layer1.0/main" for e in p.edges)
    assert p.shortcut_kinds == sorted(drawn_kinds(net), key=list(SHORTCUT_WORDS).index)


@pytest.mark.parametrize("name", sorted(GATED))
def test_expanded_gate_is_a_cluster_beside_the_path(name):
    net = compile_network(SPECS / "zoo" / f"{name}.rnet")
    p = plan(net, expand=True)
    assert_gates_drawn_beside(p)
    source = to_digraph(net, expand=True).source
    nodes = dot_nodes(source)
    _, ops = GATED[name]
    for block in net.blocks.values():
        cluster = dot_subgraph(source, f"cluster_{block.name}/gate")
        assert 'class="cluster-gate"' in cluster
        inside = set(dot_nodes(cluster))
        gate = [n.name for n in net.block_nodes(block.name) if n.path[:1] == ("se",)]
        assert [net.nodes[n].op for n in gate] == ops
        assert set(gate) <= inside
        assert f"{block.name}.mul" not in inside and f"{block.name}.bn3" not in inside
        for n in gate:
            assert "group=spine" not in nodes[n] and 'class="box-gate"' in nodes[n]
        assert "se · gate" in nodes[gate[0]] and f"{block.name} · " in nodes[f"{block.name}.conv1"]


@pytest.mark.parametrize("expand", [False, True], ids=["collapsed", "expanded"])
def test_gate_dot_multiply_has_two_in_edges(expand):
    net = compile_network(SPECS / "zoo" / "seresnet50.rnet")
    source = to_digraph(net, expand=expand).source
    nodes, edges = dot_nodes(source), dot_edges(source)
    muls = [n for n, attrs in nodes.items() if 'class="box-mul"' in attrs]
    assert len(muls) == (len(net.blocks) if expand else 8)
    for mul in muls:
        assert "<b>×</b>" in nodes[mul] and "shape=circle" in nodes[mul]
        ins = sorted((cls, tail) for tail, head, cls in edges if head == mul)
        assert [cls for cls, _ in ins] == ["gate", "main"]
        gate = ins[0][1]
        assert 'class="box-gate"' in nodes[gate] and "group=spine" not in nodes[gate]
        assert re.search(rf'rank=same\s+"{re.escape(gate)}"\s+"{re.escape(mul)}"', source)


@pytest.mark.parametrize("expand", [False, True], ids=["collapsed", "expanded"])
def test_gate_is_drawn_beside_the_multiply(expand, dot_binary):
    """In the SVG dot lays out, each gate's last box is level with its `×` and to one side:
    the gate is not in the main column."""
    net = compile_network(SPECS / "zoo" / "seresnet50.rnet")
    p = plan(net, expand=expand)
    root = ET.fromstring(to_digraph(net, expand=expand).pipe(format="svg"))
    where: dict[str, tuple[float, float, float]] = {}  # node id -> (x, top y, bottom y)
    for g in root.iter(f"{SVG}g"):
        if "node" in (g.get("class") or "").split():
            runs = list(g.iter(f"{SVG}text"))
            if runs:
                ys = [float(t.get("y")) for t in runs]
                where[g.find(f"{SVG}title").text] = (float(runs[0].get("x")), min(ys) - 12,
                                                     max(ys) + 4)
    texts = [t.text for t in root.iter(f"{SVG}text")]
    if not expand:
        assert texts.count("se · gate") == 8
    muls = [b for b in p.boxes.values() if b.role == "mul"]
    assert len(muls) == (len(net.blocks) if expand else 8)
    for mul in muls:
        (mx, mtop, _), (gx, gtop, gbottom) = where[mul.id], where[mul.beside]
        assert gx < mx - 40, mul.id                 # to the left of the path
        assert gtop <= mtop + 12 <= gbottom + 12    # level with the `×`


@pytest.mark.parametrize("expand", [False, True], ids=["collapsed", "expanded"])
def test_odd_gates(expand, dot_binary):
    net = compile_network(ODD_GATES)
    p = plan(net, expand=expand)
    assert_gates_drawn_beside(p)
    muls = [b for b in p.boxes.values() if b.role == "mul"]
    assert len(muls) == 4 * (len(net.blocks) if expand else 4)
    if not expand:  # the path after each `×` is a box of its own: main, main.1, ... add
        assert {"layer1.0/gate", "layer1.0/mul", "layer1.0/main.1", "layer1.0/gate.1",
                "layer1.0/gate.2", "layer1.0/add", "layer1.0/gate.3", "layer1.0/mul.3"} <= set(p.boxes)
        assert p.boxes["layer1.0/main.1"].header == "layer1.0 · gated"
        assert [b.header for b in p.boxes.values() if b.role == "gate"][:3] == ["gate", "attn · gate",
                                                                                "attn2 · gate"]
    texts, edge_classes, _ = svg_facts(to_digraph(net, expand=expand).pipe(format="svg"))
    assert "gate" in edge_classes
    if expand:
        assert all(f"{b} · gated" in texts for b in net.blocks)


# -- the command line -----------------------------------------------------------------------
@pytest.mark.parametrize("name, fmt", [
    ("a.svg", "svg"), ("a.PNG", "png"), ("a.pdf", "pdf"), ("a.dot", "dot"), ("a.gv", "dot"),
    ("a.txt", None), ("a", None),
])
def test_format_from_suffix(name, fmt):
    assert format_for(name) == fmt


def draw(capsys, *argv):
    rc = main(["draw", *map(str, argv)])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


@pytest.mark.parametrize("fmt, magic", [("svg", b"<?xml"), ("png", b"\x89PNG"), ("pdf", b"%PDF")])
def test_cli_renders_each_format(tmp_path, capsys, dot_binary, fmt, magic):
    out = tmp_path / f"net.{fmt}"
    rc, _, err = draw(capsys, SPECS / "resnet18.rnet", "-o", out)
    assert (rc, err) == (0, "")
    assert out.read_bytes().startswith(magic)
    assert os.listdir(tmp_path) == [out.name]


def test_cli_dot_needs_no_binary(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    out = tmp_path / "net.txt"
    rc, _, _ = draw(capsys, SPECS / "cifar_resnet.rnet", "-o", out, "--format", "dot",
                    "--expand", "--set", "depth=32", "--input", "3x64x64")
    assert rc == 0
    text = out.read_text()
    assert text.startswith("digraph cifar_resnet {") and "layer3.4 · basic" in text
    assert 'label=" 3x64x64 "' in text and 'label=" 64x16x16 "' in text


@pytest.mark.parametrize("argv, code, message", [
    (["-o", "{tmp}/net.txt"], 2, "cannot tell the format from `net.txt`"),
    (["-o", "{tmp}/missing/net.svg"], 2, "no such folder"),
    (["-o", "{tmp}"], 2, "is a folder"),
    (["-o", "{tmp}/net.svg", "--set", "depth=21"], 1, "6n+2"),
])
def test_cli_errors(tmp_path, capsys, argv, code, message):
    argv = [a.format(tmp=tmp_path) for a in argv]
    rc, _, err = draw(capsys, SPECS / "cifar_resnet.rnet", *argv)
    assert rc == code and message in err
    assert not (tmp_path / "net.svg").exists() and not (tmp_path / "net.txt").exists()


def assert_missing_dot_reported(rc: int, err: str, folder: Path, before: dict[str, bytes]):
    assert rc == 1
    for hint in ("`dot`", "apt-get install graphviz", "brew install graphviz", "conda install",
                 "--format dot"):
        assert hint in err
    assert "Traceback" not in err
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # nothing new or changed


def test_missing_dot_on_path(tmp_path, capsys, monkeypatch):
    (tmp_path / "old.svg").write_bytes(b"an older diagram")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    for name in ("new.svg", "old.svg", "new.png"):
        rc, _, err = draw(capsys, SPECS / "resnet50.rnet", "-o", tmp_path / name)
        assert_missing_dot_reported(rc, err, tmp_path, {"old.svg": b"an older diagram"})


def test_dot_vanishing_after_the_path_check(tmp_path, capsys, monkeypatch):
    # shutil.which finds one, but graphviz cannot run it: graphviz.ExecutableNotFound
    monkeypatch.setattr(shutil, "which", lambda name: "/usr/bin/dot")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    rc, _, err = draw(capsys, SPECS / "resnet18.rnet", "-o", tmp_path / "net.pdf")
    assert_missing_dot_reported(rc, err, tmp_path, {})


def test_failing_dot_leaves_no_partial_file(tmp_path, capsys, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "dot"
    # reads its input first, as dot does, so the failure is the exit status, not a broken pipe
    # (`cat` by its full path: PATH holds only the fake dot below)
    cat = shutil.which("cat")
    fake.write_text(f"#!/bin/sh\n{cat} >/dev/null\necho '<svg partial'\necho 'out of memory' >&2\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    rc, _, err = draw(capsys, SPECS / "resnet18.rnet", "-o", out_dir / "net.svg")
    assert rc == 1 and "failed (exit 3)" in err and "out of memory" in err
    assert list(out_dir.iterdir()) == []


def test_missing_dot_in_a_real_process(tmp_path):
    env = dict(os.environ, PATH=str(tmp_path), PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-m", "resnet_dsl", "draw", str(SPECS / "wrn28_10.rnet"),
                           "-o", str(tmp_path / "wrn.svg")], env=env, capture_output=True, text=True)
    assert_missing_dot_reported(proc.returncode, proc.stderr, tmp_path, {})


def test_backend_imports_neither_graphviz_nor_torch_until_drawing():
    code = ("import sys, resnet_dsl.backends.graphviz, resnet_dsl.cli; resnet_dsl.cli.build_parser(); "
            "print(sorted(m for m in ('graphviz', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=str(REPO)), check=True).stdout
    assert out.strip() == "[]"


# -- the gallery ----------------------------------------------------------------------------
def test_gallery_is_up_to_date():
    """docs/gallery/*.dot match what the specs draw now (DOT, not SVG: dot's output varies
    between graphviz versions, ours does not)."""
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import gallery
    finally:
        sys.path.remove(str(REPO / "scripts"))
    assert gallery.stale() == [], "run: python scripts/gallery.py"
    for entry in gallery.GALLERY:
        for fmt in ("svg", "png"):
            assert (gallery.OUT / f"{entry.name}.{fmt}").exists()
    doc = (REPO / "docs" / "diagrams.md").read_text()
    assert all(f"gallery/{e.name}.png" in doc for e in gallery.GALLERY)


# -- splits -------------------------------------------------------------------------------

def test_a_split_is_drawn_as_parts_side_by_side_joined_at_cat():
    """Res2Net's `split 4`: four part boxes read from the box before the split, each into
    the `cat`; in the repeats (which add the previous part), part p feeds part p+1."""
    net = compile_network(SPECS / "zoo" / "res2net50_26w_4s.rnet", params={"size": 64})
    p = plan(net)
    first, later = "layer1.0", "layer1.1-2"   # the first block, and the run of its repeats
    for run in (first, later):
        parts = [p.boxes[f"{run}/split1.{i}"] for i in range(4)]
        assert [b.role for b in parts] == ["part"] * 4
        assert [b.members[0].op for b in parts] == ["slice"] * 4
        assert p.boxes[f"{run}/cat1"].role == "cat"
        edges = {(e.src, e.dst) for e in p.edges}
        assert all((b.id, f"{run}/cat1") in edges for b in parts)
        assert all((f"{run}/main", b.id) in edges for b in parts)
        assert (f"{run}/cat1", f"{run}/main.1") in edges      # the path goes on after `cat`
    assert p.boxes[f"{first}/main"].header == "layer1.0 · res2net_bottleneck"
    hierarchy = {(e.src, e.dst) for e in p.edges}
    assert (f"{later}/split1.0", f"{later}/split1.1") in hierarchy          # add_previous
    assert (f"{first}/split1.0", f"{first}/split1.1") not in hierarchy      # a first block
    assert box_graph_is_acyclic(p)
    assert "cat" in to_digraph(net).source
