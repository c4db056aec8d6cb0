"""A Pygments lexer for .rnet specs, so `pygmentize -l rnet` and documentation tools
highlight them.

Registered through the `pygments.lexers` entry point in pyproject.toml; Pygments imports
this module itself, so rnetc does not depend on Pygments. The words come from
`tooling.vocabulary` (checked against the grammar by the tests). Every shipped spec and
the prelude lex without an Error token (tested); the lexer is deliberately regular, not
a parser: it colours what a reader sees, and `rnetc check` judges the rest.
"""

from __future__ import annotations

from pygments.lexer import RegexLexer, bygroups, words
from pygments.token import (
    Comment, Keyword, Name, Number, Operator, Punctuation, String, Whitespace,
)

from resnet_dsl.tooling import vocabulary as v

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_PATH = rf"{_NAME}(?:\.(?:[A-Za-z0-9_]*\{{[in]\}}[A-Za-z0-9_]*|[A-Za-z0-9_]+))+"  # stages.0.blocks, s1.b{{n}}
_END = r"(?![A-Za-z0-9_])"  # the grammar's own word boundary


class RnetLexer(RegexLexer):
    """Lexer for rnetc's residual-network specs.

    >>> from pygments import lex
    >>> [t for t, _ in lex('stage x4 basic(64) stride=2', RnetLexer()) if t is not Whitespace][:3]
    [Token.Keyword, Token.Literal.Number.Integer, Token.Name.Builtin.Pseudo]
    """

    name = "rnet"
    aliases = ["rnet"]
    filenames = ["*.rnet"]
    mimetypes = ["text/x-rnet"]
    url = "https://github.com/rnetc/rnetc"

    tokens = {
        "root": [
            (r"[ \t\f\r]+", Whitespace),
            (r"\n", Whitespace),
            (r"#.*$", Comment.Single),
            (r'"', String.Double, "string"),
            (rf"(block|network)([ \t]+)({_NAME})", bygroups(Keyword.Declaration, Whitespace, Name.Class)),
            (_PATH, Name.Namespace),                              # module paths: head.fc
            (words(("import",), suffix=_END), Keyword.Namespace),
            (rf"(shortcut)(=)({'|'.join(v.POLICIES)}){_END}", bygroups(Name.Attribute, Operator, Name.Constant)),
            (words(v.DECLARATIONS + v.STATEMENTS, suffix=_END), Keyword),
            (words(v.CONSTANTS, suffix=_END), Keyword.Constant),
            (rf"x[0-9]+{_END}", Number.Integer),                  # stage repeats: x4
            (rf"[0-9]+(?:x[0-9]+)+{_END}", Number.Integer),       # sizes: 3x3, 3x224x224
            (r"[0-9]+\.[0-9]*(?:[eE][-+]?[0-9]+)?|[0-9]+[eE][-+]?[0-9]+|\.[0-9]+(?:[eE][-+]?[0-9]+)?",
             Number.Float),
            (r"[0-9]+", Number.Integer),
            (words(v.OPERATOR_WORDS, suffix=_END), Operator.Word),
            (rf"({_NAME})(=)(?!=)", bygroups(Name.Attribute, Operator)),  # key=value
            (words(v.LAYERS, suffix=_END), Name.Builtin),
            (words(v.BLOCKS, suffix=_END), Name.Builtin.Pseudo),
            (words(v.FUNCTIONS, prefix=r"", suffix=r"(?=\()"), Name.Builtin),
            (_NAME, Name),
            (r"//|==|!=|<=|>=|[-+*/%<>=]", Operator),
            (r"[(){},;]", Punctuation),
        ],
        "string": [
            (r'\\["\\n]', String.Escape),
            (r'[^"\\\n]+', String.Double),
            (r'"', String.Double, "#pop"),
        ],
    }
