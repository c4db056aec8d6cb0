"""Coverage-guided fuzzing of the front end with atheris (libFuzzer for Python).

    pip install atheris
    python fuzz/atheris_harness.py -max_total_time=1800 fuzz/corpus
    (seed the corpus first: mkdir -p fuzz/corpus && cp specs/*.rnet fuzz/corpus/)

Any exception other than rnetc's own RnetError, or a case slower than a second, is a
crash for libFuzzer, which saves the input as crash-*; turn it into a regression case in
tests/fuzz_regressions/.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports():
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from fuzz.cases import check
    from resnet_dsl.compiler import compile_network

FOLDER = Path(tempfile.mkdtemp(prefix="rnetc-atheris-"))


def test_one_input(data: bytes) -> None:
    text = data.decode("utf-8", errors="replace")
    check(text, FOLDER)  # raises PropertyViolation (an AssertionError) on a finding


if __name__ == "__main__":
    # Warm up (parser tables, prelude) so the time budget measures the case, not start-up.
    compile_network("network warm { input 3x8x8; stage x1 basic(4) }")
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
