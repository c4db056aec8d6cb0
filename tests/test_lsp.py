"""The language server: `Document` (what it answers) as tables of cases, then a real LSP
session with `python -m resnet_dsl lsp` as a subprocess, driven by pygls's client."""

import asyncio
import os
import subprocess
import sys
import textwrap

import pytest
from conftest import REPO, SPECS

from resnet_dsl.frontend.source import PRELUDE_PATH
from resnet_dsl.tooling.document import Document, Range

LIB = textwrap.dedent("""\
    # A block for the tests.
    block twice(out, stride = 1) {
      conv 3x3 out stride=stride
      bn
      relu
      conv 3x3 out
      bn
      add
      relu
    }

    block stem_block(out) {
      conv 3x3 out
      bn
    }
    """)

MAIN = textwrap.dedent("""\
    import "lib.rnet"

    network main(width = 8) {
      input 3x16x16
      stem_block(width)
      stage x2 twice(width) shortcut=proj
      stage x2 twice(width * 2) stride=2
      head {
        avgpool global
        flatten
        fc 10
      }
    }
    """)


@pytest.fixture
def project(tmp_path):
    (tmp_path / "lib.rnet").write_text(LIB)
    (tmp_path / "main.rnet").write_text(MAIN)
    return tmp_path


def _doc(project, text=MAIN, name="main.rnet") -> Document:
    return Document(text, project / name)


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.split("\n")) if needle in line)


# ---- diagnostics -----------------------------------------------------------------------

@pytest.mark.parametrize("text, code, range_", [
    # an unknown option: the span of its name
    ("network n {\n  input 3x8x8\n  conv 3x3 4 strides=2\n}\n", "E104", Range(2, 13, 2, 20)),
    # a syntax error at the end of a line: an empty range there
    ("network n {\n  input 3x8x8\n  conv 3x3 4 stride=\n}\n", "E001", Range(2, 20, 2, 20)),
    # an unknown block, in a stage
    ("network n {\n  input 3x8x8\n  stage x2 twise(4)\n}\n", "E101", Range(2, 11, 2, 16)),
    # a wrong shortcut: the whole stage line
    ("network n {\n  input 3x8x8\n  stage x1 basic(4) stride=2 shortcut=identity\n}\n", "E301",
     Range(2, 2, 2, 46)),
    # a failed require: the condition
    ('network n(d = 3) {\n  require d % 2 == 0, "even"\n  input 3x8x8\n}\n', "E401", Range(1, 10, 1, 20)),
    # UTF-16 columns: the emoji before the error counts two
    ('network n {\n  input 3x8x8; require true, "\U0001F600"; conv 3x3 4 strides=2\n}\n', "E104",
     Range(1, 46, 1, 53)),
])
def test_diagnostics(project, text, code, range_):
    problems = _doc(project, text).problems
    assert [(p.code, p.range) for p in problems] == [(code, range_)]


def test_clean_documents_have_no_problems(project):
    assert _doc(project).problems == []
    spec = SPECS / "cifar_resnet20.rnet"
    assert Document(spec.read_text(), spec).problems == []


@pytest.mark.parametrize("lib_text, code", [
    (LIB.replace("conv 3x3 out\n  bn\n  add", "conv 3x3 out\n  batchnorm\n  add"), "E101"),
    (LIB.replace("stride=stride", "stride=", 1), "E001"),
])
def test_errors_in_imported_files_go_on_the_import_line(project, lib_text, code):
    (project / "lib.rnet").write_text(lib_text)
    (problem,) = _doc(project).problems
    assert problem.code == code
    assert problem.range == Range(0, 0, 0, 17)  # import "lib.rnet"
    assert "lib.rnet:" in problem.message
    assert problem.related[0].location.path == str(project / "lib.rnet")


def test_unsaved_text_is_compiled_not_the_file(project):
    edited = MAIN.replace("fc 10", "fc 10 biass=true")
    assert [p.code for p in _doc(project, edited).problems] == ["E104"]


# ---- hover -----------------------------------------------------------------------------

