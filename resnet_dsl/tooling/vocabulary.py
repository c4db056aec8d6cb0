"""The language's words, sorted into the categories editors colour them by.

The Pygments lexer (`tooling.pygments_lexer`) and the VS Code grammar
(`editors/vscode/syntaxes/rnet.tmLanguage.json`, written by `scripts/gen_textmate.py`)
both read these tuples. They are spelled out here so that highlighting needs neither lark
nor the compiler; tests/test_highlighting.py checks them against their sources of truth
(the grammar's reserved words, `signatures.LAYERS`, the prelude's blocks, `lower.POLICIES`
and the expression functions), so they cannot drift.
"""

from __future__ import annotations

# Reserved words of grammar/rnet.lark (`frontend.parse.keywords()`), by role.
DECLARATIONS = ("block", "import", "network")
STATEMENTS = ("as", "else", "head", "if", "input", "let", "require", "stage", "stem")
OPERATOR_WORDS = ("and", "not", "or", "x")
CONSTANTS = ("false", "global", "true")

# Built-in layers (`frontend.signatures.LAYERS`), in that table's order.
LAYERS = ("conv", "bn", "relu", "relu6", "silu", "gelu", "sigmoid", "tanh", "leaky_relu",
          "maxpool", "avgpool", "dropout", "flatten", "fc", "fork", "add")

# Blocks the prelude (`frontend/prelude.rnet`) defines.
BLOCKS = ("basic", "bottleneck", "preact_basic", "preact_bottleneck", "wide_basic")

# Functions of expressions (`frontend.evaluate`).
FUNCTIONS = ("max", "min")

# Values of a stage's `shortcut=` option (`frontend.lower.POLICIES`), names and aliases.
POLICIES = ("identity", "zeropad", "proj", "proj_all", "avgproj", "A", "B", "C", "D")

KEYWORDS = DECLARATIONS + STATEMENTS + OPERATOR_WORDS + CONSTANTS
