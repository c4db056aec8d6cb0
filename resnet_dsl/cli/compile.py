"""`rnetc compile FILE`: build the PyTorch model of a spec, prove it runs, save it.

The steps are functions that `run` calls in turn, so that more can join (training):
check the output paths before any work, compile the spec to a checked IR, build the
module (with --inference, its BN-folded inference build), run one forward pass on a
dummy input, print the summary and the forward pass, write the initialised weights (-o)
and the standalone source (--emit-python).
"""

from __future__ import annotations

import argparse
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from resnet_dsl.cli.common import UsageError, add_spec_arguments, compile_args
from resnet_dsl.cli.train import (add_training_arguments, exit_code, reject_training_options,
                                  seed_model_init, train_network)

EPILOG = """\
examples:
  rnetc compile specs/resnet50.rnet --device meta
  rnetc compile specs/cifar_resnet20.rnet -o cifar_resnet20.safetensors
  rnetc compile specs/resnet18.rnet --emit-python resnet18.py
  rnetc compile specs/cifar50.rnet --set k=2 --zero-init-residual -o cifar50_k2.pt
  rnetc compile specs/cifar_resnet20.rnet --train -o trained.safetensors
  rnetc compile specs/resnet50.rnet --inference -o resnet50_folded.safetensors

The weights file's names are the spec's layer names (torchvision's for the
torchvision-family specs); the --emit-python file needs only torch. With --inference
the forward pass runs the inference build (each BN that follows a conv folded into it,
dropout removed; resnet_dsl.inference) and -o writes its weights: the folded convs gain
a bias, the folded BNs' entries are gone (docs/pytorch.md, "Inference build").
"""


