"""The export pipeline: model -> trace -> minimal graph -> metadata -> checked file.

    model      the spec's nn.Module (torch backend), with --weights if given; eval mode,
               CPU, float32
    fold       with inference=True, its inference build (BNs folded into the convs by
               the torch backend, dropout gone); the check still compares with `model`
    trace      torch.onnx's dynamo exporter (trace.py), dynamic batch by default
    minimize   the graph rewrites of minimize.py; the op counts go into the report
    metadata   where the file came from (metadata.py)
    write      to a temporary file beside the target; unless check=False, the temporary
               file is checked (verify.py) before it takes the target's name (os.replace)

A file that fails its check is renamed to `NAME.failed` (kept for inspection, never under
the name a user would load) and E902 is raised; an earlier file at the target is left as
it was. Models over 2 GB cannot be one protobuf: their weights go to `NAME.data` beside
the file (written in place, not atomically).
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from resnet_dsl.backends.onnx.metadata import RANDOM_WEIGHTS, metadata
from resnet_dsl.backends.onnx.report import CheckReport, ExportReport
from resnet_dsl.errors import Diagnostic, Note, RnetError
from resnet_dsl.files import write_atomic
from resnet_dsl.ir.graph import Network

if TYPE_CHECKING:
    import torch

Batch = int | Literal["dynamic"]

INPUT_NAME = "images"
OUTPUT_NAME = "logits"
CHECK_BATCHES = (1, 3)          # a dynamic batch is checked at two sizes, neither the traced 2
EXTERNAL_DATA_LIMIT = 2**31 - 2**26   # protobuf's 2 GiB, less room for the graph itself
MIN_OPSET = 18                  # the dynamo exporter's own opsets start here


def export_onnx(net: Network, path: str | os.PathLike, *,
                model: torch.nn.Module | None = None,
                weights: str | os.PathLike | None = None,
                opset: int | None = None, batch: Batch = "dynamic", check: bool = True,
                rtol: float = 1e-3, atol: float = 1e-4,
                sources: Mapping[str, str] | None = None,
                inference: bool = False) -> ExportReport:
    """Export a checked network to an ONNX file at `path`; return what was written.

    The weights are `model`'s (a module `build_module(net)` made, e.g. trained; it is
    copied, never changed), or read from `weights` (a .safetensors/.pt/.pth file or a
    training checkpoint; E805 if it does not fit), or else a random initialisation.
    `batch` is "dynamic" or a fixed size; `opset=None` is the exporter's default.
    `check` runs the full onnx checker and compares onnxruntime with PyTorch (batches
    1 and 3, or the fixed batch) within `rtol`/`atol`; E902 if they differ. `sources`
    (file name -> text, the spec's file first) is recorded in the metadata; by default
    the texts the network was compiled from (`net.sources`). `inference=True` traces the
    model's inference build (`resnet_dsl.inference`: BNs folded into the convs by rnetc)
    instead of leaving the folding to the exporter; the graph is the same, and the check
    compares with the model before folding.

    >>> import tempfile, pathlib
    >>> from resnet_dsl.compiler import compile_network
    >>> net = compile_network("specs/cifar_resnet.rnet", params={"depth": 8})
    >>> report = export_onnx(net, pathlib.Path(tempfile.mkdtemp()) / "r8.onnx")
    >>> report.check.passed, report.op_counts["Conv"], report.batch
    (True, 7, None)
    """
    fixed = _batch_size(batch)
    if opset is not None and not MIN_OPSET <= opset <= max_opset():
        raise ValueError(f"opset must be between {MIN_OPSET} and {max_opset()}, got {opset}")
    if model is not None and weights is not None:
        raise ValueError("give the weights as model= or as weights=, not both")
    if net.input_shape is None or net.output_shape is None:
        raise ValueError("export_onnx needs a checked network (resnet_dsl.compiler.compile_network)")
    path = Path(path)
    if sources is None:
        sources = net.sources
    module, label = _inference_model(net, model, weights)
    start = time.perf_counter()
    traced = module
    if inference:
        from resnet_dsl.backends.torch import inference as inference_build

        traced = inference_build(module)
    proto, rewrites = _onnx_model(traced, net, fixed, opset)
    meta = metadata(net, sources=sources, batch=fixed, weights=label)
    for key, value in meta.items():
        proto.metadata_props.add(key=key, value=value)
    seconds = time.perf_counter() - start
    external = _initializer_bytes(proto) > EXTERNAL_DATA_LIMIT
    data_path = path.with_name(path.name + ".data") if external else None
    checked: list[CheckReport] = []

    def write(tmp: Path) -> None:
        _save(proto, tmp, data_path)
        if not check:
            return
        from resnet_dsl.backends.onnx.verify import check_file

        report = check_file(tmp, module, tuple(net.input_shape),
                            (fixed,) if fixed else CHECK_BATCHES, rtol=rtol, atol=atol)
        checked.append(report)
        if not report.passed:
            failed = path.with_name(path.name + ".failed")
            os.replace(tmp, failed)   # write_atomic then finds no temporary file to remove
            raise _check_failed(path, failed, report)

    write_atomic(path, write)
    from resnet_dsl.backends.onnx.minimize import op_counts

    return ExportReport(
        path=path, network=net.name, opset=_opset(proto), batch=fixed,
        input_name=INPUT_NAME, output_name=OUTPUT_NAME,
        input_shape=tuple(net.input_shape), output_shape=tuple(net.output_shape),
        op_counts=op_counts(proto), rewrites=rewrites, size_bytes=path.stat().st_size,
        export_seconds=seconds, weights=label, external_data=data_path,
        check=checked[0] if checked else None, metadata=meta)


def max_opset() -> int:
    """The newest opset the installed onnx package knows."""
    import onnx

    return onnx.defs.onnx_opset_version()


# -- steps ------------------------------------------------------------------------------

def _batch_size(batch: Batch) -> int | None:
    if batch == "dynamic":
        return None
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f'batch must be "dynamic" or a positive integer, got {batch!r}')
    return batch


def _inference_model(net: Network, model, weights) -> tuple[torch.nn.Module, str]:
    """The module to export (eval mode, CPU, float32) and where its weights came from."""
    import torch

    from resnet_dsl.backends.torch import build_module

    from resnet_dsl.backends.torch.fold import standardise_weights

    if model is not None:
        module, label = copy.deepcopy(model).to(device="cpu", dtype=torch.float32), "the model given"
    elif weights is None:
        module, label = build_module(net, device="cpu"), RANDOM_WEIGHTS
    else:
        from resnet_dsl.backends.torch.weights import fit_state, read_weights

        module = build_module(net, device="meta")   # no random numbers drawn for weights
        state = fit_state(read_weights(weights), module.state_dict(), source=str(weights),
                          network=net.name)
        module.load_state_dict(state, assign=True)
        label = Path(weights).name
    standardise_weights(module)  # weight-standardised convs: their weights, once
    return module.eval(), label


def _onnx_model(module, net: Network, batch: int | None, opset: int | None):
    from resnet_dsl.backends.onnx.minimize import minimize
    from resnet_dsl.backends.onnx.trace import trace

    proto = trace(module, tuple(net.input_shape), batch=batch, opset=opset,
                  input_name=INPUT_NAME, output_name=OUTPUT_NAME)
    proto, rewrites = minimize(proto)
    proto.graph.name = net.name
    from resnet_dsl.version import __version__

    proto.doc_string = f"{net.name} ({net.file}), exported by rnetc {__version__}"
    return proto, rewrites


def _save(proto, tmp: Path, data_path: Path | None) -> None:
    import onnx

    if data_path is None:
        onnx.save_model(proto, tmp, save_as_external_data=False)
        return
    data_path.unlink(missing_ok=True)   # onnx appends to an existing data file
    onnx.save_model(proto, tmp, save_as_external_data=True, all_tensors_to_one_file=True,
                    location=data_path.name)


def _initializer_bytes(proto) -> int:
    return sum(len(t.raw_data) or t.ByteSize() for t in proto.graph.initializer)


def _opset(proto) -> int:
    return next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))


def _check_failed(path: Path, failed: Path, report: CheckReport) -> RnetError:
    notes = [Note(None, line) for line in report.describe().splitlines()[:-1]]
    return RnetError(Diagnostic(
        "E902", f"the exported {path.name} failed its check: {report.problem}; the file is "
                f"kept as {failed}", None,
        "please report the spec; an earlier file at the target was left as it was, and "
        "--no-check writes the file without checking", notes))

