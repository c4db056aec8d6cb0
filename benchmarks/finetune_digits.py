"""Does starting from pre-trained weights help? Measured on the bundled digits.

A network is pre-trained on the digits 0-4 only; its backbone (every tensor but the
head's, saved as a .safetensors file, as a Keras `include_top=False` file would be) is
then fine-tuned on the digits 5-9 (`--weights`: the head starts fresh), against the same
network trained on 5-9 from scratch, with the same recipe and the same number of epochs:
1, 2 and 5, each a complete run (its own schedule) and each over several seeds. A third
row trains only the head on the frozen backbone (`--freeze backbone`). The test split is
the digits' own (every fifth image), restricted to 5-9 (179 images).

Everything goes through the public Python API (`resnet_dsl.train.train`, with `data=` a
class subset of `--data digits`), on the CPU.

Run:  PYTHONPATH=. python benchmarks/finetune_digits.py [--seeds 5] [--epochs 1 2 5]
      (prints a Markdown table; about two minutes on 2 CPU cores)
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from resnet_dsl.compiler import compile_network  # noqa: E402
from resnet_dsl.train import TrainConfig, train  # noqa: E402
from resnet_dsl.train.data import load_data  # noqa: E402
from resnet_dsl.train.data.dataset import Data, Split, channel_stats  # noqa: E402


def class_subset(data: Data, keep: list[int]) -> Data:
    """The images of the classes `keep`, relabelled 0..len(keep)-1 (in that order)."""
    def split(s: Split) -> Split:
        mask = torch.isin(s.labels, torch.tensor(keep))
        relabel = {c: i for i, c in enumerate(keep)}
        labels = torch.tensor([relabel[int(v)] for v in s.labels[mask]], dtype=torch.int64)
        return Split(labels, images=s.images[mask])

    train_split, test_split = split(data.train), split(data.test)
    mean, std = channel_stats(train_split.images)
    return Data(name=f"digits {keep[0]}-{keep[-1]}", train=train_split, test=test_split,
                classes=[data.classes[c] for c in keep], image_shape=data.image_shape,
                mean=mean, std=std, default_epochs=data.default_epochs, hflip=data.hflip,
                crop_padding=data.crop_padding)


def run(net, data, out: Path, **options) -> float:
    config = TrainConfig(device="cpu", tensorboard=False, print_freq=10_000, output_dir=str(out),
                         **options)
    result = train(config, net, data=data)
    if not result.completed:  # Ctrl-C or SIGTERM: stop the whole experiment, not just this run
        sys.exit(130)
    return result.rows[-1]["test_acc"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spec", default=str(ROOT / "specs" / "cifar_resnet20.rnet"))
    ap.add_argument("--input", default="1x16x16", help="CxHxW (the digits are 8x8)")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--epochs", type=int, nargs="+", default=[1, 2, 5])
    ap.add_argument("--pretrain-epochs", type=int, default=15)
    ap.add_argument("-b", "--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=0.1)
    args = ap.parse_args()
    torch.set_num_threads(min(torch.get_num_threads(), os.cpu_count() or 1))

    shape = tuple(int(v) for v in args.input.lower().split("x"))
    net = compile_network(args.spec, params={"classes": 5}, input_shape=shape)
    digits = load_data("digits", input_shape=shape, num_classes=10)
    first, second = class_subset(digits, [0, 1, 2, 3, 4]), class_subset(digits, [5, 6, 7, 8, 9])
    work = Path(tempfile.mkdtemp(prefix="rnetc-finetune-"))
    start = time.perf_counter()

    pre = run(net, first, work / "pretrain", epochs=args.pretrain_epochs, batch_size=args.batch_size,
              lr=args.lr, seed=0)
    print(f"pre-trained on {first.name}: {len(first.train)} train / {len(first.test)} test images, "
          f"{args.pretrain_epochs} epochs, test accuracy {100 * pre:.1f}%", file=sys.stderr)
    from resnet_dsl.backends.torch.weights import read_state_dict
    from resnet_dsl.train.finetune import head_modules, in_head
    from safetensors.torch import save_file

    from resnet_dsl.backends.torch import build_module

    state = read_state_dict(work / "pretrain" / "last.pt")
    head = head_modules(build_module(net, device="meta"), net)
    backbone = work / "backbone.safetensors"
    save_file({k: v.contiguous() for k, v in state.items() if not in_head(k, head)}, str(backbone))

    rows = {"from scratch": {}, "fine-tuned (--weights)": {}, "head only (--freeze backbone)": {}}
    for epochs in args.epochs:
        for seed in range(args.seeds):
            common = dict(epochs=epochs, batch_size=args.batch_size, lr=args.lr, seed=seed)
            tag = f"e{epochs}s{seed}"
            for label, extra in (("from scratch", {}),
                                 ("fine-tuned (--weights)", {"weights": str(backbone)}),
                                 ("head only (--freeze backbone)",
                                  {"weights": str(backbone), "freeze": "backbone"})):
                acc = run(net, second, work / f"{label.split()[0]}-{tag}", **common, **extra)
                rows[label].setdefault(epochs, []).append(acc)
    seconds = time.perf_counter() - start

    print(f"{Path(args.spec).name} at {args.input}, {second.name}: {len(second.train)} train / "
          f"{len(second.test)} test images; batch {args.batch_size}, lr {args.lr}, multistep; "
          f"pre-trained {args.pretrain_epochs} epochs on {first.name} ({100 * pre:.1f}% on its "
          f"test images)")
    print(f"test accuracy on {second.name}, mean of {args.seeds} seeds (min-max)\n")
    print("| start | " + " | ".join(f"{e} epoch{'s' if e != 1 else ''}" for e in args.epochs) + " |")
    print("| --- |" + " --- |" * len(args.epochs))
    for label, by_epochs in rows.items():
        cells = []
        for e in args.epochs:
            accs = [100 * a for a in by_epochs[e]]
            cells.append(f"{statistics.mean(accs):.1f}% ({min(accs):.1f}-{max(accs):.1f})")
        print(f"| {label} | " + " | ".join(cells) + " |")
    print(f"\n{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch "
          f"{torch.__version__}, {torch.get_num_threads()} threads; "
          f"{datetime.date.today().isoformat()}; {seconds:.0f} s")


if __name__ == "__main__":
    main()
