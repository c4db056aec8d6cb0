"""The examples in the training pipeline's docstrings run and print what they say."""

import doctest
import importlib

import pytest

pytest.importorskip("torch")

MODULES = ["resnet_dsl.train.config", "resnet_dsl.train.schedule", "resnet_dsl.train.augment",
           "resnet_dsl.train.optim", "resnet_dsl.train.checkpoint", "resnet_dsl.train.metrics",
           "resnet_dsl.train.distributed", "resnet_dsl.train.data",
           "resnet_dsl.train.data.dataset", "resnet_dsl.train.data.sampler",
           "resnet_dsl.train.data.gpu_loader", "resnet_dsl.train.data.host_loader",
           "resnet_dsl.train.data.digits", "resnet_dsl.train.data.synthetic",
           "resnet_dsl.train.data.cifar", "resnet_dsl.train.data.safe_pickle",
           "resnet_dsl.train.finetune"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name, repo, monkeypatch):
    monkeypatch.chdir(repo)
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0
