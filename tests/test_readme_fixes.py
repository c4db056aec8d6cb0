"""What a new user stumbled on with the README (issue 17, item 7), each where it can fail:
the error example is a file that ships and prints what the README shows; `make train`
gives each spec its own run folder and a run never replaces another network's
checkpoints; the first-time set-up says what it installs; the export check says what it
decides on; the Makefile and the README quote the same measured time; a NUL byte (or
another control character) in a spec is printed escaped."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import pytest
from conftest import REPO, SPECS, rnetc

README = (REPO / "README.md").read_text(encoding="utf-8")
MAKEFILE = (REPO / "Makefile").read_text(encoding="utf-8")


# -- the error example -----------------------------------------------------------------------
def test_readme_error_example_is_what_check_prints(capsys, monkeypatch):
    block = re.search(r"```text\n\$ (rnetc check \S+)\n(.*?)```", README, flags=re.S)
    assert block, "the README's error example: a ```text block starting with `$ rnetc check FILE`"
    command, shown = block.group(1), block.group(2)
    path = command.split()[-1]
    assert (REPO / path).is_file(), f"{path} does not ship"
    monkeypatch.chdir(REPO)
    code, out, err = rnetc(capsys, *command.split()[1:])
    assert code == 1 and out == ""
    assert err == shown


# -- run folders -----------------------------------------------------------------------------
@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
@pytest.mark.parametrize("spec, folder", [
    (None, "runs/quickstart-cifar_resnet20"),
    ("specs/cifar50.rnet", "runs/quickstart-cifar50"),
])
def test_make_train_has_a_folder_per_spec(spec, folder):
    argv = ["make", "-n", "-s", "train"] + ([f"SPEC={spec}"] if spec else [])
    printed = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert f"--output-dir {folder}\n" in printed
    if spec is None:   # the folder the README's later commands read
        assert f"{folder}/best.pt" in README and "runs/quickstart/" not in README


def _train(capsys, out, *extra):
    return rnetc(capsys, "train", SPECS / "cifar_resnet20.rnet", "--input", "1x16x16", "--subset", "32",
                 "-b", "16", "--epochs", "1", "--device", "cpu", "--no-tensorboard",
                 "--print-freq", "1000", "--output-dir", out, *extra)


def test_a_run_never_replaces_another_networks_checkpoint(capsys, tmp_path):
    pytest.importorskip("torch")
    out = tmp_path / "run"
    code, _, err = _train(capsys, out)
    assert code == 0, err
    # the same network again: starts over there, as before
    code, _, err = _train(capsys, out, "--seed", "1")
    assert code == 0, err
    before = {n: (out / n).read_bytes() for n in ("best.pt", "last.pt")}
    # another network (the same spec with other parameters, or another spec): refused
    code, printed, err = _train(capsys, out, "--set", "depth=8")
    assert code == 2 and printed == "", err
    assert err.startswith(f"rnetc train: error: --output-dir {out} holds last.pt of cifar_resnet20 "
                          "(input 1x16x16) from "), err
    assert "training cifar_resnet20 --set depth=8 (input 1x16x16) there would replace it" in err
    assert "--output-dir" in err and "--resume" in err and "Traceback" not in err
    code, _, err = rnetc(capsys, "train", SPECS / "cifar_resnet32.rnet", "--input", "1x16x16",
                         "--subset", "32", "-b", "16", "--epochs", "1", "--device", "cpu",
                         "--output-dir", out)
    assert code == 2 and "holds last.pt of cifar_resnet20" in err and "training cifar_resnet32" in err, err
    assert {n: (out / n).read_bytes() for n in ("best.pt", "last.pt")} == before


# -- the first-time set-up -------------------------------------------------------------------
def test_bootstrap_says_what_it_installs(tmp_path):
    """bootstrap.sh with a stand-in python (no network): a line before each long step."""
    fake = tmp_path / "python"
    fake.write_text('#!/bin/sh\n'
                    '# "python -m venv DIR": make DIR/bin/python, a stub that only logs\n'
                    'if [ "$1 $2" = "-m venv" ]; then mkdir -p "$3/bin"; printf \'#!/bin/sh\\n'
                    'echo "RAN $*" >&2\\n\' > "$3/bin/python"; chmod +x "$3/bin/python"; exit 0; fi\n'
                    'echo "Python 3.12.0"\n')
    fake.chmod(0o755)
    venv = tmp_path / "venv"
    env = {**os.environ, "PYTHON": str(fake), "VENV": str(venv)}
    run = subprocess.run(["bash", str(REPO / "scripts" / "bootstrap.sh")], env=env, cwd=REPO,
                         capture_output=True, text=True, check=True)
    lines = run.stderr.splitlines()
    steps = [i for i, line in enumerate(lines) if re.match(r"bootstrap: \[\d/4\]", line)]
    ran = [i for i, line in enumerate(lines) if line.startswith("RAN ")]
    assert len(steps) == 4 and len(ran) == 3, run.stderr
    assert "torch 2.14.1" in run.stderr and "Python 3.12.0" in run.stderr
    # every pip install is announced right before it runs
    for r in ran:
        assert any(s < r for s in steps)
    assert lines[ran[1] - 2].startswith("bootstrap: [3/4]") and "torch==2.14.1" in lines[ran[1]]
    assert lines[-1] == f"bootstrap: done: {venv} is ready"
    # the second time: nothing to do, nothing printed
    again = subprocess.run(["bash", str(REPO / "scripts" / "bootstrap.sh")], env=env, cwd=REPO,
                           capture_output=True, text=True, check=True)
    assert again.stderr == "" and again.stdout == ""


# -- the time the README quotes --------------------------------------------------------------
def test_makefile_and_readme_quote_the_same_measured_time():
    comment = " ".join(line.lstrip("# ") for line in MAKEFILE.splitlines() if line.startswith("#"))
    made = re.search(r"make train .*?\((about \d+ s) on a 2-core CPU", comment)
    assert made, "the Makefile's comment says how long `make train` takes"
    assert f"On a 2-core CPU it takes {made.group(1)}" in " ".join(README.split())


# -- the export check ------------------------------------------------------------------------
def test_export_check_reports_the_tolerance_it_decides_on():
    from resnet_dsl.backends.onnx.report import BatchCheck, CheckReport

    ok = CheckReport(True, 1e-3, 1e-4, (BatchCheck(1, 2.5e-5, 8.15e-2, True, used=0.31,
                                                   beyond=0, values=10),))
    text = ok.describe()
    assert "rel diff" not in text and "8.15e-02" not in text
    assert ("check: onnxruntime vs PyTorch at batch 1: max abs diff 2.50e-05; every value within "
            "atol 0.0001 + rtol 0.001 x |PyTorch| (using at most 31% of it)") in text
    assert text.endswith("check: ok (rtol 0.001, atol 0.0001)")
    bad = CheckReport(False, 1e-3, 1e-4, (BatchCheck(3, 0.5, 9.0, False, used=4000.0, beyond=7,
                                                     values=30),), "differs")
    assert "7 of 30 values beyond atol 0.0001 + rtol 0.001 x |PyTorch| (by up to 4e+03x it)" \
        in bad.describe()


# -- control characters in a spec ------------------------------------------------------------
@pytest.mark.parametrize("text, char, shown", [
    ("network x {\n  input 3x32x32\x00\n}\n", "\\0", "input 3x32x32\\0"),
    ("network x {\n  input 3x32x32\n  stem { conv 3x3 1\x00 }\n}\n", "\\0", "conv 3x3 1\\0 }"),
    ("network x {\n  input 3x32x32\n  stem { conv 3x3 \x1b[31m }\n}\n", "\\e", "conv 3x3 \\e[31m }"),
])
def test_control_characters_are_printed_escaped(capsys, tmp_path, text, char, shown):
    spec = tmp_path / "nul.rnet"
    spec.write_bytes(text.encode())
    code, out, err = rnetc(capsys, "check", spec)
    assert code == 1 and out == ""
    assert "\x00" not in err and "\x1b" not in err
    head, _, excerpt, carets = err.splitlines()[:4]
    assert head.endswith(f"error[E001]: unexpected character `{char}`"), head
    assert shown in excerpt
    # the carets sit under the escaped character, as wide as it is shown
    start = excerpt.index("\\", excerpt.index("|") + 1)
    assert carets.index("^") == start and carets.count("^") == 2
    code, out, _ = rnetc(capsys, "check", spec, "--error-format", "json")
    message = json.loads(out)["errors"][0]["message"]
    assert "\x00" not in message and "\x1b" not in message and "\\" in message


def test_escape_source():
    import doctest

    import resnet_dsl.errors
    from resnet_dsl.errors import escape_source

    assert doctest.testmod(resnet_dsl.errors).failed == 0

    assert escape_source("plain text, é and ü") == "plain text, é and ü"
    assert escape_source("a\x00b\x07c\x7fd\u200be\ufefff\tg") == "a\\0b\\x07c\\x7fd\\u200be\\ufefff\tg"
    assert escape_source(escape_source("\x00")) == "\\0"


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
