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

A training checkpoint carries its dataset's normalisation; with plain weights the
statistics are computed from the training split.
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
                   help="the dataset (default: the checkpoint's, else digits)")
    p.add_argument("--data-dir", metavar="DIR", help="where cifar10/cifar100/folder data is")
    p.add_argument("--subset", type=int, metavar="N", help="only the first N test images")
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
    info = load_eval_weights(model, args.weights, ema=args.ema)
    name = args.data or (info or {}).get("name") or "digits"
    num_classes = net.output_shape[0] if net.output_shape and len(net.output_shape) == 1 else None
    data = load_data(name, input_shape=tuple(net.input_shape), num_classes=num_classes or 10,
                     data_dir=Path(args.data_dir) if args.data_dir else None)
    check_fit(data, tuple(net.input_shape), num_classes)
    test = data.test.head(args.subset) if args.subset else data.test
    mean, std = data.mean, data.std
    if info and info.get("name") == name:  # normalise exactly as the run did
        mean, std = tuple(info["mean"]), tuple(info["std"])
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
