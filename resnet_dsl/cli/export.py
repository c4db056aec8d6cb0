"""`rnetc export FILE -o model.onnx`: a minimal ONNX file of a spec, checked against PyTorch.

The command checks its options and the output path before any work, compiles the spec,
and calls the ONNX backend (`resnet_dsl.backends.onnx.export_onnx`), which prints
nothing; this module prints its report. Torch and onnx are imported only in `run`.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from resnet_dsl.cli.common import UsageError, add_spec_arguments, compile_args

WEIGHT_SUFFIXES = (".safetensors", ".pt", ".pth")  # = backends.torch.weights (no torch imported here)

EPILOG = """\
examples:
  rnetc export specs/resnet50.rnet -o resnet50.onnx
  rnetc export specs/cifar_resnet20.rnet -o r20.onnx --weights runs/r20/best.pt
  rnetc export specs/resnet18.rnet -o resnet18_b8.onnx --batch 8 --input 3x160x160
  rnetc export specs/wrn.rnet -o wrn16_4.onnx --set depth=16 --set k=4 --opset 21
  rnetc export specs/resnet50.rnet -o resnet50.onnx --inference

The file's input is `images` [N,C,H,W] (N is dynamic unless --batch N), its output
`logits`; BatchNorm is folded into the conv before it (by the exporter, or with
--inference by rnetc before tracing: the same nodes either way). After writing, the file is checked
(onnx.checker, full check) and run in onnxruntime at batches 1 and 3 (or N) against
PyTorch; beyond rtol 1e-3 / atol 1e-4 it is renamed NAME.onnx.failed and the command
exits 1. View it with Netron: pip install netron; netron model.onnx (or netron.app).
"""


def register(sub) -> None:
    p = sub.add_parser(
        "export", help="write a minimal ONNX file, checked against PyTorch in onnxruntime",
        description="Build the spec's PyTorch model (random weights, or --weights), export it "
                    "to ONNX with torch.onnx in eval mode, keep the graph minimal, record the "
                    "spec in the file's metadata, and check the file with onnx.checker and "
                    "onnxruntime against PyTorch before it takes its name.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_spec_arguments(p)
    p.add_argument("-o", "--output", required=True, metavar="MODEL.onnx",
                   help="the ONNX file to write (atomically: a failed export leaves no "
                        "half-written file)")
    p.add_argument("--weights", metavar="PATH",
                   help="trained weights: a .safetensors/.pt/.pth file (rnetc compile -o) or a "
                        "training checkpoint (its `model` weights); default: random initialisation")
    p.add_argument("--opset", type=int, metavar="N",
                   help="ONNX opset to write (18 or newer; default: the exporter's default)")
    p.add_argument("--batch", default="dynamic", metavar="dynamic|N",
                   help="batch dimension: dynamic (default) or a fixed size N")
    p.add_argument("--inference", action="store_true",
                   help="trace the model's inference build (resnet_dsl.inference: BNs folded "
                        "into the convs by rnetc, dropout removed) rather than leave folding to "
                        "the exporter; the same nodes, checked against the model before folding")
    p.add_argument("--no-check", dest="check", action="store_false",
                   help="skip the onnx.checker and onnxruntime-vs-PyTorch check")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    batch = parse_batch(args.batch)
    check_options(args)
    net = compile_args(args)

    from resnet_dsl.backends.onnx import export_onnx

    try:
        report = export_onnx(net, args.output, weights=args.weights, opset=args.opset,
                             batch=batch, check=args.check, inference=args.inference)
    except OSError as exc:
        raise UsageError(f"-o {args.output}: cannot write it ({exc.strerror or exc})") from None
    print(report.describe())
    return 0


def parse_batch(text: str) -> int | str:
    if text == "dynamic":
        return text
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise UsageError(f"--batch takes `dynamic` or a positive integer, got `{text}`")
    return value


def check_output(output: str, flag: str = "-o") -> None:
    """Refuse an ONNX output path that could not be written, before any work is done."""
    out = Path(output)
    if out.suffix.lower() != ".onnx":
        raise UsageError(f"{flag} {output}: the file name must end in .onnx")
    if out.is_dir():
        raise UsageError(f"{flag} {output}: is a folder")
    if not out.parent.is_dir():
        raise UsageError(f"{flag} {output}: the folder {out.parent} does not exist")
    if not os.access(out.parent, os.W_OK | os.X_OK):
        raise UsageError(f"{flag} {output}: cannot write in {out.parent} (permission denied)")


def check_options(args: argparse.Namespace) -> None:
    """Refuse a command that would fail after the work: output path, weights path, opset."""
    check_output(args.output)
    if args.weights is not None:
        weights = Path(args.weights)
        if not weights.exists():
            raise UsageError(f"--weights {args.weights}: no such file")
        if weights.is_dir():
            raise UsageError(f"--weights {args.weights}: is a folder, not a weights file")
        if weights.suffix.lower() not in WEIGHT_SUFFIXES:
            raise UsageError(f"--weights {args.weights}: weights are read from "
                             f"{', '.join(WEIGHT_SUFFIXES)} files")
    if args.opset is not None:
        from resnet_dsl.backends.onnx.export import MIN_OPSET, max_opset

        newest = max_opset()
        if not MIN_OPSET <= args.opset <= newest:
            raise UsageError(f"--opset {args.opset}: rnetc writes opsets {MIN_OPSET} to {newest} "
                             f"(torch.onnx's exporter starts at {MIN_OPSET}; the installed onnx "
                             f"knows up to {newest})")
