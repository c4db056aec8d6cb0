"""Front-end speed: source text -> parsed, lowered, shaped, counted, linted IR.

For resnet152, wrn28_10 and a 1001-layer pre-activation ResNet, times the whole
front end (median of repeats, warm: the lark parser is built once per process) and
its stages (parse, lower, passes, lint). The first call in a process also builds the
LALR parser; that cold cost is reported on its own.

    python benchmarks/frontend.py [--repeats 15]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SPECS = ("resnet152", "wrn28_10", "preact_resnet1001")


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
    header = f"{'spec':<20}{'nodes':>7}{'total ms':>10}{'parse':>8}{'lower':>8}{'passes':>8}{'lint':>7}"
    print(header)
    print("-" * len(header))
    for name in SPECS:
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
        print(f"{name:<20}{len(net.nodes):>7}{total * 1e3:>10.1f}{t_parse * 1e3:>8.1f}"
              f"{t_lower * 1e3:>8.1f}{(t_lp - t_lower) * 1e3:>8.1f}{t_lint * 1e3:>7.1f}")


if __name__ == "__main__":
    main()