@pytest.mark.parametrize("needle, column, expected", [
    ("stage x2 twice(width) shortcut", 4, ["**layer1**: 2 × `twice`", "output 8x16x16"]),
    ("stage x2 twice(width * 2)", 4, ["**layer2**", "stride 2", "output 16x8x8", "8,352 parameters"]),
    ("fc 10", 4, ["**fc** `fc`", "out_features=10", "output 10", "170 parameters"]),
    ("stem_block(width)", 4, ["block call: 2 layers", "output 8x16x16"]),
    ("network main", 9, ["**main**(width = 8)", "input 3x16x16 → output 10", "| layer2 |"]),
])
def test_hover_shows_what_a_line_compiled_to(project, needle, column, expected):
    line = _line_of(MAIN, needle)
    text = _doc(project).hover(line, column)
    for part in expected:
        assert part in text


def test_hover_in_a_block_lists_the_layers_each_instance_made(project):
    text = LIB + MAIN.replace('import "lib.rnet"\n', "")
    doc = _doc(project, text)
    hover = doc.hover(2, 4)  # the block's first conv
    assert hover.startswith("this line makes 4 layers")
    assert "| layer1.0.conv1 | 8x16x16 | 576 |" in hover and "| layer2.0.conv1 | 16x8x8 |" in hover
    # lib.rnet alone defines no network: nothing was compiled, the layer's usage is shown
    hover = Document(LIB, project / "lib.rnet").hover(2, 4)
    assert "conv KERNEL OUT" in hover and "layers" not in hover


@pytest.mark.parametrize("text, line, column, expected", [
    ("network n {\n  input 3x8x8\n}\nblock b { conv 1x1 4; relu }\n", 3, 12, "KERNEL OUT [stride=1]"),
    ("block b(w) {\n  basic(w)\n}\n", 1, 4, "block basic(out, stride = 1)"),
])
def test_hover_on_names_shows_signatures(project, text, line, column, expected):
    assert expected in _doc(project, text).hover(line, column)


GATED = textwrap.dedent("""\
    block gated(out, drop = 0.2, stride = 1) {
      conv 3x3 out stride=stride
      groupnorm 2 as gn
      relu
      branch
      avgpool global
      conv 1x1 2 bias=true as fc1
      relu
      conv 1x1 out bias=true as fc2
      sigmoid
      mul
      eca(out) as se
      if block_index > 0 {
        drop_path drop * net_block_index / 3
      }
      add
      relu
    }

    network gated_net {
      input 3x16x16
      stem {
        deep_stem(4, 4, 8) as conv1
        bn
        relu
      }
      stage x2 gated(8)
      stage x2 gated(16) stride=2
      head {
        avgpool global
        flatten
        fc 10
      }
    }
    """)


@pytest.mark.parametrize("needle, expected", [
    ("groupnorm 2 as gn", ["makes 4 layers", "| layer1.0.gn | 8x8x8 | 16 |", "| layer2.1.gn | 16x4x4 | 32 |"]),
    ("as fc1", ["| layer1.0.fc1 | 2x1x1 | 18 |", "| layer2.0.fc1 | 2x1x1 | 34 |"]),
    ("  mul", ["| layer1.0.mul | 8x8x8 | 0 |"]),  # the gate's product has the value's shape
    ("branch", ["starts a side branch", "makes no layer"]),
    # the prelude's ECA gate, once per block: four calls of four layers (pool, conv, sigmoid, mul)
    ("eca(out) as se", ["this call is made 4 times (16 layers, 12 parameters in all)",
                        "| layer1.0 | 4 | 8x8x8 | 3 |", "| layer2.1 | 4 | 16x4x4 | 3 |"]),
    # a first block that differs, by block_index: only the second block of each stage drops
    ("drop_path", ["makes 2 layers", "| layer1.1.drop_path | 8x8x8 | 0 |", "| layer2.1.drop_path |"]),
    ("deep_stem(4, 4, 8) as conv1", ["block call: 7 layers, 556 parameters", "(`conv1.6`)"]),
])
def test_hover_on_gates_scopes_and_new_layers(project, needle, expected):
    doc = _doc(project, GATED, "gated.rnet")
    assert doc.problems == []
    line = _line_of(GATED, needle)
    text = doc.hover(line, GATED.split("\n")[line].index(needle.strip()) + 1)
    for part in expected:
        assert part in text, text


