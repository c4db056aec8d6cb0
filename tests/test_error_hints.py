"""Diagnostics of the mistakes new users make: each says what is wrong and how to fix it.

The rendered forms of the main cases are golden files (tests/errors/E001_unclosed_stem,
E001_extra_closing_brace, E001_chained_comparison, E001_else_on_next_line,
E202_swapped_arguments); these tests cover their variants, field by field.
"""

from __future__ import annotations

import pytest
from conftest import REPO

from resnet_dsl.cli import main
from resnet_dsl.compiler import compile_network
from resnet_dsl.errors import RnetError
from resnet_dsl.frontend.signatures import usage


def first_error(text: str):
    with pytest.raises(RnetError) as info:
        compile_network(text)
    return info.value.diagnostics[0]


def at(span) -> tuple[int, int]:
    return span.line, span.column


# ---- arguments: usage lines and swapped arguments ------------------------------------

@pytest.mark.parametrize("layer, fix", [
    ("conv 16 3x3", "conv 3x3 16"),
    ("conv 3 3x3 stride=2", "conv 3x3 3 stride=2"),
    ("conv(16, 3x3)", "conv 3x3 16"),
])
def test_swapped_positional_arguments_get_the_order_that_fits(layer, fix):
    d = first_error(f"network n {{\n  input 3x32x32\n  {layer}\n}}")
    assert d.code == "E202" and d.message == "`conv` out must be an integer, got a size (3x3)"
    assert d.help == f"did you swap KERNEL and OUT? write `{fix}`"
    assert [n.message for n in d.notes] == [usage("conv")]


@pytest.mark.parametrize("layer", ["conv 3x3 16 bias=1", "conv global 16", "conv 1.5 16",
                                   "maxpool true"])
def test_a_wrong_argument_gets_the_usage_line(layer):
    d = first_error(f"network n {{\n  input 3x32x32\n  {layer}\n}}")
    assert d.code == "E202" and d.help == usage(layer.split()[0]) and not d.notes


def test_a_specific_help_stays_and_the_usage_line_becomes_a_note():
    d = first_error("network n(k = 1.5) {\n  input 3x32x32\n  conv 3x3 16 * k\n}")
    assert d.help == "use `//` for integer division"
    assert [(n.span, n.message) for n in d.notes] == [(None, usage("conv"))]


# ---- braces --------------------------------------------------------------------------

STEM_OPEN = ("network n {\n  input 3x32x32\n  stem {\n    conv 3x3 16\n    bn\n    relu\n"
             "  stage x2 basic(16)\n  head {\n    avgpool global\n    flatten\n    fc 10\n"
             "  }\n}\n")


def test_a_missing_brace_is_found_by_indentation():
    d = first_error(STEM_OPEN)
    assert d.code == "E001" and d.message.startswith("unexpected end of file")
    never, belongs = d.notes
    assert at(never.span) == (3, 8) and never.message == "this `{` is never closed"
    assert at(belongs.span) == (13, 1) and "indented like line 1" in belongs.message
    assert d.help == "add the `}` that closes `stem`, before line 7"


def test_a_missing_brace_of_an_if():
    d = first_error("network n(d = 1) {\n  input 3x32x32\n  if d > 0 {\n    relu\n"
                    "  stage x2 basic(16)\n}\n")
    assert at(d.notes[0].span) == (3, 12)
    assert d.help == "add the `}` that closes the `if`, before line 5"


@pytest.mark.parametrize("text", [
    "network n { stem { conv 3x3 16 }\n",                          # one line: no indentation
    "network n {\n  input 3x32x32\n  stem {\n    conv 3x3 16\n }\n  relu\n",  # sloppy `}`
])
def test_without_an_indentation_clue_the_innermost_open_brace_is_named(text):
    d = first_error(text)
    (note,) = d.notes
    assert at(note.span) == (1, 11) and d.help == "add the missing `}`"


