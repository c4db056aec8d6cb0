"""ONNX export of resnet50 (3x224x224): export time, and onnxruntime against PyTorch eager.

1. Export time of `export_onnx` (trace + minimal graph + metadata + write), without and
   with its check, median of --repeats; beside it, for the record of why rnetc uses the
   dynamo exporter, the TorchScript exporter (`dynamo=False`) on the same model, its
   time and the nodes it leaves; and the nodes both exporters give cifar_resnet20,
   whose option-A shortcuts pad channels under a dynamic batch.
2. CPU inference latency at batch 1 and 8: PyTorch eager (eval, inference_mode) and
   onnxruntime (CPUExecutionProvider, all graph optimisations) on the same input, both
   on --threads threads, interleaved run by run (so that load from other processes hits
   both alike), after warm-up; median per side and the ratio eager / onnxruntime.
   onnxruntime's threads do not spin-wait after a run: spinning threads would take the
   CPU from the eager run that follows. On a machine shared with other jobs, more
   threads than free cores make both sides far slower and noisier (OpenMP waits for
   descheduled threads at every layer), so the default is one thread.

    python benchmarks/onnx.py [--repeats 3] [--runs 20] [--threads 1]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# This script is named onnx.py: its own folder (sys.path[0]) would shadow the onnx package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(REPO))

SPEC = REPO / "specs" / "resnet50.rnet"


def median_time(fn, repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def torchscript_export(model, x, path: Path) -> Counter:
    import onnx
    import torch

    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), str(path), dynamo=False, input_names=["images"],
                          output_names=["logits"],
                          dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}})
    return Counter(n.op_type for n in onnx.load(str(path)).graph.node)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="exports to time (median)")
    parser.add_argument("--runs", type=int, default=20, help="inference runs per side and batch")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import onnxruntime as ort
    import torch

    from resnet_dsl.backends.onnx import export_onnx
    from resnet_dsl.backends.torch import build_module
    from resnet_dsl.compiler import compile_network

    torch.set_num_threads(args.threads)
    net = compile_network(SPEC)
    torch.manual_seed(0)
    model = build_module(net, device="cpu").eval()
    folder = Path(tempfile.mkdtemp())
    path = folder / "resnet50.onnx"

    print(f"torch {torch.__version__}, onnxruntime {ort.__version__}, python "
          f"{platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs, "
          f"{args.threads} threads")
    export_onnx(net, path, model=model, check=False)   # warm-up: the exporter's lazy imports
    reports = []
    t_export = median_time(lambda: reports.append(export_onnx(net, path, model=model, check=False)),
                           args.repeats)
    t_checked = median_time(lambda: reports.append(export_onnx(net, path, model=model)),
                            args.repeats)
    report = reports[-1]
    x = torch.randn(2, 3, 224, 224)
    ts_counts: list[Counter] = []
    t_ts = median_time(lambda: ts_counts.append(torchscript_export(model, x, folder / "ts.onnx")),
                       args.repeats)
    print(f"\nexport of resnet50, median of {args.repeats}:")
    print(f"  rnetc export_onnx (dynamo):  {t_export:6.1f} s  ({sum(report.op_counts.values())} nodes:"
          f" {', '.join(f'{n} {op}' for op, n in report.op_counts.items())})")
    print(f"  the same, checked:           {t_checked:6.1f} s  (+ onnx.checker full, onnxruntime"
          f" vs PyTorch at batch 1 and 3)")
    print(f"  torch.onnx dynamo=False:     {t_ts:6.1f} s  ({sum(ts_counts[-1].values())} nodes:"
          f" {', '.join(f'{n} {op}' for op, n in ts_counts[-1].most_common())})")
    print(f"  file: {report.size_bytes / 2**20:.1f} MiB, opset {report.opset}")

    # The graphs of an option-A (zero-pad) shortcut network, once each (not timed).
    small = compile_network(REPO / "specs" / "cifar_resnet20.rnet")
    small_model = build_module(small, device="cpu").eval()
    mine = export_onnx(small, folder / "r20.onnx", model=small_model, check=False).op_counts
    theirs = torchscript_export(small_model, torch.randn(2, 3, 32, 32), folder / "r20_ts.onnx")
    print("\ncifar_resnet20 (zero-pad shortcuts), dynamic batch:")
    print(f"  rnetc export_onnx (dynamo):  {sum(mine.values())} nodes: "
          f"{', '.join(f'{n} {op}' for op, n in mine.items())}")
    print(f"  torch.onnx dynamo=False:     {sum(theirs.values())} nodes: "
          f"{', '.join(f'{n} {op}' for op, n in theirs.most_common())}")

    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    print(f"\nCPU latency, median of {args.runs} interleaved runs (ms):")
    print(f"  {'batch':>5} {'PyTorch eager':>14} {'onnxruntime':>12} {'eager / ort':>12}")
    for batch in (1, 8):
        x = torch.randn(batch, 3, 224, 224)
        feed = {"images": x.numpy()}

        def eager():
            with torch.inference_mode():
                model(x)

        def runtime():
            session.run(None, feed)

        for _ in range(3):   # warm-up
            eager()
            runtime()
        t_torch, t_ort = [], []
        for _ in range(args.runs):
            t_torch.append(median_time(eager, 1))
            t_ort.append(median_time(runtime, 1))
        a, b = statistics.median(t_torch), statistics.median(t_ort)
        print(f"  {batch:>5} {a * 1e3:>14.1f} {b * 1e3:>12.1f} {a / b:>11.2f}x")


if __name__ == "__main__":
    main()
