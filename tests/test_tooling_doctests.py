"""The examples in the tooling modules' docstrings run (the style guide's "runnable")."""

import doctest
import importlib

import pytest

MODULES = ("resnet_dsl.frontend.parse", "resnet_dsl.tooling.format", "resnet_dsl.tooling.schema",
           "resnet_dsl.tooling.textmate", "resnet_dsl.tooling.document",
           "resnet_dsl.tooling.pygments_lexer")


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name))
    assert result.failed == 0 and result.attempted > 0