def register(sub) -> None:
    p = sub.add_parser(
        "compile", help="build the PyTorch model; write its weights or standalone source",
        description="Build the spec's PyTorch model, run one forward pass on a dummy input to "
                    "prove it, and print the summary. Optionally write the initialised weights "
                    "and a standalone PyTorch source file of the model.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_spec_arguments(p)
    p.add_argument("-o", "--output", metavar="WEIGHTS",
                   help="write the initialised weights: .safetensors, .pt or .pth")
    p.add_argument("--emit-python", metavar="FILE.py",
                   help="write the model as a standalone PyTorch source file (no rnetc import)")
    p.add_argument("--device", choices=("cpu", "meta", "cuda"), default=None,
                   help="where to build: cpu (default), cuda, or meta (shapes only, no memory); "
                        "with --train, where to train (default: the GPU if there is one)")
    p.add_argument("--zero-init-residual", action="store_true",
                   help="zero the last BN of each residual branch (each block starts as its "
                        "shortcut; Goyal et al. 2017)")
    p.add_argument("--inference", action="store_true",
                   help="the BN-folded inference build (resnet_dsl.inference): the forward "
                        "check runs it and -o writes its weights (with --train: of the "
                        "trained model); not with --emit-python, whose file is the trainable "
                        "model")
    p.add_argument("--train", action="store_true",
                   help="then train it (the options below; see `rnetc train --help`); -o writes "
                        "the trained weights")
    add_training_arguments(p, device=False)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from resnet_dsl.analysis.summary import format_summary

    train_device, args.device = args.device or "auto", args.device or "cpu"
    reject_training_options(args)
    check_outputs(args)
    net = compile_args(args)
    if args.train:  # initialise from --seed, as `rnetc train` does
        seed_model_init(args)
    model = build_model(args, net)
    zeroed = describe_zero_init(model) if args.zero_init_residual else None
    folded = None
    if args.inference and not args.train:
        model, folded = inference_build(model)
    forward = prove_forward(model, net, args.device)
    print(format_summary(net), end="")
    print(forward.describe())
    if zeroed:
        print(zeroed)
    if args.train:
        result = train_network(args, net, model, device=train_device)
        if not (result.main and result.completed):
            return exit_code(result)
        if args.inference:
            model, folded = inference_build(model)
    if folded:
        print(folded)
    write_outputs(args, model, net)
    return 0


# -- steps -------------------------------------------------------------------------------

def check_outputs(args: argparse.Namespace) -> None:
    """Refuse a command that would fail after the work: bad paths, suffixes, devices."""
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise UsageError(f"--device cuda: torch {torch.__version__} sees no CUDA device here")
    if args.output is not None:
        from resnet_dsl.backends.torch.weights import WEIGHT_SUFFIXES

        if Path(args.output).suffix.lower() not in WEIGHT_SUFFIXES:
            raise UsageError(f"-o {args.output}: weights are written as "
                             f"{', '.join(WEIGHT_SUFFIXES)} files")
        if args.device == "meta":
            raise UsageError(f"-o {args.output}: a --device meta build has no weights to write")
        _check_writable(args.output, "-o")
    if args.emit_python is not None:
        if Path(args.emit_python).suffix != ".py":
            raise UsageError(f"--emit-python {args.emit_python}: the file name must end in .py "
                             "(it is a Python module)")
        _check_writable(args.emit_python, "--emit-python")
    if args.inference and args.emit_python is not None:
        raise UsageError(f"--emit-python {args.emit_python}: the emitted file is the trainable "
                         "model, not the inference build; leave out --inference (the weights "
                         "-o writes then load into the file's class), or use -o alone for the "
                         "folded weights")
    if args.output and args.emit_python and \
            Path(args.output).resolve() == Path(args.emit_python).resolve():
        raise UsageError(f"-o and --emit-python both name {args.output}")


def _check_writable(path: str, flag: str) -> None:
    target = Path(path)
    folder = target.parent
    if target.is_dir():
        raise UsageError(f"{flag} {path}: is a folder")
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{flag} {path}: {folder} is not a folder")
    if not folder.is_dir():
        raise UsageError(f"{flag} {path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"{flag} {path}: cannot write in {folder} (permission denied)")


def build_model(args: argparse.Namespace, net):
    """The spec's nn.Module on `--device`, initialised (zero-init residual if asked)."""
    from resnet_dsl.backends.torch import build_module

    return build_module(net, device=args.device, zero_init_residual=args.zero_init_residual)


def inference_build(model):
    """The model's inference build, and the line that says what folding did."""
    from torch import nn

    from resnet_dsl.backends.torch import inference
    from resnet_dsl.backends.torch.fold import PASSTHROUGH

    def count(m: nn.Module, kind) -> int:
        return sum(1 for x in m.modules() if isinstance(x, kind))

    folded = inference(model)
    bns = count(model, nn.modules.batchnorm._BatchNorm)
    left = count(folded, nn.modules.batchnorm._BatchNorm)
    dropped = count(model, PASSTHROUGH[:2]) - count(folded, PASSTHROUGH[:2])
    tensors = (len(model.state_dict()), len(folded.state_dict()))
    line = (f"inference build: {bns - left} of {bns} BatchNorms folded into the conv before "
            f"them ({left} left: not after a conv)" if left else
            f"inference build: all {bns} BatchNorms folded into the conv before them")
    line += (f"; {dropped} dropout/drop-path layers removed" if dropped else "")
    return folded, f"{line}; state dict {tensors[0]:,} -> {tensors[1]:,} tensors"


@dataclass(frozen=True)
class ForwardCheck:
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    first_seconds: float    # includes torch's one-time setup (kernels, lazy imports)
    seconds: float          # a second pass
    device: str

    def describe(self) -> str:
        what = "shapes only" if self.device == "meta" else "one image, eval mode"
        return (f"forward: {'x'.join(map(str, self.input_shape))} -> "
                f"{'x'.join(map(str, self.output_shape))} on {self.device} in "
                f"{self.seconds * 1e3:,.1f} ms ({what}; the first pass, with torch's one-time "
                f"setup, {self.first_seconds * 1e3:,.0f} ms)")


def prove_forward(model, net, device: str) -> ForwardCheck:
    """Run one image through `model` twice in eval mode; check the output shape is the IR's."""
    import torch

    shape = (1, *net.input_shape)
    x = torch.empty(shape, device="meta") if device == "meta" else torch.randn(shape, device=device)
    training = model.training
    model.eval()
    times = []
    try:
        with torch.inference_mode():
            for _ in range(2):
                start = time.perf_counter()
                y = model(x)
                if device == "cuda":
                    torch.cuda.synchronize()
                times.append(time.perf_counter() - start)
    finally:
        model.train(training)
    expected = (1, *net.output_shape)
    if tuple(y.shape) != expected:  # the IR's shape pass and torch disagree: an rnetc bug
        raise RuntimeError(f"rnetc bug: the model's output is {tuple(y.shape)}, the IR says "
                           f"{expected}")
    return ForwardCheck(shape, tuple(y.shape), times[0], times[1], device)


def describe_zero_init(model) -> str:
    from resnet_dsl.backends.torch import Residual

    count = sum(1 for m in model.modules() if isinstance(m, Residual) and m.last_bn is not None)
    if count == 0:
        return "zero-init residual: no residual branch here ends in a BN; nothing zeroed"
    return f"zero-init residual: the last BN of {count} residual branches zeroed"


def write_outputs(args: argparse.Namespace, model, net) -> None:
    """Write -o (weights) and --emit-python (source), each atomically."""
    from resnet_dsl.version import __version__

    if args.output is not None:
        from resnet_dsl.backends.torch import save_weights

        metadata = {"network": net.name, "spec": Path(net.file).name, "rnetc": __version__}
        if args.inference:
            metadata["inference"] = "bn-folded (resnet_dsl.inference)"
        try:
            path = save_weights(model, args.output, metadata=metadata)
        except OSError as exc:
            raise UsageError(f"-o {args.output}: cannot write it ({exc.strerror or exc})") from None
        params = sum(p.numel() for p in model.parameters()) if args.inference else net.totals.params
        print(f"weights: {path} ({params:,} parameters, "
              f"{path.stat().st_size / 2**20:,.1f} MiB)")
    if args.emit_python is not None:
        from resnet_dsl.backends.torch import emit_python
        from resnet_dsl.files import write_text_atomic

        source = emit_python(net)
        try:
            path = write_text_atomic(args.emit_python, source)
        except OSError as exc:
            raise UsageError(f"--emit-python {args.emit_python}: cannot write it "
                             f"({exc.strerror or exc})") from None
        model_class = re.findall(r"^class (\w+)\(", source, re.M)[-1]
        print(f"python: {path} (class {model_class}; needs only torch)")
