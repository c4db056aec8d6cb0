"""The examples in the ONNX backend's docstrings run and print what they say."""

import doctest
import importlib

import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

MODULES = ["resnet_dsl.backends.onnx.export", "resnet_dsl.backends.onnx.trace",
           "resnet_dsl.backends.onnx.verify", "resnet_dsl.backends.onnx.minimize",
           "resnet_dsl.backends.onnx.metadata"]


@pytest.fixture(autouse=True, scope="module")
def _threads():
    from torch_helpers import set_threads

    yield from set_threads(1)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name, repo, monkeypatch):
    monkeypatch.chdir(repo)  # the examples name specs/... relative to the repository
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0
