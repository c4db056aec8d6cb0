"""Block replay (frontend/replay.py) is an optimisation only: a stage's repeats stamped
from the first clean instance give the same IR, node for node and field for field, as
lowering every repeat's statements; and a limit met inside a replayed stage is reported
as it is without replay."""

import pytest
from conftest import REPO

from resnet_dsl.compiler import compile_network
from resnet_dsl.errors import RnetError
from resnet_dsl.frontend import replay
from resnet_dsl.limits import DEFAULT_LIMITS

SPECS = sorted(REPO.glob("specs/*.rnet")) + sorted(REPO.glob("specs/zoo/*.rnet"))


def _without_replay(monkeypatch):
    monkeypatch.setattr(replay, "key", lambda *a, **k: None)


def _networks():
    from resnet_dsl.frontend.source import load_program

    for path in SPECS:
        program = load_program(path)
        names = [n.name for n in program.main.module.networks]
        for name in names:
            yield pytest.param(path, name, id=f"{path.stem}:{name}")


SCHEDULE = """
network sched(depth = 3) {
  input 3x16x16
  conv 3x3 8
  stage x depth rate_block(8) shortcut=proj
  stage x depth rate_block(16) stride=2 shortcut=proj
  avgpool global
  flatten
  fc 10
}

block rate_block(out, stride = 1) {
  conv 3x3 out stride=stride
  bn
  relu
  if block_index == 1 {
    conv 1x1 out as odd
  }
  drop_path 0.2 * net_block_index / 6
  add
  relu
}
"""


@pytest.mark.parametrize("path,name", list(_networks()))
def test_replay_gives_the_same_ir(path, name, monkeypatch):
    fast = compile_network(path, network=name)
    _without_replay(monkeypatch)
    slow = compile_network(path, network=name)
    assert fast.model_dump_json() == slow.model_dump_json()
    assert [type(n) for n in fast.nodes.values()] == [type(n) for n in slow.nodes.values()]


def test_replay_follows_indices_and_schedules(monkeypatch):
    calls = []
    real = replay.replay
    monkeypatch.setattr(replay, "replay", lambda *a: calls.append(a[2]) or real(*a))
    fast = compile_network(SCHEDULE)
    assert calls == []  # every block reads net_block_index: nothing may be stamped
    monkeypatch.undo()
    _without_replay(monkeypatch)
    assert fast.model_dump_json() == compile_network(SCHEDULE).model_dump_json()
    assert "layer1.1.odd" in fast.nodes and "layer1.2.odd" not in fast.nodes


def test_replay_stamps_repeats(monkeypatch):
    calls = []
    real = replay.replay
    monkeypatch.setattr(replay, "replay", lambda *a: calls.append(a[2]) or real(*a))
    compile_network(REPO / "specs" / "resnet50.rnet")
    # layer1.0 binds as its repeats do (stride 1); the other stages' first blocks take the
    # stride, so their second block is the first of its kind and the rest are stamped
    assert calls == ["layer1.1", "layer1.2", "layer2.2", "layer2.3",
                     *[f"layer3.{i}" for i in range(2, 6)], "layer4.2"]


@pytest.mark.parametrize("limit", ["max_layers", "max_steps"])
def test_limits_inside_a_replayed_stage(limit, monkeypatch):
    spec = REPO / "specs" / "cifar_resnet110.rnet"
    limits = DEFAULT_LIMITS.with_overrides(**{limit: 150})
    with pytest.raises(RnetError) as fast:
        compile_network(spec, limits=limits)
    _without_replay(monkeypatch)
    with pytest.raises(RnetError) as slow:
        compile_network(spec, limits=limits)
    assert [(d.code, d.message, d.span) for d in fast.value.diagnostics] == \
        [(d.code, d.message, d.span) for d in slow.value.diagnostics]
    assert fast.value.diagnostics[0].code == "E601"