@pytest.mark.parametrize("edit, code, needle", [
    # a gate outside a stage's blocks, where nothing can hold the branch
    (("  stem {\n", "  stem {\n    branch\n    sigmoid\n    mul\n"), "E306", "    branch"),
    # a gate of the wrong shape: 2 channels against the value's 8
    (("conv 1x1 out bias=true as fc2", "conv 1x1 2 bias=true as fc2"), "E305", "  mul"),
    # GroupNorm groups that do not divide the channels
    (("groupnorm 2 as gn", "groupnorm 3 as gn"), "E303", "groupnorm 3"),
    # a name given twice in one scope
    (("as fc2", "as fc1"), "E103", "as fc1\n"),
    # drop_path's probability out of range
    (("drop * net_block_index / 3", "1.5"), "E203", "drop_path 1.5"),
])
def test_diagnostics_on_gates_scopes_and_new_layers(project, edit, code, needle):
    text = GATED.replace(*edit, 1)
    problems = _doc(project, text, "gated.rnet").problems
    assert [p.code for p in problems][:1] == [code], problems
    lines = text.split("\n")
    if needle.endswith("\n"):  # the second occurrence
        rows = [i for i, line in enumerate(lines) if needle.strip() in line]
        assert problems[0].range.start_line == rows[-1]
    else:
        assert problems[0].range.start_line == _line_of(text, needle)


def test_hover_on_a_zoo_spec(project):
    spec = SPECS / "zoo" / "seresnet50.rnet"
    text = spec.read_text()
    doc = Document(text, spec)
    assert doc.problems == []
    hover = doc.hover(_line_of(text, "stage x6 se_bottleneck"), 4)
    assert "**layer3**: 6 × `se_bottleneck`" in hover and "output 1024x14x14" in hover
    assert "28,088,024 parameters" in doc.hover(_line_of(text, "network seresnet50"), 9)


# ---- definition ------------------------------------------------------------------------

@pytest.mark.parametrize("needle, word, path, line", [
    ("stage x2 twice(width) shortcut", "twice", "lib.rnet", 1),
    ("stem_block(width)", "stem_block", "lib.rnet", 11),
    ('import "lib.rnet"', "lib.rnet", "lib.rnet", 0),
])
def test_definition(project, needle, word, path, line):
    row = _line_of(MAIN, needle)
    found = _doc(project).definition(row, MAIN.split("\n")[row].index(word) + 2)
    assert found.path == str(project / path)
    assert found.range.start_line == line


def test_definition_of_prelude_blocks_and_aliased_networks():
    spec = SPECS / "resnet18.rnet"
    text = spec.read_text()
    row = _line_of(text, "stage x2 basic(64)")
    found = Document(text, spec).definition(row, text.split("\n")[row].index("basic") + 1)
    assert found.path == str(PRELUDE_PATH)
    assert PRELUDE_PATH.read_text().split("\n")[found.range.start_line].startswith("block basic(")
    alias = SPECS / "wrn28_10.rnet"
    text = alias.read_text()
    row = _line_of(text, "= wrn(")
    found = Document(text, alias).definition(row, text.split("\n")[row].index("= wrn(") + 3)
    assert found.path == str(SPECS / "wrn.rnet") and found.range.start_line == 4


# ---- completion ------------------------------------------------------------------------

def test_completion(project):
    doc = _doc(project)
    items = {c.label: c.kind for c in doc.completions(_line_of(MAIN, "fc 10"), 4)}
    assert items["conv"] == "layer" and items["twice"] == "block" and items["basic"] == "block"
    assert items["stage"] == "keyword" and items["max"] == "function" and items["width"] == "variable"
    row = _line_of(MAIN, "shortcut=proj")
    column = MAIN.split("\n")[row].index("shortcut=") + len("shortcut=")
    assert {c.label for c in doc.completions(row, column)} == {
        "identity", "zeropad", "proj", "proj_all", "avgproj", "A", "B", "C", "D"}


# ---- a real session --------------------------------------------------------------------

BROKEN = MAIN.replace("fc 10", "fc 10 biass=true")


def _uri(path) -> str:
    return path.resolve().as_uri()


