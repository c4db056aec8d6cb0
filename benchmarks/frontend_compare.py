"""Front end, this checkout against another one (say, the commit before a refactor), side
by side in one run: source text -> checked IR (`compile_network`) for the specs that
stress it, in interleaved rounds of fresh processes, so that drift of a shared machine
falls on both alike. Reports the fastest and the median call of each, and their ratio.

    git worktree add /tmp/before <commit>
    python benchmarks/frontend_compare.py --other /tmp/before [--rounds 6] [--calls 15]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SPECS = ("resnet152", "wrn28_10", "preact_resnet1001")

_CHILD = r"""
import gc, json, sys, time
from pathlib import Path
from resnet_dsl.compiler import compile_network
root, calls = Path(sys.argv[1]), int(sys.argv[2])
out = {}
for name in sys.argv[3:]:
    text = str(root / "specs" / f"{name}.rnet")  # read each time, as the CLI does
    compile_network(text)  # warm: the LALR parser, imports
    samples = []
    for _ in range(calls):
        gc.collect()
        t0 = time.perf_counter()
        compile_network(text)
        samples.append(time.perf_counter() - t0)
    out[name] = samples
print(json.dumps(out))
"""


def run(root: Path, calls: int) -> dict[str, list[float]]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    done = subprocess.run([sys.executable, "-c", _CHILD, str(root), str(calls), *SPECS],
                          cwd=root, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{root}: the front end failed\n{done.stderr[-2000:]}")
    return json.loads(done.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--other", type=Path, required=True, help="the other checkout")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--calls", type=int, default=15)
    args = parser.parse_args()
    samples = {"this": {s: [] for s in SPECS}, "other": {s: [] for s in SPECS}}
    for i in range(args.rounds):
        order = (("this", REPO), ("other", args.other))
        for label, root in (order if i % 2 == 0 else order[::-1]):
            for spec, values in run(root.resolve(), args.calls).items():
                samples[label][spec] += values
    print(f"python {platform.python_version()}, {platform.processor() or 'cpu'}; "
          f"{args.rounds} interleaved rounds x {args.calls} calls; other = {args.other}")
    header = (f"{'spec':<20}{'this min':>10}{'other min':>11}{'ratio':>7}"
              f"{'this med':>10}{'other med':>11}{'ratio':>7}   (ms)")
    print(header)
    print("-" * len(header))
    for spec in SPECS:
        a, b = samples["this"][spec], samples["other"][spec]
        print(f"{spec:<20}{min(a) * 1e3:>10.1f}{min(b) * 1e3:>11.1f}{min(a) / min(b):>7.2f}"
              f"{statistics.median(a) * 1e3:>10.1f}{statistics.median(b) * 1e3:>11.1f}"
              f"{statistics.median(a) / statistics.median(b):>7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
