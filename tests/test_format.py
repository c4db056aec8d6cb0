"""`rnetc fmt`: golden layouts, the shipped specs, and the command line.

Golden cases live in tests/format/: NAME.rnet.in is written carelessly, NAME.rnet is its
canonical layout (regenerate with RNETC_UPDATE_GOLDEN=1 and read the diff).
"""

import os
import stat

import pytest
from conftest import REPO, spec_files
from format_support import ast_without_spans, comment_texts, irs_without_spans

from resnet_dsl.cli import main
from resnet_dsl.errors import RnetError
from resnet_dsl.frontend.source import PRELUDE_PATH
from resnet_dsl.tooling.format import format_source, is_formatted

GOLDEN = REPO / "tests" / "format"
CASES = sorted(p.name[: -len(".rnet.in")] for p in GOLDEN.glob("*.rnet.in"))
SHIPPED = [*spec_files(), PRELUDE_PATH]


@pytest.mark.parametrize("case", CASES)
def test_golden_layout(case):
    source = (GOLDEN / f"{case}.rnet.in").read_text(encoding="utf-8")
    expected_path = GOLDEN / f"{case}.rnet"
    formatted = format_source(source, f"{case}.rnet")
    if os.environ.get("RNETC_UPDATE_GOLDEN"):
        expected_path.write_text(formatted, encoding="utf-8")
    assert formatted == expected_path.read_text(encoding="utf-8")
    assert format_source(formatted) == formatted
    assert ast_without_spans(formatted) == ast_without_spans(source)
    assert comment_texts(formatted) == comment_texts(source)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_specs_are_formatted(path):
    assert is_formatted(path.read_text(encoding="utf-8"), str(path))


@pytest.mark.parametrize("path", spec_files(), ids=lambda p: p.name)
def test_formatting_keeps_the_ir(path):
    # Unformat the spec (no indentation, operators and `=` unspaced), format it back,
    # and compare the compiled networks.
    text = path.read_text(encoding="utf-8")
    messy = "\n".join(line.strip() if line.lstrip().startswith("#") else
                      line.strip().replace(" = ", "=").replace(" * ", "*").replace(" - ", "-")
                      for line in text.splitlines())
    assert messy != text
    formatted = format_source(messy)
    assert formatted == text
    assert irs_without_spans(formatted, path) == irs_without_spans(text, path)


@pytest.mark.parametrize("source, expected", [
    # precedence: parentheses only where needed, kept where they change the meaning
    ("network n { let a = (1 + 2) * 3 }", "  let a = (1 + 2) * 3"),
    ("network n { let a = 1 + (2 * 3) }", "  let a = 1 + 2 * 3"),
    ("network n { let a = 8 - (4 - 2) }", "  let a = 8 - (4 - 2)"),
    ("network n { let a = (8 - 4) - 2 }", "  let a = 8 - 4 - 2"),
    ("network n { let a = 8 // (2 * 2) }", "  let a = 8 // (2 * 2)"),
    ("network n { let a = -(1 + 2) }", "  let a = -(1 + 2)"),
    ("network n { let a = - -1 }", "  let a = - -1"),
    ("network n { let a = not (1 < 2) == false }", "  let a = not (1 < 2) == false"),
    ("network n { let a = (1 < 2) == (3 < 4) }", "  let a = (1 < 2) == (3 < 4)"),
    ("network n { let a = (true or false) and true }", "  let a = (true or false) and true"),
    # space-form arguments with spaces or a sign are grouped; call-form ones need not be
    ("network n { input 3x8x8; fc (-1) }", "  fc (-1)"),
    ("network n { input 3x8x8; fc (-a * 2) }", "  fc (-a * 2)"),
    ("network n { input 3x8x8; fc (a < b) }", "  fc (a < b)"),
    ("network n { input 3x8x8; fc a - 1 }", "  fc (a - 1)"),
    ("network n { input 3x8x8; conv 3x3 8 stride=s+1 }", "  conv 3x3 8 stride=(s + 1)"),
    ("network n { input 3x8x8; fc(-1, bias=a or b) }", "  fc(-1, bias=a or b)"),
    ("network n { stage x2 basic(8) stride=(2) shortcut=B }", "  stage x2 basic(8) stride=2 shortcut=B"),
    # sizes: one token when every part is a number
    ("network n { input 3 x 8 x (8) }", "  input 3x8x8"),
    ("network n { input 3 x s x s // 2 }", "  input 3 x s x (s // 2)"),
    # a parameter named like a keyword keeps its parentheses
    ("network n(x = 2) { input 3x8x8; conv 3x3 8 stride=(x) }", "  conv 3x3 8 stride=(x)"),
    # strings are re-escaped the one way the grammar knows
    ('network n { require true, "say \\"hi\\"\\n" }', '  require true, "say \\"hi\\"\\n"'),
    # stage repeats: a literal count is one token, an expression goes in parentheses
    ("network n { stage x 3 basic(4) }", "  stage x3 basic(4)"),
    ("network n { stage x n + 1 basic(4) }", "  stage x (n + 1) basic(4)"),
])
def test_expression_layout(source, expected):
    formatted = format_source(source)
    assert expected in formatted.splitlines()
    assert ast_without_spans(formatted) == ast_without_spans(source)


