"""GPU training speed of rnetc's models and pipeline, side by side with the references.

Two measurements, each in one process and one run, so the ratios compare like with like:

1. ResNet-50 training images/s at 224x224, bf16 autocast, channels_last, SGD with
   momentum, data already on the GPU: rnetc's model (specs/resnet50.rnet) and
   torchvision's resnet50 in the same step function, eager and torch.compile'd. Each
   (model, mode) is measured twice, alternating, and the better run kept. The fraction
   of the GPU's peak counts 24.5 GFLOP per training image (3 x 8.2 GFLOP forward).
2. Epochs of cifar_resnet56 on 50,000 synthetic CIFAR-shaped images (batch 128, bf16,
   channels_last), eager and torch.compile'd, fed three ways: rnetc's on-GPU pipeline
   (data resident, crop and flip as batched tensor ops), rnetc's DataLoader pipeline
   (workers collate uint8, augmentation on the GPU), and the conventional torchvision
   pipeline (per-image RandomCrop/RandomHorizontalFlip/Normalize in DataLoader workers).
   One model per mode is fed by each pipeline in turn, alternating, the better of two
   epochs kept. Then `rnetc train`'s own loop for one epoch (eager, on-GPU pipeline), to
   show the trainer adds nothing to the pipeline it uses.

    python benchmarks/gpu_train.py --out results/              # on a GPU (benchmarks/gpu.sh)
    python benchmarks/gpu_train.py --device cpu --steps 2 --batch 2 --image-size 64 \\
        --modes eager --cifar-modes eager --cifar-images 32 --cifar-batch 8 --workers 0
        # a smoke run on a CPU

Writes OUT/gpu_train.json and OUT/gpu_train.md, and prints the table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

GFLOP_PER_TRAINING_IMAGE = 24.5   # ResNet-50: 4.09 GMACs = 8.2 GFLOP forward, x3 for training
# Dense BF16 tensor-core peaks (TFLOP/s) from NVIDIA's data sheets; --peak-tflops overrides.
PEAKS = (("H100 PCIe", 756), ("H100 NVL", 835), ("H100", 989), ("H200", 989), ("GH200", 989),
         ("B200", 2250), ("A100", 312), ("L40S", 362), ("L4", 121), ("A10", 125),
         ("RTX 4090", 165))


def peak_tflops(device: torch.device, override: float | None) -> tuple[float | None, str]:
    if override:
        return override, "given"
    if device.type != "cuda":
        return None, "unknown (CPU)"
    name = torch.cuda.get_device_name(device)
    for key, value in PEAKS:
        if key in name:
            return float(value), f"{key} data sheet"
    return None, f"unknown ({name})"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def autocast(device: torch.device):
    return torch.autocast(device.type, dtype=torch.bfloat16)


def make_step(model, device):
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4,
                          fused=True if device.type == "cuda" else None)

    def step(x, y):
        with autocast(device):
            loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


# -- 1. ResNet-50 ---------------------------------------------------------------------------
def resnet50_models(device):
    import torchvision

    import resnet_dsl

    torch.manual_seed(0)
    ours = resnet_dsl.build(REPO / "specs" / "resnet50.rnet", device=device)
    ref = torchvision.models.resnet50().to(device)
    return {"rnetc": ours, "torchvision": ref}


def images_per_second(step, x, y, warmup: int, steps: int, device) -> float:
    for _ in range(warmup):
        step(x, y)
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step(x, y)
    sync(device)
    return steps * x.shape[0] / (time.perf_counter() - start)


def bench_resnet50(args, device, modes: list[str]) -> list[dict]:
    models = resnet50_models(device)
    x = torch.randn(args.batch, 3, args.image_size, args.image_size, device=device)
    x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 1000, (args.batch,), device=device)
    rows = []
    for mode in modes:
        steps = {}
        for name, model in models.items():
            model = model.to(memory_format=torch.channels_last).train()
            steps[name] = make_step(torch.compile(model) if mode == "compiled" else model, device)
            t0 = time.perf_counter()
            steps[name](x, y)   # first step: cuDNN autotuning, or the whole compilation
            sync(device)
            print(f"resnet50 {mode} {name}: first step {time.perf_counter() - t0:.1f}s", flush=True)
        best = {name: 0.0 for name in models}
        for _ in range(args.repeats):          # alternate, keep the better of each
            for name in models:
                best[name] = max(best[name], images_per_second(steps[name], x, y, args.warmup,
                                                               args.steps, device))
        for name in models:
            rows.append({"model": name, "mode": mode, "images_per_s": best[name]})
            print(f"resnet50 {mode} {name}: {best[name]:,.0f} images/s", flush=True)
    return rows


# -- 2. cifar_resnet56 epoch ------------------------------------------------------------------
class TorchvisionCifar(torch.utils.data.Dataset):
    """The conventional pipeline: per-image transforms in the workers."""

    def __init__(self, images, labels, mean, std):
        from torchvision.transforms import v2

        self.images, self.labels = images, labels
        self.transform = v2.Compose([
            v2.RandomCrop(32, padding=4), v2.RandomHorizontalFlip(),
            v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))])

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.transform(self.images[i]), self.labels[i]


def cifar_pipelines(args, device, data) -> dict:
    """The three ways of feeding the model: name -> a function that yields one epoch of batches."""
    from resnet_dsl.train.augment import BatchTransform
    from resnet_dsl.train.data.gpu_loader import DeviceLoader
    from resnet_dsl.train.data.host_loader import HostLoader
    from resnet_dsl.train.data.sampler import EpochSampler

    batch = args.cifar_batch
    transform = BatchTransform(mean=data.mean, std=data.std, padding=4, hflip=True, device=device,
                               channels_last=True)
    gen = torch.Generator(device=device).manual_seed(1)
    dataset = TorchvisionCifar(data.train.images, data.train.labels, data.mean, data.std)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=batch, shuffle=True, drop_last=True, num_workers=args.workers,
        pin_memory=device.type == "cuda", persistent_workers=args.workers > 0)
    epoch = {"n": 0}

    def torchvision_batches():
        for x, y in loader:
            yield (x.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last),
                   y.to(device, non_blocking=True))

    def rnetc_batches(kind):
        def batches():
            sampler = EpochSampler(len(data.train), batch_size=batch, seed=0)
            made = DeviceLoader(data.train, sampler, device) if kind == "device" else \
                HostLoader(data.train, sampler, device, args.workers)
            made.set_epoch(epoch["n"])
            epoch["n"] += 1
            for images, labels in made.iterate():
                yield transform.train(images, transform.draw(images.shape[0], gen)), labels
        return batches

    warm = (transform.eval(data.train.images[:batch].to(device)), data.train.labels[:batch].to(device))
    return {"device": rnetc_batches("device"), "dataloader": rnetc_batches("dataloader"),
            "torchvision": torchvision_batches}, warm


def cifar_epochs(args, device, net, data, mode: str) -> list[dict]:
    """One model (eager or compiled), fed by each pipeline in turn; the best of the repeats."""
    from resnet_dsl.backends.torch import build_module

    torch.manual_seed(0)
    model = build_module(net, device=device).to(memory_format=torch.channels_last).train()
    step = make_step(torch.compile(model) if mode == "compiled" else model, device)
    pipelines, (x0, y0) = cifar_pipelines(args, device, data)
    t0 = time.perf_counter()
    for _ in range(3):   # cuDNN autotuning, or the compilation, outside the timed epochs
        step(x0, y0)
    sync(device)
    print(f"cifar_resnet56 {mode}: warm-up {time.perf_counter() - t0:.1f}s", flush=True)
    images = (len(data.train) // args.cifar_batch) * args.cifar_batch
    best = {}
    for _ in range(args.repeats):   # alternate the pipelines, keep the better epoch of each
        for name, batches in pipelines.items():
            sync(device)
            start = time.perf_counter()
            for x, y in batches():
                step(x, y)
            sync(device)
            seconds = time.perf_counter() - start
            print(f"cifar_resnet56 {mode} epoch, {name} pipeline: {seconds:.2f}s, "
                  f"{images / seconds:,.0f} images/s", flush=True)
            best[name] = min(best.get(name, float("inf")), seconds)
    return [{"mode": mode, "pipeline": name, "epoch_s": seconds, "images_per_s": images / seconds}
            for name, seconds in best.items()]


def trainer_epoch(args, device, net, out: Path) -> dict | None:
    """`rnetc train`'s own loop on the same data (needs PyYAML for its config.yaml)."""
    try:
        import yaml  # noqa: F401
    except ImportError:
        print("skipping the trainer epoch: PyYAML is not installed", flush=True)
        return None
    from resnet_dsl.train import TrainConfig, train

    config = TrainConfig(data="synthetic", synthetic_size=args.cifar_images, epochs=1,
                         batch_size=args.cifar_batch, amp=True, channels_last=True,  # as above
                         loader="device", device=str(device), print_freq=10**9, tensorboard=False,
                         output_dir=str(out))
    result = train(config, net)
    row = result.rows[-1]
    print(f"cifar_resnet56 epoch, rnetc train: {row['epoch_time_s']:.2f}s, "
          f"{row['images_per_s']:,.0f} images/s", flush=True)
    return {"mode": "eager", "pipeline": "rnetc train (device)", "epoch_s": row["epoch_time_s"],
            "images_per_s": row["images_per_s"]}


