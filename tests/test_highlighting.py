"""Highlighting: the word lists match the language, the Pygments lexer reads every shipped
spec without an Error token, and the VS Code grammar is current and correct."""

import json
import re
import tomllib

import pytest
from conftest import REPO, spec_files
from pygments import lex
from pygments.token import Error, Token

from resnet_dsl.frontend import evaluate, lower
from resnet_dsl.frontend.parse import keywords
from resnet_dsl.frontend.signatures import LAYERS
from resnet_dsl.frontend.source import PRELUDE_PATH, prelude
from resnet_dsl.tooling import textmate, vocabulary
from resnet_dsl.tooling.pygments_lexer import RnetLexer

VSCODE = REPO / "editors" / "vscode"


# ---- one vocabulary, checked against its sources --------------------------------------

@pytest.mark.parametrize("ours, truth", [
    (sorted(vocabulary.KEYWORDS), keywords()),
    (list(vocabulary.LAYERS), list(LAYERS)),
    (sorted(vocabulary.BLOCKS), sorted(prelude().blocks)),
    (sorted(vocabulary.FUNCTIONS), sorted(evaluate._FUNCTIONS)),
    (sorted(vocabulary.POLICIES), sorted(lower.POLICIES)),
], ids=["keywords", "layers", "blocks", "functions", "policies"])
def test_vocabulary_matches_the_language(ours, truth):
    assert ours == truth


# ---- Pygments --------------------------------------------------------------------------

def _rnet_blocks(markdown: str) -> list[str]:
    return re.findall(r"^```rnet\n(.*?)^```", markdown, flags=re.S | re.M)


def _highlighted_sources():
    yield from spec_files()
    yield PRELUDE_PATH
    yield from sorted((REPO / "tests" / "format").glob("*.rnet"))
    # the docs written for the language; docs/errors.md's examples are broken on purpose
    yield from (REPO / "docs" / name for name in ("language.md", "tooling.md"))


@pytest.mark.parametrize("path", list(_highlighted_sources()), ids=lambda p: p.name)
def test_lexer_reads_without_error_tokens(path):
    text = path.read_text(encoding="utf-8")
    sources = _rnet_blocks(text) if path.suffix == ".md" else [text]
    for source in sources:
        tokens = list(lex(source, RnetLexer()))
        assert [v for t, v in tokens if t in Error] == []
        assert "".join(v for _, v in tokens).rstrip("\n") == source.rstrip("\n")


def test_language_docs_highlight_their_examples():
    assert len(_rnet_blocks((REPO / "docs" / "language.md").read_text(encoding="utf-8"))) >= 10


@pytest.mark.parametrize("source, word, token", [
    ("network resnet18(classes = 1000) {", "network", Token.Keyword.Declaration),
    ("network resnet18(classes = 1000) {", "resnet18", Token.Name.Class),
    ("import \"cifar_resnet.rnet\"", "import", Token.Keyword.Namespace),
    ("  stage x4 basic(64) stride=2 shortcut=B", "x4", Token.Literal.Number.Integer),
    ("  stage x4 basic(64) stride=2 shortcut=B", "basic", Token.Name.Builtin.Pseudo),
    ("  stage x4 basic(64) stride=2 shortcut=B", "stride", Token.Name.Attribute),
    ("  stage x4 basic(64) stride=2 shortcut=B", "B", Token.Name.Constant),
    ("  stage x n basic(64)", "x", Token.Operator.Word),
    ("  conv 3x3 64 as c1", "3x3", Token.Literal.Number.Integer),
    ("  conv 3x3 64 as c1", "conv", Token.Name.Builtin),
    ("  conv 3x3 64 as c1", "as", Token.Keyword),
    ("  conv1 3x3 64", "conv1", Token.Name),
    ("  let w = max(a, 2) // 3", "max", Token.Name.Builtin),
    ("  let w = max(a, 2) // 3", "//", Token.Operator),
    ("  dropout 1e-5  # note", "1e-5", Token.Literal.Number.Float),
    ("  dropout 1e-5  # note", "# note", Token.Comment.Single),
    ("  if drop > 0 and not flag {", "and", Token.Operator.Word),
    ("  avgpool global", "global", Token.Keyword.Constant),
    ('  require k >= 1, "k \\"must\\" be positive"', '\\"', Token.Literal.String.Escape),
])
def test_lexer_token_types(source, word, token):
    assert (token, word) in list(lex(source, RnetLexer()))


