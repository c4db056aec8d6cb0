"""The language's words, sorted into the categories editors colour them by.

The Pygments lexer (`tooling.pygments_lexer`) and the VS Code grammar
(`editors/vscode/syntaxes/rnet.tmLanguage.json`, written by `scripts/gen_textmate.py`)
both read these tuples; so does the language server's completion. Layers and policies
come from the compiler's own tables (no lark is imported); the others are spelled out,
and tests/test_highlighting.py checks them against their sources of truth (the grammar's
reserved words, the prelude's blocks and the expression functions), so they cannot drift.
"""

from __future__ import annotations

from resnet_dsl.frontend.signatures import LAYERS as _LAYERS
from resnet_dsl.ir.shortcuts import POLICIES as _POLICIES

# Reserved words of grammar/rnet.lark (`frontend.parse.keywords()`), by role.
DECLARATIONS = ("block", "import", "network")
STATEMENTS = ("as", "else", "head", "if", "input", "let", "require", "split", "stage", "stem")
OPERATOR_WORDS = ("and", "not", "or", "x")
CONSTANTS = ("false", "global", "true")

# Built-in layers, in the order of the language's table: derived from the ops
# themselves (each IR node class's `words`, `frontend.signatures.LAYERS`), so a new op
# is highlighted, completed and listed without a change here.
LAYERS = tuple(_LAYERS)

# Blocks the prelude (`frontend/prelude.rnet`) defines.
BLOCKS = ("basic", "bottleneck", "conv_bn_act", "conv_head", "conv_mlp", "convnext_block",
          "convnext_down", "deep_stem", "eca", "eca_bottleneck", "fc_head", "preact_basic",
          "preact_bottleneck", "preact_bottleneck_v2", "regnet_bottleneck", "res2net_bottleneck",
          "resnest_bottleneck", "se", "se_bottleneck", "selective_kernel", "sk_attn", "sk_basic",
          "split_attn", "wide_basic")

# Functions of expressions (`frontend.evaluate`).
FUNCTIONS = ("floor", "log2", "make_divisible", "max", "min", "regnet_depth", "regnet_stages",
             "regnet_width", "round")

# Values of a stage's `shortcut=` option (`ir.shortcuts.POLICIES`), names and aliases.
POLICIES = tuple(_POLICIES)

KEYWORDS = DECLARATIONS + STATEMENTS + OPERATOR_WORDS + CONSTANTS
