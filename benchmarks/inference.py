"""CPU inference latency of resnet50 at 3x224x224: rnetc's inference build against
torchvision's resnet50 in eval mode, and onnxruntime on rnetc's ONNX file.

One process, the same weights everywhere (torchvision's random initialisation, loaded
into rnetc's model, with random BN statistics so that folding is not the identity),
one input per batch size. Each side runs on the same --threads torch threads:

    torchvision eager       torchvision.models.resnet50(), eval, torch.inference_mode
    rnetc eval              resnet_dsl.build("specs/resnet50.rnet"), eval, inference_mode
    rnetc inference         resnet_dsl.inference(model): BNs folded into the convs
    ... channels_last       the same, weights and input in channels_last
    ... compiled            (--compile) the channels_last build through torch.compile with
                            inductor's freezing (weights as constants, conv+ReLU/add fused)
    onnxruntime             rnetc's exported file (export_onnx), CPUExecutionProvider, all
                            graph optimisations, no spin-waiting between runs

The sides are interleaved run by run, in an order that rotates every round, after
warm-up, so that load from other processes hits them alike; each row is the median of
--runs, and the ratio is that median over torchvision eager's. Outputs are compared
with torchvision's before timing (max abs diff printed).

    python benchmarks/inference.py [--runs 10] [--threads 1] [--batches 1 8] [--compile]
    python benchmarks/inference.py --quick        # batch 1, 5 runs: a minute or so
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# benchmarks/onnx.py would shadow the onnx package if this folder (sys.path[0]) stayed.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(REPO))

SPEC = REPO / "specs" / "resnet50.rnet"
WARMUP = 3


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def randomize_bn(model, seed: int = 0) -> None:
    import torch

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                n = m.num_features
                m.weight.copy_(torch.rand(n, generator=g) * 0.5 + 0.5)
                m.bias.copy_(torch.randn(n, generator=g) * 0.1)
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(n, generator=g) * 0.5 + 0.75)


def make_sides(args) -> tuple[dict, object]:
    """name -> (run(x), how its input is made from x); and the reference model."""
    import onnxruntime as ort
    import torch
    import torchvision

    import resnet_dsl
    from resnet_dsl.backends.onnx import export_onnx
    from resnet_dsl.backends.torch import build_module
    from resnet_dsl.compiler import compile_network

    torch.manual_seed(0)
    reference = torchvision.models.resnet50()
    randomize_bn(reference)
    reference.eval()
    net = compile_network(SPEC)
    model = build_module(net, device="cpu")
    model.load_state_dict(reference.state_dict(), strict=True)
    model.eval()
    fast = resnet_dsl.inference(model)
    fast_cl = resnet_dsl.inference(model).to(memory_format=torch.channels_last)

    def torch_side(m):
        def run(x):
            with torch.inference_mode():
                return m(x)
        return run

    def contiguous(x):
        return (x)
    def channels_last(x):
        return (x.contiguous(memory_format=torch.channels_last))
    sides = {
        "torchvision eager": (torch_side(reference), contiguous),
        "rnetc eval": (torch_side(model), contiguous),
        "rnetc inference": (torch_side(fast), contiguous),
        "rnetc inference, channels_last": (torch_side(fast_cl), channels_last),
    }
    if args.compile:
        import torch._inductor.config as inductor

        inductor.freezing = True
        compiled = torch.compile(resnet_dsl.inference(model).to(memory_format=torch.channels_last))
        start = time.perf_counter()
        for batch in args.batches:  # compile each shape outside the timed runs
            compiled_run = torch_side(compiled)
            compiled_run(channels_last(torch.randn(batch, 3, 224, 224)))
        print(f"torch.compile (inductor, freezing): compiled in {time.perf_counter() - start:.0f} s")
        sides["rnetc inference, channels_last, compiled"] = (torch_side(compiled), channels_last)

    path = Path(tempfile.mkdtemp()) / "resnet50.onnx"
    start = time.perf_counter()
    export_onnx(net, path, model=model, check=False)
    print(f"export_onnx: {time.perf_counter() - start:.1f} s")
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def ort_run(x):
        return torch.from_numpy(session.run(None, {"images": x})[0])

    sides["onnxruntime"] = (ort_run, lambda x: x.numpy())
    return sides, reference


def measure(sides: dict, batch: int, runs: int) -> dict[str, float]:
    import torch

    x = torch.randn(batch, 3, 224, 224, generator=torch.Generator().manual_seed(batch))
    inputs = {name: prepare(x) for name, (_, prepare) in sides.items()}
    expected = sides["torchvision eager"][0](x)
    for name, (run, _) in sides.items():
        diff = (run(inputs[name]).float() - expected).abs().max().item()
        print(f"  batch {batch}: {name}: max abs diff vs torchvision {diff:.2e}")
    names = list(sides)
    for _ in range(WARMUP):
        for name in names:
            sides[name][0](inputs[name])
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(runs):
        for name in names[r % len(names):] + names[:r % len(names)]:
            run = sides[name][0]
            start = time.perf_counter()
            run(inputs[name])
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="timed runs per side and batch")
    parser.add_argument("--threads", type=int, default=1, help="torch and onnxruntime threads")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--compile", action="store_true",
                        help="also torch.compile (inductor, freezing) the inference build: "
                             "minutes of compilation on a small CPU")
    parser.add_argument("--quick", action="store_true", help="batch 1 only, 5 runs")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.batches = 5, [1]

    import onnxruntime as ort
    import torch
    import torchvision

    torch.set_num_threads(args.threads)
    print(f"{cpu_name()}, {os.cpu_count()} CPUs, load average "
          f"{' '.join(f'{v:.1f}' for v in os.getloadavg())}; python {platform.python_version()}, "
          f"torch {torch.__version__}, torchvision {torchvision.__version__}, onnxruntime "
          f"{ort.__version__}; {args.threads} thread(s), {args.runs} runs")
    sides, _ = make_sides(args)
    results = {batch: measure(sides, batch, args.runs) for batch in args.batches}

    print(f"\nresnet50, 3x224x224, median of {args.runs} interleaved runs "
          f"(load average now {' '.join(f'{v:.1f}' for v in os.getloadavg())}):\n")
    head = "| side | " + " | ".join(f"batch {b} | vs torchvision" for b in args.batches) + " |"
    print(head)
    print("| --- |" + " ---: | ---: |" * len(args.batches))
    for name in sides:
        cells = []
        for batch in args.batches:
            t, base = results[batch][name], results[batch]["torchvision eager"]
            cells += [f"{t * 1e3:,.1f} ms", f"{t / base:.2f}x"]
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
