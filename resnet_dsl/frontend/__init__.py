"""The front end: source text -> AST (`parse`) -> IR (`lower`), with no torch anywhere."""
