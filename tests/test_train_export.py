"""`--export-onnx`: a training run ends with a checked ONNX file of its best weights."""

from __future__ import annotations

import onnx
import pytest
from conftest import SPECS

from resnet_dsl.cli import main


def test_train_then_export_onnx(tmp_path, capsys):
    out = tmp_path / "r20.onnx"
    code = main(["train", str(SPECS / "cifar_resnet20.rnet"), "--input", "3x16x16", "--subset", "64",
                 "--epochs", "1", "-b", "32", "--output-dir", str(tmp_path / "run"),
                 "--export-onnx", str(out)])
    printed = capsys.readouterr().out
    assert code == 0 and "weights: best.pt" in printed and "check: ok" in printed
    model = onnx.load(str(out))
    assert [i.name for i in model.graph.input] == ["images"]
    metadata = {p.key: p.value for p in model.metadata_props}
    assert metadata["rnetc.network"] == "cifar_resnet20"


@pytest.mark.parametrize("argv,words", [
    (["train", "--epochs", "1", "--export-onnx", "missing/x.onnx"], "does not exist"),
    (["train", "--epochs", "1", "--export-onnx", "x.txt"], "must end in .onnx"),
    (["compile", "--export-onnx", "x.onnx"], "add --train"),
])
def test_export_onnx_usage_errors_before_training(argv, words, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    command, *rest = argv
    assert main([command, str(SPECS / "cifar_resnet20.rnet"), *rest]) == 2
    assert words in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()  # refused before any work
