"""How fast rnetc refuses absurd specs (each limit), and that real ResNets fit.

    python benchmarks/limits.py

For each case: the error code, and the median CPU time over 5 runs from spec text to
the refusal (nothing is allocated: the checks run on the front end's IR).
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from resnet_dsl.compiler import compile_network  # noqa: E402
from resnet_dsl.errors import RnetError  # noqa: E402
from resnet_dsl.limits import DEFAULT_LIMITS  # noqa: E402

CASES = [
    ("repeats: stage x 10^9", "network n { input 3x8x8; stage x 1000000000 basic(8) }"),
    ("layers: 5,000 bottlenecks", "network n { input 3x8x8; stage x 5000 bottleneck(8) }"),
    ("layers: exponential recursion", "block a(n) { if n > 0 { a(n - 1); a(n - 1) }; relu }\n"
                                      "network n { input 3x8x8; a(30) }"),
    ("steps: exponential calls, no layers", "block a(n) { if n > 0 { a(n - 1); a(n - 1) } }\n"
                                            "network n { input 3x8x8; a(30) }"),
    ("block recursion without end", "block a(w) { a(w) }\nnetwork n { input 3x8x8; a(4) }"),
    ("channels: 10^6", "network n { input 3x8x8; conv 3x3 1000000 }"),
    ("input 100000x100000", "network n { input 3x100000x100000; conv 3x3 8 }"),
    ("parameters: 3 x 60000^2 x 49", "network n { input 3x8x8; conv 1x1 60000; conv 7x7 60000; "
                                      "conv 7x7 60000 }"),
    ("activations: 16000^2 x 60000", "network n { input 3x16000x16000; conv 3x3 60000 }"),
    ("integers: 2^124", "network n { let a = 4611686018427387904 * 4611686018427387904; input 3x8x8 }"),
    ("nesting: 5,000-term sum", "network n { input 3x8x8; let a = " + "+".join(["1"] * 5000) + " }"),
    ("file of 2 MiB", "# " + "x" * (2 << 20) + "\nnetwork n { input 3x8x8 }"),
]

REAL = ["preact_resnet1001", "wrn28_10", "resnext101_32x8d", "resnet152"]


def main() -> None:
    print(f"{'case':<40}{'code':>6}{'CPU ms':>10}")
    for name, text in CASES:
        samples, code = [], "ok"
        for _ in range(5):
            t0 = time.process_time()
            try:
                compile_network(text)
            except RnetError as exc:
                code = exc.codes[0]
            samples.append(time.process_time() - t0)
        print(f"{name:<40}{code:>6}{statistics.median(samples) * 1e3:>10.1f}")
    print(f"\ndefault limits: {DEFAULT_LIMITS}")
    for name in REAL:
        net = compile_network(REPO / "specs" / f"{name}.rnet")
        print(f"{name}: {len(net.nodes):,} layers, {net.totals.params:,} parameters: accepted")


if __name__ == "__main__":
    main()
