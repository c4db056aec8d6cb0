"""`rnetc predict FILE --weights W IMAGE...`: the top classes a trained network gives images."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from resnet_dsl.cli.common import UsageError, add_spec_arguments, compile_args

EPILOG = """\
examples:
  rnetc predict specs/cifar_resnet20.rnet --weights runs/quickstart-cifar_resnet20/best.pt digit.png
  rnetc predict specs/resnet18.rnet --set classes=10 --weights runs/pets/best.pt photos/ --topk 3
  rnetc predict specs/cifar_resnet20.rnet --weights best.pt a.png b.jpg --json

IMAGE is a PNG/JPEG (any format Pillow reads) or a folder of them (sorted). Each image
gets the transform the run evaluated with, saved in its checkpoint: RGB or grey, the
shorter side fitted and the centre cropped to the run's image size, the run's
normalisation. Classes are named as the run's data named them (image folders, CIFAR).
Plain weights carry no transform: the spec's input size and ImageNet's mean/std (1
channel: 0.5/0.25) are used, classes are indices, and a note says so. Give the
--set/--input options the run was trained with, as for `rnetc eval`.
"""


def register(sub) -> None:
    p = sub.add_parser(
        "predict", help="classify images with trained weights",
        description="Print the top-k classes and their probabilities for each image, as the "
                    "trained network (a training checkpoint, or a .safetensors/.pt state dict) "
                    "sees it.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_spec_arguments(p)
    p.add_argument("--weights", required=True, metavar="FILE",
                   help="best.pt / last.pt of a run, or a .safetensors/.pt/.pth state dict")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files or folders of images")
    p.add_argument("-k", "--topk", type=int, default=5, metavar="K",
                   help="how many classes to show per image (default: 5, at most the classes)")
    p.add_argument("-b", "--batch-size", type=int, default=64, metavar="N", help="default: 64")
    p.add_argument("--device", default="auto", metavar="DEV", help="auto (default), cpu, cuda, cuda:N")
    p.add_argument("--ema", action="store_true", help="use the checkpoint's EMA weights")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object: network, weights, transform, predictions")
    p.set_defaults(run=run)


def _fit_error(exc, weights: str, net) -> Exception:
    """An E805 for weights of another network, with what the checkpoint says it is."""
    from resnet_dsl.errors import error
    from resnet_dsl.train import checkpoint

    try:
        state = checkpoint.load(weights)
        spec = state.get("spec") if state.get("format") == checkpoint.FORMAT else None
    except Exception:
        spec = None
    if not isinstance(spec, dict) or not spec.get("network"):
        return exc
    sets = "".join(f" --set {k}={v}" for k, v in sorted((spec.get("params") or {}).items()))
    shape = spec.get("input_shape")
    run = f"{spec.get('file') or spec['network']}{sets}" + \
          (f" --input {'x'.join(map(str, shape))}" if shape else "")
    d = exc.diagnostics[0]
    other = spec["network"] != net.name
    message = (f"{weights} holds weights of {spec['network']}, not {net.name}" if other
               else d.message)
    return error("E805", message, help=f"the run that wrote it trained `{run}`: predict with that "
                                       "spec and those options")


def _percent(p: float) -> str:
    """0.986 -> '98.6%'; what would print as 0.0% or 100.0% says it is not quite that."""
    if p < 0.0005:
        return "<0.1%"
    if p > 0.9995 and p < 1:
        return ">99.9%"
    return f"{100 * p:.1f}%"


def run(args: argparse.Namespace) -> int:
    from resnet_dsl.backends.torch import build_module
    from resnet_dsl.errors import RnetError
    from resnet_dsl.train.config import OptionError
    from resnet_dsl.train.distributed import Dist, resolve_device
    from resnet_dsl.train.evaluate import load_eval_weights
    from resnet_dsl.train.predict import (checkpoint_transform, default_transform, image_files,
                                          predict_files)

    for flag, value in (("--topk", args.topk), ("--batch-size", args.batch_size)):
        if value < 1:
            raise UsageError(f"{flag} must be a positive integer, got {value}")
    net = compile_args(args)
    files = image_files(args.images)   # a wrong path is a usage error before any loading
    try:
        device = resolve_device(args.device, Dist())
    except OptionError as exc:
        raise UsageError(str(exc)) from None
    model = build_module(net, device="cpu")
    try:
        info = load_eval_weights(model, args.weights, ema=args.ema, network=net.name)
    except RnetError as exc:
        if exc.codes == ["E805"] and Path(args.weights).is_file():
            raise _fit_error(exc, args.weights, net) from None
        raise
    shape = tuple(net.input_shape)
    data = info.get("data") or {}
    names = None
    if data.get("mean"):
        transform = checkpoint_transform(data, shape)
        names = data.get("class_names", data.get("classes") if data.get("name") != "synthetic" else None)
        trained = (data.get("eval_transform") or {}).get("input_size")
        if trained and tuple(trained) != tuple(shape[1:]):
            size = "x".join(map(str, trained))
            print(f"note: the run that wrote {args.weights} trained at {size}; this network takes "
                  f"{shape[1]}x{shape[2]} (--input {shape[0]}x{size} predicts as the run did)",
                  file=sys.stderr)
    else:
        transform = default_transform(shape)
        print(f"note: {args.weights} holds plain weights, without the transform of the run that "
              f"trained them; using the default: {transform.describe()}; classes are shown as "
              "indices", file=sys.stderr)
    model = model.to(device).eval()
    predictions = predict_files(model, files, transform, topk=args.topk, device=device, names=names,
                                batch_size=args.batch_size)
    if args.json:
        result = {"network": net.name, "weights": str(args.weights),
                  "transform": transform.to_dict(), "class_names": bool(names),
                  "predictions": [p.to_dict() for p in predictions]}
        print(json.dumps(result, indent=2))
        return 0
    for p in predictions:
        shown = "  ".join(f"{p.label(i)} {_percent(prob)}" for i, prob in p.top)
        print(f"{p.image}: {shown}", flush=True)
    return 0