@pytest.mark.parametrize("source, code", [
    ("network n {\n  conv 3x3 16 stride=\n}\n", "E001"),
    ("network n {\n  input 3x8x8\n", "E001"),
])
def test_syntax_errors_are_reported_not_formatted(source, code):
    with pytest.raises(RnetError) as info:
        format_source(source)
    assert info.value.codes == [code]


# ---- the command line ----------------------------------------------------------------

MESSY = "network n{input 3x8x8;conv 3x3 4}\n"
TIDY = "network n {\n  input 3x8x8\n  conv 3x3 4\n}\n"


def test_fmt_rewrites_in_place_keeping_the_mode(tmp_path, capsys):
    spec = tmp_path / "n.rnet"
    spec.write_text(MESSY)
    spec.chmod(0o640)
    assert main(["fmt", str(spec)]) == 0
    assert spec.read_text() == TIDY
    assert stat.S_IMODE(spec.stat().st_mode) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["n.rnet"]  # no temporary file left
    assert "reformatted" in capsys.readouterr().err
    assert main(["fmt", str(spec)]) == 0  # already formatted: nothing to do
    assert spec.read_text() == TIDY


@pytest.mark.parametrize("flags, code, changed_on_disk", [
    (["--check"], 1, False),
    (["--diff"], 0, False),
    (["--check", "--diff"], 1, False),
    ([], 0, True),
])
def test_fmt_check_and_diff(tmp_path, capsys, flags, code, changed_on_disk):
    spec = tmp_path / "n.rnet"
    spec.write_text(MESSY)
    assert main(["fmt", *flags, str(spec)]) == code
    assert spec.read_text() == (TIDY if changed_on_disk else MESSY)
    out = capsys.readouterr().out
    if "--diff" in flags:
        assert "-network n{input 3x8x8;conv 3x3 4}" in out and "+  conv 3x3 4" in out
    else:
        assert out == ""


def test_fmt_check_passes_on_formatted_files_and_folders(capsys):
    assert main(["fmt", "--check", str(REPO / "specs"), str(PRELUDE_PATH)]) == 0
    assert "0 files would be reformatted" in capsys.readouterr().err


def test_fmt_stdin_to_stdout(monkeypatch, capsys):
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO(MESSY))
    assert main(["fmt", "-"]) == 0
    assert capsys.readouterr().out == TIDY


@pytest.mark.parametrize("args, code, message", [
    (["fmt", "missing.rnet"], 2, "no such file: missing.rnet"),
    (["fmt", "-", "x.rnet"], 2, "cannot be combined"),
])
def test_fmt_usage_errors(args, code, message, capsys):
    assert main(args) == code
    assert message in capsys.readouterr().err


def test_fmt_reports_a_file_that_does_not_parse_and_goes_on(tmp_path, capsys):
    bad, good = tmp_path / "bad.rnet", tmp_path / "good.rnet"
    bad.write_text("network n {\n  conv 3x3 16 stride=\n}\n")
    good.write_text(MESSY)
    assert main(["fmt", str(bad), str(good)]) == 1
    assert good.read_text() == TIDY
    assert bad.read_text() == "network n {\n  conv 3x3 16 stride=\n}\n"
    assert "error[E001]" in capsys.readouterr().err
