"""`rnetc train FILE`: train the spec's network on real data (also `rnetc compile FILE --train`).

The training flags are named as in torchvision's and timm's reference scripts. Their
defaults live in `resnet_dsl.train.config.TrainConfig`; here every flag defaults to
"not given" (argparse.SUPPRESS), so that a --config file fills what the command line
leaves out and the command line wins over the file. `compile --train` adds the same
flags to `rnetc compile` (`add_training_arguments`) and calls `train_network`.
"""

from __future__ import annotations

import argparse
import shlex
import sys

from resnet_dsl.cli.common import UsageError, add_spec_arguments, compile_args, parse_sets

EPILOG = """\
examples:
  rnetc train specs/cifar_resnet20.rnet                          # digits, bundled: no download
  rnetc train specs/cifar_resnet56.rnet --data cifar10 --data-dir data/ --schedule paper
  rnetc train specs/resnet18.rnet --data folder --data-dir imagenette/ --input 3x160x160 \\
      --set classes=10 --epochs 30 --schedule cosine --warmup-epochs 2 --amp --compile
  rnetc train specs/cifar_resnet20.rnet --output-dir runs/r20 --resume     # continue a run
  rnetc train specs/resnet18.rnet --weights resnet18-f37072fd.pth --set classes=10 \
      --data folder --data-dir flowers/ --freeze backbone --head-lr 0.1 --lr 0.01   # fine-tune
  torchrun --nproc_per_node=8 -m resnet_dsl train specs/resnet50.rnet --data folder ...

Data is read from disk, never downloaded (docs/training.md lists the layouts). The run
folder gets config.yaml, metrics.csv, log.txt, last.pt, best.pt and curves.png. Ctrl-C
saves last.pt and exits with code 130; --resume continues exactly where it stopped.
"""


