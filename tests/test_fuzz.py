"""Fuzzing the front end in CI (a few thousand cases; fuzz/run.py runs longer).

Property: compile either succeeds (and the IR lints, summarises and builds on the meta
device) or raises rnetc's own error with spans inside the file, in under a second.
Findings are kept as regression cases in tests/fuzz_regressions/.
"""

from __future__ import annotations

import random

import pytest
from conftest import REPO
from hypothesis import HealthCheck, given, settings

from fuzz.cases import check, grammar_specs, mutate, shipped_specs, structured_specs

SETTINGS = dict(deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
REGRESSIONS = sorted((REPO / "tests" / "fuzz_regressions").glob("*.rnet"))


@settings(max_examples=400, **SETTINGS)
@given(grammar_specs())
def test_grammar_generated_specs(tmp_path_factory, text):
    check(text, tmp_path_factory.getbasetemp(), build_meta=True)


@settings(max_examples=600, **SETTINGS)
@given(structured_specs())
def test_structured_specs(tmp_path_factory, text):
    check(text, tmp_path_factory.getbasetemp(), build_meta=True)


@pytest.mark.parametrize("name,text", shipped_specs(), ids=[n for n, _ in shipped_specs()])
def test_mutated_shipped_specs(name, text):
    rng = random.Random(f"rnetc-{name}")
    outcomes = {"ok": 0, "error": 0}
    for _ in range(100):
        outcomes[check(mutate(text, rng), REPO / "specs", build_meta=False)] += 1
    assert outcomes["error"] > 0  # the mutations do reach the error paths


@pytest.mark.parametrize("path", REGRESSIONS, ids=lambda p: p.stem)
def test_fuzz_regressions(path):
    check(path.read_text(encoding="utf-8", errors="replace"), REPO / "specs", build_meta=True)