def test_lexer_is_registered_for_pygments():
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    target = project["entry-points"]["pygments.lexers"]["rnet"]
    module, _, name = target.partition(":")
    lexer = getattr(__import__(module, fromlist=[name]), name)
    assert lexer is RnetLexer and "rnet" in lexer.aliases and "*.rnet" in lexer.filenames
    # and Pygments itself finds it by file name once the entry point is installed
    assert "pygments" in " ".join(project["optional-dependencies"]["dev"])


# ---- TextMate / VS Code ----------------------------------------------------------------

def test_textmate_grammar_is_current():
    committed = (VSCODE / "syntaxes" / "rnet.tmLanguage.json").read_text(encoding="utf-8")
    assert committed == textmate.render(), "run: python scripts/gen_textmate.py"


def _scopes(line: str) -> dict[str, str]:
    """A small TextMate engine, enough for this grammar: at each position the pattern that
    matches earliest wins (ties: the first listed); returns {text: scope}."""
    patterns = textmate.textmate_grammar()["patterns"]
    found: dict[str, str] = {}
    pos = 0
    while pos < len(line):
        best = None
        for p in patterns:
            m = re.compile(p.get("match") or re.escape(p["begin"])).search(line, pos)
            if m and m.end() > m.start() and (best is None or m.start() < best[0].start()):
                best = (m, p)
        if best is None:
            break
        m, p = best
        if "begin" in p:
            end = re.compile(p["end"]).search(line, m.end())
            stop = end.end() if end else len(line)
            found[line[m.start():stop]] = p["name"]
            pos = stop
            continue
        if "captures" in p:
            for group, capture in p["captures"].items():
                found[m.group(int(group))] = capture["name"]
        else:
            found[m.group()] = p["name"]
        pos = m.end()
    return found


@pytest.mark.parametrize("line, text, scope", [
    ("block basic(out, stride = 1) {", "block", "keyword.other.declaration.rnet"),
    ("block basic(out, stride = 1) {", "basic", "entity.name.type.block.rnet"),
    ("network n = cifar_resnet(depth = 56)", "n", "entity.name.type.network.rnet"),
    ('import "wrn.rnet"  # a comment', "import", "keyword.control.import.rnet"),
    ('import "wrn.rnet"  # a comment', '"wrn.rnet"', "string.quoted.double.rnet"),
    ('import "wrn.rnet"  # a comment', "# a comment", "comment.line.number-sign.rnet"),
    ("  stage x4 bottleneck(64) stride=2 shortcut=proj", "x4", "constant.numeric.repeat.rnet"),
    ("  stage x4 bottleneck(64) stride=2 shortcut=proj", "bottleneck", "support.class.block.rnet"),
    ("  stage x4 bottleneck(64) stride=2 shortcut=proj", "stride", "variable.parameter.rnet"),
    ("  stage x4 bottleneck(64) stride=2 shortcut=proj", "proj", "constant.language.policy.rnet"),
    ("  stage x n basic(16 * k)", "x", "keyword.operator.logical.rnet"),
    ("  input 3x224x224", "3x224x224", "constant.numeric.size.rnet"),
    ("  input 3x224x224", "input", "keyword.other.rnet"),
    ("  conv 7x7 64 stride=2", "conv", "support.function.layer.rnet"),
    ("  conv1 7x7 64", "conv1", None),
    ("  if drop > 0 {", "if", "keyword.control.rnet"),
    ("  } else {", "else", "keyword.control.rnet"),
    ("  avgpool global", "global", "constant.language.rnet"),
    ("  dropout 0.25", "0.25", "constant.numeric.float.rnet"),
    ("  let w = min(a, 8) // 2", "min", "support.function.builtin.rnet"),
])
def test_textmate_scopes(line, text, scope):
    assert _scopes(line).get(text) == scope


def test_vscode_extension_files_agree():
    package = json.loads((VSCODE / "package.json").read_text(encoding="utf-8"))
    (language,) = package["contributes"]["languages"]
    (grammar,) = package["contributes"]["grammars"]
    assert language["id"] == grammar["language"] == "rnet" and language["extensions"] == [".rnet"]
    assert grammar["scopeName"] == textmate.SCOPE
    assert (VSCODE / grammar["path"]).is_file()
    config = json.loads((VSCODE / language["configuration"]).read_text(encoding="utf-8"))
    assert config["comments"]["lineComment"] == "#"
    for rule in config["indentationRules"].values():
        re.compile(rule)
    assert re.match(config["indentationRules"]["increaseIndentPattern"], "  stem {  # x")