def test_an_error_in_a_repeat_is_reported_each_time(monkeypatch):
    spec = """
network bad {
  input 3x16x16
  stage x3 broken(8)
}
block broken(out, stride = 1) {
  conv 3x3 out groups=3
  bn
  add
}
"""
    with pytest.raises(RnetError) as fast:
        compile_network(spec)
    _without_replay(monkeypatch)
    with pytest.raises(RnetError) as slow:
        compile_network(spec)
    assert [str(d) for d in fast.value.diagnostics] == [str(d) for d in slow.value.diagnostics]


def test_parser_cache_location(tmp_path, monkeypatch):
    """The LALR tables are cached (a pickle) only in a folder this user owns and nobody
    else can write; RNETC_CACHE_DIR="" turns it off; a fresh process loads the file."""
    import os
    import subprocess
    import sys

    from resnet_dsl.frontend.parse import parser_cache

    monkeypatch.setenv("RNETC_CACHE_DIR", "")
    assert parser_cache() is None
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    monkeypatch.setenv("RNETC_CACHE_DIR", str(shared))
    assert parser_cache() is None
    own = tmp_path / "own"
    monkeypatch.setenv("RNETC_CACHE_DIR", str(own))
    assert parser_cache() == own / "parser.lark-cache"
    code = ("from resnet_dsl.compiler import compile_network;"
            "print(compile_network('network t { input 3x8x8; conv 3x3 4 }').totals.params)")
    env = {**os.environ, "RNETC_CACHE_DIR": str(own)}
    for _ in range(2):  # the first process writes the file, the second reads it
        out = subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO,
                             capture_output=True, text=True, check=True)
        assert out.stdout.strip() == "108" and not out.stderr
    assert (own / "parser.lark-cache").stat().st_size > 1000
    assert own.stat().st_mode & 0o077 == 0


def test_prelude_tree_cache(tmp_path, monkeypatch):
    """The prelude's parsed tree is kept beside the LALR tables: a fresh process loads
    it, the tree equals a fresh parse, a damaged file is replaced, no folder no file."""
    import os
    import subprocess
    import sys

    from resnet_dsl.errors import PRELUDE_NAME
    from resnet_dsl.frontend import source
    from resnet_dsl.frontend.parse import parse

    text = source.PRELUDE_PATH.read_text(encoding="utf-8")
    monkeypatch.setenv("RNETC_CACHE_DIR", str(tmp_path))
    tree = source._parse_prelude(text)
    assert tree == parse(text, PRELUDE_NAME)
    (cached,) = tmp_path.glob("prelude-*.pickle")
    stamp = cached.stat().st_mtime_ns
    assert source._parse_prelude(text) == tree and cached.stat().st_mtime_ns == stamp  # loaded
    cached.write_bytes(b"not a pickle")
    assert source._parse_prelude(text) == tree
    assert cached.read_bytes() != b"not a pickle"
    import pickle

    cached.write_bytes(pickle.dumps(os.getcwd))  # a pickle that is not a tree is not used
    with cached.open("rb") as f, pytest.raises(pickle.UnpicklingError):
        source._TreeUnpickler(f).load()
    assert source._parse_prelude(text) == tree
    assert source._parse_prelude(text + "\n# an edit\n") == parse(text + "\n# an edit\n", PRELUDE_NAME)
    assert len(list(tmp_path.glob("prelude-*.pickle"))) == 1  # the other version's file is gone
    code = ("from resnet_dsl.compiler import compile_network;"
            "print(compile_network('network t { input 3x8x8; stage x1 basic(4) }').totals.params)")
    env = {**os.environ, "RNETC_CACHE_DIR": str(tmp_path / "fresh")}
    for _ in range(2):  # the first process writes the tree, the second reads it
        out = subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO,
                             capture_output=True, text=True, check=True)
        assert out.stdout.strip() == "288" and not out.stderr
    assert len(list((tmp_path / "fresh").glob("prelude-*.pickle"))) == 1
    monkeypatch.setenv("RNETC_CACHE_DIR", "")
    assert source._parse_prelude(text) == tree