def register(sub) -> None:
    p = sub.add_parser(
        "train", help="train the network on real data (digits, CIFAR, an image folder)",
        description="Compile the spec, build its PyTorch model and train it: the paper's recipe\n"
                    "by default (SGD, momentum 0.9, weight decay 1e-4, batch 128, lr 0.1 divided\n"
                    "by 10 at half and three quarters of the run), with a progress bar,\n"
                    "metrics.csv, curves.png and checkpoints that survive a crash.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_spec_arguments(p)
    add_training_arguments(p)
    p.set_defaults(run=run)


def _opt(group, *flags: str, **kw) -> None:
    group.add_argument(*flags, default=argparse.SUPPRESS, **kw)


def add_training_arguments(p: argparse.ArgumentParser, *, device: bool = True) -> None:
    """The training flags (for `rnetc train`, and `rnetc compile --train`, which has its own
    --device and passes device=False)."""
    from resnet_dsl.train.config import AMP_DTYPES, LOADERS, SCHEDULES, TrainConfig
    from resnet_dsl.train.data import SOURCES

    d = TrainConfig()
    g = p.add_argument_group("data")
    _opt(g, "--data", choices=SOURCES, help=f"the dataset (default: {d.data}, bundled with scikit-learn)")
    _opt(g, "--data-dir", metavar="DIR", help="where cifar10/cifar100/folder data is (default: data/)")
    _opt(g, "--subset", type=int, metavar="N", help="use only the first N images of each split")
    _opt(g, "--synthetic-size", type=int, metavar="N",
         help=f"training images of --data synthetic (default: {d.synthetic_size:,})")
    _opt(g, "--loader", choices=LOADERS,
         help="device: data resident on the device, augmented there; dataloader: worker "
              "processes (default: auto, device when the data fits)")
    _opt(g, "-j", "--workers", type=int, metavar="N", help="DataLoader worker processes")
    _opt(g, "--hflip", action=argparse.BooleanOptionalAction,
         help="random horizontal flips (default: the dataset's; not for digits)")
    _opt(g, "--crop-padding", type=int, metavar="PX",
         help="zero padding of the random crop, 0 for none (default: the dataset's; CIFAR 4, "
              "digits 2 at 32x32)")

    g = p.add_argument_group("recipe")
    _opt(g, "--epochs", type=int, metavar="N",
         help="epochs (default: the dataset's: digits 15, cifar 164 = 64k iterations, folder 90)")
    _opt(g, "--max-steps", type=int, metavar="N", help="stop after N optimiser steps")
    _opt(g, "-b", "--batch-size", type=int, metavar="N",
         help=f"global batch size, over all processes (default: {d.batch_size})")
    _opt(g, "--lr", type=float, help=f"peak learning rate (default: {d.lr})")
    _opt(g, "--momentum", type=float, help=f"SGD momentum (default: {d.momentum})")
    _opt(g, "--nesterov", action="store_true", help="Nesterov momentum")
    _opt(g, "--wd", "--weight-decay", dest="wd", type=float, metavar="WD",
         help=f"weight decay (default: {d.wd})")
    _opt(g, "--norm-weight-decay", type=float, metavar="WD",
         help="weight decay of BatchNorm scales and shifts, e.g. 0 (default: --wd)")
    _opt(g, "--bias-weight-decay", type=float, metavar="WD",
         help="weight decay of biases, e.g. 0 (default: --wd)")
    _opt(g, "--schedule", choices=SCHEDULES,
         help="multistep: x --lr-gamma at --lr-steps (default: half and three quarters of the "
              "run); cosine; paper: /10 at 32k and 48k iterations, stop at 64k (default: multistep)")
    _opt(g, "--lr-steps", type=float, nargs="+", metavar="EPOCH", help="multistep milestones, in epochs")
    _opt(g, "--lr-gamma", type=float, help=f"multistep factor (default: {d.lr_gamma})")
    _opt(g, "--warmup-epochs", "--lr-warmup-epochs", dest="warmup_epochs", type=float, metavar="E",
         help="linear warmup from lr/steps to lr over E epochs (default: 0)")
    _opt(g, "--min-lr", type=float, help="cosine's final learning rate (default: 0)")
    _opt(g, "--label-smoothing", type=float, metavar="EPS", help="label smoothing (default: 0)")
    _opt(g, "--model-ema", action="store_true", help="keep an EMA of the weights; evaluate it too")
    _opt(g, "--model-ema-decay", type=float, metavar="D", help=f"EMA decay per step (default: {d.model_ema_decay})")

    g = p.add_argument_group("fine-tuning (docs/training.md#fine-tuning)")
    _opt(g, "--weights", metavar="FILE",
         help="start from these weights: a state dict (.pth/.pt, also under `state_dict`, "
              "`model` or `model_ema`, a `module.` prefix removed), .safetensors, or an rnetc "
              "checkpoint; read safely. Head tensors of another shape (--set classes=N) start "
              "fresh; anything else must fit")
    _opt(g, "--freeze", metavar="PREFIX",
         help="do not train `backbone` (all but the head) or a layer, block or stage and "
              "everything before it (e.g. layer3); frozen BatchNorms keep their statistics")
    _opt(g, "--head-lr", type=float, metavar="LR",
         help="the head's peak learning rate, on the same schedule (default: --lr)")

    g = p.add_argument_group("speed")
    if device:
        _opt(g, "--device", metavar="DEV", help="auto (default: the GPU if there is one), cpu, cuda, cuda:N")
    _opt(g, "--amp", action=argparse.BooleanOptionalAction,
         help="mixed precision autocast (default: on for CUDA)")
    _opt(g, "--amp-dtype", choices=AMP_DTYPES,
         help="bfloat16 (default) or float16 (with a gradient scaler)")
    _opt(g, "--channels-last", action=argparse.BooleanOptionalAction,
         help="NHWC memory format (default: on for CUDA)")
    _opt(g, "--compile", action="store_true", help="torch.compile the model (slow start, fast steps)")
    _opt(g, "--sync-bn", action="store_true", help="BatchNorm statistics over all processes")

    g = p.add_argument_group("run")
    _opt(g, "--config", metavar="FILE", help="YAML or JSON file of option defaults "
                                             "(a run's config.yaml works)")
    _opt(g, "--seed", type=int, help=f"random seed (default: {d.seed})")
    _opt(g, "--deterministic", action="store_true",
         help="deterministic algorithms only (on CPU: bit-identical reruns and resumes)")
    _opt(g, "--output-dir", metavar="DIR", help="the run folder (default: runs/NETWORK)")
    _opt(g, "--resume", nargs="?", const="auto", metavar="CKPT",
         help="continue from a checkpoint (default with no value: OUTPUT_DIR/last.pt)")
    _opt(g, "--print-freq", type=int, metavar="N", help=f"steps between progress updates (default: {d.print_freq})")
    _opt(g, "--tensorboard", action=argparse.BooleanOptionalAction,
         help="TensorBoard logs in OUTPUT_DIR/tensorboard (default: on if it is installed)")
    _opt(g, "--export-onnx", metavar="PATH",
         help="after training, export the best weights (best.pt) to this .onnx file, checked "
              "against PyTorch in onnxruntime like `rnetc export`")


def reject_training_options(args: argparse.Namespace) -> None:
    """`rnetc compile` with training options but without --train: a usage error, not a
    silently ignored flag."""
    from dataclasses import fields

    from resnet_dsl.train.config import TrainConfig, option

    if getattr(args, "train", False):
        return
    given = [option(f.name) for f in fields(TrainConfig) if hasattr(args, f.name) and f.name != "device"]
    given += ["--config"] if hasattr(args, "config") else []
    given += ["--export-onnx"] if hasattr(args, "export_onnx") else []
    if given:
        raise UsageError(f"{', '.join(given)} {'is a training option' if len(given) == 1 else 'are training options'}: "
                         "add --train")


def training_config(args: argparse.Namespace, *, device: str | None = None):
    """The TrainConfig of the command line: defaults < --config file < flags."""
    from dataclasses import fields

    from resnet_dsl.train.config import OptionError, TrainConfig, make_config, read_config_file

    names = {f.name for f in fields(TrainConfig)}
    cli = {name: getattr(args, name) for name in names if hasattr(args, name)}
    if device is not None:
        cli["device"] = device
    try:
        from_file = read_config_file(args.config) if hasattr(args, "config") else {}
        config = make_config(from_file, cli)
        config.check()
    except OptionError as exc:
        raise UsageError(str(exc)) from None
    return config


def seed_model_init(args: argparse.Namespace) -> None:
    """Seed torch from --seed (or the config file's) before a model is built outside
    `train()`, so that `compile --train` starts from the weights `rnetc train` starts from."""
    from resnet_dsl.train.run import seed_everything

    seed_everything(training_config(args).seed)


def train_network(args: argparse.Namespace, net, model=None, *, device: str | None = None):
    """Train `net` (and `model`, if already built) as the command line says.

    Returns the `TrainResult`; the caller decides the exit code (`exit_code`).
    """
    from resnet_dsl.train import OptionError, train

    config = training_config(args, device=device)
    export_path = getattr(args, "export_onnx", None)
    if export_path is not None:
        from resnet_dsl.cli.export import check_output

        check_output(export_path, "--export-onnx")  # before hours of training, not after
    spec = {"file": str(net.file), "network": net.name, "params": parse_sets(args.sets),
            "input_shape": list(net.input_shape), "parameters": net.totals.params}
    try:
        result = train(config, net, model=model, spec=spec, command=shlex.join(["rnetc", *sys.argv[1:]]))
    except OptionError as exc:
        raise UsageError(str(exc)) from None
    if result.main and not result.completed:
        print(f"continue with the same command and --resume {result.last_checkpoint}",
              file=sys.stderr)
    elif result.main and result.rows:
        best = f"best test accuracy {100 * result.best_acc:.2f}%" if result.best_acc >= 0 else ""
        written = ", ".join(sorted(result.files))
        print(f"done: {best}; {result.output_dir}/: {written}")
    if export_path is not None and result.main and result.completed:
        export_trained(net, result, export_path)
    return result


def export_trained(net, result, path: str) -> None:
    """Export the run's best weights (its last ones when it kept no best) to ONNX."""
    from resnet_dsl.backends.onnx import export_onnx

    best = result.best_checkpoint
    if best.exists():
        report = export_onnx(net, path, weights=best)
    else:
        report = export_onnx(net, path, model=result.model)
    print(report.describe())


def exit_code(result) -> int:
    return 0 if result.completed else 130


def run(args: argparse.Namespace) -> int:
    net = compile_args(args)
    return exit_code(train_network(args, net))