def bench_cifar(args, device, out: Path) -> list[dict]:
    from resnet_dsl.compiler import compile_network
    from resnet_dsl.train.data import load_data

    net = compile_network(REPO / "specs" / "cifar_resnet56.rnet")
    data = load_data("synthetic", input_shape=(3, 32, 32), num_classes=10,
                     synthetic_size=args.cifar_images, seed=0)
    rows = [row for mode in args.cifar_modes for row in cifar_epochs(args, device, net, data, mode)]
    # the trainer's run folder (checkpoints) goes to a scratch folder, not next to the results
    with tempfile.TemporaryDirectory(prefix="rnetc-bench-") as scratch:
        trainer = trainer_epoch(args, device, net, Path(scratch))
    return rows + ([trainer] if trainer else [])


# -- report -------------------------------------------------------------------------------------
def report(results: dict) -> str:
    env = results["environment"]
    lines = [f"# rnetc training benchmarks ({env['device_name']}, {env['date']})", "",
             f"torch {env['torch']}; peak {env['peak_tflops'] or '?'} TFLOP/s dense bf16 "
             f"({env['peak_source']})", ""]
    if results["resnet50"]:
        lines += [f"ResNet-50 training, batch {results['resnet50_batch']} at {results['image_size']}px, "
                  "bf16 autocast, channels_last, SGD, data on the device:", "",
                  "| model | mode | images/s | rnetc / torchvision | fraction of peak |",
                  "| --- | --- | ---: | ---: | ---: |"]
        by = {(r["model"], r["mode"]): r["images_per_s"] for r in results["resnet50"]}
        for (model, mode), ips in by.items():
            ratio = ips / by[("torchvision", mode)]
            frac = (f"{ips * GFLOP_PER_TRAINING_IMAGE / (env['peak_tflops'] * 1e3):.1%}"
                    if env["peak_tflops"] else "-")
            lines.append(f"| {model} | {mode} | {ips:,.0f} | {ratio:.3f} | {frac} |")
        lines.append("")
    if results["cifar"]:
        lines += [f"cifar_resnet56, one epoch of {results['cifar_images']:,} synthetic 32x32 images, "
                  f"batch {results['cifar_batch']}, bf16, channels_last (best of "
                  f"{results.get('repeats', 1)} alternating epochs per pipeline):", "",
                  "| model | pipeline | seconds | images/s | vs the torchvision pipeline |",
                  "| --- | --- | ---: | ---: | ---: |"]
        ref = {r["mode"]: r["images_per_s"] for r in results["cifar"] if r["pipeline"] == "torchvision"}
        for r in results["cifar"]:
            vs = f"{r['images_per_s'] / ref[r['mode']]:.2f}x" if r["mode"] in ref else "-"
            lines.append(f"| {r['mode']} | {r['pipeline']} | {r['epoch_s']:.2f} | "
                         f"{r['images_per_s']:,.0f} | {vs} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="benchmark-results", help="folder for gpu_train.json/.md")
    p.add_argument("--device", default="cuda")
    p.add_argument("--batch", type=int, default=256, help="ResNet-50 batch (default 256)")
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--steps", type=int, default=30, help="timed ResNet-50 steps per run")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--repeats", type=int, default=2, help="alternating runs per (model, mode)")
    p.add_argument("--modes", type=lambda s: s.split(","), default=["eager", "compiled"])
    p.add_argument("--cifar-images", type=int, default=50_000)
    p.add_argument("--cifar-batch", type=int, default=128, help="the paper's 128")
    p.add_argument("--cifar-modes", type=lambda s: s.split(","), default=["eager", "compiled"],
                   help="cifar_resnet56 eager and/or compiled (a faster model shows the pipeline's cost)")
    p.add_argument("--workers", type=int, default=min(16, os.cpu_count() or 1),
                   help="DataLoader workers of the two DataLoader pipelines")
    p.add_argument("--peak-tflops", type=float, help="the GPU's dense bf16 peak, if not in the table")
    p.add_argument("--skip", choices=("resnet50", "cifar"), action="append", default=[])
    args = p.parse_args(argv)

    device = torch.device(args.device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            p.error("no CUDA device; pass --device cpu for a smoke run")
        if device.index is None:   # torch before 2.14 wants an index here
            device = torch.device("cuda", torch.cuda.current_device())
        torch.cuda.set_device(device)
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    peak, source = peak_tflops(device, args.peak_tflops)
    results = {
        "environment": {
            "device_name": torch.cuda.get_device_name(device) if device.type == "cuda"
            else f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)",
            "torch": torch.__version__, "python": platform.python_version(),
            "date": time.strftime("%Y-%m-%d"), "peak_tflops": peak, "peak_source": source},
        "resnet50_batch": args.batch, "image_size": args.image_size, "cifar_images": args.cifar_images,
        "cifar_batch": args.cifar_batch, "repeats": args.repeats, "resnet50": [], "cifar": [],
    }

    def save() -> str:   # after every part, so a run cut short still leaves what it measured
        (out / "gpu_train.json").write_text(json.dumps(results, indent=2) + "\n")
        text = report(results)
        (out / "gpu_train.md").write_text(text)
        return text

    # eager ResNet-50, then the CIFAR epochs, then the (slow to compile) compiled ResNet-50
    eager = [m for m in args.modes if m != "compiled"]
    compiled = [m for m in args.modes if m == "compiled"]
    if "resnet50" not in args.skip and eager:
        results["resnet50"] += bench_resnet50(args, device, eager)
        save()
    if "cifar" not in args.skip:
        results["cifar"] = bench_cifar(args, device, out)
        save()
    if "resnet50" not in args.skip and compiled:
        results["resnet50"] += bench_resnet50(args, device, compiled)
    print(save())
    return 0


if __name__ == "__main__":
    sys.exit(main())