@pytest.mark.parametrize("text, found, closer, help_", [
    ("network n {\n  input 3x32x32\n  stem {\n    conv 3x3 16\n  }\n  }\n"
     "  stage x2 basic(16)\n}\n", "`stage`", (6, 3),
     "remove the extra `}`, so that what follows stays inside network `n`"),
    ("network n {\n  input 3x32x32\n  }\n  conv 3x3 16\n}\n", "`conv`", (3, 3),
     "remove the extra `}`, so that what follows stays inside network `n`"),
    ("block b(out) {\n  conv 3x3 out\n  }\n  add\n}\n", "`add`", (3, 3),
     "remove the extra `}`, so that what follows stays inside block `b`"),
    ("network n {\n  input 3x32x32\n  conv 3x3 16\n  }\n}\n", None, (4, 3), "remove the extra `}`"),
])
def test_an_extra_brace_is_named(text, found, closer, help_):
    d = first_error(text)
    assert d.code == "E001" and d.help == help_
    if found:
        assert d.message.startswith(f"unexpected {found} after the end of ")
    else:
        assert d.message.endswith("is already closed")
    (note,) = d.notes
    assert at(note.span) == closer and note.message.startswith("this `}` closes ")


def test_a_stray_word_after_a_network_is_not_blamed_on_a_brace():
    d = first_error("network n {\n  input 3x32x32\n}\nnetworks m {\n}\n")
    assert d.message.startswith("unexpected `networks`; expected") and not d.notes


# ---- comparisons and else --------------------------------------------------------------

@pytest.mark.parametrize("line, fix", [
    ("require 8 <= d <= 110", "8 <= d and d <= 110"),
    ('require d > 1 and 8 <= d + 1 < (110 * 2), "range"', "8 <= d + 1 and d + 1 < (110 * 2)"),
    ("let ok = not 1 < d < 3 or true", "1 < d and d < 3"),
    ("if (8 <= d <= 110) { relu }", "8 <= d and d <= 110"),
])
def test_chained_comparisons(line, fix):
    d = first_error(f"network n(d = 20) {{\n  input 3x32x32\n  {line}\n}}")
    assert d.code == "E001" and d.message.endswith(": comparisons do not chain")
    assert d.help == f"write `{fix}`"


def test_a_comparison_in_a_positional_argument_is_not_a_chain():
    d = first_error("network n {\n  input 3x32x32\n  conv 3x3 16 < 3\n}")
    assert "chain" not in d.message


@pytest.mark.parametrize("tail, help_", [
    ("\n  else {\n    relu\n  }\n}\n", "write `} else {` on one line"),
    ("\n  else if d > 5 {\n    relu\n  }\n}\n", "write `} else if ... {` on one line"),
    ("\n  else\n}\n", "write `} else {` on one line"),      # parses: `else` as a layer
])
def test_else_on_the_next_line(tail, help_):
    d = first_error("network n(d = 20) {\n  input 3x32x32\n  if d > 10 {\n    conv 3x3 16\n  }"
                    + tail)
    assert d.code == "E001"
    assert d.message == "`else` must be on the same line as the `}` that closes the `if`"
    assert at(d.span) == (6, 3) and d.help == help_
    (note,) = d.notes
    assert at(note.span) == (5, 3)


def test_else_after_a_semicolon():
    d = first_error("network n(d = 20) { input 3x32x32; if d > 10 { relu }; else { relu } }")
    assert d.message == "`else` must follow the `}` that closes the `if`"
    assert d.help == "remove the `;`: `} else {`"


# ---- --set -----------------------------------------------------------------------------

@pytest.mark.parametrize("item, says", [
    ("depth=abc", "--set depth=abc: `abc` is not a value --set accepts: an integer (56), "
                  "a number (0.3, 1e-4) or true/false"),
    ("k=True", "write `true`"),
    ("depth=inf", "--set depth=inf: `inf` is not a finite number"),
    ("depth", "--set takes NAME=VALUE, got `depth`"),
])
def test_a_wrong_set_names_itself(item, says, capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    code = main(["check", "specs/cifar50.rnet", "--set", "k=2", "--set", item])
    _, err = capsys.readouterr()
    assert code == 2 and says in err and "Traceback" not in err
    assert err.startswith("rnetc check: error: ") and len(err.strip().splitlines()) == 1