async def _session(project):
    from lsprotocol import types as lsp
    from pygls.lsp.client import LanguageClient

    client = LanguageClient("rnetc-tests", "1")
    published: asyncio.Queue = asyncio.Queue()

    @client.feature(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    def _diagnostics(params):
        published.put_nowait(params)

    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    await client.start_io(sys.executable, "-m", "resnet_dsl", "lsp", cwd=str(REPO), env=env)
    wait = lambda aw: asyncio.wait_for(aw, timeout=60)  # noqa: E731
    try:
        result = await wait(client.initialize_async(lsp.InitializeParams(
            capabilities=lsp.ClientCapabilities(), root_uri=_uri(project))))
        caps = result.capabilities
        assert caps.hover_provider and caps.definition_provider and caps.completion_provider
        client.initialized(lsp.InitializedParams())

        uri = _uri(project / "main.rnet")
        doc = lsp.TextDocumentIdentifier(uri=uri)
        client.text_document_did_open(lsp.DidOpenTextDocumentParams(
            text_document=lsp.TextDocumentItem(uri=uri, language_id="rnet", version=1, text=BROKEN)))
        params = await wait(published.get())
        assert params.uri == uri
        (diagnostic,) = params.diagnostics
        row = _line_of(BROKEN, "biass")
        start = BROKEN.split("\n")[row].index("biass")
        assert diagnostic.code == "E104" and diagnostic.source == "rnetc"
        assert (diagnostic.range.start.line, diagnostic.range.start.character,
                diagnostic.range.end.line, diagnostic.range.end.character) == (row, start, row, start + 5)
        assert "did you mean `bias`?" in diagnostic.message

        client.text_document_did_change(lsp.DidChangeTextDocumentParams(
            text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=2),
            content_changes=[lsp.TextDocumentContentChangeWholeDocument(text=MAIN)]))
        params = await wait(published.get())
        assert not params.diagnostics

        row = _line_of(MAIN, "stage x2 twice(width) shortcut")
        hover = await wait(client.text_document_hover_async(lsp.HoverParams(
            text_document=doc, position=lsp.Position(line=row, character=4))))
        assert "**layer1**" in hover.contents.value

        column = MAIN.split("\n")[row].index("twice") + 1
        found = await wait(client.text_document_definition_async(lsp.DefinitionParams(
            text_document=doc, position=lsp.Position(line=row, character=column))))
        assert found.uri == _uri(project / "lib.rnet") and found.range.start.line == 1

        found = await wait(client.text_document_definition_async(lsp.DefinitionParams(
            text_document=doc, position=lsp.Position(line=0, character=10))))
        assert found.uri == _uri(project / "lib.rnet")

        completion = await wait(client.text_document_completion_async(lsp.CompletionParams(
            text_document=doc, position=lsp.Position(line=_line_of(MAIN, "fc 10"), character=4))))
        labels = {item.label for item in completion.items}
        assert {"conv", "bn", "twice", "basic", "stage", "require"} <= labels

        client.text_document_did_change(lsp.DidChangeTextDocumentParams(
            text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=3),
            content_changes=[lsp.TextDocumentContentChangeWholeDocument(text=MAIN.replace("  fc 10", "fc   10"))]))
        await wait(published.get())
        edits = await wait(client.text_document_formatting_async(lsp.DocumentFormattingParams(
            text_document=doc, options=lsp.FormattingOptions(tab_size=2, insert_spaces=True))))
        assert [e.new_text for e in edits] == [MAIN]

        client.text_document_did_save(lsp.DidSaveTextDocumentParams(text_document=doc))
        params = await wait(published.get())
        assert params.uri == uri and not params.diagnostics
        client.text_document_did_close(lsp.DidCloseTextDocumentParams(text_document=doc))
        params = await wait(published.get())
        assert params.uri == uri and not params.diagnostics

        await wait(client.shutdown_async(None))
        client.exit(None)
        await wait(client.stop())
        return client._server.returncode
    finally:
        server = client._server
        if server is not None and server.returncode is None:
            server.kill()
            await server.wait()


def test_lsp_session(project):
    returncode = asyncio.run(_session(project))
    assert returncode == 0


def test_lsp_without_pygls_says_what_to_install(tmp_path):
    # A `pygls` that cannot be imported, first on the path.
    (tmp_path / "pygls").mkdir()
    (tmp_path / "pygls" / "__init__.py").write_text("raise ModuleNotFoundError(name='pygls')\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), str(REPO)]))
    run = subprocess.run([sys.executable, "-m", "resnet_dsl", "lsp"], env=env, capture_output=True,
                         text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert run.returncode == 2
    assert "pip install 'rnetc[lsp]'" in run.stderr


def test_other_commands_do_not_import_pygls():
    code = ("import sys; from resnet_dsl.cli import main; main(['check', '-q', 'specs/resnet18.rnet']);"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pygls', 'lsprotocol', 'torch')))")
    run = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60,
                         env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert run.stdout.strip() == "[]"
