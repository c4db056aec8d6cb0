"""Resource limits (real ResNets pass, absurd specs are refused fast, before anything is
allocated) and file safety (imports stay in the spec's folder tree; no eval/exec)."""

from __future__ import annotations

import ast
import os
import time
from pathlib import Path
from dataclasses import fields

import pytest
from conftest import REPO, SPECS

from resnet_dsl.compiler import compile_network
from resnet_dsl.errors import RnetError
from resnet_dsl.limits import DEFAULT_LIMITS, Limits

WIDE_RESNET101_2 = """
network wide_resnet101_2 {
  input 3x224x224
  stem { conv 7x7 64 stride=2; bn; relu; maxpool 3x3 stride=2 padding=1 }
  stage x3 bottleneck(64, base_width=128)
  stage x4 bottleneck(128, base_width=128) stride=2
  stage x23 bottleneck(256, base_width=128) stride=2
  stage x3 bottleneck(512, base_width=128) stride=2
  head { avgpool global; flatten; fc 1000 }
}
"""


def test_real_resnets_fit_the_default_limits():
    assert compile_network(SPECS / "preact_resnet1001.rnet").totals.params == 10_327_706
    assert compile_network(SPECS / "wrn28_10.rnet").totals.params == 36_479_194
    # torchvision's wide_resnet101_2 has 126,886,696 parameters
    assert compile_network(WIDE_RESNET101_2).totals.params == 126_886_696
    cifar1202 = compile_network(SPECS / "cifar_resnet.rnet", params={"depth": 1202})
    assert len(cifar1202.nodes) < DEFAULT_LIMITS.max_layers


ABSURD = [
    ("repeats", "network n { input 3x8x8; stage x 1000000000 basic(8) }"),
    ("layers", "network n { input 3x8x8; stage x 5000 bottleneck(8) }"),
    ("channels", "network n { input 3x8x8; conv 3x3 1000000 }"),
    ("input size", "network n { input 3x100000x100000; conv 3x3 8 }"),
    ("parameters", "network n { input 3x8x8; conv 1x1 60000; conv 7x7 60000; conv 7x7 60000 }"),
    ("activations", "network n { input 3x16000x16000; conv 3x3 60000 }"),
    ("kernel", "network n { input 3x8x8; conv 100000x100000 8 }"),
    ("padding", "network n { input 3x8x8; conv 3x3 8 padding=1000000000 }"),
    ("numbers", "network n { let a = 4611686018427387904 * 4611686018427387904; input 3x8x8 }"),
    ("nesting", "network n { input 3x8x8; let a = " + "+".join(["1"] * 5000) + " }"),
    ("block recursion", "block a(w) { a(w) }\nnetwork n { input 3x8x8; a(4) }"),
    ("exponential calls", "block a(n) { if n > 0 { a(n - 1); a(n - 1) } }\nnetwork n { input 3x8x8; a(40) }"),
]


@pytest.mark.parametrize("what,text", ABSURD, ids=[a for a, _ in ABSURD])
def test_absurd_specs_are_refused_fast(what, text):
    start = time.process_time()  # CPU time: CI machines are shared
    with pytest.raises(RnetError) as info:
        compile_network(text)
    elapsed = time.process_time() - start
    assert info.value.codes[0] in ("E601", "E602"), info.value.render()
    assert elapsed < 1.0, f"{what}: refused after {elapsed:.2f} s"


def test_file_size_limit(tmp_path):
    spec = tmp_path / "big.rnet"
    spec.write_text("# " + "x" * (DEFAULT_LIMITS.max_file_bytes + 10) + "\nnetwork n { input 3x8x8 }\n")
    with pytest.raises(RnetError) as info:
        compile_network(spec)
    assert info.value.codes == ["E601"] and "bytes" in info.value.diagnostics[0].message


def test_limits_are_configurable():
    tight = Limits().with_overrides(max_layers=50)
    with pytest.raises(RnetError) as info:
        compile_network(SPECS / "resnet50.rnet", limits=tight)
    assert info.value.codes == ["E601"]
    loose = Limits().with_overrides(max_repeats=20_000, max_layers=20_000, max_steps=200_000)
    text = "block plain(o) { relu }\nnetwork n { input 3x8x8; stage x 12000 plain(3) }"
    with pytest.raises(RnetError):
        compile_network(text)  # over max_repeats by default
    net = compile_network(text, limits=loose)
    assert len(net.stages["layer1"].blocks) == 12_000
    with pytest.raises(ValueError):
        Limits().with_overrides(max_bananas=1)
    for bad in (0, -1, True, 2.5):
        with pytest.raises(ValueError, match="must be a positive integer"):
            Limits().with_overrides(max_layers=bad)


