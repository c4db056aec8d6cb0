"""Long fuzzing run of the front end (the CI runs a few thousand cases in tests/test_fuzz.py).

    python fuzz/run.py --minutes 30 [--meta]

Cycles through the three case sources with fresh seeds; every property violation is
written to fuzz/findings/ (spec text + the error) so it can become a regression case in
tests/fuzz_regressions/. Prints counts every minute and a summary at the end.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fuzz.cases import PropertyViolation, check, grammar_specs, mutate, shipped_specs, structured_specs  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--meta", action="store_true", help="also build valid specs on torch's meta device")
    parser.add_argument("--seed", type=int, default=int(time.time()))
    args = parser.parse_args()

    findings = REPO / "fuzz" / "findings"
    folder = Path(tempfile.mkdtemp(prefix="rnetc-fuzz-"))
    rng = random.Random(args.seed)
    specs = shipped_specs()
    grammar, structured = grammar_specs(), structured_specs()
    counts = {"ok": 0, "error": 0, "violations": 0}
    deadline = time.time() + 60 * args.minutes
    next_report = time.time() + 60

    def run(text: str, where: Path) -> None:
        try:
            counts[check(text, where, build_meta=args.meta)] += 1
        except PropertyViolation as exc:
            counts["violations"] += 1
            findings.mkdir(exist_ok=True)
            digest = hashlib.sha1(text.encode("utf-8", "replace")).hexdigest()[:12]
            (findings / f"{digest}.rnet").write_text(text, encoding="utf-8", errors="replace")
            (findings / f"{digest}.txt").write_text(str(exc), encoding="utf-8")
            print(f"violation {digest}: {exc}", flush=True)

    while time.time() < deadline:
        kind = rng.randrange(3)
        if kind == 0:
            _, text = rng.choice(specs)
            run(mutate(text, rng), REPO / "specs")
        else:
            strategy = grammar if kind == 1 else structured
            run(strategy.example(), folder)  # noqa: hypothesis' .example() is fine outside tests
        if time.time() > next_report:
            print(f"{sum(counts.values()):,} cases: {counts}", flush=True)
            next_report += 60
    print(f"done (seed {args.seed}): {sum(counts.values()):,} cases, {counts}")
    sys.exit(1 if counts["violations"] else 0)


if __name__ == "__main__":
    main()
