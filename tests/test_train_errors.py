"""Golden files of the training errors (E801-E805): the rendered message of each, for a
fixed scenario run in a scratch folder (paths are relative, so the text is stable).
Regenerate with RNETC_UPDATE_GOLDEN=1 after a deliberate change, and read the diff."""

from __future__ import annotations

from pathlib import Path

import pytest
from cifar_files import evil_pickle, write_cifar10_binary, write_cifar10_python, write_cifar100_binary
from conftest import REPO
from test_errors_golden import check_golden

torch = pytest.importorskip("torch")

from resnet_dsl.errors import RnetError  # noqa: E402
from resnet_dsl.train import checkpoint  # noqa: E402
from resnet_dsl.train.data import load_data  # noqa: E402
from resnet_dsl.train.run import check_fit  # noqa: E402

ERRORS = REPO / "tests" / "errors"


def _cifar10(name: str = "cifar10"):
    return load_data(name, input_shape=(3, 32, 32), num_classes=10, data_dir=Path("data"))


def _missing():
    _cifar10()


def _truncated():
    write_cifar10_binary(Path("data"))
    target = Path("data/cifar-10-batches-bin/data_batch_1.bin")
    target.write_bytes(target.read_bytes()[:5000])
    _cifar10()


def _malicious():
    write_cifar10_python(Path("data"))
    Path("data/cifar-10-batches-py/data_batch_1").write_bytes(evil_pickle("marker"))
    _cifar10()


def _wrong_classes():
    write_cifar100_binary(Path("data"))
    check_fit(_cifar10("cifar100"), (3, 32, 32), 10)


def _no_checkpoint():
    checkpoint.load_training("runs/cifar_resnet20/last.pt")


CASES = {
    "E801_data_not_found": _missing,
    "E802_truncated_binary": _truncated,
    "E803_malicious_pickle": _malicious,
    "E804_classes_mismatch": _wrong_classes,
    "E805_missing_checkpoint": _no_checkpoint,
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_training_error_golden(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(RnetError) as info:
        CASES[name]()
    assert info.value.codes == [name[:4]]
    check_golden(ERRORS / f"{name}.expected", info.value.render() + "\n")
    assert not Path("marker").exists()
