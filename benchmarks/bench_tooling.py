"""Speed of the language tooling, each beside its reference, in one run.

  schema   validating preact_resnet1001's IR JSON (3,340 nodes) against `rnetc schema`
           (tagged unions as if/then) vs against pydantic's raw schema (oneOf)
  fmt      formatting every shipped spec + the prelude, and a generated 20,000-line file,
           vs parsing the same text (the formatter's floor: it parses first)
  lsp      analysing a document as the language server does on each change (load,
           compile every network, place diagnostics) vs compile_network alone

Run:  PYTHONPATH=. python benchmarks/bench_tooling.py      (prints a Markdown table)
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from resnet_dsl.compiler import compile_network  # noqa: E402
from resnet_dsl.frontend.parse import parse  # noqa: E402
from resnet_dsl.frontend.source import PRELUDE_PATH  # noqa: E402
from resnet_dsl.tooling.document import Document  # noqa: E402
from resnet_dsl.tooling.format import format_source  # noqa: E402


def best(fn, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def bench_schema() -> tuple[float, float]:
    import jsonschema

    from resnet_dsl.ir.graph import Network
    from resnet_dsl.tooling.schema import ir_json_schema

    net = compile_network(ROOT / "specs" / "preact_resnet1001.rnet")
    document = json.loads(net.model_dump_json())
    ours = jsonschema.Draft202012Validator(ir_json_schema())
    raw = jsonschema.Draft202012Validator(Network.model_json_schema(mode="serialization"))
    assert ours.is_valid(document) and raw.is_valid(document)
    return best(lambda: ours.validate(document), 3), best(lambda: raw.validate(document), 3)


def big_spec(blocks: int = 2000) -> str:
    one = ("# block {i}\nblock b{i}(out, stride = 1) {{\n  conv 3x3 out stride=stride\n  bn\n"
           "  if out > 8 {{\n    relu\n  }} else {{\n    relu6\n  }}\n  conv 3x3 (out * 2)  # wide\n"
           "  bn\n}}\n")
    return "\n".join(one.format(i=i) for i in range(blocks))


def bench_fmt() -> list[tuple[str, float, float]]:
    files = sorted((ROOT / "specs").glob("*.rnet")) + [PRELUDE_PATH]
    texts = [p.read_text(encoding="utf-8") for p in files]
    big = big_spec()
    rows = [
        (f"{len(files)} shipped files, {sum(t.count(chr(10)) for t in texts)} lines",
         best(lambda: [format_source(t) for t in texts]), best(lambda: [parse(t, "x") for t in texts])),
        (f"generated file, {big.count(chr(10))} lines", best(lambda: format_source(big), 3),
         best(lambda: parse(big, "x"), 3)),
    ]
    return rows


def bench_lsp() -> list[tuple[str, float, float]]:
    rows = []
    for name in ("resnet50", "resnet152", "preact_resnet1001"):
        path = ROOT / "specs" / f"{name}.rnet"
        text = path.read_text(encoding="utf-8")
        rows.append((name, best(lambda text=text, path=path: Document(text, path), 3),
                     best(lambda path=path: compile_network(path), 3)))
    return rows


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def main() -> int:
    print(f"{datetime.date.today()}, {_cpu()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print()
    print("| what | tooling | reference | ratio |")
    print("|---|---:|---:|---:|")
    ours, raw = bench_schema()
    print(f"| schema: validate preact_resnet1001 IR (tagged vs raw pydantic schema) | {ours * 1e3:.0f} ms "
          f"| {raw * 1e3:.0f} ms | {raw / ours:.1f}x faster |")
    for label, fmt, parsed in bench_fmt():
        print(f"| fmt: {label} (vs parse only) | {fmt * 1e3:.0f} ms | {parsed * 1e3:.0f} ms "
              f"| {fmt / parsed:.2f}x |")
    for label, doc, compiled in bench_lsp():
        print(f"| lsp: analyse {label} on a change (vs compile_network) | {doc * 1e3:.0f} ms "
              f"| {compiled * 1e3:.0f} ms | {doc / compiled:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
