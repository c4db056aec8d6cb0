"""The command line: exit codes, output forms, options (in-process and via subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import REPO, SPECS

from resnet_dsl.cli import main


def run(args, capsys):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_check_all_specs(capsys):
    code, out, _ = run(["check", *sorted(SPECS.glob("*.rnet"))], capsys)
    assert code == 0
    assert "resnet50, 25,557,032 parameters" in out


def test_check_reports_errors_and_exit_1(tmp_path, capsys):
    bad = tmp_path / "bad.rnet"
    bad.write_text("network n {\n  input 3x8x8\n  conv 3x3 0\n  batchnorm\n}\n")
    code, out, err = run(["check", bad], capsys)
    assert code == 1
    assert f"{bad}:3:12: error[E203]" in err and "error[E101]" in err and "2 errors" in err
    assert "^" in err and "help:" in err


def test_error_format_json(tmp_path, capsys):
    bad = tmp_path / "bad.rnet"
    bad.write_text("network n { input 3x8x8; conv 3x3 4 strides=2 }\n")
    code, out, _ = run(["check", bad, "--error-format", "json"], capsys)
    assert code == 1
    (error,) = json.loads(out)["errors"]
    assert error["code"] == "E104" and error["span"]["line"] == 1 and error["help"]


@pytest.mark.parametrize("args", [
    ["check", "no/such/file.rnet"],
    ["summary", "specs/resnet18.rnet", "--set", "classes"],
    ["summary", "specs/resnet18.rnet", "--set", "classes=ten"],
    ["summary", "specs/resnet18.rnet", "--input", "3x32"],
    ["summary", "specs/resnet18.rnet", "--limit", "max_bananas=3"],
    ["explain", "E999"],
    ["summary"],
])
def test_usage_errors_exit_2(args, capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    with pytest.raises(SystemExit) as info:
        raise SystemExit(main(args))
    assert info.value.code == 2


def test_summary_json_and_set(capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    code, out, _ = run(["summary", "specs/cifar50.rnet", "--set", "k=2", "--json"], capsys)
    data = json.loads(out)
    assert code == 0 and data["arguments"]["k"] == 2
    assert data["output_shape"] == [10] and data["params"] == 3_008_730
    assert {"params", "macs", "output_shape", "layers", "stages"} <= set(data)


def test_summary_table_depths(capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    _, out1, _ = run(["summary", "specs/resnet50.rnet", "--depth", "1"], capsys)
    _, out3, _ = run(["summary", "specs/resnet50.rnet", "--depth", "3"], capsys)
    assert "layer1.0" not in out1 and "layer1.0.conv1" in out3
    assert "Parameters:   25,557,032" in out1


def test_summary_input_override(capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    _, out, _ = run(["summary", "specs/resnet18.rnet", "--input", "3x64x64", "--json"], capsys)
    data = json.loads(out)
    assert data["input_shape"] == [3, 64, 64] and data["params"] == 11_689_512


def test_set_reaches_require(capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    code, _, err = run(["check", "specs/cifar50.rnet", "--set", "depth=51"], capsys)
    assert code == 1 and "CIFAR ResNet depth must be 6n+2" in err


def test_limit_option(capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    code, _, err = run(["check", "specs/resnet152.rnet", "--limit", "max_layers=100"], capsys)
    assert code == 1 and "E601" in err


def test_ir_text_and_json(capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    _, out, _ = run(["ir", "specs/cifar_resnet20.rnet"], capsys)
    assert "%layer2.0.downsample = zeropad(%layer1.2.relu_1)" in out
    _, out, _ = run(["ir", "specs/cifar_resnet20.rnet", "--json"], capsys)
    assert json.loads(out)["name"] == "cifar_resnet20"


def test_explain_and_prelude(capsys):
    code, out, _ = run(["explain", "E301"], capsys)
    assert code == 0 and "shortcut" in out and "Fix:" in out
    code, out, _ = run(["prelude"], capsys)
    assert code == 0 and "block bottleneck(" in out


def test_network_selection(tmp_path, capsys):
    spec = tmp_path / "two.rnet"
    spec.write_text("network a { input 3x8x8; conv 1x1 4 }\nnetwork b { input 3x8x8; conv 1x1 5 }\n")
    code, _, err = run(["check", spec], capsys)
    assert code == 1 and "E105" in err and "--network" in err
    code, out, _ = run(["summary", spec, "--network", "b", "--json"], capsys)
    assert code == 0 and json.loads(out)["output_shape"] == [5, 8, 8]


def test_python_dash_m_and_help():
    for args in (["--help"], ["check", "--help"], ["summary", "--help"], ["ir", "--help"]):
        proc = subprocess.run([sys.executable, "-m", "resnet_dsl", *args], capture_output=True,
                              text=True, cwd=REPO, timeout=60)
        assert proc.returncode == 0 and "usage:" in proc.stdout and "example" in proc.stdout


def test_front_end_never_imports_torch():
    code = ("import sys\nfrom resnet_dsl.cli import main\n"
            "assert main(['check', '-q', 'specs/resnet50.rnet']) == 0\n"
            "assert main(['summary', 'specs/wrn28_10.rnet', '--json']) == 0\n"
            "assert 'torch' not in sys.modules, 'the front end imported torch'\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
