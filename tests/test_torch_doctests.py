"""The examples in the PyTorch backend's docstrings run and print what they say."""

import doctest
import importlib

import pytest

pytest.importorskip("torch")

MODULES = ["resnet_dsl.api", "resnet_dsl.files", "resnet_dsl.backends.torch.plan",
           "resnet_dsl.backends.torch.build", "resnet_dsl.backends.torch.emit",
           "resnet_dsl.backends.torch.init", "resnet_dsl.backends.torch.weights",
           "resnet_dsl.backends.torch.fold"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name, repo, monkeypatch):
    monkeypatch.chdir(repo)  # the examples name specs/... relative to the repository
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0
