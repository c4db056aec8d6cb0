"""`rnetc eval FILE --weights W`: test loss and accuracy of trained weights on a dataset."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from resnet_dsl.cli.common import UsageError, add_spec_arguments, compile_args

EPILOG = """\
examples:
  rnetc eval specs/cifar_resnet20.rnet --weights runs/cifar_resnet20/best.pt
  rnetc eval specs/cifar_resnet56.rnet --weights r56.safetensors --data cifar10 --data-dir data/
  rnetc eval specs/cifar_resnet20.rnet --weights runs/r20/last.pt --ema --json

A training checkpoint carries its run's data options (dataset, folder, subset,
synthetic size and seed) and normalisation, which are the defaults here; with plain
weights the statistics are computed from the training split.
"""


def register(sub) -> None:
    from resnet_dsl.train.data import SOURCES

    p = sub.add_parser(
        "eval", help="test accuracy of trained weights",
        description="Evaluate weights (a training checkpoint, or a .safetensors/.pt state dict "
                    "as `rnetc compile -o` writes) on the test split of a dataset.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_spec_arguments(p)
    p.add_argument("--weights", required=True, metavar="FILE",
                   help="best.pt / last.pt of a run, or a .safetensors/.pt/.pth state dict")
    p.add_argument("--data", choices=SOURCES, default=None,
                   help="the dataset (default: the training run's, else digits)")
    p.add_argument("--data-dir", metavar="DIR",
                   help="where cifar10/cifar100/folder data is (default: the training run's)")
    p.add_argument("--subset", type=int, metavar="N",
                   help="only the first N test images (default: the training run's)")
    p.add_argument("-b", "--batch-size", type=int, default=256, metavar="N", help="default: 256")
    p.add_argument("--device", default="auto", metavar="DEV", help="auto (default), cpu, cuda, cuda:N")
    p.add_argument("--ema", action="store_true", help="evaluate the checkpoint's EMA weights")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from resnet_dsl.backends.torch import build_module
    from resnet_dsl.train.augment import BatchTransform
    from resnet_dsl.train.config import OptionError
    from resnet_dsl.train.data import load_data
    from resnet_dsl.train.data.gpu_loader import DeviceLoader
    from resnet_dsl.train.data.host_loader import HostLoader
    from resnet_dsl.train.data.sampler import EpochSampler
    from resnet_dsl.train.distributed import Dist, resolve_device
    from resnet_dsl.train.evaluate import evaluate_model, load_eval_weights
    from resnet_dsl.train.run import check_fit

    for flag, value in (("--batch-size", args.batch_size), ("--subset", args.subset)):
        if value is not None and value < 1:
            raise UsageError(f"{flag} must be a positive integer, got {value}")
    net = compile_args(args)
    try:
        device = resolve_device(args.device, Dist())
    except OptionError as exc:
        raise UsageError(str(exc)) from None
    model = build_module(net, device="cpu")
    run_info = load_eval_weights(model, args.weights, ema=args.ema, network=net.name)
    trained = run_info.get("config", {})   # the run's data options are the defaults
    name = args.data or trained.get("data") or "digits"
    same_data = trained.get("data") == name
    data_dir = args.data_dir or (trained.get("data_dir") if same_data else None)
    num_classes = net.output_shape[0] if net.output_shape and len(net.output_shape) == 1 else None
    data = load_data(name, input_shape=tuple(net.input_shape), num_classes=num_classes or 10,
                     data_dir=Path(data_dir) if data_dir else None,
                     synthetic_size=trained.get("synthetic_size", 10_000) if same_data else 10_000,
                     seed=trained.get("seed", 0) if same_data else 0)
    check_fit(data, tuple(net.input_shape), num_classes)
    subset = args.subset or (trained.get("subset") if same_data else None)
    test = data.test.head(subset) if subset else data.test
    mean, std = data.mean, data.std
    if same_data and run_info.get("data"):  # normalise exactly as the run did
        mean, std = tuple(run_info["data"]["mean"]), tuple(run_info["data"]["std"])
    model = model.to(device).eval()
    sampler = EpochSampler(len(test), batch_size=args.batch_size, shuffle=False, drop_last=False)
    loader = DeviceLoader(test, sampler, device) if test.resident else HostLoader(test, sampler, device, 4)
    transform = BatchTransform(mean=mean, std=std, padding=0, hflip=False, device=device,
                               size=tuple(net.input_shape[1:]))
    result = evaluate_model(model, loader, transform, device=device)
    result.update(network=net.name, data=name, weights=str(args.weights))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{net.name} on {name} test ({result['images']:,} images): loss {result['loss']:.4f}  "
              f"top-1 {100 * result['acc']:.2f}%  top-5 {100 * result['top5']:.2f}%")
    return 0