@pytest.mark.parametrize("what,text", ABSURD, ids=[a for a, _ in ABSURD])
def test_every_limit_error_says_which_limit_to_raise(what, text):
    """The help names the limit that fired, as the CLI and Python spell it."""
    with pytest.raises(RnetError) as info:
        compile_network(text)
    d = info.value.diagnostics[0]
    if d.code == "E601":
        name = d.help.split("--limit ")[1].split("=")[0]
        assert hasattr(DEFAULT_LIMITS, name), d.help
        assert f"limits=Limits({name}=N)" in d.help
        value = getattr(DEFAULT_LIMITS, name)   # the message quotes that limit's value
        shown = f"{value / 2**30:,.1f} GiB" if name.endswith("_bytes") and value >= 2**30 \
            else f"{value:,}" if value >= 1000 else str(value)
        assert shown in d.message + d.help, (name, d.message, d.help)


def test_import_depth_limit(tmp_path):
    for i in range(20):
        (tmp_path / f"f{i}.rnet").write_text(f'import "f{i + 1}.rnet"\n')
    (tmp_path / "f20.rnet").write_text("block b(o) { conv 1x1 o }\n")
    main = tmp_path / "main.rnet"
    main.write_text('import "f0.rnet"\nnetwork n { input 3x8x8; b(4) }\n')
    with pytest.raises(RnetError) as info:
        compile_network(main)
    assert "E601" in info.value.codes


def test_imports_resolve_relative_to_the_importing_file(tmp_path):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "blocks.rnet").write_text('import "more.rnet"\nblock a(o) { b(o); relu }\n')
    (tmp_path / "lib" / "more.rnet").write_text("block b(o) { conv 1x1 o }\n")
    main = tmp_path / "main.rnet"
    main.write_text('import "lib/blocks.rnet"\nnetwork n { input 3x8x8; a(4) }\n')
    net = compile_network(main)
    assert net.output_shape == (4, 8, 8)
    # blocks are visible only where imported: main.rnet does not see `b`
    main.write_text('import "lib/blocks.rnet"\nnetwork n { input 3x8x8; b(4) }\n')
    with pytest.raises(RnetError) as info:
        compile_network(main)
    assert info.value.codes == ["E101"]


def test_imports_cannot_escape_by_dotdot_or_symlink(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "evil.rnet").write_text("block b(o) { conv 1x1 o }\n")
    project = tmp_path / "project"
    project.mkdir()
    os.symlink(outside / "evil.rnet", project / "link.rnet")
    os.symlink(outside, project / "linkdir")
    for target in ("../outside/evil.rnet", "link.rnet", "linkdir/evil.rnet", str(outside / "evil.rnet")):
        main = project / "main.rnet"
        main.write_text(f'import "{target}"\nnetwork n {{ input 3x8x8; b(4) }}\n')
        with pytest.raises(RnetError) as info:
            compile_network(main)
        assert info.value.codes[0] == "E503", target
    # ...unless a search path admits the folder
    main.write_text('import "../outside/evil.rnet"\nnetwork n { input 3x8x8; b(4) }\n')
    assert compile_network(main, search_paths=(outside,)).output_shape == (4, 8, 8)


def test_no_eval_or_exec_in_the_package():
    forbidden = {"eval", "exec", "compile", "__import__"}
    for path in (REPO / "resnet_dsl").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id not in forbidden, f"{path}:{node.lineno} calls {node.func.id}"


def test_every_torch_load_is_weights_only():
    """Checkpoints are a code-execution vector: every torch.load in the package passes
    weights_only=True, and nothing unpickles with the plain pickle module."""
    for path in (REPO / "resnet_dsl").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            owner = func.value.id if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) else ""
            if name == "load" and owner == "torch":
                flags = {k.arg: k.value for k in node.keywords}
                assert "weights_only" in flags and getattr(flags["weights_only"], "value", None) is True, \
                    f"{path}:{node.lineno}: torch.load without weights_only=True"
            if owner == "pickle" and name in ("load", "loads"):
                raise AssertionError(f"{path}:{node.lineno}: pickle.{name} (use a restricted unpickler)")


def test_the_language_reference_lists_every_limit_with_its_default():
    text = (REPO / "docs" / "language.md").read_text(encoding="utf-8")
    for field in fields(DEFAULT_LIMITS):
        row = next((line for line in text.splitlines() if line.startswith(f"| `{field.name}` |")), None)
        assert row is not None, f"docs/language.md has no row for {field.name}"
        assert f"| {getattr(DEFAULT_LIMITS, field.name):,} |" in row, row


def test_devices_and_folders_are_not_read_as_specs(tmp_path):
    """/dev/zero would never end; a folder is not a file: both are refused before reading."""
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.rnet").write_text('import "sub"\nnetwork n { input 3x8x8 }\n')
    with pytest.raises(RnetError) as info:
        compile_network(tmp_path / "a.rnet")
    assert info.value.codes == ["E501"] and "is a folder" in info.value.diagnostics[0].message
    if os.path.exists("/dev/zero"):
        with pytest.raises(RnetError) as info:
            compile_network(Path("/dev/zero"))
        assert info.value.codes == ["E002"] and "not a regular file" in info.value.render()
