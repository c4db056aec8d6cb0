"""Language tooling around the compiler: the formatter, the highlighting vocabulary, the
Pygments lexer, the language server and the IR's JSON Schema.

Each module is imported only by the command (or the Pygments plugin) that needs it; the
language server is the only one with a dependency of its own (pygls, the `lsp` extra).
Nothing here changes what a spec means: the tools read the front end's AST and IR.
"""
