"""Front-end speed: source text -> parsed, lowered, shaped, counted, linted IR.

For resnet152, wrn28_10, a 1001-layer pre-activation ResNet and every zoo spec
(specs/zoo/, timm's family), times the whole front end (median of repeats, warm: the
lark parser is built once per process) and its stages (parse, lower, passes, lint). The
first call in a process also builds the LALR parser; that cold cost is reported on its
own. Then `rnetc check` of a zoo spec as a user runs it: a new process, wall clock, from
start to exit (median of --check-runs). Targets (issue 15): every spec <= 50 ms, `rnetc
check` <= 0.3 s.

    python benchmarks/frontend.py [--repeats 15] [--specs resnet152 zoo/seresnet50 ...]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SPECS = ("resnet152", "wrn28_10", "preact_resnet1001",
         *sorted(f"zoo/{p.stem}" for p in (REPO / "specs" / "zoo").glob("*.rnet")))
TARGET_MS, CHECK_TARGET_S = 50.0, 0.3


def timed(fn, repeats):
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--specs", nargs="+", default=list(SPECS),
                        help="specs under specs/, without .rnet (default: %(default)s)")
    parser.add_argument("--check-spec", default="zoo/seresnext50_32x4d",
                        help="the spec `rnetc check` runs on")
    parser.add_argument("--check-runs", type=int, default=7)
    args = parser.parse_args()

    t0 = time.perf_counter()
    from resnet_dsl.compiler import compile_network
    from resnet_dsl.frontend.lower import lower
    from resnet_dsl.frontend.parse import _parser, parse
    from resnet_dsl.frontend.source import load_program
    from resnet_dsl.limits import DEFAULT_LIMITS
    from resnet_dsl.passes import PIPELINE
    import_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    _parser()
    parser_s = time.perf_counter() - t0

    print(f"python {platform.python_version()} on {platform.machine()}, "
          f"{platform.processor() or 'cpu'}; median of {args.repeats} runs")
    print(f"import rnetc front end: {import_s * 1e3:.0f} ms; build the LALR parser (once per "
          f"process): {parser_s * 1e3:.0f} ms")
    header = f"{'spec':<26}{'nodes':>7}{'total ms':>10}{'parse':>8}{'lower':>8}{'passes':>8}{'lint':>7}"
    print(header)
    print("-" * len(header))
    slowest = ("", 0.0)
    for name in args.specs:
        path = REPO / "specs" / f"{name}.rnet"
        text = path.read_text()
        total, net = timed(lambda: compile_network(path), args.repeats)
        t_parse, _ = timed(lambda: parse(text, str(path)), args.repeats)
        program = load_program(path)
        definition = program.network()

        def lower_only():
            return lower(program, definition, DEFAULT_LIMITS).network

        t_lower, _ = timed(lower_only, args.repeats)

        def passes_only():
            n = lower_only()
            for p in PIPELINE:
                p(n, [], DEFAULT_LIMITS)
            return n

        t_lp, shaped = timed(passes_only, args.repeats)
        t_lint, _ = timed(shaped.lint, args.repeats)
        slowest = max(slowest, (name, total), key=lambda x: x[1])
        print(f"{name:<26}{len(net.nodes):>7}{total * 1e3:>10.1f}{t_parse * 1e3:>8.1f}"
              f"{t_lower * 1e3:>8.1f}{(t_lp - t_lower) * 1e3:>8.1f}{t_lint * 1e3:>7.1f}")

    print(f"slowest: {slowest[0]} {slowest[1] * 1e3:.1f} ms (target <= {TARGET_MS:.0f} ms: "
          f"{'met' if slowest[1] * 1e3 <= TARGET_MS else 'MISSED'})")

    spec = REPO / "specs" / f"{args.check_spec}.rnet"
    command = [sys.executable, "-m", "resnet_dsl", "check", str(spec)]
    # As after `pip install` (which byte-compiles the package): rnetc's bytecode cached. A
    # machine with PYTHONDONTWRITEBYTECODE=1 (this project's VMs) would otherwise compile
    # the package's ~60 modules from source in every process (about 90 ms).
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "resnet_dsl")], check=True)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run(command, check=True, capture_output=True, env=env)  # warm caches (LALR tables)
    walls = []
    for _ in range(args.check_runs):
        t0 = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, env=env)
        walls.append(time.perf_counter() - t0)
    wall = statistics.median(walls)
    print(f"rnetc check {args.check_spec}.rnet, a new process, wall: median {wall:.3f} s, "
          f"fastest {min(walls):.3f} s of {args.check_runs} (target <= {CHECK_TARGET_S} s: "
          f"{'met' if wall <= CHECK_TARGET_S else 'MISSED'})")


if __name__ == "__main__":
    main()
